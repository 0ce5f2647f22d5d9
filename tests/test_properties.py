"""Properties over random sequences of steps (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from workflow import (
    CHECKLIST,
    STEP_NAMES,
    Decision,
    Engine,
    ManualClock,
    Money,
    OfferRequest,
    Policy,
    Remedy,
    StepRefused,
    allowed_steps,
    replay,
    vault_of,
)
from workflow.events import Event

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def needs_approval_above_50(policy: Policy, request: OfferRequest) -> Decision:
    total = sum((r.amount.amount for r in request.remedies if r.amount), start=0)
    if total > 50:
        return Decision.needs_approval("test.above_50", "above 50 EUR")
    return Decision.allowed("test.within_50", "within 50 EUR")


def good_inputs(step: str, now: datetime, variant: int) -> dict[str, Any]:
    amount = "40.00" if variant % 2 else "60.00"
    table: dict[str, dict[str, Any]] = {
        "listen": {"note": "their account"},
        "record": {
            "category": "delivery",
            "contact": "a@example.com",
            "occurred_on": "2026-11-01",
            "details": "broken",
        },
        "apologise": {"message": "sorry, and thanks"},
        "offer_remedy": {"options": [Remedy(kind="refund", amount=Money.of(amount, "EUR"))]},
        "refuse_offer": {"reason": "too much"},
        "accept_remedy": {"option": 1, "promise": "refund", "due": now + timedelta(days=2)},
        "keep_promise": {"evidence": "ref"},
        "escalate": {"reason": "manager", "to_role": "team-lead"},
        "reopen": {"reason": "again"},
        "withdraw": {"reason": "done"},
        "add_note": {"text": "note"},
        "assign": {"to": f"agent-{variant}"},
        "classify": {"complainant_type": "chronic"},
        "pause_sla": {"reason": "waiting"},
        "record_feedback": {"score": 1 + variant % 5},
    }
    return table.get(step, {})


attempts = st.lists(
    st.tuples(
        # Mostly a step the case allows now (index into allowed_steps), sometimes any step.
        # Index 0 is the next main-path step, so the walk often gets far.
        st.one_of(st.just(0), st.just(0), st.integers(0, 20), st.sampled_from(STEP_NAMES)),
        st.integers(0, 9),  # variant: which actor, which amount
        st.integers(0, 5).map(bool),  # whether to send the step's inputs (mostly yes)
        st.integers(0, 60 * 24 * 4),  # minutes to wait first
    ),
    min_size=15,
    max_size=80,
)


def checklist_cycles_are_complete(history: list[Event]) -> bool:
    """Every close follows the whole checklist, in order, since the case opened or was
    last reopened."""
    cycle: list[str] = []
    for ev in history:
        if ev.type in ("open", "reopen"):
            cycle = []
        elif ev.type in CHECKLIST:
            cycle.append(ev.type)
        if ev.type == "close":
            main = [s for s in cycle if s in CHECKLIST]
            it = iter(main)
            required = [s for s in CHECKLIST if s != "request_feedback"]
            if not all(step in it for step in required):
                return False
    return True


@given(attempts)
def test_random_steps_never_close_without_the_checklist_and_state_always_equals_replay(
    plan: list[tuple[int | str, int, bool, int]],
) -> None:
    clock = ManualClock(START)
    policy = Policy(
        name="p", version="1", currency="EUR", feedback={"required_before_close": False}
    )
    engine = Engine(MemoryStore(), clock=clock, policy=policy, decide=needs_approval_above_50)
    cid = engine.open_case(
        actor="agent:a", customer={"id": "c", "name": "C"}, channel="phone", subject="s"
    ).id
    reached_close = False
    for pick, variant, with_inputs, wait in plan:
        clock.advance(minutes=wait)
        state = engine.get(cid).state
        allowed = allowed_steps(state)
        step = pick if isinstance(pick, str) else allowed[pick % len(allowed)]
        actor = ("agent:a", "agent:b", "customer:c", "team-lead:d")[variant % 4]
        inputs = good_inputs(step, clock.now(), variant) if with_inputs else {}
        before = engine.get(cid)
        try:
            case = engine.step(cid, step, actor=actor, **inputs)
        except StepRefused:
            assert engine.get(cid) == before
            continue
        history = engine.history(cid)
        assert case.version == len(history) == before.version + 1
        assert replay(history, vault_of(case.personal)) == case == engine.get(cid)
        reached_close = reached_close or case.state == "closed"
        assert checklist_cycles_are_complete(history)
    event(f"reached closed: {reached_close}")


SLA_POLICY = parse_policy(
    """
name: timed
version: "1"
currency: EUR
sla:
  targets:
    - {id: ack, step: acknowledge, within: PT2H, on_breach: escalate, escalate_to: team-lead}
    - {id: listen, step: listen, within: PT8H, start: previous_step}
    - {id: agree, step: accept_remedy, within: P2D, on_breach: raise_priority, raise_to: high}
    - {id: close, step: close, within: P5D}
"""
)
#: The policy a case can migrate to: no SLA targets, feedback waived, another currency
#: (so an open offer blocks the move).
NEXT_POLICY = Policy(
    name="next", version="2", currency="USD", feedback={"required_before_close": False}
)
#: Inputs that are wrong in kind (a number or a list for text, text for a number).
BAD_INPUTS: dict[str, dict[str, Any]] = {
    "listen": {"note": 42},
    "record": {"occurred_on": 0, "details": ["x"]},
    "apologise": {"message": "   "},
    "offer_remedy": {"options": "refund"},
    "accept_remedy": {"option": True, "promise": "p", "due": 1.9e9},
    "keep_promise": {"evidence": None},
    "escalate": {"reason": "r", "to_role": "Team Lead"},
    "assign": {"to": 7},
    "classify": {"complainant_type": ["meek"]},
    "record_feedback": {"score": 6},
    "add_note": {"text": "x" * 10_001},
}

timed_attempts = st.lists(
    st.tuples(
        st.one_of(
            st.just(0),
            st.just(0),
            st.integers(0, 20),
            st.sampled_from(STEP_NAMES),
            st.just("migrate_policy"),
        ),
        st.integers(0, 9),  # variant: which actor, which engine, which amount
        st.sampled_from(("good", "good", "good", "none", "bad")),
        st.integers(0, 60 * 6),  # minutes to wait first
        st.booleans(),  # whether the SLA sweeper runs first
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(timed_attempts)
def test_under_sla_targets_sweeps_and_migration_state_always_equals_replay(
    plan: list[tuple[int | str, int, str, int, bool]],
) -> None:
    """With SLA warnings, breaches and escalations recorded by the sweeper and by late
    steps, two engines (one that migrates cases to a policy the other was not given) and
    malformed inputs: a refused step writes nothing, an accepted one ends the history
    with its own event, the case equals its replay, and every history verifies."""
    clock = ManualClock(START)
    store = MemoryStore()
    timed = Engine(store, clock=clock, policy=SLA_POLICY, decide=needs_approval_above_50)
    moved = Engine(store, clock=clock, policy=NEXT_POLICY, previous_policies=[SLA_POLICY])
    timed_stamp = SLA_POLICY.stamp
    cid = timed.open_case(
        actor="agent:a", customer={"id": "c", "name": "C"}, channel="phone", subject="s"
    ).id
    for pick, variant, inputs_kind, wait, sweep in plan:
        clock.advance(minutes=wait)
        engine = moved if variant >= 8 else timed
        if sweep:
            engine.tick()
            assert replay(engine.history(cid), vault_of(store.load(cid).personal)) == (
                store.load(cid)
            )
        case = store.load(cid)
        allowed = allowed_steps(case.state)
        step = pick if isinstance(pick, str) else allowed[pick % len(allowed)]
        actor = ("agent:a", "agent:b", "customer:c", "team-lead:d")[variant % 4]
        inputs = {
            "good": good_inputs(step, clock.now(), variant),
            "none": {},
            "bad": BAD_INPUTS.get(step, {}),
        }[inputs_kind]
        if step == "migrate_policy" and inputs_kind == "good":
            inputs = {"reason": "policy 2 replaces 1"}
        if step == "offer_remedy" and inputs_kind == "good" and case.policy_version != timed_stamp:
            inputs = {"options": [Remedy(kind="refund", amount=Money.of("40", "USD"))]}
        before, length = case, len(engine.history(cid))
        try:
            after = engine.step(cid, step, actor=actor, **inputs)
        except StepRefused as refusal:
            refused = refusal
        else:
            refused = None
        if refused is not None:
            assert (store.load(cid), len(engine.history(cid))) == (before, length)
            assert refused.allowed == engine.allowed_steps(cid)
            continue
        history = engine.history(cid)
        assert after.version == len(history) > length
        assert history[-1].type == step
        assert inputs_kind != "bad" or not BAD_INPUTS.get(step)
        assert replay(history, vault_of(after.personal)) == after == store.load(cid)
    assert timed.verify(cid) == []
    types = {e.type for e in store.events(cid)}
    event(f"sla events: {bool(types & {'sla_warning', 'sla_breached'})}")
    event(f"migrated: {'migrate_policy' in types}")
    event(f"accepted a remedy: {'accept_remedy' in types}")
