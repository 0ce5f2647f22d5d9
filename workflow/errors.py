"""Every error complaintflow raises on purpose. One root: ``ComplaintflowError``.

Each error carries its context as attributes and a message a support agent can act on.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from datetime import datetime

from policies.decision import Decision
from policies.errors import (
    ComplaintflowError,
    CurrencyMismatch,
    MoneyError,
    PolicyFileError,
    Problem,
)

__all__ = [
    "AuditFailure",
    "CaseAlreadyExists",
    "CaseNotFound",
    "CasePurged",
    "ComplaintflowError",
    "ConcurrencyConflict",
    "CurrencyMismatch",
    "ErasureRefused",
    "IdempotencyKeyReused",
    "InvalidActor",
    "InvalidErasure",
    "InvalidIdempotencyKey",
    "InvalidQuery",
    "InvalidStepData",
    "InvalidTime",
    "MissingInformation",
    "MoneyError",
    "NotATime",
    "PolicyFileError",
    "PolicyViolation",
    "Problem",
    "SchemaVersionError",
    "SnapshotUnreadable",
    "StepNotAllowed",
    "StepRefused",
    "StoreError",
    "StoreMisconfigured",
    "StoreUnavailable",
]


class StepRefused(ComplaintflowError):
    """A step was refused; nothing was written. ``case_id``, ``state`` and ``step`` say
    where; ``allowed`` lists the steps the case accepts now."""

    def __init__(
        self, message: str, *, case_id: str, state: str, step: str, allowed: Sequence[str]
    ) -> None:
        self.case_id = case_id
        self.state = state
        self.step = step
        self.allowed = tuple(allowed)
        super().__init__(message)


class StepNotAllowed(StepRefused):
    """The step is out of order for the case's state (or a precondition on the state,
    such as "the SLA clock is already paused", does not hold)."""

    def __init__(
        self,
        *,
        case_id: str,
        state: str,
        step: str,
        allowed: Sequence[str],
        reason: str | None = None,
    ) -> None:
        self.reason = reason
        why = reason or f"'{step}' is not a step a case in state '{state}' can take"
        super().__init__(
            f"case {case_id} is '{state}': {why}. Allowed now: {', '.join(allowed) or 'none'}",
            case_id=case_id,
            state=state,
            step=step,
            allowed=allowed,
        )


class MissingInformation(StepRefused):
    """The step lacks data it needs. ``fields`` names each missing piece."""

    def __init__(
        self,
        *,
        case_id: str,
        state: str,
        step: str,
        allowed: Sequence[str],
        fields: Iterable[str],
        hint: str | None = None,
    ) -> None:
        self.fields = tuple(fields)
        self.hint = hint
        extra = f" ({hint})" if hint else ""
        super().__init__(
            f"'{step}' on case {case_id} (state '{state}') needs: "
            f"{', '.join(self.fields)}{extra}. Nothing was written.",
            case_id=case_id,
            state=state,
            step=step,
            allowed=allowed,
        )


#: The ``case_id`` of an ``open_case`` refused before the case existed, when the caller
#: gave no case id: the id the engine would have made is one nobody will see again.
NEW_CASE = "(new case)"


def _on_case(case_id: str, state: str) -> str:
    """``case c-1 (state 'received')``; ``a new case`` for ``NEW_CASE``."""
    return "a new case" if case_id == NEW_CASE else f"case {case_id} (state '{state}')"


class InvalidStepData(StepRefused):
    """Data given to a step is malformed. ``problems`` holds ``(field, what is wrong)``."""

    def __init__(
        self,
        *,
        case_id: str,
        state: str,
        step: str,
        allowed: Sequence[str],
        problems: Sequence[tuple[str, str]],
    ) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(f"{field}: {what}" for field, what in self.problems)
        super().__init__(
            f"'{step}' on {_on_case(case_id, state)} got bad data: {listed}. Nothing was written.",
            case_id=case_id,
            state=state,
            step=step,
            allowed=allowed,
        )

    @property
    def log_reason(self) -> str:
        """Where the data was bad, not what it was: a problem may quote the value given
        (a customer's name typed into ``channel``), or be about a key the caller made up,
        and log lines outlive an erasure. A field path that is not made of plain names
        and indexes is not repeated either."""
        fields = ", ".join(
            field if _FIELD_PATH.fullmatch(field) else "(an input not named here)"
            for field, _ in self.problems
        )
        return (
            f"'{self.step}' on {_on_case(self.case_id, self.state)} got bad data at: "
            f"{fields}. Nothing was written."
        )


#: A field path as the engine names one: lower-case names and indexes
#: (``options[1].amount.currency``).
_FIELD_PATH = re.compile(r"[a-z_][a-z0-9_]*(\[\d+\])*(\.[a-z_][a-z0-9_]*(\[\d+\])*)*")


class PolicyViolation(StepRefused):
    """The policy denied the step. ``decision`` says which rules and why."""

    def __init__(
        self,
        *,
        case_id: str,
        state: str,
        step: str,
        allowed: Sequence[str],
        decision: Decision,
    ) -> None:
        self.decision = decision
        super().__init__(
            f"'{step}' on case {case_id} refused by the policy: {decision.explain()}",
            case_id=case_id,
            state=state,
            step=step,
            allowed=allowed,
        )


class CaseNotFound(ComplaintflowError, LookupError):
    """No case with this id is in the store."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"no case {case_id!r} in the store")


class ConcurrencyConflict(ComplaintflowError):
    """Someone else changed the case since it was loaded; nothing was written. Reload and
    retry (``Engine.retrying`` does that for you). ``step``: the step whose write
    conflicted, when the engine knows it (None from a store)."""

    def __init__(
        self, case_id: str, expected: int, found: int | None, *, step: str | None = None
    ) -> None:
        self.case_id = case_id
        self.expected = expected
        self.found = found
        self.step = step
        super().__init__(
            f"case {case_id} changed under you: expected version {expected}, found {found}. "
            "Nothing was written; reload the case and try again."
        )


#: Which part of a command differs from the one an idempotency key was spent on.
_DIFFERS = {
    "case": "the case differs",
    "step": "the step differs",
    "inputs": "the inputs differ from the first command's",
}


class IdempotencyKeyReused(ComplaintflowError):
    """An idempotency key already spent on another command (another case, another step,
    another actor, or other inputs) was given again; nothing was written. ``key``,
    ``case_id`` and ``step`` say what was asked now (``case_id`` None: ``open_case``
    with an id still to make); ``earlier_case_id`` and ``earlier_step`` what the key was
    spent on; ``differs`` which part differs: ``case``, ``step``, ``actor`` (then
    ``actor`` and ``earlier_actor`` name them) or ``inputs``. Not retryable: give each
    command its own key (docs/decisions/0022 and 0032)."""

    def __init__(
        self,
        key: str,
        *,
        case_id: str | None,
        step: str,
        earlier_case_id: str,
        earlier_step: str,
        differs: str | None = None,
        actor: str | None = None,
        earlier_actor: str | None = None,
    ) -> None:
        self.key = key
        self.case_id = case_id
        self.step = step
        self.earlier_case_id = earlier_case_id
        self.earlier_step = earlier_step
        if differs is None:
            differs = "case" if case_id is not None and case_id != earlier_case_id else "step"
        self.differs = differs
        self.actor = actor
        self.earlier_actor = earlier_actor
        now = f"'{step}' on case {case_id}" if case_id is not None else f"'{step}'"
        what = (
            f"the actor differs ({earlier_actor} first, {actor} now)"
            if differs == "actor"
            else _DIFFERS[differs]
        )
        super().__init__(
            f"idempotency key {key!r} was already used for '{earlier_step}' on case "
            f"{earlier_case_id}, so it cannot name {now}: {what}. Nothing was written; give "
            "each command its own key."
        )


class InvalidIdempotencyKey(ComplaintflowError, ValueError):
    """An idempotency key that cannot be used: not text, empty or blank, longer than
    200 characters, or holding a control character or a lone surrogate. ``key`` is the
    key as given, ``problem`` what is wrong with it, ``case_id`` and ``step`` the
    command it came with (``case_id`` None: ``open_case`` without an id). Raised before
    anything is read or written. A ``ValueError`` too, as before it existed."""

    def __init__(
        self, key: object, problem: str, *, case_id: str | None = None, step: str | None = None
    ) -> None:
        self.key = key
        self.problem = problem
        self.case_id = case_id
        self.step = step
        if isinstance(key, str) and len(key) > _SHOWN_KEY:
            shown = f"{key[:_SHOWN_KEY]!r}... ({len(key)} characters)"
        elif isinstance(key, str):
            shown = repr(key)
        else:
            shown = f"{key!r}"[:_SHOWN_KEY]
        command = "" if step is None else f" given to '{step}'"
        if step is not None and case_id is not None:
            command += f" on case {case_id}"
        super().__init__(
            f"idempotency key {shown}{command} cannot be used: {problem}. Nothing was "
            "written; an idempotency key is text of 1 to 200 characters without control "
            "characters."
        )


#: How much of a long key an error shows.
_SHOWN_KEY = 40


#: What each part of an actor must be, said after what is wrong with it.
_ACTOR_RULES = {
    "role": "a role is a lower-case name, as the policy files name roles: 1 to 64 of "
    "a-z, 0-9, '-' and '_', starting with a letter or a digit",
    "id": "an id is 1 to 200 characters in Unicode normalisation form NFC, without "
    "control, format, surrogate or private-use characters and without whitespace at "
    "either end",
    "actor": "an actor is 'role:id' text, for example 'agent:alice' or 'customer:c-42', "
    "or an Actor",
}
#: The rules as a command line says them: it takes text only, never an ``Actor``.
_ACTOR_TEXT_RULES = {
    **_ACTOR_RULES,
    "actor": "an actor is 'role:id' text, for example 'agent:alice' or 'customer:c-42'",
}
#: How much of a long actor an error shows.
_SHOWN_ACTOR = 60


class InvalidActor(ComplaintflowError, ValueError):
    """An actor that cannot take a step: its role or its id breaks a rule, or it is not
    ``role:id`` text at all (docs/decisions/0036-actor-roles-and-ids.md). Raised by
    ``Actor(...)``, ``Actor.parse`` and every ``Engine`` method taking ``actor=``
    (before anything is read or written). ``part`` says where: ``role``, ``id``, or
    ``actor`` (the whole: not text, no ``:``); ``problem`` what is wrong;
    ``position`` the character's place in that part, counted from 1, and
    ``character`` its code point (``U+0007``), when one character is at fault;
    ``actor`` what was given; ``step`` and ``case_id`` the command it came with, when
    an ``Engine`` method raised it. The message shows the actor escaped (``repr``) and
    cut, and names a character by its code point: it never holds a control or format
    character raw. A ``ValueError`` too, as a malformed actor raised before."""

    def __init__(
        self,
        actor: object,
        part: str,
        problem: str,
        *,
        position: int | None = None,
        character: str | None = None,
        step: str | None = None,
        case_id: str | None = None,
    ) -> None:
        self.actor = actor
        self.part = part
        self.problem = problem
        self.position = position
        self.character = character
        self.step = step
        self.case_id = case_id
        if isinstance(actor, str) and len(actor) > _SHOWN_ACTOR:
            shown = f"{actor[:_SHOWN_ACTOR]!r}... ({len(actor)} characters)"
        else:
            shown = repr(actor)[: _SHOWN_ACTOR * 2]
        self._shown = shown
        command = "" if step is None else f" given to '{step}'"
        if step is not None and case_id is not None:
            command += f" on case {shown_id(case_id)}"
        written = "" if step is None else " Nothing was written."
        super().__init__(
            f"actor {shown}{command} is refused: {problem}; {_ACTOR_RULES[part]}.{written}"
        )

    def as_option_problem(self) -> str:
        """What is wrong, as a command line says it of the text given to its option
        (``--actor``): the actor escaped, the problem and the rule, without the Python
        method it was given to or ``Actor``."""
        return f"{self._shown} is refused: {self.problem}; {_ACTOR_TEXT_RULES[self.part]}"

    def given_to(self, step: str, case_id: str | None) -> InvalidActor:
        """This error for the command ``step`` (on case ``case_id``) it was given to."""
        return InvalidActor(
            self.actor, self.part, self.problem, position=self.position,
            character=self.character, step=step, case_id=case_id,
        )  # fmt: skip


class InvalidQuery(ComplaintflowError, ValueError):
    """A query for cases (``Engine.find_cases``, ``Engine.cases_at_risk``; the due
    deadlines ``Engine.tick`` sweeps, for its ``limit``) that cannot be run: ``filter``
    names the argument (``state``, ``opened_since``, ``cursor``, ``within``, ``limit``...),
    ``problem`` says what is wrong with it. Raised before the store is
    read. A ``ValueError`` too: it is bad input."""

    def __init__(self, filter: str, problem: str, *, query: str = "find_cases") -> None:
        self.filter = filter
        self.problem = problem
        self.query = query
        super().__init__(f"{query}: {filter}: {problem}")


class InvalidTime(ComplaintflowError, ValueError):
    """A time given to the library that it cannot use: naive (no time zone), outside
    what UTC can hold, or (``NotATime``) not a datetime at all. ``field`` names the
    argument (``now``, ``when``, ``since``, ``until``, ``start``), ``problem`` says what
    is wrong, ``value`` is what was given. The message starts with where it was given
    (``tick(now): naive datetime ...``). Raised before anything is read or written. A
    ``ValueError`` too, as before it existed.

    A step's input (``accept_remedy``'s ``due``) is refused as ``InvalidStepData``
    naming it, and a query's as ``InvalidQuery``. A clock whose ``now()`` is naive is a
    bug in the embedding program, not an input: a plain ``ValueError``."""

    def __init__(
        self, field: str, problem: str, *, value: object = None, where: str | None = None
    ) -> None:
        self.field = field
        self.problem = problem
        self.value = value
        super().__init__(f"{where or field}: {problem}")


class NotATime(InvalidTime, TypeError):
    """``InvalidTime`` for a value that is not a datetime at all (text, a number, a
    date). A ``TypeError`` too, as before it existed."""


class CaseAlreadyExists(ConcurrencyConflict):
    """``open_case`` with an explicit ``case_id`` that a case already has (opened
    earlier, or by another worker at the same moment); nothing was written. A
    ``ConcurrencyConflict`` (what the store reports), but ``Engine.retrying`` does not
    retry it: reloading cannot make the id free."""

    def __init__(self, case_id: str) -> None:
        super().__init__(case_id, 0, None, step="open")
        self.args = (
            f"case {case_id} already exists; nothing was written. Open the complaint under "
            "another id, or pass an idempotency key to make a retried open return the case.",
        )


def shown_id(text: str) -> str:
    """An id (a customer's, a case's) as a message shows it: as it is, or escaped
    (``repr``) when it holds a character a terminal would act on rather than show; ids
    stored before they were checked may (docs/decisions/0052, 0058)."""
    return text if text.isprintable() else repr(text)


class CasePurged(CaseAlreadyExists):
    """``open_case`` with the id of a case that was purged (its tombstone keeps the id:
    decision 0060); nothing was written. ``purged_at``: when, as the tombstone says. A
    ``CaseAlreadyExists``, so not retried either: a purged case's id is never free
    again (a store holding a case and a tombstone of one id cannot be digested, and
    the case could not be purged in turn)."""

    def __init__(self, case_id: str, purged_at: datetime) -> None:
        super().__init__(case_id)
        self.purged_at = purged_at
        self.args = (
            f"case {case_id} was purged at {purged_at.isoformat()} (its tombstone keeps the "
            "id); nothing was written. A purged case's id is not used again: open the "
            "complaint under another id.",
        )


class ErasureRefused(ComplaintflowError):
    """A customer's personal data cannot be erased as asked; the message says why, with
    the customer's and the cases' ids escaped (``shown_id``). Nothing was erased."""


class InvalidErasure(ErasureRefused, ValueError):
    """``erase_customer`` asked without what it needs: a customer id (non-empty text) and
    a reason (1 to 10,000 characters). Nothing was read or erased. A ``ValueError`` too,
    as it was before it had its own class."""


class StoreError(ComplaintflowError):
    """The storage backend failed. The driver's error is the ``__cause__``."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, or stayed locked too long. Safe to retry, but for
    a step whose connection was lost during its commit and whose message says it *may
    have been written*: retry that one with the same idempotency key, or reload the case
    first (docs/adapters.md)."""


class StoreMisconfigured(StoreError):
    """The database refused the connection for a reason no retry mends: a wrong
    password or none, a database or user (role) that does not exist, no pg_hba.conf
    line letting this user in from this host (or a ``reject`` line), a role without
    LOGIN or without CONNECT on the database. The store URL or the server's
    configuration must change; the message gives the server's reason and what to
    change. Not a ``StoreUnavailable``: a retry loop gives up at once."""


class SchemaVersionError(StoreError):
    """The database's tables are missing or at a schema revision this code does not
    know; the message names the command to run."""


class SnapshotUnreadable(StoreError, ValueError):
    """A case's stored snapshot does not read back as that case: not text, not JSON, a
    key a case does not have, a value of the wrong kind, another case's id (edited in
    the database, or a bad write by other software). ``case_id`` names the case and
    ``problems`` what is wrong, as ``(field path, kind of problem)`` pairs; neither the
    message nor the error holds a stored value (they may be the customer's personal
    data), so the reading error it replaces is not kept as its cause. Not retryable:
    ``complaintflow audit verify --case ID`` locates it; the snapshot must be repaired.
    A ``ValueError`` too, as the validation error raised before it existed
    (docs/decisions/0035)."""

    def __init__(self, case_id: str, problems: Sequence[tuple[str, str]]) -> None:
        self.case_id = case_id
        self.problems = tuple(problems)
        super().__init__(
            f"case {case_id}: the stored snapshot is unreadable: "
            f"{snapshot_problems_text(self.problems)} "
            f"(run `complaintflow audit verify --store URL --case {shlex.quote(case_id)}`)"
        )


#: How many of a snapshot's problems a message lists (the rest are counted).
_LISTED_PROBLEMS = 3


def snapshot_problems_text(problems: Sequence[tuple[str, str]]) -> str:
    """``path: problem; path: problem`` for the first few, then how many more."""
    listed = "; ".join(f"{where}: {what}" for where, what in problems[:_LISTED_PROBLEMS])
    more = len(problems) - _LISTED_PROBLEMS
    return listed + (f" (and {more} more)" if more > 0 else "")


class AuditFailure(ComplaintflowError):
    """A case history does not verify: ``case_id``, ``seq`` and ``reason`` locate it."""

    def __init__(self, case_id: str, seq: int | None, reason: str) -> None:
        self.case_id = case_id
        self.seq = seq
        self.reason = reason
        where = f" at event {seq}" if seq is not None else ""
        super().__init__(f"case {case_id}{where}: {reason}")
