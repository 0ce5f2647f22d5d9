"""``complaintflow cases``: list cases by their key fields, page by page; list the open
cases at risk of an SLA deadline."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from workflow.cli.common import instant, open_cli_store, printable, shown_json, store_options
from workflow.domain import Case
from workflow.engine import Engine, cases_at_risk_in
from workflow.errors import ComplaintflowError, InvalidQuery
from workflow.events import format_at
from workflow.query import (
    CURSOR_FOR_OTHER_FILTERS,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NOT_A_CURSOR,
    CaseAtRisk,
    UnreadableAtRisk,
    UnreadableCase,
    at_risk_until,
    check_limit,
    position,
)
from workflow.query import escalated_to as escalation_role
from workflow.sla import Deadline

_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
_LIMIT = click.option(
    "--limit", type=int, default=DEFAULT_LIMIT, show_default=True,
    help=f"Most cases to list (1 to {MAX_LIMIT}).",
)  # fmt: skip

#: The option that gives each argument of find_cases and cases_at_risk.
_OPTIONS = {
    "state": "--state",
    "open_only": "--open-only",
    "customer_id": "--customer",
    "assignee": "--assignee",
    "escalated_to": "--escalated-to",
    "channel": "--channel",
    "category": "--category",
    "opened_since": "--opened-since",
    "opened_before": "--opened-before",
    "updated_since": "--updated-since",
    "updated_before": "--updated-before",
    "limit": "--limit",
    "cursor": "--cursor",
    "within": "--within",
    "now": "--at",
}


#: What the command says for a refusal the library words with its own names
#: (``find_cases``, ``next_cursor``, filters): the command's options instead.
_CLI_WORDS = {
    NOT_A_CURSOR: "it is not a cursor this command printed (give the one a page's last line "
    "shows, as it is)",
    CURSOR_FOR_OTHER_FILTERS: "it was printed for other options: give the options it was "
    "printed with, or start again without --cursor",
}


def _refused(error: InvalidQuery) -> click.BadParameter:
    """A query the library refused, as a usage error naming the option that gave it."""
    return click.BadParameter(
        _CLI_WORDS.get(error.problem, error.problem),
        param_hint=_OPTIONS.get(error.filter, error.filter),
    )


def _refuse_empty_ranges(given: dict[str, str | None], times: dict[str, datetime | None]) -> None:
    """``--opened-before`` not after ``--opened-since`` (or the same of ``--updated-*``)
    matches no case: a usage error naming it, in the command's words (the library's
    names its arguments, ``opened_since``)."""
    for what in ("opened", "updated"):
        since, before = times[f"{what}_since"], times[f"{what}_before"]
        if since is not None and before is not None and before <= since:
            raise click.BadParameter(
                f"{given[f'{what}_before']} is not after {_OPTIONS[f'{what}_since']} "
                f"{given[f'{what}_since']}: no case can match",
                param_hint=_OPTIONS[f"{what}_before"],
            )


@contextlib.contextmanager
def _asking(engine: Engine) -> Iterator[None]:
    """Around a query of ``engine``'s store: an argument the library refuses is a usage
    error naming its option, any other error one line; the store is closed after."""
    try:
        yield
    except InvalidQuery as error:
        raise _refused(error) from None
    except ComplaintflowError as error:
        raise click.ClickException(str(error)) from None
    finally:
        engine.store.close()


@click.group()
def cases() -> None:
    """Find cases: by their key fields, or at risk of an SLA deadline."""


@cases.command("list")
@store_options
@click.option("--state", "states", multiple=True,
              help="Only cases in this state (repeat for several).")  # fmt: skip
@click.option("--open-only", is_flag=True, help="Leave out closed and withdrawn cases.")
@click.option("--customer", "customer_id", default=None, help="Only this customer's cases.")
@click.option("--assignee", default=None, help="Only cases assigned to this name.")
@click.option("--escalated-to", "escalated_to", default=None,
              help="Only cases escalated to this role now.")  # fmt: skip
@click.option("--channel", default=None, help="Only cases that came in on this channel.")
@click.option("--category", default=None, help="Only cases of this category.")
@click.option("--opened-since", default=None, help="Opened at or after (ISO 8601, with zone).")
@click.option("--opened-before", default=None, help="Opened before (ISO 8601, with zone).")
@click.option("--updated-since", default=None, help="Last changed at or after.")
@click.option("--updated-before", default=None, help="Last changed before.")
@_LIMIT
@click.option("--cursor", default=None,
              help="Where to go on from: the cursor the previous page printed.")  # fmt: skip
@_FORMAT
def list_cases(
    store_url: str,
    states: tuple[str, ...],
    open_only: bool,
    customer_id: str | None,
    assignee: str | None,
    escalated_to: str | None,
    channel: str | None,
    category: str | None,
    opened_since: str | None,
    opened_before: str | None,
    updated_since: str | None,
    updated_before: str | None,
    limit: int,
    cursor: str | None,
    fmt: str,
) -> None:
    """List the cases that match every option given, in the order they were opened, a
    page at a time (the page's last line gives the --cursor of the next). A case whose
    stored snapshot does not read back is listed in its place as unreadable, with a
    warning saying what is wrong."""
    given = {
        "opened_since": opened_since,
        "opened_before": opened_before,
        "updated_since": updated_since,
        "updated_before": updated_before,
    }
    times = {name: instant(value, _OPTIONS[name]) for name, value in given.items()}
    _refuse_empty_ranges(given, times)
    engine = Engine(open_cli_store(store_url))
    with _asking(engine):
        page = engine.find_cases(
            state=list(states) or None,
            open_only=open_only,
            customer_id=customer_id,
            assignee=assignee,
            escalated_to=escalated_to,
            channel=channel,
            category=category,
            limit=limit,
            cursor=cursor,
            **times,
        )
    for unreadable in page.unreadable:  # on stderr, before the page: not hidden by a pipe
        click.echo(f"warning: {printable(str(unreadable))}", err=True)
    if fmt == "json":
        document = {
            "cases": [_case_json(c) for c in page.cases],
            "unreadable": [_unreadable_json(u) for u in page.unreadable],
            "next_cursor": page.next_cursor,
        }
        click.echo(shown_json(document))
        return
    columns = ("case", "state", "customer", "channel", "category", "priority", "assignee",
               "escalated to", "opened (UTC)", "updated (UTC)")  # fmt: skip
    rows = [
        (
            case.id,
            case.state,
            case.customer.id,
            case.channel.value,
            case.category,
            case.priority.value,
            case.assignee,
            escalation_role(case),
            _minute(case.opened_at),
            _minute(case.updated_at),
        )
        for case in page.cases
    ]
    # Each unreadable case in its place (one no store could place, last): what the
    # columns need is in the snapshot, but when it opened.
    placed: list[tuple[tuple[datetime, str], tuple[Any, ...]]] = [
        (position(c), row) for c, row in zip(page.cases, rows, strict=True)
    ]
    for u in page.unreadable:
        opened = _minute(u.opened_at) if u.opened_at is not None else None
        row = (u.case_id, "(unreadable)", None, None, None, None, None, None, opened, None)
        placed.append(((u.opened_at or datetime.max.replace(tzinfo=UTC), u.case_id), row))
    rows = [row for _, row in sorted(placed, key=lambda entry: entry[0])]
    _table(columns, rows, "(no cases)")
    if page.next_cursor is not None:
        click.echo(f"next page: --cursor {page.next_cursor}")


@cases.command("at-risk")
@store_options
@click.option("--within", required=True,
              help="How far ahead to look: 4h, 90m, 1h30m, 2d, or ISO 8601 (PT4H).")  # fmt: skip
@click.option("--at", "at", default=None, help="ISO 8601 instant to look from (default: now).")
@_LIMIT
@_FORMAT
def at_risk(store_url: str, within: str, at: str | None, limit: int, fmt: str) -> None:
    """List the open cases with a pending SLA warning or breach due within --within
    (those past due that no sweep fired yet included), soonest first, each with its
    soonest deadline. A case whose stored snapshot does not read back is listed in its
    place as unreadable, with a warning saying what is wrong."""
    ahead = duration(within, "--within")
    if ahead < timedelta(0):  # -PT1H: said with the text given, not as a timedelta
        raise click.BadParameter(
            f"{within!r} is negative: give how far ahead to look", param_hint="--within"
        )
    when = instant(at, "--at")
    try:
        check_limit(limit, "cases_at_risk")
    except InvalidQuery as error:
        raise _refused(error) from None
    engine = Engine(open_cli_store(store_url))
    now = when if when is not None else engine.now()
    try:
        until = at_risk_until(ahead, now)
    except InvalidQuery:  # only past the year 9999 is left
        engine.store.close()
        raise click.BadParameter(
            f"{within!r} after {now.isoformat(timespec='seconds')} is past the year 9999",
            param_hint="--within",
        ) from None
    with _asking(engine):
        # One more than shown (1,001 for --limit 1000), to say whether there are more.
        found = cases_at_risk_in(engine.store, until, limit + 1)
    # The unreadable cases in their places (decision 0060), counted in --limit.
    listed = found.in_order()
    shown, more = listed[:limit], len(listed) > limit
    unreadable = [entry for entry in shown if isinstance(entry, UnreadableAtRisk)]
    for entry in unreadable:  # on stderr, before the list: not hidden by a pipe
        click.echo(f"warning: {printable(str(entry))}", err=True)
    if fmt == "json":
        document = {
            "now": format_at(now),
            "until": format_at(now + ahead),
            "cases": [_risk_json(entry) for entry in shown if isinstance(entry, CaseAtRisk)],
            "unreadable": [
                {**_unreadable_json(entry.case), "deadline": _deadline_json(entry.deadline)}
                for entry in unreadable
            ],
            "more": more,
        }
        click.echo(shown_json(document))
        return
    columns = ("case", "state", "step", "kind", "due (UTC)", "due in", "assignee")
    rows = [
        (
            entry.case.id if isinstance(entry, CaseAtRisk) else entry.case.case_id,
            entry.case.state if isinstance(entry, CaseAtRisk) else "(unreadable)",
            entry.step,
            entry.kind,
            _minute(entry.due_at),
            _span(entry.due_at - now),
            entry.case.assignee if isinstance(entry, CaseAtRisk) else None,
        )
        for entry in shown
    ]
    _table(columns, rows, f"(no open case has a deadline due by {_minute(now + ahead)} UTC)")
    if more:
        click.echo(f"more cases are at risk than --limit {limit} shows")


_COMPACT = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def duration(text: str, option: str) -> timedelta:
    """``4h``, ``90m``, ``1h30m``, ``2d``, ``45s`` or an ISO 8601 duration (``PT4H``);
    anything else is a usage error naming ``option``."""
    match = _COMPACT.fullmatch(text.strip().lower())
    if match is not None and any(match.groups()):
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        try:
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        except OverflowError:
            pass
    elif text.strip().upper().startswith(("P", "-P")):
        try:
            return _ISO.validate_python(text.strip())
        except ValidationError:
            pass
    raise click.BadParameter(
        f"{text!r} is not a duration: give e.g. 4h, 90m, 1h30m, 2d or PT4H", param_hint=option
    )


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _span(delta: timedelta) -> str:
    """``1h05``, ``26h00``, or ``-0h15`` for a deadline already past."""
    sign = "-" if delta < timedelta(0) else ""
    minutes = int(abs(delta.total_seconds()) // 60)
    hours, mins = divmod(minutes, 60)
    return f"{sign}{hours}h{mins:02d}"


def _table(columns: tuple[str, ...], rows: list[tuple[Any, ...]], empty: str) -> None:
    """Rows under their column names, each value as text a terminal shows as it is
    (a name or an id given by an agent may hold control characters)."""
    if not rows:
        click.echo(empty)
        return
    cells = [tuple(printable(str(v)) if v is not None else "-" for v in row) for row in rows]
    widths = [max(len(c), *(len(row[n]) for row in cells)) for n, c in enumerate(columns)]
    for row in (columns, *cells):
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _unreadable_json(case: UnreadableCase) -> dict[str, Any]:
    """A listed case whose snapshot does not read back: what is wrong, no stored value."""
    return {
        "id": case.case_id,
        "opened_at": format_at(case.opened_at) if case.opened_at is not None else None,
        "problems": [{"field": field, "problem": problem} for field, problem in case.problems],
        "error": str(case),
    }


def _case_json(case: Case) -> dict[str, Any]:
    """A case's key fields (not its customer's name or contact, nor any text)."""
    return {
        "id": case.id,
        "state": case.state,
        "customer_id": case.customer.id,
        "channel": case.channel.value,
        "category": case.category,
        "priority": case.priority.value,
        "assignee": case.assignee,
        "escalated_to": escalation_role(case),
        "opened_at": format_at(case.opened_at),
        "updated_at": format_at(case.updated_at),
        "version": case.version,
    }


def _risk_json(entry: CaseAtRisk) -> dict[str, Any]:
    return {**_case_json(entry.case), "deadline": _deadline_json(entry.deadline)}


def _deadline_json(deadline: Deadline) -> dict[str, Any]:
    return {
        "step": deadline.step,
        "kind": deadline.kind,
        "target": deadline.target,
        "due_at": format_at(deadline.due_at),
    }
