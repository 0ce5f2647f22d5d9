"""Customer tiers a policy declares (``tiers``): a tier the policy names anywhere must be
one of them, and a case opens only for a customer of one of them. Without ``tiers``, any
tier is accepted, as before (and the policy's stamp is what it was)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from policies.errors import PolicyFileError
from policies.expectations import load_expectations
from policies.loader import bundled_policy, parse_policy
from policies.model import Policy
from tests.policy_texts import BASE
from workflow import Engine, InvalidStepData, ManualClock, StepNotAllowed
from workflow.cli import main

TIERS = "tiers: [standard, gold]\n"


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(text)
    return [(p.location, p.message) for p in refused.value.problems]


def test_a_tier_the_policy_does_not_declare_is_refused_where_it_is_named() -> None:
    text = (
        BASE
        + TIERS
        + "adjustments:\n  tiers: {glod: 2}\n"
        + "sla:\n  targets:\n"
        + "    - {id: ack-gold, step: acknowledge, within: PT1H, when: {tier: [gold, platnum]}}\n"
    )
    assert _problems(text) == [
        ("adjustments.tiers.glod (line 11)", "'glod' is not one of the policy's tiers: "
                                             "standard, gold"),
        ("sla.targets[0].when.tier[1] (line 14)", "'platnum' is not one of the policy's "
                                                  "tiers: standard, gold"),
    ]  # fmt: skip


def test_a_tier_declared_twice_is_refused() -> None:
    assert _problems(BASE + "tiers: [gold, standard, gold]\n") == [
        ("tiers[2] (line 9)", "'gold' is listed twice")
    ]


def test_the_declared_tiers_must_hold_the_customers_default_tier() -> None:
    """A customer given no tier is ``standard``: a policy declaring tiers without it
    could open no case for such a customer."""
    assert _problems(BASE + "tiers: [gold, silver]\n") == [
        ("tiers (line 9)", "'standard' (a customer's tier when none is given) is not listed")
    ]


def _engine(text: str) -> Engine:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    return Engine(MemoryStore(), clock=clock, policy=parse_policy(text))


def test_a_case_opens_only_for_a_customer_of_a_declared_tier() -> None:
    engine = _engine(BASE + TIERS + "adjustments:\n  tiers: {gold: 2}\n")
    gold = {"id": "c-1", "name": "Ann", "tier": "gold"}
    assert engine.open_case(actor="agent:a", customer=gold, channel="web").customer.tier == "gold"
    plain = {"id": "c-2", "name": "Bob"}
    assert engine.open_case(actor="agent:a", customer=plain, channel="web").customer.tier == (
        "standard"
    )
    with pytest.raises(InvalidStepData) as refused:
        engine.open_case(
            actor="agent:a", customer={"id": "c-3", "name": "Cy", "tier": "glod"}, channel="web"
        )
    assert refused.value.problems == (
        ("tier", "'glod' is not one of the policy's tiers: standard, gold"),
    )
    assert len(list(engine.store.case_ids())) == 2


def test_without_tiers_any_tier_opens_as_before() -> None:
    engine = _engine(BASE + "adjustments:\n  tiers: {gold: 2}\n")
    case = engine.open_case(
        actor="agent:a", customer={"id": "c", "name": "N", "tier": "platinum"}, channel="web"
    )
    assert case.customer.tier == "platinum"


def test_declaring_no_tiers_leaves_a_policys_stamp_as_it_was() -> None:
    """Every event records its policy's stamp, and a case is refused by an engine that
    does not hold the policy of that stamp: a new policy key must not change the stamp
    of a policy that does not use it, or cases opened before an upgrade would be
    refused after it. The bundled retail policy's stamp, as recorded on 2026-12-07."""
    assert bundled_policy("retail").stamp == (
        "2026.1@sha256:dc2beb59c7d5e604df73ff1b2acae938371ff3753e5bcd298b14f25445a6ac77"
    )
    plain = parse_policy(BASE)
    declared = parse_policy(BASE + TIERS)
    assert declared.stamp != plain.stamp


def _tiered_policy(tmp_path: Path) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(BASE + TIERS + "adjustments:\n  tiers: {gold: 2}\n")
    return policy


def test_a_case_file_naming_an_undeclared_tier_is_refused_with_its_location(
    tmp_path: Path,
) -> None:
    """``policy test`` refuses a category the policy does not declare (the engine would
    refuse such a case, so its decision tests nothing); a tier it does not declare is
    the same mistake (``glod`` was decided at the standard factor and could pass)."""
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- name: gold\n  role: agent\n  remedies: [refund:1.00EUR]\n  tier: gold\n"
        "  expect: allowed\n"
        "- name: typo\n  role: agent\n  remedies: [refund:1.00EUR]\n  tier: glod\n"
        "  expect: allowed\n"
    )
    policy = parse_policy(_tiered_policy(tmp_path).read_text())
    with pytest.raises(PolicyFileError) as refused:
        load_expectations(cases, policy)
    assert [(p.location, p.message) for p in refused.value.problems] == [
        ("[1].tier (line 9)", "'glod' is not one of the policy's tiers: standard, gold")
    ]
    assert [e.tier for e in load_expectations(cases)] == ["gold", "glod"]  # no policy: as read


def test_explain_refuses_a_tier_the_policy_does_not_declare(tmp_path: Path) -> None:
    policy = str(_tiered_policy(tmp_path))
    args = ["policy", "explain", policy, "--role", "agent", "--remedy", "refund:1.00EUR"]
    result = CliRunner().invoke(main, [*args, "--tier", "glod"])
    assert result.exit_code == 2, result.output
    assert "'--tier'" in result.output
    assert "'glod' is not one of the policy's tiers: standard, gold" in result.output
    assert "decision:" not in result.output
    assert CliRunner().invoke(main, [*args, "--tier", "gold"]).exit_code == 0


def _migrating(
    old_text: str, new_text: str, customer: dict[str, str], **opened: str
) -> tuple[Engine, str, Policy]:
    """A case opened under ``old_text`` for ``customer``, and an engine whose current
    policy is ``new_text`` (version 2), holding the old one too."""
    old = parse_policy(old_text)
    store = MemoryStore()
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    cid = (
        Engine(store, clock=clock, policy=old)
        .open_case(actor="agent:a", customer=customer, channel="web", **opened)
        .id
    )
    new = parse_policy(new_text.replace('version: "1"', 'version: "2"'))
    return Engine(store, clock=clock, policy=new, previous_policies=[old]), cid, new


def test_migrate_policy_refuses_a_policy_that_does_not_declare_the_customers_tier() -> None:
    """Regression: the case moved, and its gold customer's limits fell back to a factor
    of 1 under a policy that knew no gold tier, silently."""
    engine, cid, new = _migrating(
        BASE + TIERS + "adjustments:\n  tiers: {gold: 2}\n",
        BASE + "tiers: [standard, silver]\n",
        {"id": "c-1", "name": "Ann", "tier": "gold"},
    )
    with pytest.raises(StepNotAllowed) as refused:
        engine.migrate_policy(cid, actor="team-lead:sam", reason="policy 2 replaces 1")
    assert refused.value.reason == (
        "the case's customer is of tier 'gold', which policy 'Shop' version 2 does not "
        "declare (its tiers: standard, silver): add it to that policy's tiers, or keep the "
        "case under the policy it runs under"
    )
    case = engine.get(cid)
    assert (case.version, case.policy_version != new.stamp) == (1, True)  # nothing written


def test_migrate_policy_refuses_a_policy_that_does_not_declare_the_cases_category() -> None:
    engine, cid, _ = _migrating(
        BASE + "categories: [delivery, billing]\n",
        BASE + "categories: [billing]\n",
        {"id": "c-1", "name": "Ann"},
        category="delivery",
    )
    with pytest.raises(StepNotAllowed) as refused:
        engine.migrate_policy(cid, actor="team-lead:sam", reason="policy 2 replaces 1")
    assert refused.value.reason == (
        "the case's category 'delivery' is not one policy 'Shop' version 2 declares (its "
        "categories: billing): add it to that policy's categories, or keep the case under "
        "the policy it runs under"
    )
    assert engine.get(cid).version == 1


def test_migrate_policy_moves_a_case_whose_tier_and_category_the_new_policy_takes() -> None:
    """The new policy declares them, or declares no tiers and categories at all."""
    for new_text in (BASE + "tiers: [standard, gold]\ncategories: [delivery]\n", BASE):
        engine, cid, new = _migrating(
            BASE + TIERS + "categories: [delivery]\n",
            new_text,
            {"id": "c-1", "name": "Ann", "tier": "gold"},
            category="delivery",
        )
        moved = engine.migrate_policy(cid, actor="team-lead:sam", reason="policy 2")
        assert moved.policy_version == new.stamp
