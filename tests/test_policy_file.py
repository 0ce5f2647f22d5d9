"""Policy files: loaded safely, validated, every mistake located."""

from __future__ import annotations

import contextlib
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.errors import PolicyFileError
from policies.loader import BUNDLED, bundled_policy, load_policy, parse_policy
from policies.model import STEPS
from policies.types import parse_duration
from tests.policy_texts import BASE, assert_one_problem
from workflow import STEP_NAMES, ComplainantType

MISTAKES = [
    ("missing currency", "name: Shop\nversion: '1'\n", "currency (line 1)", "Field required"),
    ("missing version", "name: Shop\ncurrency: EUR\n", "version (line 1)", "Field required"),
    ("unknown currency", BASE.replace("EUR", "EUX"), "currency (line 3)", "not an ISO 4217"),
    ("wrong type", BASE.replace("name: Shop", "name: [Shop]"), "name (line 1)", "valid string"),
    (
        "unknown key",
        BASE + "refunds_allowed: yes\n",
        "refunds_allowed (line 9)",
        "unknown key 'refunds_allowed'",
    ),
    (
        "unknown remedy",
        BASE.replace("refund: 50", "refnd: 50"),
        "roles.agent.limits.refnd (line 8)",
        "unknown remedy kind 'refnd'",
    ),
    (
        "negative limit",
        BASE.replace("refund: 50.00", "refund: -5"),
        "roles.agent.limits.refund (line 8)",
        "greater than or equal to 0",
    ),
    (
        "too many decimals",
        BASE.replace("50.00", "50.001"),
        "roles.agent.limits.refund (line 8)",
        "more decimals than EUR allows (2)",
    ),
    (
        "amount as words",
        BASE.replace("50.00", "fifty"),
        "roles.agent.limits.refund (line 8)",
        "valid decimal",
    ),
    (
        "duplicate role",
        BASE + "  agent:\n    authority: 10\n",
        "line 9, column 3",
        "duplicate key 'agent' (first on line 5)",
    ),
    (
        "bad duration",
        BASE + "reopen:\n  window: 30 days\n",
        "reopen.window (line 10)",
        "not an ISO 8601 duration",
    ),
    (
        "years in a duration",
        BASE + "reopen:\n  window: P1Y\n",
        "reopen.window (line 10)",
        "years and months vary",
    ),
    (
        "negative duration",
        BASE + "reopen:\n  window: -P1D\n",
        "reopen.window (line 10)",
        "cannot be negative",
    ),
    ("bad YAML", BASE + "roles: [unclosed\n", "line 9, column 8", "while parsing a flow sequence"),
    (
        "tab indentation",
        BASE + "offers:\n\tmax_per_case: 2\n",
        "line 10, column 1",
        "not valid YAML",
    ),
    (
        "zero offers",
        BASE + "offers:\n  max_per_case: 0\n",
        "offers.max_per_case (line 10)",
        "greater than or equal to 1",
    ),
    (
        "offers as text",
        BASE + "offers:\n  max_per_case: three\n",
        "offers.max_per_case (line 10)",
        "valid integer",
    ),
    (
        "unknown complainant type",
        BASE + "playbooks:\n  grumpy:\n    priority: high\n",
        "playbooks.grumpy (line 11)",
        "unknown key 'grumpy'; the keys here are: meek, aggressive, high-roller, rip-off",
    ),
    (
        "unknown guidance step",
        BASE + "playbooks:\n  meek:\n    guidance:\n      smile: x\n",
        "playbooks.meek.guidance (line 12)",
        "unknown steps ['smile']",
    ),
    (
        "bad priority",
        BASE + "playbooks:\n  meek:\n    priority: extreme\n",
        "playbooks.meek.priority (line 11)",
        "'urgent'",
    ),
    (
        "built-in kind redefined",
        BASE + "remedy_kinds:\n  refund:\n    monetary: true\n",
        "remedy_kinds.refund (line 11)",
        "built-in remedy kind",
    ),
    (
        "role name with spaces",
        BASE.replace("  agent:", "  Agent Smith:"),
        "roles.Agent Smith (line 6)",
        "pattern",
    ),
    (
        "zero multiplier",
        BASE + "adjustments:\n  tiers:\n    vip: 0\n",
        "adjustments.tiers.vip (line 11)",
        "greater than 0",
    ),
    (
        "cap without period",
        BASE + "caps:\n  per_customer:\n    amount: 300\n",
        "caps.per_customer.period (line 11)",
        "Field required",
    ),
    (
        "a cap over no time at all",
        BASE + "caps:\n  per_customer:\n    amount: 300\n    period: P0D\n",
        "caps.per_customer.period (line 12)",
        "longer than zero",
    ),
    (
        "a cap that outlives the records it counts",
        BASE + "caps:\n  per_customer:\n    amount: 300\n    period: P400D\n"
        "retention:\n  years: 1\n",
        "caps.per_customer.period (line 12)",
        "longer than closed cases are kept (retention.years: 1",
    ),
    (
        "undeclared category",
        BASE + "categories: [delivery]\nadjustments:\n  categories:\n    billing: 2\n",
        "adjustments.categories.billing (line 12)",
        "not one of the policy's",
    ),
    (
        "duplicate category",
        BASE + "categories: [delivery, delivery]\n",
        "categories[1] (line 9)",
        "listed twice",
    ),
    ("a list, not a mapping", "- name: Shop\n", "(top level)", "must be a mapping"),
    ("empty file", "", "(top level)", "must be a mapping"),
    (
        "'no' is not a boolean",
        BASE + "feedback:\n  required_before_close: no\n",
        "feedback.required_before_close (line 10)",
        "valid boolean",
    ),
    (
        "zero retention",
        BASE + "retention:\n  years: 0\n",
        "retention.years (line 10)",
        "greater than or equal to 1",
    ),
    (
        "normal remedy of unknown kind",
        BASE + "normal_remedies:\n  delivery:\n    voucher: 1\n",
        "normal_remedies.delivery.voucher (line 11)",
        "unknown remedy kind 'voucher'",
    ),
    ("float-like authority in TOML", None, "roles.agent.authority", "more decimals"),
    (
        "duplicate SLA target id",
        BASE
        + "sla:\n  targets:\n"
        + "    - {id: fast, step: acknowledge, within: PT1H}\n"
        + "    - {id: fast, step: listen, within: PT1H}\n",
        "sla.targets[1].id (line 12)",
        "target id 'fast' is already used by sla.targets[0]",
    ),
    (
        "a playbook target reusing a policy target's id for another step",
        BASE
        + "playbooks:\n  aggressive:\n    sla:\n"
        + "      - {id: fast, step: listen, within: PT2H}\n"
        + "sla:\n  targets:\n"
        + "    - {id: fast, step: acknowledge, within: PT1H}\n",
        "playbooks.aggressive.sla[0].id (line 12)",
        "target id 'fast' is already used by sla.targets[0] for acknowledge",
    ),
    (
        "a playbook target reusing a policy target's id for another group",
        BASE
        + "playbooks:\n  aggressive:\n    sla:\n"
        + "      - {id: answer, step: close, group: summary, within: P1D}\n"
        + "sla:\n  targets:\n"
        + "    - {id: answer, step: close, group: final, within: P56D}\n",
        "playbooks.aggressive.sla[0].id (line 12)",
        "for close (group final)",
    ),
    (
        "two playbooks using one id for different steps",
        BASE
        + "playbooks:\n  aggressive:\n    sla:\n"
        + "      - {id: fast, step: listen, within: PT2H}\n"
        + "  meek:\n    sla:\n"
        + "      - {id: fast, step: record, within: PT2H}\n",
        "playbooks.meek.sla[0].id (line 15)",
        "already used by playbooks.aggressive.sla[0] for listen",
    ),
    (
        "one id twice in a playbook",
        BASE
        + "playbooks:\n  aggressive:\n    sla:\n"
        + "      - {id: fast, step: listen, within: PT2H, when: {channel: [chat]}}\n"
        + "      - {id: fast, step: listen, within: PT4H}\n"
        + "sla:\n  targets:\n"
        + "    - {id: fast, step: listen, within: PT8H}\n",
        "playbooks.aggressive.sla[1].id (line 13)",
        "target id 'fast' is already used by playbooks.aggressive.sla[0]",
    ),
]


@pytest.mark.parametrize(("name", "text", "where", "what"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_gives_one_clear_error_with_its_location(
    name: str, text: str | None, where: str, what: str
) -> None:
    if text is None:  # the TOML case
        toml = 'name = "Shop"\nversion = "1"\ncurrency = "EUR"\n[roles.agent]\nauthority = 1.005\n'
        with pytest.raises(PolicyFileError) as error:
            parse_policy(toml, file="shop.toml")
    else:
        with pytest.raises(PolicyFileError) as error:
            parse_policy(text, file="shop.yaml")
    assert_one_problem(error.value, where, what)
    assert str(error.value).startswith("policy file shop.")


def test_all_problems_are_reported_at_once() -> None:
    text = (
        BASE.replace("EUR", "EUX").replace("50.00", "-1")
        + "offers:\n  max_per_case: 0\nretention:\n  years: 0\n"
    )
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="shop.yaml")
    assert [p.location for p in error.value.problems] == [
        "currency (line 3)",
        "roles.agent.limits.refund (line 8)",
        "offers.max_per_case (line 10)",
        "retention.years (line 12)",
    ]


def test_cross_field_problems_are_all_reported_with_their_locations() -> None:
    text = BASE.replace("refund: 50.00", "refnd: 50.001") + "categories: [a, a]\n"
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="shop.yaml")
    assert [p.location for p in error.value.problems] == [
        "roles.agent.limits.refnd (line 8)",
        "roles.agent.limits.refnd (line 8)",
        "categories[1] (line 9)",
    ]


def test_a_playbook_may_reuse_a_policy_target_id_for_the_same_step_to_override_it() -> None:
    """An id names one (step, group) throughout the policy: a playbook's target with the
    policy's id and step is that target, timed differently for the complainant type."""
    policy = parse_policy(
        BASE
        + "playbooks:\n  aggressive:\n    sla:\n"
        + "      - {id: ack, step: acknowledge, within: PT1H}\n"
        + "  high-roller:\n    sla:\n"
        + "      - {id: ack, step: acknowledge, within: PT30M}\n"
        + "sla:\n  targets:\n"
        + "    - {id: ack, step: acknowledge, within: PT24H}\n"
    )
    chosen = policy.sla_targets("email", "normal", "standard", "aggressive", None)
    assert [(t.id, t.within) for t in chosen] == [("ack", timedelta(hours=1))]


def test_words_like_no_off_and_on_stay_strings() -> None:
    policy = parse_policy(
        BASE + "categories: [no, off, on, yes]\nadjustments:\n  categories:\n    off: 2\n"
    )
    assert policy.categories == ["no", "off", "on", "yes"]
    assert policy.adjustments.categories == {"off": Decimal(2)}


def test_decimals_are_read_exactly_as_written() -> None:
    policy = parse_policy(BASE.replace("25.00", "25.10"))
    assert policy.roles["agent"].authority == Decimal("25.10")
    assert str(policy.roles["agent"].limits["refund"]) == "50.00"


def test_toml_decimals_are_exact_too() -> None:
    policy = parse_policy(
        'name = "S"\nversion = "1"\ncurrency = "EUR"\n[roles.agent]\nauthority = 0.10\n',
        file="s.toml",
    )
    assert policy.roles["agent"].authority == Decimal("0.10")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P2D", timedelta(days=2)),
        ("PT4H", timedelta(hours=4)),
        ("P1W", timedelta(days=7)),
        ("P1DT12H30M", timedelta(days=1, hours=12, minutes=30)),
        ("PT0.5S", timedelta(seconds=0.5)),
    ],
)
def test_durations_are_iso_8601(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "2D", "P2", "P1M", "P1Y", "PT-1H", "1 day"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def test_the_digest_changes_with_content_not_with_formatting() -> None:
    a = parse_policy(BASE)
    b = parse_policy(BASE.replace("25.00", "25.0").replace("    limits:", "    limits: # note"))
    c = parse_policy(BASE.replace("50.00", "60.00"))
    assert a.digest != c.digest
    assert a.version == c.version
    assert b.roles == a.roles


@pytest.mark.parametrize("name", ["retail", "saas", "fca-financial"])
def test_the_bundled_policies_load(name: str) -> None:
    policy = bundled_policy(name)
    assert policy.roles
    assert policy.digest.startswith("sha256:")


def test_an_unknown_bundled_policy_names_the_known_ones() -> None:
    with pytest.raises(PolicyFileError, match="retail"):
        bundled_policy("casino")


def test_a_missing_file_is_a_policy_file_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_a_file_that_is_not_utf8_is_a_policy_file_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicyFileError, match="not UTF-8"):
        load_policy(path)


def test_the_policy_knows_every_step_and_complainant_type_of_the_engine() -> None:
    from policies.model import COMPLAINANT_TYPES

    assert set(STEP_NAMES) <= set(STEPS)
    assert tuple(t.value for t in ComplainantType) == COMPLAINANT_TYPES


@given(st.text(max_size=400))
def test_the_loader_raises_nothing_but_policy_file_error_on_any_text(text: str) -> None:
    for fmt in ("yaml", "toml"):
        with contextlib.suppress(PolicyFileError):
            parse_policy(text, fmt=fmt)


yaml_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.decimals(allow_nan=True, places=3)
    | st.sampled_from(["P2D", "-P1D", "EUR", "no"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "version",
                    "currency",
                    "roles",
                    "agent",
                    "authority",
                    "limits",
                    "refund",
                    "caps",
                    "offers",
                    "playbooks",
                    "meek",
                    "guidance",
                    "reopen",
                    "window",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "version",
                "currency",
                "roles",
                "caps",
                "offers",
                "playbooks",
                "reopen",
                "adjustments",
                "normal_remedies",
                "categories",
            ]
        ),
        yaml_like,
    )
)
def test_the_loader_raises_nothing_but_policy_file_error_on_any_structure(data: dict) -> None:
    import yaml

    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    with contextlib.suppress(PolicyFileError):
        parse_policy(text)


def test_the_bundled_files_are_shipped_beside_their_expectations() -> None:
    names = {p.name for p in BUNDLED.iterdir()}
    assert {
        "retail.yaml",
        "retail.cases.yaml",
        "saas.toml",
        "saas.cases.yaml",
        "fca-financial.yaml",
        "fca-financial.cases.yaml",
    } <= names


def test_the_currency_code_may_be_written_in_lower_case() -> None:
    """Regression: ``currency: eur`` was refused as "'eur' is not an ISO 4217 currency
    code", though amounts in offers read ``eur`` as EUR."""
    assert parse_policy(BASE.replace("EUR", "eur")).currency == "EUR"
    assert parse_policy(BASE.replace("EUR", "eur")).digest == parse_policy(BASE).digest


# --- review-policies -------------------------------------------------------------------

CALENDAR = """calendars:
  office:
    timezone: Europe/Helsinki
    hours: {mon: ["09:00-17:00"]}
"""


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "1", '"true"'])
def test_escalate_before_offer_when_breached_is_a_strict_boolean(value: str) -> None:
    """`yes`, `no`, `1` or a quoted "true" is a mistake, not a boolean, like every other
    boolean in the file."""
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(BASE + f"sla:\n  escalate_before_offer_when_breached: {value}\n")
    assert "sla.escalate_before_offer_when_breached (line 10)" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("    extra_holidays: [20261224]\n", "calendars.office.extra_holidays[0] (line 13)"),
        (
            "    closures: [{from: 1766534400, to: 2026-12-31}]\n",
            "calendars.office.closures[0].from (line 13)",
        ),
    ],
)
def test_a_holiday_written_as_a_number_is_refused_not_read_as_seconds(
    text: str, where: str
) -> None:
    """`20261224` is not 24 December 2026 read as seconds since 1970 (23 August 1970):
    a date is written as a date."""
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(BASE + CALENDAR + text)
    assert where in str(caught.value)
    assert "2026-12-24" in str(caught.value)


def test_a_date_still_reads_from_yaml_text_and_toml_dates() -> None:
    policy = parse_policy(BASE + CALENDAR + "    extra_holidays: [2026-12-24]\n")
    assert policy.calendars["office"].is_closed(date(2026, 12, 24))
    toml = parse_policy(
        'name = "Shop"\nversion = "1"\ncurrency = "EUR"\n[calendars.office]\n'
        'timezone = "UTC"\nhours = {mon = ["09:00-17:00"]}\nextra_holidays = [2026-12-24]\n',
        fmt="toml",
    )
    assert toml.calendars["office"].is_closed(date(2026, 12, 24))


def test_an_sla_condition_on_an_undeclared_category_is_refused() -> None:
    """A target `when: {category: [delivry]}` would never match a case (the engine only
    takes declared categories): a typo, named like the other undeclared categories."""
    text = (
        BASE
        + "categories: [delivery]\nsla:\n  targets:\n"
        + "  - {id: ack, step: acknowledge, within: PT4H, when: {category: [delivry]}}\n"
        + "playbooks:\n  meek:\n    sla:\n"
        + "    - {id: ack-meek, step: acknowledge, within: PT2H, when: {category: [biling]}}\n"
    )
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text)
    message = str(caught.value)
    assert "sla.targets[0].when.category[0] (line 12): 'delivry' is not one of" in message
    assert "playbooks.meek.sla[0].when.category[0] (line 16): 'biling' is not one of" in message


def test_nested_yaml_aliases_are_read_in_linear_time() -> None:
    """A file of aliases of aliases (nine of nine of ...) is refused quickly, not
    walked once per path through it."""
    text = (
        BASE
        + "x0: &a0 [a, a, a, a, a, a, a, a, a]\n"
        + "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 8))
    )
    started = time.perf_counter()
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text)
    assert time.perf_counter() - started < 5
    assert "x7 (line 16): unknown key 'x7'" in str(caught.value)
