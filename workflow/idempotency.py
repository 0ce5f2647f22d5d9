"""Idempotency keys: the checks a key must pass, and the fingerprint of the command it
names (docs/decisions/0032-idempotency-fingerprints.md).

The fingerprint is ``"v1:"`` and the SHA-256 (hex) of the UTF-8 canonical JSON text
(``workflow.events.canonical_json``: sorted keys, no whitespace, non-ASCII kept) of::

    {"actor": "role:id", "case_id": <the step's case; open_case's explicit id or null>,
     "inputs": {<each input given, not None, in canonical form>}, "step": <step name>}

A value's canonical form is its JSON form as complaintflow writes it: ``Money`` and
``Remedy`` as ``to_json()``, a ``Customer`` as its fields that are not None, an ``Actor``
as ``role:id``, an enum member as its value, a ``Decimal`` as its text, an aware
datetime as its UTC instant (``format_at``), a date as ISO text; mappings (text keys)
and sequences (lists, tuples) hold canonical values; text, whole numbers, booleans and
None as they are. Anything else (a float, a naive datetime, a set, bytes, another
object) has no canonical form: ``Uncanonical`` names where it is.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from policies.money import Money
from policies.remedy import Remedy
from workflow.domain import Actor, Customer
from workflow.errors import InvalidIdempotencyKey
from workflow.events import canonical_json, format_at

#: The longest key (the SQL store's key column holds this many characters).
MAX_KEY = 200
#: What every fingerprint of this canonical form starts with. One that starts otherwise
#: was made by another version's form and is not compared (decision 0032).
FINGERPRINT_SCHEME = "v1:"
#: How deep inputs may nest (a value that contains itself ends here).
MAX_DEPTH = 32


def check_key(key: object, *, case_id: str | None, step: str) -> str:
    """``key`` if it can name a command; else ``InvalidIdempotencyKey`` saying why."""
    if not isinstance(key, str):
        problem = f"an idempotency key is text, not {type(key).__name__}"
    elif not key:
        problem = "it is empty"
    elif len(key) > MAX_KEY:
        problem = f"it is longer than {MAX_KEY} characters"
    elif key.isspace():
        problem = "it is blank"
    elif key.isprintable() or (found := _unusable(key)) is None:
        return key
    else:
        problem = found
    raise InvalidIdempotencyKey(key, problem, case_id=case_id, step=step)


def _unusable(key: str) -> str | None:
    """For a key ``isprintable`` refuses: its first control character or lone surrogate
    (which no database stores as UTF-8), or None if it has neither (a line separator,
    a zero-width space: taken as text)."""
    for position, char in enumerate(key, start=1):
        kind = unicodedata.category(char)
        if kind == "Cc":
            return f"it holds control character U+{ord(char):04X} at position {position}"
        if kind == "Cs":
            return f"it holds lone surrogate U+{ord(char):04X} at position {position}"
    return None


class Uncanonical(ValueError):
    """An input value that has no canonical form: ``path`` names it (``options[1].amount``,
    lists counted from 1 as the guards count them), ``problem`` says why."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def fingerprint(step: str, case_id: str | None, actor: str, inputs: Mapping[str, Any]) -> str:
    """The fingerprint of one command: ``step`` on ``case_id`` (for ``open_case``, its
    explicit id or None) by ``actor`` (``role:id`` text) with ``inputs`` (an input given
    as None counts as not given). Raises ``Uncanonical``."""
    document = {
        "actor": actor,
        "case_id": case_id,
        "inputs": {
            name: _canonical(value, name, 1) for name, value in inputs.items() if value is not None
        },
        "step": step,
    }
    text = canonical_json(document).encode("utf-8", "surrogatepass")
    return FINGERPRINT_SCHEME + hashlib.sha256(text).hexdigest()


def comparable(stored: str | None) -> bool:
    """Whether a stored fingerprint was made by this canonical form (None: the key was
    recorded without one, before the upgrade that added them)."""
    return stored is not None and stored.startswith(FINGERPRINT_SCHEME)


def _canonical(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Uncanonical(path, f"nested more than {MAX_DEPTH} levels deep")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, Enum):
        return _canonical(value.value, path, depth + 1)
    kind = type(value)
    if kind is str or kind is int:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):  # pragma: no cover - True and False are handled above
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _refuse(path, "a float: give a Decimal or text (floats are never money)")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        zone = value.tzinfo
        if zone is None or zone.utcoffset(value) is None:
            return _refuse(path, "a naive datetime: give a time zone")
        return format_at(value.astimezone(UTC))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Money | Remedy):
        return _canonical(value.to_json(), path, depth + 1)
    if isinstance(value, Actor):
        return str(value)
    if isinstance(value, Customer):
        fields = {name: getattr(value, name) for name in ("id", "name", "contact", "account")}
        fields["tier"] = value.tier
        return {name: text for name, text in fields.items() if text is not None}
    if isinstance(value, Mapping):
        items: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                return _refuse(path, f"keys must be text, got {type(key).__name__}")
            items[str.__str__(key)] = _canonical(item, f"{path}.{key}", depth + 1)
        return items
    if isinstance(value, bytes | bytearray | memoryview):
        return _refuse(path, f"{type(value).__name__}: give text")
    if isinstance(value, Sequence):
        return [
            _canonical(item, f"{path}[{n}]", depth + 1) for n, item in enumerate(value, start=1)
        ]
    if isinstance(value, set | frozenset):
        return _refuse(path, "a set has no order: give a list")
    return _refuse(
        path,
        f"{type(value).__name__} has no canonical form: give text, whole numbers, "
        "Decimals, Money, Remedy, dates, aware datetimes, lists and dicts",
    )


def _refuse(path: str, problem: str) -> Any:
    raise Uncanonical(path, problem)
