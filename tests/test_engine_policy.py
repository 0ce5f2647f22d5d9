"""The engine under a real policy file: limits, caps, approvals, playbooks, versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from workflow import (
    ConcurrencyConflict,
    CurrencyMismatch,
    Engine,
    IdempotencyKeyReused,
    InvalidStepData,
    ManualClock,
    Money,
    OfferStatus,
    Policy,
    PolicyViolation,
    Remedy,
    StepNotAllowed,
    StepRefused,
)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY_TEXT = """
name: Shop
version: "1"
currency: EUR
categories: [delivery, billing]
roles:
  agent: {authority: 20.00, limits: {refund: 50.00}}
  team-lead: {authority: 100.00, limits: {refund: 200.00}}
remedy_kinds:
  apology_card: {}
adjustments:
  tiers: {vip: 2}
caps:
  per_customer: {amount: 100.00, period: P30D}
normal_remedies:
  delivery: {refund: 30.00}
playbooks:
  aggressive:
    priority: urgent
    guidance:
      listen: Let them finish; ask "what else?".
      apologise: Firm politeness, no excuses.
"""
POLICY = parse_policy(POLICY_TEXT)


def refund(amount: str) -> Remedy:
    return Remedy(kind="refund", amount=Money.of(amount, "EUR"))


def new_engine(policy: Policy = POLICY, **kw: Any) -> tuple[Engine, ManualClock]:
    clock = ManualClock(START)
    return Engine(kw.pop("store", None) or MemoryStore(), policy=policy, clock=clock, **kw), clock


def apologised(engine: Engine, customer: str = "c-1", tier: str = "standard") -> str:
    cid = engine.open_case(
        actor="agent:alice",
        customer={"id": customer, "name": "N", "contact": "n@example.com", "tier": tier},
        channel="email",
        subject="s",
        category="delivery",
        occurred_on="2026-11-01",
        details="d",
    ).id
    engine.acknowledge(cid, actor="agent:alice")
    engine.listen(cid, actor="agent:alice", note="their account")
    engine.record(cid, actor="agent:alice")
    engine.apologise(cid, actor="agent:alice", message="sorry; thank you")
    return cid


def pay(engine: Engine, cid: str, amount: str, clock: ManualClock) -> None:
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund(amount)])
    if case.state == "awaiting_approval":
        engine.approve_offer(cid, actor="team-lead:sam")
    due = clock.now() + timedelta(days=1)
    engine.accept_remedy(cid, actor="customer:c", option=1, promise="refund", due=due)


def test_an_offer_within_the_agents_limit_is_open_at_once() -> None:
    engine, _ = new_engine()
    case = engine.offer_remedy(apologised(engine), actor="agent:alice", options=[refund("50")])
    assert (case.state, case.offers[0].decision.rule_ids[0]) == (
        "remedy_offered",
        "limits.agent.refund",
    )


def test_an_offer_above_it_waits_for_someone_with_the_authority() -> None:
    engine, _ = new_engine()
    cid = apologised(engine)
    assert engine.offer_remedy(cid, actor="agent:alice", options=[refund("80")]).state == (
        "awaiting_approval"
    )
    with pytest.raises(PolicyViolation) as refused:
        engine.approve_offer(cid, actor="agent:bob")
    assert refused.value.decision.rule_ids == ("approval.authority",)
    assert engine.approve_offer(cid, actor="team-lead:sam").state == "remedy_offered"


def test_the_customers_tier_raises_the_limit() -> None:
    engine, _ = new_engine()
    cid = apologised(engine, tier="vip")
    assert engine.offer_remedy(cid, actor="agent:alice", options=[refund("80")]).state == (
        "remedy_offered"
    )


def test_the_cap_counts_every_case_of_the_customer_in_the_period() -> None:
    engine, clock = new_engine()
    pay(engine, apologised(engine), "50.00", clock)
    clock.advance(days=10)
    pay(engine, apologised(engine), "40.00", clock)
    third = apologised(engine)
    with pytest.raises(PolicyViolation) as refused:
        engine.offer_remedy(third, actor="agent:alice", options=[refund("10.01")])
    assert refused.value.decision.rule_ids == ("caps.per_customer",)
    assert "paid 90.00 EUR" in str(refused.value)
    other_customer = apologised(engine, customer="c-2")
    engine.offer_remedy(other_customer, actor="agent:alice", options=[refund("50")])


def test_the_cap_period_rolls() -> None:
    engine, clock = new_engine()
    pay(engine, apologised(engine), "50.00", clock)
    pay(engine, apologised(engine), "50.00", clock)
    clock.advance(days=30, seconds=1)
    cid = apologised(engine)
    assert engine.offer_remedy(cid, actor="agent:alice", options=[refund("50")]).state == (
        "remedy_offered"
    )


def test_two_open_offers_cannot_together_pass_the_cap() -> None:
    engine, clock = new_engine()
    pay(engine, apologised(engine), "10.00", clock)
    first, second = apologised(engine), apologised(engine)
    engine.offer_remedy(first, actor="agent:alice", options=[refund("50")])
    engine.offer_remedy(second, actor="agent:alice", options=[refund("50")])
    due = clock.now() + timedelta(days=1)
    engine.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)
    before = engine.get(second)
    with pytest.raises(PolicyViolation) as refused:
        engine.accept_remedy(second, actor="customer:c", option=1, promise="r", due=due)
    assert refused.value.decision.rule_ids == ("caps.per_customer",)
    assert engine.get(second) == before


def test_a_rip_off_case_gets_what_the_company_normally_does_after_approval() -> None:
    engine, _ = new_engine()
    cid = apologised(engine)
    engine.classify(cid, actor="agent:alice", complainant_type="rip-off")
    with pytest.raises(PolicyViolation, match="normally gives"):
        engine.offer_remedy(cid, actor="agent:alice", options=[refund("45")])
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund("30")])
    assert (case.state, case.offers[0].decision.rule_ids) == (
        "awaiting_approval",
        ("playbooks.rip-off.normal",),
    )


def test_remedy_kinds_and_categories_come_from_the_policy() -> None:
    engine, _ = new_engine()
    cid = apologised(engine)
    with pytest.raises(InvalidStepData, match="unknown remedy kind 'cashback'"):
        engine.offer_remedy(cid, actor="agent:alice", options=[{"kind": "cashback"}])
    case = engine.offer_remedy(cid, actor="agent:alice", options=[{"kind": "apology_card"}])
    assert case.state == "remedy_offered"
    with pytest.raises(InvalidStepData, match="not one of the policy's"):
        engine.open_case(
            actor="agent:a", customer={"id": "c", "name": "N"}, channel="web", category="x"
        )


def test_classifying_applies_the_playbooks_priority_and_guidance() -> None:
    engine, _ = new_engine()
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="phone").id
    engine.acknowledge(cid, actor="agent:a")
    case = engine.classify(cid, actor="agent:a", complainant_type="aggressive")
    assert case.priority.value == "urgent"
    guidance = engine.guidance(cid)
    assert guidance.steps == {"listen": 'Let them finish; ask "what else?".'}
    assert (guidance.complainant_type, guidance.priority) == ("aggressive", "urgent")
    assert engine.replay(cid) == engine.get(cid)


def test_opening_a_case_as_a_type_applies_its_playbooks_priority_as_classifying_does() -> None:
    """The same information gives the same case whenever it is given: a case opened as
    aggressive is urgent, as one classified aggressive right after opening is (its SLA
    targets by priority follow). A priority given explicitly wins; a type whose playbook
    sets none opens normal."""
    engine, _ = new_engine()
    customer = {"id": "c", "name": "N"}
    opened = engine.open_case(
        actor="agent:a", customer=customer, channel="phone", complainant_type="aggressive"
    )
    assert opened.priority.value == "urgent"
    assert engine.history(opened.id)[0].data["priority"] == "urgent"
    assert engine.replay(opened.id) == engine.get(opened.id)
    later = engine.open_case(actor="agent:a", customer=customer, channel="phone").id
    classified = engine.classify(later, actor="agent:a", complainant_type="aggressive")
    assert classified.priority == opened.priority
    told = engine.open_case(
        actor="agent:a",
        customer=customer,
        channel="phone",
        complainant_type="aggressive",
        priority="low",
    )
    assert told.priority.value == "low"
    meek = engine.open_case(
        actor="agent:a", customer=customer, channel="phone", complainant_type="meek"
    )
    assert meek.priority.value == "normal"


def test_a_retried_open_giving_the_playbooks_priority_is_the_same_command() -> None:
    """Left out, the priority is the playbook's: a retry that gives that priority
    explicitly asks for the same case; one giving another priority does not."""
    engine, _ = new_engine()
    opening = {"actor": "agent:a", "customer": {"id": "c", "name": "N"}, "channel": "phone",
               "complainant_type": "aggressive", "idempotency_key": "k-1"}  # fmt: skip
    first = engine.open_case(**opening)
    assert engine.open_case(**opening, priority="urgent") == first
    with pytest.raises(IdempotencyKeyReused):
        engine.open_case(**opening, priority="low")
    assert len(list(engine.store.case_ids())) == 1


def test_a_retried_open_after_the_playbooks_priority_changed_is_the_same_command() -> None:
    """The priority left out is the playbook's of the policy the case opened under: a
    retry of the very same call, made after a new policy changed that playbook's priority
    (the old one kept in previous_policies), returns the case; it was
    ``IdempotencyKeyReused`` (the retry's priority was read from the new policy)."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    opening = {"actor": "agent:a", "customer": {"id": "c", "name": "N"}, "channel": "phone",
               "complainant_type": "aggressive", "idempotency_key": "k-1"}  # fmt: skip
    first = engine.open_case(**opening)
    assert first.priority.value == "urgent"
    calmer = parse_policy(
        POLICY_TEXT.replace('version: "1"', 'version: "2"').replace("urgent", "high")
    )
    engine, _ = new_engine(calmer, store=store, previous_policies=[POLICY])
    assert engine.open_case(**opening) == first
    assert engine.open_case(**opening, priority="urgent") == first
    with pytest.raises(IdempotencyKeyReused):
        engine.open_case(**opening, priority="high")
    assert list(store.case_ids()) == [first.id]
    # A new case opened as aggressive takes the new policy's priority.
    fresh = engine.open_case(**{**opening, "idempotency_key": "k-2"})
    assert fresh.priority.value == "high"


def test_a_case_keeps_the_policy_it_was_opened_under() -> None:
    store = MemoryStore()
    old_engine, _ = new_engine(store=store)
    cid = apologised(old_engine)
    new_policy = parse_policy(POLICY_TEXT.replace("limits: {refund: 50.00}", "limits: {}"))
    engine, _ = new_engine(new_policy, store=store, previous_policies=[POLICY])
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund("50")])
    assert case.state == "remedy_offered"  # the old limit of 50 applied
    assert engine.history(cid)[-1].policy_version == POLICY.stamp
    fresh = apologised(engine)
    assert engine.offer_remedy(fresh, actor="agent:alice", options=[refund("50")]).state == (
        "awaiting_approval"
    )


def test_an_engine_without_the_cases_policy_refuses_until_it_is_migrated() -> None:
    store = MemoryStore()
    cid = apologised(new_engine(store=store)[0])
    new_policy = parse_policy(POLICY_TEXT.replace('version: "1"', 'version: "2"'))
    engine, _ = new_engine(new_policy, store=store)
    with pytest.raises(StepNotAllowed, match="pass it in previous_policies"):
        engine.add_note(cid, actor="agent:a", text="x")
    case = engine.migrate_policy(cid, actor="team-lead:sam", reason="policy 2 replaces 1")
    assert case.policy_version == new_policy.stamp
    last = engine.history(cid)[-1]
    assert (last.data["from"], last.data["to"]) == (POLICY.stamp, new_policy.stamp)
    assert engine.add_note(cid, actor="agent:a", text="x").state == "apologised"
    assert engine.replay(cid) == engine.get(cid)


money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("120"), places=2)
actions = st.lists(
    st.tuples(
        st.integers(0, 2),  # which of the customer's three cases
        st.sampled_from(["offer", "offer", "approve", "accept", "accept", "decline"]),
        st.one_of(st.sampled_from([Decimal(v) for v in ("30", "50", "60", "99.99")]), money),
        st.sampled_from([0, 0, 0, 1, 5, 31]),  # days to wait first
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_no_sequence_of_offers_and_approvals_pays_a_customer_beyond_the_cap(
    plan: list[tuple[int, str, Decimal, int]],
) -> None:
    engine, clock = new_engine()
    cases = [apologised(engine) for _ in range(3)]
    for which, action, amount, wait in plan:
        clock.advance(days=wait)
        cid = cases[which]
        try:
            if action == "offer":
                engine.offer_remedy(cid, actor="agent:alice", options=[refund(str(amount))])
            elif action == "approve":
                engine.approve_offer(cid, actor="team-lead:sam")
            elif action == "accept":
                due = clock.now() + timedelta(days=1)
                engine.accept_remedy(cid, actor="customer:c", option=1, promise="p", due=due)
                engine.keep_promise(cid, actor="agent:alice", evidence="paid")
                engine.request_feedback(cid, actor="agent:alice")
                engine.close(cid, actor="agent:alice")
                engine.reopen(cid, actor="customer:c", reason="more")
                for step, data in (("acknowledge", {}), ("listen", {"note": "n"}),
                                   ("record", {}), ("apologise", {"message": "m"})):  # fmt: skip
                    engine.step(cid, step, actor="agent:alice", **data)
            else:
                engine.decline_remedy(cid, actor="customer:c")
        except StepRefused:
            pass
    paid = sorted(
        (offer.accepted_at, offer.paid.amount.amount)
        for cid in cases
        for offer in engine.get(cid).offers
        if offer.status == OfferStatus.ACCEPTED and offer.paid and offer.paid.amount
        and offer.accepted_at
    )  # fmt: skip
    for at, _ in paid:
        window = sum(a for t, a in paid if at - timedelta(days=30) <= t <= at)
        assert window <= Decimal("100.00")


class _Interleaving(MemoryStore):
    """A store that lets another writer in right after the cap was read."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: list[Any] = []

    def customer_cases(self, customer_id: str) -> list[Any]:
        cases = super().customer_cases(customer_id)
        while self.meanwhile:
            self.meanwhile.pop()()
        return cases


def test_two_acceptances_on_two_cases_at_once_cannot_pass_the_cap() -> None:
    store = _Interleaving()
    engine, clock = new_engine(store=store)
    first, second = apologised(engine), apologised(engine)
    engine.offer_remedy(first, actor="agent:alice", options=[refund("50")])
    engine.offer_remedy(second, actor="agent:alice", options=[refund("50")])
    pay(engine, apologised(engine), "10.00", clock)  # 10 paid: 50 + 50 would make 110
    due = clock.now() + timedelta(days=1)
    other = Engine(store, policy=POLICY, clock=clock)
    store.meanwhile.append(
        lambda: other.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)
    )
    with pytest.raises(ConcurrencyConflict):
        engine.accept_remedy(second, actor="customer:c", option=1, promise="r", due=due)
    assert engine.get(second).state == "remedy_offered"
    with pytest.raises(PolicyViolation, match="cap"):  # retried: now it sees the payment
        engine.accept_remedy(second, actor="customer:c", option=1, promise="r", due=due)


def test_a_payment_in_another_currency_is_not_silently_left_out_of_the_cap() -> None:
    store = MemoryStore()
    engine, clock = new_engine(store=store)
    pay(engine, apologised(engine), "50.00", clock)
    usd = parse_policy(POLICY_TEXT.replace("currency: EUR", "currency: USD"))
    dollars, _ = new_engine(usd, store=store)
    cid = apologised(dollars)
    five = Remedy(kind="refund", amount=Money.of("5", "USD"))
    with pytest.raises(CurrencyMismatch):
        dollars.offer_remedy(cid, actor="agent:alice", options=[five])
    assert dollars.get(cid).state == "apologised"


def test_a_case_with_an_open_offer_cannot_move_to_a_policy_in_another_currency() -> None:
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = apologised(engine)
    engine.offer_remedy(cid, actor="agent:alice", options=[refund("40")])
    usd = parse_policy(POLICY_TEXT.replace("currency: EUR", "currency: USD"))
    dollars, _ = new_engine(usd, store=store, previous_policies=[POLICY])
    with pytest.raises(StepNotAllowed, match="open in EUR"):
        dollars.migrate_policy(cid, actor="team-lead:sam", reason="new policy")


@pytest.mark.postgres
def test_two_acceptances_for_one_customer_at_once_on_postgresql_never_deadlock() -> None:
    """Regression: each acceptance locked the customer's *other* case (the cap was read
    from it) and then updated its own, so two acceptances on two cases of one customer,
    at the same moment, locked in opposite orders: PostgreSQL killed one as a deadlock,
    reported as ``StoreUnavailable`` ("the database is unavailable or busy"), which
    ``retrying`` does not retry. Now one goes through and the other gets a
    ``ConcurrencyConflict`` (and, retried, is judged against the new total)."""
    import contextlib
    import threading

    from sqlalchemy import event

    from tests.stores import postgres_store

    stores = postgres_store()
    store = next(stores)
    try:
        engine, clock = new_engine(store=store)
        first, second = apologised(engine), apologised(engine)
        engine.offer_remedy(first, actor="agent:alice", options=[refund("50")])
        engine.offer_remedy(second, actor="agent:alice", options=[refund("50")])
        due = clock.now() + timedelta(days=1)
        both_locked = threading.Barrier(2)

        @event.listens_for(store.engine, "before_cursor_execute")  # type: ignore[attr-defined]
        def meet_before_the_update(*args: Any) -> None:
            if args[2].lstrip().upper().startswith("UPDATE"):
                # Both hold their locks here, if they can both get this far.
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_locked.wait(timeout=2)

        outcomes: dict[str, str] = {}

        def accept(cid: str) -> None:
            try:
                engine.accept_remedy(cid, actor="customer:c", option=1, promise="r", due=due)
                outcomes[cid] = "accepted"
            except Exception as error:  # the outcome is what is checked
                outcomes[cid] = type(error).__name__

        workers = [threading.Thread(target=accept, args=(cid,)) for cid in (first, second)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        event.remove(store.engine, "before_cursor_execute", meet_before_the_update)  # type: ignore[attr-defined]
        assert sorted(outcomes.values()) == ["ConcurrencyConflict", "accepted"]
        loser = next(cid for cid, outcome in outcomes.items() if outcome != "accepted")
        assert engine.get(loser).state == "remedy_offered"
        retried = engine.retrying(
            lambda: engine.accept_remedy(loser, actor="customer:c", option=1, promise="r", due=due)
        )
        assert retried.state == "promised"  # 50 + 50 is within the cap of 100
    finally:
        stores.close()


def test_an_offer_classified_rip_off_while_it_awaits_approval_is_judged_as_one() -> None:
    """Regression: approval only checked the approver's authority. An 80 EUR refund
    offered before the customer was classified ``rip-off`` was approved and accepted,
    though the company normally gives 30 EUR for delivery: offered now, it is denied.
    Approval lifts ``needs_approval``; it never lifts a denial."""
    engine, _ = new_engine()
    cid = apologised(engine)
    engine.offer_remedy(cid, actor="agent:alice", options=[refund("80")])
    engine.classify(cid, actor="agent:bob", complainant_type="rip-off")
    before = engine.get(cid)
    with pytest.raises(PolicyViolation) as refused:
        engine.approve_offer(cid, actor="team-lead:sam")
    assert refused.value.decision.rule_ids == ("playbooks.rip-off.normal",)
    assert "more than the 30.00 EUR the company normally gives" in str(refused.value)
    assert engine.get(cid) == before
    assert engine.refuse_offer(cid, actor="team-lead:sam", reason="rip-off").state == "apologised"


def test_an_offer_awaiting_approval_is_judged_under_the_policy_it_was_migrated_to() -> None:
    """Regression: after ``migrate_policy`` to a policy with a lower cap, an offer made
    under the old one was approved although the new policy denies it."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = apologised(engine)
    engine.offer_remedy(cid, actor="agent:alice", options=[refund("80")])
    lower = parse_policy(POLICY_TEXT.replace("{amount: 100.00,", "{amount: 60.00,"))
    migrated, _ = new_engine(lower, store=store, previous_policies=[POLICY])
    migrated.migrate_policy(cid, actor="team-lead:sam", reason="policy 2")
    with pytest.raises(PolicyViolation) as refused:
        migrated.approve_offer(cid, actor="team-lead:sam")
    assert refused.value.decision.rule_ids == ("caps.per_customer",)
    assert migrated.get(cid).state == "awaiting_approval"


def test_an_offer_awaiting_approval_counts_what_was_paid_meanwhile() -> None:
    engine, clock = new_engine()
    cid = apologised(engine)
    engine.offer_remedy(cid, actor="agent:alice", options=[refund("80")])
    pay(engine, apologised(engine), "30.00", clock)
    with pytest.raises(PolicyViolation, match=r"paid 30\.00 EUR") as refused:
        engine.approve_offer(cid, actor="team-lead:sam")
    assert refused.value.decision.rule_ids == ("caps.per_customer",)


def test_an_approval_is_judged_with_the_offers_made_before_it() -> None:
    """The offer being approved is not counted against ``offers.max_per_case``."""
    one = parse_policy(POLICY_TEXT + "offers: {max_per_case: 1}\n")
    engine, _ = new_engine(one)
    cid = apologised(engine)
    engine.offer_remedy(cid, actor="agent:alice", options=[refund("80")])
    assert engine.approve_offer(cid, actor="team-lead:sam").state == "remedy_offered"


def test_an_open_offer_blocks_a_move_to_another_currency_also_from_a_policy_not_given() -> None:
    """Regression: when the engine was not given the case's policy, ``migrate_policy``
    compared the new policy's currency with itself, so an open EUR offer moved to a USD
    policy and could then be accepted there (a EUR payment under a USD policy, which
    every later cap sum over the customer's cases fails on)."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = apologised(engine)
    engine.offer_remedy(cid, actor="agent:alice", options=[refund("40")])
    usd = parse_policy(POLICY_TEXT.replace("currency: EUR", "currency: USD"))
    dollars, _ = new_engine(usd, store=store)  # the case's policy is not given
    before = (dollars.get(cid), len(dollars.history(cid)))
    with pytest.raises(StepNotAllowed, match="open in EUR"):
        dollars.migrate_policy(cid, actor="team-lead:sam", reason="new policy")
    assert (dollars.get(cid), len(dollars.history(cid))) == before
    dollars_too, _ = new_engine(usd, store=store, previous_policies=[POLICY])
    with pytest.raises(StepNotAllowed, match="open in EUR"):
        dollars_too.migrate_policy(cid, actor="team-lead:sam", reason="new policy")


def test_a_closed_case_under_a_policy_not_given_is_not_told_to_migrate() -> None:
    """Regression: a closed case whose policy the engine was not given refused
    ``add_note`` naming ``migrate_policy`` as the one step allowed, which a closed case
    cannot take: the error named a step that is refused too."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = apologised(engine)
    engine.withdraw(cid, actor="customer:c-1", reason="sorted it out myself")
    other, _ = new_engine(parse_policy(POLICY_TEXT.replace('version: "1"', 'version: "2"')),
                          store=store)  # fmt: skip
    with pytest.raises(StepNotAllowed, match="pass it in previous_policies") as info:
        other.add_note(cid, actor="agent:a", text="x")
    assert info.value.allowed == ()
    assert "migrate_policy" not in str(info.value)
    open_cid = apologised(engine)
    with pytest.raises(StepNotAllowed, match="or migrate_policy the case") as info:
        other.add_note(open_cid, actor="agent:a", text="x")
    assert info.value.allowed == ("migrate_policy",)


def test_the_steps_allowed_by_an_engine_without_the_cases_policy_are_the_ones_it_takes() -> None:
    """Regression: ``allowed_steps`` listed the machine's steps for a case whose policy
    the engine was not given, every one of which it refuses but ``migrate_policy``; and
    a refused ``migrate_policy`` (no reason) listed them too."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = apologised(engine)
    closed = apologised(engine)
    engine.withdraw(closed, actor="customer:c-1", reason="done")
    other, _ = new_engine(parse_policy(POLICY_TEXT.replace('version: "1"', 'version: "2"')),
                          store=store)  # fmt: skip
    assert other.allowed_steps(cid) == ("migrate_policy",)
    assert other.allowed_steps(closed) == ()
    with pytest.raises(StepRefused) as info:
        other.step(cid, "migrate_policy", actor="team-lead:sam")
    assert info.value.allowed == ("migrate_policy",)
    with pytest.raises(StepNotAllowed) as refused:
        other.step(closed, "reopen", actor="team-lead:sam", reason="x")
    assert refused.value.allowed == ()


def test_migrate_policy_is_allowed_only_for_a_case_under_an_earlier_policy() -> None:
    """A case already under the engine's policy cannot be migrated (the guard refuses
    whatever the input): it is not listed as allowed, in ``allowed_steps`` or in a
    refusal; a case under an earlier policy the engine was given lists it."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = apologised(engine)
    assert "migrate_policy" not in engine.allowed_steps(cid)
    with pytest.raises(StepRefused) as info:
        engine.step(cid, "migrate_policy", actor="team-lead:sam", reason="tidy up")
    assert "already runs under" in str(info.value)
    assert "migrate_policy" not in info.value.allowed
    assert info.value.allowed == engine.allowed_steps(cid)
    newer, _ = new_engine(parse_policy(POLICY_TEXT.replace('version: "1"', 'version: "2"')),
                          store=store, previous_policies=[engine.policy])  # fmt: skip
    assert "migrate_policy" in newer.allowed_steps(cid)
    newer.step(cid, "migrate_policy", actor="team-lead:sam", reason="new rules")
    assert "migrate_policy" not in newer.allowed_steps(cid)


def test_guidance_offers_only_the_steps_an_engine_without_the_cases_policy_takes() -> None:
    """Regression: ``guidance`` listed the playbook's text for every step of the state,
    read under the engine's current policy, for a case whose policy the engine was not
    given; that engine refuses all of them but ``migrate_policy``."""
    store = MemoryStore()
    engine, _ = new_engine(store=store)
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="phone").id
    engine.acknowledge(cid, actor="agent:a")
    engine.classify(cid, actor="agent:a", complainant_type="aggressive")
    other, _ = new_engine(parse_policy(POLICY_TEXT.replace('version: "1"', 'version: "2"')),
                          store=store)  # fmt: skip
    assert other.allowed_steps(cid) == ("migrate_policy",)
    assert other.guidance(cid).steps == {}
