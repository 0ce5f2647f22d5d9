"""The example programs run and show what they claim."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_embedding_turns_refusals_into_messages(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("embedding.py", capsys).splitlines()
    assert out[0].startswith("buttons: acknowledge, escalate")
    assert out[1].startswith("refused: case T-1001 is 'received'")
    assert "needs: occurred_on, details" in out[4]
    # The webhook delivered twice and the double-clicked form are each taken once.
    assert out[6] == out[7] == "ok: T-1001 is now apologised"
    assert out[8] == "opened: 1 | apologised: 1"
    assert out[-2] == "ok: T-1001 is now promised"
    assert out[-1].startswith("buttons: keep_promise")


def test_the_approval_hook_sends_big_offers_to_a_second_person(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = run("approval_hook.py", capsys).splitlines()
    # The largest of the two options (alternatives) is judged, not their sum.
    assert out[0] == (
        "awaiting_approval - needs_approval: 120.00 EUR is above an agent's 50.00 EUR "
        "[company.agent_limit]"
    )
    assert out[1].startswith("refused: denied: role 'agent' may approve up to 50.00 EUR")
    assert "[approval.four_eyes]" in out[2]
    assert out[3] == "remedy_offered - approved by team-lead:sam"


def test_the_audit_trail_checks_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("audit_trail.py", capsys)
    assert "chain links: True | hashes match content: True" in out
    assert "snapshot equals replay: True" in out
