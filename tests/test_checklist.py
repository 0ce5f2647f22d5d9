"""``route`` (replay's fast path) gives exactly what firing the shared machine gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workflow.checklist import (
    ESCALATABLE,
    STEP_NAMES,
    NoRoute,
    State,
    fire,
    is_allowed,
    route,
)
from workflow.domain import Case, Channel, Customer, Escalation, evolve
from workflow.events import GENESIS

AT = datetime(2026, 11, 2, tzinfo=UTC)
BASE = Case(id="c", customer=Customer(id="c", name="N"), channel=Channel.EMAIL,
            state="received", opened_at=AT, updated_at=AT, version=1, head_hash=GENESIS,
            policy_version="p")  # fmt: skip
DATA: list[dict[str, Any]] = [
    {},
    {"decision": {"outcome": "needs_approval"}},
    {"decision": {"outcome": "allowed"}},
    {"feedback_waived": True},
    {"feedback_waived": False},
]
ESCALATIONS = [None] + [
    Escalation(reason="r", to_role="lead", by="agent:a", at=AT, resume_to=s) for s in ESCALATABLE
]


def outcome(how: Any, step: str, case: Case, data: dict[str, Any]) -> str:
    try:
        result = how(step, case, data)
    except NoRoute:
        return "no route"
    except KeyError as missing:
        return f"missing {missing}"
    return result[0] if isinstance(result, tuple) else str(result)


@pytest.mark.parametrize("state", [s.value for s in State])
def test_route_agrees_with_firing_the_machine_for_every_state_step_and_condition(
    state: str,
) -> None:
    checked = 0
    for escalation in ESCALATIONS:
        case = evolve(BASE, state=state, escalation=escalation)
        for step in STEP_NAMES:
            for data in DATA:
                checked += 1
                if not is_allowed(state, step):  # the machine raises; replay checks first
                    assert outcome(route, step, case, data) == "no route"
                    continue
                assert outcome(route, step, case, data) == outcome(fire, step, case, data), (
                    state, step, data, escalation)  # fmt: skip
    assert checked == len(ESCALATIONS) * len(STEP_NAMES) * len(DATA)
