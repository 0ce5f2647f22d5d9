"""README's Python code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_a_quickstart() -> None:
    assert BLOCKS, "README.md has no python code block"


@pytest.mark.parametrize("block", BLOCKS)
def test_a_readme_block_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "('contact', 'occurred_on', 'details')" in out
    assert "'close']" in out


def test_readme_set_up_commands_are_the_ones_ci_runs() -> None:
    """.ci/run runs README's test command, word for word."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", readme, flags=re.S)
    assert len(commands) == 2
    assert "complaintflow demo" in commands[0]
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command == "python -m pytest -q"
    assert test_command in (ROOT / ".ci" / "run").read_text()
