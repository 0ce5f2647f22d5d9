"""Personal data held apart from the hash chain, so it can be erased.

A customer's name, contact and account number never enter an event. The event carries a
reference instead: ``personal:`` + SHA-256 over a random 16-byte salt followed by the
value's UTF-8 bytes (hex). The value and its salt live in the case's snapshot
(``Case.personal``), not in any event. Erasing a customer deletes those entries and
rewrites the snapshot: every event, and so every chain and the store digest, stays as it
was and still verifies; the references left behind reveal nothing (the salt is gone, so
not even a guess at the value can be checked against them).

docs/audit.md describes the scheme byte for byte; docs/decisions/0012 says what is held
apart and why free text is not.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

#: The event that records an erasure (no personal data in it).
ERASE_EVENT = "erase_personal_data"
#: What an erased personal value reads as, in snapshots and replays.
ERASED = "[erased]"
REF_PREFIX = "personal:"
SALT_BYTES = 16

#: Where personal values sit in each event type's data: paths of keys.
PERSONAL_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "open": (("customer", "name"), ("customer", "contact"), ("customer", "account")),
    "record": (("contact",),),
}

Vault = Mapping[str, "Personal"]


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Personal:
    """One personal value, its salt (hex) and the reference events carry for it."""

    ref: str
    salt: str
    value: str

    def is_sound(self) -> bool:
        """Whether ``ref`` is what this value and salt give (false if either was edited)."""
        try:
            return reference(self.salt, self.value) == self.ref
        except ValueError:
            return False


def reference(salt: str, value: str) -> str:
    """``personal:`` + hex SHA-256 of the salt's bytes followed by the value's UTF-8."""
    digest = hashlib.sha256(bytes.fromhex(salt) + value.encode("utf-8")).hexdigest()
    return REF_PREFIX + digest


def seal(value: str) -> Personal:
    """Hold ``value`` (text) apart under a fresh random salt."""
    if type(value) is not str:  # validated as the record validates it
        text_salt = secrets.token_hex(SALT_BYTES)
        return Personal(reference(text_salt, value), text_salt, value)
    salt = secrets.token_bytes(SALT_BYTES)
    ref = REF_PREFIX + hashlib.sha256(salt + value.encode("utf-8")).hexdigest()
    # Three texts made here: built without re-validating them (what ``Personal(ref,
    # salt.hex(), value)`` would build; tests/test_privacy.py checks it).
    entry: Personal = object.__new__(Personal)
    _set(entry, "ref", ref)
    _set(entry, "salt", salt.hex())
    _set(entry, "value", value)
    return entry


_set = object.__setattr__


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(REF_PREFIX) and len(value) == 73


def _fields(
    data: Mapping[str, Any], paths: tuple[tuple[str, ...], ...]
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], str, tuple[str, ...]]]]:
    """A copy of ``data`` whose dicts along ``paths`` are copies too, and for each path
    present in it: the dict holding the field, the field's key, the path."""
    out = dict(data)
    found = []
    copies: set[int] = set()  # the dicts this call made (each copied once)
    for path in paths:
        parent = out
        for key in path[:-1]:
            child = parent.get(key)
            if not isinstance(child, Mapping):
                break
            if id(child) not in copies:
                copy = dict(child)
                copies.add(id(copy))
                parent[key] = copy
            parent = parent[key]
        else:
            if path[-1] in parent:
                found.append((parent, path[-1], path))
    return out, found


def seal_data(step: str, data: dict[str, Any]) -> tuple[dict[str, Any], tuple[Personal, ...]]:
    """``data`` with each personal value replaced by its reference, and the new entries.
    ``data`` is not changed."""
    paths = PERSONAL_PATHS.get(step)
    if not paths:
        return data, ()
    out, fields = _fields(data, paths)
    sealed: list[Personal] = []
    for parent, key, _ in fields:
        value = parent[key]
        if isinstance(value, str):
            entry = seal(value)
            parent[key] = entry.ref
            sealed.append(entry)
    return out, tuple(sealed)


def unseal_data(
    step: str, data: Mapping[str, Any], vault: Vault
) -> tuple[dict[str, Any], tuple[Personal, ...]]:
    """``data`` with each reference replaced by its value from ``vault`` (``ERASED`` when
    the vault no longer holds it), and the entries used. A personal field holding plain
    text (an event written before personal values were held apart) reads as that text:
    such a case cannot be erased (``holds_plain_values``). Anything else raises
    ``ValueError``."""
    paths = PERSONAL_PATHS.get(step)
    if not paths:
        return dict(data), ()
    out, fields = _fields(data, paths)
    used: list[Personal] = []
    for parent, key, path in fields:
        ref = parent[key]
        if not is_reference(ref):
            if isinstance(ref, str):
                continue  # plain text from before references: kept as written
            raise ValueError(f"personal field {'.'.join(path)} holds no reference")
        entry = vault.get(ref)
        parent[key] = entry.value if entry is not None else ERASED
        if entry is not None:
            used.append(entry)
    return out, tuple(used)


def holds_plain_values(step: str, data: Mapping[str, Any]) -> bool:
    """Whether a personal field of this event's data holds plain text, not a reference
    (an event written before personal values were held apart)."""
    paths = PERSONAL_PATHS.get(step)
    if not paths:
        return False
    _, fields = _fields(data, paths)
    return any(not is_reference(parent[key]) for parent, key, _ in fields)


def referenced(step: str, data: Mapping[str, Any]) -> list[str]:
    """The references a personal field of this event's data holds."""
    paths = PERSONAL_PATHS.get(step)
    if not paths:
        return []
    found = []
    for path in paths:  # the fields ``_fields`` finds, read without copying anything
        parent: Any = data
        for key in path[:-1]:
            parent = parent.get(key)
            if not isinstance(parent, Mapping):
                break
        else:
            if path[-1] in parent and is_reference(parent[path[-1]]):
                found.append(parent[path[-1]])
    return found


def vault_of(entries: Iterable[Personal]) -> dict[str, Personal]:
    return {entry.ref: entry for entry in entries}


__all__ = [
    "ERASED",
    "ERASE_EVENT",
    "PERSONAL_PATHS",
    "Personal",
    "Vault",
    "holds_plain_values",
    "is_reference",
    "reference",
    "referenced",
    "seal",
    "seal_data",
    "unseal_data",
    "vault_of",
]
