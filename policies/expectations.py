"""A company's own expected decisions, run like unit tests (``complaintflow policy test``).

A cases file is a YAML list; each item names a hypothetical offer and the decision the
company expects::

    - name: an agent refunds a delivery problem on the spot
      role: agent
      remedies: [refund:40.00EUR]     # kind:amount+currency, or a kind alone
      tier: standard                  # optional
      category: delivery              # optional
      complainant_type: unknown       # optional
      offers_made: 0                  # optional
      paid: 0                         # paid to the customer within the cap period
      expect: allowed                 # allowed | needs_approval | denied
      rules: [limits.agent.refund]    # optional: these rule ids must be among the deciders
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from policies.decide import OfferRequest, decide_offer
from policies.decision import Decision
from policies.errors import MoneyError, PolicyFileError, Problem
from policies.loader import _located, _problems, _read_yaml, read_text
from policies.model import COMPLAINANT_TYPES, Policy
from policies.money import Money
from policies.remedy import Remedy
from policies.types import Amount


def parse_remedy(text: str) -> Remedy:
    """``refund:40.00EUR`` (kind and amount) or ``replacement`` (kind alone)."""
    kind, _, amount = text.partition(":")
    if not amount:
        return Remedy(kind=kind.strip())
    return Remedy(kind=kind.strip(), amount=Money.parse(amount))


def _remedy(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_remedy(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
    return value


class Expectation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    role: str
    remedies: list[Annotated[Remedy, BeforeValidator(_remedy)]] = Field(min_length=1)
    tier: str = "standard"
    category: str | None = None
    complainant_type: Literal[COMPLAINANT_TYPES] = "unknown"  # type: ignore[valid-type]
    offers_made: StrictInt = Field(default=0, ge=0)
    paid: Amount = Decimal(0)
    expect: Literal["allowed", "needs_approval", "denied"]
    rules: list[str] = []

    def request(self) -> OfferRequest:
        return OfferRequest(
            role=self.role,
            remedies=tuple(self.remedies),
            customer_tier=self.tier,
            category=self.category,
            complainant_type=self.complainant_type,
            offers_made=self.offers_made,
            paid_in_period=self.paid,
        )


class Result(BaseModel):
    expectation: Expectation
    decision: Decision
    passed: bool


_EXPECTATIONS: TypeAdapter[list[Expectation]] = TypeAdapter(list[Expectation])
#: What a ``PolicyFileError`` about a file of expected decisions calls it.
CASES_FILE = "cases file"


def load_expectations(path: str | Path, policy: Policy | None = None) -> list[Expectation]:
    """Read a cases file; with ``policy``, a category or tier it does not declare is
    refused too (the engine refuses such a case, so its decision would test nothing)."""
    try:
        file, text = read_text(path)
        data, lines = _read_yaml(text, file)
    except PolicyFileError as exc:  # read as a policy file is: say which file it is
        raise PolicyFileError(exc.file, list(exc.problems), kind=CASES_FILE) from None
    try:
        expectations = _EXPECTATIONS.validate_python(data)
    except ValidationError as exc:
        raise PolicyFileError(file, _problems(exc, lines), kind=CASES_FILE) from None
    problems: list[Problem] = []
    for index, item in enumerate(expectations):
        if policy is None:
            break
        known = policy.categories
        if known is not None and item.category is not None and item.category not in known:
            problems.append(
                _located(
                    (index, "category"),
                    f"{item.category!r} is not one of the policy's categories: {', '.join(known)}",
                    lines,
                )
            )
        if policy.tiers is not None and item.tier not in policy.tiers:
            problems.append(_located((index, "tier"), policy.not_a_tier(item.tier), lines))
    if problems:
        raise PolicyFileError(file, problems, kind=CASES_FILE)
    return expectations


def run_expectations(policy: Policy, expectations: list[Expectation]) -> list[Result]:
    results = []
    for item in expectations:
        decision = decide_offer(policy, item.request())
        passed = decision.outcome.value == item.expect and set(item.rules) <= set(decision.rule_ids)
        results.append(Result(expectation=item, decision=decision, passed=passed))
    return results
