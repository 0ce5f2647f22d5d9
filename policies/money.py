"""Money: a Decimal amount with an ISO 4217 currency code. Floats are refused."""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from functools import lru_cache, total_ordering
from typing import Any, Literal

from iso4217 import Currency
from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from policies.errors import CurrencyMismatch, MoneyError
from policies.records import FrozenRecord, remember, trusted
from policies.types import one_line, refuse_float

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


def _places(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def currency_code(value: Any) -> str:
    """``value`` as an ISO 4217 code (``" eur"`` is ``EUR``); ``MoneyError`` if unknown."""
    if not isinstance(value, str):
        raise ValueError("currency must be an ISO 4217 code such as 'EUR'")
    code = value.strip().upper()
    minor_units(code)
    return _CODES.setdefault(code, code)  # one string per code, shared by every amount


#: The most digits an amount offered to a customer may have before its decimal point
#: (``too_large``; the offer step refuses more): no compensation comes near 10^15 of any
#: currency, and sums of many such amounts stay exact in ``Decimal``'s default 28 digits.
#: ``Money`` itself takes any size, so that stored data is always read back.
MAX_WHOLE_DIGITS = 15


def too_large(amount: Decimal) -> bool:
    """Whether ``amount`` has more than ``MAX_WHOLE_DIGITS`` digits before its point."""
    return bool(amount) and amount.adjusted() >= MAX_WHOLE_DIGITS


#: The longest amount a message writes out in full.
_SHOWN_IN_FULL = 40


def shown(amount: Decimal) -> str:
    """``amount`` as a message shows it: as written, or, when that is longer than 40
    characters, in scientific notation to four digits (``1.000E+999999``): an amount
    of a million digits makes no message anyone reads."""
    text = str(amount)
    return text if len(text) <= _SHOWN_IN_FULL else f"{amount:.3E}"


def fixed_context(prec: int, rounding: str, *traps: type[DecimalException]) -> Context:
    """A decimal context with every setting given here (``Context(...)`` takes those left
    out from ``decimal.DefaultContext``, which a program may change): Decimal's default
    exponent limits, ``traps`` trapped and nothing else."""
    return Context(
        prec=prec, rounding=rounding, Emin=-999999, Emax=999999, capitals=1, clamp=0,
        flags=[], traps=list(traps),
    )  # fmt: skip


#: Money is added up in this context, not the calling thread's (``decimal.getcontext``):
#: a program that set ``getcontext().prec = 2``, meaning two decimal places, had
#: 50.00 + 50.04 make 100 and a customer paid past their cap (decision 0053). Sixty
#: digits hold any sum of amounts an offer takes (``MAX_WHOLE_DIGITS``) exactly; a sum
#: that would need rounding raises ``decimal.Inexact`` rather than being rounded.
EXACT = fixed_context(60, ROUND_HALF_EVEN, InvalidOperation, DivisionByZero, Overflow, Inexact)
#: Decimal's default precision (28 digits), fixed: for rounding amounts to show them,
#: which must not depend on the calling thread's context either.
SHOWN = fixed_context(28, ROUND_HALF_EVEN, InvalidOperation, DivisionByZero, Overflow)

#: Normalised codes, so that every amount in one currency shares its code's string.
_CODES: dict[str, str] = {}


def _validator_model() -> type[BaseModel]:
    class Money(BaseModel):
        """Validates ``Money`` input; its errors are the ones ``Money`` raises."""

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
            return currency_code(value)

        @field_validator("amount")
        @classmethod
        def _plain_amount(cls, amount: Decimal) -> Decimal:
            if not amount.is_finite():
                raise ValueError(f"amount {amount} is not a finite number")
            if amount.as_tuple().exponent > 0:  # type: ignore[operator]
                # "1E+3" is written 1000 (with as many digits as it takes).
                try:
                    amount = amount.quantize(
                        Decimal(1),
                        context=fixed_context(
                            amount.adjusted() + 1, ROUND_HALF_EVEN, InvalidOperation
                        ),
                    )
                except InvalidOperation:  # more digits than Decimal writes out (10^999999)
                    raise ValueError(f"amount {amount} is too large to write out") from None
            return amount

        @model_validator(mode="after")
        def _check_amount(self) -> Money:
            # (A NaN or infinite amount never gets here: ``_plain_amount`` refuses it.)
            places = _places(self.amount)
            if places > minor_units(self.currency):
                raise ValueError(
                    f"{self.amount} has {places} decimal places; {self.currency} has "
                    f"{minor_units(self.currency)}"
                )
            return self

        @field_serializer("amount")
        def _amount_as_string(self, amount: Decimal) -> str:
            return str(amount)

    return Money


_MoneyModel = _validator_model()


@total_ordering
class Money(FrozenRecord):
    """An amount of money. ``amount`` is a Decimal, never a float; in JSON it is a string.

    A frozen slotted record (see ``policies.records``): ``Money(amount=..., currency=...)``
    validates as the pydantic model it used to be, with the same errors.

    >>> Money.of("40.00", "EUR")
    Money('40.00 EUR')
    """

    __slots__ = ("amount", "currency")
    _fields = ("amount", "currency")

    amount: Decimal
    currency: str

    def __new__(cls, **data: Any) -> Money:
        return cls.model_validate(data)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Build an amount, validated: ``Money.of("40.00", "EUR")``."""
        # As given: the validator refuses a float (``Decimal(40.5)`` would hide it).
        return cls.model_validate({"amount": amount, "currency": currency})

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse the shorthand ``40.00EUR`` or ``40.00 EUR``."""
        match = _SHORTHAND.match(text)
        if match is None:
            raise MoneyError(f"{text!r} is not an amount like '40.00EUR'")
        try:
            return cls.of(Decimal(match.group(1)), match.group(2))
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"{text!r} is not a valid amount: {one_line(exc)}") from None

    # -- pydantic-compatible validation and serialisation ----------------------------

    @classmethod
    def model_validate(cls, obj: Any) -> Money:
        """``Money`` from a mapping (or a ``Money``), validated; raises ``ValidationError``."""
        if type(obj) is Money:
            return obj
        fast = _fast(obj)
        return fast if fast is not None else _from_model(_MoneyModel.model_validate(obj))

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Money:
        return _from_model(_MoneyModel.model_validate_json(data))

    def model_dump(self, *, mode: Literal["json", "python"] | str = "python") -> dict[str, str]:
        """As the model dumped it: the amount as a string in either mode."""
        return self.to_json()

    def model_dump_json(self) -> str:
        return _ADAPTER.dump_json(self).decode()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(
            _validate,
            handler.generate_schema(_MoneyModel),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _dump, when_used="always"
            ),
        )

    # -- the record ------------------------------------------------------------------

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return _money(amount=EXACT.add(self.amount, other.amount), currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return _money(amount=EXACT.subtract(self.amount, other.amount), currency=self.currency)

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


#: ``Money`` from an amount and a code already checked (arithmetic, the fast path).
_money = trusted(Money)

#: A plain decimal written in ASCII digits: what ``Decimal`` and pydantic read alike.
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
#: Currency text as given -> (its code, the code's minor units), for codes that passed.
_KNOWN: dict[str, tuple[str, int]] = {}
_MAX_KNOWN = 1024
#: Amounts read from their JSON form, by (amount text, currency text) exactly as given.
_INTERNED: dict[tuple[str, str], Money] = {}


def _fast(value: Any) -> Money | None:
    """``Money`` from the JSON form ``{"amount": "40.00", "currency": "EUR"}`` (or an int or
    Decimal amount) without pydantic, or None when the input is anything else or not
    valid: the validator model then decides, and raises its errors."""
    if type(value) is not dict or len(value) != 2:
        return None
    amount: Any = value.get("amount")
    currency: Any = value.get("currency")
    if type(currency) is not str:
        return None
    kind = type(amount)
    if kind is str:
        shared = _INTERNED.get((amount, currency))
        if shared is not None:
            return shared
        if _PLAIN_DECIMAL.fullmatch(amount) is None:
            return None
        text = amount
        dot = amount.find(".")
        places = 0 if dot < 0 else len(amount) - dot - 1  # the text is plain digits
        amount = Decimal(amount)
    elif kind is int:
        places = 0
        amount = Decimal(amount)
    elif kind is Decimal and amount.is_finite():
        places = _places(amount)
    else:
        return None
    if amount.as_tuple().exponent > 0:
        return None  # the validator model writes it plainly
    known = _KNOWN.get(currency)
    if known is None:
        try:
            code = currency_code(currency)
            known = (code, minor_units(code))
        except (ValueError, MoneyError):
            return None
        if len(_KNOWN) < _MAX_KNOWN:
            _KNOWN[currency] = known
    if places > known[1]:
        return None
    money = _money(amount=amount, currency=known[0])
    if kind is str:  # the same text and code always make the same amount: share it
        remember(_INTERNED, (text, currency), money)
    return money


def _validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Money:
    if isinstance(value, Money):
        return value
    fast = _fast(value)
    if fast is not None:
        return fast
    return _from_model(handler(value))


def _from_model(model: Any) -> Money:
    return _money(amount=model.amount, currency=model.currency)


def _dump(money: Money) -> dict[str, str]:
    return money.to_json()


_ADAPTER: TypeAdapter[Money] = TypeAdapter(Money)
