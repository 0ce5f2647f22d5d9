"""The engine: takes a step on a case, checked, recorded and stored atomically.

One step: load the case, fire the checklist machine (its guard checks order, data,
policy), build the hash-chained event, apply it to get the new snapshot, append both to
the store with the version it was loaded at, log, return the new case.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from policies.decide import decide_offer
from policies.errors import CurrencyMismatch
from policies.model import Policy, default_policy
from policies.money import Money
from policies.remedy import Remedy
from policies.sla import Target
from workflow import audit, sla
from workflow.checklist import ESCALATABLE, FINAL_STATES, fire, is_allowed
from workflow.clock import Clock, SystemClock, to_utc
from workflow.domain import (
    Actor,
    Case,
    Channel,
    ComplainantType,
    Customer,
    Priority,
    Slug,
    case_id_problem,
    customer_id_problem,
    not_a_choice,
)
from workflow.errors import (
    NEW_CASE,
    CaseAlreadyExists,
    CaseNotFound,
    CasePurged,
    ComplaintflowError,
    ConcurrencyConflict,
    ErasureRefused,
    IdempotencyKeyReused,
    InvalidActor,
    InvalidErasure,
    InvalidStepData,
    InvalidTime,
    SnapshotUnreadable,
    StepNotAllowed,
    shown_id,
    snapshot_problems_text,
)
from workflow.events import GENESIS, Event, forget_text, format_at, make_event
from workflow.guards import (
    GUARDS,
    MAX_TEXT,
    OCCURRED_ON_SLACK,
    DecideHook,
    StepContext,
    allowed_for,
    not_a_name,
    read_day,
)
from workflow.idempotency import Uncanonical, check_key, comparable, fingerprint
from workflow.logs import engine_logger
from workflow.personal import (
    ERASE_EVENT,
    ERASED,
    PERSONAL_PATHS,
    Personal,
    holds_plain_values,
    seal_data,
    vault_of,
)
from workflow.query import (
    DEFAULT_LIMIT,
    CasePage,
    CasesAtRisk,
    UnreadableCase,
    at_risk_until,
    aware,
    case_query,
    check_limit,
    make_cursor,
    read_cursor,
    scan_at_risk,
    scan_cases,
)
from workflow.replay import OPEN_EVENT, apply, opened_case, replay
from workflow.sla import Deadline
from workflow.store import (
    FindsCases,
    Fired,
    KeptCase,
    Purged,
    SkippedCase,
    Store,
    Tombstone,
    retention_end,
)

T = TypeVar("T")
E = TypeVar("E", bound=ComplaintflowError)


@dataclass(frozen=True)
class Guidance:
    """What the policy's playbook says for a case now: text per step allowed now."""

    case_id: str
    complainant_type: str
    state: str
    priority: str
    steps: dict[str, str]


_CUSTOMER: TypeAdapter[Customer] = TypeAdapter(Customer)
_NO_VAULT: Mapping[str, Personal] = {}
_SLUG: TypeAdapter[str] = TypeAdapter(Slug)


def cases_at_risk_in(store: Store, until: datetime, limit: int) -> CasesAtRisk:
    """``Engine.cases_at_risk``'s answer, by ``until`` (aware UTC), at most ``limit``
    (the cases whose snapshot does not read back, in ``unreadable``, counted), neither
    checked: through ``FindsCases`` when ``store`` has it, else by reading every case
    through ``Store`` (the command line asks for one more than a page holds, to say
    whether there are more)."""
    if isinstance(store, FindsCases):
        return CasesAtRisk.of(store.cases_at_risk(until, limit))
    return CasesAtRisk.of(scan_at_risk(store, until, limit))


def _actor(actor: Actor | str, step: str, case_id: str | None) -> Actor:
    """``Actor.parse(actor)``; its ``InvalidActor`` names the command (``step``, on case
    ``case_id``) the actor was given to, before anything is read or written."""
    try:
        return Actor.parse(actor)
    except InvalidActor as error:
        raise error.given_to(step, case_id) from None


@lru_cache(maxsize=4096)
def _actor_text(actor: Actor) -> str:
    """``str(actor)``: the ``role:id`` text events and records carry."""
    return str(actor)


SLA_ACTOR = "system:sla"


def retention_ends(closed_at: datetime, policy: Policy) -> datetime:
    """When a case closed at ``closed_at`` may be purged: ``retention.years`` calendar
    years later (29 February counts to 28 February; ``workflow.store.retention_end``)."""
    end = retention_end(closed_at, policy.retention.years)
    return end if end is not None else datetime.max.replace(tzinfo=UTC)


_PRIORITY_ORDER = ("low", "normal", "high", "urgent")
_Item = tuple[str, dict[str, Any]]
_NO_KEYS: frozenset[tuple[str, str]] = frozenset()


def _sla_item(
    deadline: Deadline, target: Target | None, *, late: bool, priority: str = "normal"
) -> _Item:
    data: dict[str, Any] = {
        "key": deadline.key,
        "target": deadline.target,
        "step": deadline.step,
        "due_at": format_at(deadline.due_at),
    }
    if deadline.kind == "warn":
        data["percent"] = deadline.percent
        return ("sla_warning", data)
    if late:
        data["late_step"] = True
    if target is not None:
        data["action"] = target.on_breach
        raise_to = target.raise_to
        if raise_to and _PRIORITY_ORDER.index(raise_to) > _PRIORITY_ORDER.index(priority):
            data["priority"] = raise_to
    return ("sla_breached", data)


def customer_data(customer: Customer) -> dict[str, Any]:
    """The customer as the ``open`` event records it: what pydantic's
    ``dump_python(mode="json", exclude_none=True)`` gives (every field is text), built
    directly (a test checks they agree)."""
    data = {"id": customer.id, "name": customer.name}
    if customer.contact is not None:
        data["contact"] = customer.contact
    if customer.account is not None:
        data["account"] = customer.account
    data["tier"] = customer.tier
    return data


#: Each enum's values by value and by member (a StrEnum member is equal to its value).
_ENUM_TEXTS: dict[type, dict[str, str]] = {
    kind: {member.value: member.value for member in kind}
    for kind in (Channel, Priority, ComplainantType)
}


def _enum_text(kind: type[Channel] | type[Priority] | type[ComplainantType], value: Any) -> str:
    """``kind(value).value``; known text is looked up. Any other value is a
    ``ValueError`` naming the values there are (``not_a_choice``)."""
    if type(value) is str or type(value) is kind:
        text = _ENUM_TEXTS[kind].get(value)
        if text is not None:
            return text
    try:
        return kind(value).value
    except ValueError:
        raise ValueError(not_a_choice(kind, value)) from None


def _without_blanks(customer: Customer) -> Customer:
    """``customer`` without a blank contact or account: blank text is not information."""
    contact, account = (
        None if value is not None and not value.strip() else value
        for value in (customer.contact, customer.account)
    )
    if contact is customer.contact and account is customer.account:
        return customer
    return dataclasses.replace(customer, contact=contact, account=account)


def _new_case_id() -> str:
    """``case-`` + a random (version 4) UUID's hex, as ``uuid.uuid4().hex`` writes it."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return f"case-{raw.hex()}"


@dataclass(slots=True)
class _Command:
    """A command given an idempotency key: what its fingerprint is made of, and the
    fingerprint, made once when first needed."""

    key: str
    case_id: str | None
    step: str
    actor: str
    inputs: Mapping[str, Any]
    printed: str | None = None
    #: ``open_case`` given no priority: its input ``priority`` is the complainant type's
    #: playbook priority, which a retry reads from the policy the case opened under.
    priority_left_out: bool = False

    def fingerprint(self) -> str:
        """Raises ``Uncanonical`` for inputs that have no canonical form."""
        if self.printed is None:
            self.printed = fingerprint(self.step, self.case_id, self.actor, self.inputs)
        return self.printed


def _bad_inputs(
    exc: Uncanonical, case_id: str, state: str, step: str, allowed: Sequence[str]
) -> InvalidStepData:
    """An input the fingerprint cannot hold, as the step's refusal."""
    return InvalidStepData(
        case_id=case_id, state=state, step=step, allowed=allowed, problems=[(exc.path, exc.problem)]
    )


def _surrogates(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(path, problem)`` for each text in ``value`` (nested mappings and sequences
    walked) holding a lone surrogate: text with no UTF-8 form, which no event can hold.
    Only called once encoding has failed."""
    if isinstance(value, str):
        for position, char in enumerate(value, start=1):
            if "\ud800" <= char <= "\udfff":
                yield (
                    path,
                    (
                        f"holds a lone surrogate U+{ord(char):04X} at position {position} (half "
                        "of a UTF-16 pair: text that was not decoded properly), which has no "
                        "UTF-8 form and cannot be recorded"
                    ),
                )
                return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _surrogates(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _surrogates(item, f"{path}[{index}]")


def _unencodable(
    inputs: Mapping[str, Any], case_id: str, state: str, step: str, allowed: Sequence[str]
) -> InvalidStepData:
    """The refusal of a step whose inputs hold text without a UTF-8 form."""
    problems = list(_surrogates(inputs, "")) or [
        ("data", "holds text without a UTF-8 form (a lone surrogate)")
    ]
    return InvalidStepData(
        case_id=case_id, state=state, step=step, allowed=allowed, problems=problems
    )


class _PolicyNotGiven(Exception):
    """``_sweep``: the engine was not given the policy (``version``) the case runs under."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.version = version


#: Why a sweep skipped a case another worker or an agent changed first.
_SWEEP_CHANGED = (
    "it changed while the sweep ran (an agent's step, or another worker's sweep): what "
    "was due is fired by that other sweep, or by the next one"
)


class Engine:
    """Runs complaints through the checklist.

    ``store`` holds the cases; ``policy`` decides for new cases (the permissive default
    if omitted); ``previous_policies`` are earlier policies that cases opened under them
    keep running under (until ``migrate_policy``); ``clock`` gives ``now`` (UTC wall
    clock if omitted); ``decide`` is the offer-decision hook (``policies.decide_offer``
    by default); ``logger`` is a structlog logger or a standard library ``Logger`` or
    ``LoggerAdapter`` (by default structlog's ``complaintflow`` logger once structlog is
    configured, the standard library's until then: ``workflow.logs``; the library
    configures nothing globally).
    """

    def __init__(
        self,
        store: Store,
        *,
        policy: Policy | None = None,
        previous_policies: Sequence[Policy] = (),
        clock: Clock | None = None,
        decide: DecideHook | None = None,
        logger: Any = None,
        new_case_id: Callable[[], str] = _new_case_id,
    ) -> None:
        self.store = store
        self.policy = policy if policy is not None else default_policy()
        self.clock = clock if clock is not None else SystemClock()
        self._decide = decide if decide is not None else decide_offer
        self._log = engine_logger(logger)
        self._new_case_id = new_case_id
        self._stamp = self.policy.stamp
        self._policies = {p.stamp: p for p in previous_policies}
        self._policies[self._stamp] = self.policy
        self._has_sla = {
            stamp: bool(p.sla.targets or any(pb.sla for pb in p.playbooks.values()))
            for stamp, p in self._policies.items()
        }

    # -- reading ---------------------------------------------------------------------

    def get(self, case_id: str) -> Case:
        """The case as it stands now. Raises ``CaseNotFound``."""
        return self.store.load(case_id)

    def history(self, case_id: str) -> list[Event]:
        """The case's events, oldest first."""
        return self.store.events(case_id)

    def replay(self, case_id: str) -> Case:
        """The case rebuilt from its events and the personal values its snapshot holds
        (equal to ``get`` for a sound store)."""
        return replay(self.store.events(case_id), vault_of(self.store.load(case_id).personal))

    def state_at(self, case_id: str, when: datetime) -> Case:
        """The case as it stood at ``when`` (a replay of its events up to then; personal
        values erased since read as erased)."""
        moment = to_utc(when, "state_at(when)", field="when")  # before anything is read
        vault = vault_of(self.store.load(case_id).personal)
        return audit.state_at(self.store.events(case_id), moment, vault)

    def verify(self, case_id: str | None = None) -> list[audit.Finding]:
        """Problems in the stored histories (chains, seqs, snapshots) and, verifying
        every case, in the tombstones (a purge after the engine's clock's now among
        them); empty if sound."""
        return audit.verify_store(self.store, case_id, now=self.now())

    def find_cases(
        self,
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
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> CasePage:
        """A page of the cases matching every filter given, in the order they were
        opened (``opened_at``, then id), at most ``limit`` (1 to 1000); pass the page's
        ``next_cursor`` with the same filters for the next one (None: no more). ``state``
        is a state or a list of states; ``open_only`` leaves out closed and withdrawn
        cases; ``escalated_to`` is the role a case is escalated to now; ``*_since`` times
        are inclusive, ``*_before`` exclusive (aware datetimes). A filter or cursor that
        cannot be used raises ``InvalidQuery`` naming it, before the store is read. A
        case whose stored snapshot does not read back is in the page's ``unreadable``,
        in its place, with what is wrong (decision 0054).
        docs/embedding.md#finding-cases."""
        query = case_query(
            state=state,
            customer_id=customer_id,
            assignee=assignee,
            escalated_to=escalated_to,
            channel=channel,
            category=category,
            opened_since=opened_since,
            opened_before=opened_before,
            updated_since=updated_since,
            updated_before=updated_before,
            open_only=open_only,
        )
        size = check_limit(limit)
        after = read_cursor(cursor, query)
        store = self.store
        if isinstance(store, FindsCases):
            found = store.find_cases(query, after, size + 1)
        else:
            found = scan_cases(store, query, after, size + 1)
        # A case whose snapshot does not read back is listed in its place (``unreadable``),
        # not left out, nor failing the page; one no store could place (its opening time
        # is in its snapshot) is listed on the first page.
        placed = [e for e in found if not (isinstance(e, UnreadableCase) and e.opened_at is None)]
        page = placed[:size]
        more = len(placed) > size
        unplaced = [e for e in found if isinstance(e, UnreadableCase) and e.opened_at is None]
        return CasePage(
            tuple(e for e in page if isinstance(e, Case)),
            make_cursor(page[-1], query) if more else None,
            tuple(e for e in page if isinstance(e, UnreadableCase))
            + (tuple(unplaced) if after is None else ()),
        )

    def cases_at_risk(
        self, within: timedelta, now: datetime | None = None, *, limit: int = DEFAULT_LIMIT
    ) -> CasesAtRisk:
        """Open cases with a pending SLA deadline (a warning or a breach) due by ``now +
        within`` (``now``: the engine's clock if not given), those past due that no sweep
        fired yet included: each case once, with its soonest such deadline (its
        ``step``, ``kind``, ``due_at``), soonest first, at most ``limit`` (1 to 1000).
        Read from the deadlines the store keeps (``Store.pending_deadlines``), as the
        sweeper finds them. Bad arguments raise ``InvalidQuery``. A list; a case whose
        stored snapshot does not read back is in its ``unreadable``, with its deadline
        and what is wrong, in its place in the order and the ``limit`` (decision 0060)."""
        when = aware("now", now, "cases_at_risk") if now is not None else self.now()
        assert when is not None
        until = at_risk_until(within, when)
        return cases_at_risk_in(self.store, until, check_limit(limit, "cases_at_risk"))

    def allowed_steps(self, case_id: str) -> tuple[str, ...]:
        """The steps and actions the case accepts now."""
        return self._allowed(self.store.load(case_id))

    def _allowed(self, case: Case) -> tuple[str, ...]:
        """The steps ``case`` accepts from this engine: under the case's policy, or only
        ``migrate_policy`` (if the state has it) when the engine was not given it."""
        policy = self._policies.get(case.policy_version)
        if policy is None:
            return ("migrate_policy",) if is_allowed(case.state, "migrate_policy") else ()
        return allowed_for(case, policy, self._stamp)

    def now(self) -> datetime:
        now = self.clock.now()
        if type(now) is datetime and now.tzinfo is UTC:
            return now  # what ``to_utc`` would return (``astimezone`` to its own zone)
        try:
            return to_utc(now, "clock.now()")
        except InvalidTime as error:
            # A bug in the embedding program, as a decide hook's wrong return is, not an
            # input to refuse: not a ``ComplaintflowError`` (docs/embedding.md).
            raise (TypeError if isinstance(error, TypeError) else ValueError)(str(error)) from None

    # -- writing ---------------------------------------------------------------------

    def _playbook_priority(self, complainant_type: object, policy: Policy | None = None) -> str:
        """The priority a case opened as ``complainant_type`` starts with, no priority
        given: its playbook's in ``policy`` (the engine's unless given), as ``classify``
        sets it, else normal (a type that is no type gives normal here; ``open_case``
        refuses it)."""
        try:
            kind = _enum_text(ComplainantType, complainant_type)
        except ValueError:
            return Priority.NORMAL.value
        playbook = (policy or self.policy).playbook(kind)
        if playbook is not None and playbook.priority is not None:
            return playbook.priority
        return Priority.NORMAL.value

    def open_case(
        self,
        *,
        actor: Actor | str,
        customer: Customer | Mapping[str, Any],
        channel: Channel | str,
        subject: str | None = None,
        details: str | None = None,
        category: str | None = None,
        occurred_on: date | str | None = None,
        priority: Priority | str | None = None,
        complainant_type: ComplainantType | str = ComplainantType.UNKNOWN,
        case_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Case:
        """Open a complaint: the case starts ``received``, with an ``open`` event.

        ``priority`` not given: the priority the policy's playbook for
        ``complainant_type`` sets, as ``classify`` would, else normal.

        ``case_id`` (else a new ``case-`` + UUID) follows an actor id's rules: 1 to 200
        characters in NFC, no control, format, surrogate or private-use characters, no
        whitespace at either end; any other is ``InvalidStepData`` naming it. The
        customer's id follows the same rules (``InvalidStepData`` at ``id``)."""
        if case_id is not None:
            self._check_case_id(case_id)
        try:  # inline, not ``_actor``: the hot path (a ``try`` costs nothing)
            who = _actor_text(Actor.parse(actor))
        except InvalidActor as error:
            raise error.given_to(OPEN_EVENT, case_id) from None
        # The priority it opens with: left out, the complainant type's playbook's (a retry
        # giving that explicitly is the same command as one leaving it out).
        opens_with = priority if priority is not None else self._playbook_priority(complainant_type)
        command: _Command | None = None
        if idempotency_key is not None:
            check_key(idempotency_key, case_id=case_id, step=OPEN_EVENT)
            inputs = {
                "customer": customer,
                "channel": channel,
                "subject": subject,
                "details": details,
                "category": category,
                "occurred_on": occurred_on,
                "priority": opens_with,
                "complainant_type": complainant_type,
            }
            command = _Command(
                idempotency_key, case_id, OPEN_EVENT, who, inputs,
                priority_left_out=priority is None,
            )  # fmt: skip
            earlier = self._earlier_result(command)
            if earlier is not None:
                return earlier
        if case_id is not None:
            cid = case_id
        else:
            cid = self._new_case_id()
            if self._new_case_id is not _new_case_id:  # yours: checked as a given one is
                self._check_case_id(cid)
        now = self.now()
        field = "customer"  # what is being read, for the problem's name
        try:
            cust = (
                customer if isinstance(customer, Customer) else _CUSTOMER.validate_python(customer)
            )
            for field in ("id", "name"):
                if not getattr(cust, field).strip():
                    raise ValueError("it is blank")
            field = "id"  # a customer's fields are named bare
            problem = customer_id_problem(cust.id)
            if problem is not None:  # one customer, one id: the cap counts by it
                raise ValueError(problem)
            cust = _without_blanks(cust)
            tiers = self.policy.tiers
            if tiers is not None and cust.tier not in tiers:
                field = "tier"
                raise ValueError(self.policy.not_a_tier(cust.tier))
            data: dict[str, Any] = {"customer": customer_data(cust)}
            for field, kind, value in (
                ("channel", Channel, channel),
                ("complainant_type", ComplainantType, complainant_type),
            ):
                data[field] = _enum_text(kind, value)
            field = "priority"
            data["priority"] = _enum_text(Priority, opens_with)
            for field, text in (("subject", subject), ("details", details)):
                if text is None:
                    continue
                if not isinstance(text, str):
                    raise ValueError(f"expected text, got {type(text).__name__}")
                text = text.strip()
                if len(text) > MAX_TEXT:
                    raise ValueError(f"longer than {MAX_TEXT} characters")
                if text:  # blank text is not information
                    data[field] = text
            if occurred_on is not None:
                field = "occurred_on"
                day = read_day(occurred_on)
                if day > (now + OCCURRED_ON_SLACK).date():
                    raise ValueError(f"{day.isoformat()} is in the future")
                data["occurred_on"] = day.isoformat()
            if category is not None:
                field = "category"
                if not isinstance(category, str):
                    raise ValueError(f"expected text, got {type(category).__name__}")
                try:
                    data["category"] = _SLUG.validate_python(category)
                except ValidationError:  # as ``record`` says it
                    raise ValueError(not_a_name(category)) from None
                known = self.policy.categories
                if known is not None and data["category"] not in known:
                    raise ValueError(
                        f"{category!r} is not one of the policy's categories: {', '.join(known)}"
                    )
            field = OPEN_EVENT
            plain = data
            data, sealed = seal_data(OPEN_EVENT, data)
            event = make_event(
                cid, 1, OPEN_EVENT, now, who, data, self._stamp, GENESIS, keep_text=True
            )
            case = opened_case(event, _NO_VAULT, cust, (plain, sealed))
        except (ValidationError, ValueError) as exc:
            # A customer's fields are named as before (``name``); a value's own error has
            # no location: it is the field being read.
            if isinstance(exc, ValidationError):
                problems = [
                    (".".join(str(p) for p in e["loc"]) or field, e["msg"]) for e in exc.errors()
                ]
            elif isinstance(exc, UnicodeEncodeError):  # hashing the event found text without
                texts = {"subject": subject, "details": details}  # a UTF-8 form
                problems = list(_surrogates(texts, "")) or [(field, str(exc))]
            else:
                problems = [(field, str(exc))]
            refusal = InvalidStepData(
                case_id=NEW_CASE if case_id is None else case_id, state="(new)",
                step=OPEN_EVENT, allowed=(OPEN_EVENT,), problems=problems,
            )  # fmt: skip
            self._refused(refusal)
            raise refusal from None
        printed = None
        if command is not None:
            try:
                printed = command.fingerprint()
            except Uncanonical as exc:  # (the checks above refuse such inputs first)
                shown = NEW_CASE if case_id is None else case_id
                raise self._refused(
                    _bad_inputs(exc, shown, "(new)", OPEN_EVENT, (OPEN_EVENT,))
                ) from None
        try:
            self.store.append(
                case, (event,), 0, self._deadlines(case), idempotency_key,
                idempotency_fingerprint=printed,
            )  # fmt: skip
        except ConcurrencyConflict:
            earlier = self._earlier_result(command) if command is not None else None
            if earlier is None:
                # The key was free: the id is taken, which no retry changes, by a case
                # or by a purged case's tombstone (the store refuses both).
                raise self._id_taken(cid) from None
            return earlier
        self._log.info("case opened", case_id=cid, step=OPEN_EVENT, actor=who)
        return case

    def _id_taken(self, case_id: str) -> CaseAlreadyExists:
        """Why an opening at ``case_id`` conflicted: a case has the id, or (none has)
        a purged case's tombstone keeps it (``CasePurged``). The tombstones are read
        only here, on the refusal."""
        try:
            self.store.load(case_id)
        except CaseNotFound:
            purged = next((t for t in self.store.tombstones() if t.case_id == case_id), None)
            if purged is not None:
                return CasePurged(case_id, purged.purged_at)
        except SnapshotUnreadable:
            pass  # a case has the id
        return CaseAlreadyExists(case_id)

    def _check_case_id(self, case_id: object) -> None:
        """``InvalidStepData`` (logged) if ``case_id`` is not a case id ``open_case`` takes;
        the message shows the id escaped (``repr``), never its characters raw."""
        problem = case_id_problem(case_id)
        if problem is not None:
            shown = repr(case_id)
            shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
            refusal = InvalidStepData(
                case_id=shown, state="(new)", step=OPEN_EVENT, allowed=(OPEN_EVENT,),
                problems=[("case_id", problem)],
            )  # fmt: skip
            raise self._refused(refusal)

    def step(
        self,
        case_id: str,
        step: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        **inputs: Any,
    ) -> Case:
        """Take ``step`` (any step or action by name) with its inputs.

        Refused steps raise ``StepNotAllowed``, ``MissingInformation``, ``InvalidStepData``
        or ``PolicyViolation``, and nothing is written. A concurrent change raises
        ``ConcurrencyConflict`` (see ``retrying``). With an ``idempotency_key``, a command
        retried with the same key returns the case as the first one left it and appends
        nothing.
        """
        try:  # inline, not ``_actor``: the step hot path (a ``try`` costs nothing)
            who = actor if type(actor) is Actor else Actor.parse(actor)
        except InvalidActor as error:
            raise error.given_to(step, case_id) from None
        command: _Command | None = None
        if idempotency_key is not None:
            check_key(idempotency_key, case_id=case_id, step=step)
            command = _Command(idempotency_key, case_id, step, _actor_text(who), inputs)
            earlier = self._earlier_result(command)
            if earlier is not None:
                return earlier
        case = self.store.load(case_id)
        spec = GUARDS.get(step)
        if spec is None:
            raise self._refused(
                StepNotAllowed(
                    case_id=case_id,
                    state=case.state,
                    step=step,
                    allowed=self._allowed(case),
                    reason=f"there is no step called {step!r}",
                )
            )
        guard, accepted = spec
        if not is_allowed(case.state, step):
            raise self._refused(
                StepNotAllowed(
                    case_id=case_id, state=case.state, step=step, allowed=self._allowed(case)
                )
            )
        if not accepted.issuperset(inputs):
            unknown = inputs.keys() - accepted
            raise self._refused(
                InvalidStepData(
                    case_id=case_id,
                    state=case.state,
                    step=step,
                    allowed=self._allowed(case),
                    problems=[(name, f"'{step}' takes no such input") for name in sorted(unknown)],
                )
            )
        # A case's events never go back in time, even when workers' clocks disagree.
        now = self.now()
        if now < case.updated_at:
            now = case.updated_at
        policy = self._policies.get(case.policy_version)
        allowed = None  # the guard reads them under ``policy``
        if policy is None:
            try:
                policy = self._policy_for(case, step)
            except StepNotAllowed as refusal:
                raise self._refused(refusal) from None
            allowed = self._allowed(case)
        ctx = StepContext(
            case,
            step,
            who,
            now,
            policy,
            inputs,
            self._decide,
            paid_within_cap=self._paid,
            current_policy=self.policy,
            allowed=allowed,
        )
        try:
            # ``fire`` would run the guard first too; running it here saves a closure.
            state, data = fire(step, case, guard(ctx))
        except ComplaintflowError as exc:
            self._refused(exc, case_id=case.id, step=step, state=case.state)
            raise
        # A step taken after its own deadline is accepted (time cannot be undone), and the
        # warnings and breach it passed are recorded first, in the same append.
        work: Case = case
        events: list[Event] = []
        if self._has_sla[policy.stamp]:
            late = self._late(case, policy, step, now, ends=state in FINAL_STATES)
            if late:
                work, events = self._chain(case, late, now, policy.stamp)
        data = data if type(data) is dict else dict(data)
        vault: Mapping[str, Personal] = _NO_VAULT
        if step in PERSONAL_PATHS:
            data, sealed = seal_data(step, data)
            vault = vault_of(sealed)
        try:
            event = make_event(
                case_id,
                work.version + 1,
                step,
                now,
                _actor_text(who),
                data,
                self._stamp if step == "migrate_policy" else policy.stamp,
                work.head_hash,
                keep_text=True,  # this event reaches nothing but ``apply`` before the append
            )
        except UnicodeEncodeError:  # text with no UTF-8 form: nothing can hash or store it
            raise self._refused(
                _unencodable(inputs, case_id, case.state, step, self._allowed(case))
            ) from None
        new = apply(work, event, state, vault)
        events.append(event)
        printed = None
        if command is not None:
            try:
                printed = command.fingerprint()
            except Uncanonical as exc:  # inputs the guard took but that have no JSON form
                raise self._refused(
                    _bad_inputs(exc, case_id, case.state, step, self._allowed(case))
                ) from None
        try:
            deadlines = (
                self._deadlines(new, changed_policy=step == "migrate_policy")
                if step == "migrate_policy" or self._has_sla.get(new.policy_version)
                else None  # what ``_deadlines`` says for a policy without SLA targets
            )
            self.store.append(
                new, events, case.version, deadlines, idempotency_key, ctx.read_cases,
                idempotency_fingerprint=printed,
            )  # fmt: skip
        except ConcurrencyConflict as conflict:
            earlier = self._earlier_result(command) if command is not None else None
            if earlier is None:
                conflict.step = step
                raise
            return earlier
        self._log.info("step accepted", case_id=case_id, step=step, state=state, seq=event.seq)
        return new

    # -- SLA -------------------------------------------------------------------------

    def _deadlines(self, case: Case, *, changed_policy: bool = False) -> list[Deadline] | None:
        """The case's deadlines for the store; None (leave them as they are) when its
        policy has no SLA targets and did not just change."""
        policy = self._policies.get(case.policy_version)
        if policy is None or not self._has_sla[policy.stamp]:
            return [] if changed_policy else None
        return sla.deadlines(case, policy, breached_before=self._breached_before(case, policy))

    def _breached_before(self, case: Case, policy: Policy) -> frozenset[tuple[str, str]]:
        """The (step, group) keys that breached this cycle under targets ``policy`` does
        not have (before ``migrate_policy``), from their ``sla_breached`` events: the
        target's key in the policy the event was recorded under, or, if this engine was
        not given that policy, the event's step (in its default group). The history is
        read only for such a case."""
        if not case.sla_fired:
            return _NO_KEYS
        unknown = sla.unknown_breaches(case, policy)
        if not unknown:
            return _NO_KEYS
        keys: set[tuple[str, str]] = set()
        for event in self.store.events(case.id):
            if event.type == "sla_breached" and event.data.get("key") in unknown:
                then = self._policies.get(event.policy_version)
                key = then.sla_target_keys.get(event.data["target"]) if then else None
                keys.add(key or (event.data["step"], event.data["step"]))
        return frozenset(keys)

    def _late(
        self, case: Case, policy: Policy, step: str, now: datetime, *, ends: bool = False
    ) -> list[_Item]:
        """SLA events for this step's own deadlines that have passed unrecorded; when the
        step ends the case (close, withdraw), for every deadline that has passed, since
        the sweeper will not see them afterwards (recorded, without breach actions)."""
        before = self._breached_before(case, policy)
        return [
            _sla_item(d, None, late=True)
            for d in sla.deadlines(case, policy, now=now, breached_before=before)
            if (ends or d.step == step) and d.due_at <= now
        ]

    def _chain(
        self, case: Case, items: list[_Item], now: datetime, stamp: str
    ) -> tuple[Case, list[Event]]:
        """Apply system steps to ``case``, one event each, chained."""
        work: Case = case
        events: list[Event] = []
        for step, data in items:
            if step == "escalate":
                if work.state not in ESCALATABLE:
                    continue
                data = {**data, "resume_to": work.state}
            state, _ = fire(step, work, data)
            event = make_event(
                work.id, work.version + 1, step, now, SLA_ACTOR, data, stamp, work.head_hash,
                keep_text=True,
            )  # fmt: skip
            work = apply(work, event, state)
            events.append(event)
        return work, events

    def tick(self, now: datetime | None = None, *, limit: int = 1000) -> Fired:
        """Fire the SLA warnings and breaches that are due: finds them by the store's
        index on due time, re-checks each case at its current version, and appends the
        events (plus an escalation when the policy says so). Safe to run from several
        workers at once: a case another worker changed first is skipped (its deadlines
        are fired once, by whoever wins). Returns the events fired. ``limit``, the most
        deadlines a sweep handles, is a whole number of 1 or more (``InvalidQuery``
        otherwise, before anything is read)."""
        check_limit(limit, "tick", most=None)
        when = to_utc(now, "tick(now)", field="now") if now is not None else self.now()
        fired: list[Event] = []
        skipped: list[SkippedCase] = []
        # Each case once; its lines name the system step its due deadlines fire (a
        # breach, if one is due).
        due: dict[str, str] = {}
        for deadline in self.store.due_deadlines(when, limit):
            if due.get(deadline.case_id) != "sla_breached":
                due[deadline.case_id] = (
                    "sla_breached" if deadline.kind == "breach" else "sla_warning"
                )
        for case_id, step in due.items():
            try:
                events = self._sweep(case_id, when, step)
            except ConcurrencyConflict:
                self._log.info(
                    "sla sweep: case changed under this worker", case_id=case_id, step=step
                )
                skipped.append(SkippedCase(case_id, "changed", _SWEEP_CHANGED))
                continue
            except ComplaintflowError as error:  # one bad case must not stop the sweep
                self._log.warning(
                    "sla sweep: case skipped", case_id=case_id, step=step, error=str(error)
                )
                unreadable = isinstance(error, SnapshotUnreadable)
                skipped.append(
                    SkippedCase(case_id, "unreadable" if unreadable else "refused", str(error))
                )
                continue
            except _PolicyNotGiven as missing:
                skipped.append(
                    SkippedCase(
                        case_id,
                        "policy not given",
                        f"its policy {missing.version} was not given, "
                        "and no other policy's targets judge it: give that policy file too "
                        "(--policy) and sweep again once this sweep's claim lapses (five "
                        "minutes)",
                    )
                )
                continue
            fired.extend(events)
        return Fired(fired, skipped)

    def _sweep(self, case_id: str, now: datetime, step: str) -> list[Event]:
        """The events fired for ``case_id`` (``_PolicyNotGiven`` if the engine was not
        given its policy)."""
        case = self.store.load(case_id)
        now = max(now, case.updated_at)  # never before the case's last event
        policy = self._policies.get(case.policy_version)
        if policy is None:
            self._log.warning(
                "sla sweep: the case's policy is not loaded",
                case_id=case_id,
                step=step,
                policy=case.policy_version,
            )
            raise _PolicyNotGiven(case.policy_version)
        before = self._breached_before(case, policy)
        due = [d for d in sla.deadlines(case, policy, breached_before=before) if d.due_at <= now]
        if not due:
            return []
        targets = {t.id: t for t in sla.targets_for(case, policy)}
        items: list[_Item] = []
        priority = case.priority.value  # as the breaches before this one in the sweep left it
        for deadline in due:
            target = targets[deadline.target]
            items.append(_sla_item(deadline, target, late=False, priority=priority))
            priority = items[-1][1].get("priority", priority)
            if deadline.kind == "breach" and target.on_breach == "escalate":
                reason = f"SLA breached: {target.id} ({target.step})"
                items.append(("escalate", {"reason": reason, "to_role": target.escalate_to}))
        new, events = self._chain(case, items, now, policy.stamp)
        self.store.append(new, events, case.version, self._deadlines(new))
        for event in events:
            forget_text(event)  # handed out by ``tick``: the caller's from here
            self._log.info("sla event", case_id=case_id, step=event.type, seq=event.seq)
        return events

    def policy_of(self, case: Case) -> Policy:
        """The policy the case runs under (the engine's current one if it was not given
        the case's)."""
        return self._policies.get(case.policy_version, self.policy)

    def sla_status(self, case_id: str, now: datetime | None = None) -> list[sla.TargetStatus]:
        """Each SLA target of the case: elapsed and remaining (calendar and business
        time), paused, warned, breached, achieved. A ``now`` before the case's last
        event reads the case as it stood then (``state_at``)."""
        when = to_utc(now, "sla_status(now)", field="now") if now is not None else self.now()
        case = self.store.load(case_id)
        if when < case.updated_at:
            case = audit.state_at(self.store.events(case_id), when, vault_of(case.personal))
        policy = self._policies.get(case.policy_version, self.policy)
        return sla.status(case, policy, when)

    def _earlier_result(self, command: _Command) -> Case | None:
        """The case as the command with ``command.key`` left it, if it ran: the same
        command, its step on its case (None: ``open_case`` making its own id), by the
        same actor with the same inputs (when the key was recorded with a fingerprint).
        A key spent on another command raises ``IdempotencyKeyReused`` (docs/decisions/
        0022-concurrency-idempotency-keys.md, 0032-idempotency-fingerprints.md)."""
        key, case_id, step = command.key, command.case_id, command.step
        found = self.store.find_idempotent(key)
        if found is None:
            return None
        earlier_id, version, stored = found
        current = self.store.load(earlier_id)
        # The command's own event is the last one it appended, seq ``version`` (SLA
        # events it recorded on the way come before it).
        latest = current.version == version
        events = self.store.events(earlier_id, version - 1 if latest else 0)[
            : 1 if latest else version
        ]
        earlier = events[-1]
        reused = partial(
            IdempotencyKeyReused,
            key,
            case_id=case_id,
            step=step,
            earlier_case_id=earlier_id,
            earlier_step=earlier.type,
        )
        if case_id is not None and case_id != earlier_id:
            raise self._refused(reused(differs="case"))
        if earlier.type != step:
            raise self._refused(reused(differs="step"))
        if comparable(stored):
            opened_under = self._policies.get(earlier.policy_version)
            if (
                command.priority_left_out
                and opened_under is not None
                and opened_under is not self.policy
            ):
                # The priority it opened with came from the policy it opened under: a
                # retry made after a new policy changed the playbook is the same call.
                left_out = self._playbook_priority(command.inputs["complainant_type"], opened_under)
                command = dataclasses.replace(
                    command, inputs={**command.inputs, "priority": left_out}, printed=None
                )
            try:
                printed = command.fingerprint()
            except Uncanonical as exc:
                if step == OPEN_EVENT:
                    bad = _bad_inputs(exc, earlier_id, "(new)", step, (OPEN_EVENT,))
                else:
                    bad = _bad_inputs(exc, earlier_id, current.state, step, self._allowed(current))
                raise self._refused(bad) from None
            if printed != stored:
                if earlier.actor != command.actor:
                    raise self._refused(
                        reused(differs="actor", actor=command.actor, earlier_actor=earlier.actor)
                    )
                raise self._refused(reused(differs="inputs"))
        return current if latest else replay(events, vault_of(current.personal))

    def _policy_for(self, case: Case, step: str) -> Policy:
        """The policy the case runs under (the one it was opened or migrated under)."""
        policy = self._policies.get(case.policy_version)
        if policy is None:
            if step == "migrate_policy":
                return self.policy
            # A closed or withdrawn case cannot be migrated: only the policy helps.
            migrates = is_allowed(case.state, "migrate_policy")
            raise StepNotAllowed(
                case_id=case.id,
                state=case.state,
                step=step,
                allowed=self._allowed(case),
                reason=(
                    f"the case runs under policy {case.policy_version}, which this engine "
                    "was not given: pass it in previous_policies"
                    + (", or migrate_policy the case" if migrates else "")
                ),
            )
        return policy

    def _paid(self, case: Case, policy: Policy, now: datetime) -> tuple[Decimal, dict[str, int]]:
        """What the case's customer was paid (accepted money remedies, across all their
        cases) within the policy's cap period before ``now``, and the versions of the
        cases read. A payment in another currency cannot be added up: refused."""
        cap = policy.caps.per_customer
        if cap is None:
            return Decimal(0), {}
        since = now - cap.period
        total = Money.of(0, policy.currency)
        versions: dict[str, int] = {}
        for other in self.store.customer_cases(case.customer.id):
            versions[other.id] = other.version
            for at, remedy in other.paid_since(since):
                if remedy.amount is None:
                    continue
                if remedy.amount.currency != total.currency:
                    days = cap.period.days
                    raise CurrencyMismatch(
                        total.currency,
                        remedy.amount.currency,
                        why=f"the cap adds up what this customer was paid in the last {days} "
                        f"days, and case {other.id} paid them {remedy.amount} at "
                        f"{format_at(at)}; no offer to them can be judged against the cap "
                        f"in {total.currency} until that payment is {days} days old. Nothing "
                        "was written.",
                    )
                total = total + remedy.amount
        return total.amount, versions

    def guidance(self, case_id: str) -> Guidance:
        """The playbook's guidance for the case's complainant type and the steps it can
        take now."""
        case = self.store.load(case_id)
        policy = self._policies.get(case.policy_version, self.policy)
        playbook = policy.playbook(case.complainant_type.value)
        allowed = self._allowed(case)  # what this engine takes, as its refusals list
        steps = {
            step: text
            for step, text in (playbook.guidance.items() if playbook else ())
            if step in allowed
        }
        return Guidance(
            case_id=case.id,
            complainant_type=case.complainant_type.value,
            state=case.state,
            priority=case.priority.value,
            steps=steps,
        )

    def _refused(
        self,
        refusal: E,
        *,
        case_id: str | None = None,
        step: str | None = None,
        state: str | None = None,
    ) -> E:
        """Log ``refusal`` (``step refused``, at info: the caller is told, nothing went
        wrong here) and return it to be raised. Where it is about: the refusal's own
        ``case_id``, ``step`` and ``state``, unless given."""
        keys = {
            "case_id": case_id or getattr(refusal, "case_id", None),
            "step": step or getattr(refusal, "step", None),
            "state": state or getattr(refusal, "state", None),
        }
        self._log.info(
            "step refused",
            **{key: value for key, value in keys.items() if value is not None},
            error=type(refusal).__name__,
            reason=refusal.log_reason,
        )
        return refusal

    def retrying(
        self,
        action: Callable[[], T],
        *,
        attempts: int = 3,
        backoff: timedelta = timedelta(0),
        max_backoff: timedelta = timedelta(seconds=1),
        sleep: Callable[[float], object] = time.sleep,
    ) -> T:
        """Run ``action`` (which loads the case afresh each time, as every ``Engine`` step
        does), retrying it when another writer changed the case first: at most
        ``attempts`` runs in all, then the last ``ConcurrencyConflict`` is raised.
        ``CaseAlreadyExists`` is raised at once, not retried.

        With ``backoff``, each retry waits first: a random time between 0 and
        ``backoff * 2**(n-1)`` before the (n+1)th run (exponential backoff with full
        jitter, so writers that met one conflict do not meet again in step), the bound
        doubling up to ``max_backoff`` (1 second unless given; never less than
        ``backoff``). ``sleep`` does the waiting (``time.sleep``; give your own to wait
        another way).

        >>> engine.retrying(lambda: engine.add_note(case_id, actor="agent:a", text="…"))
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not isinstance(backoff, timedelta) or backoff < timedelta(0):
            raise ValueError(f"backoff must be a timedelta of 0 or more, got {backoff!r}")
        if not isinstance(max_backoff, timedelta):
            raise ValueError(f"max_backoff must be a timedelta, got {max_backoff!r}")
        if max_backoff < backoff:
            raise ValueError(f"max_backoff ({max_backoff}) is less than backoff ({backoff})")
        # The bound doubles until it reaches the cap (no power of two as large as the
        # attempts, which overflows a float past the 1025th).
        bound, cap = backoff.total_seconds(), max_backoff.total_seconds()
        for attempt in range(1, attempts + 1):
            try:
                return action()
            except CaseAlreadyExists:
                raise  # a reload cannot make the id free
            except ConcurrencyConflict as conflict:
                if attempt == attempts:
                    raise
                pause = random.uniform(0, bound) if bound else 0.0
                self._log.info(
                    "retrying after a concurrent change",
                    case_id=conflict.case_id,
                    **({"step": conflict.step} if conflict.step is not None else {}),
                    attempt=attempt,
                    **({"pause_seconds": pause} if bound else {}),
                )
                if bound:
                    sleep(pause)
                    bound = min(cap, bound * 2)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- personal data and retention -------------------------------------------------

    def erase_customer(self, customer_id: str, *, actor: Actor | str, reason: str) -> list[Case]:
        """Erase a customer's personal data (name, contact, account) from every one of
        their cases, open or closed: each case gets an ``erase_personal_data`` event
        (who, when, why; no personal data) and a snapshot that no longer holds the
        values, then the store scrubs what was overwritten. Every chain still verifies:
        events only ever held salted references to the values (``workflow.personal``).
        Free text (notes, details) is part of the chained record and is not touched.
        Returns the cases erased; a customer already erased gives an empty list.

        Refused with ``ErasureRefused``, erasing nothing, when a case of the customer
        was written before personal values were held apart (its events hold them as
        plain text: erasing them would mean rewriting the chain). If erasing one case
        fails, the cases erased before it stay erased (and scrubbed); run it again."""
        who = _actor_text(_actor(actor, "erase_customer", None))
        why = reason.strip() if isinstance(reason, str) else ""
        if not why or len(why) > 10_000:
            raise InvalidErasure("an erasure needs a reason (1 to 10,000 characters)")
        for _, problem in _surrogates(why, "reason"):
            raise InvalidErasure(f"the erasure's reason {problem}")
        if not isinstance(customer_id, str) or not customer_id:
            raise InvalidErasure("customer_id must be a non-empty string")
        if not customer_id.strip():  # no customer's id: open_case refuses one (0056)
            raise InvalidErasure(
                f"customer_id is blank ({customer_id!r}, only whitespace): give the customer's id"
            )
        try:
            cases = self.store.customer_cases(customer_id)
        except SnapshotUnreadable as error:
            self._log.warning(
                "erasure refused",
                case_id=error.case_id,
                step=ERASE_EVENT,
                reason="its stored snapshot is unreadable",
            )
            case_shown = shown_id(error.case_id)
            raise ErasureRefused(
                f"customer {shown_id(customer_id)}: case {case_shown}'s stored snapshot is "
                f"unreadable ({snapshot_problems_text(error.problems)}), so the personal "
                "values it may hold cannot be erased: repair it (run `complaintflow audit "
                f"verify --case {case_shown}`) and erase again. Nothing was erased."
            ) from error
        plain = [
            case.id
            for case in cases
            if any(holds_plain_values(e.type, e.data) for e in self.store.events(case.id))
        ]
        if plain:
            for case_id in plain:  # a request the library cannot carry out: a warning
                self._log.warning(
                    "erasure refused",
                    case_id=case_id,
                    step=ERASE_EVENT,
                    reason="its events hold personal values as plain text",
                )
            raise ErasureRefused(
                f"customer {shown_id(customer_id)}: cases {', '.join(map(shown_id, plain))} "
                "were written before "
                "personal values were held apart; their events hold the values, which "
                "cannot be erased without rewriting the chain. Nothing was erased."
            )
        erased: list[Case] = []
        try:
            for case in cases:
                done = self.retrying(lambda cid=case.id: self._erase(cid, who, why))  # type: ignore[misc]
                if done is not None:
                    erased.append(done)
        finally:
            if erased:
                self.store.scrub()
        return erased

    def _erase(self, case_id: str, who: str, reason: str) -> Case | None:
        case = self.store.load(case_id)
        customer = case.customer
        if (
            not case.personal
            and customer.name == ERASED
            and customer.contact in (None, ERASED)
            and customer.account in (None, ERASED)
        ):
            return None
        now = max(self.now(), case.updated_at)
        data = {"reason": reason, "values_erased": len(case.personal)}
        state, _ = fire(ERASE_EVENT, case, data)
        event = make_event(
            case_id, case.version + 1, ERASE_EVENT, now, who, data, case.policy_version,
            case.head_hash, keep_text=True,
        )  # fmt: skip
        new = apply(case, event, state)
        try:
            self.store.append(new, (event,), case.version)
        except ConcurrencyConflict as conflict:
            conflict.step = ERASE_EVENT
            raise
        self._log.info("personal data erased", case_id=case_id, step=ERASE_EVENT, seq=event.seq)
        return new

    def purgeable(self, now: datetime | None = None) -> list[Case]:
        """Closed or withdrawn cases whose retention period (``retention.years`` of the
        policy each case runs under) has ended by ``now``: they may be purged. A case
        whose policy this engine was not given is never judged by another policy's
        period: it is left out and logged (pass every policy the cases ran under)."""
        when = to_utc(now, "purgeable(now)", field="now") if now is not None else self.now()
        return self._purgeable(when, [])

    def _purgeable(self, when: datetime, kept: list[KeptCase]) -> list[Case]:
        """``purgeable``, adding each case it cannot judge to ``kept``."""
        found = []
        for case_id in self.store.case_ids():
            try:
                case = self.store.load(case_id)
            except SnapshotUnreadable as error:  # its retention cannot be judged
                self._log.warning(
                    "retention: the case's stored snapshot is unreadable; not purged",
                    case_id=case_id,
                    error=str(error),
                )
                problems = snapshot_problems_text(error.problems)
                kept.append(
                    KeptCase(
                        case_id,
                        "unreadable",
                        f"its stored snapshot is unreadable ({problems}), so its retention "
                        "cannot be judged: repair it (run `complaintflow audit verify --store "
                        f"URL --case {shlex.quote(case_id)}`)",
                    )
                )
                continue
            closed = case.closed_at if case.state in FINAL_STATES else None
            if closed is None:
                continue
            policy = self._policies.get(case.policy_version)
            if policy is None:
                self._log.warning(
                    "retention: the case's policy is not loaded; not purged",
                    case_id=case_id,
                    policy=case.policy_version,
                )
                kept.append(
                    KeptCase(
                        case_id,
                        "policy not given",
                        f"its policy {case.policy_version} was not given, and no other "
                        "policy's retention period judges it: give that policy file too "
                        "(--policy)",
                    )
                )
                continue
            if retention_ends(closed, policy) <= when:
                found.append(case)
        return found

    def purge_expired(
        self, *, actor: Actor | str, now: datetime | None = None, dry_run: bool = False
    ) -> Purged:
        """Delete every case whose retention period has ended (see ``purgeable``): its
        snapshot, events, deadlines and idempotency keys go, and a ``Tombstone`` (id,
        last seq and head hash, dates; no content) stays, so a saved store digest still
        verifies. ``dry_run`` lists the tombstones without deleting anything. A case
        reopened or changed meanwhile is left alone (its version no longer matches).
        ``now`` (the time to judge by, and the purge's time in the tombstones) may not
        be later than the engine's clock, unless ``dry_run``: a purge judged at a time
        to come would delete cases whose retention period has not ended (``InvalidTime``
        at ``now``, nothing deleted; decision 0060). The answer is a list of the
        tombstones, with (``kept``, ``KeptCase``) the cases kept and why: changed
        meanwhile, an unreadable snapshot, a policy not given (decision 0065)."""
        who = _actor_text(_actor(actor, "purge_expired", None))
        when = to_utc(now, "purge_expired(now)", field="now") if now is not None else self.now()
        if now is not None and not dry_run:
            clock = self.now()
            if when > clock:
                raise InvalidTime(
                    "now",
                    f"{when.isoformat()} is later than the engine's clock ({clock.isoformat()}): "
                    "a purge judged at a time to come would delete cases whose retention "
                    "period has not ended; give a time no later than now, or dry_run=True to "
                    "list what that time would purge",
                    value=now,
                    where="purge_expired(now)",
                )
        done: list[Tombstone] = []
        kept: list[KeptCase] = []
        for case in self._purgeable(when, kept):
            assert case.closed_at is not None
            years = self._policies[case.policy_version].retention.years
            tombstone = Tombstone(
                case_id=case.id,
                version=case.version,
                head_hash=case.head_hash,
                opened_at=case.opened_at,
                closed_at=case.closed_at,
                purged_at=when,
                purged_by=who,
                reason=f"retention period of {years} years after closing ended",
                retention_years=years,
            )
            if not dry_run:
                try:
                    self.store.purge(tombstone)
                except ConcurrencyConflict:
                    self._log.info("purge: case changed meanwhile, kept", case_id=case.id)
                    kept.append(
                        KeptCase(
                            case.id,
                            "changed",
                            "it changed while the purge ran (a step, a reopening, or the "
                            "database rolled the purge back); the next purge judges it again",
                        )
                    )
                    continue
                self._log.info("case purged", case_id=case.id, seq=case.version)
            done.append(tombstone)
        if done and not dry_run:
            self.store.scrub()
        return Purged(done, kept)

    # -- the checklist, one method per step -----------------------------------------

    def acknowledge(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        message: str | None = None,
    ) -> Case:
        """Acknowledge the complaint to the customer, at once."""
        return self.step(
            case_id, "acknowledge", actor=actor, idempotency_key=idempotency_key, message=message
        )

    def listen(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, note: str
    ) -> Case:
        """Record that the agent listened: ``note`` is the customer's account."""
        return self.step(case_id, "listen", actor=actor, idempotency_key=idempotency_key, note=note)

    def record(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        category: str | None = None,
        subject: str | None = None,
        contact: str | None = None,
        occurred_on: date | str | None = None,
        details: str | None = None,
    ) -> Case:
        """Record the complaint: category, subject, contact, date it happened, details
        (each may be known from opening the case already)."""
        return self.step(
            case_id,
            "record",
            actor=actor,
            idempotency_key=idempotency_key,
            category=category,
            subject=subject,
            contact=contact,
            occurred_on=occurred_on,
            details=details,
        )

    def apologise(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, message: str
    ) -> Case:
        """Apologise, thanking the customer for raising the complaint."""
        return self.step(
            case_id, "apologise", actor=actor, idempotency_key=idempotency_key, message=message
        )

    def offer_remedy(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        options: Sequence[Remedy | Mapping[str, Any]],
        note: str | None = None,
    ) -> Case:
        """Offer one or more remedies; the policy decides (it may need approval)."""
        return self.step(
            case_id,
            "offer_remedy",
            actor=actor,
            idempotency_key=idempotency_key,
            options=options,
            note=note,
        )

    def approve_offer(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        note: str | None = None,
    ) -> Case:
        """Approve the offer awaiting approval (not by the one who made it)."""
        return self.step(
            case_id, "approve_offer", actor=actor, idempotency_key=idempotency_key, note=note
        )

    def refuse_offer(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, reason: str
    ) -> Case:
        """Refuse the offer awaiting approval; the case goes back to offering."""
        return self.step(
            case_id, "refuse_offer", actor=actor, idempotency_key=idempotency_key, reason=reason
        )

    def accept_remedy(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        option: int,
        promise: str,
        due: datetime,
    ) -> Case:
        """The customer accepts ``option`` (1-based); the company promises ``promise``
        by ``due``."""
        return self.step(
            case_id,
            "accept_remedy",
            actor=actor,
            idempotency_key=idempotency_key,
            option=option,
            promise=promise,
            due=due,
        )

    def decline_remedy(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        reason: str | None = None,
    ) -> Case:
        """The customer declines the offer; the case goes back to offering."""
        return self.step(
            case_id, "decline_remedy", actor=actor, idempotency_key=idempotency_key, reason=reason
        )

    def keep_promise(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, evidence: str
    ) -> Case:
        """The promise is kept; ``evidence`` proves it."""
        return self.step(
            case_id, "keep_promise", actor=actor, idempotency_key=idempotency_key, evidence=evidence
        )

    def request_feedback(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        message: str | None = None,
    ) -> Case:
        return self.step(
            case_id,
            "request_feedback",
            actor=actor,
            idempotency_key=idempotency_key,
            message=message,
        )

    def close(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        resolution: str | None = None,
    ) -> Case:
        return self.step(
            case_id, "close", actor=actor, idempotency_key=idempotency_key, resolution=resolution
        )

    def escalate(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        reason: str,
        to_role: str,
    ) -> Case:
        return self.step(
            case_id,
            "escalate",
            actor=actor,
            idempotency_key=idempotency_key,
            reason=reason,
            to_role=to_role,
        )

    def resume(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        note: str | None = None,
    ) -> Case:
        """End an escalation: the case returns to the state it was escalated from."""
        return self.step(case_id, "resume", actor=actor, idempotency_key=idempotency_key, note=note)

    def reopen(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, reason: str
    ) -> Case:
        """Reopen a closed case within the policy's window: it starts again at
        ``received``."""
        return self.step(
            case_id, "reopen", actor=actor, idempotency_key=idempotency_key, reason=reason
        )

    def withdraw(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, reason: str
    ) -> Case:
        """The customer withdraws the complaint; the case ends."""
        return self.step(
            case_id, "withdraw", actor=actor, idempotency_key=idempotency_key, reason=reason
        )

    def add_note(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, text: str
    ) -> Case:
        return self.step(
            case_id, "add_note", actor=actor, idempotency_key=idempotency_key, text=text
        )

    def assign(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, to: str
    ) -> Case:
        """Assign the case to ``to``; a change of assignee counts as a transfer."""
        return self.step(case_id, "assign", actor=actor, idempotency_key=idempotency_key, to=to)

    def classify(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        complainant_type: ComplainantType | str,
    ) -> Case:
        return self.step(
            case_id,
            "classify",
            actor=actor,
            idempotency_key=idempotency_key,
            complainant_type=complainant_type,
        )

    def pause_sla(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, reason: str
    ) -> Case:
        """Pause the SLA clock while waiting on the customer."""
        return self.step(
            case_id, "pause_sla", actor=actor, idempotency_key=idempotency_key, reason=reason
        )

    def resume_sla(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        note: str | None = None,
    ) -> Case:
        return self.step(
            case_id, "resume_sla", actor=actor, idempotency_key=idempotency_key, note=note
        )

    def migrate_policy(
        self, case_id: str, *, actor: Actor | str, idempotency_key: str | None = None, reason: str
    ) -> Case:
        """Move the case to the engine's current policy (an event records from and to)."""
        return self.step(
            case_id, "migrate_policy", actor=actor, idempotency_key=idempotency_key, reason=reason
        )

    def record_feedback(
        self,
        case_id: str,
        *,
        actor: Actor | str,
        idempotency_key: str | None = None,
        score: int | None = None,
        comment: str | None = None,
    ) -> Case:
        """Record the customer's feedback: a score from 1 to 5 and/or a comment."""
        return self.step(
            case_id,
            "record_feedback",
            actor=actor,
            idempotency_key=idempotency_key,
            score=score,
            comment=comment,
        )
