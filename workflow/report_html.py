"""One self-contained HTML file with the reports and bar charts (inline SVG, no scripts,
no external files), for a quality lead who would rather look than read."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from policies.calendar import WorkingCalendar
from workflow import reports
from workflow.engine import Engine

Row = dict[str, Any]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:70rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem}
th{background:#f3f3f3;text-align:left}svg text{font-size:12px}
"""


def _table(rows: list[Row]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar_chart(bars: list[tuple[str, str]], *, unit: str = "", width: int = 520) -> str:
    """Horizontal bars as inline SVG: ``(label, figure)`` pairs, each figure a report's
    own text for a number (``"80.0"``, ``"1234567"``), shown as it is; only the bars'
    lengths are computed from it."""
    if not bars:
        return ""
    figures = [Decimal(figure) for _, figure in bars]
    top = max(figures) or Decimal(1)
    row = 22
    label_width = 220
    room = width - label_width - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{row * len(bars) + 4}" role="img">']  # fmt: skip
    for i, ((label, figure), value) in enumerate(zip(bars, figures, strict=True)):
        y = i * row + 2
        length = float(room * max(value, Decimal(0)) / top)  # pixels, not a figure
        parts.append(
            f'<text x="0" y="{y + 14}">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="16" fill="#3b7dd8"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 14}">'
            f"{escape(figure)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _period_line(since: datetime | None, until: datetime | None) -> str:
    """What the page covers: every event, or the period given (UTC)."""
    if since is None and until is None:
        return "<p>Period: every event in the store (times in UTC).</p>"
    start = since.isoformat() if since is not None else "the first event"
    end = f"before {until.isoformat()}" if until is not None else "the last event"
    return f"<p>Period: from {escape(start)} to {escape(end)} (UTC).</p>"


def render(
    engine: Engine,
    calendar: WorkingCalendar | None,
    title: str,
    *,
    by: str = "kind",
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """Every report as one page: a table per report, as ``--format json`` gives its rows,
    with bar charts for SLA attainment and (given a ``calendar``) the regulatory
    buckets; spend grouped ``by`` kind, agent, category or customer. With a period
    (``since``, ``until``), each report over it, and the period under the title."""
    since, until = reports.period(since, until)
    when = {"since": since, "until": until}
    sla = reports.sla_attainment(engine, **when)
    sections = [
        ("SLA attainment",
         bar_chart([(f"{r['target']} ({r['channel']})", r["attainment_pct"]) for r in sla],
                   unit="%") + _table(sla)),
        ("SLA breaches", _table(reports.breaches(engine, **when))),
        ("Time per checklist step", _table(reports.time_per_step(engine, **when))),
        (f"Compensation by {by}", _table(reports.compensation_spend(engine, by, **when))),
        ("Summary", _table(reports.summary(engine, **when))),
        ("Recurring complaints", _table(reports.recurring(engine, **when))),
        ("Handling per case", _table(reports.handling(engine, **when))),
    ]  # fmt: skip
    if calendar is not None:
        buckets = reports.regulatory_buckets(engine, calendar, **when)
        chart = bar_chart([(str(r["bucket"]), str(r["cases"])) for r in buckets])
        sections.insert(1, ("Resolution time (regulatory buckets)", chart + _table(buckets)))
    body = "".join(f"<h2>{escape(name)}</h2>{html}" for name, html in sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{_period_line(since, until)}{body}</body></html>"
    )
