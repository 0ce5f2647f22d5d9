"""Verifying case histories: the hash chain, seq gaps, snapshots equal to replay; store
digests; the case as it stood at a time; JSON Lines export that verifies offline.

Everything here reads; nothing writes to the store.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.scanner import make_scanner
from typing import IO, Any

from pydantic import ValidationError

from workflow.clock import to_utc
from workflow.domain import Case, case_to_json, read_snapshot, snapshot_problems
from workflow.errors import (
    AuditFailure,
    CaseNotFound,
    SnapshotUnreadable,
    snapshot_problems_text,
)
from workflow.events import (
    GENESIS,
    Event,
    event_from_json,
    format_at,
    restored_event,
    stored_hash,
)
from workflow.personal import (
    ERASE_EVENT,
    PERSONAL_PATHS,
    Personal,
    Vault,
    referenced,
    unseal_data,
    vault_of,
)
from workflow.replay import replay
from workflow.store import (
    ReadsStoredHistories,
    ReadsStoredHistory,
    Store,
    StoredHistory,
    Tombstone,
    retention_end,
)

EXPORT_FORMAT = "complaintflow-events/4"
#: The format whose tombstone lines came without ``retention_years``, and no end line.
TOMBSTONES_FORMAT = "complaintflow-events/3"
#: Formats ``verify_export`` reads: /1 had no personal-value lines, /2 no tombstone lines,
#: /3 no retention in its tombstones and no end line.
READABLE_FORMATS = (
    "complaintflow-events/1",
    "complaintflow-events/2",
    TOMBSTONES_FORMAT,
    EXPORT_FORMAT,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a history: where (case, seq) and what. A problem of an exported
    file as a whole (its end line's counts) has the case id ``""`` (``FILE``)."""

    case_id: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        if self.case_id == FILE:
            return f"the file: {self.problem}"
        where = f" event {self.seq}" if self.seq is not None else ""
        return f"case {self.case_id}{where}: {self.problem}"


#: The case id of a ``Finding`` about an exported file as a whole.
FILE = ""


@dataclass(frozen=True, slots=True)
class Unchecked:
    """What a verification could not check, and why: not a problem (a ``Finding`` is
    one). A case purged after steps a saved digest does not hold is one: its tombstone
    keeps only its last head, and the events that led there from the digest's are gone
    (decision 0060). Pass a list as ``unchecked=`` to ``check_digest`` or
    ``verify_export`` to be given them; the command line prints each as a ``NOTE``."""

    case_id: str
    seq: int | None
    text: str

    def __str__(self) -> str:
        where = f" event {self.seq}" if self.seq is not None else ""
        return f"case {self.case_id}{where}: {self.text}"


@dataclass(slots=True)
class Tally:
    """What a verification read, for its report: the cases (histories) and events
    checked, and the purged cases, which only their tombstones stand for (a whole store,
    or an export's tombstone lines). Pass one as ``tally=`` to ``verify_store`` or
    ``verify_export``; each adds to it."""

    cases: int = 0
    events: int = 0
    purged: int = 0

    def add(self, events: int) -> None:
        self.cases += 1
        self.events += events


def _chain_findings(
    case_id: str, links: Iterable[tuple[str, int, str, str, bool]]
) -> list[Finding]:
    """Problems in a chain given ``(case_id, seq, prev_hash, hash, hash_matches)`` per
    event, in stored order."""
    findings: list[Finding] = []
    expected_prev = GENESIS
    expected_seq = 1
    for owner, seq, prev_hash, hash_, matches in links:
        if owner != case_id:
            findings.append(Finding(case_id, seq, f"belongs to case {owner}"))
        if seq != expected_seq:
            findings.append(Finding(case_id, seq, f"seq {seq} where {expected_seq} was due"))
        if not matches:
            findings.append(Finding(case_id, seq, "content does not match its hash"))
        if prev_hash != expected_prev:
            findings.append(
                Finding(case_id, seq, "prev_hash does not match the previous event's hash")
            )
        expected_prev = hash_
        expected_seq = seq + 1
    return findings


def check_chain(case_id: str, events: Iterable[Event]) -> list[Finding]:
    """Problems in one case's events: an edited event (hash no longer matches its
    content), a broken link (deleted, inserted or reordered event), a seq gap."""
    return _chain_findings(
        case_id,
        ((e.case_id, e.seq, e.prev_hash, e.hash, e.expected_hash() == e.hash) for e in events),
    )


def check_times(case_id: str, events: Iterable[Event]) -> list[Finding]:
    """Each event's time must not be earlier than the time of the event before it (one
    instant for several events is in order). The engine never writes such a history (it
    clamps ``now`` to the case's last event), so one is a forgery re-hashed throughout or
    another program's writes; either way "as it stood at" a time has no answer on it."""
    findings: list[Finding] = []
    before: Event | None = None
    for event in events:
        if before is not None and _earlier(event.at, before.at):
            findings.append(Finding(case_id, event.seq, _goes_back(event, before)))
        before = event
    return findings


def _earlier(at: datetime, than: datetime) -> bool:
    """``at < than``; False for times that cannot be compared (a time without a zone:
    its hash does not match the canonical text, which verify reports)."""
    try:
        return at < than
    except TypeError:
        return False


def _goes_back(event: Event, before: Event) -> str:
    return (
        f"at {event.at.isoformat()} goes back before seq {before.seq}'s at {before.at.isoformat()}"
    )


def check_personal(case_id: str, entries: Iterable[Personal]) -> list[Finding]:
    """Each personal value must still give the reference its events carry."""
    return [
        Finding(case_id, None, f"personal value {entry.ref} was altered (it no longer "
                               "gives its reference)")
        for entry in entries
        if not entry.is_sound()
    ]  # fmt: skip


def check_values_present(case_id: str, events: Iterable[Event], vault: Vault) -> list[Finding]:
    """Every personal value an event refers to must still be held, unless an erasure
    is recorded after that event: a value removed without one is a silent erasure (or
    a loss) that the history does not show."""
    history = list(events)
    last_erasure = max((e.seq for e in history if e.type == ERASE_EVENT), default=0)
    return [
        Finding(case_id, e.seq, f"personal value {ref} is missing and no erasure is recorded")
        for e in history
        if e.seq > last_erasure and e.type in PERSONAL_PATHS
        for ref in referenced(e.type, e.data)
        if ref not in vault
    ]


def verify_case(store: Store, case_id: str, *, tally: Tally | None = None) -> list[Finding]:
    """The chain, the personal values, and that the stored snapshot equals a replay of
    the events with those values."""
    try:
        events = store.events(case_id)
    except ValueError as exc:  # a row that is not an event any more
        return [Finding(case_id, None, f"an event is unreadable: {exc}")]
    if tally is not None:
        tally.add(len(events))
    findings = check_chain(case_id, events) + check_times(case_id, events)
    if not events:
        return [Finding(case_id, None, "has no events")]
    try:
        snapshot = store.load(case_id)
    except ValueError as exc:
        findings.append(
            Finding(case_id, None, f"the stored snapshot is unreadable: {first_problem(exc)}")
        )
        return findings
    parting, upto = check_head(case_id, events, snapshot.version, snapshot.head_hash)
    return (
        findings
        + parting
        + _against_snapshot(
            case_id, events, snapshot.personal, lambda replayed: replayed == snapshot, upto
        )
    )


def check_head(
    case_id: str, events: Sequence[Event], version: int, head_hash: str
) -> tuple[list[Finding], int | None]:
    """Where the chain and the case's snapshot part, if they do. The engine writes each
    event with the snapshot after it, in one transaction, so the snapshot's ``version``
    and ``head_hash`` are the last event's seq and hash: events forged with correctly
    computed hashes (every link holding) show here, unless the snapshot was rewritten to
    match (then only a digest saved before shows them). Returns the findings and, when
    the snapshot's head is its version's event or no event's, its version: the snapshot
    should equal a replay of the events up to it."""
    last_seq = events[-1].seq if events else 0  # none: every one deleted
    if events and last_seq == version and events[-1].hash == head_hash:
        return [], None
    at_version = next((e for e in events if e.seq == version), None)
    if at_version is not None and at_version.hash == head_hash:
        head: int | None = version
    else:
        head = next((e.seq for e in events if e.hash == head_hash), None)
    if head is not None and head != version:
        return [Finding(case_id, head, _parted(head, version))], None
    if head is None and version > last_seq:
        return [Finding(case_id, last_seq + 1, _missing(last_seq + 1, version))], None
    findings = [Finding(case_id, version, _rewritten(version))] if head is None else []
    findings += [Finding(case_id, e.seq, _beyond(e.seq, version)) for e in events
                 if e.seq > version]  # fmt: skip
    return findings, version


def _beyond(seq: int, version: int) -> str:
    return (
        f"seq {seq} is beyond the snapshot's version {version}: it was added without the "
        "case's snapshot, which the engine writes in the same transaction (a forgery, or "
        "another program's write)"
    )


def _rewritten(version: int) -> str:
    return (
        f"seq {version}'s hash is not the snapshot's head hash, and no event's is: the chain "
        f"was rewritten at or before seq {version}, every later event re-hashed so that "
        "each link holds (or the snapshot's head hash was edited); "
        f"{_DIGEST_PROVES}, even with the snapshot rewritten to match"
    )


def _missing(first: int, version: int) -> str:
    gone = f"seq {first} is" if first == version else f"seqs {first}-{version} are"
    return (
        f"{gone} missing: the snapshot's version is {version} and its head hash is no "
        "stored event's (deleted after the snapshot was written, or the chain rewritten: "
        f"{_DIGEST_PROVES})"
    )


def _parted(head: int, version: int) -> str:
    return (
        f"the snapshot's head hash is seq {head}'s, but its version is {version}: chain and "
        f"snapshot part after seq {head}"
    )


#: What proves a consistent rewrite of a chain (and what the findings say so).
_DIGEST_PROVES = (
    "a digest saved before, `complaintflow audit verify --digest FILE`, is what proves a "
    "consistent rewrite"
)


def _against_snapshot(
    case_id: str,
    events: Sequence[Event],
    entries: Iterable[Personal],
    matches: Callable[[Case], bool],
    upto: int | None = None,
) -> list[Finding]:
    """The snapshot's personal values (sound, and none missing without an erasure), and
    whether a replay of ``events`` with them ``matches`` the snapshot (of the first
    ``upto`` events: the snapshot's, when events were added beyond it)."""
    held = list(entries)
    findings = check_personal(case_id, held)
    vault = vault_of(held)
    findings.extend(check_values_present(case_id, events, vault))
    try:
        replayed = replay(events, vault)
        if upto is not None:
            replayed = replay(events[:upto], vault)
    except AuditFailure as failure:
        findings.append(Finding(case_id, failure.seq, f"does not replay: {failure.reason}"))
        return findings
    if not matches(replayed):
        upto_text = f" up to seq {upto}, its version" if upto is not None else ""
        findings.append(Finding(
            case_id, None, f"the stored snapshot differs from a replay of its events{upto_text}"
        ))  # fmt: skip
    return findings


def heads(store: Store) -> list[tuple[str, int, str]]:
    """``(case_id, version, head hash)`` of every case, sorted by case id; a case purged
    at the end of its retention period counts with its tombstone's head."""
    out = []
    for case_id in store.case_ids():
        events = store.events(case_id)
        if not events:  # a case row whose events were deleted: no head to commit to
            raise AuditFailure(case_id, None, "has no events (run `audit verify`)")
        last = events[-1]
        out.append((case_id, last.seq, last.hash))
    out.extend((t.case_id, t.version, t.head_hash) for t in store.tombstones())
    return sorted(out)


#: A case's head with when it closed, as a ``complaintflow-digest/2`` file holds it:
#: ``(case_id, seq, head hash, closed_at)``, ``closed_at`` None while it is open.
ClosingHead = tuple[str, int, str, datetime | None]
#: The digest file ``audit digest`` writes: its heads hold when each case closed.
DIGEST_FORMAT = "complaintflow-digest/2"
#: The steps that close a case (``closed_at`` their time) and the one that opens it again.
_CLOSING = frozenset(("close", "withdraw"))
_REOPENING = "reopen"


def closing_time(events: Iterable[Event]) -> datetime | None:
    """When the case the events make up closed (its ``closed_at``, as replay gives it):
    the time of its last ``close`` or ``withdraw`` with no ``reopen`` after it; None
    while it is open."""
    closed: datetime | None = None
    for event in events:
        if event.type in _CLOSING:
            closed = event.at
        elif event.type == _REOPENING:
            closed = None
    return closed


def closing_heads(store: Store) -> list[ClosingHead]:
    """``heads`` with when each case closed (None: open), read from its events; a purged
    case's from its tombstone (the same time: the case's ``closed_at`` when it was
    purged), so a digest saved before a purge is the digest after it."""
    out: list[ClosingHead] = []
    for case_id in store.case_ids():
        events = store.events(case_id)
        if not events:  # a case row whose events were deleted: no head to commit to
            raise AuditFailure(case_id, None, "has no events (run `audit verify`)")
        last = events[-1]
        out.append((case_id, last.seq, last.hash, closing_time(events)))
    out.extend((t.case_id, t.version, t.head_hash, t.closed_at) for t in store.tombstones())
    return sorted(out, key=lambda head: head[:3])


def store_digest(store: Store) -> str:
    """SHA-256 over every case's head and when it closed (``closing_digest_of``). Save
    it outside the database; verifying against it later proves that no case's history
    up to then was rewritten (a case's head hash commits to all its events), and that a
    case purged since had closed when it says."""
    return closing_digest_of(closing_heads(store))


def digest_of(case_heads: Iterable[tuple[str, int, str]]) -> str:
    """The digest of ``(case_id, seq, head hash)`` triples (as ``heads`` gives them):
    SHA-256 over ``case_id seq hash`` lines, sorted, newline-ended; the value of a
    digest file written before decision 0054 (no ``format``)."""
    lines = "".join(f"{cid} {seq} {head}\n" for cid, seq, head in sorted(case_heads))
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


def closing_digest_of(case_heads: Iterable[ClosingHead]) -> str:
    """The digest of ``closing_heads``: SHA-256 over ``case_id seq hash closed`` lines,
    ``closed`` the closing time as events' ``at`` are written
    (``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``) or ``open``, sorted by case id, seq and
    hash, newline-ended; the value of a ``complaintflow-digest/2`` file."""
    lines = "".join(
        f"{cid} {seq} {head} {closed_text(closed)}\n"
        for cid, seq, head, closed in sorted(case_heads, key=lambda h: h[:3])
    )
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


def closed_text(closed: datetime | None) -> str:
    """A closing time as a digest line holds it (``open``: None)."""
    return format_at(closed.astimezone(UTC)) if closed is not None else "open"


def digest_document(case_heads: Sequence[ClosingHead]) -> dict[str, object]:
    """The ``complaintflow-digest/2`` file of ``closing_heads`` (``audit digest``): its
    format, its digest value and each case's ``[seq, head hash, closed]``, ``closed``
    written as events' times are, or null while the case is open."""
    return {
        "format": DIGEST_FORMAT,
        "digest": closing_digest_of(case_heads),
        "heads": {
            cid: [seq, head, format_at(closed.astimezone(UTC)) if closed is not None else None]
            for cid, seq, head, closed in case_heads
        },
    }


def read_closed(text: object) -> datetime | None:
    """A digest file's ``closed`` read back: null, or a UTC time written exactly as
    events' times are; ``ValueError`` for anything else."""
    return None if text is None else _utc_text("closed", text)


def check_digest(
    store: Store,
    digest_heads: dict[str, tuple[int, str]],
    closed: Mapping[str, datetime | None] | None = None,
    *,
    unchecked: list[Unchecked] | None = None,
) -> list[Finding]:
    """Each case in a saved digest must still have the event at the saved seq, with the
    saved hash (looked up by seq: an event deleted before it is the chain's finding,
    not this one's), or be purged, its tombstone holding that seq and hash. ``closed``
    (a ``complaintflow-digest/2`` file's closing times) holds a purged case's tombstone
    to the digest's: a case open at the saved head, or closed at another time, was not
    purged by the engine (``_against_saved_closing``). A case purged after steps the
    digest does not hold (its tombstone at a later seq) cannot be checked against the
    digest's head: that is an ``Unchecked``, added to ``unchecked`` if given, not a
    finding (``against_saved_tombstone``)."""
    findings = []
    purged = {t.case_id: t for t in store.tombstones()}
    for case_id, (seq, head) in sorted(digest_heads.items()):
        try:
            events = store.events(case_id)
        except LookupError:
            tombstone = purged.get(case_id)
            if tombstone is None:
                findings.append(
                    Finding(case_id, None, "is in the saved digest but not in the store")
                )
                continue
            saved = closed.get(case_id, _UNSAVED) if closed is not None else _UNSAVED
            found, note = against_saved_tombstone(tombstone, seq, head, saved)
            findings.extend(found)
            if note is not None and unchecked is not None:
                unchecked.append(note)
            continue
        findings.extend(_against_saved_head(case_id, events, seq, head))
    return findings


class _Unsaved:
    """The closing time of a digest that holds none (written before decision 0054)."""


#: ``against_saved_tombstone``'s ``closed`` for a digest without closing times.
_UNSAVED = _Unsaved()


def against_saved_tombstone(
    tombstone: Tombstone,
    seq: int,
    head: str,
    closed: datetime | _Unsaved | None = _UNSAVED,
    where: str = "",
) -> tuple[list[Finding], Unchecked | None]:
    """A purged case's tombstone against a digest's ``seq``, ``head`` and, in a
    ``complaintflow-digest/2`` file, when the digest saw it closed (``closed``; None:
    open). At the digest's seq, it must hold the digest's head and closing time. Before
    it, it is a finding: a purge keeps the case's last seq. After it (steps taken after
    the digest was saved, then the purge), the digest's head cannot be checked: the
    tombstone keeps the last head alone, and the events are gone. That is an ``Unchecked``,
    not a finding; only a closing time earlier than the one the digest saw is found
    then, since closing times never move back. ``where``: `` (line N)``."""
    case_id, version = tombstone.case_id, tombstone.version
    differs = f"purged, but its tombstone{where} differs from the digest"
    if version < seq:
        return [Finding(case_id, seq, f"{differs}: it is at seq {version}, before the digest's "
                        f"seq {seq} (a purge keeps the case's last seq: events deleted before "
                        "the purge, or the tombstone edited)")], None  # fmt: skip
    if version == seq:
        if tombstone.head_hash != head:
            return [Finding(case_id, seq, f"{differs}: its head hash at seq {seq} is another "
                            "(the chain was rewritten before the purge, or the tombstone "
                            "edited)")], None  # fmt: skip
        if isinstance(closed, _Unsaved):
            return [], None
        return _against_saved_closing(tombstone, closed, where), None
    if isinstance(closed, datetime) and tombstone.closed_at < closed:
        problem = (
            f"purged, but its tombstone{where} says it closed at "
            f"{_shown(tombstone.closed_at)}, before {_shown(closed)}, when the saved digest "
            f"has it closed at seq {seq}: a case's closing time never moves back (the "
            "tombstone was edited, or written by hand)"
        )
        return [Finding(case_id, seq, problem)], None
    steps = version - seq
    more = f"{steps} more step{'' if steps == 1 else 's'}"
    return [], Unchecked(
        case_id,
        seq,
        f"purged after {more} than the saved digest holds (its tombstone{where} is at seq "
        f"{version}): the events are gone, so its head at the digest's seq {seq} cannot be "
        "checked; a digest saved after its last step checks its tombstone",
    )


def _against_saved_closing(
    tombstone: Tombstone, saved: datetime | None, where: str = ""
) -> list[Finding]:
    """A tombstone at a digest's head against when the digest says the case closed: the
    digest was saved outside the database, so this is what a tombstone's own fields
    cannot prove (``where``: `` (line N)``)."""
    case_id, seq = tombstone.case_id, tombstone.version
    if saved is None:
        return [Finding(case_id, seq, f"purged, but the saved digest has it open at seq {seq}, "
                        "its tombstone's: a case is purged only once closed or withdrawn, a "
                        "step after which its head is another (the tombstone was written by "
                        "hand, or by another program)")]  # fmt: skip
    if saved != tombstone.closed_at:
        problem = (
            f"purged, but its tombstone{where} says it closed at "
            f"{_shown(tombstone.closed_at)}, and the saved digest at {_shown(saved)} (the "
            "tombstone was edited, or written by hand)"
        )
        return [Finding(case_id, seq, problem)]
    return []


#: The shortest and longest retention periods a policy can give, in years
#: (``policies.model.Retention``): no case is purged sooner than a year after it closed.
RETENTION_YEARS = range(1, 101)


def tombstone_problems(tombstone: Tombstone, now: datetime | None = None) -> list[str]:
    """What makes a tombstone implausible as the engine's purge of a closed case, each
    as the end of "its tombstone ...": a seq of 1 (the opening alone: the case was never
    closed or withdrawn, which is a step of its own), times out of order (closed before
    it opened, purged before it closed), a purge before its retention period ended (its
    ``retention_years``, or a year, the shortest any policy gives, when it has none), a
    retention period no policy gives, and, given ``now`` (the time of the
    verification), a purge after it. Every field is the tombstone's own word: these
    find a careless forgery or another program's purge, not one that gets the times
    right (only a digest saved before can tell that one: ``check_digest``)."""
    problems: list[str] = []
    t = tombstone
    if t.version < 2:
        problems.append(
            f"is at seq {t.version}: a case's first event is its opening, and a case is "
            "purged only once a later step closed or withdrew it"
        )
    if t.closed_at < t.opened_at:
        problems.append(f"says it closed at {_shown(t.closed_at)}, before it opened at "
                        f"{_shown(t.opened_at)}")  # fmt: skip
    if t.purged_at < t.closed_at:
        problems.append(f"says it was purged at {_shown(t.purged_at)}, before it closed at "
                        f"{_shown(t.closed_at)}")  # fmt: skip
    years = t.retention_years
    if years is not None and years not in RETENTION_YEARS:
        problems.append(f"gives a retention period of {years} years, which no policy can "
                        f"({RETENTION_YEARS[0]} to {RETENTION_YEARS[-1]})")  # fmt: skip
    elif t.purged_at >= t.closed_at:
        end = retention_end(t.closed_at, years if years is not None else RETENTION_YEARS[0])
        if end is None or t.purged_at < end:
            period = (
                f"its retention period of {years} years" if years is not None
                else "a year, the shortest retention period a policy gives (the tombstone "
                "does not record its own)"
            )  # fmt: skip
            ended = f" (at {_shown(end)})" if end is not None else ""
            problems.append(
                f"says it was purged at {_shown(t.purged_at)}, before {period} after it "
                f"closed at {_shown(t.closed_at)} ended{ended}"
            )
    if now is not None and t.purged_at > now:
        problems.append(
            f"says it was purged at {_shown(t.purged_at)}, after this verification's time "
            f"{_shown(now)} (a clock set wrong, or a purge judged at a time to come, which "
            "`privacy purge --at` took before decision 0060)"
        )
    return problems


def _shown(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _purged_findings(tombstone: Tombstone, now: datetime | None, where: str = "") -> list[Finding]:
    """``tombstone_problems`` as findings at the case (``where``: `` (line N)``)."""
    return [
        Finding(tombstone.case_id, None, f"purged, but its tombstone{where} {problem}")
        for problem in tombstone_problems(tombstone, now)
    ]


def _also_in_the_store(tombstone: Tombstone) -> Finding:
    return Finding(
        tombstone.case_id,
        None,
        f"purged at {_shown(tombstone.purged_at)} (its tombstone), but the store holds the "
        "case too: a purge deletes it (a tombstone written beside the case, or its id taken "
        "again by a case opened before complaintflow refused that)",
    )


def verify_store(
    store: Store,
    case_id: str | None = None,
    *,
    tally: Tally | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Verify one case or every case (a store that can stream its stored histories is
    verified from those, in one consistent read); ``tally`` counts the cases and events
    read and, for every case, the purged cases (their tombstones). Verifying every case
    checks each tombstone too (``tombstone_problems``; ``now``, the time of the
    verification, if given: ``Engine.verify`` gives its clock's) and that its case is
    not also in the store."""
    findings: list[Finding] = []
    purged: dict[str, Tombstone] = {}
    if case_id is None:
        purged = {t.case_id: t for t in store.tombstones()}
        if tally is not None:
            tally.purged += len(purged)
        for tombstone in purged.values():
            findings.extend(_purged_findings(tombstone, now))
    if case_id is not None and isinstance(store, ReadsStoredHistory):
        history = store.stored_history(case_id)
        if history is None:
            raise CaseNotFound(case_id)
        if tally is not None:
            tally.add(len(history.events))
        return verify_stored(history)
    if case_id is None and isinstance(store, ReadsStoredHistories):
        for history in store.stored_histories():
            if tally is not None:
                tally.add(len(history.events))
            if history.case_id in purged:
                findings.append(_also_in_the_store(purged[history.case_id]))
            findings.extend(verify_stored(history))
        return findings
    ids = [case_id] if case_id is not None else list(store.case_ids())
    for cid in ids:
        if cid in purged:
            findings.append(_also_in_the_store(purged[cid]))
        findings.extend(verify_case(store, cid, tally=tally))
    return findings


def verify_stored(history: StoredHistory) -> list[Finding]:
    """``verify_case`` on a case as the store keeps it: each event hashed as stored,
    the chain, the personal values, and the snapshot against a replay."""
    cid = history.case_id
    if history.snapshot is None:
        return [Finding(cid, None, "has events but no case row")]
    if not history.events:
        return [Finding(cid, None, "has no events")]
    links: list[tuple[str, int, str, str, bool]] = []
    events: list[Event] = []
    unreadable: list[Finding] = []
    link, keep = links.append, events.append
    for owner, seq, type_, at, actor, data_text, policy_version, prev_hash, hash_ in history.events:
        try:
            matches = (
                stored_hash(owner, seq, type_, at, actor, data_text, policy_version, prev_hash)
                == hash_
            )
            data = _json_value(data_text)
            if type(data) is not dict:
                raise TypeError("data is not a JSON object")
            when = _from_iso(at)
        except (TypeError, ValueError) as exc:
            unreadable.append(Finding(cid, seq, f"unreadable: {exc}"))
            matches = False
        else:
            keep(restored_event(owner, seq, type_, when, actor, data, policy_version, prev_hash,
                                hash_))  # fmt: skip
        link((owner, seq, prev_hash, hash_, matches))
    findings = _chain_findings(cid, links) + check_times(cid, events) + unreadable
    if unreadable:
        return findings
    text = history.snapshot
    if type(text) is not str:  # a row of another type (SQLite keeps what it is given)
        findings.append(Finding(cid, None, "the stored snapshot is unreadable: it is not text"))
        return findings
    # The usual case first: the snapshot as ``case_to_json`` wrote it, its personal
    # values read from its last field alone. Text equal to the replay's JSON proves
    # both (see ``_stored_personal``); anything else is checked again in full below,
    # so the findings are those of the full check.
    entries = _stored_personal(text)
    if entries is not None:
        written = text.encode("utf-8")
        fast = _against_snapshot(
            cid, events, entries, lambda replayed: case_to_json(replayed) == written
        )
        if not fast:
            return findings
    # Any other text (another serialiser's spacing or key order, say) is read as a case,
    # strictly: a key given twice, or one a case does not have, is an edit.
    try:
        as_stored = read_snapshot(cid, text)  # SnapshotUnreadable, as ``load`` would say
        stored = json.loads(text, object_pairs_hook=unique_keys)
        entries = [Personal(**entry) for entry in stored.get("personal", ())]
    except (TypeError, ValueError, AttributeError) as exc:
        findings.append(
            Finding(cid, None, f"the stored snapshot is unreadable: {first_problem(exc)}")
        )
        return findings
    parting, upto = check_head(cid, events, as_stored.version, as_stored.head_hash)
    return (
        findings
        + parting
        + _against_snapshot(cid, events, entries, lambda replayed: replayed == as_stored, upto)
    )


class KeyGivenTwice(ValueError):
    """A JSON object gives ``key`` twice (``unique_keys``)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members as a dict (``json.loads``'s ``object_pairs_hook``); a key
    given twice is refused with ``KeyGivenTwice``: readers differ on which value counts
    (the last for Python and pydantic, the first for others), so such a snapshot, export
    line or digest file does not say one thing."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise KeyGivenTwice(key)
            seen.add(key)
    return found


def first_problem(error: Exception) -> str:
    """What is wrong with a snapshot, in one line: its first problems, each with where
    it is, never a value read (``workflow.domain.snapshot_problems``)."""
    if isinstance(error, SnapshotUnreadable):
        return snapshot_problems_text(error.problems)
    if isinstance(error, ValidationError):
        return snapshot_problems_text(snapshot_problems(error))
    return str(error)


_from_iso = datetime.fromisoformat
#: The scanner ``json.loads`` runs (the standard decoder's settings), called directly.
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _json_value(text: str) -> Any:
    """``json.loads(text)``: the value, or the same error. Text that is exactly one JSON
    value (no whitespace around it, as every stored ``data`` is) is read by the decoder's
    scanner directly, skipping ``loads``'s wrappers; anything else goes through
    ``loads``."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError, TypeError):  # TypeError: bytes, say
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


_PERSONAL_FIELD = ',"personal":'


def _stored_personal(snapshot: str) -> list[Personal] | None:
    """The personal values of a snapshot in ``case_to_json``'s form, read from its last
    field (``Case.personal``) without parsing the rest; None when the text does not end
    with such a field. In that form, the last ``,"personal":`` is that field's key: inside
    a JSON string every ``"`` is escaped, and after the key come only the entries' own
    keys (``ref``, ``salt``, ``value``). Whether the text is in that form is proved by
    comparing it with the replay's JSON, which the caller does."""
    start = snapshot.rfind(_PERSONAL_FIELD)
    if start < 0:
        return None
    try:
        value, end = _scan(snapshot, start + len(_PERSONAL_FIELD))
        if end != len(snapshot) - 1 or snapshot[end] != "}" or type(value) is not list:
            return None
        return [Personal(**entry) for entry in value]
    except (StopIteration, TypeError, ValueError):
        return None


def state_at(events: Iterable[Event], when: datetime, vault: Vault | None = None) -> Case:
    """The case as it stood at ``when``: a replay of the events up to then, an event at
    exactly ``when`` included (with the personal values ``vault`` still holds).
    ``AuditFailure`` before the case opened, and on a history whose times go back (an
    event earlier than the one before it: ``check_times``), at any ``when``."""
    when = to_utc(when, "state_at(when)", field="when")
    history = list(events)
    back = check_times(history[0].case_id, history) if history else []
    if back:
        first = back[0]
        raise AuditFailure(
            first.case_id,
            first.seq,
            f"{first.problem}: the case's state at a time is not defined when its event "
            "times go back (run `complaintflow audit verify --store URL --case "
            f"{shlex.quote(first.case_id)}`)",
        )
    upto = [e for e in history if e.at <= when]
    if not upto:
        case_id = history[0].case_id if history else "?"
        opened = f" (opened {history[0].at.isoformat()})" if history else ""
        raise AuditFailure(case_id, None,
                           f"the case did not exist at {when.isoformat()}{opened}")  # fmt: skip
    return replay(upto, vault or {})


def _window(
    export: str, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """An export's time window in UTC, checked before anything is written: a naive
    time is ``InvalidTime`` naming it."""
    return (
        to_utc(since, f"{export}(since)", field="since") if since is not None else None,
        to_utc(until, f"{export}(until)", field="until") if until is not None else None,
    )


def _selected(
    store: Store,
    case_ids: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> Iterator[tuple[str, list[Event]]]:
    """Case by case (streamed): the events with ``since <= at < until``, if any."""
    for case_id in case_ids if case_ids is not None else store.case_ids():
        events = [
            event
            for event in store.events(case_id)
            if (since is None or event.at >= since) and (until is None or event.at < until)
        ]
        if events:
            yield case_id, events


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def export_jsonl(
    store: Store,
    out: IO[str],
    case_ids: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    personal: bool = True,
) -> int:
    """Write events as JSON Lines, streaming case by case: one header line; in an export
    of the whole store (no ``case_ids``; with a time window too), every purged case's
    tombstone (``{"purged": {...}}``, ``tombstone_json``), one a line; then for each
    case its personal values (``{"personal": {case_id, ref, salt, value}}`` lines, left
    out with ``personal=False`` for a pseudonymised export; erased values are gone) and
    its events (one per line, each with its hash); optionally only events with ``since
    <= at < until``; last, the end line (``{"end": {"cases": N, "events": N,
    "tombstones": N}}``), written only once everything before it was: a file without it
    is incomplete, and ``verify_export`` refuses it. The header's ``tombstones`` says
    whether the file holds every tombstone. Returns the number of events written. (An
    export of a time window holds whole chains only when the window starts at the
    cases' opening.)"""
    since, until = _window("export_jsonl", since, until)
    whole = case_ids is None
    header = {"format": EXPORT_FORMAT, "personal": personal, "tombstones": whole}
    out.write(json.dumps(header) + "\n")
    purged = 0
    if whole:
        for tombstone in store.tombstones():
            out.write(_dumps({"purged": tombstone_json(tombstone)}) + "\n")
            purged += 1
    written = cases = 0
    for case_id, events in _selected(store, case_ids, since, until):
        cases += 1
        if personal:
            for entry in store.load(case_id).personal:
                record = {"case_id": case_id, "ref": entry.ref, "salt": entry.salt,
                          "value": entry.value}  # fmt: skip
                out.write(_dumps({"personal": record}) + "\n")
        for event in events:
            out.write(_dumps(event.to_json()) + "\n")
            written += 1
    out.write(_dumps({"end": {"cases": cases, "events": written, "tombstones": purged}}) + "\n")
    return written


def tombstone_json(tombstone: Tombstone) -> dict[str, object]:
    """A tombstone as an export's ``purged`` line holds it: its fields, the times in
    UTC written as events' ``at`` are (``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``), and
    ``retention_years`` (null in a tombstone that does not record it)."""
    return {
        "case_id": tombstone.case_id,
        "version": tombstone.version,
        "head_hash": tombstone.head_hash,
        "opened_at": format_at(tombstone.opened_at.astimezone(UTC)),
        "closed_at": format_at(tombstone.closed_at.astimezone(UTC)),
        "purged_at": format_at(tombstone.purged_at.astimezone(UTC)),
        "purged_by": tombstone.purged_by,
        "reason": tombstone.reason,
        "retention_years": tombstone.retention_years,
    }


CSV_COLUMNS = ("case_id", "seq", "type", "at", "actor", "policy_version", "data", "prev_hash",
               "hash")  # fmt: skip


#: What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: text that would start a formula gets a
    leading apostrophe (other values are written as they are)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_csv(
    store: Store,
    out: IO[str],
    case_ids: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    personal: bool = True,
) -> int:
    """One row per event for a spreadsheet: the fields, ``data`` as compact JSON with
    the personal values in place of their references (``[erased]`` once erased; the
    references stay with ``personal=False``). A cell a spreadsheet would run as a
    formula (a case id starting with ``=``, say) starts with ``'`` (``spreadsheet_cell``)."""
    since, until = _window("export_csv", since, until)
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    for case_id, events in _selected(store, case_ids, since, until):
        vault = vault_of(store.load(case_id).personal) if personal else None
        for event in events:
            body = event.to_json()
            data = body["data"]
            if vault is not None:
                data = revealed(event, vault)
            body["data"] = json.dumps(data, ensure_ascii=False, sort_keys=True)
            writer.writerow([spreadsheet_cell(body[column]) for column in CSV_COLUMNS])
            written += 1
    return written


def revealed(event: Event, vault: Vault) -> dict[str, Any]:
    """The event's data with its personal values in place of their references (as the
    case's snapshot holds them; ``[erased]`` once erased), for people to read."""
    if event.type not in PERSONAL_PATHS:
        return event.data
    try:
        return unseal_data(event.type, event.data, vault)[0]
    except ValueError:
        return event.data  # not a reference: shown as stored (verify reports it)


def _export_lines(
    lines: Iterable[str], header_out: dict[str, object] | None = None
) -> Iterator[tuple[int, dict[str, object]]]:
    it = iter(lines)
    try:
        header = json.loads(next(it, "{}") or "{}")
    except ValueError:
        header = {}
    if not isinstance(header, dict) or header.get("format") not in READABLE_FORMATS:
        raise AuditFailure("?", None, f"not a complaintflow export ({EXPORT_FORMAT} expected)")
    if header_out is not None:
        header_out.update(header)
    for number, line in enumerate(it, start=2):
        if line.strip():
            try:
                # A key twice would be read as its last value here and as its first by
                # other readers: the line does not say one thing.
                obj = json.loads(line, object_pairs_hook=unique_keys)
            except ValueError as exc:
                raise AuditFailure("?", None, f"line {number} is not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise AuditFailure("?", None, f"line {number} is not a JSON object")
            yield number, obj


def _personal_line(number: int, obj: dict[str, object]) -> tuple[str, Personal]:
    record = obj["personal"]
    try:
        if not isinstance(record, dict):
            raise TypeError("expected an object")
        case_id = record["case_id"]
        if not isinstance(case_id, str):
            raise TypeError("case_id is not text")
        return case_id, Personal(ref=record["ref"], salt=record["salt"], value=record["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditFailure("?", None, f"line {number} is not a personal value: {exc}") from None


_TOMBSTONE_TEXT = ("case_id", "head_hash", "purged_by", "reason")
#: A tombstone line's keys in a /3 file, and in a /4 file (``retention_years`` added).
_TOMBSTONE_KEYS_3 = frozenset((*_TOMBSTONE_TEXT, "opened_at", "closed_at", "purged_at", "version"))
_TOMBSTONE_KEYS = _TOMBSTONE_KEYS_3 | {"retention_years"}
_HEAD_HASH = re.compile(r"[0-9a-f]{64}")


def _tombstone_line(number: int, obj: dict[str, object], format_: str = EXPORT_FORMAT) -> Tombstone:
    """A ``purged`` line read strictly: exactly the tombstone's keys (in a /3 file, those
    without ``retention_years``), each of its kind, the times in the form events' times
    are written in. A retention period no policy gives reads (verify reports it)."""
    try:
        if len(obj) != 1:
            others = sorted(key for key in obj if key != "purged")
            raise ValueError(f"a key other than 'purged' ({', '.join(map(repr, others))})")
        record = obj["purged"]
        if not isinstance(record, dict):
            raise ValueError("expected an object")
        keys = _TOMBSTONE_KEYS_3 if format_ == TOMBSTONES_FORMAT else _TOMBSTONE_KEYS
        unknown = sorted(set(record) - keys)
        if unknown:
            raise ValueError(f"an unknown key {unknown[0]!r}")
        missing = [key for key in sorted(keys) if key not in record]
        if missing:
            raise ValueError(f"{missing[0]} is missing")
        for key in _TOMBSTONE_TEXT:
            if not isinstance(record[key], str):
                raise ValueError(f"{key} is not text")
        version = record["version"]
        if type(version) is not int or version < 1:
            raise ValueError("version is not a whole number of at least 1")
        if not _HEAD_HASH.fullmatch(record["head_hash"]):
            raise ValueError("head_hash is not 64 lowercase hex digits")
        years = record.get("retention_years")
        if years is not None and type(years) is not int:
            raise ValueError("retention_years is not a whole number or null")
        return Tombstone(
            case_id=record["case_id"],
            version=version,
            head_hash=record["head_hash"],
            opened_at=_utc_text("opened_at", record["opened_at"]),
            closed_at=_utc_text("closed_at", record["closed_at"]),
            purged_at=_utc_text("purged_at", record["purged_at"]),
            purged_by=record["purged_by"],
            reason=record["reason"],
            retention_years=years,
        )
    except ValueError as exc:
        raise AuditFailure("?", None, f"line {number} is not a tombstone: {exc}") from None


_END_KEYS = ("cases", "events", "tombstones")


def _end_line(number: int, obj: dict[str, object]) -> dict[str, int]:
    """An ``end`` line read strictly: exactly its counts, each a whole number."""
    record = obj["end"]
    if (
        len(obj) != 1
        or not isinstance(record, dict)
        or sorted(record) != sorted(_END_KEYS)
        or not all(type(record[key]) is int and record[key] >= 0 for key in _END_KEYS)
    ):
        raise AuditFailure("?", None, f'line {number} is not an end line ({{"end": {{"cases": '
                           'N, "events": N, "tombstones": N}}, each a whole number)')  # fmt: skip
    return {key: record[key] for key in _END_KEYS}


def _utc_text(key: str, text: object) -> datetime:
    """A time written exactly as ``format_at`` writes a UTC time, read back."""
    at = None
    if isinstance(text, str):
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            at = None
    if at is None or at.utcoffset() is None or format_at(at.astimezone(UTC)) != text:
        raise ValueError(
            f"{key} {text!r} is not a UTC time written as YYYY-MM-DDTHH:MM:SS.ffffff+00:00"
        )
    return at.astimezone(UTC)


def _event_line(number: int, obj: dict[str, object]) -> Event:
    try:
        return event_from_json(obj)
    except (ValueError, TypeError) as exc:
        raise AuditFailure("?", None, f"line {number} is not an event: {exc}") from None


def read_jsonl(lines: Iterable[str]) -> Iterator[Event]:
    """Events from an export, validated as events (their hashes are not checked here);
    personal-value, tombstone and end lines are skipped."""
    for number, obj in _export_lines(lines):
        if "personal" not in obj and "purged" not in obj and "end" not in obj:
            yield _event_line(number, obj)


def verify_export(
    lines: Iterable[str],
    digest_heads: dict[str, tuple[int, str]] | None = None,
    *,
    closed: Mapping[str, datetime | None] | None = None,
    tally: Tally | None = None,
    now: datetime | None = None,
    unchecked: list[Unchecked] | None = None,
) -> list[Finding]:
    """Verify an exported file offline, without the database: every case's chain, its
    personal values against their references, and that its events replay. With the
    heads of a digest saved earlier (``{case_id: (seq, head hash)}``), each case of the
    digest must be in the file with that event, with that hash, or be purged, its
    tombstone in the file with that seq and hash: a file has no snapshots, so only a
    digest finds a chain rewritten consistently (every hash recomputed), a case cut
    short or a case left out. With a ``complaintflow-digest/2`` file's closing times
    (``closed``), a tombstone is held to when the digest says its case closed, as
    ``check_digest`` holds the store's; a case purged after steps the digest does not
    hold is an ``Unchecked`` (added to ``unchecked``, if given), as there. A tombstone
    line for a case whose events the file holds, or a second one for a case, is a
    finding naming its line, and so is each problem ``tombstone_problems`` finds in one
    (with ``now``, the time of the verification).
    A /4 file must end with its end line (else it is not a whole export: one that failed
    part-way, or a file cut short; ``AuditFailure`` says so), and hold what that line
    counts (else a finding about the file, case id ``FILE``: lines removed or added).
    ``tally`` counts the cases and events read, and the tombstones."""
    findings: list[Finding] = []
    unseen = dict(digest_heads) if digest_heads is not None else {}
    current: str | None = None
    batch: list[Event] = []
    vaults: dict[str, dict[str, Personal]] = {}
    header: dict[str, object] = {}
    #: Each purged case's tombstone and the line it is on.
    purged: dict[str, tuple[int, Tombstone]] = {}
    cases_begun = False
    #: What the file holds, to compare with its end line's counts; the end line's number.
    held = dict.fromkeys(_END_KEYS, 0)
    end: tuple[int, dict[str, int]] | None = None
    last = 1

    def close() -> None:
        if current is None:
            return
        held["cases"] += 1
        held["events"] += len(batch)
        if tally is not None:
            tally.add(len(batch))
        if current in purged:
            where = f"line {purged[current][0]}"
            problem = f"{where} is a tombstone of this case, but the file holds its events"
            findings.append(Finding(current, None, problem))
        findings.extend(check_chain(current, batch))
        findings.extend(check_times(current, batch))
        vault = vaults.pop(current, {})
        findings.extend(check_personal(current, vault.values()))
        if header.get("personal") is True:  # a pseudonymised export holds none
            findings.extend(check_values_present(current, batch, vault))
        try:
            replay(batch, vault)
        except AuditFailure as failure:
            findings.append(Finding(current, failure.seq, f"does not replay: {failure.reason}"))
        saved = unseen.pop(current, None)
        if saved is not None:
            findings.extend(_against_saved_head(current, batch, *saved))

    for number, obj in _export_lines(lines, header):
        format_ = str(header.get("format"))
        last = number
        if end is not None:
            raise AuditFailure("?", None, f"line {number} follows the end line (line {end[0]}): "
                               "an end line is the file's last")  # fmt: skip
        if "end" in obj:
            if format_ != EXPORT_FORMAT:
                raise AuditFailure("?", None, f"line {number} is an end line in a {format_} "
                                   f"file (end lines came with {EXPORT_FORMAT})")  # fmt: skip
            end = (number, _end_line(number, obj))
            continue
        if "purged" in obj:
            if format_ not in (TOMBSTONES_FORMAT, EXPORT_FORMAT):
                raise AuditFailure("?", None, f"line {number} is a tombstone in a "
                                   f"{format_} file (tombstones came with "
                                   f"{TOMBSTONES_FORMAT})")  # fmt: skip
            if cases_begun:
                problem = "a tombstone after the cases' lines (tombstones come first)"
                raise AuditFailure("?", None, f"line {number} is {problem}")
            tombstone = _tombstone_line(number, obj, format_)
            held["tombstones"] += 1
            first = purged.get(tombstone.case_id)
            if first is not None:
                problem = f"a second tombstone of this case (the first is line {first[0]})"
                findings.append(Finding(tombstone.case_id, None, f"line {number} is {problem}"))
                continue
            purged[tombstone.case_id] = (number, tombstone)
            findings.extend(_purged_findings(tombstone, now, f" (line {number})"))
            if tally is not None:
                tally.purged += 1
            continue
        cases_begun = True
        if "personal" in obj:
            case_id, entry = _personal_line(number, obj)
            vaults.setdefault(case_id, {})[entry.ref] = entry
            continue
        event = _event_line(number, obj)
        if event.case_id != current:
            close()
            current, batch = event.case_id, []
        batch.append(event)
    close()
    if header.get("format") == EXPORT_FORMAT:
        findings.extend(_check_end(end, held, last))
    every_tombstone = header.get("tombstones") is True
    for case_id in sorted(unseen):
        seq, head = unseen[case_id]
        if case_id in purged:
            number, tombstone = purged[case_id]
            saved = closed.get(case_id, _UNSAVED) if closed is not None else _UNSAVED
            found, note = against_saved_tombstone(tombstone, seq, head, saved, f" (line {number})")
            findings.extend(found)
            if note is not None and unchecked is not None:
                unchecked.append(note)
        elif every_tombstone:
            findings.append(Finding(case_id, None, _NOT_IN_A_WHOLE_FILE))
        else:
            findings.append(Finding(case_id, None, _NOT_IN_THE_FILE))
    return findings


def _check_end(
    end: tuple[int, dict[str, int]] | None, held: dict[str, int], last: int
) -> list[Finding]:
    """A /4 file ends with its end line (``AuditFailure`` if it does not), which counts
    what the file holds (a finding about the file if it does not)."""
    if end is None:
        raise AuditFailure("?", None, f"the file ends at line {last} without its end line: "
                           "the export is incomplete (it failed part-way, or the file was "
                           "cut short)")  # fmt: skip
    number, counted = end
    if counted != held:
        said, found = (
            ", ".join(f"{n[key]} {key if n[key] != 1 else key[:-1]}" for key in _END_KEYS)
            for n in (counted, held)
        )
        problem = f"the end line (line {number}) counts {said}, but the file holds {found}"
        return [Finding(FILE, None, f"{problem}: lines were removed or added")]
    return []


#: A case of the digest that a file without every tombstone (/1, /2, some cases) lacks.
_NOT_IN_THE_FILE = (
    "is in the saved digest but not in the file (an export of some cases or of a time "
    "window, a case purged since, or a file cut short)"
)
#: One that a file holding every tombstone of its store lacks: not purged by then.
_NOT_IN_A_WHOLE_FILE = (
    "is in the saved digest but not in the file, and no tombstone in it says it was purged "
    "(an export of a time window, a file cut short, or a case deleted from the store)"
)


def _against_saved_head(
    case_id: str, events: Sequence[Event], seq: int, head: str
) -> list[Finding]:
    """The event at ``seq`` of a case's exported chain against a digest's head."""
    at_seq = next((e for e in events if e.seq == seq), None)
    if at_seq is None:
        last = max((e.seq for e in events), default=0)
        if last < seq:
            return [Finding(case_id, seq, f"ends at seq {last}, before the saved digest's "
                                          f"seq {seq}: cut short, or events deleted")]  # fmt: skip
        return [Finding(case_id, seq, "differs from the saved digest: rewritten")]
    if at_seq.hash != head:
        return [Finding(case_id, seq, "differs from the saved digest: rewritten")]
    return []
