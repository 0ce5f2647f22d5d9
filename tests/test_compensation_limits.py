"""Routes around the compensation limits, tried against the real engine
(docs/decisions/0053-compensation-limits-review.md): the customer's cap split over
ids that only look alike, a case opened while another case's step reads the cap, and
amounts too large to write out."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from tests.stores import STORE_KINDS, each_store
from tests.test_engine_policy import POLICY, POLICY_TEXT, apologised, new_engine, pay, refund
from workflow import (
    ConcurrencyConflict,
    CurrencyMismatch,
    Engine,
    InvalidStepData,
    Money,
    PolicyViolation,
    Remedy,
    Store,
)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("c-1 ", "the customer id ends with whitespace (U+0020 at position 4)"),
        ("\u00a0c-1", "the customer id starts with whitespace (U+00A0 at position 1)"),
        ("c-1\u200b", "the customer id holds U+200B (a format character) at position 4"),
        ("c-1\x1b[0m", "the customer id holds U+001B (a control character) at position 4"),
        ("c-\u0065\u0301", "the customer id is not in Unicode normalisation form NFC"),
    ],
)
def test_a_customer_id_that_only_looks_like_another_is_refused(given: str, problem: str) -> None:
    """Regression: the cap counts the cases stored under one customer id, compared
    exactly, and ``open_case`` took any id. After 100 EUR (the cap) was paid to ``c-1``,
    a case opened for ``c-1 `` (a trailing space, as a form or a copied cell gives it),
    ``c-1`` with a zero-width space or an escape sequence, or an ``é`` written as ``e``
    and a combining accent, was a customer who had been paid nothing: 50 EUR more was
    offered and accepted. Such ids are now refused, as case ids are."""
    engine, clock = new_engine()
    pay(engine, apologised(engine, customer="c-1"), "100.00", clock)
    cases = list(engine.store.case_ids())
    with pytest.raises(InvalidStepData) as refused:
        apologised(engine, customer=given)
    ((where, message),) = refused.value.problems
    assert (where, message[: len(problem)]) == ("id", problem)
    assert list(engine.store.case_ids()) == cases  # nothing written
    with pytest.raises(PolicyViolation) as capped:  # under the id it names, the cap holds
        engine.offer_remedy(apologised(engine), actor="agent:alice", options=[refund("50")])
    assert capped.value.decision.rule_ids == ("caps.per_customer",)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


class _Meanwhile:
    """Wraps a store: runs what ``meanwhile`` holds right after the customer's cases
    were read (another worker's steps, between this step's read and its write)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.meanwhile: list[Callable[[], object]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def customer_cases(self, customer_id: str) -> list[Any]:
        cases = self._store.customer_cases(customer_id)
        while self.meanwhile:
            self.meanwhile.pop()()
        return cases


@pytest.mark.parametrize("other_cases", [0, 1])
def test_a_case_opened_while_the_cap_is_read_cannot_pay_past_it(
    store: Store, other_cases: int
) -> None:
    """Regression: an acceptance re-checks the cap and its write requires the
    customer's other cases to be at the versions read, but only those it read. A case
    opened, offered and accepted by another worker after the read (its own acceptance
    read the first case unchanged) was not among them: both acceptances were written,
    55 + 50 EUR against a cap of 100, on every store. The write now also requires the
    customer to have no case the read did not see (with no other case, none at all)."""
    shared = _Meanwhile(store)
    engine, clock = new_engine(store=shared)  # type: ignore[arg-type]
    for _ in range(other_cases):
        apologised(engine)  # a case of the customer the read sees (nothing paid on it)
    first = apologised(engine)
    engine.offer_remedy(first, actor="agent:alice", options=[refund("40.00"), refund("50.00")])
    due = clock.now() + timedelta(days=1)
    other = Engine(store, policy=POLICY, clock=clock)

    def another_case_pays_55() -> None:
        second = apologised(other)
        other.offer_remedy(second, actor="team-lead:tom", options=[refund("55.00")])
        other.accept_remedy(second, actor="customer:c", option=1, promise="r", due=due)

    shared.meanwhile.append(another_case_pays_55)
    with pytest.raises(ConcurrencyConflict):
        engine.accept_remedy(first, actor="customer:c", option=2, promise="r", due=due)
    assert engine.get(first).state == "remedy_offered"
    with pytest.raises(PolicyViolation) as capped:  # retried: it reads the 55 paid
        engine.accept_remedy(first, actor="customer:c", option=2, promise="r", due=due)
    assert capped.value.decision.rule_ids == ("caps.per_customer",)
    assert engine.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)


@pytest.mark.parametrize("amount", ["1e99999999", "-1e99999999"])
def test_an_amount_too_large_to_write_out_is_bad_data_not_a_decimal_error(amount: str) -> None:
    """Regression: ``1e99999999`` (a typo for ``1e9``, or a probe) escaped the offer as
    a bare ``decimal.InvalidOperation``: no step, no case, no field named."""
    engine, _ = new_engine()
    cid = apologised(engine)
    option = {"kind": "refund", "amount": {"amount": amount, "currency": "EUR"}}
    with pytest.raises(InvalidStepData) as refused:
        engine.offer_remedy(cid, actor="agent:alice", options=[option])
    ((where, problem),) = refused.value.problems
    assert where == "options[1].amount.amount"
    assert problem == f"amount {amount.replace('e', 'E+')} is too large to write out"
    assert engine.get(cid).state == "apologised"


@pytest.mark.parametrize(
    ("amount", "where", "problem"),
    [
        (
            "1e999999",
            "options[1].amount",
            "1.000E+999999 is too large: at most 15 digits before the decimal point",
        ),
        (
            "-1e999999",
            "options[1]",
            "a remedy's amount must be positive, got -1.000E+999999 EUR",
        ),
    ],
)
def test_an_amount_of_a_million_digits_is_refused_in_a_short_message(
    amount: str, where: str, problem: str
) -> None:
    """Regression: ``1e999999`` was refused (too large, or not positive), in a message
    that wrote its million digits out."""
    engine, _ = new_engine()
    cid = apologised(engine)
    option = {"kind": "refund", "amount": {"amount": amount, "currency": "EUR"}}
    with pytest.raises(InvalidStepData) as refused:
        engine.offer_remedy(cid, actor="agent:alice", options=[option])
    assert refused.value.problems == ((where, problem),)
    assert len(str(refused.value)) < 300


def test_a_payment_in_another_currency_that_blocks_the_cap_is_named() -> None:
    """Regression: an offer on a case whose policy is in USD, to a customer paid 50 EUR
    on another case within the cap's period, was refused (amounts in two currencies
    cannot be added up) with only "cannot combine amounts in USD and EUR": not which
    payment, on which case, nor until when."""
    store = MemoryStore()
    engine, clock = new_engine(store=store)
    paid_on = apologised(engine)
    pay(engine, paid_on, "50.00", clock)
    usd = parse_policy(POLICY_TEXT.replace("currency: EUR", "currency: USD"))
    dollars, _ = new_engine(usd, store=store)
    cid = apologised(dollars)
    five = Remedy(kind="refund", amount=Money.of("5", "USD"))
    with pytest.raises(CurrencyMismatch) as refused:
        dollars.offer_remedy(cid, actor="agent:alice", options=[five])
    assert (refused.value.left, refused.value.right) == ("USD", "EUR")
    assert str(refused.value) == (
        "cannot combine amounts in USD and EUR: the cap adds up what this customer was "
        f"paid in the last 30 days, and case {paid_on} paid them 50.00 EUR at "
        "2026-11-02T09:00:00.000000+00:00; no offer to them can be judged against the cap "
        "in USD until that payment is 30 days old. Nothing was written."
    )
    assert dollars.get(cid).state == "apologised"


def test_the_cap_and_the_limits_are_exact_whatever_decimal_context_the_program_set() -> None:
    """Regression: the sums and products behind the cap and the limits were worked out
    in the calling thread's decimal context. A program that had set
    ``decimal.getcontext().prec = 2`` (meant as "two decimal places") paid a customer
    100.04 EUR against a cap of 100.00 (50.00 + 50.04 rounded to 100), and a vip's
    refund limit of 45.00 x 1.5 was 68 instead of 67.50."""
    policy = parse_policy(
        POLICY_TEXT.replace("tiers: {vip: 2}", "tiers: {vip: 1.5}").replace(
            "limits: {refund: 50.00}", "limits: {refund: 45.00}"
        )
    )
    engine, clock = new_engine(policy)
    pay(engine, apologised(engine), "50.00", clock)
    with decimal.localcontext(prec=2):
        with pytest.raises(PolicyViolation) as capped:
            engine.offer_remedy(
                apologised(engine), actor="team-lead:sam", options=[refund("50.04")]
            )
        vip = apologised(engine, customer="c-2", tier="vip")
        offered = engine.offer_remedy(vip, actor="agent:alice", options=[refund("67.99")])
    assert capped.value.decision.rule_ids == ("caps.per_customer",)
    assert "paid 50.00 EUR" in str(capped.value)
    assert offered.state == "awaiting_approval"
    assert "above the agent limit of 67.50 EUR" in offered.offers[0].decision.reasons[0]
