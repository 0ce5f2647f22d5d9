"""The ``complaintflow`` command line. A composition point: it may use every package."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import click
import structlog

from workflow.checklist import mermaid
from workflow.cli.audit_commands import audit_group
from workflow.cli.case_commands import cases
from workflow.cli.common import printable
from workflow.cli.db_commands import db
from workflow.cli.policy_commands import policy
from workflow.cli.privacy_commands import privacy
from workflow.cli.report_commands import report
from workflow.cli.sla_commands import sla

DEMO_STORE = "sqlite:///complaintflow-demo.db"


def _escaped(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Each text value of a line (the event too) with the characters a terminal acts on
    escaped, as the tables show them (``printable``): the console renderer writes text as
    it is, and a case id stored before ids were checked may hold an escape sequence
    (decision 0063; 0052 did the same for standard library log lines). Other values the
    renderer shows with ``repr``, which escapes them already."""
    for key, value in event_dict.items():
        if isinstance(value, str) and not value.isprintable():
            event_dict[key] = printable(value)
    return event_dict


def _a_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced by something without one, or closed
        return False


def _configure_logging(verbose: bool) -> None:
    """The CLI is an application, so it may configure structlog (the library never does):
    structlog's own default processors, with text values escaped before the renderer."""
    level = logging.INFO if verbose else logging.WARNING
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            _escaped,
            # colours only on a terminal, as structlog's default (which asks of stdout)
            structlog.dev.ConsoleRenderer(colors=_a_terminal(sys.stderr)),
        ],
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
