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
from typing import Any, ClassVar, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

R = TypeVar("R")

_set = object.__setattr__


def trusted(cls: type[R]) -> Callable[..., R]:
    """A constructor for ``cls`` that sets its slots from keyword values (one per slot,
    all required), without validating. Only for values already checked."""
    names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
    # Same bases and slots, so an instance may become a ``cls``; plain attribute stores.
    builder = type(
        f"_{cls.__name__}Builder", cls.__bases__, {"__slots__": names, "__setattr__": _set}
    )
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


class FrozenRecord:
    """What the records share: frozen as the pydantic model was (assigning or deleting a
    field raises its ``ValidationError``), and compared, hashed, shown and pickled by the
    fields named in ``_fields``, in that order."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: Any) -> None:
        frozen_error(type(self), name, value)

    def __delattr__(self, name: str) -> None:
        frozen_error(type(self), name, None)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, tuple[type, tuple[Any, ...]]]:
        return (_restore, (type(self), self._values()))


_TRUSTED: dict[type, Callable[..., Any]] = {}


def _restore(cls: type[FrozenRecord], values: tuple[Any, ...]) -> Any:
    """Unpickle a record (its values were checked when it was made)."""
    make = _TRUSTED.get(cls)
    if make is None:
        make = _TRUSTED[cls] = trusted(cls)
    return make(**dict(zip(cls._fields, values, strict=True)))


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
