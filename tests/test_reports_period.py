"""Reports over a period (a month, say), for the quality lead's monthly reports: each
report counts what happened in the period, checked by hand against the fixed data set
of tests/test_reports.py (every case opened at START, a Monday 10:00 in Helsinki)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from tests.test_reports import POLICY, REPLACEMENT, START, Shop, build_shop
from workflow import reports
from workflow.cli import main


@pytest.fixture(scope="module")
def shop() -> Shop:
    return build_shop()


def test_regulatory_buckets_count_the_cases_closed_in_the_period(shop: Shop) -> None:
    """Closed after 2 days (A), 20 (B), 40 (D) and 60 (F); E reopened. From day 10 to day
    50: B (within 4 weeks) and D (4-8 weeks)."""
    rows = reports.regulatory_buckets(shop.engine, POLICY.calendars["office"],
                                      since=START + timedelta(days=10),
                                      until=START + timedelta(days=50))  # fmt: skip
    assert [r["cases"] for r in rows] == [0, 1, 1, 0]


def _closed_twice() -> Shop:
    """E of the fixed data set, closed after 3 days and reopened on day 4, is closed
    again on day 13; G, closed after 3 days, reopened on day 4, is still open."""
    s = build_shop()
    s.at(timedelta(days=4))
    s.step("E", "acknowledge")
    for step, data in (("listen", {"note": "n"}), ("record", {"contact": "c"}),
                       ("apologise", {"message": "m"})):  # fmt: skip
        s.step("E", step, **data)
    s.step("E", "offer_remedy", options=[REPLACEMENT])
    s.settle("E", timedelta(days=13))
    s.open("G", "email", "product")
    s.up_to_offer("G", timedelta(hours=2))
    s.step("G", "offer_remedy", options=[REPLACEMENT])
    s.settle("G", timedelta(days=3))
    s.at(timedelta(days=4))
    s.step("G", "reopen", actor="customer:c", reason="broke again")
    return s


def test_each_closing_counts_in_its_period_after_the_case_is_reopened() -> None:
    """A return for the first week (days 0 to 7) counts A's closing (day 2) and E's and
    G's first closings (day 3), all within 3 business days of receipt: reopening them on
    day 4 does not take them out of a period already reported. E's second closing (day
    13, 9 days after its reopening: the receipt of that cycle) counts in the second
    week. Without a period, every closing counts: the sum of the periods."""
    shop = _closed_twice()
    office = POLICY.calendars["office"]
    first = {"since": START, "until": START + timedelta(days=7)}
    second = {"since": START + timedelta(days=7), "until": START + timedelta(days=14)}
    assert [r["cases"] for r in reports.regulatory_buckets(shop.engine, office, **first)] == [
        3, 0, 0, 0,
    ]  # fmt: skip
    assert [r["cases"] for r in reports.regulatory_buckets(shop.engine, office, **second)] == [
        0, 1, 0, 0,
    ]  # fmt: skip
    # A, E, G within 3 business days; B (20 days) and E again (9 days); D; F.
    assert [r["cases"] for r in reports.regulatory_buckets(shop.engine, office)] == [3, 2, 1, 1]


def test_sla_attainment_counts_the_targets_decided_in_the_period(shop: Shop) -> None:
    """From START + 2h: A's acknowledgement (met at 1h) and B's breach (due at 10 min)
    are before it; C's breach falls due at 24h, D, E and F are met at 2h (included)."""
    rows = reports.sla_attainment(shop.engine, since=START + timedelta(hours=2))
    assert rows == [
        {"target": "ack-email", "step": "acknowledge", "channel": "email", "met": 3,
         "breached": 1, "attainment_pct": "75.0"},
    ]  # fmt: skip
    assert reports.sla_attainment(shop.engine, until=START + timedelta(hours=2)) == [
        {"target": "ack-chat", "step": "acknowledge", "channel": "chat", "met": 0,
         "breached": 1, "attainment_pct": "0.0"},
        {"target": "ack-email", "step": "acknowledge", "channel": "email", "met": 1,
         "breached": 0, "attainment_pct": "100.0"},
    ]  # fmt: skip


def test_breaches_are_those_that_fell_due_in_the_period(shop: Shop) -> None:
    rows = reports.breaches(shop.engine, since=START + timedelta(hours=1))
    assert [(r["case_id"], r["target"]) for r in rows] == [("C", "ack-email")]
    early = reports.breaches(shop.engine, until=START + timedelta(hours=1))
    assert [(r["case_id"], r["target"]) for r in early] == [("B", "ack-chat")]


def test_spend_counts_the_offers_made_in_the_period(shop: Shop) -> None:
    """A's and B's offers are made by START + 20 min; D's, E's and F's replacements at
    2h."""
    rows = reports.compensation_spend(shop.engine, since=START + timedelta(minutes=90))
    assert rows == [
        {"kind": "replacement", "currency": "EUR", "paid": "0.00", "offers": 3,
         "approved": 0, "declined": 0, "refused": 0, "accepted": 3},
    ]  # fmt: skip


def test_steps_taken_in_the_period(shop: Shop) -> None:
    taken = reports.time_per_step(shop.engine, since=START + timedelta(days=1))
    rows = {r["step"]: r for r in taken}
    assert rows["acknowledge"]["taken"] == 1  # C's, at 30h
    assert rows["acknowledge"]["mean"] == "30h00"
    assert rows["close"]["taken"] == 5
    assert "listen" not in rows


def test_cases_opened_in_the_period_for_handling_summary_and_recurring(shop: Shop) -> None:
    later = {"since": START + timedelta(minutes=1)}
    assert reports.handling(shop.engine, **later) == []
    assert reports.summary(shop.engine, **later) == [
        {"cases": 0, "closed": 0, "reopen_rate_pct": "0.0", "feedback_mean": ""}
    ]
    assert reports.recurring(shop.engine, **later) == []
    first = {"since": START, "until": START + timedelta(minutes=1)}
    assert len(reports.handling(shop.engine, **first)) == 6
    assert reports.summary(shop.engine, **first) == reports.summary(shop.engine)


def test_a_period_needs_aware_times_in_order() -> None:
    with pytest.raises(ValueError, match="since: naive datetime"):
        reports.period(datetime(2026, 11, 1), None)  # noqa: DTZ001 (the point)
    with pytest.raises(ValueError, match="is not after since"):
        reports.period(START, START)


def test_the_report_command_takes_a_period_in_any_zone(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: shop.engine.store)
    monkeypatch.setattr("workflow.cli.sla_commands._policies", lambda files: [POLICY])
    since = (START + timedelta(days=10)).astimezone(UTC).isoformat()
    until = (START + timedelta(days=50)).isoformat()  # +02:00, Helsinki
    result = CliRunner().invoke(main, ["report", "regulatory", "--store", "memory://",
                                       "--since", since, "--until", until,
                                       "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [r["cases"] for r in json.loads(result.output)] == [0, 1, 1, 0]
    naive = CliRunner().invoke(main, ["report", "summary", "--store", "memory://",
                                      "--since", "2026-11-01T00:00:00"])  # fmt: skip
    assert naive.exit_code == 2
    assert "Invalid value for --since: '2026-11-01T00:00:00' is naive" in naive.output
    swapped = CliRunner().invoke(main, ["report", "summary", "--store", "memory://",
                                        "--since", until, "--until", since])  # fmt: skip
    assert swapped.exit_code == 2
    assert "Invalid value for --until" in swapped.output
    page = CliRunner().invoke(main, ["report", "--format", "html", "--store", "memory://",
                                     "--since", since, "--until", until])  # fmt: skip
    assert page.exit_code == 0, page.output
    assert "<p>Period: from 2026-11-19T08:00:00+00:00 to before 2026-12-29T08:00:00+00:00 " \
        "(UTC).</p>" in page.output  # fmt: skip
