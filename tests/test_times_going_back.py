"""A history whose event times go back (a consistently re-hashed forgery, or another
program's buggy writes: the engine never writes one, it clamps ``now`` to the case's
last event) is a verify finding located at the event, on a store and in an export; the
case's state at a time is refused on it, naming the event (docs/decisions/0035)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import PATH, START
from tests.stores import STORE_KINDS, each_store, sqlite_url
from workflow import AuditFailure, Case, Engine, ManualClock, audit
from workflow.cli import main
from workflow.events import Event, make_event
from workflow.personal import vault_of
from workflow.replay import replay

#: Event 4 (``record``, made at 10:30) moved to 09:45: after event 2 (09:30), before
#: event 3 (``listen``, 10:00).
MOVED_SEQ = 4
MOVED_TO = START + timedelta(minutes=45)
FINDING = "at 2026-11-02T09:45:00+00:00 goes back before seq 3's at 2026-11-02T10:00:00+00:00"


@pytest.fixture(params=STORE_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from each_store(request.param, tmp_path)


def forged_history(
    case_id: str = "case-0", moved_to: datetime | None = MOVED_TO
) -> tuple[list[Event], Case]:
    """A case's events as the engine made them (one step every 30 minutes), with event
    4's time moved to ``moved_to`` (None: left) and every hash from there on recomputed,
    and the snapshot a replay of them gives: a history that chains and replays."""
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), clock=clock)
    engine.open_case(
        actor="agent:a", customer={"id": "c0", "name": "Ann"}, channel="email",
        subject="broken", case_id=case_id,
    )  # fmt: skip
    for step, inputs in PATH[:6]:
        clock.advance(minutes=30)
        actor = "customer:c" if step == "accept_remedy" else "agent:a"
        if step == "accept_remedy":
            inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
        engine.step(case_id, step, actor=actor, **inputs)
    forged: list[Event] = []
    for e in engine.history(case_id):
        at = moved_to if e.seq == MOVED_SEQ and moved_to is not None else e.at
        prev = forged[-1].hash if forged else e.prev_hash
        forged.append(
            make_event(e.case_id, e.seq, e.type, at, e.actor, e.data, e.policy_version, prev)
        )
    return forged, replay(forged, vault_of(engine.get(case_id).personal))


def written(store: Any) -> list[Event]:
    """The forged history written into ``store`` as another program would, with a sound
    case beside it; returns the forged events."""
    forged, snapshot = forged_history()
    store.append(snapshot, forged, 0)
    sound, sound_snapshot = forged_history("case-1", None)
    store.append(sound_snapshot, sound, 0)
    return forged


def test_the_forged_history_chains_and_replays(any_store: Any) -> None:
    """What verify checked before: every hash, link and seq holds, and the snapshot is
    the replay's, so nothing else is found."""
    forged = written(any_store)
    assert audit.check_chain("case-0", forged) == []
    assert replay(any_store.events("case-0"), vault_of(any_store.load("case-0").personal)) == (
        any_store.load("case-0")
    )


def test_verify_locates_the_event_whose_time_goes_back(any_store: Any) -> None:
    written(any_store)
    for findings in (audit.verify_store(any_store), audit.verify_store(any_store, "case-0")):
        assert [(f.case_id, f.seq, f.problem) for f in findings] == [("case-0", MOVED_SEQ, FINDING)]


def test_verify_of_an_export_locates_it_too(any_store: Any) -> None:
    written(any_store)
    out = io.StringIO()
    audit.export_jsonl(any_store, out)
    findings = audit.verify_export(io.StringIO(out.getvalue()).readlines())
    assert [(f.case_id, f.seq, f.problem) for f in findings] == [("case-0", MOVED_SEQ, FINDING)]


def test_events_at_one_instant_are_not_going_back() -> None:
    """Several events at one time (a sweep's warning and breach before a late step) are
    in order: only an earlier time than the event before is reported."""
    events, _ = forged_history()
    same = []
    for e in events:
        prev = same[-1].hash if same else e.prev_hash
        same.append(make_event(e.case_id, e.seq, e.type, START, e.actor, e.data,
                               e.policy_version, prev))  # fmt: skip
    assert audit.check_times("case-0", same) == []
    assert [(f.seq, f.problem) for f in audit.check_times("case-0", events)] == [
        (MOVED_SEQ, FINDING)
    ]


@pytest.mark.parametrize(
    "when",
    [
        MOVED_TO + timedelta(minutes=5),  # events 1, 2 and 4: a seq gap before
        START + timedelta(minutes=10),  # event 1 only: a prefix, still refused
        START + timedelta(days=30),  # every event
    ],
    ids=["between", "before", "after"],
)
def test_state_at_on_such_a_history_is_refused_naming_the_event(
    any_store: Any, when: datetime
) -> None:
    """Which events were "done by then" has no answer when the times and the order
    disagree: refused at any time, naming the event and pointing to verify, instead of a
    replay error about a seq gap (or, at some times, an answer)."""
    written(any_store)
    engine = Engine(any_store, clock=ManualClock(START))
    with pytest.raises(AuditFailure) as raised:
        engine.state_at("case-0", when)
    assert (raised.value.case_id, raised.value.seq) == ("case-0", MOVED_SEQ)
    assert raised.value.reason == (
        f"{FINDING}: the case's state at a time is not defined when its event times go "
        "back (run `complaintflow audit verify --store URL --case case-0`)"
    )
    assert "seq gap" not in str(raised.value)
    assert engine.state_at("case-1", when).id == "case-1"


def test_audit_show_at_a_time_is_one_line_and_without_a_time_shows_the_times(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    written(store)
    store.close()
    runner = CliRunner()
    at = runner.invoke(main, ["audit", "show", "case-0", "--store", url, "--at",
                              "2026-11-02T09:50:00Z"])  # fmt: skip
    assert at.exit_code == 1, at.output
    assert at.output.splitlines() == [
        f"Error: case case-0 at event {MOVED_SEQ}: {FINDING}: the case's state at a time is "
        "not defined when its event times go back (run `complaintflow audit verify --store URL "
        "--case case-0`)"
    ]
    whole = runner.invoke(main, ["audit", "show", "case-0", "--store", url])
    assert whole.exit_code == 0, whole.output
    assert "  4  2026-11-02T09:45:00Z  agent:a     record" in whole.output
    verify = runner.invoke(main, ["audit", "verify", "--store", url])
    assert verify.exit_code == 1
    assert f"TAMPERED  case case-0 event {MOVED_SEQ}: {FINDING}" in verify.output.splitlines()
