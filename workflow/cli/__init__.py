"""The ``complaintflow`` command line. A composition point: it may use every package."""

from __future__ import annotations

import logging
import sys

import click
import structlog

from workflow.checklist import mermaid
from workflow.cli.audit_commands import audit_group
from workflow.cli.case_commands import cases
from workflow.cli.db_commands import db
from workflow.cli.policy_commands import policy
from workflow.cli.privacy_commands import privacy
from workflow.cli.report_commands import report
from workflow.cli.sla_commands import sla

DEMO_STORE = "sqlite:///complaintflow-demo.db"


def _configure_logging(verbose: bool) -> None:
    """The CLI is an application, so it may configure structlog (the library never does)."""
    level = logging.INFO if verbose else logging.WARNING
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log every step to stderr.")
@click.version_option(package_name="complaintflow")
def main(verbose: bool) -> None:
    """complaintflow: customer complaints as a checked, timed, auditable workflow."""
    _configure_logging(verbose)


@main.command()
def diagram() -> None:
    """Print the checklist as a Mermaid state diagram (generated from the machine)."""
    click.echo(mermaid(), nl=False)


@main.command()
@click.option(
    "--store",
    "store_url",
    default=DEMO_STORE,
    show_default=True,
    help="Where to keep the demo case (a store URL; the SQLite file is created if new).",
)
def demo(store_url: str) -> None:
    """Run a realistic complaint through every step, on a simulated clock, and print
    its timeline and final state."""
    from workflow.cli.demo import run_demo
    from workflow.errors import ComplaintflowError

    try:
        run_demo(store_url, click.echo)
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(audit_group)
main.add_command(cases)
main.add_command(db)
main.add_command(policy)
main.add_command(privacy)
main.add_command(report)
main.add_command(sla)


if __name__ == "__main__":  # pragma: no cover
    main()
