"""``report --by`` refused by the reports that do not group by it, and ``privacy purge``
saying which cases it kept and why (docs/decisions/0065)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from adapters.memory import MemoryStore
from workflow.cli import main


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """One store the commands open for any URL."""
    shared = MemoryStore()
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url, **_: shared)
    return shared


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


# --- 1. report --by -------------------------------------------------------------------

OTHERS = ["sla", "breaches", "steps", "handling", "summary", "recurring", "regulatory"]


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("by", ["agent", "kind"])  # the default too, given
def test_a_report_that_does_not_group_refuses_by(store: MemoryStore, name: str, by: str) -> None:
    result = _cli("report", name, "--store", "memory://", "--policy", "bundled:retail",
                  "--by", by)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--by'" in result.output
    assert f"the {name} report takes no --by" in result.output
    assert "only spend groups by it" in result.output
    assert len(result.output.strip().splitlines()[-1]) < 400  # one line


@pytest.mark.parametrize("name", OTHERS)
def test_a_report_without_by_is_unchanged(store: MemoryStore, name: str) -> None:
    result = _cli("report", name, "--store", "memory://", "--policy", "bundled:retail")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [["spend"], ["--format", "html"], ["sla", "--format", "html"]])
def test_spend_and_the_html_page_take_by(store: MemoryStore, args: list[str]) -> None:
    result = _cli("report", *args, "--store", "memory://", "--policy", "bundled:retail",
                  "--by", "agent")  # fmt: skip
    assert result.exit_code == 0, result.output
