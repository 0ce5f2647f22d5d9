"""``complaintflow report``: reports over the store, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click

from workflow import reports
from workflow.cli.common import output_file
from workflow.cli.sla_commands import _POLICY, _STORE, _engine
from workflow.errors import ComplaintflowError
from workflow.report_html import render

REPORTS = ("sla", "steps", "spend", "handling", "summary", "recurring", "regulatory")


def _print(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("(no rows)")
        return
    columns = list(rows[0])
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


@click.command()
@click.argument("name", type=click.Choice(REPORTS))
@_STORE
@_POLICY
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]),
              default="table", show_default=True,
              help="html: every report in one self-contained file with charts.")  # fmt: skip
@click.option("-o", "--output", default="-", help="File to write (html; default: stdout).")
@click.option("--by", default="kind", show_default=True,
              help="spend: group by kind, agent, category or customer.")  # fmt: skip
@click.option(
    "--calendar",
    default=None,
    help="regulatory: the policy calendar for business days (default: its first).",
)
def report(
    name: str,
    store_url: str,
    policy_files: tuple[str, ...],
    fmt: str,
    output: str,
    by: str,
    calendar: str | None,
) -> None:
    """Print a report: sla (attainment per target and channel), spend (compensation),
    handling (per case), summary (reopen rate, feedback), recurring (per category and
    week), regulatory (resolution buckets). ``--format html`` writes every report in one
    self-contained page with charts (NAME is then ignored)."""
    engine = _engine(store_url, policy_files)
    if fmt == "html":
        try:
            calendars = engine.policy.calendars
            business = calendars.get(calendar or next(iter(calendars), ""))
            page = render(engine, business, f"complaintflow report: {store_url}")
        except ComplaintflowError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.store.close()
        if output == "-":
            click.echo(page)
        else:
            with output_file(output) as out:
                out.write(page)
        return
    try:
        if name == "sla":
            rows = reports.sla_attainment(engine)
        elif name == "steps":
            rows = reports.time_per_step(engine)
        elif name == "spend":
            rows = reports.compensation_spend(engine, by)
        elif name == "handling":
            rows = reports.handling(engine)
        elif name == "summary":
            rows = reports.summary(engine)
        elif name == "recurring":
            rows = reports.recurring(engine)
        else:
            calendars = engine.policy.calendars
            if not calendars:
                raise click.ClickException("the regulatory report needs a policy with a calendar")
            chosen = calendar or next(iter(calendars))
            if chosen not in calendars:
                raise click.ClickException(f"no calendar {chosen!r} in the policy")
            rows = reports.regulatory_buckets(engine, calendars[chosen])
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    finally:
        engine.store.close()
    _print(rows, fmt)
