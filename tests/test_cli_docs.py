"""README.md, docs/concepts.md, docs/sla.md and docs/cli.md against the code they
describe: every command and option of the command line is in docs/cli.md and no page
shows one that does not exist (docs/audit.md's command lines in its prose too); the
names concepts.md lists (states, errors, channels...) are the code's; sla.md's `policy
check` example is what the command prints."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import workflow
from policies.sla import TIMED_STEPS
from workflow import ComplainantType, ComplaintflowError, Priority, State
from workflow.checklist import ACTIONS, SYSTEM_STEPS
from workflow.cli import main
from workflow.domain import Channel

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: The pages this file keeps true (docs/policies.md, adapters.md and embedding.md quote
#: the command line too; their own tests keep them; audit.md's lines: ``AUDIT_LINES``).
PAGES = {
    name: path.read_text(encoding="utf-8")
    for name, path in {
        "README.md": ROOT / "README.md",
        "concepts.md": DOCS / "concepts.md",
        "sla.md": DOCS / "sla.md",
        "cli.md": DOCS / "cli.md",
    }.items()
}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.S | re.M)
#: An option as written in a synopsis: ``--store``, ``-o``; not ``team-lead`` or ``-0h15``.
OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")
HELP = {"-h", "--help"}
#: Every command with ``--store`` takes these too; docs/cli.md says so once.
TABLE_PLACING = {"--prefix", "--schema"}


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_leaves(command, (*path, name)))
        else:
            found[" ".join((*path, name))] = command
    return found


COMMANDS = _leaves(main)


def _opts(command: click.Command) -> dict[str, set[str]]:
    """Each option's names (``--output`` -> {``-o``, ``--output``}), help left out."""
    return {
        param.name or "": set(param.opts) | set(param.secondary_opts)
        for param in command.params
        if isinstance(param, click.Option) and not set(param.opts) & HELP
    }


def _command_path(text: str) -> str:
    """The command a command line names (``audit verify`` of ``complaintflow audit
    verify --store URL``): its words after ``complaintflow`` while they name a command."""
    command: click.Command = main
    path: list[str] = []
    for word in text.split()[1:]:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
        path.append(word)
    return " ".join(path)


def _synopses(page: str) -> list[tuple[str, str]]:
    """``(command path, text)`` for each command line in the page's code blocks: a line
    starting ``complaintflow `` (or ``$ complaintflow ``) and the indented lines after
    it. The path is the words naming a command (``sla tick``); it may name none."""
    found = []
    for block in FENCE.findall(page):
        entry: list[str] | None = None
        for line in [*block.splitlines(), "<end>"]:
            if entry is not None and line.startswith((" ", "\t")):
                entry.append(line)
                continue
            if entry is not None:
                found.append(" ".join(entry))
                entry = None
            if re.match(r"(\$ )?complaintflow ", line):
                entry = [line.removeprefix("$ ")]
    return [(_command_path(text), text) for text in found]


SYNOPSES = [(page, path, text) for page in PAGES for path, text in _synopses(PAGES[page])]


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_docs_cli_shows_every_command_with_all_its_options(path: str) -> None:
    """docs/cli.md has a command line for each command, naming each of its arguments
    and options (``--prefix`` and ``--schema`` of a command with ``--store`` are said
    once for all)."""
    command = COMMANDS[path]
    shown = [text for named, text in _synopses(PAGES["cli.md"]) if named == path]
    assert shown, f"docs/cli.md shows no `complaintflow {path} ...` line"
    written = set(OPTION.findall(" ".join(shown)))
    words = set(" ".join(shown).replace("[", " ").replace("]", " ").split())
    options = _opts(command)
    has_store = "store_url" in options or "store" in options
    missing = [
        sorted(names)[-1]
        for name, names in options.items()
        if not names & written and not (has_store and names <= TABLE_PLACING)
    ]
    missing += [
        param.human_readable_name
        for param in command.params
        if isinstance(param, click.Argument) and param.human_readable_name not in words
    ]
    assert not missing, f"docs/cli.md's `complaintflow {path}` lacks {missing}"


@pytest.mark.parametrize(("page", "path", "text"), SYNOPSES)
def test_a_command_line_in_the_docs_names_a_command_and_its_options(
    page: str, path: str, text: str
) -> None:
    """No page shows a command or an option that does not exist."""
    assert path in COMMANDS, f"{page}: `{text}` names no command"
    known = set().union(*_opts(COMMANDS[path]).values(), HELP)
    unknown = sorted(set(OPTION.findall(text)) - known)
    assert not unknown, f"{page}: `complaintflow {path}` has no option {unknown}"


def test_every_command_with_a_store_places_tables_with_prefix_and_schema() -> None:
    """What docs/cli.md says once: every command with ``--store`` but ``demo`` also
    takes ``--prefix`` and ``--schema``."""
    for path, command in COMMANDS.items():
        names = set().union(*_opts(command).values(), set())
        if "--store" in names and path != "demo":
            assert names >= TABLE_PLACING, path


def test_docs_cli_names_the_options_every_command_takes() -> None:
    intro = PAGES["cli.md"].split("\n## ", 1)[0]
    for option in main.params:
        for name in option.opts:
            assert f"`{name}`" in intro, name


def _section(page: str, heading: str) -> str:
    return PAGES[page].split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _code_names(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def test_concepts_names_every_state_of_the_checklist() -> None:
    names = _code_names(_section("concepts.md", "The checklist"))
    assert {state.value for state in State} <= names


def test_concepts_and_the_readme_name_every_step_and_action() -> None:
    steps = set(workflow.STEP_NAMES) - SYSTEM_STEPS
    assert steps <= _code_names(_section("concepts.md", "The checklist"))
    assert set(ACTIONS) - SYSTEM_STEPS <= _code_names(_section("README.md", "The checklist"))


def test_concepts_lists_the_values_of_a_case() -> None:
    case = _code_names(_section("concepts.md", "Case"))
    for kind in (Channel, Priority, ComplainantType):
        assert {member.value for member in kind} <= case, kind.__name__


def test_concepts_lists_every_error_the_library_exports() -> None:
    errors = {
        name
        for name in workflow.__all__
        if isinstance(getattr(workflow, name), type)
        and issubclass(getattr(workflow, name), ComplaintflowError)
    }
    listed = _code_names(_section("concepts.md", "Guards and refusals"))
    assert errors - listed == set()


def test_sla_lists_the_steps_a_target_may_time() -> None:
    row = next(line for line in PAGES["sla.md"].splitlines() if line.startswith("| `step` |"))
    assert set(re.findall(r"`([a-z_]+)`", row)) - {"step"} == set(TIMED_STEPS)


def test_the_policy_check_sla_md_shows_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file sla.md shows (``$ cat shop.yaml``) gets the output it shows."""
    shown = next(block for block in FENCE.findall(PAGES["sla.md"]) if "$ cat shop.yaml" in block)
    text, expected = shown.split("$ cat shop.yaml\n", 1)[1].split("$ complaintflow ", 1)
    command, expected = expected.split("\n", 1)
    (tmp_path / "shop.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command.split())
    assert result.exit_code == 1
    assert result.output == expected


@pytest.mark.parametrize(
    ("remedy", "problem"),
    [
        ("refund:40EUX", "'40EUX' is not a valid amount: 'EUX' is not an ISO 4217 currency code"),
        ("refund:40.001EUR", "'40.001EUR' is not a valid amount: 40.001 has 3 decimal places"),
        ("refund:-40EUR", "a remedy's amount must be positive, got -40 EUR"),
        ("refund", "a refund remedy needs an amount"),
    ],
)
def test_policy_explain_says_what_is_wrong_with_a_remedy_in_one_line(
    remedy: str, problem: str
) -> None:
    """docs/cli.md: every command says what went wrong in one line, a usage error at the
    option (pydantic's report, with its type and URL lines, was printed whole)."""
    result = CliRunner().invoke(
        main, ["policy", "explain", "bundled:retail", "--role", "agent", "--remedy", remedy]
    )
    assert result.exit_code == 2
    error = result.output.splitlines()[-1]
    assert error.startswith(f"Error: Invalid value for '--remedy': {problem}")
    assert result.output.endswith(error + "\n")


def _inline_command_lines(page: str) -> list[tuple[str, str]]:
    """``(command path, text)`` for each command line docs/audit.md writes in running
    text: a code span starting ``complaintflow `` (wrapped over lines, as prose is)."""
    spans = re.findall(r"`(complaintflow [^`]+)`", page)
    return [(_command_path(text), text) for text in (" ".join(s.split()) for s in spans)]


AUDIT_LINES = _inline_command_lines((DOCS / "audit.md").read_text(encoding="utf-8"))


def test_audit_md_shows_command_lines() -> None:
    assert len(AUDIT_LINES) > 5


@pytest.mark.parametrize(("path", "text"), AUDIT_LINES)
def test_a_command_line_in_audit_md_names_its_options(path: str, text: str) -> None:
    """docs/audit.md's command lines name a command and only options it has; a line
    giving the command's form (optional parts in ``[...]``) names every option, as
    docs/cli.md's do (decision 0058: its ``report`` line left out ``--by`` and
    ``--calendar``)."""
    assert path in COMMANDS, f"audit.md: `{text}` names no command"
    options = _opts(COMMANDS[path])
    known = set().union(*options.values(), HELP)
    written = set(OPTION.findall(text))
    assert not written - known, f"audit.md: `{text}` has no option {sorted(written - known)}"
    if "[" in text:
        missing = [
            sorted(names)[-1]
            for names in options.values()
            if not names & written and not names <= TABLE_PLACING
        ]
        assert not missing, f"audit.md's `{text}` lacks {missing}"
