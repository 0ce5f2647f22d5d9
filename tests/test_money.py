"""Money is a Decimal with an ISO 4217 currency; floats are never money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from policies.money import too_large
from workflow import CurrencyMismatch, Money, MoneyError, Remedy


def test_an_amount_keeps_its_exact_decimal_and_serialises_as_a_string() -> None:
    money = Money.of("40.10", "eur")
    assert (money.amount, money.currency) == (Decimal("40.10"), "EUR")
    assert money.model_dump(mode="json") == {"amount": "40.10", "currency": "EUR"}
    assert money.to_json() == {"amount": "40.10", "currency": "EUR"}
    assert Money.model_validate_json('{"amount": "40.10", "currency": "EUR"}') == money


@pytest.mark.parametrize("bad", [40.1, 40.0])
def test_a_float_is_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="floats are never money"):
        Money(amount=bad, currency="EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [40.5, 40.0, 1e3])
def test_a_float_given_to_money_of_is_refused(bad: float) -> None:
    """Regression: ``Money.of`` turned its amount into a ``Decimal`` before validating,
    so ``Money.of(40.5, "EUR")`` was accepted."""
    with pytest.raises(ValidationError, match="floats are never money"):
        Money.of(bad, "EUR")  # type: ignore[arg-type]


def test_a_float_in_json_is_refused() -> None:
    with pytest.raises(ValidationError, match="floats are never money"):
        Money.model_validate_json('{"amount": 40.5, "currency": "EUR"}')


@pytest.mark.parametrize(
    ("amount", "currency", "problem"),
    [
        ("1.5", "JPY", "0"),
        ("1.001", "EUR", "2"),
        ("1.0001", "KWD", "3"),
        ("1", "XYZ", "ISO 4217"),
        ("1", "XAU", "no"),
        ("NaN", "EUR", "finite"),
        ("Infinity", "EUR", "finite"),
    ],
)
def test_amounts_must_fit_the_currency(amount: str, currency: str, problem: str) -> None:
    with pytest.raises((ValidationError, MoneyError), match=problem):
        Money.of(amount, currency)


def test_any_amount_is_read_an_exponent_is_written_plainly_and_offers_have_a_limit() -> None:
    assert Money.of("999999999999999.99", "EUR").amount == Decimal("999999999999999.99")
    for given in ("1e3", "1E+3", Decimal("1E+3")):
        money = Money.model_validate({"amount": given, "currency": "EUR"})
        assert str(money.amount) == "1000"
        assert money.to_json() == {"amount": "1000", "currency": "EUR"}
    # Any size is read (stored data must load); offers are limited where they are made.
    assert str(Money.of("1e30", "JPY").amount) == "1" + "0" * 30
    assert too_large(Decimal("1e15"))
    assert too_large(Decimal("-1000000000000000"))
    assert not too_large(Decimal("999999999999999.99"))
    assert not too_large(Decimal(0))


def test_the_currencys_minor_units_are_allowed() -> None:
    assert Money.of("1.234", "KWD").amount == Decimal("1.234")
    assert Money.of("100", "JPY").amount == Decimal("100")


def test_mixing_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyMismatch) as error:
        _ = Money.of("1", "EUR") + Money.of("1", "USD")
    assert (error.value.left, error.value.right) == ("EUR", "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "EUR") < Money.of("2", "USD")


def test_arithmetic_and_comparison_in_one_currency() -> None:
    a, b = Money.of("10.50", "EUR"), Money.of("0.50", "EUR")
    assert a + b == Money.of("11", "EUR")
    assert a - b == Money.of("10.00", "EUR")
    assert b < a
    assert str(a) == "10.50 EUR"


@pytest.mark.parametrize(("text", "expected"), [("40.00EUR", "40.00"), (" 12 usd ", "12")])
def test_the_shorthand_parses(text: str, expected: str) -> None:
    assert Money.parse(text).amount == Decimal(expected)


@pytest.mark.parametrize("text", ["EUR40", "40,00EUR", "40.001EUR", ""])
def test_a_bad_shorthand_is_a_money_error(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text)


def test_a_remedy_worth_money_must_name_its_amount() -> None:
    with pytest.raises(ValidationError, match="needs an amount"):
        Remedy(kind="gift_card")
    assert Remedy(kind="free_shipping").amount is None
    assert Remedy(kind="goodwill_call").kind == "goodwill_call"  # a policy-defined kind
