"""Forged events with correctly computed hashes (the scheme is public: docs/audit.md).

Every link of such a chain holds, so the chain alone cannot show them. What locates them
is the snapshot the engine writes with every event (its ``version`` and ``head_hash``)
and, once the snapshot is rewritten to match, only a digest saved before.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, delete, update

from adapters.sql import SqlStore
from adapters.sql_schema import build_tables
from tests.conftest import START
from tests.stores import SQL_KINDS, sql_tables, sqlite_url
from tests.test_audit import history
from workflow import Engine, ManualClock, audit
from workflow.cli import main
from workflow.domain import case_to_json
from workflow.events import Event, canonical_json, make_event
from workflow.personal import vault_of
from workflow.replay import replay

#: Each case of ``history``: open and six steps.
VERSION = 7
CID = "case-1"


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlStore, str, str]]:
    with sql_tables(request.param, tmp_path) as (store, url, prefix):
        clock = ManualClock(START)
        history(Engine(store, clock=clock), clock)
        assert audit.verify_store(store) == []
        yield store, url, prefix


def _note(seq: int, after: Event) -> Event:
    """A forged ``add_note`` following ``after``, its hash computed as the page says."""
    return make_event(after.case_id, seq, "add_note", after.at + timedelta(minutes=1),
                      "agent:mallory", {"text": "refund of 400 EUR approved"},
                      after.policy_version, after.hash)  # fmt: skip


def appended(events: list[Event]) -> list[Event]:
    """``events`` and a forged event after the last."""
    return [*events, _note(events[-1].seq + 1, events[-1])]


def inserted(events: list[Event], at: int = 4) -> list[Event]:
    """``events`` with a forged event at seq ``at``, every later event renumbered and
    re-hashed, so that every link holds."""
    out = [*events[: at - 1], _note(at, events[at - 2])]
    for e in events[at - 1 :]:
        out.append(make_event(e.case_id, e.seq + 1, e.type, e.at, e.actor, e.data,
                              e.policy_version, out[-1].hash))  # fmt: skip
    return out


def rewrite(url: str, prefix: str, events: list[Event]) -> None:
    """Replace the case's events with ``events`` in the database; its snapshot stays."""
    tables = build_tables(prefix)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(delete(tables.events).where(tables.events.c.case_id == events[0].case_id))
        conn.execute(tables.events.insert(), [
            {"case_id": e.case_id, "seq": e.seq, "type": e.type, "at": e.at, "actor": e.actor,
             "data": canonical_json(e.data), "policy_version": e.policy_version,
             "prev_hash": e.prev_hash, "hash": e.hash}
            for e in events
        ])  # fmt: skip
    engine.dispose()


def match_snapshot(url: str, prefix: str, store: SqlStore, case_id: str) -> None:
    """Rewrite the case's snapshot as a replay of its (forged) events gives it, with
    the personal values it holds: what a careful forger does next."""
    events = store.events(case_id)
    case = replay(events, vault_of(store.load(case_id).personal))
    tables = build_tables(prefix)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(tables.cases)
            .where(tables.cases.c.case_id == case_id)
            .values(
                snapshot=case_to_json(case).decode("utf-8"),
                version=case.version,
                state=case.state,
                updated_at=case.updated_at,
            )
        )
    engine.dispose()


def findings_of(url: str, prefix: str) -> list[list[audit.Finding]]:
    """What verify finds on every path: the whole store, the case alone (both from the
    stored text), and the case from ``load`` (as on a store without stored histories)."""
    fresh = SqlStore(url, prefix=prefix)
    try:
        return [
            audit.verify_store(fresh),
            audit.verify_store(fresh, CID),
            audit.verify_case(fresh, CID),
        ]
    finally:
        fresh.close()


def where(findings: list[audit.Finding]) -> list[tuple[str, int | None]]:
    return [(f.case_id, f.seq) for f in findings]


BEYOND = (
    "seq 8 is beyond the snapshot's version 7: it was added without the case's snapshot, "
    "which the engine writes in the same transaction (a forgery, or another program's "
    "write)"
)


def test_an_appended_forgery_with_a_correct_hash_is_located_beyond_the_snapshot(
    sql: tuple[SqlStore, str, str],
) -> None:
    store, url, prefix = sql
    forged = appended(store.events(CID))
    assert audit.check_chain(CID, forged) == []  # every link holds
    rewrite(url, prefix, forged)
    for findings in findings_of(url, prefix):
        # The snapshot is sound up to its version: only the event beyond it is found.
        assert [(f.case_id, f.seq, f.problem) for f in findings] == [(CID, 8, BEYOND)]


def test_a_mid_chain_forgery_with_every_later_event_rehashed_is_located(
    sql: tuple[SqlStore, str, str],
) -> None:
    store, url, prefix = sql
    forged = inserted(store.events(CID))
    assert audit.check_chain(CID, forged) == []
    rewrite(url, prefix, forged)
    for findings in findings_of(url, prefix):
        assert where(findings) == [(CID, 7), (CID, 8), (CID, None)]
        rewritten, beyond, differs = (f.problem for f in findings)
        assert rewritten.startswith(
            "seq 7's hash is not the snapshot's head hash, and no event's is: the chain was "
            "rewritten at or before seq 7"
        )
        assert "`complaintflow audit verify --digest FILE`" in rewritten
        assert beyond == BEYOND
        assert differs == (
            "the stored snapshot differs from a replay of its events up to seq 7, its version"
        )


def test_a_deleted_last_event_is_located(sql: tuple[SqlStore, str, str]) -> None:
    """It used to be only "the snapshot differs", with no seq."""
    store, url, prefix = sql
    rewrite(url, prefix, store.events(CID)[:-2])
    for findings in findings_of(url, prefix):
        assert where(findings) == [(CID, 6), (CID, None)]
        assert findings[0].problem.startswith(
            "seqs 6-7 are missing: the snapshot's version is 7 and its head hash is no "
            "stored event's"
        )


def test_check_head_on_a_case_with_no_events_names_the_seqs_missing() -> None:
    """``audit.check_head`` is public: given no events (every one deleted) it says which
    seqs the snapshot's version is missing, rather than fail."""
    (finding,), upto = audit.check_head(CID, [], VERSION, "ab" * 32)
    assert (finding.case_id, finding.seq, upto) == (CID, 1, None)
    assert finding.problem.startswith(
        "seqs 1-7 are missing: the snapshot's version is 7 and its head hash is no stored event's"
    )


def test_a_snapshot_whose_head_is_another_event_than_its_version_names_where_they_part(
    sql: tuple[SqlStore, str, str],
) -> None:
    """The snapshot's version edited (here to 9) while its head hash is still seq 7's:
    chain and snapshot part after seq 7."""
    store, url, prefix = sql
    text = case_to_json(store.load(CID)).decode("utf-8").replace('"version":7', '"version":9')
    tables = build_tables(prefix)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(tables.cases).where(tables.cases.c.case_id == CID)
                     .values(snapshot=text))  # fmt: skip
    engine.dispose()
    fresh = SqlStore(url, prefix=prefix)
    findings = audit.verify_store(fresh)
    fresh.close()
    assert where(findings) == [(CID, 7), (CID, None)]
    assert findings[0].problem == (
        "the snapshot's head hash is seq 7's, but its version is 9: chain and snapshot part "
        "after seq 7"
    )


@pytest.mark.parametrize("forge", [appended, inserted], ids=["appended", "inserted"])
def test_with_the_snapshot_rewritten_to_match_verify_finds_nothing(
    sql: tuple[SqlStore, str, str], forge: object
) -> None:
    """A forged history re-hashed throughout, with its snapshot rewritten to match, is
    what the engine could have written: no check of the store alone can tell."""
    store, url, prefix = sql
    assert callable(forge)
    rewrite(url, prefix, forge(store.events(CID)))
    match_snapshot(url, prefix, store, CID)
    for findings in findings_of(url, prefix):
        assert findings == []


def test_a_digest_saved_before_finds_a_mid_chain_forgery_the_snapshot_matches(
    sql: tuple[SqlStore, str, str],
) -> None:
    store, url, prefix = sql
    heads = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    rewrite(url, prefix, inserted(store.events(CID)))
    match_snapshot(url, prefix, store, CID)
    fresh = SqlStore(url, prefix=prefix)
    assert audit.verify_store(fresh) == []
    assert [(f.case_id, f.seq, f.problem) for f in audit.check_digest(fresh, heads)] == [
        (CID, VERSION, "differs from the saved digest: rewritten")
    ]
    fresh.close()


def test_an_appended_forgery_the_snapshot_matches_is_not_found_even_by_a_digest(
    sql: tuple[SqlStore, str, str],
) -> None:
    """The limit, as docs/audit.md states it: an event added after the last, hashed
    correctly, with the snapshot rewritten to match, is indistinguishable from a step
    taken after the digest was saved (the history up to the digest's head is unchanged,
    which is what a digest proves)."""
    store, url, prefix = sql
    heads = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    rewrite(url, prefix, appended(store.events(CID)))
    match_snapshot(url, prefix, store, CID)
    fresh = SqlStore(url, prefix=prefix)
    assert audit.verify_store(fresh) == []
    assert audit.check_digest(fresh, heads) == []
    fresh.close()


def test_audit_verify_with_a_digest_finds_a_consistent_rewrite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    runner = CliRunner()
    saved = tmp_path / "digest.json"
    saved.write_text(runner.invoke(main, ["audit", "digest", "--store", url]).output)
    rewrite(url, "cf_", inserted(store.events(CID)))
    match_snapshot(url, "cf_", store, CID)
    store.close()
    alone = runner.invoke(main, ["audit", "verify", "--store", url])
    assert alone.exit_code == 0, alone.output
    found = runner.invoke(main, ["audit", "verify", "--store", url, "--digest", str(saved)])
    assert found.exit_code == 1
    assert found.output.splitlines()[0] == (
        "TAMPERED  case case-1 event 7: differs from the saved digest: rewritten"
    )


# -- an exported file: no snapshot in it, so only a digest can tell ------------------------


def _export(tmp_path: Path) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """An export of a sound store, and its digest's heads."""
    from adapters.memory import MemoryStore

    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    out = io.StringIO()
    audit.export_jsonl(store, out)
    heads = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    return out.getvalue().splitlines(), heads


def _forged_lines(lines: list[str], forge: object) -> list[str]:
    """The export with case-1's events replaced by ``forge(events)`` (and the end line
    counting them, as a forger who reads docs/audit.md writes it)."""
    assert callable(forge)
    events = [e for e in audit.read_jsonl(lines) if e.case_id == CID]
    keep = [line for line in lines if not (line.startswith('{"actor"') and f'"{CID}"' in line)]
    return _ended(keep + [json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True)
                          for e in forge(events)])  # fmt: skip


def _ended(lines: list[str]) -> list[str]:
    """``lines`` with their end line (if any) replaced by one that counts what they hold."""
    body = [line for line in lines if not line.startswith('{"end"')]
    kinds = [next(iter(json.loads(line))) for line in body[1:]]
    events = [line for line, kind in zip(body[1:], kinds, strict=True)
              if kind not in ("personal", "purged")]  # fmt: skip
    counts = {
        "cases": len({json.loads(line)["case_id"] for line in events}),
        "events": len(events),
        "tombstones": kinds.count("purged"),
    }
    return [*body, json.dumps({"end": counts})]


def test_an_export_forged_consistently_verifies_alone_and_is_found_with_a_digest(
    tmp_path: Path,
) -> None:
    lines, heads = _export(tmp_path)
    forged = _forged_lines(lines, inserted)
    assert audit.verify_export(forged) == []
    assert [(f.case_id, f.seq, f.problem) for f in audit.verify_export(forged, heads)] == [
        (CID, VERSION, "differs from the saved digest: rewritten")
    ]
    # Appended after the digest's head: as on the store, a digest cannot tell.
    assert audit.verify_export(_forged_lines(lines, appended), heads) == []


def test_an_export_cut_short_or_missing_a_case_is_found_with_a_digest(tmp_path: Path) -> None:
    lines, heads = _export(tmp_path)
    cut = _forged_lines(lines, lambda events: events[:5])
    assert audit.verify_export(cut) == []
    assert [(f.case_id, f.seq, f.problem) for f in audit.verify_export(cut, heads)] == [
        (CID, VERSION, "ends at seq 5, before the saved digest's seq 7: cut short, or events "
                       "deleted")
    ]  # fmt: skip
    removed = [line for line in lines if f'"{CID}"' not in line]
    (whole,) = audit.verify_export(removed)  # a file with the end line as exported
    assert str(whole) == (
        "the file: the end line (line 11) counts 2 cases, 14 events, 0 tombstones, but the "
        "file holds 1 case, 7 events, 0 tombstones: lines were removed or added"
    )
    without = _ended(removed)  # as a forger who counts again writes it
    assert audit.verify_export(without) == []
    # The file holds every tombstone of its store (a whole-store export): a case of the
    # digest without events or a tombstone in it was not purged.
    assert [(f.case_id, f.seq, f.problem) for f in audit.verify_export(without, heads)] == [
        (CID, None, "is in the saved digest but not in the file, and no tombstone in it says "
                    "it was purged (an export of a time window, a file cut short, or a case "
                    "deleted from the store)")
    ]  # fmt: skip


def test_audit_verify_file_takes_a_digest(tmp_path: Path) -> None:
    lines, heads = _export(tmp_path)
    digest = tmp_path / "digest.json"
    digest.write_text(json.dumps({
        "digest": audit.digest_of((cid, seq, head) for cid, (seq, head) in heads.items()),
        "heads": {cid: [seq, head] for cid, (seq, head) in heads.items()},
    }))  # fmt: skip
    exported = tmp_path / "events.jsonl"
    exported.write_text("\n".join(_forged_lines(lines, inserted)) + "\n")
    runner = CliRunner()
    alone = runner.invoke(main, ["audit", "verify-file", str(exported)])
    assert alone.exit_code == 0, alone.output
    found = runner.invoke(main, ["audit", "verify-file", str(exported), "--digest", str(digest)])
    assert found.exit_code == 1
    assert "TAMPERED  case case-1 event 7: differs from the saved digest: rewritten" in (
        found.output
    )
