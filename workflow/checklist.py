"""The checklist: one ``transitions`` Machine for every case, built once at import.

Cases are never added to the machine. A step fires the machine's event on a throwaway
``_Firing`` model that carries the case's state, the case and the step's data; routing
conditions (which state an offer or a resume leads to) read them. ``fire`` runs the
step's guard before the machine tries any transition.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

# ``transitions`` adds a filter to the process's warning filters when it is imported; a
# library configures nothing global, so the filters are put back as they were.
with warnings.catch_warnings():
    from transitions import EventData, Machine

if TYPE_CHECKING:
    from workflow.domain import Case


class State(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    LISTENING = "listening"
    RECORDED = "recorded"
    APOLOGISED = "apologised"
    AWAITING_APPROVAL = "awaiting_approval"
    REMEDY_OFFERED = "remedy_offered"
    PROMISED = "promised"
    PROMISE_KEPT = "promise_kept"
    FEEDBACK_REQUESTED = "feedback_requested"
    CLOSED = "closed"
    ESCALATED = "escalated"
    WITHDRAWN = "withdrawn"


S = State
#: The main path, in order: every closed case has taken these steps in this order.
CHECKLIST: tuple[str, ...] = (
    "acknowledge",
    "listen",
    "record",
    "apologise",
    "offer_remedy",
    "accept_remedy",
    "keep_promise",
    "request_feedback",
    "close",
)
FINAL_STATES: frozenset[str] = frozenset({S.CLOSED, S.WITHDRAWN})
OPEN_STATES: tuple[str, ...] = tuple(s.value for s in State if s not in FINAL_STATES)
#: States a case can be escalated from (and so return to on ``resume``).
ESCALATABLE: tuple[str, ...] = tuple(s for s in OPEN_STATES if s != S.ESCALATED)
#: Actions that keep the case in its state, and the states they are allowed in.
ACTIONS: dict[str, tuple[str, ...]] = {
    "add_note": tuple(s.value for s in State),
    "assign": OPEN_STATES,
    "classify": OPEN_STATES,
    "pause_sla": OPEN_STATES,
    "resume_sla": OPEN_STATES,
    "record_feedback": (S.FEEDBACK_REQUESTED.value, S.CLOSED.value),
    "migrate_policy": OPEN_STATES,
    "sla_warning": OPEN_STATES,
    "sla_breached": OPEN_STATES,
    "erase_personal_data": tuple(s.value for s in State),
}


class _Firing:
    """The light model a step fires the machine on. Never stored."""

    __slots__ = ("case", "data", "state")

    def __init__(self, state: str, case: Case, data: Mapping[str, Any]) -> None:
        self.state = state
        self.case = case
        self.data = data


def _needs_approval(event: EventData) -> bool:
    model = cast(_Firing, event.model)
    return bool(model.data["decision"]["outcome"] == "needs_approval")


_needs_approval.label = "needs approval"  # type: ignore[attr-defined]


def _feedback_waived(event: EventData) -> bool:
    model = cast(_Firing, event.model)
    return model.data.get("feedback_waived") is True


_feedback_waived.label = "feedback waived by policy"  # type: ignore[attr-defined]


def _returns_to(state: str) -> Callable[[EventData], bool]:
    def returns_to(event: EventData) -> bool:
        model = cast(_Firing, event.model)
        escalation = model.case.escalation
        return escalation is not None and escalation.resume_to == state

    returns_to.label = f"was {state}"  # type: ignore[attr-defined]
    return returns_to


def transition_table(with_conditions: bool = True) -> list[dict[str, Any]]:
    """The checklist's transitions. ``with_conditions=False`` gives the bare graph: the
    rows that need a routing condition (approval, resume, a close that waives feedback)
    are left out, and no guard runs."""

    def t(trigger: str, source: str | list[str], dest: str | None, *conds: Any) -> dict[str, Any]:
        if conds and not with_conditions:
            return {}
        row: dict[str, Any] = {
            "trigger": trigger,
            "source": [str(x) for x in source] if isinstance(source, list) else str(source),
            "dest": None if dest is None else str(dest),
        }
        if conds:
            row["conditions"] = list(conds)
        return row

    rows = [
        t("acknowledge", S.RECEIVED, S.ACKNOWLEDGED),
        t("listen", S.ACKNOWLEDGED, S.LISTENING),
        t("record", S.LISTENING, S.RECORDED),
        t("apologise", S.RECORDED, S.APOLOGISED),
        t("offer_remedy", S.APOLOGISED, S.AWAITING_APPROVAL, _needs_approval),
        t("offer_remedy", S.APOLOGISED, S.REMEDY_OFFERED),
        t("approve_offer", S.AWAITING_APPROVAL, S.REMEDY_OFFERED),
        t("refuse_offer", S.AWAITING_APPROVAL, S.APOLOGISED),
        t("accept_remedy", S.REMEDY_OFFERED, S.PROMISED),
        t("decline_remedy", S.REMEDY_OFFERED, S.APOLOGISED),
        t("keep_promise", S.PROMISED, S.PROMISE_KEPT),
        t("request_feedback", S.PROMISE_KEPT, S.FEEDBACK_REQUESTED),
        t("close", S.FEEDBACK_REQUESTED, S.CLOSED),
        t("close", S.PROMISE_KEPT, S.CLOSED, _feedback_waived),
        t("escalate", list(ESCALATABLE), S.ESCALATED),
        *(t("resume", S.ESCALATED, state, _returns_to(state)) for state in ESCALATABLE),
        t("reopen", S.CLOSED, S.RECEIVED),
        t("withdraw", list(OPEN_STATES), S.WITHDRAWN),
    ]
    rows.extend(t(action, list(states), None) for action, states in ACTIONS.items())
    return [row for row in rows if row]


def build_machine() -> Machine:
    """A machine over the checklist. The engine's is built once, here, at import."""
    return Machine(
        model=None,
        states=[s.value for s in State],
        transitions=transition_table(),
        initial=S.RECEIVED.value,
        auto_transitions=False,
        send_event=True,
        name="checklist",
    )


MACHINE: Machine = build_machine()

#: Every step and action, by name.
STEP_NAMES: tuple[str, ...] = tuple(MACHINE.events)


def _allowed_from(state: str) -> tuple[str, ...]:
    return tuple(name for name, event in MACHINE.events.items() if event.transitions.get(state))


#: Steps only the engine itself takes (the SLA sweeper's warnings and breaches, and
#: ``Engine.erase_customer``).
SYSTEM_STEPS: frozenset[str] = frozenset({"sla_warning", "sla_breached", "erase_personal_data"})
_ALLOWED_SETS: dict[str, frozenset[str]] = {
    s.value: frozenset(_allowed_from(s.value)) for s in State
}
_ALLOWED: dict[str, tuple[str, ...]] = {
    s.value: tuple(n for n in _allowed_from(s.value) if n not in SYSTEM_STEPS) for s in State
}


def allowed_steps(state: str) -> tuple[str, ...]:
    """The steps and actions a person may take on a case in ``state``, in checklist
    order (the engine's own SLA events are not listed)."""
    return _ALLOWED[state]


def is_allowed(state: str, step: str) -> bool:
    """Whether the machine has ``step`` from ``state`` (system steps included)."""
    return step in _ALLOWED_SETS[state]


class NoRoute(Exception):
    """The machine took no transition (no routing condition held)."""


def fire(
    step: str,
    case: Case,
    data: Mapping[str, Any],
    guard: Callable[[], Mapping[str, Any]] | None = None,
) -> tuple[str, Mapping[str, Any]]:
    """Fire ``step`` for ``case`` on the shared machine.

    ``guard``, if given, runs first, before any transition is tried: it raises to refuse
    the step, or returns the data the step records (which replaces ``data``). Returns
    the state the step leads to and the data. The case is not changed.
    """
    if guard is not None:
        data = guard()
    model = _Firing(case.state, case, data)
    if not MACHINE.events[step].trigger(model):
        raise NoRoute(f"no transition for {step!r} from {case.state!r}")
    return model.state, model.data


class _Probe:
    """Stands in for ``transitions.EventData`` when ``route`` checks a condition: the
    checklist's conditions read only ``event.model``."""

    __slots__ = ("model",)

    def __init__(self, model: _Firing) -> None:
        self.model = model


_Route = tuple[str | None, tuple[tuple[Callable[[Any], bool], bool], ...]]
#: (state, step) -> the machine's transitions for it, in order: (dest, conditions).
_ROUTES: dict[tuple[str, str], tuple[_Route, ...]] = {
    (source, name): tuple(
        (tr.dest, tuple((cast(Callable[[Any], bool], c.func), c.target) for c in tr.conditions))
        for tr in transitions
    )
    for name, event in MACHINE.events.items()
    for source, transitions in event.transitions.items()
}


def route(step: str, case: Case, data: Mapping[str, Any]) -> str:
    """The state ``step`` leads to, read from the shared machine's transitions and their
    conditions in the machine's order — what ``fire`` gives, without triggering the
    machine (replay's hot path; tests/test_checklist.py checks they agree). Raises
    ``NoRoute`` as ``fire`` does."""
    for dest, conditions in _ROUTES.get((case.state, step), ()):
        if conditions:
            probe = _Probe(_Firing(case.state, case, data))
            if not all(bool(func(probe)) is target for func, target in conditions):
                continue
        return case.state if dest is None else dest
    raise NoRoute(f"no transition for {step!r} from {case.state!r}")


def mermaid() -> str:
    """The checklist as a Mermaid state diagram, generated from ``MACHINE``."""
    lines = ["stateDiagram-v2", f"    [*] --> {MACHINE.initial}"]
    stays: dict[str, list[str]] = {}
    for name, event in MACHINE.events.items():
        for source, transitions in event.transitions.items():
            for tr in transitions:
                if tr.dest is None:
                    stays.setdefault(source, []).append(name)
                    continue
                labels = [getattr(c.func, "label", str(c.func)) for c in tr.conditions]
                guard = f" [{', '.join(labels)}]" if labels else ""
                lines.append(f"    {source} --> {tr.dest} : {name}{guard}")
    for state in sorted(FINAL_STATES):
        lines.append(f"    {state} --> [*]")
    for state in (s.value for s in State):
        if state in stays:
            lines.append(f"    note right of {state} : also {', '.join(stays[state])}")
    return "\n".join(lines) + "\n"
