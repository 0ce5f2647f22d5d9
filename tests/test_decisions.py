"""Compensation decisions: every rule kind, each naming the rule that decided."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from policies.decide import OfferRequest, decide_acceptance, decide_approval, decide_offer
from policies.expectations import parse_remedy
from policies.loader import parse_policy
from policies.model import Policy
from workflow import Outcome

POLICY = parse_policy(
    """
name: Test shop
version: "7"
currency: EUR
categories: [delivery, billing, product]
roles:
  agent:
    authority: 20.00
    limits: {refund: 50.00}
  team-lead:
    authority: 100.00
    limits: {refund: 200.00}
remedy_kinds:
  voucher_book: {monetary: true}
  apology_card: {}
adjustments:
  tiers: {vip: 2}
  categories: {delivery: 1.5}
caps:
  per_customer: {amount: 300.00, period: P365D}
offers:
  max_per_case: 2
normal_remedies:
  delivery: {refund: 30.00, replacement: 0}
playbooks:
  high-roller: {always_needs_approval: true}
"""
)


def ask(*remedies: str, policy: Policy = POLICY, **fields: Any) -> OfferRequest:
    fields.setdefault("role", "agent")
    return OfferRequest(remedies=tuple(parse_remedy(r) for r in remedies), **fields)


def decided(request: OfferRequest, policy: Policy = POLICY) -> tuple[str, tuple[str, ...]]:
    decision = decide_offer(policy, request)
    return decision.outcome.value, decision.rule_ids


def test_within_the_roles_limit_is_allowed() -> None:
    assert decided(ask("refund:50.00EUR")) == (
        "allowed",
        ("limits.agent.refund", "caps.per_customer"),
    )


def test_above_the_roles_limit_needs_someone_with_authority() -> None:
    decision = decide_offer(POLICY, ask("refund:50.01EUR"))
    assert (decision.outcome, decision.rule_ids) == (
        Outcome.NEEDS_APPROVAL,
        ("limits.agent.refund",),
    )
    assert "a team-lead" in decision.reasons[0]


def test_a_kind_without_its_own_limit_uses_the_roles_authority() -> None:
    assert decided(ask("coupon:20.00EUR"))[0] == "allowed"
    assert decided(ask("coupon:20.01EUR"))[0] == "needs_approval"


def test_above_every_roles_limit_is_denied() -> None:
    assert decided(ask("refund:200.01EUR", role="team-lead"))[1][0] == "limits.none"


@pytest.mark.parametrize(
    ("tier", "category", "limit"),
    [
        ("standard", None, "50.00"),
        ("vip", None, "100.00"),
        ("standard", "delivery", "75.00"),
        ("vip", "delivery", "150.00"),
        ("vip", "billing", "100.00"),
    ],
)
def test_limits_are_adjusted_by_tier_and_category(
    tier: str, category: str | None, limit: str
) -> None:
    at = Decimal(limit)
    assert decided(ask(f"refund:{at}EUR", customer_tier=tier, category=category))[0] == "allowed"
    over = ask(f"refund:{at + Decimal('0.01')}EUR", customer_tier=tier, category=category)
    assert decided(over)[0] == "needs_approval"


def test_the_cumulative_cap_counts_what_the_customer_was_paid() -> None:
    assert decided(ask("refund:50.00EUR", paid_in_period=Decimal("250.00")))[0] == "allowed"
    outcome, rules = decided(ask("refund:50.01EUR", paid_in_period=Decimal("250.00")))
    assert (outcome, rules) == ("denied", ("caps.per_customer",))


def test_the_cap_is_checked_again_at_acceptance() -> None:
    chosen = parse_remedy("refund:40.00EUR")
    assert decide_acceptance(POLICY, chosen, Decimal("260.00")).outcome is Outcome.ALLOWED
    late = decide_acceptance(POLICY, chosen, Decimal("260.01"))
    assert (late.outcome, late.rule_ids) == (Outcome.DENIED, ("caps.per_customer",))


def test_at_most_n_offers_per_case() -> None:
    assert decided(ask("refund:1EUR", offers_made=1))[0] == "allowed"
    assert decided(ask("refund:1EUR", offers_made=2)) == ("denied", ("offers.max_per_case",))


def test_an_unknown_role_has_no_authority() -> None:
    assert decided(ask("refund:1EUR", role="intern")) == ("denied", ("roles.unknown",))


@pytest.mark.parametrize(
    ("remedy", "problem"),
    [
        ("cashback:5EUR", "unknown remedy kind"),
        ("voucher_book", "needs an amount"),
        ("refund:5USD", "policy's currency is EUR"),
    ],
)
def test_remedies_the_policy_does_not_know_are_denied(remedy: str, problem: str) -> None:
    decision = decide_offer(POLICY, ask(remedy))
    assert (decision.outcome, decision.rule_ids) == (Outcome.DENIED, ("remedy.unknown",))
    assert problem in decision.reasons[0]


def test_company_kinds_that_are_not_money_need_no_limit() -> None:
    assert decided(ask("apology_card")) == ("allowed", ("limits.agent.apology_card",))


def test_each_option_of_an_offer_is_judged_and_the_strictest_wins() -> None:
    outcome, rules = decided(ask("replacement", "refund:60EUR"))
    assert (outcome, rules) == ("needs_approval", ("limits.agent.refund",))


def test_a_rip_off_case_is_judged_against_what_the_company_normally_does() -> None:
    normal = ask("refund:30.00EUR", category="delivery", complainant_type="rip-off")
    assert decided(normal) == ("needs_approval", ("playbooks.rip-off.normal",))
    demanded = ask("refund:45.00EUR", category="delivery", complainant_type="rip-off")
    assert decided(demanded) == ("denied", ("playbooks.rip-off.normal",))
    unusual = ask("coupon:5.00EUR", category="delivery", complainant_type="rip-off")
    assert decided(unusual) == ("denied", ("playbooks.rip-off.normal",))
    elsewhere = ask("refund:5.00EUR", category="billing", complainant_type="rip-off")
    assert decided(elsewhere)[0] == "denied"


def test_a_playbook_can_send_every_offer_to_approval() -> None:
    small = ask("refund:1.00EUR", complainant_type="high-roller")
    assert decided(small) == ("needs_approval", ("playbooks.high-roller.approval",))


def test_the_approver_needs_authority_for_every_option() -> None:
    big = ask("refund:150.00EUR")
    assert decide_approval(POLICY, big, "team-lead").outcome is Outcome.ALLOWED
    refused = decide_approval(POLICY, big, "agent")
    assert (refused.outcome, refused.rule_ids) == (Outcome.DENIED, ("approval.authority",))
    assert "up to 50.00 EUR" in refused.reasons[0]
    assert decide_approval(POLICY, big, "cleaner").outcome is Outcome.DENIED


def test_a_policy_without_roles_is_permissive() -> None:
    bare = Policy(name="bare", version="1", currency="EUR")
    assert decided(ask("refund:9999EUR"), bare) == ("allowed", ("default.permissive",))
    assert decide_approval(bare, ask("refund:9999EUR"), "anyone").outcome is Outcome.ALLOWED


def test_a_decision_explains_itself_in_one_line() -> None:
    text = decide_offer(POLICY, ask("refund:60EUR")).explain()
    assert text.startswith("needs_approval: 60.00 EUR as refund is above the agent limit")
    assert text.endswith("[limits.agent.refund]")


def test_an_amount_on_a_kind_that_is_not_money_is_still_limited() -> None:
    """Regression: a 60 EUR 'replacement' was allowed to any role."""
    with_amount = ask("replacement:60.00EUR")
    assert decided(with_amount) == ("needs_approval", ("limits.agent.replacement",))
    assert decided(ask("replacement")) == ("allowed", ("limits.agent.replacement",))


HUGE = "1" + "0" * 30  # 10^30: more digits than Decimal's default 28 with the cents


def test_an_amount_too_large_for_the_currencys_cents_is_decided_not_a_crash() -> None:
    """Regression: showing an amount rounded to the currency's minor units raised a bare
    ``decimal.InvalidOperation`` once it had more than 28 digits with them, so an absurd
    offer (or a policy writing ``authority: 1e30`` for "no limit") crashed every
    decision instead of being judged."""
    decision = decide_offer(POLICY, ask(f"refund:{HUGE}EUR"))
    assert decision.outcome.value == "denied"
    assert decision.rule_ids == ("limits.none", "caps.per_customer")
    assert f"no role may give {HUGE} EUR as refund" in decision.reasons[0]
    unlimited = parse_policy(
        "name: x\nversion: '1'\ncurrency: EUR\nroles: {director: {authority: 1e30}}\n"
        "caps: {per_customer: {amount: 1e30, period: P30D}}\n"
    )
    assert decided(ask("refund:40.00EUR", role="director"), unlimited) == (
        "allowed",
        ("limits.director.refund", "caps.per_customer"),
    )


@pytest.mark.parametrize("paid", [Decimal("NaN"), Decimal("Infinity"), Decimal("-0.01")])
def test_what_the_customer_was_paid_is_a_finite_amount_not_below_zero(paid: Decimal) -> None:
    """Regression: ``paid_in_period=NaN`` crashed the cap check with a bare
    ``decimal.InvalidOperation``, and a negative amount paid raised the cap."""
    with pytest.raises(ValueError, match="paid_in_period"):
        ask("refund:10.00EUR", paid_in_period=paid)
