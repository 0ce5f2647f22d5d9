"""Money, Remedy and Decision are frozen slotted records. Each has a fast path for its
JSON form and a validating path (a pydantic model of the same name and fields): the fast
path must build exactly what the validating path builds, or decline and leave the input
to it, so what is accepted and the errors for what is refused are the validating path's.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from policies import decision as decision_module
from policies import money as money_module
from policies import remedy as remedy_module
from workflow import Category, Decision, Engine, Money, Outcome, Remedy
from workflow.domain import case_from_json, case_to_json

# -- inputs: mostly well-formed JSON forms, with every way of being slightly wrong -------

amount_texts = st.one_of(
    st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["0", "-0", "007.50", "1e2", " 40.00", "40.00 ", "+4", "NaN", "Infinity"]),
    st.sampled_from(["1_000", "٣", "4.", ".5", "", "abc", "40,00"]),
    st.text(max_size=8),
)
amounts = st.one_of(
    amount_texts,
    st.integers(min_value=-(10**8), max_value=10**8),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
currencies = st.one_of(
    st.sampled_from(["EUR", "eur", " usd ", "JPY", "KWD", "XAU", "XYZ", "EURO", "", "Eur"]),
    st.text(max_size=4),
    st.integers(),
    st.none(),
)
ABSENT = object()


def _dict(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not ABSENT}


money_inputs = st.one_of(
    st.builds(_dict, amount=amounts, currency=currencies),
    st.builds(
        _dict,
        amount=amounts | st.just(ABSENT),
        currency=currencies | st.just(ABSENT),
        extra=st.just(ABSENT) | st.integers(),
    ),
    st.text(max_size=6),
    st.none(),
)
kinds = st.one_of(
    st.sampled_from(["refund", "coupon", "free_shipping", "replacement", "goodwill_call"]),
    st.sampled_from(["Refund", "refund\n", "1refund", "re-fund", "k" * 64, "k" * 65, ""]),
    st.text(max_size=8),
    st.integers(),
)
remedy_inputs = st.one_of(
    st.builds(
        _dict,
        kind=kinds | st.just(ABSENT),
        amount=money_inputs | st.just(ABSENT),
        description=st.just(ABSENT) | st.text(max_size=5) | st.just("x" * 2001) | st.integers(),
        other=st.just(ABSENT) | st.integers(),
    ),
    st.builds(
        lambda kind, amount: {"kind": kind, "amount": Money.of(amount, "EUR")},
        kinds,
        st.decimals(min_value=-10, max_value=10, places=2),
    ),
    st.text(max_size=6),
)
texts = st.one_of(st.lists(st.text(max_size=5), max_size=3), st.tuples(st.text(max_size=5)))
decision_inputs = st.one_of(
    st.builds(
        _dict,
        outcome=st.sampled_from([*Outcome, "allowed", "ALLOWED", "maybe", 1, None])
        | st.just(ABSENT),
        rule_ids=st.just(ABSENT)
        | texts
        | st.lists(st.integers(), max_size=2)
        | st.text(max_size=3),
        reasons=st.just(ABSENT) | texts | st.none(),
        other=st.just(ABSENT) | st.integers(),
    ),
    st.none(),
)


def _validating(model: Any, value: Any) -> Any:
    """What the validating path makes of ``value``: a record's fields, or its errors."""
    try:
        valid = model.model_validate(value)
    except ValidationError as exc:
        return ("refused", _errors(exc))
    return ("accepted", valid)


def _errors(exc: ValidationError) -> list[tuple[str, tuple[int | str, ...], str]]:
    return [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]


def _fields(record: Any, names: tuple[str, ...]) -> tuple[tuple[str, Any, type], ...]:
    return tuple((n, getattr(record, n), type(getattr(record, n))) for n in names)


def _agrees(fast: Any, model: Any, value: Any) -> None:
    verdict, result = _validating(model, value)
    if fast is None:
        return  # declined: the validating path decides, with its own errors
    assert verdict == "accepted", f"fast path accepted what is refused: {value!r} -> {result}"
    for name in fast.__slots__:
        want, got = getattr(result, name), getattr(fast, name)
        assert (got, type(got)) == (want, type(want)), name
        if isinstance(want, Decimal):  # the same digits and exponent, not just equal
            assert got.as_tuple() == want.as_tuple()


@settings(max_examples=400)
@given(money_inputs)
def test_the_money_fast_path_builds_what_validation_builds_or_declines(value: Any) -> None:
    _agrees(money_module._fast(value), money_module._MoneyModel, value)


@settings(max_examples=400)
@given(remedy_inputs)
def test_the_remedy_fast_path_builds_what_validation_builds_or_declines(value: Any) -> None:
    fast = remedy_module._fast(value)
    _agrees(fast, remedy_module._RemedyModel, value)
    if fast is not None and fast.amount is not None:  # the very digits and code
        want = remedy_module._RemedyModel.model_validate(value).amount
        assert fast.amount.amount.as_tuple() == want.amount.as_tuple()
        assert fast.amount.currency == want.currency


@settings(max_examples=300)
@given(decision_inputs)
def test_the_decision_fast_path_builds_what_validation_builds_or_declines(value: Any) -> None:
    _agrees(decision_module._fast(value), decision_module._DecisionModel, value)


@given(remedy_inputs)
def test_a_record_validates_exactly_as_its_model_did(value: Any) -> None:
    """Accepted: equal fields; refused: the same errors (type, place, message)."""
    verdict, result = _validating(remedy_module._RemedyModel, value)
    if verdict == "refused":
        with pytest.raises(ValidationError) as refused:
            Remedy.model_validate(value)
        assert _errors(refused.value) == result
    else:
        names = Remedy.__slots__
        assert _fields(Remedy.model_validate(value), names) == _fields(result, names)


def test_the_fast_paths_take_the_json_forms_events_carry() -> None:
    """The forms the engine writes into events are read without pydantic."""
    refund = Remedy(kind="refund", amount=Money.of("40.00", "EUR"), description="sorry")
    assert remedy_module._fast(refund.to_json()) == refund
    assert money_module._fast({"amount": "40.00", "currency": "EUR"}) == refund.amount
    allowed = Decision.allowed("default.permissive", "the policy sets no limits")
    assert decision_module._fast(allowed.to_json()) == allowed


def test_a_json_form_read_again_gives_the_same_shared_record() -> None:
    """Interned by exactly the texts read: an amount written differently, or an input
    the validating path refuses, is never answered from what was read before."""
    form = {"kind": "refund", "amount": {"amount": "40.00", "currency": "EUR"}}
    first = Remedy.model_validate(form)
    assert Remedy.model_validate({**form}) is first
    other = Remedy.model_validate(
        {"kind": "refund", "amount": {"amount": "40.0", "currency": "EUR"}}
    )
    assert str(other.amount) == "40.0 EUR"
    assert Money.model_validate({"amount": "40.0", "currency": "EUR"}).amount.as_tuple() == (
        Decimal("40.0").as_tuple()
    )
    Remedy.model_validate({"kind": "replacement"})
    with pytest.raises(ValidationError, match="valid string"):
        Remedy.model_validate({"kind": "replacement", "description": None})
    with pytest.raises(ValidationError, match="Extra inputs"):
        Remedy.model_validate({**form, "extra": 1})
    verdict = {"outcome": "allowed", "rule_ids": ["a"], "reasons": ["b"]}
    assert Decision.model_validate(verdict) is Decision.model_validate(dict(verdict))


def test_records_are_frozen_like_the_models_were() -> None:
    money = Money.of("1.00", "EUR")
    with pytest.raises(ValidationError, match="Instance is frozen"):
        money.amount = Decimal(2)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Instance is frozen"):
        Remedy(kind="replacement").kind = "refund"  # type: ignore[misc]
    assert not hasattr(money, "__dict__")


def test_records_pickle_copy_compare_and_hash() -> None:
    items = [
        Money.of("40.00", "EUR"),
        Remedy(kind="refund", amount=Money.of("40.00", "EUR")),
        Remedy(kind="replacement", description="a new vase"),
        Decision.needs_approval("limits.agent.refund", "above the agent's limit"),
    ]
    for item in items:
        assert pickle.loads(pickle.dumps(item)) == item
        assert copy.deepcopy(item) == item
        assert hash(copy.copy(item)) == hash(item)
    assert Remedy(kind="refund", amount=Money.of("40", "EUR")) != Remedy(
        kind="refund", amount=Money.of("41", "EUR")
    )


def test_the_json_forms_are_the_models_forms() -> None:
    remedy = Remedy(kind="refund", amount=Money.of("40.10", "EUR"))
    assert remedy.model_dump(mode="json") == {
        "kind": "refund",
        "amount": {"amount": "40.10", "currency": "EUR"},
        "description": "",
    }
    assert (
        TypeAdapter(Remedy).dump_json(remedy)
        == remedy_module._RemedyModel.model_validate(remedy.model_dump()).model_dump_json().encode()
    )
    decision = Decision.denied("limits.none", "no role may give that much")
    assert TypeAdapter(Decision).dump_python(decision) == {
        "outcome": Outcome.DENIED,
        "rule_ids": ("limits.none",),
        "reasons": ("no role may give that much",),
    }
    assert Decision.model_validate_json(decision.model_dump_json()) == decision


def test_a_case_holding_an_offer_round_trips_through_its_json(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """What the SQL store writes and reads back: equal, with records inside again."""
    offered = engine.get(case_in("promised"))
    again = case_from_json(case_to_json(offered))
    assert again == offered
    offer = again.offers[0]
    assert (type(offer.options[0]), type(offer.options[0].amount)) == (Remedy, Money)
    assert type(offer.decision) is Decision


def test_a_thawed_case_is_a_separate_copy_that_freezes_back_into_an_equal_case(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    from workflow.domain import Case, freeze, thaw

    case = engine.get(case_in("promised"))
    work = thaw(case)
    assert type(work) is not Case
    assert all(getattr(work, name) == getattr(case, name) for name in Case.__slots__)
    work.transfers = case.transfers + 1  # the working copy changes, the case does not
    assert case.transfers == engine.get(case.id).transfers
    work.transfers = case.transfers
    frozen = freeze(work)
    assert type(frozen) is Case
    assert frozen == case
    assert case_to_json(frozen) == case_to_json(case)


def test_a_working_copy_is_updated_in_place_with_known_fields_only(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    from workflow.domain import evolve_with, freeze, thaw, update

    case = engine.get(case_in("promised"))
    changes = {"transfers": 4, "state": "closed", "resolution": "done"}
    work = thaw(case)
    update(work, changes)
    assert freeze(work) == evolve_with(case, changes)
    update(work, {})
    with pytest.raises(AttributeError, match="no field 'transfer'"):
        update(thaw(case), {"transfer": 1})


def test_a_category_is_a_lower_case_name_as_the_policy_writes_it() -> None:
    names: TypeAdapter[str] = TypeAdapter(Category)
    assert names.validate_python("late-delivery") == "late-delivery"
    for bad in ("Delivery", "late delivery", "", "x" * 65):
        with pytest.raises(ValidationError):
            names.validate_python(bad)
