"""complaintflow storage adapters: implementations of ``workflow.store.Store``.

``open_store(url)`` picks one by the URL's scheme: ``memory://``, ``sqlite:///path.db``,
``postgresql+psycopg://user@host/db``; other schemes are looked up in the entry-point group
``complaintflow.stores`` (a third-party store registers ``scheme = "package.module:factory"``,
the factory taking the URL and keyword options and returning a ``Store``).
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import urlsplit

from adapters.memory import MemoryStore, check_append, check_unchanged, event_data_text
from adapters.urls import shown_url
from workflow.domain import read_snapshot
from workflow.errors import ComplaintflowError, StoreError
from workflow.store import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "MemoryStore",
    "check_append",
    "check_unchanged",
    "event_data_text",
    "open_store",
    "read_snapshot",
]

ENTRY_POINT_GROUP = "complaintflow.stores"
_SQL_SCHEMES = {"sqlite", "postgresql"}
#: What a ``Store`` must have (``workflow.store.Store``'s methods).
_STORE_METHODS = tuple(
    sorted(name for name, value in vars(Store).items() if callable(value) and name[0] != "_")
)


def open_store(url: str, **options: Any) -> Store:
    """A store for ``url``. ``options`` go to the store (for SQL: ``prefix``, ``schema``,
    ``create``, ``durability``, ``snapshot_cache``, ``engine_options``). Every failure is
    a ``ComplaintflowError`` (a third-party store's own errors become ``StoreError``)."""
    try:
        scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    except ValueError as error:  # an unclosed "[": a message, not a traceback
        raise StoreError(
            f"{shown_url(url)} is not a store URL: {error} (give one such as "
            "sqlite:///cases.db, memory:// or postgresql+psycopg://user@host/db)"
        ) from error
    base = scheme.split("+", 1)[0]
    if scheme == "memory":
        unknown = set(options) - {"create"}
        if unknown:
            raise StoreError(f"memory:// takes no options {sorted(unknown)}")
        return MemoryStore()
    if base in _SQL_SCHEMES:
        from adapters.sql import SqlStore

        known = sorted(inspect.signature(SqlStore).parameters.keys() - {"url"})
        untaken = sorted(set(options) - set(known))
        if untaken:
            raise StoreError(
                f"{shown_url(url)}: the SQL store takes no option {', '.join(untaken)}; its "
                f"options are: {', '.join(known)}"
            )
        return SqlStore(url, **options)
    registered = entry_points(group=ENTRY_POINT_GROUP)
    if not scheme:
        raise StoreError(
            f"{url!r} is not a store URL (it has no scheme): give one such as "
            f"sqlite:///cases.db, memory:// or postgresql+psycopg://user@host/db; known "
            f"schemes: {_known(registered)}"
        )
    found = [e for e in registered if e.name.lower() in (scheme, base)]
    if not found:
        raise StoreError(
            f"no store for URL scheme {scheme!r} in {shown_url(url)!r}; known: "
            f"{_known(registered)}. Other stores are found through the entry-point group "
            f"{ENTRY_POINT_GROUP}: is the package that provides {scheme!r} installed here?"
        )
    exact = [e for e in found if e.name.lower() == scheme] or found
    if len(exact) > 1:
        raise StoreError(
            f"store scheme {exact[0].name!r} is registered by more than one package: "
            f"{'; '.join(_origin(e) for e in exact)}. Uninstall all but one."
        )
    return _open_entry_point(exact[0], url, options)


def _open_entry_point(entry: EntryPoint, url: str, options: dict[str, Any]) -> Store:
    """The store ``entry``'s factory makes for ``url``; what goes wrong, as a
    ``StoreError`` naming the entry point and the package that registered it."""
    name = f"store {entry.name!r} ({_origin(entry)})"
    try:
        factory = entry.load()
    except Exception as exc:
        raise StoreError(f"{name} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise StoreError(f"{name} is {_a(factory)}, not a factory taking the URL and options")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): let the call say
        signature = None
    if signature is not None:
        try:
            signature.bind(url, **options)
        except TypeError as exc:
            takes = signature.parameters
            if any(p.kind is p.VAR_KEYWORD for p in takes.values()):
                unknown = []
            else:
                unknown = sorted(set(options) - set(takes))
            what = (
                f"takes no option {', '.join(unknown)}"
                if unknown
                else f"cannot be called as factory(url, **options): {exc}"
            )
            raise StoreError(f"{name} {what}") from None
    try:
        store = factory(url, **options)
    except ComplaintflowError:
        raise
    except Exception as exc:
        raise StoreError(
            f"opening {shown_url(url)} with {name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    lacking = [method for method in _STORE_METHODS if not callable(getattr(store, method, None))]
    if lacking:
        raise StoreError(
            f"{name} returned {_a(store)}, not a complaintflow Store: it has no "
            f"{', '.join(lacking)}"
        )
    result: Store = store
    return result


def _origin(entry: EntryPoint) -> str:
    """``entry point module:attr of distribution version``, as a message names it."""
    dist = entry.dist
    where = f" of {dist.metadata['Name']} {dist.version}" if dist is not None else ""
    return f"entry point {entry.value}{where}"


def _known(registered: Any) -> str:
    return ", ".join(sorted({"memory", *_SQL_SCHEMES, *(e.name.lower() for e in registered)}))


def _a(value: object) -> str:
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"
