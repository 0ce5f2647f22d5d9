"""Routes around the compensation limits, tried against the real engine
(docs/decisions/0053-compensation-limits-review.md): the customer's cap split over
ids that only look alike, a case opened while another case's step reads the cap, and
amounts too large to write out."""

from __future__ import annotations

import pytest

from tests.test_engine_policy import apologised, new_engine, pay, refund
from workflow import InvalidStepData, PolicyViolation


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
