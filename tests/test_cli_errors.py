"""The command line on bad input: a clear one-line error naming what is wrong and where,
a non-zero exit status, no traceback, and nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters import open_store
from adapters.sql import SqlStore
from policies.loader import load_policy
from tests.stores import sqlite_url
from workflow.cli import main
from workflow.errors import SchemaVersionError


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _refused(result: Result, *words: str) -> None:
    """Refused cleanly: exit status 1 or 2, no exception escaping, the words said."""
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A SQLite store holding the demo's closed case: (URL, case id)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    result = _run("demo", "--store", url)
    assert result.exit_code == 0, result.output
    store = open_store(url)
    try:
        (case_id,) = store.case_ids()
    finally:
        store.close()
    return url, case_id


@pytest.mark.parametrize(
    "command",
    [
        ["sla", "tick"],
        ["sla", "status", "case-1"],
        ["report", "sla"],
        ["privacy", "purged"],
        ["privacy", "scrub"],
        ["privacy", "erase", "c-1", "--actor", "dpo:kim", "--reason", "DSR-7"],
        ["privacy", "purge", "--actor", "system:retention"],
        ["demo"],
    ],
)
def test_every_command_refuses_an_unknown_store_scheme_without_a_traceback(
    command: list[str],
) -> None:
    _refused(_run(*command, "--store", "nosuch://x"), "no store for URL scheme 'nosuch'")


def test_a_command_on_a_store_file_that_does_not_exist_creates_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = _run("audit", "verify", "--store", f"sqlite:///{missing}")
    _refused(result, str(missing), "complaintflow db init")
    assert not missing.exists()
    _refused(_run("sla", "tick", "--store", f"sqlite:///{missing}"), str(missing))
    assert not missing.exists()


def test_opening_a_sqlite_store_that_does_not_exist_raises_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nothing-here.db"
    with pytest.raises(SchemaVersionError, match="complaintflow db init"):
        open_store(f"sqlite:///{missing}")
    assert not missing.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "show", "CASE", "--at", "yesterday"],
        ["audit", "export", "--since", "yesterday"],
        ["audit", "export", "--until", "yesterday"],
        ["sla", "status", "CASE", "--at", "yesterday"],
        ["privacy", "purge", "--actor", "system:retention", "--at", "yesterday", "--dry-run"],
    ],
)
def test_a_malformed_time_is_refused_naming_the_option(
    demo_store: tuple[str, str], command: list[str]
) -> None:
    url, case_id = demo_store
    args = [case_id if a == "CASE" else a for a in command]
    option = next(a for a in command if a.startswith("--") and a != "--actor")
    _refused(_run(*args, "--store", url), option, "'yesterday'")


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "show", "CASE", "--at", "2026-11-02T12:00"],
        ["audit", "export", "--since", "2026-11-02T12:00"],
        ["sla", "status", "CASE", "--at", "2026-11-02T12:00"],
        ["privacy", "purge", "--actor", "system:retention", "--at", "2026-11-02", "--dry-run"],
    ],
)
def test_a_time_without_a_zone_is_refused_naming_the_option(
    demo_store: tuple[str, str], command: list[str]
) -> None:
    url, case_id = demo_store
    args = [case_id if a == "CASE" else a for a in command]
    option = next(a for a in command if a.startswith("--") and a != "--actor")
    _refused(_run(*args, "--store", url), option, "time zone")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", ["not a digest"]),
        ('{"digest": "x"}', ["not a digest"]),
        ("[1, 2]", ["not a digest"]),
        ('{"heads": {"case-1": "oops"}}', ["not a digest"]),
    ],
)
def test_verify_refuses_a_digest_file_that_is_not_a_digest(
    demo_store: tuple[str, str], tmp_path: Path, content: str, words: list[str]
) -> None:
    url, _ = demo_store
    digest = tmp_path / "digest.json"
    digest.write_text(content)
    _refused(_run("audit", "verify", "--store", url, "--digest", str(digest)), str(digest), *words)


def test_verify_refuses_a_digest_file_that_does_not_exist(
    demo_store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = demo_store
    missing = tmp_path / "none.json"
    _refused(_run("audit", "verify", "--store", url, "--digest", str(missing)), str(missing))


def test_export_to_an_unwritable_path_is_refused_naming_it(
    demo_store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = demo_store
    target = tmp_path / "no-such-dir" / "out.jsonl"
    _refused(_run("audit", "export", "--store", url, "-o", str(target)), str(target))
    _refused(_run("audit", "export", "--store", url, "-o", str(tmp_path)), str(tmp_path))


def test_export_of_an_unknown_case_is_refused_and_writes_no_file(
    demo_store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = demo_store
    target = tmp_path / "out.jsonl"
    result = _run("audit", "export", "--store", url, "--case", "nosuch", "-o", str(target))
    _refused(result, "no case 'nosuch'")
    assert not target.exists()


def test_a_failed_export_leaves_an_earlier_file_as_it_was(
    demo_store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = demo_store
    target = tmp_path / "out.jsonl"
    ok = _run("audit", "export", "--store", url, "-o", str(target))
    assert ok.exit_code == 0, ok.output
    before = target.read_bytes()
    _refused(_run("audit", "export", "--store", url, "--case", "nosuch", "-o", str(target)))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_html_report_to_an_unwritable_path_is_refused_naming_it(
    demo_store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = demo_store
    target = tmp_path / "no-such-dir" / "report.html"
    result = _run("report", "sla", "--store", url, "--policy", "bundled:retail",
                  "--format", "html", "-o", str(target))  # fmt: skip
    _refused(result, str(target))


def test_sla_status_refuses_a_case_whose_policy_was_not_given(
    demo_store: tuple[str, str],
) -> None:
    """Without its policy the case has no targets to show: an empty table would read as
    "no SLA targets", so the command names the policy to pass instead."""
    url, case_id = demo_store
    _refused(_run("sla", "status", case_id, "--store", url), "2026.1@sha256:", "--policy")
    given = _run("sla", "status", case_id, "--store", url, "--policy", "bundled:retail")
    assert given.exit_code == 0, given.output
    assert "ack-email" in given.output


def test_a_toml_policy_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """Windows editors save UTF-8 with a BOM; YAML files already load so."""
    plain = tmp_path / "plain.toml"
    plain.write_text('name = "x"\nversion = 1\ncurrency = "EUR"\n', encoding="utf-8")
    bom = tmp_path / "bom.toml"
    bom.write_text(plain.read_text(), encoding="utf-8-sig")
    assert load_policy(bom) == load_policy(plain)
    assert _run("policy", "check", str(bom)).exit_code == 0


def test_importing_the_library_leaves_the_warning_filters_alone() -> None:
    import subprocess
    import sys

    code = (
        "import warnings; before = list(warnings.filters); "
        "import workflow, adapters, policies; "
        "assert warnings.filters == before, [f for f in warnings.filters if f not in before]"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_digest_of_the_store_still_verifies(demo_store: tuple[str, str], tmp_path: Path) -> None:
    url, case_id = demo_store
    digest = _run("audit", "digest", "--store", url)
    assert digest.exit_code == 0
    saved = tmp_path / "digest.json"
    saved.write_text(digest.output)
    assert case_id in json.loads(digest.output)["heads"]
    result = _run("audit", "verify", "--store", url, "--digest", str(saved))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "command",
    [["db", "init", "{url}"], ["db", "upgrade", "{url}"], ["demo", "--store", "{url}"],
     ["audit", "verify", "--store", "{url}"]],
)  # fmt: skip
def test_a_store_url_naming_a_directory_is_refused_naming_it(
    command: list[str], tmp_path: Path
) -> None:
    """Regression: ``db init sqlite:///some/dir`` showed SQLAlchemy's own text, with a
    link to sqlalche.me; the read commands said the database was "unavailable or busy"."""
    url = f"sqlite:///{tmp_path}"
    result = _run(*(part.format(url=url) for part in command))
    _refused(result, f"{tmp_path} is a directory, not a SQLite database file")
    assert "sqlalche.me" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_db_init_in_a_folder_that_does_not_exist_is_refused_naming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nofolder' / 'cases.db'}"
    result = _run("db", "init", url)
    _refused(result, f"there is no folder {tmp_path / 'nofolder'}")
    assert "sqlalche.me" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_db_init_on_a_file_that_is_not_a_database_says_so_in_one_line(tmp_path: Path) -> None:
    """Regression: the driver's error came with SQLAlchemy's link to sqlalche.me."""
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    result = _run("db", "init", f"sqlite:///{text}")
    _refused(result, str(text), "file is not a database")
    assert "sqlalche.me" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize(
    "command",
    [["report", "sla"], ["sla", "status", "CASE"], ["report", "summary", "--format", "html"]],
)
def test_a_policy_not_given_that_is_bundled_is_named_with_the_option_to_pass(
    demo_store: tuple[str, str], command: list[str]
) -> None:
    """The demo's cases run under ``bundled:retail``: a newcomer who runs a report on
    the demo's store without ``--policy`` is told which option gives it."""
    url, case_id = demo_store
    args = [case_id if a == "CASE" else a for a in command]
    result = _run(*args, "--store", url)
    assert result.exit_code == 1, result.output
    assert "which was not given" in result.output
    assert "--policy bundled:retail" in result.output
    assert _run(*args, "--store", url, "--policy", "bundled:retail").exit_code == 0


# --- the command's own words, not the library's (decision 0058) ------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["privacy", "erase", "", "--actor", "dpo:kim", "--reason", "DSR-1"],
         "Error: Invalid value for 'CUSTOMER_ID': it is empty"),
        (["privacy", "erase", "c-1", "--actor", "kim", "--reason", "DSR-1"],
         "Error: Invalid value for '--actor': 'kim' is refused: it is not 'role:id' text; an "
         "actor is 'role:id' text, for example 'agent:alice' or 'customer:c-42'"),
        (["privacy", "purge", "--actor", "System:retention"],
         "Error: Invalid value for '--actor': 'System:retention' is refused: its role holds "
         "U+0053 'S' at position 1; a role is a lower-case name, as the policy files name "
         "roles: 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or a digit"),
        (["report", "spend", "--by", "agnet"],
         "Error: Invalid value for '--by': 'agnet' is not one of 'kind', 'agent', "
         "'category', 'customer'."),
    ],
)  # fmt: skip
def test_a_command_names_its_own_arguments_not_the_librarys(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """Regression: ``privacy erase ''`` said ``customer_id must be a non-empty string``,
    a bad ``--actor`` ``actor 'kim' given to 'erase_customer' is refused ... or an
    Actor``, and ``report spend --by agnet`` ``Invalid value: by must be ...``: Python
    names a command-line user never typed. Each is a usage error naming the option."""
    url = sqlite_url(tmp_path)
    SqlStore(url, create=True).close()
    result = CliRunner().invoke(main, [*args, "--store", url])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == expected
