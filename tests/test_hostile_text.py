"""Text from customers and agents on its way to a terminal or a spreadsheet: escape and
bidi sequences shown as escapes, whatever the output format (docs/decisions/0052)."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from tests.conftest import START
from workflow import Engine, ManualClock
from workflow.cli import main
from workflow.errors import StepNotAllowed

#: A terminal hyperlink, a screen clear, a right-to-left override and an 8-bit CSI.
HOSTILE = "\x1b]8;;http://evil\x1b\\pay\x1b]8;;\x1b\\ \x1b[2J \u202egnp.exe \x9b2J"
UNSHOWN = ("\x1b", "\u202e", "\x9b")
POLICY = parse_policy(
    "name: p\nversion: '1'\ncurrency: EUR\nsla:\n  targets:\n"
    "    - {id: ack, step: acknowledge, within: PT1H}\n"
)
AT = "2026-11-02T09:20:00+00:00"  # START + 20 minutes: the acknowledgement is due soon


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """One store the commands open for any URL."""
    shared = MemoryStore()
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: shared)
    return shared


def _hostile_case(store: MemoryStore) -> Engine:
    """A case whose customer id, subject and assignee hold HOSTILE (none of them is an
    actor id or a case id, which are checked when given). A customer id is checked when
    given too (decision 0056): this one was stored before it was."""
    engine = Engine(store, policy=POLICY, clock=ManualClock(START))
    with pytest.MonkeyPatch.context() as before_the_check:
        before_the_check.setattr("workflow.engine.customer_id_problem", lambda _: None)
        engine.open_case(actor="agent:x", customer={"id": "c-" + HOSTILE, "name": "Ann"},
                         channel="email", subject=HOSTILE, case_id="case-1")  # fmt: skip
    engine.assign("case-1", actor="team-lead:t", to="agent:" + HOSTILE)
    return engine


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_csv_report_shows_escape_and_bidi_characters_as_escapes(store: MemoryStore) -> None:
    _hostile_case(store)
    output = _run("report", "recurring", "--store", "memory://", "--format", "csv")
    for char in UNSHOWN:
        assert char not in output, (char, output)
    rows = list(csv.DictReader(io.StringIO(output)))
    assert "\\x1b]8;;http://evil" in rows[0]["subject"]
    assert "\\u202e" in rows[0]["subject"]


def test_a_csv_spend_report_by_customer_shows_their_ids_with_escapes(store: MemoryStore) -> None:
    engine = _hostile_case(store)
    engine.acknowledge("case-1", actor="agent:x", message="m")
    engine.listen("case-1", actor="agent:x", note="n")
    engine.record("case-1", actor="agent:x", category="delivery", contact="a@example.com",
                  occurred_on="2026-11-01", details="d")  # fmt: skip
    engine.apologise("case-1", actor="agent:x", message="sorry")
    engine.offer_remedy("case-1", actor="agent:x", options=[{"kind": "replacement"}])
    output = _run("report", "spend", "--store", "memory://", "--format", "csv", "--by", "customer")
    for char in UNSHOWN:
        assert char not in output, (char, output)
    assert "c-\\x1b]8;;http://evil" in output


def test_a_csv_report_still_starts_a_formula_like_cell_with_an_apostrophe(
    store: MemoryStore,
) -> None:
    engine = Engine(store, clock=ManualClock(START))
    engine.open_case(actor="agent:x", customer={"id": "c-1", "name": "Ann"}, channel="email",
                     subject="=cmd|' /C calc'!A0", case_id="case-1")  # fmt: skip
    output = _run("report", "recurring", "--store", "memory://", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(output)))
    assert rows[0]["subject"] == "'=cmd|' /c calc'!a0"


@pytest.mark.parametrize("command", ["list", "at-risk"])
def test_cases_as_json_show_escape_and_bidi_characters_as_json_escapes(
    store: MemoryStore, command: str
) -> None:
    _hostile_case(store)
    args = ["cases", command, "--store", "memory://", "--format", "json"]
    if command == "at-risk":
        args += ["--within", "1h", "--at", AT]
    output = _run(*args)
    for char in UNSHOWN:
        assert char not in output, (char, output)
    document = json.loads(output)
    assert document["cases"], output
    case = document["cases"][0]
    assert case["customer_id"] == "c-" + HOSTILE  # the same value, only written escaped
    assert case["assignee"] == "agent:" + HOSTILE


def test_a_refused_step_name_reaches_a_standard_library_log_line_escaped() -> None:
    """A step name is the caller's text (a web route's, say): one that is no step, with
    no space in it, was written to the log line as it was."""
    lines = io.StringIO()
    logger = logging.getLogger("complaintflow.test-hostile")
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(lines)
    logger.addHandler(handler)
    try:
        engine = Engine(MemoryStore(), clock=ManualClock(START), logger=logger)
        engine.open_case(actor="agent:x", customer={"id": "c-1", "name": "Ann"},
                         channel="email", case_id="case-1")  # fmt: skip
        with pytest.raises(StepNotAllowed):
            engine.step("case-1", "\x1b[2J\u202eack\x9b2J", actor="agent:x")
    finally:
        logger.removeHandler(handler)
    (line,) = [x for x in lines.getvalue().splitlines() if x.startswith("step refused")]
    for char in UNSHOWN:
        assert char not in line, (char, line)
    assert "step='\\x1b[2J\\u202eack\\x9b2J'" in line


def test_privacy_erase_shows_the_customer_and_case_ids_escaped(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (decision 0058): ``privacy erase`` printed the customer id it was given
    and the ids of the cases it erased as they were; a customer id stored before ids
    were checked (and typed back, or pasted, to erase it) wrote its escape sequences to
    the terminal. Shown as ``printable`` shows case ids in the tables."""
    from workflow.cli.common import printable

    engine = _hostile_case(store)
    monkeypatch.setattr("workflow.engine.case_id_problem", lambda _: None)  # as before 0036
    monkeypatch.setattr("workflow.engine.customer_id_problem", lambda _: None)
    engine.open_case(actor="agent:x", customer={"id": "c-" + HOSTILE, "name": "Ann"},
                     channel="email", case_id="case-\x1b[2J")  # fmt: skip
    output = _run("privacy", "erase", "c-" + HOSTILE, "--store", "memory://", "--actor",
                  "dpo:kim", "--reason", "DSR-1")  # fmt: skip
    for char in UNSHOWN:
        assert char not in output, (char, output)
    assert output.splitlines() == [
        "case-1  erased (event 3)",
        "case-\\x1b[2J  erased (event 2)",
        f"2 cases of customer {printable('c-' + HOSTILE)} erased",
    ]


def test_an_erasure_refused_shows_the_customer_and_case_ids_escaped(store: MemoryStore) -> None:
    """Regression (decision 0058): ``ErasureRefused`` named the customer (and the cases)
    as stored; its message is printed by ``privacy erase`` and by a support product. A
    customer id that is not printable is shown escaped (``repr``), as ``InvalidActor``
    shows a case id."""
    from workflow import ErasureRefused, replay
    from workflow.events import GENESIS, make_event

    customer = "c-" + HOSTILE
    data = {"customer": {"id": customer, "name": "Ann", "tier": "standard"},
            "channel": "email", "priority": "normal", "complainant_type": "unknown"}  # fmt: skip
    event = make_event("old-\x9b2J", 1, "open", START, "agent:a", data, "p@sha256:x", GENESIS)
    store.append(replay([event]), [event], 0)  # written before values were held apart
    engine = Engine(store, clock=ManualClock(START))
    with pytest.raises(ErasureRefused) as refused:
        engine.erase_customer(customer, actor="dpo:kim", reason="DSR-1")
    message = str(refused.value)
    assert message.startswith(f"customer {customer!r}: cases 'old-\\x9b2J' were written ")
    assert message.isprintable()
    result = CliRunner().invoke(main, ["privacy", "erase", customer, "--store", "memory://",
                                       "--actor", "dpo:kim", "--reason", "DSR-1"])  # fmt: skip
    assert result.exit_code == 1
    # (the structlog warning on stderr before it shows the ids escaped too: decision 0063)
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert error.startswith(f"Error: customer {customer!r}: cases 'old-\\x9b2J' were")
    assert error.isprintable()
