"""Mistakes a policy author makes, each refused when the file loads with its place named
(and nothing loaded), rather than loaded and failing later in the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policies.errors import PolicyFileError
from policies.loader import parse_policy
from tests.policy_texts import BASE, assert_one_problem

CALENDAR = """calendars:
  desk:
    timezone: Europe/Berlin
    country: DE
    subdivision: BY
    hours:
      mon: ["08:00-12:00", "13:00-17:00"]
"""

MISTAKES = [
    (
        "a misspelt key",
        BASE + "offers:\n  max_per_cse: 3\n",
        "offers.max_per_cse (line 10)",
        "unknown key 'max_per_cse' (did you mean 'max_per_case'?); the keys here are: max_per_case",
    ),
    (
        "a misspelt key in a list item",
        BASE + "sla:\n  targets:\n    - {id: ack, step: acknowledge, witin: PT4H}\n",
        "sla.targets[0].witin (line 11)",
        "unknown key 'witin' (did you mean 'within'?)",
    ),
    (
        "a misspelt key under a name the author chose",
        BASE.replace("    limits:", "    limit:"),
        "roles.agent.limit (line 8)",
        "unknown key 'limit' (did you mean 'limits'?); the keys here are: authority, limits",
    ),
    (
        "a top-level key no policy has",
        BASE + "refunds_allowed: yes\n",
        "refunds_allowed (line 9)",
        "unknown key 'refunds_allowed'; the keys here are: name, version, currency, categories,",
    ),
    (
        "a key written with brackets",
        BASE + 'offers:\n  "max_per_case[0]": 3\n',
        "offers.max_per_case[0] (line 10)",
        "unknown key 'max_per_case[0]' (did you mean 'max_per_case'?); the keys here are: "
        "max_per_case",
    ),
    (
        "a top-level key written with brackets",
        BASE + '"roles[agent]": {}\n',
        "roles[agent] (line 9)",
        "unknown key 'roles[agent]'; the keys here are: name, version, currency,",
    ),
    (
        "a misspelt complainant type for a playbook",
        BASE + "playbooks:\n  meak:\n    priority: high\n",
        "playbooks.meak (line 11)",
        "unknown key 'meak' (did you mean 'meek'?); the keys here are: meek, aggressive, "
        "high-roller, rip-off, chronic, unknown",
    ),
    (
        "a misspelt weekday",
        BASE + CALENDAR + '      tues: ["08:00-12:00"]\n',
        "calendars.desk.hours.tues (line 16)",
        "unknown key 'tues' (did you mean 'tue'?); the keys here are: mon, tue, wed, thu, fri, "
        "sat, sun",
    ),
    (
        "a warning percentage listed twice",
        BASE + "sla:\n  warn_at: [50, 80, 80]\n",
        "sla.warn_at[2] (line 10)",
        "80 is listed twice",
    ),
    (
        "a warning percentage of 0 (decision 0058: said 'between 0 and 100')",
        BASE + "sla:\n  warn_at: [0]\n",
        "sla.warn_at[0] (line 10)",
        "0 is not a warning percentage: warn_at takes whole numbers from 1 to 99",
    ),
    (
        "a warning percentage of 100 (the breach)",
        BASE + "sla:\n  warn_at: [50, 100]\n",
        "sla.warn_at[1] (line 10)",
        "100 is not a warning percentage: warn_at takes whole numbers from 1 to 99 (the "
        "breach is at 100)",
    ),
    (
        "a duration longer than any date can hold",
        BASE + "reopen:\n  window: P99999999999D\n",
        "reopen.window (line 10)",
        "too long",
    ),
    (
        "weeks longer than any date can hold",
        BASE + "caps:\n  per_customer:\n    amount: 300\n    period: P9999999999W\n",
        "caps.per_customer.period (line 12)",
        "too long",
    ),
    (
        "an SLA target longer than two years around the clock",
        BASE + "sla:\n  targets:\n    - {id: slow, step: close, within: P800D}\n",
        "sla.targets[0].within (line 11)",
        "more than two years",
    ),
    (
        "a target that can never apply: an earlier one for the step applies to every case",
        BASE
        + "sla:\n  targets:\n"
        + "    - {id: ack, step: acknowledge, within: PT24H}\n"
        + "    - {id: ack-social, step: acknowledge, within: PT1H, when: {channel: [social]}}\n",
        "sla.targets[1] (line 12)",
        "can never apply: sla.targets[0] (ack) comes first",
    ),
    (
        "a target that can never apply: an earlier one covers all its conditions",
        BASE
        + "playbooks:\n  aggressive:\n    sla:\n"
        + "      - {id: a1, step: listen, within: PT1H, when: {channel: [chat, phone]}}\n"
        + "      - {id: a2, step: listen, within: PT2H, when: {channel: [chat], tier: [vip]}}\n",
        "playbooks.aggressive.sla[1] (line 13)",
        "can never apply: playbooks.aggressive.sla[0] (a1) comes first",
    ),
    (
        "a holiday country that does not exist",
        BASE + CALENDAR.replace("country: DE\n    subdivision: BY\n", "country: XX\n"),
        "calendars.desk.country (line 12)",
        "no public holidays are known for country 'XX'",
    ),
    (
        "a subdivision that does not exist",
        BASE + CALENDAR.replace("subdivision: BY", "subdivision: ZZ"),
        "calendars.desk.subdivision (line 13)",
        "no public holidays are known for subdivision 'ZZ' of DE",
    ),
    (
        "overlapping working hours",
        BASE + CALENDAR.replace('"08:00-12:00", "13:00-17:00"', '"08:00-12:00", "11:00-17:00"'),
        "calendars.desk.hours.mon (line 15)",
        "08:00-12:00 and 11:00-17:00 overlap",
    ),
    (
        "an amount written with its currency",
        BASE.replace("refund: 50.00", 'refund: "50.00 EUR"'),
        "roles.agent.limits.refund (line 8)",
        "write the amount alone",
    ),
]


@pytest.mark.parametrize(("name", "text", "where", "what"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_authoring_mistake_is_one_problem_named_with_its_place(
    name: str, text: str, where: str, what: str
) -> None:
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="shop.yaml")
    assert_one_problem(error.value, where, what)


EMPTY = [("shop.yaml", ""), ("shop.toml", ""), ("shop.yaml", "# to do\n"), ("shop.toml", "\n")]


@pytest.mark.parametrize(("file", "text"), EMPTY)
def test_an_empty_file_is_said_to_be_empty_in_yaml_and_toml_alike(file: str, text: str) -> None:
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file=file)
    assert [(p.location, p.message) for p in error.value.problems] == [
        (
            "(top level)",
            "the file is empty: a policy file must be a mapping of keys to values, with at "
            "least name, version and currency",
        )
    ]


def test_a_target_after_one_for_another_group_or_narrower_case_still_applies() -> None:
    """Only a target that no case can reach is refused: one after a narrower target for
    the step, or after one for another group, is the usual first-match-wins ladder."""
    policy = parse_policy(
        BASE
        + "sla:\n  targets:\n"
        + "    - {id: ack-social, step: acknowledge, within: PT1H, when: {channel: [social]}}\n"
        + "    - {id: ack-vip, step: acknowledge, within: PT2H, when: {channel: [social, email]"
        + ", tier: [vip]}}\n"
        + "    - {id: ack, step: acknowledge, within: PT24H}\n"
        + "    - {id: sum, step: close, group: summary, within: P3D}\n"
        + "    - {id: final, step: close, group: final, within: P56D}\n"
    )
    chosen = policy.sla_targets("email", "normal", "vip", "unknown", None)
    assert [t.id for t in chosen] == ["ack-vip", "sum", "final"]


def test_two_years_around_the_clock_is_still_a_target() -> None:
    policy = parse_policy(BASE + "sla:\n  targets:\n    - {id: slow, step: close, within: P104W}\n")
    (target,) = policy.sla.targets
    assert target.within is not None
    assert datetime(2026, 1, 1, tzinfo=UTC) + target.within == datetime(2027, 12, 30, tzinfo=UTC)
