"""Remedies: what a company offers a complaining customer."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from policies.money import Money, shown
from policies.money import _fast as _fast_money
from policies.records import FrozenRecord, remember, trusted

#: The remedy kinds every policy knows. A policy file may define more.
BUILTIN_REMEDY_KINDS: tuple[str, ...] = (
    "refund",
    "partial_refund",
    "coupon",
    "gift_card",
    "store_credit",
    "replacement",
    "free_shipping",
)
#: Built-in kinds that are worth an amount of money and so must name one.
MONETARY_REMEDY_KINDS: frozenset[str] = frozenset(
    {"refund", "partial_refund", "coupon", "gift_card", "store_credit"}
)

_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
#: The same pattern as pydantic (Rust regex) reads ``^...$``: the whole text, no newline.
_KIND_TEXT = re.compile(r"[a-z][a-z0-9_]*")
MAX_KIND = 64
MAX_DESCRIPTION = 2000

RemedyKind = Annotated[str, Field(pattern=_KIND.pattern, max_length=MAX_KIND)]


def _check(kind: str, amount: Money | None) -> None:
    if kind in MONETARY_REMEDY_KINDS and amount is None:
        raise ValueError(f"a {kind} remedy needs an amount")
    if amount is not None and amount.amount <= 0:
        raise ValueError(
            f"a remedy's amount must be positive, got {shown(amount.amount)} {amount.currency}"
        )


def _validator_model() -> type[BaseModel]:
    class Remedy(BaseModel):
        """Validates ``Remedy`` input; its errors are the ones ``Remedy`` raises."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        kind: RemedyKind
        amount: Money | None = None
        description: str = Field(default="", max_length=MAX_DESCRIPTION)

        @model_validator(mode="after")
        def _monetary_kinds_name_an_amount(self) -> Remedy:
            _check(self.kind, self.amount)
            return self

    return Remedy


_RemedyModel = _validator_model()


class Remedy(FrozenRecord):
    """One remedy option: its kind, its value (for money-valued kinds) and a description.

    A frozen slotted record (see ``policies.records``): ``Remedy(kind=..., amount=...,
    description=...)`` validates as the pydantic model it used to be, with the same
    errors."""

    __slots__ = ("amount", "description", "kind")
    _fields = ("kind", "amount", "description")

    kind: str
    amount: Money | None
    description: str

    def __new__(cls, **data: Any) -> Remedy:
        return cls.model_validate(data)

    @classmethod
    def model_validate(cls, obj: Any) -> Remedy:
        """A ``Remedy`` from a mapping (or a ``Remedy``), validated; raises
        ``ValidationError``."""
        if type(obj) is Remedy:
            return obj
        fast = _fast(obj)
        return fast if fast is not None else _from_model(_RemedyModel.model_validate(obj))

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Remedy:
        return _from_model(_RemedyModel.model_validate_json(data))

    def model_dump(self, *, mode: Literal["json", "python"] | str = "python") -> dict[str, Any]:
        """As the model dumped it: every field, the amount's as a string."""
        return {
            "kind": self.kind,
            "amount": None if self.amount is None else self.amount.to_json(),
            "description": self.description,
        }

    def model_dump_json(self) -> str:
        return _ADAPTER.dump_json(self).decode()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(
            _validate,
            handler.generate_schema(_RemedyModel),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _dump, when_used="always"
            ),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.amount is not None:
            data["amount"] = self.amount.to_json()
        if self.description:
            data["description"] = self.description
        return data


_remedy = trusted(Remedy)


#: Remedies read from their JSON form, by exactly the texts they were read from.
_INTERNED: dict[tuple[str, str | None, str | None, str | None], Remedy] = {}


def _fast(value: Any) -> Remedy | None:
    """A ``Remedy`` from its JSON form (a dict of ``kind``, ``amount``, ``description``)
    without pydantic, or None when the input is anything else or not valid: the
    validator model then decides, and raises its errors. The same JSON form read again
    gives the same (immutable) record, shared."""
    key = _json_key(value)
    if key is not None:
        shared = _INTERNED.get(key)
        if shared is not None:
            return shared
    remedy = _read(value)
    if remedy is not None and key is not None:
        remember(_INTERNED, key, remedy)
    return remedy


def _json_key(value: Any) -> tuple[str, str | None, str | None, str | None] | None:
    """The texts a remedy's JSON form consists of, when it consists only of the keys
    it may have and of plain strings; None otherwise."""
    if type(value) is not dict:
        return None
    kind = value.get("kind")
    amount = value.get("amount")
    description = value.get("description")
    size = 1 + ("amount" in value) + ("description" in value)
    if type(kind) is not str or size != len(value):
        return None
    if "description" in value and type(description) is not str:
        return None
    if amount is None:
        return (kind, None, None, description)
    if type(amount) is not dict or len(amount) != 2:
        return None
    number, currency = amount.get("amount"), amount.get("currency")
    if type(number) is not str or type(currency) is not str:
        return None
    return (kind, number, currency, description)


def _read(value: Any) -> Remedy | None:
    if type(value) is not dict:
        return None
    kind = value.get("kind")
    if type(kind) is not str or len(kind) > MAX_KIND or _KIND_TEXT.fullmatch(kind) is None:
        return None
    used = 1
    amount: Money | None = None
    if "amount" in value:
        used += 1
        given = value["amount"]
        if type(given) is Money:
            amount = given
        elif given is not None:
            amount = _fast_money(given)
            if amount is None:
                return None
    description = ""
    if "description" in value:
        used += 1
        description = value["description"]
        if type(description) is not str or len(description) > MAX_DESCRIPTION:
            return None
    if used != len(value):
        return None
    if kind in MONETARY_REMEDY_KINDS and amount is None:
        return None
    if amount is not None and amount.amount <= 0:
        return None
    return _remedy(kind=kind, amount=amount, description=description)


def _validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Remedy:
    if isinstance(value, Remedy):
        return value
    fast = _fast(value)
    if fast is not None:
        return fast
    return _from_model(handler(value))


def _from_model(model: Any) -> Remedy:
    return _remedy(kind=model.kind, amount=model.amount, description=model.description)


def _dump(remedy: Remedy) -> dict[str, Any]:
    return remedy.model_dump()


_ADAPTER: TypeAdapter[Remedy] = TypeAdapter(Remedy)
