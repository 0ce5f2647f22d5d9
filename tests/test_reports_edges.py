"""Reports on the edges: several currencies, policies not given, subjects spaced apart,
daylight saving at the four-week boundary, and the command line's outputs (CSV formula
cells, an empty CSV, ``-o`` for every format, the HTML page's title and calendar)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from policies.model import Policy
from tests.test_reports import POLICY, REPLACEMENT, START, Settable, refund
from workflow import Engine, Money, Remedy, reports
from workflow.cli import main

HEL = ZoneInfo("Europe/Helsinki")


def _variant(currency: str, version: str, target: str) -> Policy:
    """POLICY with another currency, version and acknowledgement target."""
    return parse_policy(
        f"""
name: shop {version}
version: "{version}"
currency: {currency}
roles:
  agent: {{authority: 50.00}}
sla:
  targets:
    - {{id: {target}, step: acknowledge, within: PT1M}}
feedback:
  required_before_close: false
"""
    )


def _engine(policy: Policy = POLICY, store: MemoryStore | None = None) -> Engine:
    return Engine(store or MemoryStore(), policy=policy, clock=Settable())


def _clock(engine: Engine) -> Settable:
    assert isinstance(engine.clock, Settable)
    return engine.clock


def _open(engine: Engine, cid: str, at: datetime, subject: str = "s") -> None:
    _clock(engine).moment = at
    engine.open_case(actor="system:in", customer={"id": cid, "name": "N"}, channel="email",
                     subject=subject, category="cat", case_id=cid, details="d",
                     occurred_on="2026-10-01")  # fmt: skip


def _to_offer(engine: Engine, cid: str) -> None:
    engine.step(cid, "acknowledge", actor="agent:a")
    for step, data in (("listen", {"note": "n"}), ("record", {"contact": "c"}),
                       ("apologise", {"message": "m"})):  # fmt: skip
        engine.step(cid, step, actor="agent:a", **data)


def _settle(engine: Engine, cid: str, remedy: Remedy, closed_at: datetime) -> None:
    engine.step(cid, "offer_remedy", actor="agent:a", options=[remedy])
    engine.step(cid, "accept_remedy", actor="customer:c", option=1, promise="p",
                due=_clock(engine).now() + timedelta(days=300))  # fmt: skip
    engine.step(cid, "keep_promise", actor="agent:a", evidence="e")
    _clock(engine).moment = closed_at
    engine.step(cid, "close", actor="agent:a")


def test_spend_counts_each_offer_once_in_the_row_of_its_currency() -> None:
    """Two shops (EUR and USD) in one store: each currency's row counts its own offers;
    the counts are not repeated on every currency row of the group."""
    store = MemoryStore()
    usd = _variant("USD", "us-1", "ack-us")
    us_engine = _engine(usd, store)
    _open(us_engine, "U", START)
    _to_offer(us_engine, "U")
    _settle(us_engine, "U", Remedy(kind="refund", amount=Money.of("7", "USD")), START)
    engine = Engine(store, policy=POLICY, previous_policies=[usd], clock=Settable())
    _open(engine, "E", START)
    _to_offer(engine, "E")
    engine.step("E", "offer_remedy", actor="agent:a", options=[refund("5")])
    engine.step("E", "decline_remedy", actor="customer:c")
    _settle(engine, "E", refund("10"), START)
    rows = [(r["currency"], r["paid"], r["offers"], r["declined"], r["accepted"])
            for r in reports.compensation_spend(engine)]  # fmt: skip
    assert rows == [("EUR", "10.00", 2, 1, 1), ("USD", "7.00", 1, 0, 1)]


def test_spend_counts_offers_refused_by_the_approver() -> None:
    """An offer refused by the second person is counted as refused, so offers made add
    up (approved, declined, refused, accepted)."""
    engine = _engine()
    _open(engine, "R", START)
    _to_offer(engine, "R")
    engine.step("R", "offer_remedy", actor="agent:a", options=[refund("90")])
    engine.step("R", "refuse_offer", actor="team-lead:sam", reason="too much")
    [row] = reports.compensation_spend(engine)
    assert (row["offers"], row["approved"], row["declined"], row["refused"]) == (1, 0, 0, 1)


def test_sla_report_does_not_judge_a_case_by_a_policy_it_did_not_run_under() -> None:
    """A case under a policy the engine was not given is left out of the SLA report
    (its targets are unknown), not counted against the current policy's targets."""
    store = MemoryStore()
    old = _engine(_variant("EUR", "old", "ack-old"), store)
    _open(old, "O", START)
    _clock(old).moment = START + timedelta(minutes=5)
    old.step("O", "acknowledge", actor="agent:a")  # late for ack-old, fine for POLICY's
    assert reports.sla_attainment(Engine(store, policy=POLICY, clock=Settable())) == []


def test_recurring_counts_subjects_differing_only_in_spacing_together() -> None:
    engine = _engine()
    for i, subject in enumerate(("Parcel late", "Parcel  late", " PARCEL\tLATE ")):
        _open(engine, f"c{i}", START + timedelta(hours=i), subject)
    assert [(r["subject"], r["count"]) for r in reports.recurring(engine)] == [("parcel late", 3)]


def test_a_case_closed_four_weeks_to_the_minute_across_a_clock_change_is_within_4_weeks() -> None:
    """Received 10:00 on 20 October, closed 10:00 on 17 November (Helsinki time): four
    weeks on the calendar, though 28 days and an hour of elapsed time (clocks went back
    on 25 October)."""
    engine = _engine()
    received = datetime(2026, 10, 20, 10, 0, tzinfo=HEL)
    _open(engine, "D", received)
    _to_offer(engine, "D")
    _settle(engine, "D", REPLACEMENT, datetime(2026, 11, 17, 10, 0, tzinfo=HEL))
    rows = reports.regulatory_buckets(engine, POLICY.calendars["office"])
    assert [r["cases"] for r in rows] == [0, 1, 0, 0]


def test_handling_rounds_the_mean_feedback_score_as_the_summary_does() -> None:
    engine = _engine()
    _open(engine, "F", START)
    _to_offer(engine, "F")
    engine.step("F", "offer_remedy", actor="agent:a", options=[REPLACEMENT])
    engine.step("F", "accept_remedy", actor="customer:c", option=1, promise="p",
                due=START + timedelta(days=9))  # fmt: skip
    engine.step("F", "keep_promise", actor="agent:a", evidence="e")
    engine.step("F", "request_feedback", actor="agent:a")
    for score in (1, 1, 2):
        engine.step("F", "record_feedback", actor="customer:c", score=score)
    assert reports.handling(engine)[0]["feedback"] == "1.33"


# -- the command line ------------------------------------------------------------------


def _cli(engine: Engine, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: engine.store)
    monkeypatch.setattr("workflow.cli.sla_commands._policies", lambda files: [engine.policy])
    return CliRunner().invoke(main, ["report", *args])


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _engine()
    subjects = ['=HYPERLINK("http://evil","x")', "+1", "-2", "@SUM(A1)", 'a, "b"']
    for i, subject in enumerate(subjects):
        _open(engine, f"c{i}", START, subject)
    result = _cli(engine, monkeypatch, "recurring", "--store", "x://", "--format", "csv")
    assert result.exit_code == 0, result.output
    cells = sorted(row["subject"] for row in csv.DictReader(io.StringIO(result.output)))
    assert cells == ["'+1", "'-2", '\'=hyperlink("http://evil","x")', "'@sum(a1)", 'a, "b"']


def test_an_empty_csv_report_is_its_header_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _cli(_engine(), monkeypatch, "sla", "--store", "x://", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["target,step,channel,met,breached,attainment_pct"]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_output_option_writes_every_format_to_the_file(
    fmt: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    out = tmp_path / f"summary.{fmt}"
    result = _cli(_engine(), monkeypatch, "summary", "--store", "x://", "--format", fmt,
                  "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert "reopen_rate_pct" in out.read_text()
    if fmt == "json":
        assert json.loads(out.read_text())[0]["cases"] == 0


def test_the_html_title_does_not_show_the_store_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql+psycopg://shop:s3cret@db.example:5432/complaints"
    result = _cli(_engine(), monkeypatch, "summary", "--store", url, "--format", "html")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "postgresql+psycopg://shop:***@db.example:5432/complaints" in result.output


def test_the_html_report_refuses_an_unknown_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _cli(_engine(), monkeypatch, "summary", "--store", "x://", "--format", "html",
                  "--calendar", "ofice")  # fmt: skip
    assert result.exit_code == 2  # a usage error naming --calendar (decision 0063)
    assert "Invalid value for '--calendar': there is no calendar 'ofice' in the policy" in (
        result.output
    )


def test_the_sla_report_command_refuses_cases_whose_policy_was_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    _open(_engine(_variant("EUR", "old", "ack-old"), store), "O", START)
    engine = Engine(store, policy=POLICY, clock=Settable())
    result = _cli(engine, monkeypatch, "sla", "--store", "x://")
    assert result.exit_code == 1
    assert "not given" in result.output
    assert "--policy" in result.output


def test_reopen_rate_leaves_withdrawn_cases_out() -> None:
    """Only a closed case can be reopened: a withdrawn case is not in the rate's base.
    A closed, B closed and reopened, W withdrawn: 1 of 2, not 1 of 3."""
    engine = _engine()
    for cid in ("A", "B"):
        _open(engine, cid, START)
        _to_offer(engine, cid)
        _settle(engine, cid, REPLACEMENT, START + timedelta(days=1))
    engine.step("B", "reopen", actor="customer:c", reason="again")
    _open(engine, "W", START)
    engine.step("W", "withdraw", actor="customer:c", reason="sorted out")
    assert reports.summary(engine)[0]["reopen_rate_pct"] == "50.0"


def test_an_amount_too_long_for_its_minor_units_is_shown_as_it_is() -> None:
    """Stored before offers were limited to 15 digits, 10^30 EUR cannot be written to
    the cent within ``Decimal``'s 28 digits: the report shows it as it is."""
    from decimal import Decimal

    from workflow.reports import _money

    assert _money(Decimal("1E+30"), "EUR") == "1E+30"
    assert _money(Decimal("40"), "EUR") == "40.00"


# -- the HTML page against the JSON reports ------------------------------------------------


class _Page(HTMLParser):
    """The tables of an HTML report (under each ``h2``: header and rows, as text), the
    value labels of its bar charts, and the names of every element and attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section = ""
        self.tables: dict[str, list[list[str]]] = {}
        self.bars: dict[str, list[str]] = {}
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self._in: list[str] = []
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self._in.append(tag)
        self._text = ""
        if tag == "tr":
            self.tables.setdefault(self.section, []).append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self.section = self._text
        elif tag in ("td", "th"):
            self.tables[self.section][-1].append(self._text)
        elif tag == "text":
            self.bars.setdefault(self.section, []).append(self._text)
        if self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        self._text += data


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _cell(value: Any) -> str:
    return str(value)


def test_every_figure_in_the_html_page_is_the_json_reports_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each table under its heading holds the rows ``--format json`` gives for the same
    store, and each bar's label is the figure of its row in the table beside it (the
    label was the figure as a float: ``80%`` for ``80.0``)."""
    from tests.test_reports import Shop

    shop = Shop()
    shop.open("A", "email", "delivery")
    shop.up_to_offer("A", timedelta(hours=1))
    shop.step("A", "offer_remedy", options=[refund("40")])
    shop.settle("A", timedelta(days=2), score=5)
    shop.open("B", "chat", "billing")
    shop.up_to_offer("B", timedelta(minutes=20))
    shop.step("B", "offer_remedy", options=[refund("12.5")])
    shop.settle("B", timedelta(days=40), score=4)
    shop.open("C", "email", "delivery")
    result = _cli(shop.engine, monkeypatch, "summary", "--store", "x://", "--format", "html")
    assert result.exit_code == 0, result.output
    page = _page(result.output)
    sections = {
        "sla": "SLA attainment",
        "breaches": "SLA breaches",
        "steps": "Time per checklist step",
        "spend": "Compensation by kind",
        "summary": "Summary",
        "recurring": "Recurring complaints",
        "handling": "Handling per case",
        "regulatory": "Resolution time (regulatory buckets)",
    }
    for name, heading in sections.items():
        rows = json.loads(_cli(shop.engine, monkeypatch, name, "--store", "x://",
                               "--format", "json").output)  # fmt: skip
        assert rows, name
        header, *cells = page.tables[heading]
        assert header == list(rows[0]), name
        assert cells == [[_cell(v) for v in row.values()] for row in rows], name
    sla_rows = page.tables["SLA attainment"][1:]
    assert page.bars["SLA attainment"][1::2] == [f"{row[-1]}%" for row in sla_rows]
    assert "80.0%" not in page.bars["SLA attainment"]  # (the figures here are 100.0 and 0.0)
    buckets = page.tables["Resolution time (regulatory buckets)"][1:]
    assert page.bars["Resolution time (regulatory buckets)"][1::2] == [b[1] for b in buckets]


def test_a_chart_shows_a_huge_count_as_the_table_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a bucket of 1234567 cases was labelled ``1.23457e+06``."""
    rows = [{"bucket": bucket, "cases": n} for bucket, n in
            zip(reports.BUCKETS, (1234567, 0, 10**30, 1), strict=True)]  # fmt: skip
    monkeypatch.setattr(reports, "regulatory_buckets", lambda engine, calendar, **_: rows)
    result = _cli(_engine(), monkeypatch, "summary", "--store", "x://", "--format", "html")
    assert result.exit_code == 0, result.output
    labels = _page(result.output).bars["Resolution time (regulatory buckets)"]
    assert labels[1::2] == ["1234567", "0", str(10**30), "1"]


def test_the_html_page_groups_spend_as_by_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: ``--by agent`` was ignored by ``--format html`` (always per kind)."""
    engine = _engine()
    _open(engine, "A", START)
    _to_offer(engine, "A")
    _settle(engine, "A", refund("40"), START + timedelta(days=1))
    result = _cli(engine, monkeypatch, "spend", "--store", "x://", "--format", "html",
                  "--by", "agent")  # fmt: skip
    assert result.exit_code == 0, result.output
    header, *rows = _page(result.output).tables["Compensation by agent"]
    assert (header[0], rows) == ("agent", [["agent:a", "EUR", "40.00", "1", "0", "0", "0", "1"]])
    bad = _cli(engine, monkeypatch, "spend", "--store", "x://", "--format", "html",
               "--by", "mood")  # fmt: skip
    assert bad.exit_code == 2  # the option named, not the library's ``by`` (decision 0058)
    assert "Error: Invalid value for '--by': 'mood' is not one of 'kind', 'agent'" in bad.output


def test_the_html_title_does_not_show_a_password_given_as_a_url_parameter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libpq reads ``?password=`` too; it is masked like one in the URL's user part."""
    url = "postgresql+psycopg://shop@db.example/complaints?sslmode=require&password=s3cret"
    result = _cli(_engine(), monkeypatch, "summary", "--store", url, "--format", "html")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "sslmode=require&amp;password=***" in result.output


NASTY = "</style></script><script>alert(1)</script>\"'&<b onmouseover=x>"


def test_every_text_from_users_is_escaped_in_the_html_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Subjects, case and customer ids, agent ids, remedy kinds and target ids: every
    text is shown as text, nothing becomes an element or an attribute, and the page
    fetches nothing (no script, no link, no image, no URL but the SVG namespace)."""
    policy = parse_policy(
        """
name: shop
version: "1"
currency: EUR
roles:
  agent: {authority: 1000000000.00}
remedy_kinds:
  goodwill_call: {description: a call, monetary: true}
sla:
  targets:
    - {id: ack-x, step: acknowledge, within: PT1M}
calendars:
  office: {timezone: Europe/Helsinki, country: FI, hours: {mon: ["09:00-17:00"]}}
feedback:
  required_before_close: false
"""
    )
    engine = _engine(policy)
    _clock(engine).moment = START
    engine.open_case(actor=f"agent:{NASTY}", customer={"id": NASTY, "name": "N"},
                     channel="email", subject=NASTY, case_id=NASTY, category="cat",
                     details=NASTY, occurred_on="2026-10-01")  # fmt: skip
    _to_offer(engine, NASTY)
    big = Remedy(kind="goodwill_call", amount=Money.of("999999999.99", "EUR"))
    engine.step(NASTY, "offer_remedy", actor=f"agent:{NASTY}", options=[big])
    for by in ("kind", "agent", "customer"):
        result = _cli(engine, monkeypatch, "spend", "--store", "x://", "--format", "html",
                      "--by", by)  # fmt: skip
        assert result.exit_code == 0, result.output
        page = _page(result.output)
        assert page.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2",
                             "p", "table", "thead", "tbody", "tr", "th", "td", "svg", "text",
                             "rect"}  # fmt: skip
        assert page.attributes <= {"lang", "charset", "xmlns", "width", "height", "role",
                                   "x", "y", "fill"}  # fmt: skip
        assert set(re.findall(r"https?://[^\"' ]*", result.output)) == {
            "http://www.w3.org/2000/svg"
        }
        cells = [cell for rows in page.tables.values() for row in rows for cell in row]
        assert NASTY in cells  # shown as the text it is
        assert f"agent:{NASTY}" in cells or by != "agent"


def test_the_html_page_of_an_empty_store_has_every_section_and_no_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _cli(_engine(), monkeypatch, "summary", "--store", "x://", "--format", "html")
    assert result.exit_code == 0, result.output
    page = _page(result.output)
    assert page.bars == {"Resolution time (regulatory buckets)": [
        text for bucket in reports.BUCKETS for text in (bucket, "0")
    ]}  # fmt: skip
    assert 'width="0.0" height="16"' in result.output
    assert page.tables["Summary"] == [["cases", "closed", "reopen_rate_pct", "feedback_mean"],
                                      ["0", "0", "0.0", ""]]  # fmt: skip
    assert "SLA attainment" not in page.tables  # "(no rows)", no table and no chart


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "0h00"), (15, "0h15"), (75, "1h15"), (-15, "-0h15"), (-75, "-1h15"), (-60, "-1h00")],
)
def test_a_span_is_written_in_hours_and_minutes_with_its_sign(minutes: int, text: str) -> None:
    """Regression: -15 minutes (a history whose times go back, which verify flags) was
    written ``-1h45``: floor division of a negative span."""
    from workflow.reports import _duration

    assert _duration(timedelta(minutes=minutes, seconds=30 if minutes >= 0 else -30)) == text


def test_the_html_page_needs_no_report_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every report is on the page: NAME is optional with ``--format html`` (given, it is
    accepted and changes nothing); every other format still needs it."""
    engine = _engine()
    _open(engine, "A", START)
    without = _cli(engine, monkeypatch, "--store", "x://", "--format", "html")
    assert without.exit_code == 0, without.output
    named = _cli(engine, monkeypatch, "summary", "--store", "x://", "--format", "html")
    assert named.output == without.output
    for fmt in ("table", "json", "csv"):
        missing = _cli(engine, monkeypatch, "--store", "x://", "--format", fmt)
        assert missing.exit_code == 2, missing.output
        assert "Missing argument 'NAME'" in missing.output
        assert "sla, breaches, steps, spend, handling, summary, recurring, regulatory" in (
            missing.output
        )
        assert "--format html" in missing.output


def test_the_regulatory_report_without_a_calendar_names_the_bundled_policies_with_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _engine(_variant("EUR", "2", "ack"))  # no calendars
    result = _cli(engine, monkeypatch, "regulatory", "--store", "x://")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: the regulatory report needs a policy with a calendar (--calendar chooses "
        "one): pass the cases' policy file with --policy; --policy bundled:fca-financial "
        "and --policy bundled:retail have one"
    ]


@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("sqlite:///complaintflow-demo.db", "sqlite:///complaintflow-demo.db"),
        ("sqlite:////var/lib/cases.db", "sqlite:////var/lib/cases.db"),
        ("postgresql+psycopg://shop:s3cret@db.example:5432/complaints?password=s3cret",
         "postgresql+psycopg://shop:***@db.example:5432/complaints?password=***"),
    ],
)  # fmt: skip
def test_the_html_title_shows_the_store_url_as_given_but_its_passwords(
    monkeypatch: pytest.MonkeyPatch, url: str, title: str
) -> None:
    """Regression: the title read ``sqlite:/complaintflow-demo.db`` (the ``//`` lost)."""
    result = _cli(_engine(), monkeypatch, "--store", url, "--format", "html")
    assert result.exit_code == 0, result.output
    assert f"<title>complaintflow report: {title}</title>" in result.output
    assert "s3cret" not in result.output


def test_store_urls_in_messages_mask_a_password_parameter_too() -> None:
    """``adapters.sql.shown_url``, the one function that shows a store URL (the HTML
    title used its own copy): libpq reads ``?password=`` as well as the user part's."""
    from adapters.sql import shown_url

    assert shown_url("postgresql+psycopg://shop@db/c?sslmode=require&password=s3cret") == (
        "postgresql+psycopg://shop@db/c?sslmode=require&password=***"
    )
    assert shown_url("postgresql://u:pw@h/db?PASSWORD=x&pwd=y") == (
        "postgresql://u:***@h/db?PASSWORD=***&pwd=***"
    )
