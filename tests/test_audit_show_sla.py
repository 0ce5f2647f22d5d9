"""``audit show`` gives each SLA target's verdict as the case stood (``--at``, or now),
under the policy it ran under then, computed as ``sla status`` computes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from adapters.sql import SqlStore
from policies.loader import load_policy
from tests.stores import sqlite_url
from workflow import Engine, ManualClock, sla
from workflow.cli import main

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY_TEXT = """\
name: audited
version: "1"
currency: EUR
sla:
  warn_at: [50]
  targets:
    - {id: ack, step: acknowledge, within: PT1H}
    - {id: listen, step: listen, within: PT2H, start: previous_step}
    - {id: record, step: record, within: PT4H, start: previous_step}
    - {id: apology, step: apologise, within: PT1H, start: previous_step}
    - {id: agree, step: accept_remedy, within: P2D}
"""
NEXT_TEXT = """\
name: audited
version: "2"
currency: EUR
"""


def _case(tmp_path: Path) -> tuple[str, Path, Path]:
    """case-s: opened 09:00 by chat; acknowledged 09:20 (in time); the listen target
    (2h from the acknowledgement: due 11:20) warned and breached by the sweeper at
    12:00; listened 12:30 (late); the SLA clock paused at 13:00; moved to policy 2 at
    15:00."""
    url = sqlite_url(tmp_path)
    first, second = tmp_path / "policy-1.yaml", tmp_path / "policy-2.yaml"
    first.write_text(POLICY_TEXT)
    second.write_text(NEXT_TEXT)
    policy, next_policy = load_policy(str(first)), load_policy(str(second))
    clock = ManualClock(START)
    store = SqlStore(url, create=True)
    engine = Engine(store, clock=clock, policy=policy)
    engine.open_case(actor="agent:a", customer={"id": "c", "name": "Ann"}, channel="chat",
                     subject="Broken vase", case_id="case-s")  # fmt: skip
    clock.set(START + timedelta(minutes=20))
    engine.acknowledge("case-s", actor="agent:a", message="hello")
    clock.set(START + timedelta(hours=3))
    assert [e.type for e in engine.tick()] == ["sla_warning", "sla_breached"]
    clock.set(START + timedelta(hours=3, minutes=30))
    engine.listen("case-s", actor="agent:a", note="n")
    clock.set(START + timedelta(hours=4))
    engine.pause_sla("case-s", actor="agent:a", reason="waiting for photos")
    clock.set(START + timedelta(hours=6))
    moved = Engine(store, clock=clock, policy=next_policy, previous_policies=[policy])
    moved.migrate_policy("case-s", actor="agent:a", reason="policy 2 replaces 1")
    store.close()
    return url, first, second


def _section(output: str) -> list[str]:
    """The lines of the SLA section: from its heading to the state line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SLA"))
    return lines[start:-1]


def _verdicts(output: str) -> dict[str, tuple[str, str, str]]:
    """target: (step, due, verdict) from the section's rows."""
    rows = {}
    for line in _section(output)[2:]:
        target, step, due, verdict = line.split(maxsplit=3)
        rows[target] = (step, due, verdict)
    return rows


def test_show_gives_each_targets_verdict_as_the_case_stood(tmp_path: Path) -> None:
    url, first, second = _case(tmp_path)
    at = "2026-11-02T12:45:00Z"  # listened (late), not yet paused
    shown = CliRunner().invoke(main, ["audit", "show", "case-s", "--store", url, "--at", at,
                                      "--policy", str(first), "--policy", str(second)])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    section = _section(shown.output)
    digest = load_policy(str(first)).stamp.split(":")[1][:8]
    assert section[0] == f"SLA targets under policy 1@sha256:{digest} at 2026-11-02T12:45:00Z:"
    assert section[1].split() == ["target", "step", "due", "(UTC)", "verdict"]
    assert _verdicts(shown.output) == {
        "ack": ("acknowledge", "2026-11-02T10:00:00Z", "met at 2026-11-02T09:20:00Z"),
        "listen": ("listen", "2026-11-02T11:20:00Z",
                   "breached at 2026-11-02T11:20:00Z; done at 2026-11-02T12:30:00Z"),
        "record": ("record", "2026-11-02T16:30:00Z", "running (3h45 left)"),
        "apology": ("apologise", "-", "not started"),
        "agree": ("accept_remedy", "2026-11-04T09:00:00Z", "running (44h15 left)"),
    }  # fmt: skip
    assert shown.output.splitlines()[-1] == "state: listening, version 5, priority normal"


def test_while_paused_running_targets_are_paused_with_the_time_left_on_their_clock(
    tmp_path: Path,
) -> None:
    url, first, second = _case(tmp_path)
    at = "2026-11-02T14:00:00Z"  # paused an hour ago, before the migration
    shown = CliRunner().invoke(main, ["audit", "show", "case-s", "--store", url, "--at", at,
                                      "--policy", str(first), "--policy", str(second)])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    rows = _verdicts(shown.output)
    assert rows["record"] == ("record", "-", "paused (3h30 left)")
    assert rows["agree"] == ("accept_remedy", "-", "paused (44h00 left)")
    # A target that breached keeps the time it breached at while the clock is paused.
    assert rows["listen"][1:] == (
        "2026-11-02T11:20:00Z",
        "breached at 2026-11-02T11:20:00Z; done at 2026-11-02T12:30:00Z",
    )


def test_the_verdicts_are_those_of_sla_status_at_that_time(tmp_path: Path) -> None:
    """One computation: ``sla.verdicts`` reads ``sla.status`` (``Engine.sla_status``)."""
    url, first, _ = _case(tmp_path)
    engine = Engine(SqlStore(url), policy=load_policy(str(first)))
    when = datetime(2026, 11, 2, 12, 45, tzinfo=UTC)
    case = engine.state_at("case-s", when)
    statuses = engine.sla_status("case-s", when)
    verdicts = sla.verdicts(case, load_policy(str(first)), when)
    assert [(v.target, v.step, v.due_at) for v in verdicts] == [
        (s.target, s.step, s.due_at) for s in statuses
    ]
    assert [v.kind for v in verdicts] == ["met", "breached", "running", "not started", "running"]
    assert verdicts[1].at == datetime(2026, 11, 2, 11, 20, tzinfo=UTC)
    assert verdicts[1].done_at == datetime(2026, 11, 2, 12, 30, tzinfo=UTC)
    assert verdicts[2].remaining == timedelta(hours=3, minutes=45)
    helsinki = timezone(timedelta(hours=2))  # one instant, written in another zone
    assert sla.verdicts(case, load_policy(str(first)), when.astimezone(helsinki)) == verdicts
    engine.store.close()


def test_verdicts_refuse_a_naive_time_naming_it_as_sla_status_does(tmp_path: Path) -> None:
    url, first, _ = _case(tmp_path)
    engine = Engine(SqlStore(url), policy=load_policy(str(first)))
    case = engine.get("case-s")
    naive = datetime(2026, 11, 2, 12, 45)  # noqa: DTZ001 - the naive time being refused
    with pytest.raises(ValueError, match=r"^verdicts\(now\): naive datetime 2026-11-02T12:45:00"):
        sla.verdicts(case, engine.policy, naive)
    with pytest.raises(TypeError, match=r"^verdicts\(now\): expected a datetime, got str"):
        sla.verdicts(case, engine.policy, "2026-11-02T12:45:00Z")  # type: ignore[arg-type]
    engine.store.close()


def test_without_at_the_verdicts_are_now_under_the_policy_the_case_runs_under(
    tmp_path: Path,
) -> None:
    url, first, second = _case(tmp_path)
    policies = ["--policy", str(first), "--policy", str(second)]
    with freeze_time("2026-11-02T16:00:00Z"):
        shown = CliRunner().invoke(main, ["audit", "show", "case-s", "--store", url, *policies])
    assert shown.exit_code == 0, shown.output
    stamp = load_policy(str(second)).stamp
    assert _section(shown.output) == [
        f"SLA targets under policy 2@sha256:{stamp.split(':')[1][:8]} at "
        "2026-11-02T16:00:00Z: none apply to this case"
    ]


@pytest.mark.parametrize("given", [[], ["--policy", "bundled:retail"]])
def test_a_policy_not_given_is_said_in_one_line(tmp_path: Path, given: list[str]) -> None:
    url, first, _ = _case(tmp_path)
    shown = CliRunner().invoke(main, ["audit", "show", "case-s", "--store", url,
                                      "--at", "2026-11-02T12:45:00Z", *given])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    stamp = load_policy(str(first)).stamp
    assert _section(shown.output) == [
        f"SLA verdicts: the case ran under policy {stamp}, which was not given: pass every "
        "policy file the cases ran under with --policy (bundled:NAME for a bundled one)"
    ]
    assert "seq" in shown.output  # the timeline is shown all the same


def test_a_target_breached_and_not_done_keeps_its_due_time_while_paused(tmp_path: Path) -> None:
    """``sla.status`` gave a paused target no due time, breached ones too: the verdict
    could not say when it breached."""
    from adapters.memory import MemoryStore

    first = tmp_path / "policy-1.yaml"
    first.write_text(POLICY_TEXT)
    policy = load_policy(str(first))
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), clock=clock, policy=policy)
    engine.open_case(actor="agent:a", customer={"id": "c", "name": "Ann"}, channel="chat",
                     subject="s", case_id="case-p")  # fmt: skip
    clock.set(START + timedelta(hours=1, minutes=30))
    engine.tick()
    engine.pause_sla("case-p", actor="agent:a", reason="waiting")
    clock.advance(hours=1)
    ack = engine.sla_status("case-p")[0]
    assert (ack.target, ack.paused, ack.breached, ack.due_at) == (
        "ack",
        True,
        True,
        START + timedelta(hours=1),
    )
    (first_verdict, *_) = sla.verdicts(engine.get("case-p"), policy, clock.now())
    assert (first_verdict.kind, first_verdict.at) == ("breached", START + timedelta(hours=1))


def test_without_at_a_history_ahead_of_the_clock_is_judged_at_its_last_event(
    tmp_path: Path,
) -> None:
    """A store written on a simulated clock (the demo's) can be ahead of this machine's:
    the case as it stands is judged at its last event, not before its own steps."""
    url, first, second = _case(tmp_path)
    policies = ["--policy", str(first), "--policy", str(second)]
    with freeze_time("2026-11-02T10:00:00Z"):
        shown = CliRunner().invoke(main, ["audit", "show", "case-s", "--store", url, *policies])
    assert shown.exit_code == 0, shown.output
    assert _section(shown.output)[0].startswith("SLA targets under policy 2@sha256:")
    assert " at 2026-11-02T15:00:00Z: none apply" in _section(shown.output)[0]
