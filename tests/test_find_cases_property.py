"""Whatever cases a store holds and however they moved on, ``find_cases`` and
``cases_at_risk`` give on the memory store (its indexes) and on SQLite (its indexed
queries) what reading every case through the ``Store`` port gives; and the SQLite
queries are indexed searches."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from policies.loader import parse_policy
from tests.stores import drop_tables, fresh_prefix, postgres_language_collation_url
from tests.test_find_cases import ScanOnly
from workflow import ComplaintflowError, Engine, ManualClock, Tombstone
from workflow.checklist import OPEN_STATES, State
from workflow.store import Store

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY = parse_policy(
    "name: p\nversion: '1'\ncurrency: EUR\nsla:\n  warn_at: [50]\n  targets:\n"
    "    - {id: ack, step: acknowledge, within: PT1H}\n"
    "    - {id: listen, step: listen, within: PT2H}\n"
)
IDS = ["case-1", "case-10", "case-2", "case-B", "case-a", "case-é", "case-Z9"]
CUSTOMERS = ["c-1", "c-2", "c-3"]
CHANNELS = ["email", "chat", "web"]
CATEGORIES = [None, "delivery", "billing"]
AGENTS = ["agent:a", "agent:b", " agent:a "]
ROLES = ["team-lead", "legal"]

opens = st.tuples(
    st.just("open"),
    st.sampled_from(IDS),
    st.sampled_from(CUSTOMERS),
    st.sampled_from(CHANNELS),
    st.sampled_from(CATEGORIES),
)
steps = st.one_of(
    opens,
    st.tuples(st.just("assign"), st.sampled_from(IDS), st.sampled_from(AGENTS)),
    st.tuples(st.just("escalate"), st.sampled_from(IDS), st.sampled_from(ROLES)),
    st.tuples(
        st.sampled_from(["resume", "acknowledge", "withdraw", "purge"]), st.sampled_from(IDS)
    ),
    st.tuples(st.just("wait"), st.sampled_from([0, 1, 7, 40])),
)
moments = st.sampled_from([START + timedelta(minutes=m) for m in (0, 1, 7, 30, 60, 120)])
queries = st.fixed_dictionaries(
    {},
    optional={
        "state": st.lists(st.sampled_from([s.value for s in State]), min_size=1, max_size=3),
        "open_only": st.booleans(),
        "customer_id": st.sampled_from(CUSTOMERS),
        "assignee": st.sampled_from(AGENTS),
        "escalated_to": st.sampled_from(ROLES),
        "channel": st.sampled_from(CHANNELS),
        "category": st.sampled_from(["delivery", "billing"]),
        "opened_since": moments,
        "opened_before": moments,
        "updated_since": moments,
        "updated_before": moments,
    },
)


def _apply(engine: Engine, clock: ManualClock, store: Store, step: tuple[Any, ...]) -> str:
    """Take ``step``; what came of it (the same on every store)."""
    kind = step[0]
    try:
        if kind == "wait":
            clock.advance(minutes=step[1])
        elif kind == "open":
            _, case_id, customer, channel, category = step
            engine.open_case(
                actor="agent:x", customer={"id": customer, "name": "N"}, channel=channel,
                category=category, case_id=case_id,
            )  # fmt: skip
        elif kind == "assign":
            engine.assign(step[1], actor="team-lead:t", to=step[2])
        elif kind == "escalate":
            engine.escalate(step[1], actor="agent:x", reason="r", to_role=step[2])
        elif kind == "withdraw":
            engine.withdraw(step[1], actor="customer:c", reason="r")
        elif kind == "purge":
            case = store.load(step[1])
            if case.state != "withdrawn":
                return "not purged"
            store.purge(Tombstone(case.id, case.version, case.head_hash, case.opened_at,
                                  case.updated_at, clock.now(), "dpo:x", "r"))  # fmt: skip
        else:
            engine.step(step[1], kind, actor="agent:x")
    except ComplaintflowError as refused:
        return type(refused).__name__
    return "done"


def _walk(engine: Engine, limit: int, filters: dict[str, Any]) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = engine.find_cases(limit=limit, cursor=cursor, **filters)
        pages.append([case.id for case in page.cases])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _usable(filters: dict[str, Any]) -> bool:
    """Filters ``find_cases`` takes (an empty range or no open state is refused)."""
    for what in ("opened", "updated"):
        since, before = filters.get(f"{what}_since"), filters.get(f"{what}_before")
        if since is not None and before is not None and before <= since:
            return False
    states = filters.get("state")
    return not (filters.get("open_only") and states and not set(states) & set(OPEN_STATES))


@contextmanager
def _stores() -> Iterator[list[Store]]:
    with tempfile.TemporaryDirectory() as folder:
        sqlite = SqlStore(f"sqlite:///{Path(folder) / 'cases.db'}", create=True)
        try:
            yield [ScanOnly(), MemoryStore(), sqlite]
        finally:
            sqlite.close()


PLANS = st.lists(
    st.one_of(steps, st.tuples(st.just("query"), queries, st.integers(1, 4))), max_size=40
)


@settings(max_examples=40, deadline=None)
@given(PLANS)
def test_every_store_finds_what_reading_every_case_finds(plan: list[tuple[Any, ...]]) -> None:
    with _stores() as stores:
        _find_alike(stores, plan)


@pytest.fixture(scope="module")
def language_collation() -> Iterator[tuple[str, str]]:
    """``(url, prefix)``: tables in a PostgreSQL database that sorts text by language
    rules, emptied by each example that uses them, dropped after the module."""
    url, prefix = postgres_language_collation_url(), fresh_prefix()
    SqlStore(url, prefix=prefix, create=True).close()
    yield url, prefix
    drop_tables(url, prefix)


#: Cases opened at one instant whose ids a language collation orders otherwise
#: (``case-a`` before ``case-B``, ``case-é`` before ``case-Z9``), walked a case a page.
TIES = [
    *(("open", case_id, "c-1", "email", None) for case_id in IDS),
    ("query", {}, 1),
    ("query", {"open_only": True}, 2),
]


@pytest.mark.postgres
@settings(max_examples=20, deadline=None)
@given(plan=PLANS)
@example(plan=TIES)
def test_postgres_under_a_language_collation_finds_what_reading_every_case_finds(
    language_collation: tuple[str, str], plan: list[tuple[Any, ...]]
) -> None:
    """Its collation would put ``case-a`` before ``case-B`` (and tie the walk's keyset
    comparison to that order): pages, cursors and the cases at risk must still come in
    code-point order, as on every other store."""
    url, prefix = language_collation
    store = SqlStore(url, prefix=prefix)
    try:
        with store.engine.begin() as conn:
            for table in reversed(store.tables.metadata.sorted_tables):
                conn.execute(table.delete())
        _find_alike([ScanOnly(), store], plan)
    finally:
        store.close()


def _find_alike(stores: list[Store], plan: list[tuple[Any, ...]]) -> None:
    """Take ``plan``'s steps on every store alike; at each query, and at the end for the
    cases at risk, every store must give what the first does."""
    clock = ManualClock(START)
    engines = [Engine(store, policy=POLICY, clock=clock) for store in stores]
    alike = len(stores) - 1
    for step in plan:
        if step[0] == "query":
            _, filters, limit = step
            if not _usable(filters):
                continue
            found = [_walk(engine, limit, filters) for engine in engines]
            assert found[1:] == found[:1] * alike, filters
            whole = [_walk(engine, 1000, filters) for engine in engines]
            assert whole[1:] == whole[:1] * alike, filters
            continue
        if step[0] == "wait":
            clock.advance(minutes=step[1])
            continue
        outcomes = {_apply(e, clock, s, step) for e, s in zip(engines, stores, strict=True)}
        assert len(outcomes) == 1, (step, outcomes)
    for within in (timedelta(0), timedelta(minutes=30), timedelta(hours=3)):
        risks = [
            [(r.case.id, r.deadline.key, r.due_at) for r in e.cases_at_risk(within, limit=3)]
            for e in engines
        ]
        assert risks[1:] == risks[:1] * alike


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"assignee": "agent:a"},
        {"assignee": "agent:a", "open_only": True},
        {"escalated_to": "legal", "state": "escalated"},
        {"customer_id": "c-1"},
        {"open_only": True},
        {"channel": "email"},
        {"opened_since": START, "opened_before": START + timedelta(1)},
        {"updated_since": START},
    ],
)
def test_the_sqlite_queries_are_indexed_searches(filters: dict[str, Any], tmp_path: Path) -> None:
    """SQLite's plan for each query reads an index, never the whole cases table; the
    page order comes from the index (no sort) for no filter and for an assignee or an
    escalation role."""
    store = SqlStore(f"sqlite:///{tmp_path / 'cases.db'}", create=True)
    engine = Engine(store, clock=ManualClock(START))
    for n in range(3):
        engine.open_case(actor="agent:x", customer={"id": "c-1", "name": "N"},
                         channel="email", case_id=f"case-{n}")  # fmt: skip
    plans = _plans(store, lambda: _walk(engine, 2, filters))
    plans += _plans(store, lambda: engine.cases_at_risk(timedelta(hours=1)))
    store.close()
    assert plans
    for plan in plans:
        assert not [line for line in plan if line.startswith("SCAN") and "INDEX" not in line]
        ordered = not set(filters) - {"assignee", "escalated_to", "opened_since", "opened_before"}
        if ordered and "cf_deadlines" not in " ".join(plan):
            assert not [line for line in plan if "TEMP B-TREE" in line], plan


def _plans(store: SqlStore, run: Callable[[], object]) -> list[list[str]]:
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(store.reader, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(store.reader, "before_cursor_execute", record)
    database = store.engine.url.database
    assert database is not None
    db = sqlite3.connect(database)
    try:
        return [[row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", p)] for sql, p in seen]
    finally:
        db.close()
