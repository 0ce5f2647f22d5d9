"""The roles a case is escalated to: an SLA target's ``escalate_to`` and an ``escalate``
step's ``to_role`` must be a role the policy knows (``roles``, or ``escalation_roles``
for a team that gives no compensation) when the policy declares its roles. A policy that
declares none takes any name, as before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from policies.errors import PolicyFileError
from policies.loader import bundled_policy, parse_policy
from tests.policy_texts import BASE
from workflow import Engine, InvalidStepData, ManualClock
from workflow.cli import main

#: BASE's roles with two more: ``agent``, ``team-lead``, ``supervisor``.
ROLES = BASE + "  team-lead:\n    authority: 100.00\n  supervisor:\n    authority: 500.00\n"
#: Line 13 onwards.
TARGETS = "sla:\n  targets:\n"


def _target(escalate_to: str, target_id: str = "ack") -> str:
    return (
        f"    - {{id: {target_id}, step: acknowledge, within: PT1H, on_breach: escalate, "
        f"escalate_to: {escalate_to}}}\n"
    )


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(text)
    return [(p.location, p.message) for p in refused.value.problems]


def test_a_misspelt_escalation_target_is_refused_where_it_is_written() -> None:
    """Regression: ``escalate_to: supervisr`` loaded, and breaches escalated the case
    to a role nobody has."""
    assert _problems(ROLES + TARGETS + _target("supervisr")) == [
        (
            "sla.targets[0].escalate_to (line 15)",
            "unknown role 'supervisr' (did you mean 'supervisor'?); the policy's roles are: "
            "agent, team-lead, supervisor (a role that gives no compensation goes in "
            "escalation_roles)",
        )
    ]


def test_a_playbooks_escalation_target_is_checked_too() -> None:
    text = (
        ROLES
        + "playbooks:\n  aggressive:\n    sla:\n"
        + _target("team-laed").replace("    - ", "      - ")
    )
    assert _problems(text) == [
        (
            "playbooks.aggressive.sla[0].escalate_to (line 16)",
            "unknown role 'team-laed' (did you mean 'team-lead'?); the policy's roles are: "
            "agent, team-lead, supervisor (a role that gives no compensation goes in "
            "escalation_roles)",
        )
    ]


def test_a_team_that_gives_no_compensation_is_declared_in_escalation_roles() -> None:
    text = ROLES + "escalation_roles: [legal, fraud]\n" + TARGETS + _target("legal")
    policy = parse_policy(text)
    assert policy.escalation_roles == ["legal", "fraud"]
    assert policy.known_roles == ("agent", "team-lead", "supervisor", "legal", "fraud")
    assert _problems(text.replace("escalate_to: legal", "escalate_to: legl"))[0][1].startswith(
        "unknown role 'legl' (did you mean 'legal'?); the policy's roles are: agent, "
        "team-lead, supervisor, legal, fraud"
    )


def test_escalation_roles_alone_declare_the_roles() -> None:
    """A policy without compensation roles (anyone may offer anything) that lists its
    escalation roles is held to them."""
    head = 'name: Shop\nversion: "1"\ncurrency: EUR\nescalation_roles: [desk]\n'
    assert parse_policy(head + TARGETS + _target("desk")).known_roles == ("desk",)
    assert _problems(head + TARGETS + _target("dsk"))[0][0] == "sla.targets[0].escalate_to (line 7)"


def test_an_escalation_role_listed_twice_is_refused() -> None:
    assert _problems(ROLES + "escalation_roles: [legal, legal]\n") == [
        ("escalation_roles[1] (line 13)", "'legal' is listed twice")
    ]


def test_a_policy_declaring_no_roles_takes_any_escalation_target_as_before() -> None:
    head = 'name: Shop\nversion: "1"\ncurrency: EUR\n'
    policy = parse_policy(head + TARGETS + _target("anyone-at-all"))
    assert policy.known_roles is None


def test_declaring_no_escalation_roles_leaves_a_policys_stamp_as_it_was() -> None:
    """A new key, left out of the digest while it holds its default (decision 0049)."""
    assert bundled_policy("retail").stamp == (
        "2026.1@sha256:dc2beb59c7d5e604df73ff1b2acae938371ff3753e5bcd298b14f25445a6ac77"
    )
    assert parse_policy(ROLES).stamp != parse_policy(ROLES + "escalation_roles: []\n").stamp


def _engine(text: str) -> tuple[Engine, str]:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    engine = Engine(MemoryStore(), clock=clock, policy=parse_policy(text))
    case = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web")
    return engine, case.id


def test_the_escalate_step_refuses_a_role_the_policy_does_not_know() -> None:
    """Regression: ``escalate(to_role="supervisr")`` escalated the case to nobody."""
    engine, cid = _engine(ROLES + "escalation_roles: [legal]\n")
    with pytest.raises(InvalidStepData) as refused:
        engine.escalate(cid, actor="agent:a", reason="angry", to_role="supervisr")
    assert refused.value.problems == (
        (
            "to_role",
            "unknown role 'supervisr' (did you mean 'supervisor'?); the policy's roles are: "
            "agent, team-lead, supervisor, legal",
        ),
    )
    assert engine.get(cid).version == 1
    for role in ("supervisor", "legal"):
        case = engine.escalate(cid, actor="agent:a", reason="angry", to_role=role)
        assert case.escalation is not None
        assert case.escalation.to_role == role
        engine.resume(cid, actor="agent:a")


def test_the_escalate_step_takes_any_role_under_a_policy_declaring_none() -> None:
    engine, cid = _engine('name: Shop\nversion: "1"\ncurrency: EUR\n')
    case = engine.escalate(cid, actor="agent:a", reason="angry", to_role="anyone")
    assert case.escalation is not None
    assert case.escalation.to_role == "anyone"


def test_policy_check_names_the_escalation_roles_and_a_misspelt_target(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ROLES + "escalation_roles: [legal]\n" + TARGETS + _target("legal"))
    result = CliRunner().invoke(main, ["policy", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "roles: agent, team-lead, supervisor; escalation roles: legal" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(ROLES + TARGETS + _target("supervisr"))
    result = CliRunner().invoke(main, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert (
        "  - sla.targets[0].escalate_to (line 15): unknown role 'supervisr' (did you mean "
        "'supervisor'?)" in result.output
    )
