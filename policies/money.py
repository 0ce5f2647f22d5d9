"""Money: a Decimal amount with an ISO 4217 currency code. Floats are refused."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache, total_ordering
from typing import Any

from iso4217 import Currency
from pydantic import BaseModel, ConfigDict, field_serializer, field_validator, model_validator

from policies.errors import CurrencyMismatch, MoneyError
from policies.types import refuse_float

_SHORTHAND = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]{3})\s*$")


@lru_cache(maxsize=512)
def minor_units(code: str) -> int:
    """The number of decimal places ISO 4217 gives ``code`` (EUR 2, JPY 0, KWD 3)."""
    try:
        currency = Currency(code)
    except ValueError:
        raise MoneyError(f"{code!r} is not an ISO 4217 currency code") from None
    if currency.exponent is None:
        raise MoneyError(f"{code} is not a currency with minor units (ISO 4217 gives none)")
    return int(currency.exponent)


@total_ordering
class Money(BaseModel):
    """An amount of money. ``amount`` is a Decimal, never a float; in JSON it is a string.

    >>> Money.of("40.00", "EUR")
    Money('40.00 EUR')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Decimal
    currency: str

    @field_validator("amount", mode="before")
    @classmethod
    def _refuse_float(cls, value: Any) -> Any:
        return refuse_float(value)

    @field_validator("currency", mode="before")
    @classmethod
    def _known_currency(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("currency must be an ISO 4217 code such as 'EUR'")
        code = value.strip().upper()
        minor_units(code)
        return code

    @model_validator(mode="after")
    def _check_amount(self) -> Money:
        if not self.amount.is_finite():
            raise ValueError(f"amount {self.amount} is not a finite number")
        exponent = self.amount.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if places > minor_units(self.currency):
            raise ValueError(
                f"{self.amount} has {places} decimal places; {self.currency} has "
                f"{minor_units(self.currency)}"
            )
        return self

    @field_serializer("amount")
    def _amount_as_string(self, amount: Decimal) -> str:
        return str(amount)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Build an amount, validated: ``Money.of("40.00", "EUR")``."""
        return cls(amount=Decimal(amount), currency=currency)

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse the shorthand ``40.00EUR`` or ``40.00 EUR``."""
        match = _SHORTHAND.match(text)
        if match is None:
            raise MoneyError(f"{text!r} is not an amount like '40.00EUR'")
        try:
            return cls.of(Decimal(match.group(1)), match.group(2))
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"{text!r} is not a valid amount: {exc}") from None

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money.model_construct(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money.model_construct(amount=self.amount - other.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount < other.amount

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money('{self.amount} {self.currency}')"

    def to_json(self) -> dict[str, str]:
        """The JSON form used in events: the amount as a string."""
        return {"amount": str(self.amount), "currency": self.currency}
