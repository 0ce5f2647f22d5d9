"""structlog lines carry the case id and the step; the library configures nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog
from structlog.testing import capture_logs

from tests.conftest import AGENT
from workflow import Engine, MissingInformation


def test_accepted_and_refused_steps_are_logged_with_case_id_and_step(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("acknowledged")
    with capture_logs() as logs:
        engine.add_note(cid, actor=AGENT, text="called back")
        with pytest.raises(MissingInformation):
            engine.listen(cid, actor=AGENT, note="")
    assert [(line["event"], line["case_id"], line["step"]) for line in logs] == [
        ("step accepted", cid, "add_note"),
        ("step refused", cid, "listen"),
    ]
    assert logs[0]["seq"] == engine.get(cid).version
    assert "needs: note" in logs[1]["reason"]


def test_the_library_configures_nothing_globally(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    structlog.reset_defaults()
    case_in("recorded")
    assert not structlog.is_configured()


def test_a_standard_library_logger_is_accepted_and_a_step_it_logs_is_not_failed(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """``Engine(logger=logging.getLogger(...))``: the step's line reaches it; a logger
    that cannot take keywords must not make a step that was written raise."""
    import logging

    from workflow import ManualClock

    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    desk = logging.getLogger("complaintflow-test-desk")
    handler = Lines()
    desk.addHandler(handler)
    desk.setLevel(logging.INFO)
    try:
        cid = case_in("acknowledged")
        own = Engine(engine.store, clock=ManualClock(engine.now()), logger=desk)
        case = own.add_note(cid, actor=AGENT, text="called back")
    finally:
        desk.removeHandler(handler)
    assert case.version == engine.get(cid).version
    assert any("step accepted" in line and cid in line for line in lines)


def test_a_retry_is_logged_with_the_case_id(engine: Engine, case_in: Callable[[str], str]) -> None:
    from workflow import ConcurrencyConflict

    cid = case_in("acknowledged")
    calls = []

    def action() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConcurrencyConflict(cid, 2, 3)
        return cid

    with capture_logs() as logs:
        engine.retrying(action)
    assert [(line["event"], line["case_id"]) for line in logs] == [
        ("retrying after a concurrent change", cid)
    ]
