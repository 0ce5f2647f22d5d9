"""The in-memory store: for tests, simulations and embedding without persistence."""

from __future__ import annotations

import binascii
import bisect
import heapq
import itertools
import json
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from workflow.checklist import FINAL_STATES
from workflow.domain import Case
from workflow.errors import CaseNotFound, ConcurrencyConflict, StoreError
from workflow.events import GENESIS, Event, canonical_json, restored_event
from workflow.query import (
    CaseAtRisk,
    CaseQuery,
    Position,
    at_risk_order,
    escalated_to,
    position,
    soonest,
)
from workflow.sla import Deadline
from workflow.store import Tombstone

#: How long a sweeper's claim on due deadlines holds before they are handed out again.
CLAIM_LEASE = timedelta(minutes=5)


class MemoryStore:
    """Holds each case's snapshot and events in dicts, behind one lock.

    Snapshots are frozen records and are shared, not copied. Events are packed into one
    ``bytes`` per case (see ``_Histories``), a third of the memory of ``Event`` records
    and nothing for the garbage collector to walk; ``events()`` builds new ``Event``
    records each time, as a database store does. Nothing survives the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, Case] = {}
        self._events = _Histories()
        self._by_customer: dict[str, list[str]] = {}
        # Pending deadlines per case, and a heap on due time over them. Replaced or
        # cancelled deadlines stay in the heap and are dropped when they come up.
        self._deadlines: dict[str, dict[str, Deadline]] = {}
        # Heap entries: (when it may come up, tiebreak, case id, key, the due time it
        # was pushed for). A deadline handed to a sweeper comes up again only after
        # ``CLAIM_LEASE``, as in the SQL store, so one that is never swept cannot keep
        # the others from being handed out.
        self._due: list[tuple[datetime, int, str, str, datetime]] = []
        # Deadlines handed out and not yet written again: an append that writes one
        # anew releases its claim (as the SQL store's rewrite of the rows does).
        self._claimed: set[tuple[str, str]] = set()
        self._tiebreak = itertools.count()
        # key -> (case id, version, fingerprint or None)
        self._idempotency: dict[str, tuple[str, int, str | None]] = {}
        self._tombstones: list[Tombstone] = []
        #: The purged cases' ids: an append of a new case with one conflicts.
        self._purged: set[str] = set()
        # ``find_cases``'s indexes: made by the first query (until then an append pays
        # nothing for them), then kept up to date from the ids appended to since.
        self._index: _CaseIndex | None = None

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
        idempotency_fingerprint: str | None = None,
    ) -> None:
        check_append(snapshot, events, expected_version)
        case_id = snapshot.id
        with self._lock:
            if unchanged is not None:
                listed = (*self._by_customer.get(snapshot.customer.id, ()), *unchanged)
                stored = {c: self._snapshots[c].version for c in listed if c in self._snapshots}
                check_unchanged(case_id, unchanged, stored)
            current = self._snapshots.get(case_id)
            found = current.version if current is not None else 0
            if found != expected_version:
                raise ConcurrencyConflict(case_id, expected_version, found)
            if current is None and case_id in self._purged:  # a tombstone keeps the id
                raise ConcurrencyConflict(case_id, expected_version, None)
            if idempotency_key is not None and idempotency_key in self._idempotency:
                raise ConcurrencyConflict(case_id, expected_version, None)
            packed = self._events.pack(case_id, events, expected_version)  # may refuse data
            if idempotency_key is not None:
                spent = (case_id, snapshot.version, idempotency_fingerprint)
                self._idempotency[idempotency_key] = spent
            self._events.extend(case_id, packed)
            if current is None:
                self._by_customer.setdefault(snapshot.customer.id, []).append(case_id)
            self._snapshots[case_id] = snapshot
            if deadlines is not None:
                self._replace_deadlines(case_id, deadlines)
            if self._index is not None:
                self._index.touched.add(case_id)

    def _replace_deadlines(self, case_id: str, deadlines: Sequence[Deadline]) -> None:
        before = self._deadlines.get(case_id, {})
        claimed = {key for key in before if (case_id, key) in self._claimed}
        self._claimed.difference_update((case_id, key) for key in claimed)
        if not deadlines:
            self._deadlines.pop(case_id, None)
            return
        after = {d.key: d for d in deadlines}
        self._deadlines[case_id] = after
        for key, deadline in after.items():
            old = before.get(key)
            if old is None or old.due_at != deadline.due_at or key in claimed:
                due = deadline.due_at
                heapq.heappush(self._due, (due, next(self._tiebreak), case_id, key, due))

    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Deadline]:
        found: list[Deadline] = []
        with self._lock:
            seen: set[tuple[str, str]] = set()  # a released claim leaves two entries
            while self._due and self._due[0][0] <= now and len(found) < limit:
                _, _, case_id, key, due_at = heapq.heappop(self._due)
                current = self._deadlines.get(case_id, {}).get(key)
                if current is not None and current.due_at == due_at and (case_id, key) not in seen:
                    seen.add((case_id, key))
                    found.append(current)
            self._claimed.update(seen)
            lease_ends = now + CLAIM_LEASE
            for d in found:  # still pending until the case's next append; claimed till then
                entry = (lease_ends, next(self._tiebreak), d.case_id, d.key, d.due_at)
                heapq.heappush(self._due, entry)
        return found

    def find_idempotent(self, key: str) -> tuple[str, int, str | None] | None:
        return self._idempotency.get(key)

    def find_cases(self, query: CaseQuery, after: Position | None, limit: int) -> list[Case]:
        """By the index of the key field ``query`` names fewest cases for (when those are
        few among the cases in its ``opened_at`` range), else by walking the cases in
        page order from ``after``, stopping at ``limit``."""
        with self._lock:
            index = self._index
            if index is None:
                index = self._index = _CaseIndex(self._snapshots)
            else:
                index.refresh(self._snapshots)
            return index.find(self._snapshots, query, after, limit)

    def cases_at_risk(self, until: datetime, limit: int) -> list[CaseAtRisk]:
        """From the pending deadlines (only cases that have some are looked at)."""
        found = []
        with self._lock:
            for case_id, pending in self._deadlines.items():
                due = soonest(d for d in pending.values() if d.due_at <= until)
                if due is None:
                    continue
                case = self._snapshots[case_id]
                if case.state not in FINAL_STATES:
                    found.append(CaseAtRisk(case, due))
        return heapq.nsmallest(limit, found, key=at_risk_order)

    def pending_deadlines(self, case_id: str) -> list[Deadline]:
        return sorted(self._deadlines.get(case_id, {}).values(), key=lambda d: d.due_at)

    def events(self, case_id: str, after_seq: int = 0) -> list[Event]:
        with self._lock:  # a consistent pair of the packed history and its odd events
            return self._events.read(case_id, after_seq)

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
            self._events.drop(case_id)
            for key in self._deadlines.pop(case_id, {}):  # heap entries dropped as they come up
                self._claimed.discard((case_id, key))
            ids = self._by_customer[current.customer.id]
            ids.remove(case_id)
            if not ids:
                del self._by_customer[current.customer.id]
            self._idempotency = {
                key: value for key, value in self._idempotency.items() if value[0] != case_id
            }
            self._tombstones.append(tombstone)
            self._purged.add(case_id)
            if self._index is not None:
                self._index.drop(current)

    def tombstones(self) -> Iterator[Tombstone]:
        return iter(list(self._tombstones))

    def scrub(self) -> None:
        """Nothing to do: what is deleted from memory is unreachable."""

    def close(self) -> None:
        """Nothing to release."""


#: The key fields ``_CaseIndex`` indexes, as ``CaseQuery.equalities`` names them.
_INDEXED = ("state", "customer_id", "assignee", "escalated_to", "channel", "category")
_NOT_INDEXED: tuple[str | None, ...] = (None,) * len(_INDEXED)


def _key_fields(case: Case) -> tuple[str | None, ...]:
    return (
        case.state, case.customer.id, case.assignee, escalated_to(case), case.channel.value,
        case.category,
    )  # fmt: skip


class _CaseIndex:
    """The memory store's indexes for ``find_cases``: every case's position in page
    order, ``(opened_at, id)``, sorted (``opened_at`` never changes), and the ids of the
    cases holding each value of each key field (None is not indexed: no query asks for
    it). An append records only the case's id in ``touched``; the next query indexes
    those cases anew. The store's lock guards it."""

    def __init__(self, snapshots: Mapping[str, Case]) -> None:
        self.order: list[Position] = sorted(position(case) for case in snapshots.values())
        self.ids: dict[str, dict[str, set[str]]] = {name: {} for name in _INDEXED}
        self.values: dict[str, tuple[str | None, ...]] = {}
        self.touched: set[str] = set()
        for case in snapshots.values():
            self._index(case, _NOT_INDEXED)

    def _index(self, case: Case, old: tuple[str | None, ...]) -> None:
        new = _key_fields(case)
        for name, was, now in zip(_INDEXED, old, new, strict=True):
            if was == now:
                continue
            if was is not None:
                self._remove(name, was, case.id)
            if now is not None:
                self.ids[name].setdefault(now, set()).add(case.id)
        self.values[case.id] = new

    def _remove(self, name: str, value: str, case_id: str) -> None:
        holders = self.ids[name][value]
        holders.discard(case_id)
        if not holders:
            del self.ids[name][value]

    def refresh(self, snapshots: Mapping[str, Case]) -> None:
        """Index the cases appended to since the last query."""
        opened = []
        for case_id in self.touched:
            case = snapshots.get(case_id)
            if case is None:  # pragma: no cover - a purge drops it from ``touched``
                continue
            old = self.values.get(case_id)
            if old is None:
                opened.append(position(case))
            self._index(case, old or _NOT_INDEXED)
        self.touched.clear()
        if opened:
            self.order.extend(opened)
            self.order.sort()  # the sorted run and the new ones: merged, not re-sorted

    def drop(self, case: Case) -> None:
        """Forget a purged case."""
        self.touched.discard(case.id)
        old = self.values.pop(case.id, None)
        if old is None:
            return
        where = bisect.bisect_left(self.order, position(case))
        del self.order[where]
        for name, value in zip(_INDEXED, old, strict=True):
            if value is not None:
                self._remove(name, value, case.id)

    def find(
        self,
        snapshots: Mapping[str, Case],
        query: CaseQuery,
        after: Position | None,
        limit: int,
    ) -> list[Case]:
        order = self.order
        start = 0 if after is None else bisect.bisect_right(order, after)
        if query.opened_since is not None:
            start = max(start, bisect.bisect_left(order, (query.opened_since, "")))
        stop = len(order)
        if query.opened_before is not None:
            stop = bisect.bisect_left(order, (query.opened_before, ""))
        # Each filter on an indexed field, as the sets of ids holding the values it asks
        # for; the one naming fewest cases is read if they are few beside the range.
        groups = [
            [self.ids[name].get(value, set()) for value in values]
            for name, values in (
                *((("state", sorted(query.states)),) if query.states is not None else ()),
                *((name, [value]) for name, value in query.equalities().items()),
            )
        ]
        fewest = min(groups, key=lambda group: sum(map(len, group)), default=None)
        if fewest is not None and sum(map(len, fewest)) * 4 < stop - start:
            cases = (snapshots[case_id] for ids in fewest for case_id in ids)
            found = (
                case
                for case in cases
                if query.matches(case) and (after is None or position(case) > after)
            )
            return heapq.nsmallest(limit, found, key=position)
        out: list[Case] = []
        for at in range(start, stop):  # (islice would step through those before start)
            case = snapshots[order[at][1]]
            if query.matches(case):
                out.append(case)
                if len(out) == limit:
                    break
        return out


#: A packed event: its time (µs since 1970-01-01 UTC), the ids of its type and policy
#: version in the text table, the UTF-8 lengths of its actor and data; then the actor,
#: the data (its canonical JSON, as hashed) and the hash's 32 bytes.
_HEAD = struct.Struct("<qIIHI")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: What stands in the packed history for an event kept whole.
_EMPTY_RECORD = _HEAD.pack(0, 0, 0, 0, 0) + bytes(32)


class _Histories:
    """Every case's events, packed into one ``bytes`` per case (see ``_HEAD``): the
    case id and seq are where an event is kept, ``prev_hash`` is the hash before it, and
    types and policy versions (few, and not personal) are kept once in a table.

    An event that would not come back exactly from that form (a broken chain, a hash
    that is not 64 lower-case hex digits, a time not in UTC, data JSON would change,
    anything but text where text belongs: see ``pack`` and ``_record``) is kept whole
    beside it as given, so a store hands back exactly what it was given, for
    ``audit.verify`` to report."""

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}
        self._odd: dict[tuple[str, int], Event] = {}
        self._texts: list[str] = []
        self._text_ids: dict[str, int] = {}

    def _text_id(self, text: str) -> int | None:
        """The id of ``text`` in the table (added if new); None if it is not text."""
        found = self._text_ids.get(text)
        if found is None:
            if type(text) is not str:
                return None
            found = self._text_ids[text] = len(self._texts)
            self._texts.append(text)
        return found

    def _head_hash(self, case_id: str, version: int) -> str:
        if version == 0:
            return GENESIS
        odd = self._odd.get((case_id, version)) if self._odd else None
        return odd.hash if odd is not None else self._packed[case_id][-32:].hex()

    def pack(
        self, case_id: str, events: Sequence[Event], version: int
    ) -> tuple[bytes, dict[int, Event]]:
        """The events (continuing the case at ``version``) packed, and those kept whole;
        ``StoreError`` for data that is not JSON. Changes nothing but the text table."""
        parts: list[bytes] = []
        odd: dict[int, Event] = {}
        prev = self._head_hash(case_id, version)
        for event in events:
            written = event_data_text(event)
            text: str | None = written
            if event.data_text is None and json.loads(written) != event.data:
                text = None  # tuples, keys that are not text...: kept whole
            record = None
            if text is not None and event.prev_hash == prev:
                try:
                    record = self._record(event, text)
                except (TypeError, ValueError):  # unhashable, or text UTF-8 cannot encode
                    record = None
            if record is None:  # kept whole: what would not come back exactly
                odd[event.seq] = event
                record = _EMPTY_RECORD
            parts.append(record)
            prev = event.hash
        return b"".join(parts), odd

    def _record(self, event: Event, data_text: str) -> bytes | None:
        """The packed record of an event that comes back from it exactly; None for one
        that would not (its hash, time or actor)."""
        digest = _digest(event.hash)
        at = event.at
        if digest is None or type(at) is not datetime or at.tzinfo is not UTC:
            return None
        if type(event.actor) is not str:
            return None
        actor = event.actor.encode()
        type_id = self._text_id(event.type)
        version_id = self._text_id(event.policy_version)
        if len(actor) > 0xFFFF or type_id is None or version_id is None:
            return None
        data = data_text.encode()
        micros = (at - _EPOCH) // _MICROSECOND
        return (
            _HEAD.pack(micros, type_id, version_id, len(actor), len(data)) + actor + data + digest
        )

    def extend(self, case_id: str, packed: tuple[bytes, dict[int, Event]]) -> None:
        records, odd = packed
        self._packed[case_id] = self._packed.get(case_id, b"") + records
        for seq, event in odd.items():
            self._odd[(case_id, seq)] = event

    def read(self, case_id: str, after_seq: int = 0) -> list[Event]:
        try:
            packed = self._packed[case_id]
        except KeyError:
            raise CaseNotFound(case_id) from None
        texts, odd, head = self._texts, self._odd, _HEAD
        out: list[Event] = []
        offset, seq, prev = 0, 0, GENESIS
        while offset < len(packed):
            micros, type_id, version_id, actor_len, data_len = head.unpack_from(packed, offset)
            offset += head.size
            seq += 1
            whole = odd.get((case_id, seq)) if odd else None
            if whole is not None:
                offset += actor_len + data_len + 32
                if seq > after_seq:
                    out.append(whole)
                prev = whole.hash
                continue
            actor = packed[offset : offset + actor_len].decode()
            offset += actor_len
            data = packed[offset : offset + data_len]
            offset += data_len
            digest = packed[offset : offset + 32].hex()
            offset += 32
            if seq > after_seq:
                at = _EPOCH + timedelta(microseconds=micros)
                out.append(
                    restored_event(
                        case_id,
                        seq,
                        texts[type_id],
                        at,
                        actor,
                        json.loads(data),
                        texts[version_id],
                        prev,
                        digest,
                    )
                )
            prev = digest
        return out

    def drop(self, case_id: str) -> None:
        del self._packed[case_id]
        for key in [key for key in self._odd if key[0] == case_id]:
            del self._odd[key]


def _digest(text: str) -> bytes | None:
    """The 32 bytes of a SHA-256 hex digest, if ``text`` is exactly one (lower case)."""
    if len(text) != 64:
        return None
    try:
        raw = binascii.a2b_hex(text)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.hex() == text else None


def event_data_text(event: Event) -> str:
    """The text a store writes for an event's data: the canonical JSON text the engine
    hashed, kept on its own events (``data_text``), else the data's canonical JSON as it
    is now; a ``StoreError`` naming the case and seq for data JSON cannot hold (a set,
    an object, data that contains itself). Every adapter writes this."""
    text = event.data_text
    if text is not None:
        return text
    try:
        return canonical_json(event.data)
    except (TypeError, ValueError, RecursionError) as exc:  # Recursion: no circular check
        raise StoreError(
            f"case {event.case_id} event {event.seq}: its data is not JSON ({exc})"
        ) from None


def check_unchanged(case_id: str, unchanged: Mapping[str, int], found: Mapping[str, int]) -> None:
    """Refuse an append whose decision read other cases of the customer that moved on,
    or missed one: ``unchanged`` is what the decision read (case id -> version, the
    customer's cases but ``case_id``), ``found`` the versions stored now of every case
    of the customer (``case_id``'s and any other listed in ``unchanged`` may be there
    too), read in the append's transaction. A case read that is gone, one that moved
    on, or one of the customer's that was not read (opened since: its payments were
    not counted) is ``ConcurrencyConflict``."""
    for other, version in unchanged.items():
        if found.get(other, 0) != version:
            raise ConcurrencyConflict(other, version, found.get(other))
    for other, version in found.items():
        if other != case_id and other not in unchanged:
            raise ConcurrencyConflict(other, 0, version)


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
