"""The policy file's schema: one pydantic model, unknown keys refused.

See docs/policies.md for every key. Amounts are plain decimals in the policy's
``currency`` (``"40.00"`` or ``40.00``, never a binary float).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from policies.money import minor_units
from policies.remedy import BUILTIN_REMEDY_KINDS, MONETARY_REMEDY_KINDS, Remedy

#: The complainant types a playbook can be written for (``workflow.ComplainantType``).
COMPLAINANT_TYPES = ("meek", "aggressive", "high-roller", "rip-off", "chronic", "unknown")
#: The steps guidance can be written for (``workflow.STEP_NAMES``).
STEPS = (
    "acknowledge", "listen", "record", "apologise", "offer_remedy", "approve_offer",
    "refuse_offer", "accept_remedy", "decline_remedy", "keep_promise", "request_feedback",
    "close", "escalate", "resume", "reopen", "withdraw", "add_note", "assign", "classify",
    "pause_sla", "resume_sla", "record_feedback", "migrate_policy",
)  # fmt: skip
PRIORITIES = ("low", "normal", "high", "urgent")

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(
            "floats are never money: write the amount as a string or a plain decimal, e.g. '40.00'"
        )
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a boolean")
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, allow_inf_nan=False)]

_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> timedelta:
    """An ISO 8601 duration in weeks, days, hours, minutes and seconds (``P2D``,
    ``PT4H``, ``P1DT12H``). Years and months are refused: their length varies."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 duration such as 'P2D' or 'PT4H', got {value!r}")
    text = value.strip().upper()
    if text.startswith("-"):
        raise ValueError("a duration cannot be negative")
    match = _ISO_DURATION.match(text)
    if match is None:
        hint = (
            " (years and months vary in length: use days)"
            if re.search(r"\d[YM]", text.split("T")[0])
            else ""
        )
        raise ValueError(
            f"{value!r} is not an ISO 8601 duration such as 'P2D', 'PT4H' or 'P1DT12H'{hint}"
        )
    parts = {k: float(v) if k == "seconds" else int(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class LocatedError(ValueError):
    """Problems found across fields, each with the location it belongs to."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


Multiplier = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, allow_inf_nan=False)]


def _version_text(value: Any) -> Any:
    """``version: 3`` or ``version: 2026.1`` in YAML mean the text as written."""
    return str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else value


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoleRules(_Strict):
    """What one role may give on its own. ``authority``: the most for one option of a
    money-valued remedy; ``limits``: per remedy kind, instead of ``authority``."""

    authority: Amount = Decimal(0)
    limits: dict[Name, Amount] = {}


class Adjustments(_Strict):
    """Multipliers on every limit, by customer tier and by category (``vip: 2``)."""

    tiers: dict[Name, Multiplier] = {}
    categories: dict[Name, Multiplier] = {}


class CustomerCap(_Strict):
    """At most ``amount`` paid to one customer over the rolling ``period``, across all
    of that customer's cases."""

    amount: Amount
    period: Duration


class Caps(_Strict):
    per_customer: CustomerCap | None = None


class RemedyKindRules(_Strict):
    """A company-defined remedy kind. ``monetary``: its options must name an amount."""

    monetary: StrictBool = False
    description: str = ""


class Playbook(_Strict):
    """How to handle one complainant type: guidance per step, a priority to set when a
    case is classified so, and whether every offer needs approval."""

    guidance: dict[str, str] = {}
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    always_needs_approval: StrictBool = False

    @field_validator("guidance")
    @classmethod
    def _known_steps(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STEPS))
        if unknown:
            raise ValueError(f"guidance for unknown steps {unknown}; steps are {list(STEPS)}")
        return value


class FeedbackRules(_Strict):
    """``required_before_close``: a case may only close after feedback was requested."""

    required_before_close: StrictBool = True


class ReopenRules(_Strict):
    """``window``: how long after closing a case may be reopened (ISO 8601, e.g. ``P30D``)."""

    window: Duration = timedelta(days=30)


class OfferRules(_Strict):
    """``max_per_case``: at most this many offers per case (declined ones count)."""

    max_per_case: StrictInt | None = Field(default=None, ge=1)


class Retention(_Strict):
    """How long case records are kept after closing, in years."""

    years: StrictInt = Field(default=6, ge=1, le=100)


class Policy(_Strict):
    """A loaded, validated policy. ``version`` is declared by its author; ``digest`` is the
    SHA-256 of its content, so two policies with one version but other rules differ."""

    name: str = Field(min_length=1, max_length=200)
    version: Annotated[str, BeforeValidator(_version_text)] = Field(min_length=1, max_length=100)
    currency: str
    categories: list[Name] | None = None
    roles: dict[Name, RoleRules] = {}
    remedy_kinds: dict[Name, RemedyKindRules] = {}
    adjustments: Adjustments = Adjustments()
    caps: Caps = Caps()
    offers: OfferRules = OfferRules()
    normal_remedies: dict[Name, dict[Name, Amount]] = {}
    playbooks: dict[Literal[COMPLAINANT_TYPES], Playbook] = {}  # type: ignore[valid-type]
    feedback: FeedbackRules = FeedbackRules()
    reopen: ReopenRules = ReopenRules()
    retention: Retention = Retention()

    _digest: str = PrivateAttr(default="")
    _stamp: str = PrivateAttr(default="")
    _kinds: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        minor_units(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for kind in sorted(set(self.remedy_kinds) & set(BUILTIN_REMEDY_KINDS)):
            problems.append((("remedy_kinds", kind), f"{kind!r} is a built-in remedy kind"))
        known = self.remedy_kind_names
        places = minor_units(self.currency)

        def amount(loc: tuple[str | int, ...], value: Decimal) -> None:
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and -exponent > places:
                problems.append(
                    (loc, f"{value} has more decimals than {self.currency} allows ({places})")
                )

        def kind_known(loc: tuple[str | int, ...], kind: str) -> None:
            if kind not in known:
                problems.append(
                    (loc, f"unknown remedy kind {kind!r}; known kinds are {sorted(known)}")
                )

        for role, rules in self.roles.items():
            amount(("roles", role, "authority"), rules.authority)
            for kind, value in rules.limits.items():
                kind_known(("roles", role, "limits", kind), kind)
                amount(("roles", role, "limits", kind), value)
        for category, kinds in self.normal_remedies.items():
            for kind, value in kinds.items():
                kind_known(("normal_remedies", category, kind), kind)
                amount(("normal_remedies", category, kind), value)
        if self.caps.per_customer is not None:
            amount(("caps", "per_customer", "amount"), self.caps.per_customer.amount)
        if self.categories is not None:
            seen: set[str] = set()
            for index, category in enumerate(self.categories):
                if category in seen:
                    problems.append((("categories", index), f"{category!r} is listed twice"))
                seen.add(category)
            for section, names in (
                (("adjustments", "categories"), self.adjustments.categories),
                (("normal_remedies",), self.normal_remedies),
            ):
                for name in names:
                    if name not in seen:
                        problems.append(
                            ((*section, name), f"{name!r} is not one of the policy's categories")
                        )
        if problems:
            raise LocatedError(problems)
        return self

    def model_post_init(self, context: Any, /) -> None:
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        self._digest = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        self._stamp = f"{self.version}@{self._digest}"
        self._kinds = frozenset(BUILTIN_REMEDY_KINDS) | frozenset(self.remedy_kinds)

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` over the policy's canonical JSON."""
        return self._digest

    @property
    def stamp(self) -> str:
        """What every event records: ``<declared version>@<digest>`` (one shared string)."""
        return self._stamp

    @property
    def remedy_kind_names(self) -> frozenset[str]:
        """Built-in and company-defined remedy kinds."""
        return self._kinds or frozenset(BUILTIN_REMEDY_KINDS) | frozenset(self.remedy_kinds)

    def is_monetary(self, kind: str) -> bool:
        rules = self.remedy_kinds.get(kind)
        return rules.monetary if rules is not None else kind in MONETARY_REMEDY_KINDS

    def check_remedy(self, remedy: Remedy) -> str | None:
        """What is wrong with ``remedy`` under this policy, or None."""
        if remedy.kind not in self.remedy_kind_names:
            return (
                f"unknown remedy kind {remedy.kind!r}; this policy knows "
                f"{', '.join(sorted(self.remedy_kind_names))}"
            )
        if self.is_monetary(remedy.kind) and remedy.amount is None:
            return f"a {remedy.kind} remedy needs an amount"
        if remedy.amount is not None and remedy.amount.currency != self.currency:
            return f"{remedy.amount.currency} given; the policy's currency is {self.currency}"
        return None

    def playbook(self, complainant_type: str) -> Playbook | None:
        return self.playbooks.get(complainant_type)


def default_policy() -> Policy:
    """A permissive policy: no compensation limits, feedback required before closing,
    reopening within 30 days."""
    return Policy(name="complaintflow default", version="1", currency="EUR")
