"""complaintflow storage adapters: implementations of ``workflow.store.Store``.

``open_store(url)`` picks one by the URL's scheme: ``memory://``, ``sqlite:///path.db``,
``postgresql+psycopg://user@host/db``; other schemes are looked up in the entry-point group
``complaintflow.stores`` (a third-party store registers ``scheme = "package.module:factory"``,
the factory taking the URL and keyword options).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from adapters.memory import MemoryStore
from workflow.errors import StoreError
from workflow.store import Store

__all__ = ["ENTRY_POINT_GROUP", "MemoryStore", "open_store"]

ENTRY_POINT_GROUP = "complaintflow.stores"
_SQL_SCHEMES = {"sqlite", "postgresql"}


def open_store(url: str, **options: Any) -> Store:
    """A store for ``url``. ``options`` go to the store (for SQL: ``prefix``, ``schema``,
    ``create``, ``durability``, ``snapshot_cache``, ``engine_options``)."""
    scheme = urlsplit(url).scheme
    base = scheme.split("+", 1)[0]
    if scheme == "memory":
        unknown = set(options) - {"create"}
        if unknown:
            raise StoreError(f"memory:// takes no options {sorted(unknown)}")
        return MemoryStore()
    if base in _SQL_SCHEMES:
        from adapters.sql import SqlStore

        return SqlStore(url, **options)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in (scheme, base):
            factory = entry.load()
            store: Store = factory(url, **options)
            return store
    known = sorted(
        {"memory", *_SQL_SCHEMES, *(e.name for e in entry_points(group=ENTRY_POINT_GROUP))}
    )
    raise StoreError(f"no store for URL scheme {scheme!r} in {url!r}; known: {', '.join(known)}")
