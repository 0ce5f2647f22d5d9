"""Finding cases without reading every snapshot: the filters ``Engine.find_cases`` takes,
checked into a ``CaseQuery``; the page it returns and the page's keyset cursor; the
cases at risk of an SLA deadline; and the scans the engine falls back on for a store
that does not find cases itself (``workflow.store.FindsCases``).

Pages are in the order cases were opened: by ``(opened_at, case id)``, ids compared by
code point (byte order in UTF-8, as SQLite compares text and PostgreSQL does under
``COLLATE "C"``). ``opened_at`` never changes, so a walk through the pages returns every
case that matches throughout it exactly once, whatever steps are taken meanwhile
(docs/decisions/0037-finding-cases.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from workflow.checklist import FINAL_STATES, OPEN_STATES, State
from workflow.clock import outside_utc
from workflow.domain import MAX_ASSIGNEE, Case, Channel, Slug
from workflow.errors import CaseNotFound, InvalidQuery, SnapshotUnreadable
from workflow.events import canonical_json, format_at
from workflow.sla import Deadline

if TYPE_CHECKING:
    from workflow.store import Store

#: How many cases a page holds unless asked otherwise, and at most.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The longest customer id (the SQL store's column holds this many characters).
MAX_CUSTOMER_ID = 200
#: Where a case stands in the order of pages: ``(opened_at, case id)``.
Position = tuple[datetime, str]

_STATES: tuple[str, ...] = tuple(s.value for s in State)
_CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
_SLUG: TypeAdapter[str] = TypeAdapter(Slug)
#: What a cursor starts with: the version of its form.
_CURSOR_FORM = "c1."
#: The longest cursor read (one this code made holds a time, an id and a digest).
_MAX_CURSOR = 1000
#: U+0000, which PostgreSQL cannot store in text (the memory store and SQLite can).
NUL = "\x00"


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """Checked filters (``case_query`` makes one): a case matches when it matches every
    filter given (None: any). ``states`` holds state names (``open_only`` is the open
    states); ``customer_id``, ``assignee``, ``escalated_to`` (the role of the case's
    current escalation), ``channel`` and ``category`` are compared exactly; the times are
    aware UTC instants, ``*_since`` inclusive and ``*_before`` exclusive."""

    states: frozenset[str] | None = None
    customer_id: str | None = None
    assignee: str | None = None
    escalated_to: str | None = None
    channel: str | None = None
    category: str | None = None
    opened_since: datetime | None = None
    opened_before: datetime | None = None
    updated_since: datetime | None = None
    updated_before: datetime | None = None

    def matches(self, case: Case) -> bool:
        """Whether ``case`` matches every filter."""
        if self.states is not None and case.state not in self.states:
            return False
        for wanted, found in (
            (self.customer_id, case.customer.id),
            (self.assignee, case.assignee),
            (self.escalated_to, escalated_to(case)),
            (self.channel, case.channel.value),
            (self.category, case.category),
        ):
            if wanted is not None and found != wanted:
                return False
        return within(case.opened_at, self.opened_since, self.opened_before) and within(
            case.updated_at, self.updated_since, self.updated_before
        )

    def equalities(self) -> dict[str, str]:
        """The filters that name one value of a field, by the field's name (as the SQL
        store's columns are named)."""
        named = {
            "customer_id": self.customer_id,
            "assignee": self.assignee,
            "escalated_to": self.escalated_to,
            "channel": self.channel,
            "category": self.category,
        }
        return {name: value for name, value in named.items() if value is not None}

    def digest(self) -> str:
        """A short digest of the filters: a cursor carries it, so that it is not used
        with other filters."""
        form: dict[str, Any] = {
            "states": sorted(self.states) if self.states is not None else None,
            **self.equalities(),
            **{
                name: format_at(moment)
                for name, moment in (
                    ("opened_since", self.opened_since),
                    ("opened_before", self.opened_before),
                    ("updated_since", self.updated_since),
                    ("updated_before", self.updated_before),
                )
                if moment is not None
            },
        }
        return hashlib.sha256(canonical_json(form).encode()).hexdigest()[:16]


def within(moment: datetime, since: datetime | None, before: datetime | None) -> bool:
    """``since <= moment < before``, each bound only if given."""
    return (since is None or moment >= since) and (before is None or moment < before)


def escalated_to(case: Case) -> str | None:
    """The role the case is escalated to now (None when it is not escalated)."""
    return case.escalation.to_role if case.escalation is not None else None


@dataclass(frozen=True, slots=True)
class UnreadableCase:
    """A case a page lists whose stored snapshot does not read back (decision 0035): its
    id, when it opened (where it stands in the order of pages, from the store's
    columns; None from a store that does not find cases itself, which cannot tell
    without the snapshot) and what is wrong, as ``SnapshotUnreadable`` gives it (field
    paths and kinds of problem, never a stored value). ``str()`` is that error's
    message."""

    case_id: str
    opened_at: datetime | None
    problems: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, error: SnapshotUnreadable, opened_at: datetime | None) -> UnreadableCase:
        return cls(error.case_id, opened_at, error.problems)

    @property
    def error(self) -> SnapshotUnreadable:
        """The error loading the case raises."""
        return SnapshotUnreadable(self.case_id, self.problems)

    def __str__(self) -> str:
        return str(self.error)


#: What a store's ``find_cases`` lists: a case, or one whose snapshot does not read back.
Listed = Case | UnreadableCase


def position(case: Listed) -> Position:
    """Where ``case`` stands in the order of pages (an unreadable case must know when it
    opened)."""
    if isinstance(case, UnreadableCase):
        assert case.opened_at is not None
        return (case.opened_at, case.case_id)
    return (case.opened_at, case.id)


@dataclass(frozen=True, slots=True)
class CasePage:
    """One page of ``Engine.find_cases``: at most ``limit`` cases, in the order they were
    opened, and the cursor of the next page (None: this is the last). ``unreadable``:
    the cases of the page whose stored snapshot does not read back, in the same order
    (they take their places in ``limit``), reported rather than left out or failing the
    page; ``cases`` holds the others."""

    cases: tuple[Case, ...]
    next_cursor: str | None
    unreadable: tuple[UnreadableCase, ...] = ()


class _Soonest:
    """``step``, ``kind`` and ``due_at`` of an entry's soonest pending ``deadline``."""

    __slots__ = ()
    deadline: Deadline

    @property
    def step(self) -> str:
        return self.deadline.step

    @property
    def kind(self) -> str:
        return self.deadline.kind

    @property
    def due_at(self) -> datetime:
        return self.deadline.due_at


@dataclass(frozen=True, slots=True)
class CaseAtRisk(_Soonest):
    """An open case and its soonest pending SLA deadline (``deadline.kind``: ``warn`` or
    ``breach``; ``deadline.step``: the step it times; ``deadline.due_at``: when, UTC)."""

    case: Case
    deadline: Deadline


@dataclass(frozen=True, slots=True)
class UnreadableAtRisk(_Soonest):
    """A case at risk whose stored snapshot does not read back (decision 0060): the
    case as ``find_cases`` reports such a case (``UnreadableCase``: its id, when it
    opened if the store can tell, what is wrong; never a stored value), and its soonest
    pending deadline, which the store keeps apart from the snapshot and which places it
    in the list. ``str()`` is the error loading the case raises."""

    case: UnreadableCase
    deadline: Deadline

    def __str__(self) -> str:
        return str(self.case)


#: What a store's ``cases_at_risk`` lists: a case at risk, or one whose snapshot does
#: not read back.
AtRisk = CaseAtRisk | UnreadableAtRisk


class CasesAtRisk(list[CaseAtRisk]):
    """``Engine.cases_at_risk``'s answer: a list of the cases at risk, soonest deadline
    first, and (``unreadable``) those whose stored snapshot does not read back, each
    with its deadline, in the same order, reported rather than left out or failing the
    list (they take their places in ``limit``). A list, as the answer was before
    decision 0060: a copy or slice of it is a plain list, without ``unreadable``."""

    unreadable: tuple[UnreadableAtRisk, ...]

    def __init__(
        self, cases: Iterable[CaseAtRisk] = (), unreadable: Iterable[UnreadableAtRisk] = ()
    ) -> None:
        super().__init__(cases)
        self.unreadable = tuple(unreadable)

    @classmethod
    def of(cls, found: Iterable[AtRisk]) -> CasesAtRisk:
        """The answer from what a store listed, in order."""
        listed = list(found)
        return cls(
            (e for e in listed if isinstance(e, CaseAtRisk)),
            (e for e in listed if isinstance(e, UnreadableAtRisk)),
        )

    def in_order(self) -> list[AtRisk]:
        """The cases and the unreadable ones, merged in the order of the list."""
        return sorted([*self, *self.unreadable], key=at_risk_order)


def at_risk_order(entry: AtRisk) -> tuple[datetime, str]:
    """The order of cases at risk: soonest deadline first, then by case id."""
    case = entry.case
    return (entry.deadline.due_at, case.case_id if isinstance(case, UnreadableCase) else case.id)


def soonest(deadlines: Iterable[Deadline]) -> Deadline | None:
    """The soonest of a case's deadlines (ties: by key), None if there are none."""
    return min(deadlines, key=lambda d: (d.due_at, d.key), default=None)


# -- checking what the caller gives -------------------------------------------------


def case_query(
    *,
    state: str | Iterable[str] | None = None,
    customer_id: str | None = None,
    assignee: str | None = None,
    escalated_to: str | None = None,
    channel: Channel | str | None = None,
    category: str | None = None,
    opened_since: datetime | None = None,
    opened_before: datetime | None = None,
    updated_since: datetime | None = None,
    updated_before: datetime | None = None,
    open_only: bool = False,
) -> CaseQuery:
    """The filters of ``Engine.find_cases``, checked; ``InvalidQuery`` naming the first
    that cannot be used and why."""
    if type(open_only) is not bool:
        raise InvalidQuery("open_only", f"expected True or False, got {_kind(open_only)}")
    states = _states(state)
    if open_only:
        if states is None:
            states = frozenset(OPEN_STATES)
        elif not states - FINAL_STATES:
            raise InvalidQuery(
                "open_only",
                f"the states asked for ({', '.join(sorted(states))}) are not open: "
                "no case can match both",
            )
        else:
            states = states - FINAL_STATES
    query = CaseQuery(
        states=states,
        customer_id=_customer_id(customer_id),
        assignee=_assignee(assignee),
        escalated_to=_slug("escalated_to", escalated_to, "a role name like 'team-lead'"),
        channel=_channel(channel),
        category=_slug("category", category, "a category name like 'delivery'"),
        opened_since=aware("opened_since", opened_since),
        opened_before=aware("opened_before", opened_before),
        updated_since=aware("updated_since", updated_since),
        updated_before=aware("updated_before", updated_before),
    )
    for what, since, before in (
        ("opened", query.opened_since, query.opened_before),
        ("updated", query.updated_since, query.updated_before),
    ):
        if since is not None and before is not None and before <= since:
            raise InvalidQuery(
                f"{what}_before",
                f"{format_at(before)} is not after {what}_since {format_at(since)}: "
                "no case can match",
            )
    return query


def check_limit(limit: object, query: str = "find_cases", *, most: int | None = MAX_LIMIT) -> int:
    """``limit`` if it is a whole number from 1 to ``most`` (1 or more when ``most`` is
    None: ``Engine.tick``'s sweep, which has no upper bound)."""
    takes = f"from 1 to {most}" if most is not None else "of 1 or more"
    if type(limit) is not int:
        raise InvalidQuery("limit", f"expected a whole number {takes}, got {_kind(limit)}",
                           query=query)  # fmt: skip
    if limit < 1 or (most is not None and limit > most):
        shown = f"from 1 to {most}" if most is not None else "1 or more"
        raise InvalidQuery("limit", f"{limit} is not {shown}", query=query)
    return limit


def aware(name: str, value: object, query: str = "find_cases") -> datetime | None:
    """``value`` as an aware UTC datetime (None stays None); a naive one is refused."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidQuery(name, f"expected an aware datetime, got {_kind(value)}", query=query)
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidQuery(
            name,
            f"naive datetime {value.isoformat()} refused; give a time zone "
            "(for example datetime.now(timezone.utc))",
            query=query,
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidQuery(name, outside_utc(value), query=query) from None


def at_risk_until(within: object, now: datetime) -> datetime:
    """``now + within`` for ``Engine.cases_at_risk``: ``within`` must be a ``timedelta``
    of zero or more."""
    if not isinstance(within, timedelta):
        raise InvalidQuery(
            "within", f"expected a timedelta, got {_kind(within)}", query="cases_at_risk"
        )
    if within < timedelta(0):  # shown as -0:15:00, not timedelta's "-1 day, 23:45:00"
        raise InvalidQuery(
            "within", f"-{-within} is negative: give how far ahead to look", query="cases_at_risk"
        )
    try:
        return now + within
    except OverflowError:
        raise InvalidQuery(
            "within", f"{format_at(now)} + {within} is past the year 9999", query="cases_at_risk"
        ) from None


def _kind(value: object) -> str:
    return type(value).__name__


def _a(value: object) -> str:
    """``an int``, ``a float``: the kind of ``value`` with its article."""
    kind = _kind(value)
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidQuery(name, f"expected text, got {_kind(value)}")
    if not value.strip():
        raise InvalidQuery(name, "it is blank")
    return value


def _states(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    given = [value] if isinstance(value, str) else value
    if not isinstance(given, Iterable) or isinstance(given, bytes | dict):
        raise InvalidQuery("state", f"expected a state name or a list of them, got {_kind(value)}")
    names = list(given)
    if not names:
        raise InvalidQuery(
            "state", "an empty list matches no case: leave it out to find cases in any state"
        )
    for name in names:
        if name not in _STATES or not isinstance(name, str):
            shown = repr(name) if isinstance(name, str) else _a(name)
            raise InvalidQuery(
                "state", f"{shown} is not a state; the states are: {', '.join(_STATES)}"
            )
    return frozenset(str(name) for name in names)


def _customer_id(value: object) -> str | None:
    if value is None:
        return None
    text = _text("customer_id", value)
    if len(text) > MAX_CUSTOMER_ID:
        raise InvalidQuery(
            "customer_id", f"longer than {MAX_CUSTOMER_ID} characters: no customer has such an id"
        )
    _refuse_surrogates("customer_id", text)
    return text


def _assignee(value: object) -> str | None:
    """As ``assign`` records it: without surrounding spaces."""
    if value is None:
        return None
    text = _text("assignee", value).strip()
    if len(text) > MAX_ASSIGNEE:
        raise InvalidQuery(
            "assignee", f"longer than {MAX_ASSIGNEE} characters: assign refuses such a name"
        )
    _refuse_surrogates("assignee", text)
    if NUL in text:
        raise InvalidQuery(
            "assignee",
            f"holds U+0000 at position {text.index(NUL) + 1}: assign refuses such a name "
            "(PostgreSQL cannot store it in the column cases are found by)",
        )
    return text


def _refuse_surrogates(name: str, text: str) -> None:
    """A lone surrogate is in no stored text (UTF-8 cannot encode one: ``open_case`` and
    every step refuse it), and SQL drivers fail on it rather than find nothing."""
    at = first_surrogate(text)
    if at is not None:
        raise InvalidQuery(
            name,
            f"holds U+{ord(text[at]):04X} (a surrogate) at position {at + 1}: no stored text "
            "can (UTF-8 cannot encode it)",
        )


def first_surrogate(text: str) -> int | None:
    """Where the first lone surrogate in ``text`` is (None if there is none)."""
    if text.isascii():
        return None
    return next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)


def _slug(name: str, value: object, example: str) -> str | None:
    if value is None:
        return None
    text = _text(name, value)
    try:
        return _SLUG.validate_python(text)
    except ValidationError:
        raise InvalidQuery(name, f"{text!r} is not {example}") from None


def _channel(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _CHANNELS:
        return str(value)  # a Channel member is its value
    shown = repr(value) if isinstance(value, str) else _a(value)
    raise InvalidQuery(
        "channel", f"{shown} is not a channel; the channels are: {', '.join(_CHANNELS)}"
    )


# -- cursors --------------------------------------------------------------------------


def make_cursor(case: Listed, query: CaseQuery) -> str:
    """The cursor of the page after ``case`` (the last of a page) for ``query``: opaque
    text, safe in a URL."""
    at, case_id = position(case)
    form = {"at": format_at(at), "id": case_id, "q": query.digest()}
    raw = base64.urlsafe_b64encode(canonical_json(form).encode()).decode().rstrip("=")
    return _CURSOR_FORM + raw


def read_cursor(cursor: object, query: CaseQuery) -> Position | None:
    """Where the page a cursor names starts (None: no cursor, the first page)."""
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise InvalidQuery(
            "cursor", f"expected the text of a page's next_cursor, got {_kind(cursor)}"
        )
    form = _cursor_form(cursor)
    if form is None:
        raise InvalidQuery("cursor", NOT_A_CURSOR)
    at, case_id, digest = form
    if digest != query.digest():
        raise InvalidQuery("cursor", CURSOR_FOR_OTHER_FILTERS)
    return (at, case_id)


#: ``InvalidQuery.problem`` for a cursor no query made (the command line says it in its
#: own words).
NOT_A_CURSOR = "it is not a cursor find_cases returned (pass a page's next_cursor as it is)"
#: ``InvalidQuery.problem`` for a cursor made for other filters.
CURSOR_FOR_OTHER_FILTERS = (
    "it was returned for other filters: pass the filters it was returned with, or start "
    "again without a cursor"
)


def _cursor_form(cursor: str) -> tuple[datetime, str, str] | None:
    if not cursor.startswith(_CURSOR_FORM) or len(cursor) > _MAX_CURSOR:
        return None
    raw = cursor[len(_CURSOR_FORM) :]
    try:
        padded = (raw + "=" * (-len(raw) % 4)).encode("ascii")
        form = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):  # not base64, not UTF-8, not JSON
        return None
    if not isinstance(form, dict) or set(form) != {"at", "id", "q"}:
        return None
    at, case_id, digest = form["at"], form["id"], form["q"]
    if not all(isinstance(part, str) for part in (at, case_id, digest)):
        return None
    if first_surrogate(case_id) is not None:  # no case id holds one
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        return None
    return moment.astimezone(UTC), case_id, digest


# -- scans, for a store that does not find cases itself ---------------------------------


def scan_cases(store: Store, query: CaseQuery, after: Position | None, limit: int) -> list[Listed]:
    """``FindsCases.find_cases`` through the ``Store`` port alone: every case is loaded.
    A case whose snapshot does not read back cannot be matched or placed: it follows
    the page, as an ``UnreadableCase`` without ``opened_at``, whatever the filters."""
    unplaced: list[UnreadableCase] = []
    found = heapq.nsmallest(limit, _matching(store, query, after, unplaced), key=position)
    return [*found, *unplaced]


def _matching(
    store: Store, query: CaseQuery, after: Position | None, unplaced: list[UnreadableCase]
) -> Iterator[Case]:
    for case in _every_case(store, unplaced):
        if query.matches(case) and (after is None or position(case) > after):
            yield case


def _every_case(store: Store, unreadable: list[UnreadableCase] | None = None) -> Iterator[Case]:
    """Every case ``load`` reads; one that does not read back is added to ``unreadable``
    (when it is given, else it raises)."""
    for case_id in store.case_ids():
        try:
            yield store.load(case_id)
        except CaseNotFound:  # purged since it was listed
            continue
        except SnapshotUnreadable as error:
            if unreadable is None:
                raise
            unreadable.append(UnreadableCase.of(error, None))


def scan_at_risk(store: Store, until: datetime, limit: int) -> list[AtRisk]:
    """``FindsCases.cases_at_risk`` through the ``Store`` port alone: every case's
    deadlines are read, and the case loaded when one is due by ``until``. A case whose
    snapshot does not read back is an ``UnreadableAtRisk`` in its place (by its
    deadline; without ``opened_at``, which is in the snapshot): whether it is open is
    in the snapshot too, and a closed case's deadlines are cleared when it closes."""
    return heapq.nsmallest(limit, _at_risk(store, until), key=at_risk_order)


def _at_risk(store: Store, until: datetime) -> Iterator[AtRisk]:
    for case_id in store.case_ids():
        due = soonest(d for d in store.pending_deadlines(case_id) if d.due_at <= until)
        if due is None:
            continue
        try:
            case = store.load(case_id)
        except CaseNotFound:
            continue
        except SnapshotUnreadable as error:
            yield UnreadableAtRisk(UnreadableCase.of(error, None), due)
            continue
        if case.state not in FINAL_STATES:
            yield CaseAtRisk(case, due)
