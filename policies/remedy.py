"""Remedies: what a company offers a complaining customer."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.money import Money

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

RemedyKind = Annotated[str, Field(pattern=_KIND.pattern, max_length=64)]


class Remedy(BaseModel):
    """One remedy option: its kind, its value (for money-valued kinds) and a description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RemedyKind
    amount: Money | None = None
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _monetary_kinds_name_an_amount(self) -> Remedy:
        if self.kind in MONETARY_REMEDY_KINDS and self.amount is None:
            raise ValueError(f"a {self.kind} remedy needs an amount")
        if self.amount is not None and self.amount.amount <= 0:
            raise ValueError(f"a remedy's amount must be positive, got {self.amount}")
        return self

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.amount is not None:
            data["amount"] = self.amount.to_json()
        if self.description:
            data["description"] = self.description
        return data
