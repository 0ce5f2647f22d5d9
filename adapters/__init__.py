"""complaintflow storage adapters: implementations of ``workflow.store.Store``."""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.memory import MemoryStore
from workflow.errors import StoreError
from workflow.store import Store

__all__ = ["MemoryStore", "open_store"]


def open_store(url: str) -> Store:
    """A store for ``url``. ``memory://`` is the in-memory store."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryStore()
    raise StoreError(f"no store for URL scheme {scheme!r} in {url!r}; known: memory://")
