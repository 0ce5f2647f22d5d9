"""The policy a case runs under, and the offer-decision hook.

This is the core of the policy file schema. Compensation limits, caps, approvals and
playbooks extend it (see docs/policies.md).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from policies.decision import Decision
from policies.money import minor_units
from policies.remedy import Remedy


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedbackRules(_Strict):
    """``required_before_close``: a case may only close after feedback was requested."""

    required_before_close: bool = True


class ReopenRules(_Strict):
    """``window``: how long after closing a case may be reopened (ISO 8601, e.g. ``P30D``)."""

    window: timedelta = timedelta(days=30)

    @field_validator("window")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("the reopen window cannot be negative")
        return value


class OfferRules(_Strict):
    """``max_per_case``: at most this many offers per case (declined ones count)."""

    max_per_case: int | None = Field(default=None, ge=1)


class Policy(_Strict):
    """A loaded, validated policy. ``version`` is declared by its author; ``digest`` is the
    SHA-256 of its content, so two policies with one version but other rules differ."""

    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    currency: str
    feedback: FeedbackRules = FeedbackRules()
    reopen: ReopenRules = ReopenRules()
    offers: OfferRules = OfferRules()

    _digest: str = PrivateAttr(default="")

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        minor_units(value)
        return value

    def model_post_init(self, context: Any, /) -> None:
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        self._digest = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` over the policy's canonical JSON."""
        return self._digest

    @property
    def stamp(self) -> str:
        """What every event records: ``<declared version>@<digest>``."""
        return f"{self.version}@{self._digest}"


def default_policy() -> Policy:
    """A permissive policy: no compensation limits, feedback required before closing,
    reopening within 30 days."""
    return Policy(name="complaintflow default", version="1", currency="EUR")


class OfferRequest(_Strict):
    """What the policy is asked about one offer: who offers what to whom."""

    role: str
    remedies: tuple[Remedy, ...]
    customer_tier: str
    category: str | None
    complainant_type: str
    offers_made: int = Field(ge=0)
    declines: int = Field(ge=0)


def decide_offer(policy: Policy, request: OfferRequest) -> Decision:
    """Decide on an offer. The core policy limits only the number of offers per case;
    anything else is allowed."""
    limit = policy.offers.max_per_case
    if limit is not None and request.offers_made >= limit:
        return Decision.denied(
            "offers.max_per_case",
            f"this case has had {request.offers_made} offers; the policy allows {limit}",
        )
    return Decision.allowed("default.permissive", "the policy sets no compensation limits")
