"""What every ``complaintflow`` command shares: the store options, reading a time
option, turning the library's errors into one-line messages, writing an output file
whole or not at all, printing text from a store (actor ids above all) escaped."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import click

from adapters import open_store
from adapters.sql import attached_schema
from policies.errors import PolicyFileError
from policies.loader import (
    bundled_names,
    bundled_path,
    bundled_policy,
    load_policy,
    not_bundled,
)
from policies.model import Policy
from workflow.clock import outside_utc
from workflow.domain import Actor
from workflow.errors import ComplaintflowError, InvalidActor
from workflow.store import KeptCase, SkippedCase, Store

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Where ``store_options`` keeps ``--prefix`` and ``--schema`` for ``open_cli_store``.
_TABLES = "complaintflow.store_tables"


def _keep_table_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and param.name is not None:
        ctx.meta.setdefault(_TABLES, {})[param.name] = value


def store_options(command: F) -> F:
    """``--store URL``, and ``--prefix`` and ``--schema`` for SQL tables a support
    product placed in its own database (as ``open_store(url, prefix=..., schema=...)``
    and ``complaintflow db init`` place them). The command receives ``store_url`` and
    opens it with ``open_cli_store``, which passes the other two when they were given."""
    for option in (
        click.option(
            "--schema",
            default=None,
            expose_value=False,
            callback=_keep_table_option,
            help="The SQL store's database schema, if its tables are in one.",
        ),
        click.option(
            "--prefix",
            default=None,
            expose_value=False,
            callback=_keep_table_option,
            help="The SQL store's table-name prefix, if not cf_.",
        ),
        click.option("--store", "store_url", required=True, help="The store's URL."),
    ):
        command = option(command)
    return command


def open_cli_store(url: str) -> Store:
    """The store at ``url`` (with the command's ``--prefix`` and ``--schema``, when
    given), its ``ComplaintflowError`` a one-line message."""
    tables: dict[str, str] = click.get_current_context().meta.get(_TABLES, {})
    refuse_sqlite_schema(url, tables.get("schema"))
    return opened(lambda: open_store(url, **tables))


def refuse_sqlite_schema(url: str, schema: str | None) -> None:
    """``--schema`` with a SQLite URL, a usage error naming the option: a schema there
    is another database attached to each connection, which only a program embedding
    complaintflow can attach (``main``, the file itself, is let through)."""
    if not attached_schema(schema):
        return
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # the store says what is wrong with the URL
        return
    if scheme.split("+", 1)[0].lower() == "sqlite":
        raise click.BadParameter(
            f"{schema!r}: a SQLite store has no schemas the command line can reach (on "
            "SQLite a schema is another database file attached to each connection, which "
            "only a program embedding complaintflow can attach: docs/embedding.md, "
            '"Inside your own database"); leave --schema out for the file\'s own tables',
            param_hint="--schema",
        )


#: Characters a terminal acts on instead of showing (line breaks, escapes, bidi
#: overrides...): printed as escapes, so that a history cannot forge what is shown.
_UNSHOWN = frozenset(("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))


def printable(text: str) -> str:
    """``text`` with every control, format or line-separator character as an escape.
    Every command printing text read from a store passes it through this: an actor id
    recorded before ids were checked (docs/decisions/0036) may hold any of them."""
    if text.isprintable():
        return text
    return "".join(
        ch if unicodedata.category(ch) not in _UNSHOWN else ascii(ch)[1:-1] for ch in text
    )


def echo_left_out(cases: Sequence[KeptCase | SkippedCase], word: str) -> None:
    """After a batch command's own list: each case it left alone (``kept``, ``skipped``)
    and why, id and reason escaped, then how many; nothing when it left none alone."""
    for case in cases:
        click.echo(f"{printable(case.case_id)}  {word}: {printable(case.detail)}")
    if cases:
        click.echo(f"{len(cases)} cases {word}")


def shown_json(document: object) -> str:
    """``document`` as indented JSON for a terminal: non-ASCII text as it is (``Zoë``),
    but the characters ``printable`` escapes as JSON escapes, the same value to a
    parser. ``json`` escapes the C0 controls itself; DEL, the C1 controls (``\\x9b``
    is a CSI), bidi overrides and line separators it writes as they are."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return "".join(
        # ``json`` with ASCII output escapes the character itself (a pair above U+FFFF)
        json.dumps(ch)[1:-1] if ch > "\x7e" and unicodedata.category(ch) in _UNSHOWN else ch
        for ch in text
    )


def cli_actor(text: str, option: str = "'--actor'") -> Actor:
    """The actor given to ``option`` as ``role:id`` text; one the library refuses is a
    usage error naming the option, in the command's words (``InvalidActor`` names the
    Python method it was given to)."""
    try:
        return Actor.parse(text)
    except InvalidActor as error:
        raise click.BadParameter(error.as_option_problem(), param_hint=option) from None


def instant(value: str | None, option: str) -> datetime | None:
    """The ISO 8601 instant given to ``option``, in UTC (as the library reads times);
    None when not given. Malformed, naive (no time zone) or outside what UTC can hold
    is a usage error naming the option."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-11-02T12:00:00+00:00",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} is naive: give its time zone, e.g. 2026-11-02T12:00:00+00:00",
            param_hint=option,
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise click.BadParameter(outside_utc(moment), param_hint=option) from None


def time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as ``instant`` reads each; an ``--until`` not after
    ``--since`` selects nothing, and is a usage error naming it (dates swapped, say)."""
    since_at, until_at = instant(since, "--since"), instant(until, "--until")
    if since_at is not None and until_at is not None and until_at <= since_at:
        raise click.BadParameter(
            f"{until} is not after --since {since}: nothing can be in that range",
            param_hint="--until",
        )
    return since_at, until_at


#: How the command line names a policy shipped with complaintflow (``bundled:retail``).
BUNDLED_PREFIX = "bundled:"


def cli_policy(file: str, param_hint: str) -> Policy:
    """The policy ``file`` names: a file, or ``bundled:NAME`` for one shipped with
    complaintflow. An unknown NAME is a usage error naming ``param_hint`` and the
    bundled policies (there is no file to call invalid); a file that cannot be loaded is
    its ``PolicyFileError``'s message."""
    if file.startswith(BUNDLED_PREFIX):
        path: str | Path = bundled_file(file.removeprefix(BUNDLED_PREFIX), param_hint)
    else:
        path = file
    try:
        return load_policy(path)
    except PolicyFileError as exc:
        raise click.ClickException(str(exc)) from None


def bundled_file(name: str, param_hint: str, *, cases: bool = False) -> Path:
    """The file of the bundled policy ``name`` (with ``cases``, of the expected decisions
    shipped beside it); an unknown ``name`` is a usage error naming ``param_hint``,
    with a "did you mean" and the names there are."""
    if name not in bundled_names():
        raise click.BadParameter(not_bundled(name, cases=cases), param_hint=param_hint)
    try:
        return bundled_path(name, cases=cases)
    except PolicyFileError as exc:  # pragma: no cover - every bundled policy has its cases
        raise click.ClickException(str(exc)) from None


def not_given(what: str, stamps: list[str]) -> click.ClickException:
    """The error for ``what`` running under policy versions ``stamps`` the command was
    not given (``not_given_text``)."""
    return click.ClickException(not_given_text(what, stamps))


def not_given_text(what: str, stamps: list[str]) -> str:
    """What to say of ``what`` running under policy versions ``stamps`` the command was
    not given; a bundled policy of that version is named with the option that gives it
    (the demo's cases run under one)."""
    bundled = []
    for name in bundled_names():
        try:
            if bundled_policy(name).stamp in stamps:
                bundled.append(f"--policy bundled:{name}")
        except PolicyFileError:  # pragma: no cover - the bundled files load (tested)
            continue
    hint = (
        f"; {' '.join(bundled)} gives {'it' if len(stamps) == 1 else 'one of them'}"
        if bundled
        else ""
    )
    return (
        f"{what} {', '.join(stamps)}, which was not given: pass every policy file the "
        f"cases ran under with --policy (bundled:NAME for a bundled one){hint}"
    )


def opened(open_: Callable[[], T]) -> T:
    """``open_()`` (a store, an engine), its ``ComplaintflowError`` a one-line message."""
    try:
        return open_()
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def output_file(path: str) -> Iterator[IO[str]]:
    """A text file written whole or not at all: written beside ``path`` under another
    name and renamed over it when the block succeeds (an earlier file stays as it was
    if it fails). A path that cannot be written is a one-line message naming it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "Is a directory")
        handle, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part"
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    try:
        with open(handle, "w", encoding="utf-8", newline="") as out:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(out.fileno(), 0o666 & ~umask)  # as open(path, "w") would make it
            yield out
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
