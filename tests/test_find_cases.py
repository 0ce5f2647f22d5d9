"""``Engine.find_cases`` and ``Engine.cases_at_risk`` as an embedding product calls them:
the filters it may give and how a bad one is refused, the cursor, the limit, and the
store port they go through. What each store finds is in the contract suite
(``adapters/_contract.py``), which every store runs."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.memory import MemoryStore
from tests.conftest import START, open_case
from workflow import (
    CaseAtRisk,
    CasePage,
    ComplaintflowError,
    Engine,
    FindsCases,
    InvalidQuery,
    ManualClock,
)
from workflow.checklist import OPEN_STATES
from workflow.query import CaseQuery

NAIVE = datetime(2026, 11, 2, 9, 0)  # noqa: DTZ001 - the naive time being refused


@pytest.mark.parametrize(
    ("filters", "name", "problem"),
    [
        ({"state": "closd"}, "state", "'closd' is not a state; the states are: received, "),
        ({"state": ["received", 3]}, "state", "an int is not a state"),
        ({"state": []}, "state", "an empty list matches no case: leave it out"),
        ({"state": 3}, "state", "expected a state name or a list of them, got int"),
        ({"state": ["closed", "withdrawn"], "open_only": True}, "open_only",
         "the states asked for (closed, withdrawn) are not open"),
        ({"open_only": "yes"}, "open_only", "expected True or False, got str"),
        ({"customer_id": 42}, "customer_id", "expected text, got int"),
        ({"customer_id": " "}, "customer_id", "it is blank"),
        ({"customer_id": "c" * 201}, "customer_id", "longer than 200 characters"),
        ({"customer_id": "c-\ud800"}, "customer_id",
         "holds U+D800 (a surrogate) at position 3: no stored text can"),
        ({"assignee": ""}, "assignee", "it is blank"),
        ({"assignee": "a" * 301}, "assignee",
         "longer than 300 characters: assign refuses such a name"),
        ({"assignee": "al\x00ice"}, "assignee",
         "holds U+0000 at position 3: assign refuses such a name"),
        ({"assignee": "agent:\udfff"}, "assignee", "holds U+DFFF (a surrogate) at position 7"),
        ({"escalated_to": "Team Lead"}, "escalated_to",
         "'Team Lead' is not a role name like 'team-lead'"),
        ({"channel": "fax"}, "channel", "'fax' is not a channel; the channels are: email, "),
        ({"channel": 1}, "channel", "an int is not a channel"),
        ({"category": "Delivery!"}, "category", "is not a category name like 'delivery'"),
        ({"opened_since": NAIVE}, "opened_since",
         "naive datetime 2026-11-02T09:00:00 refused; give a time zone"),
        ({"opened_before": "2026-11-02T09:00:00+00:00"}, "opened_before",
         "expected an aware datetime, got str"),
        ({"updated_since": NAIVE}, "updated_since", "naive datetime"),
        ({"updated_before": NAIVE}, "updated_before", "naive datetime"),
        ({"opened_since": START, "opened_before": START}, "opened_before",
         "2026-11-02T09:00:00.000000+00:00 is not after opened_since "
         "2026-11-02T09:00:00.000000+00:00: no case can match"),
        ({"updated_since": START, "updated_before": START - timedelta(1)}, "updated_before",
         "is not after updated_since"),
        ({"opened_since": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
         "opened_since", "is outside the times UTC can hold"),
        ({"limit": 0}, "limit", "0 is not from 1 to 1000"),
        ({"limit": 1001}, "limit", "1001 is not from 1 to 1000"),
        ({"limit": True}, "limit", "expected a whole number from 1 to 1000, got bool"),
        ({"limit": 10.0}, "limit", "got float"),
        ({"cursor": 5}, "cursor", "expected the text of a page's next_cursor, got int"),
        ({"cursor": "next"}, "cursor", "it is not a cursor find_cases returned"),
    ],
)  # fmt: skip
def test_a_filter_that_cannot_be_used_is_refused_naming_it(
    filters: dict[str, Any], name: str, problem: str
) -> None:
    engine = Engine(_Unreadable())
    with pytest.raises(InvalidQuery) as refused:
        engine.find_cases(**filters)
    assert (refused.value.filter, refused.value.query) == (name, "find_cases")
    assert problem in refused.value.problem
    assert str(refused.value) == f"find_cases: {name}: {refused.value.problem}"


def test_invalid_query_is_a_complaintflow_error_and_a_value_error() -> None:
    assert issubclass(InvalidQuery, ComplaintflowError)
    assert issubclass(InvalidQuery, ValueError)


class _Unreadable(MemoryStore):
    """A store that must not be read: a refused query reads nothing."""

    def case_ids(self) -> Any:
        raise AssertionError("read the store")

    def find_cases(self, *args: Any) -> Any:
        raise AssertionError("read the store")

    def cases_at_risk(self, *args: Any) -> Any:
        raise AssertionError("read the store")


def _ids(page: CasePage) -> list[str]:
    return [case.id for case in page.cases]


def test_a_page_holds_a_hundred_cases_unless_asked_otherwise(engine: Engine) -> None:
    ids = [open_case(engine, case_id=f"case-{n:03d}") for n in range(101)]
    first = engine.find_cases()
    assert _ids(first) == ids[:100]
    assert first.next_cursor is not None
    second = engine.find_cases(cursor=first.next_cursor)
    assert (_ids(second), second.next_cursor) == (ids[100:], None)
    assert _ids(engine.find_cases(limit=1000)) == ids


def test_a_cursor_is_opaque_url_safe_text_for_the_same_filters_any_limit(engine: Engine) -> None:
    ids = [open_case(engine, case_id=f"case-{n}") for n in range(5)]
    page = engine.find_cases(open_only=True, limit=2)
    cursor = page.next_cursor
    assert cursor is not None
    assert re.fullmatch(r"[A-Za-z0-9._-]+", cursor)
    assert "case-1" not in cursor
    assert _ids(engine.find_cases(open_only=True, limit=3, cursor=cursor)) == ids[2:5]
    # The same filters written another way are the same filters.
    same = engine.find_cases(state=list(reversed(OPEN_STATES)), cursor=cursor)
    assert _ids(same) == ids[2:]
    with pytest.raises(InvalidQuery, match="cursor: it was returned for other filters"):
        engine.find_cases(cursor=cursor)
    with pytest.raises(InvalidQuery, match="cursor: it was returned for other filters"):
        engine.find_cases(open_only=True, channel="email", cursor=cursor)


def with_id(cursor: str, case_id: str) -> str:
    """``cursor`` with another case id in it (its time and filters kept): a forged one."""
    raw = cursor.removeprefix("c1.")
    form = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    text = json.dumps({**form, "id": case_id}, separators=(",", ":"), sort_keys=True)
    return "c1." + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c[:-3],  # truncated
        lambda c: c + "!",
        lambda c: "c2." + c[3:],  # another form's
        lambda c: c[:3] + "e30",  # base64 of {}
        lambda c: c[:3] + "eyJhdCI6IjIwMjYiLCJpZCI6MSwicSI6IngifQ",  # wrong kinds
        lambda c: c[:3] + "A" * 2000,
        lambda c: with_id(c, "case-\ud800"),  # no stored id holds a surrogate
    ],
)
def test_a_cursor_that_was_not_returned_is_refused(engine: Engine, edit: Any) -> None:
    for n in range(3):
        open_case(engine, case_id=f"case-{n}")
    cursor = engine.find_cases(limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidQuery, match="cursor: it is not a cursor find_cases returned"):
        engine.find_cases(limit=1, cursor=edit(cursor))


def test_a_cursor_still_works_when_the_case_it_followed_is_gone(
    engine: Engine, store: MemoryStore
) -> None:
    from workflow import Tombstone

    ids = [open_case(engine, case_id=f"case-{n}") for n in range(3)]
    page = engine.find_cases(limit=1)
    case = store.load(ids[0])
    store.purge(
        Tombstone(ids[0], case.version, case.head_hash, case.opened_at, START, START, "dpo:x", "x")
    )
    assert _ids(engine.find_cases(limit=5, cursor=page.next_cursor)) == ids[1:]


def test_filters_take_an_instant_in_any_zone_and_state_as_a_member(engine: Engine) -> None:
    from workflow import Channel, State

    cid = open_case(engine)
    helsinki = timezone(timedelta(hours=2))
    assert _ids(engine.find_cases(opened_since=START.astimezone(helsinki))) == [cid]
    assert _ids(engine.find_cases(opened_before=START.astimezone(helsinki))) == []
    assert _ids(engine.find_cases(state=State.RECEIVED, channel=Channel.EMAIL)) == [cid]
    assert _ids(engine.find_cases(state=(s for s in ["received"]))) == [cid]


# -- the store port ------------------------------------------------------------------


class _Spy(MemoryStore):
    """Records what the engine asks of ``FindsCases``."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[Any, ...]] = []

    def find_cases(self, query: CaseQuery, after: Any, limit: int) -> Any:
        self.asked.append((query, after, limit))
        return super().find_cases(query, after, limit)

    def cases_at_risk(self, until: datetime, limit: int) -> Any:
        self.asked.append((until, limit))
        return super().cases_at_risk(until, limit)


class ScanOnly(MemoryStore):
    """A store without ``FindsCases`` (a third party's): the engine reads through
    ``Store``. (A protocol member set to None is one the object does not have.)"""

    find_cases = None
    cases_at_risk = None


def test_the_engine_asks_a_store_that_finds_cases_for_one_more_than_the_page(
    clock: ManualClock,
) -> None:
    spy = _Spy()
    engine = Engine(spy, clock=clock)
    ids = [open_case(engine, case_id=f"case-{n}") for n in range(3)]
    page = engine.find_cases(assignee="agent:x", state="received", limit=2)
    assert page.cases == ()
    ((query, after, limit),) = spy.asked
    assert query == CaseQuery(states=frozenset({"received"}), assignee="agent:x")
    assert (after, limit) == (None, 3)
    spy.asked.clear()
    page = engine.find_cases(limit=2)
    assert _ids(page) == ids[:2]
    engine.find_cases(limit=2, cursor=page.next_cursor)
    assert spy.asked[-1][1:] == ((START, ids[1]), 3)
    engine.cases_at_risk(timedelta(hours=1), limit=7)
    assert spy.asked[-1] == (START + timedelta(hours=1), 7)


def test_a_store_without_finds_cases_is_read_through_the_store_port(clock: ManualClock) -> None:
    store = ScanOnly()
    assert not isinstance(store, FindsCases)
    assert isinstance(MemoryStore(), FindsCases)
    engine = Engine(store, clock=clock)
    ids = [open_case(engine, case_id=f"case-{n}") for n in (3, 1, 2)]
    engine.assign(ids[1], actor="team-lead:t", to="agent:x")
    page = engine.find_cases(limit=2)
    assert _ids(page) == ["case-1", "case-2"]
    assert _ids(engine.find_cases(cursor=page.next_cursor, limit=2)) == ["case-3"]
    assert _ids(engine.find_cases(assignee="agent:x")) == ["case-1"]


# -- cases at risk ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "name", "problem"),
    [
        ({"within": 3600}, "within", "expected a timedelta, got int"),
        (
            {"within": timedelta(minutes=-1)},
            "within",
            "-0:01:00 is negative: give how far ahead to look",
        ),
        ({"within": timedelta(days=3_000_000)}, "within", "is past the year 9999"),
        ({"within": timedelta(hours=1), "now": NAIVE}, "now", "naive datetime"),
        ({"within": timedelta(hours=1), "now": "now"}, "now", "expected an aware datetime"),
        ({"within": timedelta(hours=1), "limit": 0}, "limit", "0 is not from 1 to 1000"),
    ],
)
def test_cases_at_risk_refuses_arguments_it_cannot_use(
    args: dict[str, Any], name: str, problem: str
) -> None:
    with pytest.raises(InvalidQuery) as refused:
        Engine(_Unreadable()).cases_at_risk(**args)
    assert (refused.value.filter, refused.value.query) == (name, "cases_at_risk")
    assert problem in str(refused.value)


def test_cases_at_risk_looks_ahead_from_the_engine_s_clock_or_now(clock: ManualClock) -> None:
    from policies.loader import parse_policy

    policy = parse_policy(
        "name: p\nversion: '1'\ncurrency: EUR\nsla:\n  warn_at: [75]\n  targets:\n"
        "    - {id: ack, step: acknowledge, within: PT1H}\n"
    )
    engine = Engine(MemoryStore(), policy=policy, clock=clock)
    cid = open_case(engine)
    warned = START + timedelta(minutes=45)
    assert engine.cases_at_risk(timedelta(minutes=44)) == []
    (entry,) = engine.cases_at_risk(timedelta(minutes=45))
    assert isinstance(entry, CaseAtRisk)
    assert (entry.case.id, entry.step, entry.kind, entry.due_at) == (
        cid, "acknowledge", "warn", warned,
    )  # fmt: skip
    assert engine.cases_at_risk(timedelta(0), now=warned) == [entry]
    assert engine.cases_at_risk(timedelta(0), now=warned - timedelta(microseconds=1)) == []
    helsinki = timezone(timedelta(hours=2))
    assert engine.cases_at_risk(timedelta(0), now=warned.astimezone(helsinki)) == [entry]
    clock.set(warned)
    assert engine.cases_at_risk(timedelta(0)) == [entry]
