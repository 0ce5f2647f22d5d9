"""Verifying case histories: the hash chain, seq gaps, snapshots equal to replay; store
digests; the case as it stood at a time; JSON Lines export that verifies offline.

Everything here reads; nothing writes to the store.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from workflow.domain import Case
from workflow.errors import AuditFailure
from workflow.events import GENESIS, Event, event_from_json
from workflow.replay import replay
from workflow.store import Store

EXPORT_FORMAT = "complaintflow-events/1"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a history: where (case, seq) and what."""

    case_id: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f" event {self.seq}" if self.seq is not None else ""
        return f"case {self.case_id}{where}: {self.problem}"


def check_chain(case_id: str, events: Iterable[Event]) -> list[Finding]:
    """Problems in one case's events: an edited event (hash no longer matches its
    content), a broken link (deleted, inserted or reordered event), a seq gap."""
    findings: list[Finding] = []
    expected_prev = GENESIS
    expected_seq = 1
    for event in events:
        if event.case_id != case_id:
            findings.append(Finding(case_id, event.seq, f"belongs to case {event.case_id}"))
        if event.seq != expected_seq:
            findings.append(
                Finding(case_id, event.seq, f"seq {event.seq} where {expected_seq} was due")
            )
        if event.expected_hash() != event.hash:
            findings.append(Finding(case_id, event.seq, "content does not match its hash"))
        if event.prev_hash != expected_prev:
            findings.append(
                Finding(case_id, event.seq, "prev_hash does not match the previous event's hash")
            )
        expected_prev = event.hash
        expected_seq = event.seq + 1
    return findings


def verify_case(store: Store, case_id: str) -> list[Finding]:
    """The chain, and that the stored snapshot equals a replay of the events."""
    events = store.events(case_id)
    findings = check_chain(case_id, events)
    if not events:
        return [Finding(case_id, None, "has no events")]
    try:
        replayed = replay(events)
    except AuditFailure as failure:
        findings.append(Finding(case_id, failure.seq, f"does not replay: {failure.reason}"))
        return findings
    snapshot = store.load(case_id)
    if snapshot != replayed:
        findings.append(
            Finding(case_id, None, "the stored snapshot differs from a replay of its events")
        )
    return findings


def heads(store: Store) -> list[tuple[str, int, str]]:
    """``(case_id, version, head hash)`` of every case, sorted by case id."""
    out = []
    for case_id in store.case_ids():
        events = store.events(case_id)
        last = events[-1]
        out.append((case_id, last.seq, last.hash))
    return sorted(out)


def store_digest(store: Store) -> str:
    """SHA-256 over every case's head: ``case_id seq hash`` lines, sorted, newline-ended.
    Save it outside the database; verifying against it later proves that no case's
    history up to then was rewritten (a case's head hash commits to all its events)."""
    lines = "".join(f"{cid} {seq} {head}\n" for cid, seq, head in heads(store))
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


def check_digest(store: Store, digest_heads: dict[str, tuple[int, str]]) -> list[Finding]:
    """Each case in a saved digest must still have that event, with that hash."""
    findings = []
    for case_id, (seq, head) in sorted(digest_heads.items()):
        try:
            events = store.events(case_id)
        except LookupError:
            findings.append(Finding(case_id, None, "is in the saved digest but not in the store"))
            continue
        if len(events) < seq or events[seq - 1].hash != head:
            findings.append(Finding(case_id, seq, "differs from the saved digest: rewritten"))
    return findings


def verify_store(store: Store, case_id: str | None = None) -> list[Finding]:
    """Verify one case or every case."""
    ids = [case_id] if case_id is not None else list(store.case_ids())
    findings: list[Finding] = []
    for cid in ids:
        findings.extend(verify_case(store, cid))
    return findings


def state_at(events: Iterable[Event], when: datetime) -> Case:
    """The case as it stood at ``when``: a replay of the events up to then."""
    upto = [e for e in events if e.at <= when]
    if not upto:
        raise AuditFailure("?", None, f"the case did not exist at {when.isoformat()}")
    return replay(upto)


def _selected(
    store: Store,
    case_ids: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> Iterator[Event]:
    """Events case by case (streamed), those with ``since <= at < until``."""
    for case_id in case_ids if case_ids is not None else store.case_ids():
        for event in store.events(case_id):
            if (since is None or event.at >= since) and (until is None or event.at < until):
                yield event


def export_jsonl(
    store: Store,
    out: IO[str],
    case_ids: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write events as JSON Lines (one header line, then one event per line, each with
    its hash), streaming case by case; optionally only events with ``since <= at <
    until``. Returns the number of events written. (An export of a time window holds
    whole chains only when the window starts at the cases' opening.)"""
    out.write(json.dumps({"format": EXPORT_FORMAT}) + "\n")
    written = 0
    for event in _selected(store, case_ids, since, until):
        out.write(json.dumps(event.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
        written += 1
    return written


CSV_COLUMNS = ("case_id", "seq", "type", "at", "actor", "policy_version", "data", "prev_hash",
               "hash")  # fmt: skip


def export_csv(
    store: Store,
    out: IO[str],
    case_ids: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """One row per event for a spreadsheet: the fields, ``data`` as compact JSON."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    for event in _selected(store, case_ids, since, until):
        body = event.to_json()
        body["data"] = json.dumps(body["data"], ensure_ascii=False, sort_keys=True)
        writer.writerow([body[column] for column in CSV_COLUMNS])
        written += 1
    return written


def read_jsonl(lines: Iterable[str]) -> Iterator[Event]:
    """Events from an export, validated as events (their hashes are not checked here)."""
    it = iter(lines)
    header = json.loads(next(it, "{}") or "{}")
    if header.get("format") != EXPORT_FORMAT:
        raise AuditFailure("?", None, f"not a complaintflow export ({EXPORT_FORMAT} expected)")
    for number, line in enumerate(it, start=2):
        if line.strip():
            try:
                yield event_from_json(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise AuditFailure("?", None, f"line {number} is not an event: {exc}") from None


def verify_export(lines: Iterable[str]) -> list[Finding]:
    """Verify an exported file offline, without the database: every case's chain, and that
    its events replay."""
    findings: list[Finding] = []
    current: str | None = None
    batch: list[Event] = []

    def close() -> None:
        if current is None:
            return
        findings.extend(check_chain(current, batch))
        try:
            replay(batch)
        except AuditFailure as failure:
            findings.append(Finding(current, failure.seq, f"does not replay: {failure.reason}"))

    for event in read_jsonl(lines):
        if event.case_id != current:
            close()
            current, batch = event.case_id, []
        batch.append(event)
    close()
    return findings
