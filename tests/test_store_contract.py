"""The shipped store contract, run on every shipped store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import MemoryStore, open_store
from adapters.sql import SqlStore
from adapters.testing import StoreContract
from tests.stores import postgres_language_collation_url, postgres_store, sqlite_url
from workflow import StoreError


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = SqlStore(sqlite_url(tmp_path), create=True)
        yield store
        store.close()


class TestStoreWithoutFindsCases(StoreContract):
    """A third party's store that does not find cases itself: the engine's scan through
    the ``Store`` port keeps the contract too."""

    @pytest.fixture
    def store(self) -> MemoryStore:
        from tests.test_find_cases import ScanOnly

        return ScanOnly()


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[object]:
        yield from postgres_store()


@pytest.mark.postgres
class TestPostgresStoreUnderALanguageCollation:
    """The contract's tests of order, on a database whose collation sorts text by
    language rules (``case-a`` before ``case-B``): pages, the walk's keyset and the cases
    at risk still come in code-point order, as on every other store."""

    @pytest.fixture
    def store(self) -> Iterator[object]:
        yield from postgres_store(url=postgres_language_collation_url())

    test_find_cases_pages_through_cases_in_the_order_they_were_opened = (
        StoreContract.test_find_cases_pages_through_cases_in_the_order_they_were_opened
    )
    test_cases_at_risk_come_soonest_first_then_by_case_id = (
        StoreContract.test_cases_at_risk_come_soonest_first_then_by_case_id
    )


def test_open_store_knows_memory_sqlite_and_postgres_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    sqlite = open_store(sqlite_url(tmp_path), create=True)
    assert isinstance(sqlite, SqlStore)
    sqlite.close()


def test_open_store_names_an_unknown_scheme() -> None:
    with pytest.raises(StoreError, match=r"'redis'.*known: memory, postgresql, sqlite"):
        open_store("redis://localhost")


def fake_store(url: str, **options: object) -> MemoryStore:
    """A third party's store factory: takes the URL and the options."""
    assert url == "fake://anything"
    return MemoryStore()


def test_a_third_party_store_is_found_by_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import adapters

    found = EntryPoint(
        name="fake", value="tests.test_store_contract:fake_store", group="complaintflow.stores"
    )
    monkeypatch.setattr(
        adapters,
        "entry_points",
        lambda group: [found] if group == adapters.ENTRY_POINT_GROUP else [],
    )
    assert isinstance(open_store("fake://anything"), MemoryStore)


def test_a_database_without_tables_is_refused_naming_the_command(tmp_path: Path) -> None:
    from workflow import SchemaVersionError

    url = sqlite_url(tmp_path)
    with pytest.raises(SchemaVersionError, match=r"run `complaintflow db init sqlite:///"):
        SqlStore(url)


def test_a_database_at_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    from workflow import SchemaVersionError

    url = sqlite_url(tmp_path)
    SqlStore(url, create=True).close()
    import sqlite3

    with sqlite3.connect(tmp_path / "cases.db") as conn:
        conn.execute("UPDATE cf_alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaVersionError, match="newer than this complaintflow knows"):
        SqlStore(url)
    with sqlite3.connect(tmp_path / "cases.db") as conn:
        conn.execute("UPDATE cf_alembic_version SET version_num = '0001'")
    with pytest.raises(SchemaVersionError, match=r"run `complaintflow db upgrade"):
        SqlStore(url)


def test_db_init_creates_the_tables_and_the_store_opens(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workflow.cli import main

    url = sqlite_url(tmp_path)
    result = CliRunner().invoke(main, ["db", "init", url, "--prefix", "support_cf_"])
    assert result.exit_code == 0, result.output
    assert "schema at revision 0005" in result.output
    store = SqlStore(url, prefix="support_cf_")
    assert list(store.case_ids()) == []
    store.close()
    again = CliRunner().invoke(main, ["db", "upgrade", url, "--prefix", "support_cf_"])
    assert again.exit_code == 0, again.output


def test_an_unreachable_database_is_store_unavailable() -> None:
    from workflow import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="unavailable") as error:
        SqlStore("postgresql+psycopg://nobody@127.0.0.1:1/none", create=True)
    assert error.value.__cause__ is not None  # the driver's error, kept


@pytest.mark.postgres
def test_the_tables_can_live_in_their_own_postgres_schema() -> None:
    from sqlalchemy import create_engine

    from tests.stores import postgres_url
    from workflow import Engine

    url = postgres_url()
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS cf_test_schema CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA cf_test_schema")
    try:
        store = SqlStore(url, schema="cf_test_schema", prefix="support_", create=True)
        cid = Engine(store).open_case(actor="agent:a", customer={"id": "c", "name": "N"},
                                      channel="web").id  # fmt: skip
        with admin.connect() as conn:
            count = conn.exec_driver_sql(
                "SELECT count(*) FROM cf_test_schema.support_cases"
            ).scalar()
        assert count == 1
        assert store.load(cid).id == cid
        store.close()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA cf_test_schema CASCADE")
        admin.dispose()


def test_a_missing_table_names_the_schema_command_not_a_retry(tmp_path: Path) -> None:
    import sqlite3

    from workflow import SchemaVersionError, StoreUnavailable

    store = SqlStore(sqlite_url(tmp_path), create=True)
    with sqlite3.connect(tmp_path / "cases.db") as conn:
        conn.execute("DROP TABLE cf_deadlines")
    with pytest.raises(SchemaVersionError, match="complaintflow db upgrade") as error:
        store.pending_deadlines("any")
    assert not isinstance(error.value, StoreUnavailable)
    store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_constraint_that_is_not_a_duplicate_is_a_store_error_not_a_conflict(
    backend: str, tmp_path: Path
) -> None:
    """Only a unique or primary key violation means two writers raced (a conflict to
    retry); any other refusal by the database is an error that a retry would repeat."""
    from sqlalchemy import text

    from workflow import ConcurrencyConflict, Engine, ManualClock

    stores = postgres_store() if backend == "postgres" else None
    store = next(stores) if stores is not None else SqlStore(sqlite_url(tmp_path), create=True)
    assert isinstance(store, SqlStore)
    try:
        events = store.tables.events.name
        with store.engine.begin() as conn:
            if backend == "sqlite":
                conn.execute(text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {events} "
                    "WHEN NEW.actor = 'agent:refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                ))  # fmt: skip
            else:
                conn.execute(text(
                    f"ALTER TABLE {events} ADD CONSTRAINT refuse CHECK (actor <> 'agent:refused')"
                ))  # fmt: skip
        engine = Engine(store, clock=ManualClock(datetime(2026, 11, 2, 9, tzinfo=UTC)))
        cid = engine.open_case(
            actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="email"
        ).id
        with pytest.raises(StoreError, match=f"writing case {cid}: the database refused it"):
            engine.add_note(cid, actor="agent:refused", text="not this one")
        with pytest.raises(ConcurrencyConflict):  # a duplicate still is a race
            engine.open_case(
                actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="email",
                case_id=cid,
            )  # fmt: skip
        assert [e.type for e in store.events(cid)] == ["open"]
        assert engine.add_note(cid, actor="agent:a", text="fine").version == 2
    finally:
        if stores is not None:
            stores.close()
        else:
            store.close()


THIRD_PARTY_TESTS = """
import pytest
from adapters import MemoryStore
from adapters.testing import StoreContract


class NewestFirst(MemoryStore):
    def case_ids(self):
        return iter(reversed(list(super().case_ids())))


class TestNewestFirst(StoreContract):
    @pytest.fixture
    def store(self):
        yield NewestFirst()
"""


def test_a_third_party_running_the_contract_sees_what_a_failed_check_compared(
    tmp_path: Path,
) -> None:
    """A store's own test suite, outside this repository, as docs/adapters.md shows it:
    pytest rewrites the contract's assertions, so a failure shows both sides rather
    than a bare ``AssertionError``."""
    import subprocess
    import sys

    (tmp_path / "test_mystore.py").write_text(THIRD_PARTY_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "case_ids"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "assert ['case-2', 'case-1', 'case-0'] == ['case-0', 'case-1', 'case-2']" in (
        result.stdout
    )


class _KeyTakenEvenOnConflict(MemoryStore):
    """Records the idempotency key before it checks the version."""

    def append(self, snapshot: Any, events: Any, expected_version: int, deadlines: Any = None,
               idempotency_key: str | None = None, unchanged: Any = None,
               idempotency_fingerprint: str | None = None) -> None:  # fmt: skip
        if idempotency_key is not None and idempotency_key not in self._idempotency:
            self._idempotency[idempotency_key] = (
                snapshot.id, snapshot.version, idempotency_fingerprint,
            )  # fmt: skip
            idempotency_key = None
        super().append(
            snapshot, events, expected_version, deadlines, idempotency_key, unchanged,
            idempotency_fingerprint,
        )  # fmt: skip


class _OneEventAtATime(MemoryStore):
    """Writes an append's events one by one: a refused one leaves those before it."""

    def append(self, snapshot: Any, events: Any, expected_version: int, deadlines: Any = None,
               idempotency_key: str | None = None, unchanged: Any = None,
               idempotency_fingerprint: str | None = None) -> None:  # fmt: skip
        from workflow.domain import evolve

        for n, event in enumerate(events):
            last = n == len(events) - 1
            written = snapshot if last else evolve(snapshot, version=event.seq)
            super().append(
                written, [event], expected_version + n, deadlines if last else None,
                idempotency_key if last else None, unchanged,
                idempotency_fingerprint if last else None,
            )  # fmt: skip


class _NoneClearsDeadlines(MemoryStore):
    def append(self, snapshot: Any, events: Any, expected_version: int, deadlines: Any = None,
               idempotency_key: str | None = None, unchanged: Any = None,
               idempotency_fingerprint: str | None = None) -> None:  # fmt: skip
        super().append(
            snapshot, events, expected_version, deadlines or [], idempotency_key, unchanged,
            idempotency_fingerprint,
        )  # fmt: skip


class _ClaimsForever(MemoryStore):
    """Never hands a deadline out twice, even when its sweeper died with it."""

    def __init__(self) -> None:
        super().__init__()
        self._handed: set[tuple[str, str]] = set()

    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Any]:
        found = [
            d for d in super().due_deadlines(now, limit) if (d.case_id, d.key) not in self._handed
        ]
        self._handed.update((d.case_id, d.key) for d in found)
        return found


class _LatestDueFirst(MemoryStore):
    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Any]:
        return sorted(super().due_deadlines(now), key=lambda d: d.due_at, reverse=True)[:limit]


class _KeysOutlivePurge(MemoryStore):
    def purge(self, tombstone: Any) -> None:
        keys = dict(self._idempotency)
        super().purge(tombstone)
        self._idempotency = keys


class _FirstSnapshotsByCustomer(MemoryStore):
    """``customer_cases`` from a copy taken when each case was opened."""

    def __init__(self) -> None:
        super().__init__()
        self._first: dict[str, Any] = {}

    def append(self, snapshot: Any, *args: Any, **kwargs: Any) -> None:
        super().append(snapshot, *args, **kwargs)
        self._first.setdefault(snapshot.id, snapshot)

    def customer_cases(self, customer_id: str) -> list[Any]:
        return [self._first[c.id] for c in super().customer_cases(customer_id)]


@pytest.mark.parametrize(
    ("faulty", "check"),
    [
        (_KeyTakenEvenOnConflict, "test_a_stale_append_records_no_idempotency_key"),
        (_OneEventAtATime, "test_an_append_is_all_or_nothing"),
        (_NoneClearsDeadlines, "test_deadlines_none_leaves_them_and_an_empty_list_clears_them"),
        (_ClaimsForever, "test_a_claim_lapses_after_the_lease"),
        (_LatestDueFirst, "test_due_deadlines_come_soonest_first_at_most_limit"),
        (_KeysOutlivePurge, "test_a_purged_case_is_gone_everywhere_and_leaves_its_tombstone"),
        (
            _FirstSnapshotsByCustomer,
            "test_an_erased_customer_s_values_are_nowhere_the_store_hands_out",
        ),
    ],
)
def test_the_contract_catches_a_store_that_breaks_what_the_engine_relies_on(
    faulty: type[MemoryStore], check: str
) -> None:
    """Each faulty store fails the contract test written for its fault (and the sound
    memory store passes it: ``TestMemoryStore``)."""
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(StoreContract(), check)(faulty())
