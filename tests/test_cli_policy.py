"""``complaintflow policy``: check, explain, test, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policies.loader import BUNDLED
from workflow.cli import main

RETAIL = str(BUNDLED / "retail.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_check_accepts_a_good_file_and_shows_its_digest() -> None:
    code, out = run("policy", "check", RETAIL)
    assert code == 0
    assert "ok — Example Retail, version 2026.1" in out
    assert "digest   sha256:" in out


def test_check_lists_every_problem_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: X\nversion: [1]\ncurrency: EUX\noffers:\n  max_per_case: 0\n")
    code, out = run("policy", "check", str(bad))
    assert code == 1
    assert "version (line 2): Input should be a valid string" in out
    assert "currency (line 3): 'EUX' is not an ISO 4217 currency code" in out
    assert "offers.max_per_case (line 5)" in out


def test_explain_gives_the_decision_and_each_rule() -> None:
    code, out = run(
        "policy",
        "explain",
        RETAIL,
        "--role",
        "agent",
        "--remedy",
        "refund:90.00EUR",
        "--category",
        "billing",
    )
    assert code == 0
    assert out.splitlines()[:2] == [
        "decision: needs_approval",
        "  [limits.agent.refund] 90.00 EUR as refund is above the agent limit of 50.00 EUR: "
        "a team-lead or someone else with the authority must approve it",
    ]


def test_explain_refuses_a_float_like_shorthand_cleanly() -> None:
    code, out = run("policy", "explain", RETAIL, "--role", "agent", "--remedy", "refund:40EURO")
    assert code == 2
    assert "not an amount like '40.00EUR'" in out


@pytest.mark.parametrize("name", ["retail", "saas", "fca-financial"])
def test_the_bundled_expectations_pass(name: str) -> None:
    policy = next(p for p in BUNDLED.iterdir() if p.stem == name)
    code, out = run("policy", "test", str(policy), str(BUNDLED / f"{name}.cases.yaml"))
    assert code == 0, out
    assert out.strip().endswith("0 failed")


def test_a_failing_expectation_fails_the_run(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- name: wrong on purpose\n  role: agent\n  remedies: [refund:90.00EUR]\n"
        "  expect: allowed\n"
    )
    code, out = run("policy", "test", RETAIL, str(cases))
    assert code == 1
    assert "FAIL  wrong on purpose" in out
    assert "expected allowed" in out
    assert "0 passed, 1 failed" in out


def test_the_schema_is_json_schema_for_the_policy_file() -> None:
    code, out = run("policy", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "complaintflow policy file"
    assert {"name", "version", "currency"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


def test_docs_show_the_current_explain_and_check_output() -> None:
    """docs/policies.md quotes real output; keep it true."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "policies.md").read_text()
    for args in (
        [
            "explain",
            "policies/bundled/retail.yaml",
            "--role",
            "agent",
            "--remedy",
            "refund:40.00EUR",
            "--tier",
            "vip",
            "--category",
            "delivery",
        ],
        [
            "explain",
            "policies/bundled/retail.yaml",
            "--role",
            "agent",
            "--remedy",
            "refund:90.00EUR",
            "--remedy",
            "replacement",
            "--category",
            "billing",
            "--paid",
            "250.00",
        ],
        ["check", "policies/bundled/retail.yaml"],
    ):
        root = Path(__file__).resolve().parent.parent
        args = [str(root / a) if a.startswith("policies/") else a for a in args]
        _, out = run("policy", *args)
        out = out.replace(str(root) + "/", "")
        assert out in page, out


@pytest.mark.parametrize("paid", ["nan", "-1000"])
def test_explain_refuses_an_amount_paid_that_is_not_an_amount_cleanly(paid: str) -> None:
    """Regression: ``--paid nan`` ended in a ``decimal.InvalidOperation`` traceback and
    ``--paid -1000`` raised the customer's cap by 1000."""
    code, out = run(
        "policy", "explain", RETAIL, "--role", "agent", "--remedy", "refund:40.00EUR",
        "--paid", paid,
    )  # fmt: skip
    assert code == 2, out
    assert f"Error: Invalid value for '--paid': '{paid}' is not an amount of 0 or more" in out


def test_a_yaml_syntax_error_is_located_where_the_unclosed_construct_starts(
    tmp_path: Path,
) -> None:
    """Regression: an unclosed ``{`` on line 5 of a 5-line file was reported at line 6,
    column 1 (the end of the file, where PyYAML noticed), not where it starts."""
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: Shop\nversion: "1"\ncurrency: EUR\nroles:\n  agent: {limits: 1\n')
    code, out = run("policy", "check", str(bad))
    assert code == 1, out
    assert "line 5, column 10: not valid YAML: while parsing a flow mapping:" in out
    assert "line 6" in out  # where it was noticed, still said, in the message


def test_a_yaml_indentation_error_is_located_at_the_problem_not_the_enclosing_block(
    tmp_path: Path,
) -> None:
    """The start of the enclosing block mapping (line 1) says nothing: the problem's
    place is kept when the context is a block collection."""
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: Shop\nversion: "1"\ncurrency: EUR\ncategories:\n  - a\n - b\n')
    code, out = run("policy", "check", str(bad))
    assert code == 1, out
    assert "line 6, column 2: not valid YAML: while parsing a block mapping" in out


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--remedy", "refund:40EURO", "not an amount like '40.00EUR'"),
        ("--paid", "lots", "'lots' is not an amount"),
        ("--paid", "nan", "'nan' is not an amount of 0 or more"),
    ],
)
def test_explain_names_the_option_a_bad_value_was_given_to(
    option: str, value: str, said: str
) -> None:
    """Regression: both said ``Invalid value:`` without naming the option, and ``--paid
    lots`` said ``[<class 'decimal.ConversionSyntax'>]``."""
    args = {"--remedy": "refund:40.00EUR", "--paid": "0", option: value}
    code, out = run(
        "policy", "explain", RETAIL, "--role", "agent",
        "--remedy", args["--remedy"], "--paid", args["--paid"],
    )  # fmt: skip
    assert code == 2, out
    assert f"Invalid value for '{option}': " in out
    assert said in out


# --- review-policies -------------------------------------------------------------------

CASE = "- name: a case\n  role: agent\n  remedies: [refund:40.00EUR]\n  expect: allowed\n"


@pytest.mark.parametrize(
    ("line", "where", "says"),
    [
        ("  complainant_type: ripoff\n", "[0].complainant_type (line 5)", "'rip-off'"),
        ("  offers_made: true\n", "[0].offers_made (line 5)", "valid integer"),
        ("  offers_made: '2'\n", "[0].offers_made (line 5)", "valid integer"),
        ("  category: delivry\n", "[0].category (line 5)", "'delivry' is not one of"),
    ],
)
def test_a_case_file_mistake_is_refused_with_its_location_not_run(
    tmp_path: Path, line: str, where: str, says: str
) -> None:
    """A mistyped complainant type or category would be decided as no playbook or no
    adjustment (and the engine refuses an undeclared category): the run would pass or
    fail for the wrong reason. A count is a whole number, not ``true``."""
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASE + line)
    code, out = run("policy", "test", RETAIL, str(cases))
    assert code == 1, out
    assert f"{cases}" in out
    assert where in out, out
    assert says in out, out
    assert "PASS" not in out


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--complainant-type", "ripoff", "'rip-off'"),
        ("--category", "delivry", "'delivry' is not one of the policy's categories"),
        ("--offers-made", "-1", "-1"),
        ("--paid", "1e9999999999", "--paid"),
    ],
)
def test_explain_refuses_a_value_the_engine_would_never_see(
    option: str, value: str, says: str
) -> None:
    """A typo in the complainant type or category is not explained as some other case;
    an impossible count or an amount too large to add up is refused, not a traceback."""
    code, out = run(
        "policy", "explain", RETAIL, "--role", "agent", "--remedy", "refund:40.00EUR",
        option, value,
    )  # fmt: skip
    assert code == 2, out
    assert says in out, out
    assert "decision:" not in out


@pytest.mark.parametrize("name", ["retail", "saas", "fca-financial"])
def test_policy_commands_take_a_bundled_policy_by_name_with_its_cases(name: str) -> None:
    """`bundled:NAME` works in `policy check | explain | test` as it does for `--policy`
    elsewhere; `policy test bundled:NAME` runs the cases shipped beside it."""
    code, out = run("policy", "check", f"bundled:{name}")
    assert code == 0, out
    assert f"bundled:{name}: ok — " in out
    code, out = run("policy", "test", f"bundled:{name}")
    assert code == 0, out
    assert out.splitlines()[-1].endswith(" passed, 0 failed")
    code, same = run("policy", "test", f"bundled:{name}", f"bundled:{name}")
    assert (code, same) == (0, out)


def test_explain_takes_a_bundled_policy_by_name() -> None:
    by_name = run("policy", "explain", "bundled:retail", "--role", "agent", "--remedy",
                  "refund:40.00EUR")  # fmt: skip
    by_path = run("policy", "explain", RETAIL, "--role", "agent", "--remedy", "refund:40.00EUR")
    assert by_name == by_path
    assert by_name[0] == 0


def test_policy_test_needs_a_cases_file_for_a_policy_given_by_path() -> None:
    result = CliRunner().invoke(main, ["policy", "test", RETAIL])
    assert result.exit_code == 2
    assert "CASES" in result.output


# --- messages (decision 0058) ----------------------------------------------------------

UNKNOWN_BUNDLED = (
    "there is no bundled policy called 'retial' (did you mean 'retail'?); the bundled "
    "policies are: fca-financial, retail, saas"
)


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["policy", "check", "bundled:retial"], "'FILE'"),
        (
            ["policy", "explain", "bundled:retial", "--role", "agent", "--remedy", "apology"],
            "'FILE'",
        ),
        (["policy", "test", "bundled:retial"], "'FILE'"),
        (["sla", "tick", "--policy", "bundled:retial"], "'--policy'"),
        (["sla", "status", "c-1", "--policy", "bundled:retial"], "'--policy'"),
        (["audit", "show", "c-1", "--policy", "bundled:retial"], "'--policy'"),
        (["privacy", "purge", "--actor", "system:r", "--policy", "bundled:retial"], "'--policy'"),
        (
            ["report", "sla", "--policy", "bundled:saas", "--policy", "bundled:retial"],
            "'--policy'",
        ),
    ],
)
def test_an_unknown_bundled_policy_is_a_usage_error_naming_the_ones_there_are(
    tmp_path: Path, args: list[str], where: str
) -> None:
    """Regression: ``--policy bundled:nope`` (and ``policy check bundled:nope``) said
    ``policy file nope is not valid`` with a Python list of the names: there is no such
    file, and the name is what was mistyped. Nothing is opened first."""
    from adapters.sql import SqlStore

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    SqlStore(url, create=True).close()
    store = ["--store", url] if args[0] != "policy" else []
    code, out = run(*args, *store)
    assert code == 2, out
    assert f"Error: Invalid value for {where}: {UNKNOWN_BUNDLED}\n" in out
    assert "policy file" not in out


def test_an_unknown_bundled_cases_file_is_a_usage_error_naming_cases() -> None:
    code, out = run("policy", "test", "bundled:retail", "bundled:sas")
    assert code == 2, out
    assert (
        "Error: Invalid value for 'CASES': there is no bundled cases file called 'sas' (did "
        "you mean 'saas'?); the bundled ones are: fca-financial, retail, saas\n"
    ) in out


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (CASE + "  bogus: 1\n", "  - [0].bogus (line 5): unknown key 'bogus'"),
        ("not: [valid\n", "not valid YAML"),
        (None, "cannot read the file"),
    ],
    ids=["invalid", "not yaml", "missing"],
)
def test_a_bad_cases_file_is_called_a_cases_file(
    tmp_path: Path, text: str | None, problem: str
) -> None:
    """Regression: ``policy test POLICY CASES`` with a bad CASES said ``policy file CASES
    is not valid``, sending the reader to the policy file that was fine."""
    cases = tmp_path / "cases.yaml"
    if text is not None:
        cases.write_text(text)
    code, out = run("policy", "test", RETAIL, str(cases))
    assert code == 1, out
    assert out.startswith(f"Error: cases file {cases} is not valid:\n"), out
    assert problem in out
    assert "policy file" not in out


@pytest.mark.parametrize(
    ("paid", "says"),
    [
        ("1.001", "'1.001' has 3 decimal places; EUR has 2"),
        ("0.000", "'0.000' has 3 decimal places; EUR has 2"),
        ("-5", "'-5' is not an amount of 0 or more"),
        ("NaN", "'NaN' is not an amount of 0 or more"),
        ("-Infinity", "'-Infinity' is not an amount of 0 or more"),
        ("five", "'five' is not an amount"),
    ],
)
def test_explain_refuses_a_paid_amount_the_currency_cannot_hold_naming_paid(
    paid: str, says: str
) -> None:
    """Regression: ``--paid 1.001`` was taken and added up rounded (more decimals than
    EUR has, which ``--remedy refund:40.001EUR`` refuses); ``--paid -5`` was refused
    naming ``paid_in_period``, the library's argument, not the option."""
    code, out = run("policy", "explain", RETAIL, "--role", "agent", "--remedy",
                    "refund:40.00EUR", f"--paid={paid}")  # fmt: skip
    assert code == 2, out
    assert out.splitlines()[-1] == f"Error: Invalid value for '--paid': {says}"
    code, out = run("policy", "explain", RETAIL, "--role", "agent", "--remedy",
                    "refund:40.00EUR", "--paid", "1.50")  # fmt: skip
    assert code == 0, out
