"""The store port: what the engine needs from storage. Adapters implement it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from workflow.domain import Case
from workflow.events import Event
from workflow.query import AtRisk, CaseQuery, Listed, Position
from workflow.sla import Deadline


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of a case purged at the end of its retention period: enough to show
    that it existed, how far its history went (``version``, ``head_hash``: a saved store
    digest still verifies) and when and why it went. No personal data, no content.
    ``retention_years`` is the retention period the case's policy gave, by which it was
    judged purgeable (None in a tombstone written before it was recorded: decision
    0054), so that a verifier without the policy can check ``purged_at`` against it."""

    case_id: str
    version: int
    head_hash: str
    opened_at: datetime
    closed_at: datetime
    purged_at: datetime
    purged_by: str
    reason: str
    retention_years: int | None = None


#: Why a purge kept a case its retention scan met (``KeptCase.reason``).
KeptReason = Literal["changed", "unreadable", "policy not given"]


@dataclass(frozen=True, slots=True)
class KeptCase:
    """A case ``Engine.purge_expired`` kept, and why (``reason``): ``"changed"`` (it
    changed while the purge ran, or the database rolled the purge back: the next purge
    judges it again), ``"unreadable"`` (its stored snapshot does not read back, so its
    retention cannot be judged) or ``"policy not given"`` (a closed case whose policy
    the engine was not given: it is never judged by another policy's period).
    ``detail`` says it in one line of words, with what to do; no stored value."""

    case_id: str
    reason: KeptReason
    detail: str


class Purged(list[Tombstone]):
    """``Engine.purge_expired``'s answer: a list of the tombstones of the cases purged
    (or, in a dry run, that would be), as the answer was before decision 0065, and
    (``kept``) the cases it kept, by case id. A copy or slice of it is a plain list,
    without ``kept``."""

    kept: tuple[KeptCase, ...]

    def __init__(self, tombstones: Iterable[Tombstone] = (), kept: Iterable[KeptCase] = ()) -> None:
        super().__init__(tombstones)
        self.kept = tuple(sorted(kept, key=lambda k: k.case_id))


#: Why a sweep skipped a case with a deadline due (``SkippedCase.reason``).
SkipReason = Literal["changed", "unreadable", "policy not given", "refused"]


@dataclass(frozen=True, slots=True)
class SkippedCase:
    """A case ``Engine.tick`` skipped although a deadline of it was due, and why
    (``reason``): ``"changed"`` (another worker or an agent changed it first: whoever
    won fires its deadlines, or the next tick does), ``"unreadable"`` (its stored
    snapshot does not read back), ``"policy not given"`` (the engine was not given the
    policy it runs under) or ``"refused"`` (the store or a check refused the sweep's
    append). Its deadlines come up again once the sweep's claim lapses (``CLAIM_LEASE``).
    ``detail`` says it in one line of words; no stored value."""

    case_id: str
    reason: SkipReason
    detail: str


class Fired(list[Event]):
    """``Engine.tick``'s answer: a list of the events fired, as the answer was before
    decision 0066, and (``skipped``) the cases with a deadline due that it skipped, by
    case id. A copy or slice of it is a plain list, without ``skipped``."""

    skipped: tuple[SkippedCase, ...]

    def __init__(self, events: Iterable[Event] = (), skipped: Iterable[SkippedCase] = ()) -> None:
        super().__init__(events)
        self.skipped = tuple(sorted(skipped, key=lambda s: s.case_id))


def retention_end(closed_at: datetime, years: int) -> datetime | None:
    """When a case closed at ``closed_at`` may be purged under a retention period of
    ``years``: that many calendar years later (29 February counts to 28 February); None
    past the year 9999, which no time reaches."""
    year = closed_at.year + years
    if year > 9999:
        return None
    try:
        return closed_at.replace(year=year)
    except ValueError:
        return closed_at.replace(year=year, day=28)


@runtime_checkable
class Store(Protocol):
    """Where cases and their events live.

    ``append`` is atomic: the events and the new snapshot are written together or not at
    all, and only if the stored case is still at ``expected_version`` (0 for a new case);
    otherwise it raises ``ConcurrencyConflict`` and writes nothing.
    """

    def load(self, case_id: str) -> Case:
        """The case's latest snapshot (``Case.version`` is its last event's seq).
        Raises ``CaseNotFound``, and ``SnapshotUnreadable`` when the stored snapshot
        does not read back as this case (``workflow.domain.read_snapshot``)."""
        ...

    def append(
        self,
        snapshot: Case,
        events: Sequence[Event],
        expected_version: int,
        deadlines: Sequence[Deadline] | None = None,
        idempotency_key: str | None = None,
        unchanged: Mapping[str, int] | None = None,
        idempotency_fingerprint: str | None = None,
    ) -> None:
        """Store ``events`` (seq ``expected_version + 1`` onwards) and ``snapshot`` and,
        unless ``deadlines`` is None, replace the case's pending SLA deadlines with them,
        and record ``idempotency_key`` with ``idempotency_fingerprint`` (the command's
        fingerprint, text of at most 200 characters; refused with
        ``ConcurrencyConflict`` if the key is taken, whatever the fingerprint), all in
        one atomic write. ``unchanged`` (None: nothing to check): the customer's other
        cases (id -> version) the decision read (a customer's cumulative cap reads all
        their cases), which must still be at those versions, and the customer
        (``snapshot.customer.id``) must have no case but these and this one (a case
        opened since the read is one it did not count; ``{}``: no other case at all),
        else ``ConcurrencyConflict``."""
        ...

    def find_idempotent(self, key: str) -> tuple[str, int, str | None] | None:
        """The case id and version the command with this idempotency key produced, and
        the fingerprint recorded with the key (None if none was)."""
        ...

    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Deadline]:
        """Pending deadlines due at or before ``now``, soonest first, at most ``limit``:
        found by an index on due time, never by loading every open case."""
        ...

    def pending_deadlines(self, case_id: str) -> list[Deadline]:
        """The case's pending deadlines as last stored."""
        ...

    def events(self, case_id: str, after_seq: int = 0) -> list[Event]:
        """The case's events with seq > ``after_seq``, in order. Raises ``CaseNotFound``."""
        ...

    def customer_cases(self, customer_id: str) -> list[Case]:
        """The latest snapshot of every case of this customer (for cumulative caps and
        erasure); ``SnapshotUnreadable`` for the first whose snapshot does not read back."""
        ...

    def case_ids(self) -> Iterator[str]:
        """Every case id in the store, oldest first."""
        ...

    def purge(self, tombstone: Tombstone) -> None:
        """Delete the case (snapshot, events, deadlines, idempotency keys) and keep
        ``tombstone`` instead, in one atomic write, only if the case is still at
        ``tombstone.version`` (else ``ConcurrencyConflict``, nothing written)."""
        ...

    def tombstones(self) -> Iterator[Tombstone]:
        """Every purged case's tombstone, oldest purge first."""
        ...

    def scrub(self) -> None:
        """Physically remove what erasures and purges deleted or overwrote (old row
        versions, free pages, log files), so it can no longer be read from the files.
        May take a while on a large database; nothing else changes."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


#: An event as the store keeps it, a plain tuple (one is built for every event a
#: whole-store verify reads): ``(case_id, seq, type, at, actor, data, policy_version,
#: prev_hash, hash)``, with ``at`` as its canonical text (``workflow.events.format_at``)
#: and ``data`` as the canonical JSON text it was written as
#: (``workflow.events.canonical_json``), neither parsed yet.
StoredEvent = tuple[str, int, str, str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """A case as the store keeps it: its snapshot's JSON text (None when the case row is
    missing) and its events, oldest first."""

    case_id: str
    snapshot: str | None
    events: list[StoredEvent]


@runtime_checkable
class ReadsStoredHistories(Protocol):
    """An optional capability: stream every case's stored form at once, for verifying
    a whole store fast (``workflow.audit.verify_store`` uses it when the store has it)."""

    def stored_histories(self) -> Iterator[StoredHistory]:
        """Every case, in one consistent read, case by case, with bounded memory."""
        ...


@runtime_checkable
class ReadsStoredHistory(Protocol):
    """An optional capability: one case's stored form, so that verifying one case checks
    its snapshot as stored (text) rather than as ``load`` reads it
    (``workflow.audit.verify_store(store, case_id)`` uses it when the store has it)."""

    def stored_history(self, case_id: str) -> StoredHistory | None:
        """The case's snapshot text and events in one consistent read; None if the store
        holds neither."""
        ...


@runtime_checkable
class FindsCases(Protocol):
    """An optional capability: find cases by their key fields, and the cases at risk of
    an SLA deadline, by indexed queries (``Engine.find_cases`` and
    ``Engine.cases_at_risk`` use it when the store has it; without it they load every
    case through ``Store``). docs/decisions/0037-finding-cases.md."""

    def find_cases(self, query: CaseQuery, after: Position | None, limit: int) -> Sequence[Listed]:
        """The latest snapshot of the cases ``query`` matches (``CaseQuery.matches``),
        in the order they were opened: by ``(opened_at, id)``, ids compared by code
        point; only those after ``after`` (an ``(opened_at, id)`` position, which no
        longer needs to be a case's), at most ``limit``. A case whose snapshot does not
        read back is an ``UnreadableCase`` in its place (with its ``opened_at``: a
        store finds cases by fields it keeps apart from the snapshot), so that the page
        lists it rather than fails (decision 0054); a store that raises
        ``SnapshotUnreadable`` instead fails the page."""
        ...

    def cases_at_risk(self, until: datetime, limit: int) -> Sequence[AtRisk]:
        """Every case that is not closed or withdrawn and has a pending deadline due at
        or before ``until`` (``pending_deadlines``; one past due that no sweep fired
        yet included), once, with its soonest such deadline (ties: by key); soonest
        first, then by case id; at most ``limit``. A case whose snapshot does not read
        back is an ``UnreadableAtRisk`` in its place, so that the list names it rather
        than fails (decision 0060); a store that raises ``SnapshotUnreadable`` instead
        fails the list."""
        ...
