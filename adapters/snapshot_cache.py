"""The SQL store's snapshot cache: each case's snapshot JSON as last written or read by
this process, with the ``Case`` built from it.

Loading a case costs far less than validating its snapshot JSON into a ``Case``. The
store still reads the stored text on every load, from the database, and reuses the cached
``Case`` only when that text is exactly the text the ``Case`` was written as or built
from; anything else (another process's step, an edited row, a restored file) is
validated afresh. A ``Case`` is a frozen record, so one held here is handed out as is.

Where the store can prove that nothing has written to the database since it last
compared an entry with the stored text, it skips reading the text: an entry may carry a
*stamp*, an opaque value the store computes for "the database as this connection last
saw it" (see ``adapters.sqlite_hot``); ``fresh`` returns the entry only when the store's
stamp now is the one the entry was put with.

Why the text and not only the version: the version names one snapshot only as long as
nobody edits rows in place. Auditing exists to catch exactly that (``audit.verify``
compares the stored snapshot with a replay), and a cache keyed on the version would show
the auditor the snapshot this process remembers instead of the one on disk.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextlib import suppress

from workflow.domain import Case

#: How many cases an ``SqlStore`` remembers by default (``snapshot_cache=`` option).
DEFAULT_SIZE = 1024


class SnapshotCache:
    """At most ``size`` cases by id (0: none); the one least recently put (written, or
    read from the database) is dropped first. Safe to share between threads."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError(f"the snapshot cache size must be 0 or more, not {size}")
        self.size = size
        self._cases: dict[str, tuple[str, Case, Hashable]] = {}

    def __len__(self) -> int:
        return len(self._cases)

    def match(self, case_id: str, stored: str) -> Case | None:
        """The cached ``Case`` of ``case_id`` if ``stored`` (the snapshot text the
        database holds now) is the text it was cached with; otherwise None."""
        entry = self._cases.get(case_id)
        if entry is not None and entry[0] == stored:
            return entry[1]
        return None

    def fresh(self, case_id: str, stamp: Hashable) -> Case | None:
        """The cached ``Case`` of ``case_id`` if it was put with ``stamp`` (never for a
        stamp of None); otherwise None."""
        entry = self._cases.get(case_id)
        if entry is not None and stamp is not None and entry[2] == stamp:
            return entry[1]
        return None

    def put(self, stored: str, case: Case, stamp: Hashable = None) -> None:
        """Remember that the snapshot text ``stored`` is ``case`` (as the database was
        at ``stamp``, if given). No lock (this runs every step): each dict operation is
        atomic, and an eviction that races another thread's is skipped (the cache may
        hold a case or two over its size until the next put)."""
        if not self.size:
            return
        cases = self._cases
        key = case.id
        cases.pop(key, None)  # to the end: the most recently used
        cases[key] = (stored, case, stamp)
        if len(cases) > self.size:
            with suppress(KeyError, RuntimeError, StopIteration):
                del cases[next(iter(cases))]

    def discard(self, case_id: str) -> None:
        self._cases.pop(case_id, None)

    def clear(self) -> None:
        self._cases.clear()
