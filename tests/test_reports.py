"""Reports checked against hand-computed figures on a fixed data set (frozen clock)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from workflow import Engine, Money, Remedy, reports
from workflow.cli import main

HEL = ZoneInfo("Europe/Helsinki")
START = datetime(2026, 11, 9, 10, 0, tzinfo=HEL)  # Monday
POLICY = parse_policy(
    """
name: report shop
version: "1"
currency: EUR
roles:
  agent: {authority: 50.00}
  team-lead: {authority: 200.00}
calendars:
  office:
    timezone: Europe/Helsinki
    country: FI
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
            thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
sla:
  targets:
    - {id: ack-chat, step: acknowledge, within: PT10M, when: {channel: [chat]}}
    - {id: ack-email, step: acknowledge, within: PT24H}
feedback:
  required_before_close: false
"""
)
REPLACEMENT = Remedy(kind="replacement")


def refund(amount: str) -> Remedy:
    return Remedy(kind="refund", amount=Money.of(amount, "EUR"))


class Settable:
    """A clock each case's story can set: every case starts at START."""

    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        return self.moment


class Shop:
    def __init__(self) -> None:
        self.clock = Settable()
        self.engine = Engine(MemoryStore(), policy=POLICY, clock=self.clock)

    def at(self, delta: timedelta) -> None:
        self.clock.moment = START + delta

    def open(self, cid: str, channel: str, category: str) -> None:
        self.at(timedelta(0))
        self.engine.open_case(actor="system:in", customer={"id": cid, "name": "N"},
                              channel=channel, subject="s", category=category, case_id=cid,
                              occurred_on="2026-11-08", details="d")  # fmt: skip

    def step(self, cid: str, step: str, actor: str = "agent:alice", **data: Any) -> None:
        self.engine.step(cid, step, actor=actor, **data)

    def up_to_offer(self, cid: str, ack_after: timedelta) -> None:
        self.at(ack_after)
        self.step(cid, "acknowledge")
        for step, data in (("listen", {"note": "n"}), ("record", {"contact": "c"}),
                           ("apologise", {"message": "m"})):  # fmt: skip
            self.step(cid, step, **data)

    def settle(self, cid: str, closed_after: timedelta, score: int | None = None) -> None:
        self.step(cid, "accept_remedy", actor="customer:c", option=1, promise="p",
                  due=self.clock.now() + timedelta(days=90))  # fmt: skip
        self.step(cid, "keep_promise", evidence="e")
        if score is not None:
            self.step(cid, "request_feedback")
            self.step(cid, "record_feedback", actor="customer:c", score=score)
        self.at(closed_after)
        self.step(cid, "close")


@pytest.fixture(scope="module")
def shop() -> Shop:
    return build_shop()


def build_shop() -> Shop:
    """The fixed data set the reports are checked against."""
    s = Shop()
    # A: email, acknowledged after an hour, refund 40, score 5, closed after 2 days.
    s.open("A", "email", "delivery")
    s.up_to_offer("A", timedelta(hours=1))
    s.step("A", "offer_remedy", options=[refund("40")])
    s.settle("A", timedelta(days=2), score=5)
    # B: chat, acknowledged after 20 min (breach); a coupon declined; refund 90 approved
    # by a team lead; score 3; closed after 20 days.
    s.open("B", "chat", "billing")
    s.up_to_offer("B", timedelta(minutes=20))
    s.step("B", "offer_remedy", options=[Remedy(kind="coupon", amount=Money.of("10", "EUR"))])
    s.step("B", "decline_remedy", actor="customer:c")
    s.step("B", "offer_remedy", options=[refund("90")])
    s.step("B", "approve_offer", actor="team-lead:sam")
    s.settle("B", timedelta(days=20), score=3)
    # C: email, acknowledged after 30 hours (breach); transferred once, escalated once;
    # still open.
    s.open("C", "email", "delivery")
    s.at(timedelta(hours=30))
    s.step("C", "acknowledge")
    s.step("C", "assign", to="alice")
    s.step("C", "assign", to="bob")
    s.step("C", "escalate", reason="angry", to_role="team-lead")
    # D: closed after 40 days; E: closed after 3 days and reopened; F: closed after 60 days.
    for cid, days in (("D", 40), ("E", 3), ("F", 60)):
        s.open(cid, "email", "product")
        s.up_to_offer(cid, timedelta(hours=2))
        s.step(cid, "offer_remedy", options=[REPLACEMENT])
        s.settle(cid, timedelta(days=days))
    s.at(timedelta(days=4))
    s.step("E", "reopen", actor="customer:c", reason="broke again")
    return s


def test_sla_attainment_per_target_and_channel(shop: Shop) -> None:
    assert reports.sla_attainment(shop.engine) == [
        {"target": "ack-chat", "step": "acknowledge", "channel": "chat", "met": 0,
         "breached": 1, "attainment_pct": "0.0"},
        {"target": "ack-email", "step": "acknowledge", "channel": "email", "met": 4,
         "breached": 1, "attainment_pct": "80.0"},
    ]  # fmt: skip


def test_compensation_spend_per_kind_with_approvals_and_declines(shop: Shop) -> None:
    assert reports.compensation_spend(shop.engine) == [
        {"kind": "coupon", "currency": "EUR", "paid": "0.00", "offers": 1, "approved": 0,
         "declined": 1, "refused": 0, "accepted": 0},
        {"kind": "refund", "currency": "EUR", "paid": "130.00", "offers": 2, "approved": 1,
         "declined": 0, "refused": 0, "accepted": 2},
        {"kind": "replacement", "currency": "EUR", "paid": "0.00", "offers": 3, "approved": 0,
         "declined": 0, "refused": 0, "accepted": 3},
    ]  # fmt: skip
    by_agent = reports.compensation_spend(shop.engine, by="agent")
    assert [(r["agent"], r["paid"], r["offers"]) for r in by_agent] == [
        ("agent:alice", "130.00", 6),
    ]


def test_handling_counts_transfers_escalations_and_reopenings(shop: Shop) -> None:
    rows = {r["case_id"]: r for r in reports.handling(shop.engine)}
    assert (rows["C"]["transfers"], rows["C"]["escalations"], rows["C"]["state"]) == (
        1, 1, "escalated",
    )  # fmt: skip
    assert rows["E"]["reopened"] == 1
    assert (rows["A"]["feedback"], rows["B"]["feedback"]) == ("5.00", "3.00")


def test_summary_reopen_rate_and_feedback(shop: Shop) -> None:
    assert reports.summary(shop.engine) == [
        {"cases": 6, "closed": 4, "reopen_rate_pct": "20.0", "feedback_mean": "4.00"}
    ]


def test_regulatory_buckets(shop: Shop) -> None:
    """A (2 days) and E (3 days, before its reopening: every closing counts), B (20
    days), D (40), F (60)."""
    rows = reports.regulatory_buckets(shop.engine, POLICY.calendars["office"])
    assert rows == [
        {"bucket": "within 3 business days", "cases": 2},
        {"bucket": "after 3 business days, within 4 weeks", "cases": 1},
        {"bucket": "4-8 weeks", "cases": 1},
        {"bucket": "over 8 weeks", "cases": 1},
    ]


def test_the_regulatory_buckets_say_that_they_do_not_overlap(shop: Shop) -> None:
    """A, closed after 2 days, is in the first bucket only: a second bucket labelled
    "within 4 weeks" alone read as if it held every case closed within 4 weeks (A and
    B), and a regulator's return copied from it would under-count."""
    rows = reports.regulatory_buckets(shop.engine, POLICY.calendars["office"])
    within_four_weeks = [r for r in rows if r["bucket"].endswith("within 4 weeks")]
    assert within_four_weeks == [{"bucket": "after 3 business days, within 4 weeks", "cases": 1}]


def test_the_report_command_prints_table_json_and_csv(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: shop.engine.store)
    monkeypatch.setattr("workflow.cli.sla_commands._policies", lambda files: [POLICY])
    runner = CliRunner()
    table = runner.invoke(main, ["report", "summary", "--store", "x://"])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[1].split() == ["6", "4", "20.0", "4.00"]
    as_json = runner.invoke(main, ["report", "regulatory", "--store", "x://", "--format", "json"])
    assert [r["cases"] for r in __import__("json").loads(as_json.output)] == [2, 1, 1, 1]
    as_csv = runner.invoke(main, ["report", "spend", "--store", "x://", "--format", "csv",
                                  "--by", "category"])  # fmt: skip
    assert as_csv.output.splitlines()[0] == (
        "category,currency,paid,offers,approved,declined,refused,accepted"
    )


def test_recurring_complaints_per_week_flag_the_rising_ones() -> None:
    engine = Engine(MemoryStore(), policy=POLICY, clock=Settable())
    clock = engine.clock
    assert isinstance(clock, Settable)
    plan = [(0, "delivery", "Parcel late"), (1, "delivery", "parcel late "),
            (7, "delivery", "Parcel late"), (8, "delivery", "Parcel late"),
            (9, "delivery", "Parcel late"), (8, "billing", "Charged twice")]  # fmt: skip
    for i, (day, category, subject) in enumerate(plan):
        clock.moment = START + timedelta(days=day)
        engine.open_case(actor="system:in", customer={"id": f"c{i}", "name": "N"},
                         channel="web", subject=subject, category=category)  # fmt: skip
    rows = [(r["category"], r["subject"], r["week"], r["count"], r["previous_week"], r["rising"])
            for r in reports.recurring(engine)]  # fmt: skip
    assert rows == [
        ("billing", "charged twice", "2026-W47", 1, 0, False),
        ("delivery", "parcel late", "2026-W46", 2, 0, True),
        ("delivery", "parcel late", "2026-W47", 3, 2, True),
    ]


def test_the_html_report_is_one_self_contained_page_with_charts(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: shop.engine.store)
    monkeypatch.setattr("workflow.cli.sla_commands._policies", lambda files: [POLICY])
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", "summary", "--store", "x://", "--format", "html", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2  # SLA attainment and the regulatory buckets
    assert "<td>80.0</td>" in page  # ack-email attainment, as in the sla report
    assert "within 3 business days" in page
    assert "src=" not in page
    assert "<script" not in page
    assert 'href="http' not in page


def test_time_per_checklist_step(shop: Shop) -> None:
    rows = {r["step"]: r for r in reports.time_per_step(shop.engine)}
    # acknowledge: A 1h, B 20 min, C 30h, D/E/F 2h each (E was reopened but not
    # acknowledged again). Sorted: 0h20 1h 2h 2h 2h 30h.
    assert (rows["acknowledge"]["taken"], rows["acknowledge"]["median"]) == (6, "2h00")
    assert rows["acknowledge"]["mean"] == "6h13"  # (20 + 60 + 3*120 + 1800) / 6 minutes
    # close: A after 2 days, B 20 days, D 40, E 3, F 60 (from keep_promise or feedback).
    assert rows["close"]["taken"] == 5


def test_breaches_of_the_fixed_data_set_one_row_each(shop: Shop) -> None:
    """B (chat) acknowledged after 20 minutes and C (email) after 30 hours: each breach
    recorded with the late step, at its time (START is 08:00 UTC)."""
    assert reports.breaches(shop.engine) == [
        {"case_id": "B", "target": "ack-chat", "step": "acknowledge", "channel": "chat",
         "due_at": "2026-11-09T08:10:00+00:00", "breached_at": "2026-11-09T08:20:00+00:00",
         "met_later": True, "met_at": "2026-11-09T08:20:00+00:00", "assignee": ""},
        {"case_id": "C", "target": "ack-email", "step": "acknowledge", "channel": "email",
         "due_at": "2026-11-10T08:00:00+00:00", "breached_at": "2026-11-10T14:00:00+00:00",
         "met_later": True, "met_at": "2026-11-10T14:00:00+00:00", "assignee": ""},
    ]  # fmt: skip
    # As many as the sla report counts breached, per target and channel.
    counted = {(r["target"], r["channel"]): r["breached"] for r in reports.sla_attainment(
        shop.engine)}  # fmt: skip
    listed: dict[tuple[str, str], int] = {}
    for row in reports.breaches(shop.engine):
        key = (row["target"], row["channel"])
        listed[key] = listed.get(key, 0) + 1
    assert listed == {key: n for key, n in counted.items() if n}


BREACH_POLICY = parse_policy(
    """
name: breach shop
version: "1"
currency: EUR
roles:
  agent: {authority: 50.00}
sla:
  targets:
    - {id: ack-chat, step: acknowledge, within: PT10M, when: {channel: [chat]}}
    - {id: ack-email, step: acknowledge, within: PT24H}
    - {id: feedback-asked, step: request_feedback, within: PT1H, start: previous_step}
feedback:
  required_before_close: false
"""
)


def test_breaches_found_by_the_sweeper_with_assignee_met_or_not_and_per_cycle() -> None:
    """G (chat): assigned to alice at +5 min, the sweeper records the acknowledgement's
    breach (due +10 min) at +15 min, acknowledged at +1 h. H (email): the sweeper
    records its breach (due +24 h) at +25 h; withdrawn unacknowledged. K (email): the
    promise kept at +1 h, feedback not asked within the hour (the sweeper at +3 h),
    closed without it and reopened; asked in the second cycle, which does not meet the
    first cycle's breach. START is 08:00 UTC."""
    shop = Shop()
    shop.engine = Engine(MemoryStore(), policy=BREACH_POLICY, clock=shop.clock)
    tick = shop.engine.tick
    shop.open("G", "chat", "delivery")
    shop.open("H", "email", "delivery")
    shop.open("K", "email", "delivery")
    shop.at(timedelta(minutes=5))
    shop.step("G", "assign", to="alice")
    shop.at(timedelta(minutes=15))
    tick()
    shop.at(timedelta(hours=1))
    shop.step("G", "acknowledge")
    shop.up_to_offer("K", timedelta(hours=1))
    shop.step("K", "offer_remedy", options=[REPLACEMENT])
    shop.step("K", "accept_remedy", actor="customer:c", option=1, promise="p",
              due=shop.clock.now() + timedelta(days=9))  # fmt: skip
    shop.step("K", "keep_promise", evidence="e")
    shop.at(timedelta(hours=3))
    tick()
    shop.at(timedelta(hours=4))
    shop.step("K", "close")
    shop.at(timedelta(hours=5))
    shop.step("K", "reopen", actor="customer:c", reason="again")
    shop.up_to_offer("K", timedelta(hours=5, minutes=10))
    shop.step("K", "offer_remedy", options=[REPLACEMENT])
    shop.step("K", "accept_remedy", actor="customer:c", option=1, promise="p",
              due=shop.clock.now() + timedelta(days=9))  # fmt: skip
    shop.step("K", "keep_promise", evidence="e")
    shop.step("K", "request_feedback")
    shop.at(timedelta(hours=25))
    tick()
    shop.at(timedelta(hours=26))
    shop.step("H", "withdraw", actor="customer:c", reason="sorted out")
    rows = reports.breaches(shop.engine)
    assert rows == [
        {"case_id": "G", "target": "ack-chat", "step": "acknowledge", "channel": "chat",
         "due_at": "2026-11-09T08:10:00+00:00", "breached_at": "2026-11-09T08:15:00+00:00",
         "met_later": True, "met_at": "2026-11-09T09:00:00+00:00", "assignee": "alice"},
        {"case_id": "K", "target": "feedback-asked", "step": "request_feedback",
         "channel": "email", "due_at": "2026-11-09T10:00:00+00:00",
         "breached_at": "2026-11-09T11:00:00+00:00", "met_later": False, "met_at": "",
         "assignee": ""},
        {"case_id": "H", "target": "ack-email", "step": "acknowledge", "channel": "email",
         "due_at": "2026-11-10T08:00:00+00:00", "breached_at": "2026-11-10T09:00:00+00:00",
         "met_later": False, "met_at": "", "assignee": ""},
    ]  # fmt: skip


def test_the_breaches_report_command_in_every_format(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import csv
    import io
    import json

    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: shop.engine.store)
    monkeypatch.setattr("workflow.cli.sla_commands._policies", lambda files: [POLICY])
    runner = CliRunner()
    table = runner.invoke(main, ["report", "breaches", "--store", "x://"])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split() == [
        "case_id", "target", "step", "channel", "due_at", "breached_at", "met_later",
        "met_at", "assignee",
    ]  # fmt: skip
    assert table.output.splitlines()[1].split() == [
        "B", "ack-chat", "acknowledge", "chat", "2026-11-09T08:10:00+00:00",
        "2026-11-09T08:20:00+00:00", "True", "2026-11-09T08:20:00+00:00",
    ]  # fmt: skip
    as_json = runner.invoke(main, ["report", "breaches", "--store", "x://", "--format", "json"])
    assert json.loads(as_json.output) == reports.breaches(shop.engine)
    as_csv = runner.invoke(main, ["report", "breaches", "--store", "x://", "--format", "csv"])
    assert [row["case_id"] for row in csv.DictReader(io.StringIO(as_csv.output))] == ["B", "C"]
    out = tmp_path / "report.html"
    page = runner.invoke(main, ["report", "--store", "x://", "--format", "html", "-o", str(out)])
    assert page.exit_code == 0, page.output
    html = out.read_text()
    assert "<h2>SLA breaches</h2>" in html
    assert "<td>2026-11-10T14:00:00+00:00</td>" in html
