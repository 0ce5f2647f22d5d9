"""``complaintflow privacy``: erase a customer's personal data; purge cases whose
retention period has ended."""

from __future__ import annotations

import click

from adapters.urls import shown_url
from policies.errors import ComplaintflowError
from workflow.cli.common import cli_actor, echo_left_out, instant, printable, store_options
from workflow.cli.sla_commands import _POLICY, _engine


@click.group()
def privacy() -> None:
    """Personal data: erasure on request, retention purges."""


@privacy.command()
@click.argument("customer_id")
@store_options
@click.option("--actor", required=True, help="Who carries out the erasure, e.g. dpo:kim.")
@click.option("--reason", required=True, help="Why, e.g. the request's reference.")
def erase(customer_id: str, store_url: str, actor: str, reason: str) -> None:
    """Erase a customer's name, contact and account from all their cases. Every chain
    still verifies; each case records who erased, when and why."""
    if not customer_id.strip():  # the library's words name its argument, customer_id
        problem = "it is empty" if not customer_id else "it is blank (only whitespace)"
        raise click.BadParameter(problem, param_hint="'CUSTOMER_ID'")
    by = cli_actor(actor)
    engine = _engine(store_url, ())
    try:
        erased = engine.erase_customer(customer_id, actor=by, reason=reason)
    except (ComplaintflowError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.store.close()
    for case in erased:  # ids a history stored before they were checked may hold anything
        click.echo(f"{printable(case.id)}  erased (event {case.version})")
    click.echo(f"{len(erased)} cases of customer {printable(customer_id)} erased")


@privacy.command()
@store_options
@_POLICY
@click.option("--actor", required=True, help="Who runs the purge, e.g. system:retention.")
@click.option("--at", "at", default=None, help="ISO 8601 instant to judge by (default: now).")
@click.option("--dry-run", is_flag=True, help="List what would be purged; delete nothing.")
def purge(
    store_url: str, policy_files: tuple[str, ...], actor: str, at: str | None, dry_run: bool
) -> None:
    """Delete the closed cases whose retention period (``retention.years`` of their
    policy) has ended, keeping a tombstone of each (a saved digest still verifies).
    --at judges by an earlier time; a later one only with --dry-run. After the cases
    purged, it lists those it kept and why (changed meanwhile, an unreadable snapshot,
    a policy not given); exit status 0."""
    when = instant(at, "--at")
    by = cli_actor(actor)
    engine = _engine(store_url, policy_files)
    now = engine.now()
    if when is not None and when > now and not dry_run:
        engine.store.close()
        raise click.BadParameter(
            f"{at} is later than now ({now.isoformat()}): a purge judged at a time to come "
            "would delete cases whose retention period has not ended; give a time no later "
            "than now, or --dry-run to list what that time would purge",
            param_hint="--at",
        )
    try:
        done = engine.purge_expired(actor=by, now=when, dry_run=dry_run)
    except (ComplaintflowError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.store.close()
    verb = "would be purged" if dry_run else "purged"
    for tombstone in done:
        click.echo(f"{printable(tombstone.case_id)}  closed {tombstone.closed_at:%Y-%m-%d}  {verb}")
    click.echo(f"{len(done)} cases {verb}")
    # The cases it kept, and why (decision 0065): exit 0 still, as ``sla tick`` skipping a case.
    echo_left_out(done.kept, "kept")


@privacy.command()
@store_options
def purged(store_url: str) -> None:
    """List the tombstones of purged cases: each case's last seq and head hash, when it
    closed, when and by whom it was purged, and the retention period it was judged by."""
    engine = _engine(store_url, ())
    try:
        tombstones = list(engine.store.tombstones())
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.store.close()
    for t in tombstones:
        kept = f"{t.retention_years} years" if t.retention_years is not None else "not recorded"
        click.echo(
            f"{printable(t.case_id)}  seq {t.version}  head {t.head_hash[:12]}…  closed "
            f"{t.closed_at:%Y-%m-%d}  purged {t.purged_at:%Y-%m-%d} by {printable(t.purged_by)}"
            f"  retention {kept}"
        )
    click.echo(f"{len(tombstones)} purged cases")


@privacy.command()
@store_options
def scrub(store_url: str) -> None:
    """Physically remove what erasures and purges overwrote or deleted (SQLite: empty the
    WAL and VACUUM; PostgreSQL: VACUUM FULL). Erase and purge run it themselves; run it again
    if they reported that another connection was reading."""
    engine = _engine(store_url, ())
    try:
        engine.store.scrub()
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.store.close()
    click.echo(f"{shown_url(store_url)}: scrubbed")
