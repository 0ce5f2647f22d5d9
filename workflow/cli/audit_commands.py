"""``complaintflow audit``: verify, digest, show and export case histories."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, cast

import click

from adapters.urls import shown_url
from policies.model import Policy
from workflow import audit, sla
from workflow.cli.common import (
    instant,
    not_given_text,
    open_cli_store,
    output_file,
    printable,
    store_options,
    time_range,
)
from workflow.cli.sla_commands import _POLICY, _policies, span
from workflow.domain import Case
from workflow.errors import CaseNotFound, ComplaintflowError
from workflow.events import Event
from workflow.personal import Vault, vault_of
from workflow.store import Store

#: What ``_saved_heads`` gives: the digest value, each case's (seq, head hash), and, in a
#: ``complaintflow-digest/2`` file, when each case closed (None for a file without).
SavedDigest = tuple[str, dict[str, tuple[int, str]], dict[str, datetime | None] | None]


def _saved_heads(file: str) -> SavedDigest:
    """The digest value and the case heads in a digest file written by ``audit digest``
    (``complaintflow-digest/2``: each head with when its case closed; or a file written
    before, without ``format``: the heads alone); a file whose heads do not give its
    digest value, or without one, is refused."""
    try:
        # A key written twice: ``json`` would keep the last silently, so a head written
        # before the one checked would be shown, not checked.
        saved = json.loads(
            Path(file).read_text(encoding="utf-8"), object_pairs_hook=audit.unique_keys
        )
    except OSError as exc:
        raise click.ClickException(f"cannot read the digest {file}: {exc.strerror}") from None
    except audit.KeyGivenTwice as twice:
        raise click.ClickException(
            f"{file} holds {printable(twice.key)!r} twice: only one of them could be checked "
            "(the file was edited; `complaintflow audit digest` writes each key once)"
        ) from None
    except ValueError:
        saved = None
    form = saved.get("format") if isinstance(saved, dict) else None
    if form not in (None, audit.DIGEST_FORMAT):
        raise click.ClickException(
            f"{file} is in the format {printable(str(form))!r}, which this complaintflow does "
            f"not read (it reads {audit.DIGEST_FORMAT}, and digests written before it)"
        )
    closing = form == audit.DIGEST_FORMAT
    heads = saved.get("heads") if isinstance(saved, dict) else None
    if not isinstance(heads, dict) or not all(
        isinstance(head, list)
        and len(head) == (3 if closing else 2)
        and type(head[0]) is int
        and isinstance(head[1], str)
        for head in heads.values()
    ):
        shape = "[seq, head hash, closed]" if closing else "[seq, head hash]"
        raise click.ClickException(
            f"{file} is not a digest written by `complaintflow audit digest` "
            f'(a JSON object with "heads": {{case id: {shape}}})'
        )
    found = {cid: (head[0], head[1]) for cid, head in heads.items()}
    closed: dict[str, datetime | None] | None = None
    if closing:
        closed = {}
        for cid, head in heads.items():
            try:
                closed[cid] = audit.read_closed(head[2])
            except ValueError as exc:
                raise click.ClickException(
                    f"{file}: case {printable(cid)}'s {exc} (or null, while it is open)"
                ) from None
    recorded = saved.get("digest")
    if recorded is None:
        # Without the value there is nothing to check the heads against: edited heads
        # would be trusted, and the store blamed for the file's edit.
        raise click.ClickException(
            f'{file} has no "digest" value: the heads cannot be checked against the value '
            "saved with them (the file was edited, or is not a digest written by "
            "`complaintflow audit digest`)"
        )
    if closed is not None:
        given = audit.closing_digest_of(
            (cid, seq, head, closed[cid]) for cid, (seq, head) in found.items()
        )
    else:
        given = audit.digest_of((cid, seq, head) for cid, (seq, head) in found.items())
    if recorded != given:
        raise click.ClickException(
            f"{file}: its heads do not give its digest {printable(str(recorded))}: the file "
            "was edited"
        )
    return str(recorded), found, closed


def _plural(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _report(
    findings: list[audit.Finding],
    what: str,
    tally: audit.Tally,
    *,
    digest: SavedDigest | None = None,
    notes: list[audit.Unchecked] | None = None,
) -> None:
    """The findings and the notes (what could not be checked, which is not a problem),
    then one line: what was verified (how many cases and events, and purged cases,
    which only their tombstones stand for: ``tally.purged``), and the digest checked
    against (its value, to compare with the one kept apart; how many of its cases were
    purged after steps it does not hold, each a note)."""
    for finding in findings:
        click.echo(f"TAMPERED  {finding}")
    for note in notes or ():
        click.echo(f"NOTE      {note}")
    read = f"{_plural(tally.cases, 'case')}, {_plural(tally.events, 'event')}"
    purged = tally.purged
    if purged:
        read += f"; {_plural(purged, 'purged case')}: {'its' if purged == 1 else 'their'} "
        read += "tombstone only" if purged == 1 else "tombstones only"
    if digest is not None:
        read += (
            f"; checked against the saved digest {digest[0]} ({_plural(len(digest[1]), 'case')})"
        )
        if notes:
            read += f", {len(notes)} purged after steps it does not hold: see the "
            read += "note" if len(notes) == 1 else "notes"
    if findings:
        click.echo(f"{what}: {len(findings)} problem(s) ({read})")
        raise SystemExit(1)
    click.echo(f"{what}: verified, no problems ({read})")


def _not_found(store: Store, error: CaseNotFound) -> click.ClickException:
    """A case asked for by id that is not in the store: if it was purged, what its
    tombstone says (when, by whom, why, and the head a saved digest holds for it)."""
    for tombstone in store.tombstones():
        if tombstone.case_id == error.case_id:
            return click.ClickException(
                f"case {printable(tombstone.case_id)} was purged on "
                f"{utc_text(tombstone.purged_at)} by {printable(tombstone.purged_by)} "
                f"({printable(tombstone.reason)}); its tombstone keeps its last seq "
                f"{tombstone.version} and head hash {tombstone.head_hash} (`complaintflow "
                "privacy purged` lists them)"
            )
    return click.ClickException(str(error))


@click.group("audit")
def audit_group() -> None:
    """Verify, digest, show and export case histories."""


@audit_group.command()
@store_options
@click.option("--case", "case_id", default=None, help="Only this case.")
@click.option("--digest", "digest_file", default=None, type=click.Path(dir_okay=False),
              help="A digest saved earlier with `audit digest`.")  # fmt: skip
def verify(store_url: str, case_id: str | None, digest_file: str | None) -> None:
    """Check every chain, seq and snapshot (and, with --digest, that nothing was rewritten
    since the digest was taken). Exits 1 on any problem, naming case and event."""
    saved = _saved_heads(digest_file) if digest_file else None
    store = open_cli_store(store_url)
    tally = audit.Tally()
    notes: list[audit.Unchecked] = []
    try:
        # Counts the purged too; a tombstone's purge after now is a finding.
        findings = audit.verify_store(store, case_id, tally=tally, now=datetime.now(UTC))
        if saved is not None:
            findings += audit.check_digest(store, saved[1], saved[2], unchecked=notes)
    except CaseNotFound as exc:
        raise _not_found(store, exc) from None
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    _report(findings, shown_url(store_url), tally, digest=saved, notes=notes)


@audit_group.command()
@store_options
def digest(store_url: str) -> None:
    """Print a digest of every case's head and when it closed (JSON): save it outside
    the database."""
    store = open_cli_store(store_url)
    try:
        # Read once: the digest is of the heads saved with it.
        document = audit.digest_document(audit.closing_heads(store))
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(json.dumps(document, indent=2, sort_keys=True))


@audit_group.command()
@click.argument("case_id")
@store_options
@click.option("--at", "at", default=None, help="ISO 8601 instant: the case as it stood then.")
@_POLICY
def show(case_id: str, store_url: str, at: str | None, policy_files: tuple[str, ...]) -> None:
    """The case's timeline (who did what, when, under which policy, with what data) up
    to --at (an event at exactly --at included), each SLA target's verdict then (under
    the policy the case ran under then, if given with --policy), then its state. Times
    are in UTC."""
    when = instant(at, "--at")
    policies = {policy.stamp: policy for policy in _policies(policy_files)}
    store = open_cli_store(store_url)
    try:
        # The snapshot first, then the events up to its version: a step landing meanwhile
        # is left out of both, so the state printed is the timeline's.
        current = store.load(case_id)  # SnapshotUnreadable: one line, as every error
        events = [e for e in store.events(case_id) if e.seq <= current.version]
        vault = vault_of(current.personal)
        case = audit.state_at(events, when, vault) if when is not None else current
    except CaseNotFound as exc:
        raise _not_found(store, exc) from None
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    shown = [e for e in events if e.seq <= case.version]
    upto = f"as it stood at {utc_text(when)}" if when is not None else "every event"
    for line in timeline(case_id, upto, shown, vault):
        click.echo(line)
    # Without --at: now, to the second (or the last event's time, on a history ahead of
    # this machine's clock: the case as it stands is not judged before its own steps).
    moment = when if when is not None else max(datetime.now(UTC).replace(microsecond=0),
                                               case.updated_at)  # fmt: skip
    for line in verdict_lines(case, policies.get(case.policy_version), moment):
        click.echo(line)
    click.echo(f"state: {case.state}, version {case.version}, priority {case.priority.value}")


def verdict_lines(case: Case, policy: Policy | None, when: datetime) -> list[str]:
    """The SLA section of ``audit show``: each target of ``policy`` (the one ``case``
    ran under at ``when``; None if not given) with its step, due time and verdict at
    ``when`` (``sla.verdicts``), or one line saying the policy was not given."""
    if policy is None:
        return [printable(not_given_text("SLA verdicts: the case ran under policy",
                                         [case.policy_version]))]  # fmt: skip
    stamp = printable(short_stamp(policy.stamp))
    heading = f"SLA targets under policy {stamp} at {utc_text(when)}:"
    verdicts = sla.verdicts(case, policy, when)
    if not verdicts:
        return [f"{heading} none apply to this case"]
    head = ("target", "step", "due (UTC)", "verdict")
    rows = [
        (printable(v.target), v.step, utc_text(v.due_at) if v.due_at else "-", verdict_text(v))
        for v in verdicts
    ]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(3)]
    return [heading] + [
        "  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3]]) for row in (head, *rows)
    ]


def verdict_text(verdict: sla.Verdict) -> str:
    """``met at T``, ``breached at T`` (``; done at T`` once the step was taken late),
    ``running (1h30 left)`` or ``paused (1h30 left)`` (``, warned``), ``not started``."""
    if verdict.kind in ("met", "breached"):
        text = verdict.kind + (f" at {utc_text(verdict.at)}" if verdict.at else "")
        if verdict.kind == "breached" and verdict.done_at is not None:
            text += f"; done at {utc_text(verdict.done_at)}"
        return text
    if verdict.kind in ("running", "paused"):
        left = f"{span(verdict.remaining)} left" if verdict.remaining is not None else ""
        warned = "warned" if verdict.warned else ""
        detail = ", ".join(part for part in (left, warned) if part)
        return f"{verdict.kind} ({detail})" if detail else verdict.kind
    return verdict.kind


def utc_text(when: datetime) -> str:
    """``when`` in UTC as ISO 8601 with ``Z``, to the second (microseconds when any)."""
    text = when.astimezone(UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


def short_stamp(stamp: str) -> str:
    """A policy version as ``<declared version>@sha256:<first 8 hex digits>``: enough to
    tell apart two policies with one declared version (the full stamps are listed)."""
    version, at, digest = stamp.rpartition("@sha256:")
    return f"{version}{at}{digest[:8]}" if at else stamp


def timeline(case_id: str, upto: str, events: list[Event], vault: Vault) -> list[str]:
    """The lines of ``audit show``: a heading, one row per event (seq, time in UTC,
    actor, step, policy version, data as JSON with personal values revealed), and the
    full policy versions the rows abbreviate."""
    rows = [
        (
            str(e.seq),
            utc_text(e.at),
            printable(e.actor),
            printable(e.type),
            printable(short_stamp(e.policy_version)),
            printable(json.dumps(audit.revealed(e, vault), ensure_ascii=False)),
        )
        for e in events
    ]
    head = ("seq", "time (UTC)", "actor", "step", "policy", "data")
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(5)]
    lines = [f"case {printable(case_id)}, {upto}; times in UTC"]
    for row in (head, *rows):
        cells = [row[0].rjust(widths[0]), *(row[i].ljust(widths[i]) for i in range(1, 5))]
        lines.append("  ".join([*cells, row[5]]))
    stamps = dict.fromkeys(e.policy_version for e in events)
    lines += [f"policy {printable(short_stamp(s))}: {printable(s)}" for s in stamps]
    return lines


@audit_group.command()
@store_options
@click.option("--case", "case_id", default=None, help="Only this case.")
@click.option("--since", default=None, help="Only events at or after this ISO 8601 instant.")
@click.option("--until", default=None, help="Only events before this ISO 8601 instant.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)  # fmt: skip
@click.option("-o", "--output", default="-", help="File to write (default: stdout).")
@click.option("--without-personal", is_flag=True,
              help="Leave customers' personal values out (a pseudonymised export: events "
                   "keep their references; it still verifies).")  # fmt: skip
def export(
    store_url: str,
    case_id: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    output: str,
    without_personal: bool,
) -> None:
    """Export events: JSON Lines (full fidelity, verifiable offline; without --case, the
    purged cases' tombstones too; its last line counts what it holds) or CSV (one row
    per event, for a spreadsheet; no tombstones); streamed case by case. -o FILE is
    written whole or not at all; an export to stdout that fails part-way ends with an
    error saying that what it wrote is incomplete, and exit status 1."""
    writer = audit.export_jsonl if fmt == "jsonl" else audit.export_csv
    since_at, until_at = time_range(since, until)
    store = open_cli_store(store_url)
    stdout = _Started(sys.stdout)
    try:
        ids = [case_id] if case_id else None
        if case_id is not None:
            store.load(case_id)  # an unknown case: refused before a line is written

        def write(out: IO[str]) -> int:
            return writer(
                store, out, ids, since=since_at, until=until_at, personal=not without_personal
            )

        if output == "-":
            count = write(cast(IO[str], stdout))
        else:
            with output_file(output) as out:
                count = write(out)
    except CaseNotFound as exc:
        raise _incomplete(_not_found(store, exc), stdout.started, fmt) from None
    except ComplaintflowError as exc:
        raise _incomplete(click.ClickException(str(exc)), stdout.started, fmt) from None
    finally:
        store.close()
    click.echo(f"{count} events exported", err=True)


class _Started:
    """A text stream that remembers whether anything was written to it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.started = False

    def write(self, text: str) -> int:
        self.started = True
        return self.stream.write(text)


def _incomplete(error: click.ClickException, started: bool, fmt: str) -> click.ClickException:
    """``error`` of an export that stopped part-way: once it had written to stdout, the
    message says that what was written is incomplete (a JSON Lines file without its end
    line, which verify-file refuses)."""
    if not started:
        return error
    what = "the JSON Lines" if fmt == "jsonl" else "the CSV"
    refused = " (it has no end line: `complaintflow audit verify-file` refuses it)"
    return click.ClickException(
        f"{error.message}; {what} written to stdout stops there and is incomplete"
        + (refused if fmt == "jsonl" else "")
    )


@audit_group.command("verify-file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--digest", "digest_file", default=None, type=click.Path(dir_okay=False),
              help="A digest saved earlier with `audit digest`: each of its cases must be "
                   "in the file, unchanged up to its saved head.")  # fmt: skip
def verify_file(file: str, digest_file: str | None) -> None:
    """Verify an exported JSON Lines file offline, without the database (and, with
    --digest, that it holds every case of the digest, none rewritten or cut short, or
    its tombstone with the digest's head, if purged)."""
    saved = _saved_heads(digest_file) if digest_file else None
    tally = audit.Tally()
    notes: list[audit.Unchecked] = []
    try:
        with open(file, encoding="utf-8") as lines:
            findings = audit.verify_export(
                lines,
                saved[1] if saved else None,
                closed=saved[2] if saved else None,
                tally=tally,
                now=datetime.now(UTC),
                unchecked=notes,
            )
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    _report(findings, file, tally, digest=saved, notes=notes)
