"""Properties over random sequences of steps (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
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
