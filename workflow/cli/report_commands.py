"""``complaintflow report``: reports over the store, as a table, JSON, CSV or HTML."""

from __future__ import annotations

import csv
import difflib
import io
import json
from datetime import datetime
from typing import Any

import click
from click.core import ParameterSource

from adapters.sql import shown_url
from policies.loader import bundled_names, bundled_policy
from policies.model import Policy, default_policy
from workflow import reports
from workflow.audit import spreadsheet_cell
from workflow.cli import sla_commands
from workflow.cli.common import not_given, output_file, printable, store_options, time_range
from workflow.cli.sla_commands import _POLICY, engine_of
from workflow.engine import Engine
from workflow.errors import ComplaintflowError
from workflow.report_html import render

REPORTS = ("sla", "breaches", "steps", "spend", "handling", "summary", "recurring", "regulatory")
#: Each report's columns, for the header of a CSV report without rows (``spend``'s
#: first column is named by ``--by``).
COLUMNS = {
    "sla": ("target", "step", "channel", "met", "breached", "attainment_pct"),
    "breaches": (
        "case_id",
        "target",
        "step",
        "channel",
        "due_at",
        "breached_at",
        "met_later",
        "met_at",
        "assignee",
    ),
    "steps": ("step", "taken", "mean", "median"),
    "spend": ("", "currency", "paid", "offers", "approved", "declined", "refused", "accepted"),
    "handling": ("case_id", "state", "transfers", "escalations", "reopened", "feedback"),
    "summary": ("cases", "closed", "reopen_rate_pct", "feedback_mean"),
    "recurring": ("category", "subject", "week", "count", "previous_week", "rising"),
    "regulatory": ("bucket", "cases"),
}


def _cell(value: Any) -> Any:
    """A CSV report's cell: text with what ``printable`` escapes escaped."""
    return printable(value) if isinstance(value, str) else value


def _format(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> str:
    """The rows as the text ``fmt`` asks for (ending with a line break)."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    columns = list(rows[0]) if rows else columns
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        # The cells escaped as a table's are (a terminal, and a spreadsheet, would act on
        # an escape sequence or a bidi override in a subject or an id), then kept from
        # starting a formula.
        writer.writerows({c: spreadsheet_cell(_cell(v)) for c, v in row.items()} for row in rows)
        return out.getvalue()
    if not rows:
        return "(no rows)\n"
    # A table is for a terminal: every cell escaped (``--by agent`` lists actor ids, which
    # histories written before ids were checked may hold control characters in).
    cells = [{c: printable(str(row[c])) for c in columns} for row in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in columns) for row in cells]
    return "\n".join(lines) + "\n"


def _write(text: str, output: str) -> None:
    if output == "-":
        click.echo(text, nl=False)
        return
    with output_file(output) as out:
        out.write(text)


def _bundled_calendars() -> str:
    """What names the bundled policies with a calendar ("; --policy bundled:NAME has one")."""
    found = [f"--policy bundled:{n}" for n in bundled_names() if bundled_policy(n).calendars]
    if not found:
        return ""
    if len(found) == 1:
        return f"; {found[0]} has one"
    return f"; {', '.join(found[:-1])} and {found[-1]} have one"


#: The report that counts business days on ``--calendar`` (``--format html`` holds it).
CALENDAR_REPORT = "regulatory"


def _check_calendar(calendar: str | None, name: str | None, fmt: str, policy: Policy) -> None:
    """``--calendar`` refused up front as a usage error naming it: given to a report that
    uses none (it would be ignored, and an SLA report read as if on that calendar), or
    naming no calendar of the policy (with a "did you mean" and the calendars there are)."""
    if calendar is None:
        return
    if fmt != "html" and name is not None and name != CALENDAR_REPORT:
        targets = " (its SLA targets keep the calendars the policy gives them)"
        raise click.BadParameter(
            f"the {name} report takes no calendar{targets if name in ('sla', 'breaches') else ''}"
            f": only {CALENDAR_REPORT} counts business days on the one given (and --format "
            "html, which holds it); leave --calendar out",
            param_hint="'--calendar'",
        )
    known = list(policy.calendars)
    if calendar in known:
        return
    if not known:
        raise click.BadParameter(
            f"there is no calendar {calendar!r}: the policy has no calendars; pass the "
            f"cases' policy file with --policy{_bundled_calendars()}",
            param_hint="'--calendar'",
        )
    close = difflib.get_close_matches(calendar, known, n=1)
    mean = f" (did you mean {close[0]!r}?)" if close else ""
    raise click.BadParameter(
        f"there is no calendar {calendar!r} in the policy{mean}; the policy's calendars "
        f"are: {', '.join(known)}",
        param_hint="'--calendar'",
    )


#: The report grouped by ``--by`` (``--format html`` holds it, grouped so).
BY_REPORT = "spend"


def _check_by(ctx: click.Context, name: str | None, fmt: str) -> None:
    """``--by`` given to a report that groups by nothing refused up front as a usage error
    naming it (it would be ignored). It has a default, so whether it was given is asked
    of Click: a value from the command line (the default's own value too) or the
    environment counts as given (decision 0065)."""
    source = ctx.get_parameter_source("by")
    given = source is not None and source not in (
        ParameterSource.DEFAULT,
        ParameterSource.DEFAULT_MAP,
    )
    if given and fmt != "html" and name is not None and name != BY_REPORT:
        raise click.BadParameter(
            f"the {name} report takes no --by: only {BY_REPORT} groups by it (and --format "
            "html, which holds it); leave --by out",
            param_hint="'--by'",
        )


def _refuse_policies_not_given(engine: Engine) -> None:
    """Refuse, naming them, when cases run under policies the engine was not given (the
    SLA report would leave them out: its figures would read as complete)."""
    cases = (engine.get(case_id) for case_id in engine.store.case_ids())
    missing = sorted({c.policy_version for c in cases if reports.policy_not_given(engine, c)})
    if missing:
        raise not_given("cases run under policy", missing)


@click.command()
@click.argument("name", type=click.Choice(REPORTS), required=False)
@store_options
@_POLICY
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]),
              default="table", show_default=True,
              help="html: every report in one self-contained file with charts.")  # fmt: skip
@click.option("-o", "--output", default="-", help="File to write (default: stdout).")
@click.option("--by", default="kind", show_default=True, type=click.Choice(reports.SPEND_GROUPS),
              help="spend (and --format html): group by kind, agent, category or customer; "
                   "any other report refuses it.")  # fmt: skip
@click.option(
    "--calendar",
    default=None,
    help="regulatory (and --format html): the policy calendar for business days "
    "(default: its first); any other report refuses it.",
)
@click.option("--since", default=None,
              help="Only what happened at or after this ISO 8601 instant (each report "
                   "says what: docs/audit.md).")  # fmt: skip
@click.option("--until", default=None, help="Only what happened before this ISO 8601 instant.")
@click.pass_context
def report(
    ctx: click.Context,
    name: str | None,
    store_url: str,
    policy_files: tuple[str, ...],
    fmt: str,
    output: str,
    by: str,
    calendar: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Print a report: sla (attainment per target and channel), breaches (one row per
    SLA breach), steps (time per step), spend (compensation), handling (per case),
    summary (reopen rate, feedback), recurring (per category and week), regulatory
    (resolution buckets). --format html writes every report in one self-contained
    page with charts: NAME is optional then (given, it changes nothing); --by groups its
    spend. --since and --until give a period (a month, say): each report counts what
    happened in it (targets decided, breaches due, steps taken, offers made, cases
    opened, cases closed for regulatory)."""
    when = dict(zip(("since", "until"), time_range(since, until), strict=True))
    if fmt != "html" and name is None:
        raise click.UsageError(
            f"Missing argument 'NAME': one of {', '.join(REPORTS)} (optional only with "
            "--format html, which writes every report)"
        )
    _check_by(ctx, name, fmt)
    policies = sla_commands._policies(policy_files)
    _check_calendar(calendar, name, fmt, policies[0] if policies else default_policy())
    if fmt == "html":
        _html(store_url, policies, output, by, calendar, when)
        return
    assert name is not None
    engine = engine_of(store_url, policies)
    try:
        if name == "sla":
            _refuse_policies_not_given(engine)
            rows = reports.sla_attainment(engine, **when)
        elif name == "breaches":
            rows = reports.breaches(engine, **when)
        elif name == "steps":
            rows = reports.time_per_step(engine, **when)
        elif name == "spend":
            rows = reports.compensation_spend(engine, by, **when)
        elif name == "handling":
            rows = reports.handling(engine, **when)
        elif name == "summary":
            rows = reports.summary(engine, **when)
        elif name == "recurring":
            rows = reports.recurring(engine, **when)
        else:
            calendars = engine.policy.calendars
            if not calendars:
                raise click.ClickException(
                    "the regulatory report needs a policy with a calendar (--calendar chooses "
                    f"one): pass the cases' policy file with --policy{_bundled_calendars()}"
                )
            chosen = calendar or next(iter(calendars))  # a --calendar given is known
            rows = reports.regulatory_buckets(engine, calendars[chosen], **when)
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    finally:
        engine.store.close()
    columns = [by if c == "" else c for c in COLUMNS[name]]
    _write(_format(rows, fmt, columns), output)


def _html(
    store_url: str,
    policies: list[Policy],
    output: str,
    by: str,
    calendar: str | None,
    when: dict[str, datetime | None],
) -> None:
    """``report --format html``: every report in one page, written to ``output``
    (``--calendar``, if given, is one of the policy's: ``_check_calendar``)."""
    engine = engine_of(store_url, policies)
    try:
        calendars = engine.policy.calendars
        _refuse_policies_not_given(engine)
        business = calendars.get(calendar or next(iter(calendars), ""))
        title = f"complaintflow report: {shown_url(store_url)}"
        page = render(engine, business, title, by=by, **when)
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    finally:
        engine.store.close()
    _write(page + "\n", output)
