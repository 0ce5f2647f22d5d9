"""Decisions on offers, approvals and acceptances. Pure: everything it needs is handed in.

Every decision names the rules that made it (``rule_ids``) and says why in a sentence
an agent can read. Rule ids:

- ``offers.max_per_case`` — too many offers on this case;
- ``remedy.unknown`` — a remedy kind or currency the policy does not know;
- ``roles.unknown`` — the actor's role has no authority under the policy;
- ``limits.<role>.<kind>`` — the role's limit for that kind (after adjustments);
- ``limits.none`` — no role may give that much: denied;
- ``caps.per_customer`` — the customer's cumulative cap over the rolling period;
- ``playbooks.rip-off.normal`` — a rip-off case is judged against what the company
  normally does for the category;
- ``playbooks.<type>.approval`` — the playbook sends every offer to approval;
- ``playbooks.<type>.reclassify_roles`` — who may classify a case of that type as
  another (``decide_reclassification``);
- ``approval.authority`` — the approver's role cannot approve that much;
- ``default.permissive`` — the policy sets no limits at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    Decimal,
    InvalidOperation,
    Overflow,
)

from policies.decision import Decision, Outcome
from policies.model import Policy
from policies.money import SHOWN, fixed_context, minor_units
from policies.remedy import Remedy


@dataclass(frozen=True, slots=True)
class OfferRequest:
    """What the policy is asked about one offer: who offers what to whom. Built by the
    engine from validated parts (so it is a plain record, not a validating model)."""

    role: str
    remedies: tuple[Remedy, ...]
    customer_tier: str = "standard"
    category: str | None = None
    complainant_type: str = "unknown"
    offers_made: int = 0
    declines: int = 0
    #: What this customer was paid (accepted money remedies) within the cap's period.
    paid_in_period: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        paid = self.paid_in_period
        if isinstance(paid, float):
            raise TypeError("paid_in_period is money: a Decimal, never a float")
        if not isinstance(paid, Decimal | int) or isinstance(paid, bool):
            raise TypeError(f"paid_in_period is money: a Decimal, got {type(paid).__name__}")
        if not Decimal(paid).is_finite() or paid < 0:
            raise ValueError(f"paid_in_period must be a finite amount of 0 or more, got {paid}")


#: The strictest outcome first.
_SEVERITY = {Outcome.DENIED: 0, Outcome.NEEDS_APPROVAL: 1, Outcome.ALLOWED: 2}


class _Verdicts:
    """Collects rule findings; the outcome is the strictest one."""

    def __init__(self) -> None:
        self.items: list[tuple[Outcome, str, str]] = []

    def add(self, outcome: Outcome, rule: str, reason: str) -> None:
        self.items.append((outcome, rule, reason))

    def decision(self) -> Decision:
        if len(self.items) == 1:  # the usual case: one rule decided
            outcome, rule, reason = self.items[0]
            return Decision.model_construct(outcome=outcome, rule_ids=(rule,), reasons=(reason,))
        worst = min((o for o, _, _ in self.items), key=_SEVERITY.__getitem__)
        chosen = [(rule, reason) for o, rule, reason in self.items if o == worst]
        return Decision.model_construct(  # every part is built here, of the right type
            outcome=worst,
            rule_ids=tuple(rule for rule, _ in chosen),
            reasons=tuple(reason for _, reason in chosen),
        )


#: Limits and the cap's total are worked out in these contexts, not the calling
#: thread's (which a program may have set to round: decision 0053). Exact for any amount
#: an offer takes; past sixty digits a limit is rounded down and a total up, never in the
#: customer's favour.
_LIMIT = fixed_context(60, ROUND_FLOOR, InvalidOperation, Overflow)
_TOTAL = fixed_context(60, ROUND_CEILING, InvalidOperation, Overflow)


def _quantize(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded down to the currency's minor units; an amount with more digits
    than that leaves room for (beyond 10^25 or so) is returned as it is, not refused:
    it is still compared exactly."""
    try:
        return amount.quantize(
            Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_DOWN, context=SHOWN
        )
    except InvalidOperation:
        return amount


def limit_for(
    policy: Policy, role: str, kind: str, tier: str, category: str | None
) -> Decimal | None:
    """The most ``role`` may give as one ``kind`` option on its own, after tier and
    category adjustments; None if the policy has no such role."""
    rules = policy.roles.get(role)
    if rules is None:
        return None
    base = rules.limits.get(kind, rules.authority)
    factor = policy.adjustments.tiers.get(tier, Decimal(1))
    if category is not None:
        factor = _LIMIT.multiply(factor, policy.adjustments.categories.get(category, Decimal(1)))
    return _quantize(_LIMIT.multiply(base, factor), policy.currency)


def _value(remedy: Remedy) -> Decimal:
    return remedy.amount.amount if remedy.amount is not None else Decimal(0)


def _fmt(amount: Decimal, policy: Policy) -> str:
    return f"{_quantize(amount, policy.currency)} {policy.currency}"


def _cap(policy: Policy, paid: Decimal, adding: Decimal, verdicts: _Verdicts) -> None:
    cap = policy.caps.per_customer
    if cap is None or adding == 0:
        return
    total = _TOTAL.add(paid, adding)
    if total > cap.amount:
        verdicts.add(
            Outcome.DENIED,
            "caps.per_customer",
            f"this customer was paid {_fmt(paid, policy)} in the last {cap.period.days} days; "
            f"{_fmt(adding, policy)} more would pass the cap of {_fmt(cap.amount, policy)}",
        )
    else:
        verdicts.add(
            Outcome.ALLOWED,
            "caps.per_customer",
            f"{_fmt(total, policy)} is within the customer's cap of {_fmt(cap.amount, policy)}",
        )


def _any_role_can(policy: Policy, request: OfferRequest, remedy: Remedy) -> str | None:
    for role in policy.roles:
        limit = limit_for(policy, role, remedy.kind, request.customer_tier, request.category)
        if limit is not None and _value(remedy) <= limit:
            return role
    return None


def _normal(policy: Policy, request: OfferRequest, remedy: Remedy, v: _Verdicts) -> None:
    """Rip-off cases: judged against what the company normally does for the category."""
    normal = policy.normal_remedies.get(request.category or "", {})
    usual = normal.get(remedy.kind)
    what = f"for {request.category or 'an uncategorised complaint'}"
    if usual is None:
        v.add(
            Outcome.DENIED,
            "playbooks.rip-off.normal",
            f"{remedy.kind} is not what the company normally gives {what}",
        )
    elif _value(remedy) > usual:
        v.add(
            Outcome.DENIED,
            "playbooks.rip-off.normal",
            f"{_fmt(_value(remedy), policy)} is more than the {_fmt(usual, policy)} the "
            f"company normally gives as {remedy.kind} {what}",
        )
    else:
        v.add(
            Outcome.NEEDS_APPROVAL,
            "playbooks.rip-off.normal",
            f"{remedy.kind} {what} is what the company normally does; a rip-off case "
            "always needs approval",
        )


def decide_offer(policy: Policy, request: OfferRequest) -> Decision:
    """Decide on an offer: ``allowed``, ``needs_approval`` (someone with enough authority
    must approve it) or ``denied``."""
    v = _Verdicts()
    limit = policy.offers.max_per_case
    if limit is not None and request.offers_made >= limit:
        v.add(
            Outcome.DENIED,
            "offers.max_per_case",
            f"this case has had {request.offers_made} offers; the policy allows {limit}",
        )
    for remedy in request.remedies:
        problem = policy.check_remedy(remedy)
        if problem is not None:
            v.add(Outcome.DENIED, "remedy.unknown", problem)
    if v.items:
        return v.decision()

    playbook = policy.playbook(request.complainant_type)
    if request.complainant_type == "rip-off":
        for remedy in request.remedies:
            _normal(policy, request, remedy, v)
    elif playbook is not None and playbook.always_needs_approval:
        v.add(
            Outcome.NEEDS_APPROVAL,
            f"playbooks.{request.complainant_type}.approval",
            f"every offer to a {request.complainant_type} customer needs approval",
        )

    if policy.roles and request.role not in policy.roles:
        v.add(
            Outcome.DENIED,
            "roles.unknown",
            f"role {request.role!r} has no authority under this policy "
            f"(roles: {', '.join(sorted(policy.roles))})",
        )
    elif policy.roles:
        for remedy in request.remedies:
            rule = f"limits.{request.role}.{remedy.kind}"
            if remedy.amount is None:  # an amount is money, whatever the kind
                v.add(Outcome.ALLOWED, rule, f"{remedy.kind} is not money: any role may offer it")
                continue
            own = limit_for(
                policy, request.role, remedy.kind, request.customer_tier, request.category
            )
            assert own is not None
            offered = f"{_fmt(_value(remedy), policy)} as {remedy.kind}"
            if _value(remedy) <= own:
                v.add(
                    Outcome.ALLOWED,
                    rule,
                    f"{offered} is within the {request.role} limit of {_fmt(own, policy)}",
                )
            elif (approver := _any_role_can(policy, request, remedy)) is not None:
                v.add(
                    Outcome.NEEDS_APPROVAL,
                    rule,
                    f"{offered} is above the {request.role} limit of {_fmt(own, policy)}: "
                    f"a {approver} or someone else with the authority must approve it",
                )
            else:
                v.add(Outcome.DENIED, "limits.none",
                      f"no role may give {_fmt(_value(remedy), policy)} as {remedy.kind} "
                      f"here")  # fmt: skip

    most = max((_value(r) for r in request.remedies), default=Decimal(0))
    _cap(policy, request.paid_in_period, most, v)
    if not v.items:
        v.add(Outcome.ALLOWED, "default.permissive", "the policy sets no compensation limits")
    return v.decision()


def decide_approval(policy: Policy, request: OfferRequest, approver_role: str) -> Decision:
    """May ``approver_role`` approve this offer? Its limits (after adjustments) must cover
    every option. A policy without roles lets anyone approve. Four eyes is the engine's."""
    v = _Verdicts()
    if policy.roles and approver_role not in policy.roles:
        v.add(
            Outcome.DENIED,
            "approval.authority",
            f"role {approver_role!r} has no authority under this policy",
        )
        return v.decision()
    for remedy in request.remedies:
        if not policy.roles or remedy.amount is None:
            continue
        limit = limit_for(
            policy, approver_role, remedy.kind, request.customer_tier, request.category
        )
        assert limit is not None
        if _value(remedy) > limit:
            v.add(
                Outcome.DENIED,
                "approval.authority",
                f"role {approver_role!r} may approve up to {_fmt(limit, policy)} as {remedy.kind}; "
                f"this offer has {_fmt(_value(remedy), policy)}",
            )
    if not v.items:
        v.add(Outcome.ALLOWED, "approval.authority", f"within a {approver_role}'s authority")
    return v.decision()


def decide_reclassification(policy: Policy, from_type: str, to_type: str, role: str) -> Decision:
    """May ``role`` classify a case of ``from_type`` as ``to_type``? Denied when the
    playbook for ``from_type`` names ``reclassify_roles`` and ``role`` is not one of
    them: an offer is judged by the type the case has when it is made, so moving a case
    out of a stricter type lifts that type's rules for every later offer. Moving a case
    into a type, or classifying it as the type it has, is never refused."""
    rule = f"playbooks.{from_type}.reclassify_roles"
    playbook = policy.playbook(from_type)
    roles = playbook.reclassify_roles if playbook is not None else None
    if to_type == from_type:
        return Decision.allowed(rule, f"the case stays {from_type}")
    if roles is None:
        return Decision.allowed(rule, f"any role may classify a {from_type} case as another type")
    if role in roles:
        return Decision.allowed(rule, f"a {role} may classify a {from_type} case as another type")
    if not roles:
        return Decision.denied(
            rule, f"no role may classify a {from_type} case as another type under this policy"
        )
    named = roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"
    return Decision.denied(
        rule,
        f"a {from_type} case may be classified as another type only by {named}; "
        f"role {role!r} may not",
    )


def decide_acceptance(policy: Policy, chosen: Remedy, paid_in_period: Decimal) -> Decision:
    """May the customer take ``chosen`` now? The cap is checked again at acceptance, so
    offers open on several cases at once can never together pass it."""
    v = _Verdicts()
    _cap(policy, paid_in_period, _value(chosen), v)
    if not v.items:
        v.add(Outcome.ALLOWED, "caps.none", "the policy sets no cap for this customer")
    return v.decision()
