"""The in-memory store: for tests, simulations and embedding without persistence."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from workflow.domain import Case
from workflow.errors import CaseNotFound, ConcurrencyConflict, StoreError
from workflow.events import Event
from workflow.sla import Deadline
from workflow.store import Tombstone

#: How long a sweeper's claim on due deadlines holds before they are handed out again.
CLAIM_LEASE = timedelta(minutes=5)


class MemoryStore:
    """Holds each case's snapshot and events in dicts, behind one lock.

    Snapshots and events are frozen records and are shared, not copied; ``events()``
    returns a new list each time. Nothing survives the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, Case] = {}
        self._events: dict[str, list[Event]] = {}
        self._by_customer: dict[str, list[str]] = {}
        # Pending deadlines per case, and a heap on due time over them. Replaced or
        # cancelled deadlines stay in the heap and are dropped when they come up.
        self._deadlines: dict[str, dict[str, Deadline]] = {}
        # Heap entries: (when it may come up, tiebreak, case id, key, the due time it
        # was pushed for). A deadline handed to a sweeper comes up again only after
        # ``CLAIM_LEASE``, as in the SQL store, so one that is never swept cannot keep
        # the others from being handed out.
        self._due: list[tuple[datetime, int, str, str, datetime]] = []
        self._tiebreak = itertools.count()
        self._idempotency: dict[str, tuple[str, int]] = {}
        self._tombstones: list[Tombstone] = []

    def load(self, case_id: str) -> Case:
        try:
            return self._snapshots[case_id]
        except KeyError:
            raise CaseNotFound(case_id) from None

    def append(
        self,
        snapshot: Case,
        events: Sequence[Event],
        expected_version: int,
        deadlines: Sequence[Deadline] | None = None,
        idempotency_key: str | None = None,
        unchanged: Mapping[str, int] | None = None,
    ) -> None:
        check_append(snapshot, events, expected_version)
        case_id = snapshot.id
        with self._lock:
            if unchanged:
                for other, version in unchanged.items():
                    seen = self._snapshots.get(other)
                    if (seen.version if seen is not None else 0) != version:
                        raise ConcurrencyConflict(other, version, seen.version if seen else None)
            current = self._snapshots.get(case_id)
            found = current.version if current is not None else 0
            if found != expected_version:
                raise ConcurrencyConflict(case_id, expected_version, found)
            if idempotency_key is not None:
                if idempotency_key in self._idempotency:
                    raise ConcurrencyConflict(case_id, expected_version, None)
                self._idempotency[idempotency_key] = (case_id, snapshot.version)
            if current is None:
                self._events[case_id] = list(events)
                self._by_customer.setdefault(snapshot.customer.id, []).append(case_id)
            else:
                self._events[case_id].extend(events)
            self._snapshots[case_id] = snapshot
            if deadlines is not None:
                self._replace_deadlines(case_id, deadlines)

    def _replace_deadlines(self, case_id: str, deadlines: Sequence[Deadline]) -> None:
        before = self._deadlines.get(case_id, {})
        if not deadlines:
            self._deadlines.pop(case_id, None)
            return
        after = {d.key: d for d in deadlines}
        self._deadlines[case_id] = after
        for key, deadline in after.items():
            old = before.get(key)
            if old is None or old.due_at != deadline.due_at:
                due = deadline.due_at
                heapq.heappush(self._due, (due, next(self._tiebreak), case_id, key, due))

    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Deadline]:
        found: list[Deadline] = []
        with self._lock:
            while self._due and self._due[0][0] <= now and len(found) < limit:
                _, _, case_id, key, due_at = heapq.heappop(self._due)
                current = self._deadlines.get(case_id, {}).get(key)
                if current is not None and current.due_at == due_at:
                    found.append(current)
            lease_ends = now + CLAIM_LEASE
            for d in found:  # still pending until the case's next append; claimed till then
                entry = (lease_ends, next(self._tiebreak), d.case_id, d.key, d.due_at)
                heapq.heappush(self._due, entry)
        return found

    def find_idempotent(self, key: str) -> tuple[str, int] | None:
        return self._idempotency.get(key)

    def pending_deadlines(self, case_id: str) -> list[Deadline]:
        return sorted(self._deadlines.get(case_id, {}).values(), key=lambda d: d.due_at)

    def events(self, case_id: str, after_seq: int = 0) -> list[Event]:
        try:
            stored = self._events[case_id]
        except KeyError:
            raise CaseNotFound(case_id) from None
        return stored[after_seq:]

    def customer_cases(self, customer_id: str) -> list[Case]:
        return [self._snapshots[cid] for cid in self._by_customer.get(customer_id, ())]

    def case_ids(self) -> Iterator[str]:
        return iter(list(self._snapshots))

    def purge(self, tombstone: Tombstone) -> None:
        case_id = tombstone.case_id
        with self._lock:
            current = self._snapshots.get(case_id)
            found = current.version if current is not None else None
            if current is None or found != tombstone.version:
                raise ConcurrencyConflict(case_id, tombstone.version, found)
            del self._snapshots[case_id]
            del self._events[case_id]
            self._deadlines.pop(case_id, None)  # heap entries are dropped as they come up
            ids = self._by_customer[current.customer.id]
            ids.remove(case_id)
            if not ids:
                del self._by_customer[current.customer.id]
            self._idempotency = {
                key: value for key, value in self._idempotency.items() if value[0] != case_id
            }
            self._tombstones.append(tombstone)

    def tombstones(self) -> Iterator[Tombstone]:
        return iter(list(self._tombstones))

    def scrub(self) -> None:
        """Nothing to do: what is deleted from memory is unreachable."""

    def close(self) -> None:
        """Nothing to release."""


def check_append(snapshot: Case, events: Sequence[Event], expected_version: int) -> None:
    """Refuse an append whose events do not continue the case at ``expected_version``
    or whose snapshot is not at the last event. Every adapter calls this first."""
    if not events:
        raise StoreError(f"append to case {snapshot.id} with no events")
    for offset, event in enumerate(events, start=1):
        if event.case_id != snapshot.id:
            raise StoreError(f"event for case {event.case_id} appended to case {snapshot.id}")
        if event.seq != expected_version + offset:
            raise StoreError(
                f"case {snapshot.id}: event seq {event.seq}, expected {expected_version + offset}"
            )
    if snapshot.version != events[-1].seq:
        raise StoreError(
            f"case {snapshot.id}: snapshot version {snapshot.version} is not the last event's "
            f"seq {events[-1].seq}"
        )
