"""``complaintflow sla``: sweep due SLA deadlines; show a case's SLA targets."""

from __future__ import annotations

from datetime import timedelta

import click

from policies.errors import ComplaintflowError
from policies.model import Policy
from workflow.cli.common import (
    cli_policy,
    echo_left_out,
    instant,
    not_given,
    open_cli_store,
    printable,
    store_options,
)
from workflow.engine import Engine
from workflow.errors import InvalidQuery
from workflow.query import check_limit
from workflow.sla import verdict as sla_verdict

_POLICY = click.option(
    "--policy",
    "policy_files",
    multiple=True,
    help="Policy file(s) the cases run under (the first is current); "
    "'bundled:NAME' for a bundled one. Default: the permissive default policy.",
)


def _policies(files: tuple[str, ...]) -> list[Policy]:
    return [cli_policy(f, "'--policy'") for f in files]


def _engine(store_url: str, files: tuple[str, ...]) -> Engine:
    return engine_of(store_url, _policies(files))


def engine_of(store_url: str, policies: list[Policy]) -> Engine:
    """An engine on the store at ``store_url`` under ``policies`` (the first current;
    none: the default policy)."""
    store = open_cli_store(store_url)
    if not policies:
        return Engine(store)
    return Engine(store, policy=policies[0], previous_policies=policies[1:])


def span(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    sign = "-" if delta < timedelta(0) else ""
    minutes = int(abs(delta.total_seconds()) // 60)
    hours, mins = divmod(minutes, 60)
    return f"{sign}{hours}h{mins:02d}"


@click.group()
def sla() -> None:
    """SLA clocks: sweep due deadlines, show a case's targets."""


@sla.command()
@store_options
@_POLICY
@click.option(
    "--limit", default=1000, show_default=True, help="Most deadlines per sweep (1 or more)."
)
def tick(store_url: str, policy_files: tuple[str, ...], limit: int) -> None:
    """Fire the SLA warnings and breaches that are due now; then list each case with a
    deadline due that the sweep skipped, and why."""
    try:  # before the store is opened, as ``cases list`` checks its --limit
        check_limit(limit, "tick", most=None)
    except InvalidQuery as error:
        raise click.BadParameter(error.problem, param_hint="--limit") from None
    engine = _engine(store_url, policy_files)
    try:
        fired = engine.tick(limit=limit)
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.store.close()
    for event in fired:
        # ids a history stored before they were checked may hold anything (decision 0036)
        click.echo(f"{printable(event.case_id)}  {event.type:<13} {event.data.get('key', '')}")
    click.echo(f"{len(fired)} events fired")
    echo_left_out(fired.skipped, "skipped")  # as `privacy purge` lists what it kept


@sla.command()
@click.argument("case_id")
@store_options
@_POLICY
@click.option("--at", "at", default=None, help="ISO 8601 instant (default: now).")
def status(case_id: str, store_url: str, policy_files: tuple[str, ...], at: str | None) -> None:
    """Show each SLA target of CASE_ID: elapsed, remaining and its verdict (met, breached,
    running, paused, not started; warned)."""
    when = instant(at, "--at")
    engine = _engine(store_url, policy_files)
    try:
        case = engine.get(case_id)
        if when is not None and when < case.updated_at:
            case = engine.state_at(case_id, when)  # the policy it ran under then
        if engine.policy_of(case).stamp != case.policy_version:
            raise not_given(f"case {case_id} runs under policy", [case.policy_version])
        rows = engine.sla_status(case_id, when)
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.store.close()
    click.echo(f"{'target':<24}{'step':<18}{'due (UTC)':<18}{'elapsed':>9}{'business':>10}"
               f"{'remaining':>11}  state")  # fmt: skip
    for row in rows:
        due = row.due_at.strftime("%Y-%m-%d %H:%M") if row.due_at else "-"
        verdict = sla_verdict(row)  # the words `audit show` uses
        state = f"{verdict.kind}, warned" if verdict.warned else verdict.kind
        click.echo(
            f"{row.target:<24}{row.step:<18}{due:<18}{span(row.elapsed):>9}"
            f"{span(row.elapsed_business):>10}{span(row.remaining):>11}  {state}"
        )
