"""Snapshot JSON for the SQL store, written field by field from the case's last one.

``case_to_json`` serialises the whole ``Case`` on every step (~100k instructions for
any case, 10 to 25 µs: 38 fields, the offers' remedies and decisions through Python
callbacks), although a step changes only a few fields and the engine's new ``Case``
shares every other field's value, the very object, with the case it was loaded as.

``SnapshotJson`` keeps, per case, the ``Case`` it last wrote and the JSON text of each
``"name":value`` member (as ``str``). A field whose value is the object it wrote last
time (``is``) keeps its text; any other field is serialised again, alone, by the
serializer pydantic built for that field inside ``Case`` (a tuple that only grew writes
only its new items). The comparison is one function compiled once, unrolled over
``Case``'s slots. The members are joined in field order, so the text is byte for byte
what ``case_to_json`` gives (tests/test_snapshot_json.py checks it on arbitrary cases
and chains of changes). Reusing a member's text is sound because everything a ``Case``
holds is immutable (frozen records, tuples, text, numbers, datetimes) and the last
``Case`` is kept alive with the texts, so no identity can be reused meanwhile.

If the ``Case`` schema ever holds anything this cannot write member by member (a
definitions reference, computed fields, aliases, excluded fields), every text is
``case_to_json``'s.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from operator import is_
from typing import Any

from pydantic_core import SchemaSerializer

from workflow.domain import CASE_ADAPTER, Case, case_to_json

Serializer = Callable[[Any], bytes]


class _Field:
    """How one field of ``Case`` is written: the text before its value (``"name":``,
    after the object's ``{`` for the first field), its value's serializer, for a
    variable-length tuple its items' serializer, and the text after it (the object's
    ``}`` for the last field); ``moment``: a datetime field written like every other
    one (see ``_moment_text``). The text is the members joined by commas."""

    __slots__ = ("items", "moment", "prefix", "suffix", "value")

    def __init__(
        self,
        prefix: str,
        value: Serializer,
        items: Serializer | None,
        suffix: str,
        *,
        moment: bool = False,
    ) -> None:
        self.prefix = prefix
        self.value = value
        self.items = items
        self.suffix = suffix
        self.moment = moment


def _datetime_schema(schema: Any) -> Any | None:
    """The datetime schema a field's value is written with, under its default,
    nullable and validator wrappers (none of which changes how a datetime is
    written), or None if it is not a datetime field written so."""
    while schema.get("type") in ("default", "nullable", "function-after", "function-before"):
        if "serialization" in schema:
            return None
        schema = schema["schema"]
    if schema.get("type") == "datetime" and "serialization" not in schema:
        return schema
    return None


def _tuple_items(schema: Any) -> Any | None:
    """The items' schema of ``tuple[X, ...]`` (under its default, if any) when the tuple
    is written as a JSON array of its items and nothing else; else None."""
    if schema.get("type") == "default" and "serialization" not in schema:
        schema = schema["schema"]
    if (
        schema.get("type") == "tuple"
        and "serialization" not in schema
        and len(schema.get("items_schema", ())) == 1
        and schema.get("variadic_item_index") == 0
    ):
        return schema["items_schema"][0]
    return None


def _fields() -> tuple[_Field, ...] | None:
    """How to write each of ``Case``'s fields, in the order ``case_to_json`` writes
    them; None if it does not write them one by one like this."""
    schema: Any = CASE_ADAPTER.core_schema
    if schema.get("type") != "dataclass" or schema.get("cls") is not Case:
        return None
    if "serialization" in schema:
        return None
    args = schema["schema"]
    if args.get("type") != "dataclass-args" or args.get("computed_fields"):
        return None
    fields: Sequence[Any] = args["fields"]
    if tuple(field["name"] for field in fields) != Case.__slots__:
        return None
    config = schema.get("config")
    moments = [_datetime_schema(field["schema"]) for field in fields]
    moment = next((found for found in moments if found is not None), None)
    found = []
    for index, field in enumerate(fields):
        if field.get("serialization_alias") or field.get("serialization_exclude"):
            return None
        if "definition" in json.dumps(field["schema"], default=repr):
            return None
        items = _tuple_items(field["schema"])
        found.append(
            _Field(
                ("{" if index == 0 else "") + json.dumps(field["name"]) + ":",
                SchemaSerializer(field["schema"], config).to_json,
                None if items is None else SchemaSerializer(items, config).to_json,
                "}" if index == len(fields) - 1 else "",
                moment=moment is not None and moments[index] == moment,
            )
        )
    return tuple(found)


#: ``_moment_text``'s memory: ``id(datetime) -> (datetime, JSON text)``.
_MOMENTS: dict[int, tuple[Any, str]] = {}
_MAX_MOMENTS = 64


def _moment_text(value: Any, write: Serializer) -> str:
    """The JSON of a datetime field's value. The texts of the last few datetimes are
    remembered by identity: a step usually writes one moment as ``updated_at``,
    ``state_since`` and more (a new case: as four fields), and every such field is
    written alike (``_fields`` checks their datetime schemas are equal). Kept alive
    with its text, a datetime's identity cannot be reused meanwhile."""
    if type(value) is not datetime:
        return write(value).decode()
    known = _MOMENTS.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    text = write(value).decode()
    if len(_MOMENTS) >= _MAX_MOMENTS:
        _MOMENTS.clear()
    _MOMENTS[id(value)] = (value, text)
    return text


_FIELDS = _fields()
#: Stands for a field with no default: never the value of a field.
_NO_DEFAULT = object()

#: Per case: the ``Case`` last written (its values, kept alive), the JSON text of each
#: ``"name":value`` member (braces folded into the first and last), and the JSON text of
#: each item of each tuple field written item by item (by field index).
Entry = tuple[Case, list[str], dict[int, list[str]]]
#: ``write(case, last, members, items)``: rewrite, in place, the members (and items) of
#: the fields whose value in ``case`` is not the very object it is in ``last``.
Writer = Callable[[Case, Case, list[str], dict[int, list[str]]], None]


def _tuple_member(
    field: _Field, index: int, value: Any, old: Any, items: dict[int, list[str]]
) -> str:
    """The member of a tuple field written item by item: only the items that are not
    the very objects written last time at the same place are written again."""
    write_item = field.items
    assert write_item is not None
    if type(value) is not tuple:
        items.pop(index, None)
        return field.prefix + field.value(value).decode() + field.suffix
    old_items = items.get(index)
    if old_items is None or type(old) is not tuple:
        its = [write_item(item).decode() for item in value]
    elif len(value) >= len(old) and all(map(is_, value, old)):
        # Items added at the end (a new note, step time, offer): write only them.
        its = old_items + [write_item(item).decode() for item in value[len(old) :]]
    else:
        its = [
            old_items[k] if k < len(old) and item is old[k] else write_item(item).decode()
            for k, item in enumerate(value)
        ]
    items[index] = its
    return field.prefix + "[" + ",".join(its) + "]" + field.suffix


def _writer(fields: tuple[_Field, ...]) -> Writer:
    """``write(case, last, members, items)`` unrolled over ``Case``'s slots (compiled
    once): two slot reads and an identity test per unchanged field, where a loop over
    the values (``attrgetter``, ``map(is_not, ...)``) costs three times as much."""
    lines = ["def write(case, last, members, items):"]
    scope: dict[str, Any] = {"tuple_member": _tuple_member, "moment_text": _moment_text}
    for index, (name, field) in enumerate(zip(Case.__slots__, fields, strict=True)):
        lines.append(f"    if case.{name} is not last.{name}:")
        scope[f"field_{index}"] = field
        if field.items is not None:
            lines.append(
                f"        members[{index}] = tuple_member("
                f"field_{index}, {index}, case.{name}, last.{name}, items)"
            )
            continue
        scope[f"value_{index}"] = field.value
        if field.moment:
            text = f"{field.prefix!r} + moment_text(case.{name}, value_{index})"
        else:
            text = f"{field.prefix!r} + value_{index}(case.{name}).decode()"
        if field.suffix:
            text += f" + {field.suffix!r}"
        lines.append(f"        members[{index}] = {text}")
    exec("\n".join(lines), scope)
    writer: Writer = scope["write"]
    return writer


def _defaults(fields: tuple[_Field, ...]) -> Entry:
    """``Case``'s field defaults, as if last written: a new case's text writes only its
    other fields. The "case" is a ``Case`` object holding the defaults (and a marker
    that is never a value for the fields without one), built without validation; it
    never leaves this module."""
    blank = object.__new__(Case)
    members: list[str] = []
    items: dict[int, list[str]] = {}
    for i, field in enumerate(dataclasses.fields(Case)):
        value = field.default
        if value is dataclasses.MISSING:
            object.__setattr__(blank, field.name, _NO_DEFAULT)
            members.append("")
            continue
        object.__setattr__(blank, field.name, value)
        members.append(fields[i].prefix + fields[i].value(value).decode() + fields[i].suffix)
        write_item = fields[i].items
        if write_item is not None and type(value) is tuple:
            items[i] = [write_item(item).decode() for item in value]
    return blank, members, items


_DEFAULTS = None if _FIELDS is None else _defaults(_FIELDS)
_WRITE = None if _FIELDS is None else _writer(_FIELDS)


class SnapshotJson:
    """``text(case)``: ``case_to_json(case)`` as text, remembering the last ``size``
    cases' members (0: none, every text written whole). Safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size if _FIELDS is not None else 0
        self._last: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._last)

    def text(self, case: Case) -> str:
        write, defaults = _WRITE, _DEFAULTS
        if not self.size or write is None or defaults is None:
            return case_to_json(case).decode("utf-8")
        remembered = self._last
        # Taken out while it is changed in place (a thread writing the same case at the
        # same time finds none and writes every member); put back, last, when done.
        entry = remembered.pop(case.id, None)
        if entry is None:
            last, members, items = defaults[0], defaults[1].copy(), defaults[2].copy()
        else:
            last, members, items = entry
        write(case, last, members, items)
        text = ",".join(members)
        remembered[case.id] = (case, members, items)
        if len(remembered) > self.size:
            # The least recently written (another thread may have changed the dict).
            with suppress(KeyError, RuntimeError, StopIteration):
                del remembered[next(iter(remembered))]
        return text

    def discard(self, case_id: str) -> None:
        """Forget the case (its values must not stay in this process: a purge)."""
        self._last.pop(case_id, None)

    def clear(self) -> None:
        self._last.clear()
