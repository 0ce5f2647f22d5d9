"""``complaintflow sla tick`` and ``sla status``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from adapters.memory import MemoryStore
from policies.loader import bundled_policy
from workflow import Engine
from workflow.cli import main

START = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
ARGS = ["--store", "memory://", "--policy", "bundled:retail"]


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """One store the CLI opens for any URL (standing in for a database file)."""
    shared = MemoryStore()
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url, **_: shared)
    return shared


def test_tick_fires_what_is_due_and_status_shows_it(store: MemoryStore) -> None:
    with freeze_time(START):
        engine = Engine(store, policy=bundled_policy("retail"))
        cid = engine.open_case(
            actor="system:x", customer={"id": "c", "name": "N"}, channel="social", subject="s"
        ).id
    runner = CliRunner()
    with freeze_time(START + timedelta(hours=2)):
        result = runner.invoke(main, ["sla", "tick", *ARGS])
        assert result.exit_code == 0, result.output
        assert f"{cid}  sla_breached  0:ack-social:breach" in result.output
        assert f"{cid}  escalate" in result.output
        assert "3 events fired" in result.output
        assert runner.invoke(main, ["sla", "tick", *ARGS]).output.endswith("0 events fired\n")
        status = runner.invoke(main, ["sla", "status", cid, *ARGS])
    assert status.exit_code == 0, status.output
    rows = {line.split()[0]: line.split() for line in status.output.splitlines()[1:]}
    assert rows["ack-social"][-1] == "breached"
    assert rows["remedy-agreed"][-1] == "running"


def test_status_of_an_unknown_case_is_a_clear_error(store: MemoryStore) -> None:
    result = CliRunner().invoke(main, ["sla", "status", "case-x", *ARGS])
    assert result.exit_code == 1
    assert "no case 'case-x' in the store" in result.output


def test_status_at_an_earlier_time_judges_the_policy_the_case_ran_under_then(
    store: MemoryStore,
) -> None:
    """Regression: ``sla status --at`` refused a time before ``migrate_policy`` unless
    the policy the case moved to was given, and then judged that time by it."""
    retail = bundled_policy("retail")
    with freeze_time(START):
        opened = Engine(store, policy=retail).open_case(
            actor="system:x", customer={"id": "c", "name": "N"}, channel="social", subject="s"
        )
    cid = opened.id
    with freeze_time(START + timedelta(hours=3)):
        moved = Engine(store, policy=bundled_policy("saas"), previous_policies=[retail])
        moved.migrate_policy(cid, actor="agent:a", reason="saas terms now")
    then = (START + timedelta(minutes=30)).isoformat()
    result = CliRunner().invoke(main, ["sla", "status", cid, *ARGS, "--at", then])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert rows["ack-social"][-1] == "running"


def test_status_speaks_the_verdict_words_audit_show_uses(store: MemoryStore) -> None:
    """``sla status`` and ``audit show`` judge targets alike (``sla.verdict``) and say so
    in the same words: a target whose clock has not started is ``not started`` (it was
    shown ``running``), one done in time ``met`` (it was ``achieved``)."""
    with freeze_time(START):
        engine = Engine(store, policy=bundled_policy("retail"))
        cid = engine.open_case(
            actor="system:x", customer={"id": "c", "name": "N"}, channel="social", subject="s"
        ).id
    with freeze_time(START + timedelta(minutes=50)):
        engine.acknowledge(cid, actor="agent:a")
    runner = CliRunner()
    with freeze_time(START + timedelta(hours=40)):
        result = runner.invoke(main, ["sla", "status", cid, *ARGS])
    assert result.exit_code == 0, result.output
    states = {line.split()[0]: line[line.rindex("  ") + 2 :]
              for line in result.output.splitlines()[1:]}  # fmt: skip
    assert states["ack-social"] == "met"
    assert states["promise-kept"] == "not started"
    assert states["remedy-agreed"] == "running"
