"""Domain types: the case, its customer, offers, promise, notes and the actor of a step.

Records the engine keeps for every case (``Case`` and the records inside it) are frozen
pydantic dataclasses with ``__slots__``: validated when built from outside data, compact
when many open cases are held in memory. Changing a case means building a new one.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from functools import cache, lru_cache
from typing import Annotated, Any, TypeVar, get_args

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass
from pydantic_core.core_schema import ErrorType

from policies.decision import Decision
from policies.remedy import Remedy
from policies.types import MAX_NAME, NAME_PATTERN
from workflow.errors import InvalidActor, SnapshotUnreadable
from workflow.personal import Personal

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]
#: A complaint's category (``delivery``, ``billing``, ``service``): a lower-case name as
#: the policy file writes it; one of the policy's ``categories`` when the policy lists them
#: (``record`` and ``open_case`` refuse any other). The policy names the categories, so it
#: is a checked name rather than an enum.
Category = Slug
#: The records a case holds refuse keys they do not have when read from JSON (a stored
#: snapshot): an added or renamed key is an edit for ``audit.verify`` to report, and a
#: field this version does not know must not be dropped silently when the case is written
#: back (docs/decisions/0018-strict-snapshots.md).
_STORED = ConfigDict(extra="forbid")


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    SOCIAL = "social"
    SMS = "sms"
    WEB = "web"


class ComplainantType(StrEnum):
    MEEK = "meek"
    AGGRESSIVE = "aggressive"
    HIGH_ROLLER = "high-roller"
    RIP_OFF = "rip-off"
    CHRONIC = "chronic"
    UNKNOWN = "unknown"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


#: What a refusal calls a value of each list a caller picks from, one and many.
_CHOICE_NAMES: dict[type[StrEnum], tuple[str, str]] = {
    Channel: ("a channel", "channels"),
    ComplainantType: ("a complainant type", "complainant types"),
    Priority: ("a priority", "priorities"),
}


def not_a_choice(kind: type[Channel | ComplainantType | Priority], value: object) -> str:
    """Why ``value`` is refused where a ``kind`` is taken, naming the values there are
    (``'fax' is not a channel; the channels are: email, ...``), as ``find_cases``
    names the channels: not Python's ``'fax' is not a valid Channel``."""
    one, many = _CHOICE_NAMES[kind]
    if isinstance(value, str):
        shown = repr(str(value))
    else:
        type_name = type(value).__name__
        shown = f"{'an' if type_name[:1].lower() in 'aeiou' else 'a'} {type_name}"
    return f"{shown} is not {one}; the {many} are: {', '.join(k.value for k in kind)}"


class OfferStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REFUSED = "refused"


#: A role: a lower-case name, as the policy files name roles (``policies.types.Name``),
#: read whole (``fullmatch``: Python's ``$`` would also match before a final newline).
_ROLE = re.compile(NAME_PATTERN)
MAX_ROLE = MAX_NAME
MAX_ID = 200
#: Characters an id may not hold, by Unicode general category: what a terminal or a log
#: viewer acts on instead of showing, or shows as nothing (bidi overrides, zero-width
#: spaces), lone surrogates (no database stores them as UTF-8), and private-use ones.
_REFUSED_IN_ID = {
    "Cc": "a control character",
    "Cf": "a format character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
}
#: What ``person_of`` drops: invisible characters, which do not change who an id names.
_INVISIBLE = frozenset(("Cc", "Cf"))


#: What is wrong with a role or an id: (part, problem, position, code point).
_Problem = tuple[str, str, int | None, str | None]


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def _role_problem(role: object) -> _Problem | None:
    """What is wrong with ``role``, if anything."""
    if not isinstance(role, str):
        return ("role", f"its role must be text, not {type(role).__name__}", None, None)
    if _ROLE.fullmatch(role) is not None and len(role) <= MAX_ROLE:
        return None
    if not role:
        return ("role", "its role is empty", None, None)
    for position, char in enumerate(role, start=1):
        if "a" <= char <= "z" or "0" <= char <= "9" or (position > 1 and char in "-_"):
            continue
        shown = f"{_code(char)} {char!r}" if char.isprintable() else _code(char)
        where = "starts with" if position == 1 and char in "-_" else "holds"
        at = "" if where == "starts with" else f" at position {position}"
        return ("role", f"its role {where} {shown}{at}", position, _code(char))
    return ("role", f"its role is {len(role)} characters long, more than {MAX_ROLE}", None, None)


def _id_problem(id_: object, its: str = "its id") -> _Problem | None:
    """What is wrong with ``id_``, if anything (``its``: how the message names it)."""
    if not isinstance(id_, str):
        return ("id", f"{its} must be text, not {type(id_).__name__}", None, None)
    if not id_:
        return ("id", f"{its} is empty", None, None)
    if len(id_) > MAX_ID:
        return ("id", f"{its} is {len(id_)} characters long, more than {MAX_ID}", None, None)
    if not id_.isprintable():  # else it holds none of them (and no whitespace but spaces)
        for position, char in enumerate(id_, start=1):
            kind = _REFUSED_IN_ID.get(unicodedata.category(char))
            if kind is not None:
                problem = f"{its} holds {_code(char)} ({kind}) at position {position}"
                return ("id", problem, position, _code(char))
    for end, position in (("starts", 1), ("ends", len(id_))):
        char = id_[position - 1]
        if char.isspace():
            problem = f"{its} {end} with whitespace ({_code(char)} at position {position})"
            return ("id", problem, position, _code(char))
    if not id_.isascii() and not unicodedata.is_normalized("NFC", id_):
        nfc = unicodedata.normalize("NFC", id_)
        differs = (i for i, (a, b) in enumerate(zip(id_, nfc, strict=False)) if a != b)
        index = next(differs, min(len(id_), len(nfc)) - 1)
        char = id_[index]
        problem = (
            f"{its} is not in Unicode normalisation form NFC (from position {index + 1}, "
            f"{_code(char)}): pass unicodedata.normalize('NFC', id), since an id is "
            "recorded exactly as given, never normalised for you"
        )
        return ("id", problem, index + 1, _code(char))
    return None


def case_id_problem(case_id: object) -> str | None:
    """What is wrong with a case id given to ``open_case``, if anything: the rules of an
    actor's id (1 to 200 characters in NFC, no control, format, surrogate or private-use
    characters, no whitespace at either end)."""
    found = _id_problem(case_id, "the case id")
    return None if found is None else found[1]


def customer_id_problem(customer_id: str) -> str | None:
    """What is wrong with a customer id given to ``open_case``, if anything: the rules of
    an actor's id, as for a case id. The cap counts the cases stored under one id,
    compared exactly, so ids that differ only by characters no one sees (surrounding
    whitespace, a zero-width space, an unnormalised accent) would split one customer in
    two. Checked when a case is opened, never when a stored one is read (a ``Customer``
    record takes any id of 1 to 200 characters)."""
    found = _id_problem(customer_id, "the customer id")
    return None if found is None else found[1]


def check_actor(role: object, id_: object) -> None:
    """``InvalidActor`` naming what is wrong, if ``role`` and ``id_`` are not an actor's
    (the role's problem first)."""
    found = _role_problem(role) or _id_problem(id_)
    if found is not None:
        part, problem, position, character = found
        given = f"{role}:{id_}" if isinstance(role, str) and isinstance(id_, str) else (role, id_)
        raise InvalidActor(given, part, problem, position=position, character=character)


def person_of(id_: str) -> str:
    """The person an actor id names (see ``Actor.person``). Control and format
    characters are dropped first (those that are whitespace, such as a tab or a line
    break, count as a space), so that invisible characters in an id recorded before ids
    were checked cannot make one person look like two."""
    if not id_.isprintable():
        id_ = "".join(
            " " if char.isspace() else char
            for char in id_
            if char.isspace() or unicodedata.category(char) not in _INVISIBLE
        )
    return " ".join(unicodedata.normalize("NFKC", id_).casefold().split())


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who takes a step: a role and an id. Written ``role:id``, e.g. ``agent:alice``.

    The role is a lower-case name as the policy files name roles (``1st-line``,
    ``team-lead``; 1 to 64 characters); the id is 1 to 200 characters in Unicode NFC
    form, without control, format, surrogate or private-use characters and without
    whitespace at either end. Anything else is ``InvalidActor``, naming what is wrong
    and where (docs/decisions/0036-actor-roles-and-ids.md). The id is recorded exactly
    as given: nothing is normalised.
    """

    role: str
    id: str

    def __post_init__(self) -> None:
        check_actor(self.role, self.id)

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"

    @property
    def person(self) -> str:
        """The person the id names, for comparing people (four eyes): compatibility-
        normalised (NFKC, so a full-width ``\uff41lice`` is ``alice``), case-folded, and with
        surrounding spaces dropped and inner runs of spaces made one (``alice `` is
        ``alice``); control and format characters are dropped (``person_of``)."""
        return person_of(self.id)

    @classmethod
    def parse(cls, value: Actor | str) -> Actor:
        """An ``Actor`` from ``role:id`` text (or an ``Actor``, returned as is);
        ``InvalidActor`` if it is not one."""
        if isinstance(value, Actor):
            return value
        if not isinstance(value, str):
            raise InvalidActor(value, "actor", f"it is {type(value).__name__}, not text")
        if cls is Actor:
            return _parse_actor(value)
        return cls._parse(value)

    @classmethod
    def _parse(cls, value: str) -> Actor:
        role, colon, id_ = value.partition(":")
        if not colon:
            raise InvalidActor(value, "actor", "it is not 'role:id' text")
        return cls(role=role, id=id_)


@lru_cache(maxsize=4096)
def _parse_actor(value: str) -> Actor:
    """``Actor.parse`` of text, remembered: the same few actors take most steps, and an
    ``Actor`` is immutable, so one parsed (and checked) value is shared; the checks run
    once per distinct text (failures are not cached)."""
    return Actor._parse(value)


#: The longest customer contact accepted (at opening and at ``record``).
MAX_CONTACT = 500
#: The longest assignee ``assign`` accepts (the SQL store's column holds this many
#: characters, as it does an event's actor).
MAX_ASSIGNEE = 300


@dataclass(frozen=True, slots=True, config=_STORED)
class Customer:
    """The complaining customer. ``account`` is their account number with the company."""

    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1, max_length=500)]
    contact: Annotated[str, Field(min_length=1, max_length=MAX_CONTACT)] | None = None
    account: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    tier: Slug = "standard"


@dataclass(frozen=True, slots=True, config=_STORED)
class Note:
    text: Text
    by: str
    at: datetime


@dataclass(frozen=True, slots=True, config=_STORED)
class Offer:
    """One offer: one or more remedy options for the customer to choose from."""

    number: int
    options: tuple[Remedy, ...]
    offered_by: str
    offered_at: datetime
    decision: Decision
    status: OfferStatus
    approved_by: str | None = None
    chosen: int | None = None
    accepted_at: datetime | None = None

    @property
    def paid(self) -> Remedy | None:
        """The option the customer accepted, if any."""
        return self.options[self.chosen - 1] if self.chosen is not None else None


@dataclass(frozen=True, slots=True, config=_STORED)
class Promise:
    """What was agreed and by when; ``kept_at`` and ``evidence`` once it is kept."""

    description: Text
    due_at: datetime
    made_at: datetime
    made_by: str
    offer: int
    option: int
    kept_at: datetime | None = None
    kept_by: str | None = None
    evidence: str | None = None


@dataclass(frozen=True, slots=True, config=_STORED)
class Escalation:
    reason: Text
    to_role: Slug
    by: str
    at: datetime
    resume_to: str


@dataclass(frozen=True, slots=True, config=_STORED)
class Feedback:
    at: datetime
    by: str
    score: int | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True, config=_STORED)
class Case:
    """One complaint, as it stands after its last event (``version`` = that event's seq)."""

    id: str
    customer: Customer
    channel: Channel
    state: str
    opened_at: datetime
    updated_at: datetime
    version: int
    head_hash: str
    policy_version: str
    subject: str | None = None
    details: str | None = None
    category: Category | None = None
    occurred_on: date | None = None
    priority: Priority = Priority.NORMAL
    complainant_type: ComplainantType = ComplainantType.UNKNOWN
    assignee: str | None = None
    transfers: int = 0
    notes: tuple[Note, ...] = ()
    offers: tuple[Offer, ...] = ()
    declines: int = 0
    promise: Promise | None = None
    feedback_requested_at: datetime | None = None
    feedback: tuple[Feedback, ...] = ()
    escalation: Escalation | None = None
    escalations: int = 0
    sla_paused: bool = False
    closed_at: datetime | None = None
    resolution: str | None = None
    reopened: int = 0
    #: SLA bookkeeping for the current cycle (a reopen starts a new one):
    #: when it started, when the case entered its checklist state, the pauses so far,
    #: when each checklist step was taken, the warnings and breaches already fired.
    cycle_started_at: datetime | None = None
    state_since: datetime | None = None
    paused_since: datetime | None = None
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    step_times: tuple[tuple[str, datetime], ...] = ()
    sla_fired: tuple[str, ...] = ()
    first_breach_at: datetime | None = None
    last_escalated_at: datetime | None = None
    #: The personal values this case's events refer to (see ``workflow.personal``):
    #: held here, apart from the hash chain, so that erasing them leaves it intact.
    personal: tuple[Personal, ...] = ()

    @field_validator("opened_at", "updated_at", "closed_at", "feedback_requested_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are refused")
        return value

    def paid_since(self, since: datetime) -> list[tuple[datetime, Remedy]]:
        """The remedies this case's customer accepted at or after ``since``, with when."""
        paid = []
        for offer in self.offers:
            remedy, at = offer.paid, offer.accepted_at
            if remedy is not None and at is not None and at >= since:
                paid.append((at, remedy))
        return paid

    def step_time(self, step: str) -> datetime | None:
        """When ``step`` was last taken in the current cycle, if it was (an offer made
        again after a decline counts from the new offer)."""
        for name, at in reversed(self.step_times):
            if name == step:
                return at
        return None

    @property
    def current_offer(self) -> Offer | None:
        """The latest offer, if any."""
        return self.offers[-1] if self.offers else None


T = TypeVar("T")


#: One compiled copier per (record class, names changed), see ``_make_evolver``.
_EVOLVERS: dict[tuple[type, tuple[str, ...]], Callable[[Any, dict[str, Any]], Any]] = {}
_MAX_EVOLVERS = 512
_BUILDERS: dict[type, type] = {}


def _builder(cls: type) -> type:
    """A plain (not frozen) class with exactly ``cls``'s slots and its own public methods
    and properties, so an instance can be filled with ordinary attribute stores, read
    like a ``cls``, and then given ``cls`` as its class (CPython allows that between
    classes of the same layout)."""
    builder = _BUILDERS.get(cls)
    if builder is None:
        names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
        behaviour = {
            key: value
            for key, value in vars(cls).items()
            if not key.startswith("_") and (callable(value) or isinstance(value, property))
        }
        builder = type(f"_{cls.__name__}Builder", (), {"__slots__": names, **behaviour})
        _BUILDERS[cls] = builder
    return builder


def _make_evolver(cls: type, changed: tuple[str, ...]) -> Callable[[Any, dict[str, Any]], Any]:
    """``def evolve(record, changes)`` unrolled over ``cls``'s slots for one set of
    changed names (compiled once per set); names that are not slots are ignored."""
    names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
    lines = ["def evolve(record, changes):", "    new = builder()"]
    lines += [
        f"    new.{n} = changes[{n!r}]" if n in changed else f"    new.{n} = record.{n}"
        for n in names
    ]
    lines += ["    set_(new, '__class__', cls)", "    return new"]
    scope: dict[str, Any] = {"builder": _builder(cls), "set_": object.__setattr__, "cls": cls}
    exec("\n".join(lines), scope)
    evolver: Callable[[Any, dict[str, Any]], Any] = scope["evolve"]
    return evolver


def thaw(case: Case) -> Case:
    """A mutable working copy of ``case`` (same slots and methods), typed as a Case for
    the code that reads it; ``freeze`` makes it a ``Case`` again. Replay folds many
    events into one working copy instead of building a record per event."""
    result: Case = _copier(Case)(case)
    return result


@cache
def _copier(cls: type) -> Callable[[Any], Any]:
    """``def copy(record)``: a ``_builder(cls)`` instance holding ``record``'s values,
    unrolled over the slots (a loop of ``setattr`` costs twice as much)."""
    names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
    lines = ["def copy(record):", "    new = builder()"]
    lines += [f"    new.{n} = record.{n}" for n in names]
    lines += ["    return new"]
    scope: dict[str, Any] = {"builder": _builder(cls)}
    exec("\n".join(lines), scope)
    copier: Callable[[Any], Any] = scope["copy"]
    return copier


def update(work: Case, changes: dict[str, Any]) -> None:
    """Write ``changes`` into a ``thaw``-ed working copy: what ``evolve_with`` makes a
    new record of, in place (one compiled writer per set of changed names, as for
    ``evolve_with``; a ``setattr`` loop costs twice as much)."""
    key = tuple(changes)
    writer = _WRITERS.get(key)
    if writer is None:
        writer = _make_writer(key)
        if len(_WRITERS) < _MAX_EVOLVERS:
            _WRITERS[key] = writer
    writer(work, changes)


_WRITERS: dict[tuple[str, ...], Callable[[Any, dict[str, Any]], None]] = {}


def _make_writer(names: tuple[str, ...]) -> Callable[[Any, dict[str, Any]], None]:
    """``def write(work, changes)`` unrolled over ``names``: each must be a field of
    ``Case`` (an unknown name raises ``AttributeError``, as ``setattr`` on the slots
    would)."""
    fields = set(Case.__slots__)
    for name in names:
        if name not in fields:
            raise AttributeError(f"Case has no field {name!r}")
    lines = ["def write(work, changes):"]
    lines += [f"    work.{n} = changes[{n!r}]" for n in names] or ["    pass"]
    scope: dict[str, Any] = {}
    exec("\n".join(lines), scope)
    writer: Callable[[Any, dict[str, Any]], None] = scope["write"]
    return writer


def freeze(work: Case) -> Case:
    """The ``Case`` a ``thaw``-ed copy now holds (the copy itself becomes it)."""
    if type(work) is not Case:
        object.__setattr__(work, "__class__", Case)
    return work


def evolve(record: T, **changes: Any) -> T:
    """A copy of a frozen slots record with ``changes`` applied.

    No validation: the engine calls it only with values it has validated already. This
    is the hot path of every step (``dataclasses.replace`` would re-validate every field).
    """
    return evolve_with(record, changes)


def evolve_with(record: T, changes: dict[str, Any]) -> T:
    """``evolve(record, **changes)`` for a dict of changes the caller built (saves
    packing them into keyword arguments again)."""
    cls = type(record)
    key = (cls, tuple(changes))
    evolver = _EVOLVERS.get(key)
    if evolver is None:
        evolver = _make_evolver(cls, key[1])
        if len(_EVOLVERS) < _MAX_EVOLVERS:
            _EVOLVERS[key] = evolver
    result: T = evolver(record, changes)
    return result


CASE_ADAPTER: TypeAdapter[Case] = TypeAdapter(Case)


def case_to_json(case: Case) -> bytes:
    """The case as JSON (Money amounts as strings, datetimes ISO 8601)."""
    return CASE_ADAPTER.dump_json(case)


def case_from_json(data: bytes | str) -> Case:
    """A case from ``case_to_json`` output, validated."""
    return CASE_ADAPTER.validate_json(data)


def read_snapshot(case_id: str, stored: object) -> Case:
    """The case ``case_id`` from its stored snapshot (the JSON text ``case_to_json``
    wrote), validated; ``SnapshotUnreadable`` naming the case, the field paths and the
    kinds of problem (never a stored value) if it is not text, not JSON, or not a case
    with that id. Every store reading snapshot text calls this (docs/decisions/0035)."""
    if type(stored) is not str:  # a BLOB (SQLite keeps what it is given), a number...
        raise SnapshotUnreadable(case_id, [("the case", "it is not text")])
    problems: list[tuple[str, str]] = []
    try:
        case = CASE_ADAPTER.validate_json(stored)
    except ValidationError as error:
        problems = snapshot_problems(error)
    if problems:
        # Raised outside the handler: the validation error holds the stored values
        # (``input``), personal ones too, and must be neither the cause nor the context.
        raise SnapshotUnreadable(case_id, problems)
    if case.id != case_id:
        raise SnapshotUnreadable(case_id, [("id", "names another case")])
    return case


#: Kinds of validation error whose message may quote what was read: a validator's own
#: text (``amount -40.00 ...``), a tag or attribute name found in the input. Reported by
#: kind only; so is a kind pydantic does not list (a custom error).
_QUOTING_KINDS = frozenset(
    {
        "assertion_error", "bytes_invalid_encoding", "datetime_object_invalid",
        "get_attribute_error", "iteration_error", "mapping_type", "no_such_attribute",
        "union_tag_invalid", "value_error",
    }
)  # fmt: skip
_SAFE_KINDS = frozenset(get_args(ErrorType)) - _QUOTING_KINDS
#: The longest field name a problem's path shows (a key added to a snapshot can be any text).
_SHOWN_NAME = 64


def snapshot_problems(error: ValidationError) -> list[tuple[str, str]]:
    """``(field path, what is wrong)`` for each problem of a snapshot's validation: the
    path dotted (``offers.0.options.0``; ``the case`` for the whole), the problem as
    pydantic words it unless that could quote the value read, then by its kind."""
    found = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        parts = [str(part) for part in problem["loc"]]
        where = ".".join(
            part if len(part) <= _SHOWN_NAME else part[:_SHOWN_NAME] + "..." for part in parts
        )
        kind = problem["type"]
        what = problem["msg"] if kind in _SAFE_KINDS else f"an invalid value ({kind})"
        found.append((where or "the case", what))
    return found
