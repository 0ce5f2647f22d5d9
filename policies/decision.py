"""Decisions: what the policy says about a proposed action, and which rules said it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Outcome(StrEnum):
    ALLOWED = "allowed"
    NEEDS_APPROVAL = "needs_approval"
    DENIED = "denied"


class Decision(BaseModel):
    """The policy's verdict: ``allowed``, ``needs_approval`` or ``denied``, the ids of the
    rules that decided it, and sentences an agent can read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome
    rule_ids: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @classmethod
    def allowed(cls, rule_id: str, reason: str) -> Decision:
        return cls(outcome=Outcome.ALLOWED, rule_ids=(rule_id,), reasons=(reason,))

    @classmethod
    def needs_approval(cls, rule_id: str, reason: str) -> Decision:
        return cls(outcome=Outcome.NEEDS_APPROVAL, rule_ids=(rule_id,), reasons=(reason,))

    @classmethod
    def denied(cls, rule_id: str, reason: str) -> Decision:
        return cls(outcome=Outcome.DENIED, rule_ids=(rule_id,), reasons=(reason,))

    def explain(self) -> str:
        """One line: the outcome, then each reason with its rule id."""
        parts = "; ".join(
            f"{reason} [{rule}]" for rule, reason in zip(self.rule_ids, self.reasons, strict=False)
        )
        return f"{self.outcome.value}: {parts}" if parts else self.outcome.value

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "rule_ids": list(self.rule_ids),
            "reasons": list(self.reasons),
        }
