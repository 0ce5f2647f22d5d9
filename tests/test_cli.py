"""The command line: demo and diagram."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from workflow import CHECKLIST, STEP_NAMES
from workflow.checklist import MACHINE
from workflow.cli import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo keeps its SQLite file in the current directory: not in the checkout."""
    monkeypatch.chdir(tmp_path)


def test_the_demo_runs_a_complaint_through_every_step_and_prints_its_timeline() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    steps = re.findall(r"^\s+\d+\s+\w{3} \d\d \w{3} \d\d:\d\d\s+\S+\s+(\w+)", out, flags=re.M)
    assert [s for s in steps if s in CHECKLIST] == [
        "acknowledge",
        "listen",
        "record",
        "apologise",
        "offer_remedy",
        "offer_remedy",
        "accept_remedy",
        "keep_promise",
        "request_feedback",
        "close",
    ]
    assert {"escalate", "resume", "decline_remedy", "pause_sla", "record_feedback"} <= set(steps)
    assert "final state      : closed" in out
    assert "replay == state  : True" in out


def test_the_diagram_is_mermaid_generated_from_the_machine() -> None:
    result = CliRunner().invoke(main, ["diagram"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "stateDiagram-v2"
    edges = {line.strip() for line in lines if "-->" in line}
    for name, event in MACHINE.events.items():
        for source, transitions in event.transitions.items():
            for tr in transitions:
                if tr.dest is not None:
                    assert any(e.startswith(f"{source} --> {tr.dest} : {name}") for e in edges)
    notes = " ".join(line for line in lines if "note right of" in line)
    assert all(
        action in notes
        for action in STEP_NAMES
        if action not in CHECKLIST
        and action in ("add_note", "assign", "classify", "pause_sla", "resume_sla")
    )


def test_verbose_logs_each_step_with_its_case_id_to_stderr() -> None:
    result = CliRunner().invoke(main, ["-v", "demo"])
    assert result.exit_code == 0
    assert re.search(r"step accepted .*case_id=case-\w+.*step=acknowledge", result.stderr)


def test_a_second_demo_run_names_the_case_the_run_before_left() -> None:
    """Every run opens its case at the same simulated instant: "the latest" is still the
    previous run's case, not a random earlier one."""
    ids = []
    for _ in range(4):
        result = CliRunner().invoke(main, ["demo"])
        assert result.exit_code == 0, result.output
        ids.append(re.search(r"demo: case (\S+)", result.output)[1])  # type: ignore[index]
        if len(ids) > 1:
            expected = (
                f"this store already held {len(ids) - 1} case(s) from earlier runs, "
                f"the latest {ids[-2]} (closed)"
            )
            assert expected in result.output
    assert Path("complaintflow-demo.db").exists()


def test_after_erasing_the_demo_customer_their_name_is_nowhere_in_the_database() -> None:
    """The demo follows docs/audit.md's advice: free text stays in the chained record,
    so its notes and evidence speak of "the customer", never the name."""
    assert CliRunner().invoke(main, ["demo"]).exit_code == 0
    db = Path("complaintflow-demo.db")
    assert b"Whitfield" in db.read_bytes()  # the customer's name, before the erasure
    erased = CliRunner().invoke(
        main,
        ["privacy", "erase", "c-1042", "--store", f"sqlite:///{db}",
         "--actor", "dpo:kim", "--reason", "DSR-7"],
    )  # fmt: skip
    assert erased.exit_code == 0, erased.output
    files = [db, *db.parent.glob(f"{db.name}-*")]  # with the WAL, if any is left
    for name in (b"Dana", b"Whitfield"):
        assert not any(name in f.read_bytes() for f in files), name
    verified = CliRunner().invoke(main, ["audit", "verify", "--store", f"sqlite:///{db}"])
    assert verified.exit_code == 0, verified.output
