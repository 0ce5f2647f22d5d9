"""Decisions: what the policy says about a proposed action, and which rules said it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    SerializationInfo,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import CoreSchema, core_schema

from policies.records import FrozenRecord, remember, trusted


class Outcome(StrEnum):
    ALLOWED = "allowed"
    NEEDS_APPROVAL = "needs_approval"
    DENIED = "denied"


def _validator_model() -> type[BaseModel]:
    class Decision(BaseModel):
        """Validates ``Decision`` input; its errors are the ones ``Decision`` raises."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        outcome: Outcome
        rule_ids: tuple[str, ...] = ()
        reasons: tuple[str, ...] = ()

    return Decision


_DecisionModel = _validator_model()


class Decision(FrozenRecord):
    """The policy's verdict: ``allowed``, ``needs_approval`` or ``denied``, the ids of the
    rules that decided it, and sentences an agent can read.

    A frozen slotted record (see ``policies.records``): ``Decision(outcome=...,
    rule_ids=..., reasons=...)`` validates as the pydantic model it used to be, with the
    same errors."""

    __slots__ = ("outcome", "reasons", "rule_ids")
    _fields = ("outcome", "rule_ids", "reasons")

    outcome: Outcome
    rule_ids: tuple[str, ...]
    reasons: tuple[str, ...]

    def __new__(cls, **data: Any) -> Decision:
        return cls.model_validate(data)

    @classmethod
    def allowed(cls, rule_id: str, reason: str) -> Decision:
        return _decision(outcome=Outcome.ALLOWED, rule_ids=(rule_id,), reasons=(reason,))

    @classmethod
    def needs_approval(cls, rule_id: str, reason: str) -> Decision:
        return _decision(outcome=Outcome.NEEDS_APPROVAL, rule_ids=(rule_id,), reasons=(reason,))

    @classmethod
    def denied(cls, rule_id: str, reason: str) -> Decision:
        return _decision(outcome=Outcome.DENIED, rule_ids=(rule_id,), reasons=(reason,))

    @classmethod
    def model_validate(cls, obj: Any) -> Decision:
        """A ``Decision`` from a mapping (or a ``Decision``), validated; raises
        ``ValidationError``."""
        if type(obj) is Decision:
            return obj
        fast = _fast(obj)
        return fast if fast is not None else _from_model(_DecisionModel.model_validate(obj))

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Decision:
        return _from_model(_DecisionModel.model_validate_json(data))

    @classmethod
    def model_construct(
        cls,
        *,
        outcome: Outcome,
        rule_ids: tuple[str, ...] = (),
        reasons: tuple[str, ...] = (),
    ) -> Decision:
        """A ``Decision`` from parts already of the right types, not validated."""
        return _decision(outcome=outcome, rule_ids=rule_ids, reasons=reasons)

    def model_dump(self, *, mode: Literal["json", "python"] | str = "python") -> dict[str, Any]:
        """As the model dumped it: in JSON mode the outcome's value and lists."""
        return self.to_json() if mode == "json" else _as_python(self)

    def model_dump_json(self) -> str:
        return _ADAPTER.dump_json(self).decode()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(
            _validate,
            handler.generate_schema(_DecisionModel),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _dump, info_arg=True, when_used="always"
            ),
        )

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


_decision = trusted(Decision)
_OUTCOMES: dict[str, Outcome] = {o.value: o for o in Outcome}


def _texts(value: Any) -> tuple[str, ...] | None:
    """A list or tuple of plain strings as a tuple; None for anything else."""
    if type(value) is tuple or type(value) is list:
        for item in value:
            if type(item) is not str:
                return None
        return tuple(value)
    return None


def _fast(value: Any) -> Decision | None:
    """A ``Decision`` from its JSON form without pydantic, or None when the input is
    anything else or not valid: the validator model then decides, and raises its
    errors."""
    if type(value) is not dict:
        return None
    outcome = value.get("outcome")
    if type(outcome) is not str and type(outcome) is not Outcome:
        return None
    member = _OUTCOMES.get(outcome)
    if member is None:
        return None
    used = 1
    rule_ids: tuple[str, ...] | None = ()
    reasons: tuple[str, ...] | None = ()
    if "rule_ids" in value:
        used += 1
        rule_ids = _texts(value["rule_ids"])
    if "reasons" in value:
        used += 1
        reasons = _texts(value["reasons"])
    if rule_ids is None or reasons is None or used != len(value):
        return None
    key = (member, rule_ids, reasons)
    shared = _INTERNED.get(key)
    if shared is not None:  # the same verdict read again: one immutable record, shared
        return shared
    return remember(_INTERNED, key, _decision(outcome=member, rule_ids=rule_ids, reasons=reasons))


#: Decisions read from their JSON form, by their parts.
_INTERNED: dict[tuple[Outcome, tuple[str, ...], tuple[str, ...]], Decision] = {}


def _validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Decision:
    if isinstance(value, Decision):
        return value
    fast = _fast(value)
    if fast is not None:
        return fast
    return _from_model(handler(value))


def _from_model(model: Any) -> Decision:
    return _decision(outcome=model.outcome, rule_ids=model.rule_ids, reasons=model.reasons)


def _as_python(decision: Decision) -> dict[str, Any]:
    return {
        "outcome": decision.outcome,
        "rule_ids": decision.rule_ids,
        "reasons": decision.reasons,
    }


def _dump(decision: Decision, info: SerializationInfo) -> dict[str, Any]:
    return decision.to_json() if info.mode_is_json() else _as_python(decision)


_ADAPTER: TypeAdapter[Decision] = TypeAdapter(Decision)
