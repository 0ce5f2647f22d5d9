"""A complaint's whole lifecycle and every side path, through the engine."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from adapters.memory import MemoryStore
from tests.conftest import AGENT, CUSTOMER, LEAD, OTHER_AGENT, PATH, REFUND, STATE_AFTER, open_case
from workflow import (
    CHECKLIST,
    Decision,
    Engine,
    ManualClock,
    Money,
    OfferRequest,
    OfferStatus,
    Policy,
    PolicyViolation,
    Remedy,
    replay,
    vault_of,
)


def approval_above(limit: str) -> Callable[[Policy, OfferRequest], Decision]:
    """A decision hook: offers worth more than ``limit`` EUR need a second person."""

    def decide(policy: Policy, request: OfferRequest) -> Decision:
        total = sum((r.amount.amount for r in request.remedies if r.amount), start=0)
        if total > Money.of(limit, "EUR").amount:
            return Decision.needs_approval("test.limit", f"above {limit} EUR")
        return Decision.allowed("test.limit", f"within {limit} EUR")

    return decide


def test_a_complaint_runs_through_every_checklist_step_in_order(engine: Engine) -> None:
    """Each main-path step moves the case to the next state and appends one event."""
    case_id = open_case(engine)
    assert engine.get(case_id).state == "received"
    for seq, (step, inputs) in enumerate(PATH, start=2):
        actor = CUSTOMER if step == "accept_remedy" else AGENT
        case = engine.step(case_id, step, actor=actor, **inputs)
        assert case.state == STATE_AFTER[step]
        assert case.version == seq
    history = engine.history(case_id)
    assert [e.type for e in history] == ["open", *CHECKLIST]
    assert replay(history, vault_of(engine.get(case_id).personal)) == engine.get(case_id)


def test_a_new_case_is_named_case_and_a_random_uuid(engine: Engine) -> None:
    ids = {open_case(engine) for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        prefix, _, rest = cid.partition("-")
        found = uuid.UUID(rest)
        assert (prefix, found.hex, found.version, found.variant) == ("case", rest, 4, uuid.RFC_4122)


def test_the_step_methods_record_what_they_are_given(engine: Engine, clock: ManualClock) -> None:
    """The named methods carry their data into the case: notes, record, offer, promise."""
    cid = open_case(engine)
    engine.acknowledge(cid, actor=AGENT)
    engine.listen(cid, actor=AGENT, note="It was a wedding gift.")
    engine.record(
        cid,
        actor=AGENT,
        category="delivery",
        contact="ann@example.com",
        occurred_on="2026-10-31",
        details="Box crushed.",
    )
    engine.apologise(cid, actor=AGENT, message="Sorry, and thanks for telling us.")
    engine.offer_remedy(
        cid, actor=AGENT, options=[Remedy(kind="replacement"), REFUND], note="two choices"
    )
    due = clock.now() + timedelta(days=3)
    engine.accept_remedy(cid, actor=CUSTOMER, option=2, promise="Refund 40 EUR", due=due)
    clock.advance(days=1)
    engine.keep_promise(cid, actor=AGENT, evidence="refund R-9")
    engine.request_feedback(cid, actor=AGENT)
    engine.record_feedback(cid, actor=CUSTOMER, score=5, comment="Quick, thanks")
    case = engine.close(cid, actor=AGENT, resolution="refunded")

    assert case.notes[0].text == "It was a wedding gift."
    assert (case.category, case.customer.contact, str(case.occurred_on)) == (
        "delivery",
        "ann@example.com",
        "2026-10-31",
    )
    offer = case.offers[0]
    assert (offer.status, offer.chosen, offer.options[1].amount) == (
        OfferStatus.ACCEPTED,
        2,
        Money.of("40.00", "EUR"),
    )
    assert case.promise is not None
    assert (case.promise.due_at, case.promise.evidence, case.promise.kept_by) == (
        due,
        "refund R-9",
        AGENT,
    )
    assert case.promise.kept_at == clock.now()
    assert [(f.score, f.comment) for f in case.feedback] == [(5, "Quick, thanks")]
    assert (case.closed_at, case.resolution) == (clock.now(), "refunded")


@pytest.mark.parametrize(
    "state",
    [
        "received",
        "acknowledged",
        "listening",
        "recorded",
        "apologised",
        "remedy_offered",
        "promised",
        "promise_kept",
        "feedback_requested",
    ],
)
def test_escalate_and_resume_return_the_case_to_where_it_was(
    engine: Engine, case_in: Callable[[str], str], state: str
) -> None:
    cid = case_in(state)
    escalated = engine.escalate(cid, actor=AGENT, reason="asks for a manager", to_role="team-lead")
    assert escalated.state == "escalated"
    assert escalated.escalation is not None
    assert (escalated.escalation.to_role, escalated.escalation.resume_to) == ("team-lead", state)
    resumed = engine.resume(cid, actor=LEAD, note="handled")
    assert (resumed.state, resumed.escalation, resumed.escalations) == (state, None, 1)
    assert engine.replay(cid) == resumed


def test_an_offer_above_authority_waits_for_a_second_persons_approval(
    store: MemoryStore, clock: ManualClock, case_in: Callable[[str], str]
) -> None:
    engine = Engine(store, clock=clock, decide=approval_above("30.00"))
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    waiting = engine.offer_remedy(cid, actor=AGENT, options=[REFUND])
    assert waiting.state == "awaiting_approval"
    assert waiting.offers[0].status == OfferStatus.AWAITING_APPROVAL
    assert waiting.offers[0].decision.rule_ids == ("test.limit",)
    approved = engine.approve_offer(cid, actor=LEAD, note="fair")
    assert approved.state == "remedy_offered"
    assert (approved.offers[0].status, approved.offers[0].approved_by) == (OfferStatus.OPEN, LEAD)


def test_the_person_who_made_an_offer_cannot_approve_it(
    store: MemoryStore, clock: ManualClock
) -> None:
    engine = Engine(store, clock=clock, decide=approval_above("30.00"))
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    engine.offer_remedy(cid, actor=AGENT, options=[REFUND])
    before = engine.get(cid)
    with pytest.raises(PolicyViolation) as refused:
        engine.approve_offer(cid, actor="team-lead:alice")  # same person, other role
    assert refused.value.decision.rule_ids == ("approval.four_eyes",)
    assert engine.get(cid) == before


def test_a_refused_offer_goes_back_to_offering(store: MemoryStore, clock: ManualClock) -> None:
    engine = Engine(store, clock=clock, decide=approval_above("30.00"))
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    engine.offer_remedy(cid, actor=AGENT, options=[REFUND])
    case = engine.refuse_offer(cid, actor=LEAD, reason="too generous for a late parcel")
    assert (case.state, case.offers[0].status) == ("apologised", OfferStatus.REFUSED)
    second = engine.offer_remedy(
        cid, actor=AGENT, options=[Remedy(kind="coupon", amount=Money.of("20.00", "EUR"))]
    )
    assert (second.state, len(second.offers)) == ("remedy_offered", 2)


def test_a_declined_offer_is_counted_and_the_case_goes_back_to_offering(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("remedy_offered")
    case = engine.decline_remedy(cid, actor=CUSTOMER, reason="not enough")
    assert (case.state, case.declines, case.offers[0].status) == (
        "apologised",
        1,
        OfferStatus.DECLINED,
    )
    again = engine.offer_remedy(cid, actor=AGENT, options=[Remedy(kind="replacement")])
    assert (again.state, [o.number for o in again.offers]) == ("remedy_offered", [1, 2])


def test_a_closed_case_reopens_within_the_window_and_runs_the_checklist_again(
    engine: Engine, clock: ManualClock, case_in: Callable[[str], str]
) -> None:
    cid = case_in("closed")
    clock.advance(days=29)
    case = engine.reopen(cid, actor=CUSTOMER, reason="the refund never arrived")
    assert (case.state, case.reopened, case.closed_at, case.promise) == ("received", 1, None, None)
    for step, inputs in PATH:
        actor = CUSTOMER if step == "accept_remedy" else AGENT
        if step == "accept_remedy":
            inputs = {**inputs, "due": clock.now() + timedelta(days=2)}
        case = engine.step(cid, step, actor=actor, **inputs)
    assert case.state == "closed"
    assert engine.replay(cid) == case


def test_reopening_after_the_policys_window_is_refused(
    engine: Engine, clock: ManualClock, case_in: Callable[[str], str]
) -> None:
    cid = case_in("closed")
    before = engine.history(cid)
    clock.advance(days=30, seconds=1)
    with pytest.raises(PolicyViolation) as refused:
        engine.reopen(cid, actor=CUSTOMER, reason="still broken")
    assert refused.value.decision.rule_ids == ("reopen.window",)
    # The window as the policy file writes it (was timedelta's "30 days, 0:00:00").
    assert "the policy allows reopening within P30D" in refused.value.decision.reasons[0]
    assert engine.get(cid).state == "closed"
    assert engine.history(cid) == before  # nothing written


@pytest.mark.parametrize("state", ["received", "recorded", "promised", "escalated"])
def test_the_customer_can_withdraw_from_any_open_state(
    engine: Engine, case_in: Callable[[str], str], state: str
) -> None:
    cid = case_in("recorded" if state == "escalated" else state)
    if state == "escalated":
        engine.escalate(cid, actor=AGENT, reason="threatens to sue", to_role="legal")
    case = engine.withdraw(cid, actor=CUSTOMER, reason="sorted it out with the courier")
    assert case.state == "withdrawn"
    assert engine.allowed_steps(cid) == ("add_note",)


def test_assigning_to_someone_else_counts_as_a_transfer(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("acknowledged")
    assert engine.assign(cid, actor=LEAD, to="alice").transfers == 0
    assert engine.assign(cid, actor=LEAD, to="bob").transfers == 1
    case = engine.assign(cid, actor=LEAD, to="alice")
    assert (case.assignee, case.transfers, case.state) == ("alice", 2, "acknowledged")


def test_actions_keep_the_case_in_its_state(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("listening")
    engine.add_note(cid, actor=OTHER_AGENT, text="customer called again")
    engine.classify(cid, actor=AGENT, complainant_type="high-roller")
    engine.pause_sla(cid, actor=AGENT, reason="waiting for photos")
    paused = engine.get(cid)
    case = engine.resume_sla(cid, actor=AGENT)
    assert (paused.sla_paused, case.sla_paused) == (True, False)
    assert case.state == "listening"
    assert case.complainant_type.value == "high-roller"
    assert [e.type for e in engine.history(cid)][-4:] == [
        "add_note",
        "classify",
        "pause_sla",
        "resume_sla",
    ]


def test_a_policy_that_waives_feedback_lets_a_kept_promise_close(
    store: MemoryStore, clock: ManualClock
) -> None:
    policy = Policy(
        name="no survey", version="2", currency="EUR", feedback={"required_before_close": False}
    )
    engine = Engine(store, clock=clock, policy=policy)
    cid = open_case(engine)
    for step, inputs in PATH[:7]:
        engine.step(cid, step, actor=AGENT, **inputs)
    case = engine.close(cid, actor=AGENT)
    assert case.state == "closed"
    assert engine.history(cid)[-1].data["feedback_waived"] is True
    assert engine.replay(cid) == case


def test_feedback_can_be_recorded_after_closing(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("closed")
    case = engine.record_feedback(cid, actor=CUSTOMER, comment="late but fine")
    assert (case.state, case.feedback[-1].comment) == ("closed", "late but fine")


def test_every_event_records_the_policy_it_ran_under(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("recorded")
    stamps = {e.policy_version for e in engine.history(cid)}
    assert stamps == {engine.policy.stamp}
    assert engine.policy.stamp == f"1@{engine.policy.digest}"
    assert engine.policy.digest.startswith("sha256:")
