"""A company rule as a decision hook: an option worth more than 50 (in the policy's
currency) needs approval; a team lead approves, and no one approves their own offer.
Run:  python examples/approval_hook.py
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import structlog

from adapters import open_store
from policies import parse_policy
from workflow import (
    Decision,
    Engine,
    ManualClock,
    Money,
    OfferRequest,
    Policy,
    PolicyViolation,
    Remedy,
)

LIMIT = Decimal("50.00")

#: Who may approve how much (``authority``): an agent up to the limit, a team lead more.
POLICY = parse_policy(
    """
name: example
version: "1"
currency: EUR
roles:
  agent: {authority: 50}
  team-lead: {authority: 500}
"""
)


def decide(policy: Policy, request: OfferRequest) -> Decision:
    # The options are alternatives (the customer accepts one): judge the largest alone.
    amounts = [r.amount for r in request.remedies if r.amount is not None]
    largest = max(amounts, key=lambda money: money.amount, default=None)
    if largest is not None and request.role != "team-lead" and largest.amount > LIMIT:
        return Decision.needs_approval(
            "company.agent_limit",
            f"{largest.amount} {largest.currency} is above an agent's {LIMIT} {largest.currency}",
        )
    return Decision.allowed("company.agent_limit", "every option is within the limit")


def main() -> None:
    # Your application configures logging; here: warnings only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    engine = Engine(
        open_store("memory://"),
        policy=POLICY,
        clock=ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)),
        decide=decide,
    )
    cid = engine.open_case(
        actor="agent:alice",
        customer={"id": "c-7", "name": "Bo"},
        channel="chat",
        subject="Sofa delivered with a torn cover",
        category="damage",
        occurred_on="2026-10-30",
        details="Tear of 10 cm on the left arm.",
    ).id
    engine.acknowledge(cid, actor="agent:alice")
    engine.listen(cid, actor="agent:alice", note="Noticed the tear when unpacking.")
    engine.record(cid, actor="agent:alice", contact="bo@example.com")
    engine.apologise(cid, actor="agent:alice", message="Sorry, and thank you for the photos.")
    case = engine.offer_remedy(
        cid,
        actor="agent:alice",
        options=[
            Remedy(kind="partial_refund", amount=Money.of("120.00", "EUR")),
            Remedy(kind="coupon", amount=Money.of("30.00", "EUR")),
        ],
    )
    print(case.state, "-", case.offers[-1].decision.explain())
    for approver in ("agent:bob", "team-lead:alice"):  # too little authority; her own offer
        try:
            engine.approve_offer(cid, actor=approver)
        except PolicyViolation as refused:
            print("refused:", refused.decision.explain())
    case = engine.approve_offer(cid, actor="team-lead:sam", note="fair for a new sofa")
    print(case.state, "- approved by", case.offers[-1].approved_by)


if __name__ == "__main__":
    main()
