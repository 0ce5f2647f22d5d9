"""Every guard refuses what it should, says why, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from tests.conftest import (
    AGENT,
    CUSTOMER,
    LEAD,
    PATH,
    REFUND,
    START,
    drive,
    open_case,
    unchecked_actor,
)
from workflow import (
    STEP_NAMES,
    Actor,
    Engine,
    InvalidStepData,
    ManualClock,
    MissingInformation,
    Policy,
    PolicyViolation,
    State,
    StepNotAllowed,
    StepRefused,
    allowed_steps,
)
from workflow.checklist import MACHINE
from workflow.clock import to_utc
from workflow.guards import StepContext


@contextmanager
def nothing_written(engine: Engine, case_id: str) -> Iterator[None]:
    """Asserts the case and its history are exactly as before the block."""
    before = (engine.get(case_id), len(engine.history(case_id)))
    yield
    assert (engine.get(case_id), len(engine.history(case_id))) == before


def refused(
    engine: Engine, case_id: str, error: type[StepRefused], step: str, **inputs: Any
) -> Any:
    actor = inputs.pop("actor", AGENT)
    with nothing_written(engine, case_id), pytest.raises(error) as info:
        engine.step(case_id, step, actor=actor, **inputs)
    assert info.value.case_id == case_id
    assert info.value.step == step
    assert info.value.allowed == engine.allowed_steps(case_id)
    return info.value


def _inputs(step: str) -> dict[str, Any]:
    return dict(next((i for s, i in PATH if s == step), {}))


OUT_OF_ORDER = [
    (state, step)
    for state in ("received", "acknowledged", "recorded", "remedy_offered", "closed")
    for step in STEP_NAMES
    if step not in allowed_steps(state)
]


@pytest.mark.parametrize(("state", "step"), OUT_OF_ORDER)
def test_a_step_out_of_order_is_refused_naming_the_state_and_the_allowed_steps(
    engine: Engine, case_in: Callable[[str], str], state: str, step: str
) -> None:
    cid = case_in(state)
    error = refused(engine, cid, StepNotAllowed, step, **_inputs(step))
    assert error.state == state
    assert f"'{state}'" in str(error)
    assert all(name in str(error) for name in error.allowed)


def test_an_unknown_step_is_refused(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("received")
    error = refused(engine, cid, StepNotAllowed, "refund_everything")
    assert "no step called 'refund_everything'" in str(error)


def test_an_unknown_input_is_refused(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("received")
    error = refused(engine, cid, InvalidStepData, "acknowledge", mesage="typo")
    assert error.problems == (("mesage", "'acknowledge' takes no such input"),)


def test_listen_needs_the_customers_account_in_a_note(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("acknowledged")
    assert refused(engine, cid, MissingInformation, "listen").fields == ("note",)
    assert refused(engine, cid, MissingInformation, "listen", note="   ").fields == ("note",)
    assert refused(engine, cid, InvalidStepData, "listen", note=42).problems[0][0] == "note"


@pytest.mark.parametrize("field", ["category", "contact", "occurred_on", "details"])
def test_record_names_each_missing_field(
    engine: Engine, case_in: Callable[[str], str], field: str
) -> None:
    cid = case_in("listening")
    inputs = _inputs("record")
    del inputs[field]
    assert refused(engine, cid, MissingInformation, "record", **inputs).fields == (field,)


def test_record_without_anything_names_every_missing_field(engine: Engine) -> None:
    cid = open_case(engine, subject=None)
    engine.acknowledge(cid, actor=AGENT)
    engine.listen(cid, actor=AGENT, note="angry")
    error = refused(engine, cid, MissingInformation, "record")
    assert error.fields == ("category", "subject", "contact", "occurred_on", "details")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("occurred_on", "2026-13-01", "occurred_on"),
        ("occurred_on", (START + timedelta(days=3)).date().isoformat(), "in the future"),
        ("occurred_on", START, "not a datetime"),
        ("category", "Delivery Issues", "lower-case"),
    ],
)
def test_record_refuses_malformed_data(
    engine: Engine, case_in: Callable[[str], str], field: str, value: Any, problem: str
) -> None:
    cid = case_in("listening")
    error = refused(engine, cid, InvalidStepData, "record", **{**_inputs("record"), field: value})
    assert error.problems[0][0] == field
    assert problem in str(error)


def test_apologise_needs_a_message(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("recorded")
    assert refused(engine, cid, MissingInformation, "apologise").fields == ("message",)


def test_an_offer_needs_options(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("apologised")
    assert refused(engine, cid, MissingInformation, "offer_remedy").fields == ("options",)
    assert refused(engine, cid, MissingInformation, "offer_remedy", options=[]).fields == (
        "options",
    )
    error = refused(engine, cid, InvalidStepData, "offer_remedy", options="refund")
    assert error.problems[0][0] == "options"


@pytest.mark.parametrize(
    ("option", "problems"),
    [
        (
            {"kind": "refund", "amount": {"amount": 40.0, "currency": "EUR"}},
            [("options[1].amount.amount", "floats are never money: write the amount as a "
              "string or a plain decimal, e.g. '40.00'")],
        ),
        ({"kind": "refund"}, [("options[1]", "a refund remedy needs an amount")]),
        (
            {"kind": "refund", "amount": {"amount": "40.001", "currency": "EUR"}},
            [("options[1].amount", "40.001 has 3 decimal places; EUR has 2")],
        ),
        (
            {"kind": "refund", "amount": {"amount": "40", "currency": "XYZ"}},
            [("options[1].amount.currency", "'XYZ' is not an ISO 4217 currency code")],
        ),
        (
            {"kind": "refund", "amount": {"amount": "40", "currency": "USD"}},
            [("options[1].amount", "USD given; the policy's currency is EUR")],
        ),
        (
            {"kind": "Free Money"},
            [("options[1].kind", "String should match pattern '^[a-z][a-z0-9_]*$'")],
        ),
        (
            {"kind": "coupon", "amount": {"amount": "-5", "currency": "EUR"}},
            [("options[1]", "a remedy's amount must be positive, got -5 EUR")],
        ),
        (
            {"kind": "refund", "amount": "40 EUR", "note": "x"},
            [
                ("options[1].amount", "Input should be a valid dictionary or instance of Money"),
                ("options[1].note", "Extra inputs are not permitted"),
            ],
        ),
    ],
)  # fmt: skip
def test_an_offer_with_a_malformed_remedy_is_refused_naming_the_option_and_its_field(
    engine: Engine, case_in: Callable[[str], str], option: Any, problems: list[Any]
) -> None:
    """Each problem names the option and the field in it (``options[1].amount.currency``:
    a form can mark the input at fault) and says what is wrong in the check's own words,
    without pydantic's ``Value error, ``."""
    cid = case_in("apologised")
    error = refused(engine, cid, InvalidStepData, "offer_remedy", options=[option])
    assert list(error.problems) == problems


def test_the_policy_can_deny_an_offer(store: Any, clock: ManualClock) -> None:
    policy = Policy(name="strict", version="1", currency="EUR", offers={"max_per_case": 1})
    engine = Engine(store, clock=clock, policy=policy)
    cid = open_case(engine)
    for step, inputs in PATH[:5]:
        engine.step(cid, step, actor=AGENT, **inputs)
    engine.decline_remedy(cid, actor=CUSTOMER)
    error = refused(engine, cid, PolicyViolation, "offer_remedy", **_inputs("offer_remedy"))
    assert error.decision.rule_ids == ("offers.max_per_case",)
    assert "allows 1" in str(error)


@pytest.mark.parametrize("missing", ["option", "promise", "due"])
def test_accepting_a_remedy_needs_the_option_the_promise_and_its_due_date(
    engine: Engine, case_in: Callable[[str], str], missing: str
) -> None:
    cid = case_in("remedy_offered")
    inputs = _inputs("accept_remedy")
    del inputs[missing]
    assert refused(engine, cid, MissingInformation, "accept_remedy", **inputs).fields == (missing,)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"option": 2}, "option", "options 1 to 1"),
        ({"option": True}, "option", "option's number"),
        ({"due": START - timedelta(hours=1)}, "due", "not after now"),
        ({"due": datetime(2026, 11, 9, 12, 0)}, "due", "naive datetime"),  # noqa: DTZ001
    ],
)
def test_accepting_a_remedy_refuses_a_bad_option_or_due_date(
    engine: Engine,
    case_in: Callable[[str], str],
    change: dict[str, Any],
    field: str,
    problem: str,
) -> None:
    cid = case_in("remedy_offered")
    inputs = {**_inputs("accept_remedy"), **change}
    error = refused(engine, cid, InvalidStepData, "accept_remedy", **inputs)
    assert error.problems[0][0] == field
    assert problem in error.problems[0][1]


def test_keeping_a_promise_needs_evidence(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("promised")
    assert refused(engine, cid, MissingInformation, "keep_promise").fields == ("evidence",)


def test_closing_needs_feedback_requested_when_the_policy_says_so(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("promise_kept")
    error = refused(engine, cid, MissingInformation, "close")
    assert error.fields == ("feedback request",)
    assert "request_feedback" in str(error)


def test_close_is_not_listed_as_allowed_before_feedback_when_the_policy_needs_it(
    engine: Engine, store: Any, clock: ManualClock, case_in: Callable[[str], str]
) -> None:
    """Regression: refusing ``close`` from ``promise_kept`` (the policy needs feedback
    requested first) listed ``close`` among the steps allowed now, as did
    ``Engine.allowed_steps`` and every other refusal in that state."""
    cid = case_in("promise_kept")
    assert "close" in allowed_steps("promise_kept")  # the machine's graph has the route
    assert "close" not in engine.allowed_steps(cid)
    for step, error in (("close", MissingInformation), ("approve_offer", StepNotAllowed)):
        with pytest.raises(error) as info:
            engine.step(cid, step, actor=AGENT)
        assert "close" not in info.value.allowed
    assert "close" not in str(info.value).split("Allowed now:")[1]
    waiving = Engine(store, clock=clock,
                     policy=Policy(name="w", version="1", currency="EUR",
                                   feedback={"required_before_close": False}))  # fmt: skip
    wid = case_in("received")
    waiving.migrate_policy(wid, actor=LEAD, reason="feedback waived")
    drive(waiving, wid, "promise_kept")
    assert "close" in waiving.allowed_steps(wid)


def test_the_sla_clock_steps_are_listed_as_allowed_only_when_they_can_succeed(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """Regression: refusing ``resume_sla`` on a clock that was not paused listed
    ``resume_sla`` among the steps allowed now (and ``pause_sla`` on a paused one), as
    ``Engine.allowed_steps`` did: no input makes either succeed in that case."""
    cid = case_in("acknowledged")
    assert "pause_sla" in engine.allowed_steps(cid)
    assert "resume_sla" not in engine.allowed_steps(cid)
    with pytest.raises(StepNotAllowed) as info:
        engine.resume_sla(cid, actor=AGENT)
    assert "resume_sla" not in info.value.allowed
    assert "pause_sla" in info.value.allowed
    engine.pause_sla(cid, actor=AGENT, reason="waiting on photos")
    assert "resume_sla" in engine.allowed_steps(cid)
    assert "pause_sla" not in engine.allowed_steps(cid)
    with pytest.raises(StepNotAllowed) as info:
        engine.pause_sla(cid, actor=AGENT, reason="again")
    assert "pause_sla" not in info.value.allowed
    assert "resume_sla" in info.value.allowed
    assert "pause_sla" not in str(info.value).split("Allowed now:")[1]


def test_escalating_needs_a_reason_and_a_target_role(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("recorded")
    assert refused(engine, cid, MissingInformation, "escalate", to_role="lead").fields == (
        "reason",
    )
    assert refused(engine, cid, MissingInformation, "escalate", reason="x").fields == ("to_role",)


@pytest.mark.parametrize(
    ("state", "step"),
    [
        ("closed", "reopen"),
        ("recorded", "withdraw"),
        ("recorded", "add_note"),
        ("recorded", "pause_sla"),
        ("recorded", "assign"),
        ("recorded", "classify"),
    ],
)
def test_steps_that_need_their_one_input_refuse_without_it(
    engine: Engine, case_in: Callable[[str], str], state: str, step: str
) -> None:
    cid = case_in(state)
    assert len(refused(engine, cid, MissingInformation, step).fields) == 1


def test_assigning_to_the_current_assignee_is_refused(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("recorded")
    engine.assign(cid, actor=AGENT, to="alice")
    error = refused(engine, cid, InvalidStepData, "assign", to="alice")
    assert "already assigned to alice" in str(error)


def test_an_assignee_longer_than_300_characters_is_refused(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """The SQL store keeps the assignee in a column of 300 characters, for finding a
    person's cases (surrounding spaces are not counted: they are not recorded)."""
    cid = case_in("recorded")
    error = refused(engine, cid, InvalidStepData, "assign", to="a" * 301)
    assert error.problems == (("to", "longer than 300 characters"),)
    assert engine.get(cid).version == 4  # nothing written
    longest = "a" * 300
    assert engine.assign(cid, actor=AGENT, to=f" {longest} ").assignee == longest


def test_an_assignee_holding_u0000_is_refused(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """PostgreSQL cannot store U+0000 in the assignee column that cases are found by."""
    cid = case_in("recorded")
    error = refused(engine, cid, InvalidStepData, "assign", to="al\x00ice")
    assert error.problems == (("to", "holds U+0000 at position 3, which PostgreSQL cannot store"),)
    assert engine.get(cid).version == 4  # nothing written


def test_classifying_with_an_unknown_type_is_refused(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """As ``open_case`` refuses one (the same words)."""
    cid = case_in("recorded")
    error = refused(engine, cid, InvalidStepData, "classify", complainant_type="grumpy")
    assert error.problems == (
        (
            "complainant_type",
            "'grumpy' is not a complainant type; the complainant types are: meek, "
            "aggressive, high-roller, rip-off, chronic, unknown",
        ),
    )


def test_the_sla_clock_cannot_be_paused_twice_or_resumed_when_running(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("recorded")
    assert "not paused" in str(refused(engine, cid, StepNotAllowed, "resume_sla"))
    engine.pause_sla(cid, actor=AGENT, reason="waiting on photos")
    error = refused(engine, cid, StepNotAllowed, "pause_sla", reason="again")
    assert error.reason == "the SLA clock is already paused"


@pytest.mark.parametrize(
    ("inputs", "error_type"),
    [
        ({}, MissingInformation),
        ({"score": 6}, InvalidStepData),
        ({"score": "5"}, InvalidStepData),
        ({"score": False}, InvalidStepData),
    ],
)
def test_feedback_needs_a_score_from_1_to_5_or_a_comment(
    engine: Engine,
    case_in: Callable[[str], str],
    inputs: dict[str, Any],
    error_type: type[StepRefused],
) -> None:
    cid = case_in("feedback_requested")
    refused(engine, cid, error_type, "record_feedback", actor=CUSTOMER, **inputs)


def test_approving_without_an_offer_awaiting_approval_is_impossible() -> None:
    """The machine allows approve_offer only from awaiting_approval."""
    assert allowed_steps(State.AWAITING_APPROVAL)[:2] == ("approve_offer", "refuse_offer")
    assert not any(
        "approve_offer" in allowed_steps(s) for s in State if s != State.AWAITING_APPROVAL
    )


def test_a_malformed_actor_is_refused_before_anything_happens(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("received")
    with nothing_written(engine, cid), pytest.raises(ValueError, match="role:id"):
        engine.acknowledge(cid, actor="alice")


def test_a_clock_giving_naive_time_is_refused(engine: Engine) -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2026, 11, 2, 9, 0)  # noqa: DTZ001

    naive = Engine(engine.store, clock=NaiveClock())
    with pytest.raises(ValueError, match="naive datetime"):
        naive.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="email")
    assert list(engine.store.case_ids()) == []


def test_opening_a_case_with_bad_data_names_the_field(engine: Engine) -> None:
    with pytest.raises(InvalidStepData) as error:
        engine.open_case(actor=AGENT, customer={"id": "c-1"}, channel="email")
    assert error.value.problems[0][0] == "name"
    with pytest.raises(InvalidStepData, match="fax"):
        engine.open_case(actor=AGENT, customer={"id": "c-1", "name": "A"}, channel="fax")
    assert list(engine.store.case_ids()) == []


@pytest.mark.parametrize("idempotency_key", [None, "k-open"])
def test_a_refused_open_case_names_no_case_id_nobody_gave(
    engine: Engine, idempotency_key: str | None
) -> None:
    """Regression: a refused ``open_case`` named the random id it had drawn for the case
    (``'open' on case case-6172... (state '(new)')``), an id no case will ever have.
    Without a caller's case id the refusal is about a new case; with one it names it."""
    from structlog.testing import capture_logs

    bad = {"actor": AGENT, "customer": {"id": "c-1"}, "channel": "email",
           "idempotency_key": idempotency_key}  # fmt: skip
    with capture_logs() as logs, pytest.raises(InvalidStepData) as error:
        engine.open_case(**bad)
    assert error.value.case_id == "(new case)"
    assert str(error.value) == (
        "'open' on a new case got bad data: name: Field required. Nothing was written."
    )
    assert "case-" not in logs[0]["reason"]
    assert logs[0]["case_id"] == "(new case)"
    with pytest.raises(InvalidStepData) as error:
        engine.open_case(**bad, case_id="T-7")
    assert error.value.case_id == "T-7"
    assert str(error.value).startswith("'open' on case T-7 (state '(new)') got bad data: name")
    assert list(engine.store.case_ids()) == []


def test_the_machine_holds_no_cases() -> None:
    """Cases are never added to the shared machine."""
    assert MACHINE.models == []


def test_opening_a_case_refuses_a_future_date_and_ignores_blank_text(engine: Engine) -> None:
    """Regression: open_case took 2099 as the date it happened, and '  ' as details."""
    with pytest.raises(InvalidStepData, match="in the future"):
        engine.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="web",
                         occurred_on="2099-01-01")  # fmt: skip
    case = engine.open_case(
        actor=AGENT, customer={"id": "c", "name": "N"}, channel="web", details="   "
    )
    assert case.details is None


def _awaiting_approval(store: Any, clock: ManualClock) -> tuple[Engine, str]:
    """An engine whose every offer needs approval, and a case with an offer by ``AGENT``
    awaiting it."""
    from workflow import Decision, OfferRequest

    def always_approve(policy: Policy, request: OfferRequest) -> Decision:
        return Decision.needs_approval("test", "always")

    engine = Engine(store, clock=clock, decide=always_approve)
    cid = open_case(engine)
    for step, inputs in PATH[:5]:
        engine.step(cid, step, actor=AGENT, **inputs)
    return engine, cid


def test_four_eyes_ignores_the_case_of_the_id(store: Any, clock: ManualClock) -> None:
    engine, cid = _awaiting_approval(store, clock)
    with pytest.raises(PolicyViolation, match="four_eyes"):
        engine.approve_offer(cid, actor="team-lead:ALICE")


@pytest.mark.parametrize("approver", ["team-lead:\uff41lice", "team-lead:\uff21LICE"])
def test_four_eyes_is_not_fooled_by_lookalike_forms_of_the_same_id(
    store: Any, clock: ManualClock, approver: str
) -> None:
    """Regression: a full-width ``\uff41lice`` approved an offer ``agent:alice`` made:
    ids were compared as typed."""
    engine, cid = _awaiting_approval(store, clock)
    before = engine.get(cid)
    with pytest.raises(PolicyViolation, match="four_eyes"):
        engine.approve_offer(cid, actor=approver)
    assert engine.get(cid) == before
    assert engine.approve_offer(cid, actor="team-lead:alicia").state == "remedy_offered"


@pytest.mark.parametrize(
    "approver",
    ["team-lead:alice ", "team-lead:alice\t", "team-lead:Alice\u00a0", "team-lead: alice"],
)
def test_an_approver_id_with_spaces_at_an_end_is_refused_before_four_eyes(
    store: Any, clock: ManualClock, approver: str
) -> None:
    """Before ids were checked, ``team-lead:alice `` (a trailing space) approved an offer
    ``agent:alice`` made; four eyes then learned to ignore the spaces. Such an id is now
    refused outright (docs/decisions/0036), and nothing is written."""
    from workflow import InvalidActor

    engine, cid = _awaiting_approval(store, clock)
    with nothing_written(engine, cid), pytest.raises(InvalidActor, match="approve_offer"):
        engine.approve_offer(cid, actor=approver)


def test_an_idempotency_key_must_be_short_text(engine: Engine) -> None:
    with pytest.raises(ValueError, match="1 to 200 characters"):
        engine.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="web",
                         idempotency_key="k" * 201)  # fmt: skip


@given(st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=st.timezones()))
def test_an_aware_due_time_reads_as_validating_and_converting_it_would(when: datetime) -> None:
    """A UTC datetime is taken as it is; the result equals pydantic's reading in UTC."""
    ctx = StepContext(None, "accept_remedy", None, START, None, {"due": when}, None)  # type: ignore[arg-type]
    read = ctx.aware_datetime("due", required=True)
    expected = to_utc(TypeAdapter(datetime).validate_python(when), "due")
    assert (read, read.tzinfo if read else None) == (expected, UTC)


@pytest.mark.parametrize(
    ("maker_id", "same_person"), [(" bob", "BOB"), ("bob\nsmith", "Bob Smith")]
)
def test_an_offer_by_an_actor_whose_text_does_not_parse_can_be_approved(
    store: Any, clock: ManualClock, maker_id: str, same_person: str
) -> None:
    """Regression: an offer made by ``Actor(role="agent", id=" bob")`` was recorded as
    made by ``agent: bob``, text ``Actor.parse`` refuses; approving it then failed with a
    bare ``ValueError`` for every approver, so the case could never be approved. Four
    eyes now reads the recorded id after the role. (Such an ``Actor`` is refused now;
    histories written before still hold the text: docs/decisions/0036.)"""
    from workflow import Decision, OfferRequest

    def always_approve(policy: Policy, request: OfferRequest) -> Decision:
        return Decision.needs_approval("test", "always")

    engine = Engine(store, clock=clock, decide=always_approve)
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    maker = unchecked_actor("agent", maker_id)
    engine.step(cid, "offer_remedy", actor=maker, **_inputs("offer_remedy"))
    assert engine.get(cid).offers[-1].offered_by == str(maker)
    with pytest.raises(PolicyViolation, match="four_eyes"):
        engine.approve_offer(cid, actor=Actor(role="team-lead", id=same_person))
    assert engine.approve_offer(cid, actor=LEAD).state == "remedy_offered"
    assert engine.replay(cid) == engine.get(cid)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("subject", 42, "expected text, got int"),
        ("details", ["broken"], "expected text, got list"),
        ("subject", "x" * 10_001, "longer than 10000 characters"),
        ("details", "x" * 10_001, "longer than 10000 characters"),
        ("category", "Delivery", "'Delivery' is not a lower-case name like 'delivery'"),
        ("category", 7, "expected text, got int"),
        ("occurred_on", "2026-13-01", "month"),
        ("occurred_on", "2099-01-01", "2099-01-01 is in the future"),
        (
            "channel",
            "fax",
            "'fax' is not a channel; the channels are: email, phone, chat, social, sms, web",
        ),
        ("channel", 5, "an int is not a channel; the channels are: email, phone, chat, "),
        (
            "priority",
            "asap",
            "'asap' is not a priority; the priorities are: low, normal, high, urgent",
        ),
        (
            "complainant_type",
            "rude",
            "'rude' is not a complainant type; the complainant types are: meek, aggressive, "
            "high-roller, rip-off, chronic, unknown",
        ),
    ],
)
def test_opening_a_case_with_bad_data_names_the_field_it_is_in(
    engine: Engine, field: str, value: Any, problem: str
) -> None:
    """Regression: a subject that is not text raised a bare ``AttributeError``; a subject
    or details of any length was taken (``record`` refuses more than 10,000 characters);
    a bad category or date was reported under no field (``": Input should be ..."``) or
    under ``open``, and an unknown channel under ``open``. An unknown channel, priority
    or complainant type was ``'fax' is not a valid Channel``, naming a Python class and
    not the values there are (``find_cases`` and ``classify`` list them); a category
    that is not a name was pydantic's pattern, where ``record`` says what a name is."""
    with pytest.raises(InvalidStepData) as info:
        engine.open_case(**{"actor": AGENT, "customer": {"id": "c", "name": "N"},
                            "channel": "web", field: value})  # fmt: skip
    ((named, what),) = info.value.problems
    assert named == field
    assert problem in what
    assert list(engine.store.case_ids()) == []


def test_a_blank_contact_given_at_opening_is_not_a_contact(engine: Engine) -> None:
    """Regression: a customer opened with contact ``"   "`` counted as having one, so
    ``record`` did not ask for it and the case went on with no way to reach the customer.
    Blank contact or account is not information (as blank subject or details)."""
    case = engine.open_case(
        actor=AGENT, customer={"id": "c", "name": "N", "contact": "  ", "account": "\t"},
        channel="web", subject="s", category="delivery", occurred_on="2026-11-01",
        details="d",
    )  # fmt: skip
    assert (case.customer.contact, case.customer.account) == (None, None)
    engine.acknowledge(case.id, actor=AGENT)
    engine.listen(case.id, actor=AGENT, note="their account")
    error = refused(engine, case.id, MissingInformation, "record")
    assert error.fields == ("contact",)
    assert engine.replay(case.id) == engine.get(case.id)


def test_a_blank_customer_name_or_id_is_refused_at_opening(engine: Engine) -> None:
    for customer, field in (({"id": "c", "name": "  "}, "name"), ({"id": " ", "name": "N"}, "id")):
        with pytest.raises(InvalidStepData) as info:
            engine.open_case(actor=AGENT, customer=customer, channel="web")
        assert info.value.problems[0][0] == field
    assert list(engine.store.case_ids()) == []


@pytest.mark.parametrize("value", [0, 20_000, 1.5, datetime(2026, 11, 1, tzinfo=UTC)])
def test_the_date_it_happened_is_a_date_or_its_text_at_opening_and_at_record(
    engine: Engine, case_in: Callable[[str], str], value: Any
) -> None:
    """Regression: ``occurred_on=0`` was read as 1 January 1970 (a number of seconds),
    and ``open_case`` took a datetime that ``record`` refuses."""
    cid = case_in("listening")
    error = refused(engine, cid, InvalidStepData, "record", **{**_inputs("record"),
                                                              "occurred_on": value})  # fmt: skip
    assert error.problems[0][0] == "occurred_on"
    with pytest.raises(InvalidStepData) as info:
        engine.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="web",
                         occurred_on=value)  # fmt: skip
    assert info.value.problems[0][0] == "occurred_on"


@pytest.mark.parametrize("value", [1_900_000_000, 1.9e9, True])
def test_a_due_time_is_a_datetime_or_its_text_not_a_number(
    engine: Engine, case_in: Callable[[str], str], value: Any
) -> None:
    """Regression: ``due=1.9e9`` was read as a number of seconds (March 2030)."""
    cid = case_in("remedy_offered")
    inputs = {**_inputs("accept_remedy"), "due": value, "actor": CUSTOMER}
    assert refused(engine, cid, InvalidStepData, "accept_remedy", **inputs).problems[0][0] == "due"


def test_a_naive_due_time_is_named_once(engine: Engine, case_in: Callable[[str], str]) -> None:
    """Regression: the problem read ``due: due: naive datetime ... refused``."""
    cid = case_in("remedy_offered")
    inputs = {**_inputs("accept_remedy"), "due": "2026-11-05T12:00", "actor": CUSTOMER}
    error = refused(engine, cid, InvalidStepData, "accept_remedy", **inputs)
    ((field, what),) = error.problems
    assert (field, what.startswith("naive datetime 2026-11-05T12:00:00 refused")) == ("due", True)


def test_an_offer_with_the_same_remedy_twice_is_refused_naming_both_options(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """Regression: ``[refund 40 EUR, refund 40.00 EUR]`` was offered; the customer's
    choice of option 1 or 3 then meant nothing
    (docs/decisions/0025-guards-duplicate-options.md)."""
    cid = case_in("apologised")
    other = {"kind": "coupon", "amount": {"amount": "10", "currency": "EUR"}}
    twice = {"kind": "refund", "amount": {"amount": "40", "currency": "EUR"}}
    error = refused(engine, cid, InvalidStepData, "offer_remedy", options=[REFUND, other, twice])
    assert error.problems == (("options[3]", "the same remedy as options[1]"),)
    described = {**twice, "description": "refund to the card"}
    assert engine.offer_remedy(cid, actor=AGENT, options=[REFUND, described]).state == (
        "remedy_offered"
    )


def test_an_offer_of_more_than_fifteen_digits_is_refused_naming_the_option(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """An absurd amount (accepted under a policy with no limits, it crashed the spend
    report) is refused where it is offered; ``Money`` reads any size, so stored data
    always loads."""
    cid = case_in("apologised")
    huge = {"kind": "refund", "amount": {"amount": "1e15", "currency": "EUR"}}
    error = refused(engine, cid, InvalidStepData, "offer_remedy", options=[REFUND, huge])
    assert error.problems == (
        ("options[2].amount", "1000000000000000 is too large: at most 15 digits before the "
                              "decimal point"),
    )  # fmt: skip
    largest = {"kind": "refund", "amount": {"amount": "999999999999999.99", "currency": "EUR"}}
    assert engine.offer_remedy(cid, actor=AGENT, options=[largest]).state == "remedy_offered"


@pytest.mark.parametrize("options", ["", b"", "refund"])
def test_options_given_as_text_are_malformed_not_missing(
    engine: Engine, case_in: Callable[[str], str], options: Any
) -> None:
    """Regression: ``options=""`` was reported as missing options."""
    cid = case_in("apologised")
    error = refused(engine, cid, InvalidStepData, "offer_remedy", options=options)
    assert error.problems == (("options", "expected a list of remedies"),)


def test_a_text_within_the_limit_once_trimmed_is_taken(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """Regression: the 10,000-character limit counted the spaces around a text, which
    are not recorded: a 10,000-character note with a trailing newline was refused."""
    cid = case_in("acknowledged")
    note = "x" * 10_000
    assert engine.listen(cid, actor=AGENT, note=note + "\n").state == "listening"
    assert engine.history(cid)[-1].data == {"note": note}


@pytest.mark.parametrize(
    "due",
    [datetime(9999, 12, 31, 23, 0, tzinfo=UTC), START + timedelta(days=3653, seconds=1)],
)
def test_a_promise_due_more_than_ten_years_ahead_is_refused(
    store: Any, clock: ManualClock, due: datetime
) -> None:
    """Regression: a promise due on 31 December 9999 was taken by the guard, then its SLA
    deadline (due + 1 day) could not be computed and the step failed with a bare
    ``ValueError`` ("the calendar has no working time within three years", under a
    policy without calendars); one due in the year 9000 was stored
    (docs/decisions/0026-guards-promise-horizon.md)."""
    from policies.loader import parse_policy

    policy = parse_policy(
        'name: t\nversion: "1"\ncurrency: EUR\nsla:\n  targets:\n'
        "    - {id: kept, step: keep_promise, within: P1D, start: promise_due}\n"
    )
    engine = Engine(store, clock=clock, policy=policy)
    cid = open_case(engine)
    drive(engine, cid, "remedy_offered")
    inputs = {**_inputs("accept_remedy"), "due": due, "actor": CUSTOMER}
    ((field, what),) = refused(engine, cid, InvalidStepData, "accept_remedy", **inputs).problems
    assert (field, "more than 10 years" in what) == ("due", True)
    inputs["due"] = START + timedelta(days=3652)
    assert engine.step(cid, "accept_remedy", **inputs).state == "promised"


@pytest.mark.parametrize("returned", [None, "allowed", {"outcome": "allowed"}])
def test_a_decide_hook_that_returns_no_decision_is_named_and_nothing_is_written(
    store: Any, clock: ManualClock, returned: Any
) -> None:
    """Regression: a hook returning None failed deep in the guard with
    ``AttributeError: 'NoneType' object has no attribute 'outcome'``."""
    from workflow import OfferRequest

    def sloppy(policy: Policy, request: OfferRequest) -> Any:
        return returned

    engine = Engine(store, clock=clock, decide=sloppy)
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    before = engine.history(cid)
    with pytest.raises(TypeError, match=r"decide hook .*sloppy.* returned .*; expected a Decision"):
        engine.step(cid, "offer_remedy", actor=AGENT, **_inputs("offer_remedy"))
    assert engine.history(cid) == before


@pytest.mark.parametrize("due", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_a_due_time_utc_cannot_hold_is_refused_naming_it(
    engine: Engine, case_in: Callable[[str], str], due: str
) -> None:
    """Regression: a due time that is past year 9999 (or before year 1) once in UTC
    escaped as a bare ``OverflowError``; it is bad step data, named."""
    cid = case_in("remedy_offered")
    inputs = {**_inputs("accept_remedy"), "due": due, "actor": CUSTOMER}
    ((field, what),) = refused(engine, cid, InvalidStepData, "accept_remedy", **inputs).problems
    assert (field, "outside the times UTC can hold" in what) == ("due", True)


@pytest.mark.parametrize(
    ("step", "inputs", "field"),
    [
        ("add_note", {"text": "bad \ud800 text"}, "text"),
        ("escalate", {"reason": "x\udfff", "to_role": "team-lead"}, "reason"),
    ],
)
def test_text_holding_a_lone_surrogate_is_refused_naming_the_field(
    engine: Engine, case_in: Callable[[str], str], step: str, inputs: dict[str, Any], field: str
) -> None:
    """A lone surrogate (a broken UTF-16 half, as a badly decoded form can send) has no
    UTF-8 form, so no event holding it can be hashed or stored: the step raised
    ``UnicodeEncodeError`` from deep in the hashing. It is ``InvalidStepData`` naming
    the input, and nothing is written."""
    cid = case_in("acknowledged")
    before = engine.history(cid)
    with pytest.raises(InvalidStepData) as refused:
        engine.step(cid, step, actor=AGENT, **inputs)
    assert refused.value.problems[0][0] == field
    assert "lone surrogate" in refused.value.problems[0][1]
    assert engine.history(cid) == before


def test_open_case_names_the_text_holding_a_lone_surrogate(engine: Engine) -> None:
    with pytest.raises(InvalidStepData) as refused:
        engine.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="web",
                         subject="Parcel", details="bro\udc80ken")  # fmt: skip
    assert refused.value.problems[0][0] == "details"
    assert "lone surrogate U+DC80 at position 4" in refused.value.problems[0][1]
    assert list(engine.store.case_ids()) == []
