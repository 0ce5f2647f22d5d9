"""Frozen slotted value records with one validating path and one trusted constructor.

``Money``, ``Remedy`` and ``Decision`` are held by every open case (inside offers) and
built on every offer, so they are plain classes with ``__slots__`` rather than pydantic
``BaseModel``s (a ``BaseModel`` instance also carries a ``__dict__`` and a fields-set).
Each record still validates through a pydantic model of the same name, fields,
validators and configuration (its *validator model*), so what is refused, and the
errors saying why, are exactly what they were when the record was that model. A
hand-written fast path (``_fast`` in each module) accepts the common well-formed inputs
without calling pydantic; it either builds a record equal to what the validator model
gives or declines (returns None) and leaves the input to the validator model. The tests
check that agreement on arbitrary inputs (tests/test_records.py).

Records built by the library from values it has checked already (arithmetic on
``Money``, a decision assembled by the policy) use ``trusted``, which sets the slots
without validating.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

R = TypeVar("R")

_set = object.__setattr__


def trusted(cls: type[R]) -> Callable[..., R]:
    """A constructor for ``cls`` that sets its slots from keyword values (one per slot,
    all required), without validating. Only for values already checked."""
    names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
    builder = type(f"_{cls.__name__}Builder", (), {"__slots__": names})
    args = ", ".join(names)
    lines = [f"def make(*, {args}):", "    new = builder()"]
    lines += [f"    new.{n} = {n}" for n in names]
    lines += ["    set_(new, '__class__', cls)", "    return new"]
    scope: dict[str, Any] = {"builder": builder, "set_": _set, "cls": cls}
    exec("\n".join(lines), scope)
    make: Callable[..., R] = scope["make"]
    return make


def frozen_error(cls: type, name: str, value: Any) -> NoReturn:
    """What assigning to a frozen pydantic model raised: the same ``ValidationError``."""
    detail: InitErrorDetails = {"type": "frozen_instance", "loc": (name,), "input": value}
    raise ValidationError.from_exception_data(cls.__name__, [detail])


#: How many distinct values each interning table keeps before it starts afresh.
MAX_INTERNED = 4096


def remember(table: dict[Any, R], key: Any, value: R) -> R:
    """Keep ``value`` under ``key`` in an interning table (bounded: a full table is
    emptied first) and return it. Only for immutable values whose ``key`` says exactly
    what they were built from, so that sharing one is the same as building it again."""
    if len(table) >= MAX_INTERNED:
        table.clear()
    table[key] = value
    return value
