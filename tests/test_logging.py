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
