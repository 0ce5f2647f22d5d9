"""The store contract's tests. Import ``StoreContract`` from ``adapters.testing``, which
has pytest rewrite this module's assertions first (so a failure shows its values)."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

import pytest

from policies.loader import parse_policy
from workflow import audit
from workflow.clock import ManualClock
from workflow.domain import Case
from workflow.engine import Engine
from workflow.errors import (
    CaseAlreadyExists,
    CaseNotFound,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InvalidQuery,
    StoreError,
)
from workflow.events import Event, make_event
from workflow.idempotency import FINGERPRINT_SCHEME, fingerprint
from workflow.personal import ERASED, vault_of
from workflow.query import CasesAtRisk
from workflow.replay import apply, replay
from workflow.sla import Deadline
from workflow.store import ReadsStoredHistories, ReadsStoredHistory, Store, Tombstone

_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
#: How long a deadline ``due_deadlines`` handed out stays claimed (docs/adapters.md).
_LEASE = timedelta(minutes=5)
#: A policy whose SLA the sweeper fires: a warning at half an hour, a breach at one.
_SLA_POLICY = parse_policy(
    """
name: contract SLA
version: "1"
currency: EUR
sla:
  warn_at: [50]
  targets:
    - {id: ack, step: acknowledge, within: PT1H}
"""
)


def _engine(store: Store) -> Engine:
    return Engine(store, clock=ManualClock(_START))


def _open(engine: Engine, case_id: str = "case-contract-1") -> str:
    return engine.open_case(
        actor="agent:contract",
        customer={"id": "c-1", "name": "Contract Customer"},
        channel="email",
        subject="contract",
        case_id=case_id,
    ).id


class _Wrapped:
    """A store that hands every call to the store it wraps (subclasses change one)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self, case_id: str) -> Case:
        return self._store.load(case_id)

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
        self._store.append(
            snapshot, events, expected_version, deadlines, idempotency_key, unchanged,
            idempotency_fingerprint,
        )  # fmt: skip

    def find_idempotent(self, key: str) -> tuple[str, int, str | None] | None:
        return self._store.find_idempotent(key)

    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Deadline]:
        return self._store.due_deadlines(now, limit)

    def pending_deadlines(self, case_id: str) -> list[Deadline]:
        return self._store.pending_deadlines(case_id)

    def events(self, case_id: str, after_seq: int = 0) -> list[Event]:
        return self._store.events(case_id, after_seq)

    def customer_cases(self, customer_id: str) -> list[Case]:
        return self._store.customer_cases(customer_id)

    def case_ids(self) -> Iterator[str]:
        return self._store.case_ids()

    def purge(self, tombstone: Tombstone) -> None:
        self._store.purge(tombstone)

    def tombstones(self) -> Iterator[Tombstone]:
        return self._store.tombstones()

    def scrub(self) -> None:
        self._store.scrub()

    def close(self) -> None:
        """The wrapped store is closed by its owner."""


def _tombstone(case: Case, purged_at: datetime = _START + timedelta(days=7 * 366)) -> Tombstone:
    """A tombstone of ``case`` as a purge seven years on writes it (one verify finds
    sound: decision 0054)."""
    return Tombstone(
        case_id=case.id,
        version=case.version,
        head_hash=case.head_hash,
        opened_at=case.opened_at,
        closed_at=case.updated_at,
        purged_at=purged_at,
        purged_by="dpo:contract",
        reason="contract",
        retention_years=6,  # kept as given (decision 0054)
    )


class _StaleReads(_Wrapped):
    """A store whose ``load`` returns an old snapshot: a writer that lost a race."""

    def __init__(self, store: Store, snapshot: Case) -> None:
        super().__init__(store)
        self._snapshot = snapshot

    def load(self, case_id: str) -> Case:
        return self._snapshot


class _KeyNotYetSeen(_Wrapped):
    """A store whose first lookup of an idempotency key finds nothing: the lookup a
    duplicate delivery made before the other one committed the key."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._looked: set[str] = set()

    def find_idempotent(self, key: str) -> tuple[str, int, str | None] | None:
        if key not in self._looked:
            self._looked.add(key)
            return None
        return self._store.find_idempotent(key)


def _walk(engine: Engine, limit: int, **filters: object) -> list[list[str]]:
    """The ids on each page of ``find_cases`` with ``filters``, page after page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = engine.find_cases(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        assert page.unreadable == ()  # every snapshot here reads back (decision 0054)
        pages.append([case.id for case in page.cases])
        if page.next_cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not move on"
        cursor = page.next_cursor


def _found(engine: Engine, **filters: object) -> list[str]:
    """The ids of every case ``find_cases`` finds with ``filters`` (one page)."""
    page = engine.find_cases(limit=1000, **filters)  # type: ignore[arg-type]
    assert page.next_cursor is None
    return [case.id for case in page.cases]


def _with_cursor_id(cursor: str, case_id: str) -> str:
    """``cursor`` with another case id in it, its time and filters kept (forged)."""
    raw = cursor.removeprefix("c1.")
    form = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    text = json.dumps({**form, "id": case_id}, separators=(",", ":"), sort_keys=True)
    return "c1." + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _risk(entries: CasesAtRisk) -> list[tuple[str, str, str, datetime]]:
    assert entries.unreadable == ()  # every snapshot here reads back (decision 0060)
    return [(e.case.id, e.step, e.kind, e.due_at) for e in entries]


def _note_event(engine: Engine, case: Case) -> Event:
    return make_event(
        case.id, case.version + 1, "add_note", _START, "agent:contract", {"text": "n"},
        engine.policy.stamp, case.head_hash,
    )  # fmt: skip


class StoreContract:
    """What every ``Store`` must do. Needs a ``store`` fixture."""

    def test_a_missing_case_is_not_found(self, store: Store) -> None:
        with pytest.raises(CaseNotFound):
            store.load("no-such-case")
        with pytest.raises(CaseNotFound):
            store.events("no-such-case")

    def test_a_stored_case_loads_as_it_was_appended(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        case = engine.acknowledge(cid, actor="agent:contract")
        assert store.load(cid) == case
        assert [e.seq for e in store.events(cid)] == [1, 2]
        assert replay(store.events(cid), vault_of(case.personal)) == case

    def test_events_after_a_seq(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        engine.acknowledge(cid, actor="agent:contract")
        engine.add_note(cid, actor="agent:contract", text="one")
        assert [e.seq for e in store.events(cid, after_seq=2)] == [3]
        assert store.events(cid, after_seq=3) == []

    def test_a_stale_append_conflicts_and_writes_nothing(self, store: Store) -> None:
        first = _engine(store)
        cid = _open(first)
        stale = store.load(cid)
        first.acknowledge(cid, actor="agent:one")
        # A second agent whose engine loaded the case before the first one wrote:
        second = _engine(_StaleReads(store, stale))
        with pytest.raises(ConcurrencyConflict) as conflict:
            second.add_note(cid, actor="agent:two", text="written on a stale copy")
        assert (conflict.value.expected, conflict.value.found) == (1, 2)
        assert [e.type for e in store.events(cid)] == ["open", "acknowledge"]
        assert store.load(cid).notes == ()

    def test_opening_an_existing_case_id_conflicts(self, store: Store) -> None:
        engine = _engine(store)
        _open(engine, "case-same")
        with pytest.raises(ConcurrencyConflict):
            _open(engine, "case-same")
        assert len(store.events("case-same")) == 1

    def test_an_append_that_does_not_continue_the_case_is_refused(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        engine.acknowledge(cid, actor="agent:contract")
        events = store.events(cid)
        with pytest.raises(StoreError):
            store.append(store.load(cid), [events[0]], expected_version=2)
        with pytest.raises(StoreError):
            store.append(store.load(cid), [], expected_version=2)
        assert len(store.events(cid)) == 2

    def test_customer_cases_finds_every_case_of_one_customer(self, store: Store) -> None:
        engine = _engine(store)
        mine = [_open(engine, f"case-mine-{n}") for n in range(2)]
        engine.open_case(
            actor="agent:contract",
            customer={"id": "c-2", "name": "Someone Else"},
            channel="chat",
            case_id="case-theirs",
        )
        engine.acknowledge(mine[1], actor="agent:contract")
        found = {case.id: case.version for case in store.customer_cases("c-1")}
        assert found == {mine[0]: 1, mine[1]: 2}
        assert store.customer_cases("c-404") == []

    def test_an_append_conflicts_unless_the_customers_other_cases_are_as_read(
        self, store: Store
    ) -> None:
        """``unchanged`` is every other case of the customer a decision read (the cap
        reads them all), at the versions read: one that moved on, and one it did not
        read (opened since, so its payments were not counted), is a conflict;
        ``{}`` says the customer had no other case (decision 0053)."""
        engine = _engine(store)
        cid = _open(engine, "case-paying")
        engine.open_case(
            actor="agent:contract", customer={"id": "c-2", "name": "Someone Else"},
            channel="chat", case_id="case-theirs",
        )  # fmt: skip

        def append(unchanged: dict[str, int]) -> None:
            case = store.load(cid)
            event = _note_event(engine, case)
            store.append(apply(case, event, case.state), [event], case.version, None, None,
                         unchanged)  # fmt: skip

        append({})  # the customer's only case (another customer's does not count)
        other = _open(engine, "case-opened-since")
        with pytest.raises(ConcurrencyConflict) as missed:
            append({})
        assert (missed.value.case_id, missed.value.expected, missed.value.found) == (other, 0, 1)
        engine.acknowledge(other, actor="agent:contract")
        with pytest.raises(ConcurrencyConflict) as moved:
            append({other: 1})
        assert (moved.value.case_id, moved.value.expected, moved.value.found) == (other, 1, 2)
        assert len(store.events(cid)) == 2
        append({other: 2})
        assert len(store.events(cid)) == 3

    def test_deadlines_are_replaced_with_each_append_and_found_when_due(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        soon, later = _START + timedelta(hours=1), _START + timedelta(hours=5)
        first = [
            Deadline(cid, "0:t:warn75", "t", "acknowledge", "warn", 75, soon),
            Deadline(cid, "0:t:breach", "t", "acknowledge", "breach", 100, later),
        ]
        note = _note_event(engine, case)
        store.append(replay([*store.events(cid), note]), [note], case.version, first)
        assert [d.key for d in store.pending_deadlines(cid)] == ["0:t:warn75", "0:t:breach"]
        assert store.due_deadlines(_START) == []
        assert [d.key for d in store.due_deadlines(soon)] == ["0:t:warn75"]
        case = store.load(cid)
        again = _note_event(engine, case)
        store.append(replay([*store.events(cid), again]), [again], case.version, first[1:])
        assert store.due_deadlines(later + timedelta(minutes=1))[0].key == "0:t:breach"
        assert [d.due_at for d in store.pending_deadlines(cid)] == [later]

    def test_an_append_releases_the_claim_on_the_deadlines_it_writes(self, store: Store) -> None:
        """A sweeper that lost a case to another writer (its append conflicted) does not
        keep that case's still-pending deadlines from the next tick for the lease."""
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        due = [Deadline(cid, "0:t:breach", "t", "acknowledge", "breach", 100, _START)]
        note = _note_event(engine, case)
        store.append(replay([*store.events(cid), note]), [note], case.version, due)
        later = _START + timedelta(minutes=1)
        assert [d.key for d in store.due_deadlines(later)] == ["0:t:breach"]  # claimed
        assert store.due_deadlines(later) == []
        case = store.load(cid)  # another writer's step: the same deadline, written anew
        again = _note_event(engine, case)
        store.append(replay([*store.events(cid), again]), [again], case.version, due)
        assert [d.key for d in store.due_deadlines(later)] == ["0:t:breach"]
        assert store.due_deadlines(later) == []

    def test_a_stale_append_leaves_the_deadlines_as_they_were(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        stale = store.load(cid)
        engine.acknowledge(cid, actor="agent:one")
        before = store.pending_deadlines(cid)
        event = _note_event(engine, stale)
        late = [Deadline(cid, "0:x:breach", "x", "listen", "breach", 100, _START)]
        with pytest.raises(ConcurrencyConflict):
            store.append(replay([*store.events(cid)[:1], event]), [event], 1, late)
        assert store.pending_deadlines(cid) == before

    def test_an_idempotency_key_is_recorded_once(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        first = engine.add_note(cid, actor="agent:a", text="once", idempotency_key="k-1")
        printed = fingerprint("add_note", cid, "agent:a", {"text": "once"})
        assert store.find_idempotent("k-1") == (cid, first.version, printed)
        again = engine.add_note(cid, actor="agent:a", text="once", idempotency_key="k-1")
        assert again == first
        assert len(store.events(cid)) == first.version
        assert store.find_idempotent("k-2") is None

    def test_an_idempotency_key_cannot_be_taken_twice_even_by_another_case(
        self, store: Store
    ) -> None:
        engine = _engine(store)
        first, second = _open(engine, "case-k1"), _open(engine, "case-k2")
        engine.add_note(first, actor="agent:a", text="x", idempotency_key="shared")
        case = store.load(second)
        event = _note_event(engine, case)
        with pytest.raises(ConcurrencyConflict):
            store.append(
                replay([*store.events(second), event]), [event], case.version, None, "shared"
            )
        assert len(store.events(second)) == 1

    def test_an_idempotency_key_keeps_the_fingerprint_recorded_with_it(self, store: Store) -> None:
        """The fingerprint comes back as it was given, None when none was (a key
        recorded before the store kept fingerprints); a taken key keeps its first one."""
        engine = _engine(store)
        cid = _open(engine)
        given = FINGERPRINT_SCHEME + "0123456789abcdef" * 4
        for key, print_ in (("k-given", given), ("k-none", None)):
            case = store.load(cid)
            event = _note_event(engine, case)
            store.append(
                replay([*store.events(cid), event]), [event], case.version, None, key,
                idempotency_fingerprint=print_,
            )  # fmt: skip
            assert store.find_idempotent(key) == (cid, event.seq, print_)
        case = store.load(cid)
        event = _note_event(engine, case)
        with pytest.raises(ConcurrencyConflict):
            store.append(
                replay([*store.events(cid), event]), [event], case.version, None, "k-given",
                idempotency_fingerprint=FINGERPRINT_SCHEME + "f" * 64,
            )  # fmt: skip
        assert store.find_idempotent("k-given") == (cid, 2, given)
        assert len(store.events(cid)) == 3

    def test_a_key_retried_with_other_inputs_is_refused_and_writes_nothing(
        self, store: Store
    ) -> None:
        engine = _engine(store)
        cid = _open(engine)
        noted = engine.add_note(cid, actor="agent:a", text="first", idempotency_key="k-1")
        assert engine.add_note(cid, actor="agent:a", text="first", idempotency_key="k-1") == noted
        with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
            engine.add_note(cid, actor="agent:a", text="second", idempotency_key="k-1")
        assert [e.type for e in store.events(cid)] == ["open", "add_note"]
        assert store.load(cid) == noted

    def test_a_key_a_racing_duplicate_took_first_is_checked_with_its_inputs(
        self, store: Store
    ) -> None:
        """Two deliveries race: the loser looked the key up before the winner wrote it,
        so its append fails on the key (``ConcurrencyConflict``) and the engine looks
        the key up again. The same command gets the winner's result; other inputs or
        another actor are refused; nothing of the loser's is written."""
        engine = _engine(store)
        cid = _open(engine)
        noted = engine.add_note(cid, actor="agent:a", text="first", idempotency_key="race")

        def late() -> Engine:
            return _engine(_KeyNotYetSeen(store))

        assert late().add_note(cid, actor="agent:a", text="first", idempotency_key="race") == noted
        with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
            late().add_note(cid, actor="agent:a", text="second", idempotency_key="race")
        with pytest.raises(IdempotencyKeyReused, match="the actor differs"):
            late().add_note(cid, actor="agent:b", text="first", idempotency_key="race")
        assert [e.type for e in store.events(cid)] == ["open", "add_note"]

    def test_an_append_that_read_other_cases_conflicts_if_they_changed(self, store: Store) -> None:
        engine = _engine(store)
        mine, other = _open(engine, "case-u1"), _open(engine, "case-u2")
        seen = store.load(other).version
        engine.add_note(other, actor="agent:b", text="changed meanwhile")
        case = store.load(mine)
        event = _note_event(engine, case)
        snapshot = replay([*store.events(mine), event])
        with pytest.raises(ConcurrencyConflict):
            store.append(snapshot, [event], case.version, None, None, {other: seen})
        assert len(store.events(mine)) == 1
        store.append(snapshot, [event], case.version, None, None, {other: seen + 1})
        assert len(store.events(mine)) == 2

    def test_events_come_back_exactly_as_appended(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        data = {"text": 'Grüße — ✓ "quoted"\n', "items": [1, {"b": None, "a": True}], "n": -7}
        at = _START + timedelta(days=400, microseconds=7)
        event = make_event(
            cid, 2, "add_note", at, "agent:Zoë", data, engine.policy.stamp, case.head_hash
        )
        store.append(replay([*store.events(cid), event]), [event], case.version)
        first, back = store.events(cid)
        assert back == event
        assert back.prev_hash == first.hash
        assert back.expected_hash() == back.hash

    def test_an_event_that_breaks_the_chain_is_kept_as_given(self, store: Store) -> None:
        """A store keeps what it is given, so that verify can report it."""
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        good = _note_event(engine, case)
        forged = make_event(
            cid, 2, "add_note", _START, "agent:contract", {"text": "n"}, engine.policy.stamp,
            "f" * 64,
        )  # fmt: skip
        store.append(replay([*store.events(cid), good]), [forged], case.version)
        assert store.events(cid)[1] == forged
        assert store.events(cid, after_seq=1) == [forged]
        after = store.load(cid)
        again = _note_event(engine, after)  # chained to the forged one
        store.append(apply(after, again, after.state), [again], after.version)
        assert store.events(cid)[1:] == [forged, again]

    def test_an_event_changed_after_it_was_made_is_stored_as_changed(self, store: Store) -> None:
        """Verify must be able to find it: a store writes the data it is given."""
        from workflow import audit

        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        event = _note_event(engine, case)
        snapshot = replay([*store.events(cid), event])
        event.data["text"] = "changed after it was hashed"
        store.append(snapshot, [event], case.version)
        assert store.events(cid)[1].data == {"text": "changed after it was hashed"}
        assert any(
            f.seq == 2 and "does not match its hash" in f.problem
            for f in audit.verify_store(store, cid)
        )

    def test_data_that_is_not_json_is_refused_and_nothing_is_written(self, store: Store) -> None:
        """An event whose data JSON cannot hold (a set, an object, a loop) is refused
        with a ``StoreError`` naming the case and seq, not the encoder's own error."""
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        event = _note_event(engine, case)
        snapshot = apply(case, event, case.state)
        loop: dict[str, object] = {"text": "n"}
        loop["self"] = loop
        for data in ({"text": "n", "tags": {"a"}}, {"text": "n", "at": object()}, loop):
            event.data.clear()
            event.data.update(data)
            with pytest.raises(StoreError, match=f"case {cid} event 2: its data is not JSON"):
                store.append(snapshot, [event], case.version)
            assert len(store.events(cid)) == 1
            assert store.load(cid) == case

    def test_case_ids_lists_every_case_oldest_first(self, store: Store) -> None:
        engine = _engine(store)
        ids = [_open(engine, f"case-{n}") for n in range(3)]
        assert list(store.case_ids()) == ids

    def test_concurrent_writers_never_lose_an_update(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        writers, notes_each = 4, 10

        def write(n: int) -> None:
            for i in range(notes_each):
                note = partial(engine.add_note, cid, actor=f"agent:w{n}", text=f"{n}-{i}")
                engine.retrying(note, attempts=100)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=timedelta(minutes=1).total_seconds())
        history = store.events(cid)
        assert [e.seq for e in history] == list(range(1, 2 + writers * notes_each))
        assert replay(history, vault_of(store.load(cid).personal)) == store.load(cid)
        assert len(store.load(cid).notes) == writers * notes_each

    def test_an_append_is_all_or_nothing(self, store: Store) -> None:
        """An append refused part way (its second event's data is not JSON) writes none
        of its events, nor its snapshot, deadlines or idempotency key."""
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        before = store.pending_deadlines(cid)
        first = _note_event(engine, case)
        second = make_event(
            cid, 3, "add_note", _START, "agent:contract", {"text": "m"}, engine.policy.stamp,
            first.hash,
        )  # fmt: skip
        second.data["tags"] = {"not", "json"}
        snapshot = apply(apply(case, first, case.state), second, case.state)
        due = [Deadline(cid, "0:t:breach", "t", "acknowledge", "breach", 100, _START)]
        with pytest.raises(StoreError):
            store.append(snapshot, [first, second], case.version, due, "k-all-or-nothing")
        assert len(store.events(cid)) == 1
        assert store.load(cid) == case
        assert store.pending_deadlines(cid) == before
        assert store.due_deadlines(_START + timedelta(days=1)) == []
        assert store.find_idempotent("k-all-or-nothing") is None

    def test_a_stale_append_records_no_idempotency_key(self, store: Store) -> None:
        """The key of a command that lost the race stays free: its retry must run."""
        engine = _engine(store)
        cid = _open(engine)
        stale = store.load(cid)
        engine.acknowledge(cid, actor="agent:one")
        event = _note_event(engine, stale)
        with pytest.raises(ConcurrencyConflict):
            store.append(apply(stale, event, stale.state), [event], 1, None, "k-stale")
        assert store.find_idempotent("k-stale") is None
        again = engine.add_note(cid, actor="agent:two", text="retried", idempotency_key="k-stale")
        found = store.find_idempotent("k-stale")
        assert found is not None
        assert found[:2] == (cid, again.version)
        assert found[2] is not None
        assert found[2].startswith(FINGERPRINT_SCHEME)

    def test_deadlines_none_leaves_them_and_an_empty_list_clears_them(self, store: Store) -> None:
        engine = _engine(store)
        cid = _open(engine)
        due = [Deadline(cid, "0:t:breach", "t", "acknowledge", "breach", 100, _START)]
        for deadlines, expected in ((due, due), (None, due), ([], [])):
            case = store.load(cid)
            note = _note_event(engine, case)
            store.append(apply(case, note, case.state), [note], case.version, deadlines)
            assert store.pending_deadlines(cid) == expected
        assert store.due_deadlines(_START + timedelta(days=1)) == []

    def test_due_deadlines_come_soonest_first_at_most_limit(self, store: Store) -> None:
        engine = _engine(store)
        ids = [_open(engine, f"case-due-{n}") for n in range(3)]
        for n, cid in enumerate(ids):
            case = store.load(cid)
            at = _START + timedelta(minutes=10 * (3 - n))  # the last case is due first
            due = [Deadline(cid, "0:t:breach", "t", "acknowledge", "breach", 100, at)]
            note = _note_event(engine, case)
            store.append(apply(case, note, case.state), [note], case.version, due)
        later = _START + timedelta(hours=1)
        assert [d.case_id for d in store.due_deadlines(later, limit=2)] == ids[:0:-1]
        assert [d.case_id for d in store.due_deadlines(later, limit=2)] == ids[:1]
        assert store.due_deadlines(later) == []

    def test_a_claim_lapses_after_the_lease(self, store: Store) -> None:
        """A deadline handed out and never swept (the sweeper crashed) is handed out
        again once its five-minute claim has lapsed, not before."""
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        due = [Deadline(cid, "0:t:breach", "t", "acknowledge", "breach", 100, _START)]
        note = _note_event(engine, case)
        store.append(apply(case, note, case.state), [note], case.version, due)
        assert [d.key for d in store.due_deadlines(_START)] == ["0:t:breach"]
        assert store.due_deadlines(_START + _LEASE - timedelta(seconds=1)) == []
        lapsed = _START + _LEASE + timedelta(seconds=1)
        assert [d.key for d in store.due_deadlines(lapsed)] == ["0:t:breach"]

    def test_two_sweepers_fire_each_warning_and_breach_once(self, store: Store) -> None:
        clock = ManualClock(_START)
        workers = [Engine(store, policy=_SLA_POLICY, clock=clock) for _ in range(2)]
        cid = workers[0].open_case(
            actor="system:inbox", customer={"id": "c-1", "name": "N"}, channel="email",
            case_id="case-swept",
        ).id  # fmt: skip
        clock.advance(minutes=40)
        fired = [e.type for worker in workers for e in worker.tick()]
        assert fired == ["sla_warning"]
        clock.advance(minutes=40)
        fired = [e.type for worker in workers for e in worker.tick()]
        assert fired == ["sla_breached"]
        clock.advance(minutes=40)
        assert [e for worker in workers for e in worker.tick()] == []
        assert [e.type for e in store.events(cid)] == ["open", "sla_warning", "sla_breached"]

    def test_a_purged_case_is_gone_everywhere_and_leaves_its_tombstone(self, store: Store) -> None:
        engine = _engine(store)
        gone, kept = _open(engine, "case-purged"), _open(engine, "case-kept")
        engine.add_note(gone, actor="agent:a", text="x", idempotency_key="k-purged")
        case = store.load(gone)
        due = [Deadline(gone, "0:t:breach", "t", "acknowledge", "breach", 100, _START)]
        note = _note_event(engine, case)
        store.append(apply(case, note, case.state), [note], case.version, due)
        case = store.load(gone)
        with pytest.raises(ConcurrencyConflict):  # not at the version the tombstone names
            store.purge(dataclasses.replace(_tombstone(case), version=case.version - 1))
        assert store.load(gone) == case
        store.purge(_tombstone(case))
        with pytest.raises(CaseNotFound):
            store.load(gone)
        with pytest.raises(CaseNotFound):
            store.events(gone)
        assert list(store.case_ids()) == [kept]
        assert [c.id for c in store.customer_cases("c-1")] == [kept]
        assert store.pending_deadlines(gone) == []
        assert store.due_deadlines(_START + timedelta(days=1)) == []
        assert store.find_idempotent("k-purged") is None
        assert list(store.tombstones()) == [_tombstone(case)]
        with pytest.raises(ConcurrencyConflict):  # nothing left to purge
            store.purge(_tombstone(case))
        engine.add_note(kept, actor="agent:a", text="y")  # a case is purged after seq 1
        later = store.load(kept)
        store.purge(_tombstone(later, _START + timedelta(days=7 * 366 + 1)))
        assert [t.case_id for t in store.tombstones()] == [gone, kept]  # oldest purge first
        assert audit.verify_store(store) == []
        store.scrub()

    def test_a_purged_case_s_id_is_not_taken_again(self, store: Store) -> None:
        """An append at version 0 (a new case) conflicts when a tombstone holds its id,
        and writes nothing: a store holding a case and a tombstone of one id has a
        digest that cannot hold both, and a second purge of the id (decision 0060)."""
        engine = _engine(store)
        gone = _open(engine, "case-purged-once")
        opening = store.events(gone)[0]
        engine.add_note(gone, actor="agent:contract", text="x")
        store.purge(_tombstone(store.load(gone)))
        opened = replay([opening])
        due = [Deadline(gone, "0:t:breach", "t", "acknowledge", "breach", 100, _START)]
        with pytest.raises(ConcurrencyConflict) as refused:
            store.append(opened, [opening], 0, due, "k-reopened", None, "fingerprint")
        assert (refused.value.case_id, refused.value.expected) == (gone, 0)
        with pytest.raises(CaseNotFound):
            store.load(gone)
        with pytest.raises(CaseNotFound):
            store.events(gone)
        assert list(store.case_ids()) == []
        assert store.customer_cases("c-1") == []
        assert store.pending_deadlines(gone) == []
        assert store.find_idempotent("k-reopened") is None
        assert [t.case_id for t in store.tombstones()] == [gone]
        with pytest.raises(CaseAlreadyExists):  # as the engine says it
            _open(engine, gone)
        assert list(store.case_ids()) == []
        assert audit.verify_store(store) == []
        _open(engine, "case-another-id")  # any other id opens

    def test_an_erased_customer_s_values_are_nowhere_the_store_hands_out(
        self, store: Store
    ) -> None:
        """After ``erase_customer`` no snapshot the store gives (``load``,
        ``customer_cases``, the stored histories a verify reads) holds the values, and
        every history still verifies."""
        engine = _engine(store)
        name, contact = "Zelda Contractname", "zelda@contract.example"
        cid = engine.open_case(
            actor="agent:contract", customer={"id": "c-erase", "name": name, "contact": contact},
            channel="email", case_id="case-erased",
        ).id  # fmt: skip
        engine.acknowledge(cid, actor="agent:contract")
        erased = engine.erase_customer("c-erase", actor="dpo:contract", reason="DSR-1")
        assert [case.id for case in erased] == [cid]
        seen = [store.load(cid), *store.customer_cases("c-erase")]
        for case in seen:
            assert case.version == 3
            assert (case.customer.name, case.customer.contact) == (ERASED, ERASED)
            assert case.personal == ()
        texts = [repr(e.data) for e in store.events(cid)]
        if isinstance(store, ReadsStoredHistory):
            history = store.stored_history(cid)
            assert history is not None
            texts.append(history.snapshot or "")
        if isinstance(store, ReadsStoredHistories):
            texts.extend(h.snapshot or "" for h in store.stored_histories())
        assert [t for t in texts if name in t or contact in t] == []
        assert audit.verify_store(store) == []
        assert audit.verify_store(store, cid) == []

    # -- finding cases (Engine.find_cases and cases_at_risk: through FindsCases when the
    # -- store has it, else through the methods above) ---------------------------------

    def test_find_cases_filters_by_the_case_s_key_fields(self, store: Store) -> None:
        clock = ManualClock(_START)
        engine = Engine(store, clock=clock)
        opened = [
            ("case-f1", "c-1", "email", "delivery"),
            ("case-f2", "c-2", "chat", None),
            ("case-f3", "c-1", "phone", "billing"),
            ("case-f4", "c-3", "email", None),
        ]
        for case_id, customer, channel, category in opened:
            engine.open_case(
                actor="agent:contract", customer={"id": customer, "name": "N"},
                channel=channel, category=category, case_id=case_id,
            )  # fmt: skip
            clock.advance(minutes=1)
        engine.assign("case-f1", actor="team-lead:t", to="agent:alice")
        engine.assign("case-f2", actor="team-lead:t", to="agent:bob")
        engine.assign("case-f3", actor="team-lead:t", to="agent:bob")
        engine.assign("case-f3", actor="team-lead:t", to="  agent:alice ")  # recorded stripped
        engine.escalate("case-f2", actor="agent:bob", reason="asks for a manager",
                        to_role="team-lead")  # fmt: skip
        engine.escalate("case-f4", actor="agent:x", reason="legal threat", to_role="legal")
        engine.resume("case-f4", actor="legal:l")
        engine.withdraw("case-f3", actor="customer:c-1", reason="sorted it out myself")
        engine.acknowledge("case-f1", actor="agent:alice")
        assert _found(engine) == ["case-f1", "case-f2", "case-f3", "case-f4"]
        assert _found(engine, state="received") == ["case-f4"]
        assert _found(engine, state=["withdrawn", "escalated"]) == ["case-f2", "case-f3"]
        assert _found(engine, open_only=True) == ["case-f1", "case-f2", "case-f4"]
        assert _found(engine, state=["withdrawn", "received"], open_only=True) == ["case-f4"]
        assert _found(engine, customer_id="c-1") == ["case-f1", "case-f3"]
        assert _found(engine, customer_id="c-404") == []
        assert _found(engine, assignee="agent:alice") == ["case-f1", "case-f3"]
        assert _found(engine, assignee=" agent:alice") == ["case-f1", "case-f3"]
        assert _found(engine, assignee="agent:alice", open_only=True) == ["case-f1"]
        assert _found(engine, assignee="agent:bob") == ["case-f2"]
        assert _found(engine, escalated_to="team-lead") == ["case-f2"]
        assert _found(engine, escalated_to="legal") == []  # resumed: no longer escalated
        assert _found(engine, channel="email") == ["case-f1", "case-f4"]
        assert _found(engine, category="billing") == ["case-f3"]
        assert _found(engine, customer_id="c-1", channel="phone") == ["case-f3"]
        assert _found(engine, customer_id="c-1", channel="chat") == []
        page = engine.find_cases(assignee="agent:alice")
        assert [case.version for case in page.cases] == [3, 4]  # the latest snapshots
        assert page.cases == (store.load("case-f1"), store.load("case-f3"))

    def test_find_cases_by_when_cases_were_opened_and_last_updated(self, store: Store) -> None:
        clock = ManualClock(_START)
        engine = Engine(store, clock=clock)
        ids = []
        for n in range(4):  # opened at 9:00, 9:10, 9:20, 9:30
            ids.append(_open(engine, f"case-t{n}"))
            clock.advance(minutes=10)
        engine.add_note(ids[0], actor="agent:a", text="at 9:40")
        clock.advance(minutes=10)
        engine.add_note(ids[2], actor="agent:a", text="at 9:50")
        minutes = [_START + timedelta(minutes=m) for m in range(0, 60, 10)]
        assert _found(engine, opened_since=minutes[1]) == ids[1:]
        assert _found(engine, opened_before=minutes[1]) == ids[:1]
        assert _found(engine, opened_since=minutes[1], opened_before=minutes[3]) == ids[1:3]
        assert _found(engine, updated_since=minutes[4]) == [ids[0], ids[2]]
        assert _found(engine, updated_before=minutes[4]) == [ids[1], ids[3]]
        assert _found(engine, updated_since=minutes[3], updated_before=minutes[5]) == [
            ids[0], ids[3],
        ]  # fmt: skip
        helsinki = timezone(timedelta(hours=2))  # one instant, written in another zone
        assert _found(engine, opened_since=minutes[3].astimezone(helsinki)) == ids[3:]

    def test_find_cases_pages_through_cases_in_the_order_they_were_opened(
        self, store: Store
    ) -> None:
        """By ``opened_at``, then id by code point (``case-B`` before ``case-a``, ``case-10``
        before ``case-2``); each page at most ``limit``; the last says there is no more,
        also when it is full."""
        early, late = ManualClock(_START), ManualClock(_START + timedelta(hours=1))
        later = Engine(store, clock=late)
        _open(later, "case-late")  # opened first, at the later time
        engine = Engine(store, clock=early)
        for case_id in ("case-2", "case-a", "case-10", "case-B", "case-1"):
            _open(engine, case_id)  # all at the same instant
        order = ["case-1", "case-10", "case-2", "case-B", "case-a", "case-late"]
        assert _walk(engine, 2) == [order[0:2], order[2:4], order[4:6]]
        assert _walk(engine, 4) == [order[0:4], order[4:6]]
        assert _walk(engine, 6) == [order]
        assert _walk(engine, 1000) == [order]
        assert _walk(engine, 5, channel="email") == [order[:5], order[5:]]
        assert _walk(engine, 2, channel="chat") == [[]]

    def test_a_walk_through_the_pages_sees_each_case_once_while_steps_are_taken(
        self, store: Store
    ) -> None:
        clock = ManualClock(_START)
        engine = Engine(store, clock=clock)
        ids = [_open(engine, f"case-w{n}") for n in range(6)]
        clock.advance(minutes=5)
        seen: list[str] = []
        page = engine.find_cases(limit=2, open_only=True)
        while True:
            seen.extend(case.id for case in page.cases)
            for case_id in ids:  # every case moves on, those seen and those to come
                engine.add_note(case_id, actor="agent:a", text="meanwhile")
            clock.advance(minutes=1)
            if page.next_cursor is None:
                break
            page = engine.find_cases(limit=2, open_only=True, cursor=page.next_cursor)
        assert seen == ids
        assert store.load(ids[0]).version == 4  # three notes: the walk took three pages

    def test_a_case_opened_during_a_walk_is_on_a_later_page(self, store: Store) -> None:
        clock = ManualClock(_START)
        engine = Engine(store, clock=clock)
        ids = [_open(engine, f"case-o{n}") for n in range(3)]
        first = engine.find_cases(limit=2)
        clock.advance(minutes=1)
        ids.append(_open(engine, "case-o-new"))
        rest = engine.find_cases(limit=2, cursor=first.next_cursor)
        assert [c.id for c in first.cases + rest.cases] == ids
        assert rest.next_cursor is None

    def test_purged_and_erased_cases_as_find_cases_gives_them(self, store: Store) -> None:
        engine = _engine(store)
        gone = _open(engine, "case-gone")
        kept = engine.open_case(
            actor="agent:contract",
            customer={"id": "c-2", "name": "Yolanda Findname", "contact": "y@find.example"},
            channel="web", case_id="case-kept",
        ).id  # fmt: skip
        store.purge(_tombstone(store.load(gone)))
        engine.erase_customer("c-2", actor="dpo:contract", reason="DSR-2")
        (case,) = engine.find_cases().cases
        assert case.id == kept
        assert (case.customer.name, case.customer.contact) == (ERASED, ERASED)
        assert engine.find_cases(customer_id="c-2").cases == (case,)
        assert engine.find_cases(customer_id="c-1").cases == ()

    def test_cases_at_risk_are_open_cases_by_their_soonest_pending_deadline(
        self, store: Store
    ) -> None:
        """_SLA_POLICY: acknowledge within an hour, warned at half an hour."""
        clock = ManualClock(_START)
        engine = Engine(store, policy=_SLA_POLICY, clock=clock)
        minute = timedelta(minutes=1)

        def at(minutes: int) -> datetime:
            return _START + minutes * minute

        for case_id, opened in (("case-r1", 0), ("case-r4", 5), ("case-r2", 10), ("case-r3", 20)):
            clock.set(at(opened))
            _open(engine, case_id)
        clock.set(at(25))
        engine.acknowledge("case-r3", actor="agent:a")  # its only target is met
        engine.withdraw("case-r4", actor="customer:c", reason="no longer needed")
        warn, breach = ("acknowledge", "warn"), ("acknowledge", "breach")
        assert engine.cases_at_risk(timedelta(minutes=4)) == []
        assert _risk(engine.cases_at_risk(timedelta(minutes=5))) == [
            ("case-r1", *warn, at(30)),
        ]  # due exactly then: at risk  # fmt: skip
        assert _risk(engine.cases_at_risk(timedelta(minutes=20))) == [
            ("case-r1", *warn, at(30)), ("case-r2", *warn, at(40)),
        ]  # fmt: skip
        assert _risk(engine.cases_at_risk(timedelta(hours=9), limit=1)) == [
            ("case-r1", *warn, at(30)),
        ]  # fmt: skip
        # At 9:50, before any sweep: the warnings are past due and not yet fired.
        assert _risk(engine.cases_at_risk(timedelta(0), now=at(50))) == [
            ("case-r1", *warn, at(30)), ("case-r2", *warn, at(40)),
        ]  # fmt: skip
        clock.set(at(50))
        assert [e.type for e in engine.tick()] == ["sla_warning", "sla_warning"]
        assert _risk(engine.cases_at_risk(timedelta(minutes=15))) == [
            ("case-r1", *breach, at(60)),
        ]  # fmt: skip
        assert _risk(engine.cases_at_risk(timedelta(hours=1))) == [
            ("case-r1", *breach, at(60)), ("case-r2", *breach, at(70)),
        ]  # fmt: skip
        (entry, _) = engine.cases_at_risk(timedelta(hours=1))
        assert entry.case == store.load("case-r1")
        assert entry.deadline.key == "0:ack:breach"

    def test_cases_at_risk_come_soonest_first_then_by_case_id(self, store: Store) -> None:
        clock = ManualClock(_START)
        engine = Engine(store, policy=_SLA_POLICY, clock=clock)
        for case_id in ("case-b", "case-a", "case-C"):  # due at the same instant
            _open(engine, case_id)
        found = engine.cases_at_risk(timedelta(hours=2))
        assert [e.case.id for e in found] == ["case-C", "case-a", "case-b"]
        assert {e.due_at for e in found} == {_START + timedelta(minutes=30)}

    def test_filters_and_cursors_no_stored_text_can_hold_find_what_they_match(
        self, store: Store
    ) -> None:
        """A customer id holding U+0000 (text PostgreSQL cannot store, which the memory
        store and SQLite can) matches no case there and finds what it matches elsewhere,
        never a store error; so does a cursor whose id holds one (a forged cursor: the
        walk goes on after that position, as the id compares by code point)."""
        engine = _engine(store)
        for case_id in ("case-1", "case-10", "case-2"):
            _open(engine, case_id)  # all at the same instant
        assert _found(engine, customer_id="c-1\x00") == []
        assert _found(engine, customer_id="c\x00-1") == []
        first = engine.find_cases(limit=1)
        assert [case.id for case in first.cases] == ["case-1"]
        assert first.next_cursor is not None
        forged = _with_cursor_id(first.next_cursor, "case-1\x00x")
        assert [c.id for c in engine.find_cases(cursor=forged).cases] == ["case-10", "case-2"]

    def test_an_assignee_held_from_before_the_rules_does_not_stop_the_case(
        self, store: Store
    ) -> None:
        """A case assigned, before ``assign`` refused it, a name holding U+0000 (which
        PostgreSQL cannot store in the assignee column): its steps are still written,
        its history verifies, and such a name is not a filter (``InvalidQuery``)."""
        engine = _engine(store)
        cid = _open(engine)
        case = store.load(cid)
        event = make_event(
            cid, case.version + 1, "assign", _START, "team-lead:t", {"to": "al\x00ice"},
            engine.policy.stamp, case.head_hash,
        )  # fmt: skip
        store.append(apply(case, event, case.state), [event], case.version)
        assert engine.add_note(cid, actor="agent:a", text="still taken").version == 3
        assert store.load(cid).assignee == "al\x00ice"
        assert audit.verify_store(store) == []
        with pytest.raises(InvalidQuery, match="assignee: holds U\\+0000 at position 3"):
            engine.find_cases(assignee="al\x00ice")
        engine.assign(cid, actor="team-lead:t", to="alice")
        assert _found(engine, assignee="alice") == [cid]
