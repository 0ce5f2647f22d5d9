"""Replay: a case is the fold of its events. The engine builds each new snapshot with
``apply``, the same function ``replay`` uses, so state == replay(events) by construction;
the tests check it anyway."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter

from policies.decision import Decision
from policies.remedy import Remedy
from workflow.checklist import NoRoute, is_allowed, route
from workflow.clock import to_utc
from workflow.domain import (
    Case,
    Channel,
    ComplainantType,
    Customer,
    Escalation,
    Feedback,
    Note,
    Offer,
    OfferStatus,
    Priority,
    Promise,
    evolve,
    evolve_with,
    freeze,
    thaw,
    update,
)
from workflow.errors import AuditFailure
from workflow.events import GENESIS, Event
from workflow.personal import ERASED, Personal, Vault, unseal_data

Changes = dict[str, Any]


# Records built from event data use ``evolve`` on a template instead of the validating
# constructor: every value is checked as it is read (types below, or by the model that
# parses it), and the event's content is protected by its hash.
_AT = datetime(2000, 1, 1, tzinfo=UTC)
_NOTE = Note(text="template", by="template", at=_AT)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise AuditFailure("?", None, f"expected text in the event data, got {value!r}")
    return value


def _note(case: Case, e: Event, text: str) -> tuple[Note, ...]:
    return (*case.notes, evolve(_NOTE, text=_text(text), by=e.actor, at=e.at))


def _offer(case: Case, **changes: Any) -> tuple[Offer, ...]:
    return (*case.offers[:-1], evolve(case.offers[-1], **changes))


def _nothing(case: Case, e: Event) -> Changes:
    return {}


def _listen(case: Case, e: Event) -> Changes:
    return {"notes": _note(case, e, e.data["note"])}


def _record(case: Case, e: Event) -> Changes:
    d = e.data
    changes: Changes = {k: d[k] for k in ("category", "subject", "details") if k in d}
    if "occurred_on" in d:
        changes["occurred_on"] = date.fromisoformat(d["occurred_on"])
    return changes


def _record_personal(case: Case, e: Event, vault: Vault) -> Changes:
    changes = _record(case, e)
    if "contact" in e.data:
        data, used = _unseal(e, vault)
        changes["customer"] = evolve(case.customer, contact=data["contact"])
        changes["personal"] = (*case.personal, *used)
    return changes


def _unseal(e: Event, vault: Vault) -> tuple[dict[str, Any], tuple[Personal, ...]]:
    try:
        return unseal_data(e.type, e.data, vault)
    except ValueError as exc:
        raise AuditFailure(e.case_id, e.seq, str(exc)) from None


def _erase_personal_data(case: Case, e: Event) -> Changes:
    customer = case.customer
    return {
        "customer": evolve(
            customer,
            name=ERASED,
            contact=None if customer.contact is None else ERASED,
            account=None if customer.account is None else ERASED,
        ),
        "personal": (),
    }


_OFFER = Offer(
    number=0,
    options=(),
    offered_by="template",
    offered_at=_AT,
    decision=Decision(outcome="allowed"),
    status=OfferStatus.OPEN,
)
_PROMISE = Promise(
    description="template", due_at=_AT, made_at=_AT, made_by="template", offer=0, option=0
)


def _offer_remedy(case: Case, e: Event) -> Changes:
    d = e.data
    decision = Decision.model_validate(d["decision"])
    status = (
        OfferStatus.AWAITING_APPROVAL
        if decision.outcome.value == "needs_approval"
        else OfferStatus.OPEN
    )
    offer = evolve(
        _OFFER,
        number=int(d["offer"]),
        options=tuple(Remedy.model_validate(o) for o in d["options"]),
        offered_by=e.actor,
        offered_at=e.at,
        decision=decision,
        status=status,
    )
    return {"offers": (*case.offers, offer)}


def _approve_offer(case: Case, e: Event) -> Changes:
    return {"offers": _offer(case, status=OfferStatus.OPEN, approved_by=e.actor)}


def _refuse_offer(case: Case, e: Event) -> Changes:
    return {"offers": _offer(case, status=OfferStatus.REFUSED)}


def _accept_remedy(case: Case, e: Event) -> Changes:
    d = e.data
    promise = evolve(
        _PROMISE,
        description=_text(d["promise"]),
        due_at=to_utc(datetime.fromisoformat(d["due"]), "event data 'due'"),
        made_at=e.at,
        made_by=e.actor,
        offer=int(d["offer"]),
        option=int(d["option"]),
    )
    return {
        "offers": _offer(case, status=OfferStatus.ACCEPTED, chosen=d["option"], accepted_at=e.at),
        "promise": promise,
    }


def _decline_remedy(case: Case, e: Event) -> Changes:
    return {"offers": _offer(case, status=OfferStatus.DECLINED), "declines": case.declines + 1}


def _keep_promise(case: Case, e: Event) -> Changes:
    assert case.promise is not None
    kept = evolve(case.promise, kept_at=e.at, kept_by=e.actor, evidence=e.data["evidence"])
    return {"promise": kept}


def _request_feedback(case: Case, e: Event) -> Changes:
    return {"feedback_requested_at": e.at}


def _close(case: Case, e: Event) -> Changes:
    return {"closed_at": e.at, "resolution": e.data.get("resolution"), **_unpaused(case, e)}


def _escalate(case: Case, e: Event) -> Changes:
    d = e.data
    escalation = Escalation(
        reason=d["reason"], to_role=d["to_role"], by=e.actor, at=e.at, resume_to=d["resume_to"]
    )
    return {
        "escalation": escalation,
        "escalations": case.escalations + 1,
        "last_escalated_at": e.at,
    }


def _resume(case: Case, e: Event) -> Changes:
    return {"escalation": None}


def _reopen(case: Case, e: Event) -> Changes:
    return {
        "reopened": case.reopened + 1,
        "cycle_started_at": e.at,
        "paused_since": None,
        "sla_paused": False,
        "pauses": (),
        "step_times": (),
        "sla_fired": (),
        "first_breach_at": None,
        "closed_at": None,
        "resolution": None,
        "promise": None,
        "feedback_requested_at": None,
        "notes": _note(case, e, f"reopened: {e.data['reason']}"),
    }


def _withdraw(case: Case, e: Event) -> Changes:
    return {
        "closed_at": e.at,
        "resolution": f"withdrawn: {e.data['reason']}",
        **_unpaused(case, e),
    }


def _add_note(case: Case, e: Event) -> Changes:
    return {"notes": _note(case, e, e.data["text"])}


def _assign(case: Case, e: Event) -> Changes:
    transfers = case.transfers + (1 if case.assignee is not None else 0)
    return {"assignee": e.data["to"], "transfers": transfers}


def _classify(case: Case, e: Event) -> Changes:
    changes: Changes = {"complainant_type": ComplainantType(e.data["complainant_type"])}
    if "priority" in e.data:
        changes["priority"] = Priority(e.data["priority"])
    return changes


def _migrate_policy(case: Case, e: Event) -> Changes:
    return {"policy_version": e.data["to"]}


def _pause_sla(case: Case, e: Event) -> Changes:
    return {"sla_paused": True, "paused_since": e.at}


def _resume_sla(case: Case, e: Event) -> Changes:
    return _unpaused(case, e)


def _unpaused(case: Case, e: Event) -> Changes:
    if case.paused_since is None:
        return {"sla_paused": False}
    return {
        "sla_paused": False,
        "paused_since": None,
        "pauses": (*case.pauses, (case.paused_since, e.at)),
    }


def _sla_warning(case: Case, e: Event) -> Changes:
    return {"sla_fired": (*case.sla_fired, e.data["key"])}


def _sla_breached(case: Case, e: Event) -> Changes:
    changes: Changes = {"sla_fired": (*case.sla_fired, e.data["key"])}
    if case.first_breach_at is None:
        changes["first_breach_at"] = e.at
    if "priority" in e.data:
        changes["priority"] = Priority(e.data["priority"])
    return changes


def _record_feedback(case: Case, e: Event) -> Changes:
    d = e.data
    fb = Feedback(at=e.at, by=e.actor, score=d.get("score"), comment=d.get("comment"))
    return {"feedback": (*case.feedback, fb)}


#: Each step's changes to the case; the steps that carry personal values (``record``)
#: are in ``APPLY_PERSONAL`` instead, applied with the vault.
APPLY: dict[str, Callable[[Case, Event], Changes]] = {
    "acknowledge": _nothing,
    "listen": _listen,
    "apologise": _nothing,
    "offer_remedy": _offer_remedy,
    "approve_offer": _approve_offer,
    "refuse_offer": _refuse_offer,
    "accept_remedy": _accept_remedy,
    "decline_remedy": _decline_remedy,
    "keep_promise": _keep_promise,
    "request_feedback": _request_feedback,
    "close": _close,
    "escalate": _escalate,
    "resume": _resume,
    "reopen": _reopen,
    "withdraw": _withdraw,
    "add_note": _add_note,
    "assign": _assign,
    "classify": _classify,
    "pause_sla": _pause_sla,
    "resume_sla": _resume_sla,
    "record_feedback": _record_feedback,
    "erase_personal_data": _erase_personal_data,
    "migrate_policy": _migrate_policy,
    "sla_warning": _sla_warning,
    "sla_breached": _sla_breached,
}


#: The checklist steps whose times SLA targets measure.
TIMED = frozenset(
    ("acknowledge", "listen", "record", "apologise", "offer_remedy", "accept_remedy",
     "keep_promise", "request_feedback", "close")
)  # fmt: skip


#: Steps whose data holds references to personal values: applied with the vault.
APPLY_PERSONAL: dict[str, Callable[[Case, Event, Vault], Changes]] = {
    "record": _record_personal,
}
_NO_VAULT: Vault = {}


def changes_of(case: Case, event: Event, state: str, vault: Vault = _NO_VAULT) -> Changes:
    """The fields ``event`` (leading to ``state``) changes in ``case``. ``vault`` holds
    the personal values the event refers to (``workflow.personal``); a reference it
    lacks reads as erased."""
    personal = APPLY_PERSONAL.get(event.type)
    changes = personal(case, event, vault) if personal else APPLY[event.type](case, event)
    if event.type in TIMED:
        changes["step_times"] = (*case.step_times, (event.type, event.at))
    if state != case.state and state != "escalated" and event.type != "resume":
        changes["state_since"] = event.at
    changes["state"] = state
    changes["version"] = event.seq
    changes["head_hash"] = event.hash
    changes["updated_at"] = event.at
    return changes


def apply(case: Case, event: Event, state: str, vault: Vault = _NO_VAULT) -> Case:
    """``case`` after ``event``, which leads to ``state`` (a new record; ``case`` is
    not changed)."""
    return evolve_with(case, changes_of(case, event, state, vault))


OPEN_EVENT = "open"


_CUSTOMER: TypeAdapter[Customer] = TypeAdapter(Customer)
#: Every field of a new case that ``open`` does not set keeps this template's default.
_TEMPLATE = Case(
    id="template",
    customer=Customer(id="template", name="template"),
    channel=Channel.EMAIL,
    state="received",
    opened_at=datetime(2000, 1, 1, tzinfo=UTC),
    updated_at=datetime(2000, 1, 1, tzinfo=UTC),
    version=0,
    head_hash=GENESIS,
    policy_version="",
)


E = TypeVar("E", Channel, Priority, ComplainantType)
#: Each enum's members by their text (what ``kind(text)`` returns for known text).
_MEMBERS: dict[type, dict[str, Any]] = {
    kind: {member.value: member for member in kind} for kind in (Channel, Priority, ComplainantType)
}


def _member(kind: type[E], text: Any) -> E:
    """``kind(text)``, with the same errors; known text is looked up."""
    if type(text) is str:
        member: E | None = _MEMBERS[kind].get(text)
        if member is not None:
            return member
    return kind(text)


def opened_case(
    event: Event,
    vault: Vault = _NO_VAULT,
    customer: Customer | None = None,
    unsealed: tuple[dict[str, Any], tuple[Personal, ...]] | None = None,
) -> Case:
    """The case an ``open`` event creates, its personal values read from ``vault``. Each
    field is checked as it is read; ``customer`` may be passed when the caller has
    validated it already, and ``unsealed`` when it has just sealed the event's data:
    the data as it was and the entries sealing made (what unsealing would give back)."""
    d, personal = unsealed if unsealed is not None else _unseal(event, vault)
    return evolve(
        _TEMPLATE,
        id=event.case_id,
        customer=customer if customer is not None else _CUSTOMER.validate_python(d["customer"]),
        personal=personal,
        channel=_member(Channel, d["channel"]),
        opened_at=event.at,
        updated_at=event.at,
        cycle_started_at=event.at,
        state_since=event.at,
        version=event.seq,
        head_hash=event.hash,
        policy_version=event.policy_version,
        subject=d.get("subject"),
        details=d.get("details"),
        category=d.get("category"),
        occurred_on=date.fromisoformat(d["occurred_on"]) if "occurred_on" in d else None,
        priority=_member(Priority, d.get("priority", "normal")),
        complainant_type=_member(ComplainantType, d.get("complainant_type", "unknown")),
    )


def replay(events: Iterable[Event], vault: Vault = _NO_VAULT) -> Case:
    """The case its events describe, with the personal values ``vault`` holds (usually
    the stored snapshot's: ``vault_of(case.personal)``; without them, they read as
    erased). Raises ``AuditFailure`` naming the first event that does not follow (wrong
    case, seq gap, broken chain, a step the state does not allow).

    Each event's changes are computed by the same functions the engine applies
    (``changes_of``); they are written into one working copy of the case, which becomes
    the result, instead of a new record per event."""
    it = iter(events)
    first = next(it, None)
    if first is None:
        raise AuditFailure("?", None, "no events to replay")
    if first.type != OPEN_EVENT or first.seq != 1:
        raise AuditFailure(first.case_id, first.seq,
                           "a case's history must start with 'open' at seq 1")  # fmt: skip
    if first.prev_hash != GENESIS:
        raise AuditFailure(first.case_id, 1, "prev_hash does not match the previous event's hash")
    try:
        work = thaw(opened_case(first, vault))
    except _UNREADABLE as exc:
        raise AuditFailure(first.case_id, 1, f"'open' cannot be replayed: {exc}") from exc
    case_id, expected_prev = work.id, first.hash
    for event in it:
        seq = event.seq
        if event.case_id != case_id:
            raise AuditFailure(event.case_id, seq, f"event belongs to another case than {case_id}")
        if seq != work.version + 1:
            raise AuditFailure(case_id, seq, f"expected seq {work.version + 1}")
        if event.prev_hash != expected_prev:
            raise AuditFailure(case_id, seq, "prev_hash does not match the previous event's hash")
        expected_prev = event.hash
        step = event.type
        if not is_allowed(work.state, step):
            raise AuditFailure(case_id, seq, f"'{step}' is not allowed from '{work.state}'")
        try:
            state = route(step, work, event.data)
            changes = changes_of(work, event, state, vault)
        except AuditFailure:
            raise
        except (NoRoute, *_UNREADABLE) as exc:
            raise AuditFailure(case_id, seq, f"'{step}' cannot be replayed: {exc}") from exc
        update(work, changes)
    return freeze(work)


#: What reading malformed event data raises (a date that is no date, a missing key...).
_UNREADABLE = (KeyError, ValueError, TypeError, AttributeError, IndexError)


__all__ = ["APPLY", "OPEN_EVENT", "apply", "opened_case", "replay"]
