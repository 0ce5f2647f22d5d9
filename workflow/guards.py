"""Guards: for each step, check what it is given against the case and the policy, and
build the event data it records.

A guard is a pure function of its ``StepContext`` (the case, ``now``, the actor, the
policy and the step's inputs). It raises a ``StepRefused`` error to refuse the step, or
returns the JSON data the step's event will carry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from policies.decide import (
    OfferRequest,
    decide_acceptance,
    decide_approval,
    decide_reclassification,
)
from policies.decision import Decision, Outcome
from policies.model import Policy
from policies.money import MAX_WHOLE_DIGITS, shown, too_large
from policies.remedy import Remedy
from policies.types import format_duration
from workflow.checklist import State, allowed_steps
from workflow.clock import outside_utc
from workflow.domain import (
    MAX_ASSIGNEE,
    MAX_CONTACT,
    Actor,
    Case,
    ComplainantType,
    OfferStatus,
    Slug,
    not_a_choice,
    person_of,
)
from workflow.errors import (
    InvalidStepData,
    MissingInformation,
    PolicyViolation,
    StepNotAllowed,
)
from workflow.events import format_at
from workflow.personal import ERASED

DecideHook = Callable[[Policy, OfferRequest], Decision]

MAX_TEXT = 10_000
MAX_OPTIONS = 10
#: How far past today (UTC) a "date it happened" may be: the customer's day can be ahead.
OCCURRED_ON_SLACK = timedelta(days=1)
#: How far ahead a promise may be due: ten years (docs/decisions/0026-guards-promise-horizon.md).
PROMISE_HORIZON = timedelta(days=3653)

_SLUG: TypeAdapter[str] = TypeAdapter(Slug)


def not_a_name(value: str) -> str:
    """Why text is refused where a name (a category, a role) is taken."""
    return f"{value!r} is not a lower-case name like 'delivery' or 'team-lead'"


_KEPT_NOT_CLOSING = tuple(s for s in allowed_steps(State.PROMISE_KEPT) if s != "close")


def allowed_under(state: str, policy: Policy | None) -> tuple[str, ...]:
    """The steps a case in ``state`` accepts under ``policy``: the machine's
    (``allowed_steps``), less ``close`` from ``promise_kept`` when the policy needs
    feedback requested first (the one route that no input can open). Without the
    policy, the machine's."""
    if state == State.PROMISE_KEPT and policy is not None and policy.feedback.required_before_close:
        return _KEPT_NOT_CLOSING
    return allowed_steps(state)


def allowed_for(case: Case, policy: Policy | None, current: str | None) -> tuple[str, ...]:
    """The steps ``case`` accepts under ``policy`` (``allowed_under``), less those no
    input can make succeed either: ``migrate_policy`` when the case already runs under
    the current policy (``current``: its stamp), ``pause_sla`` when its SLA clock is
    paused and ``resume_sla`` when it is not."""
    steps = allowed_under(case.state, policy)
    futile = "pause_sla" if case.sla_paused else "resume_sla"
    if case.policy_version == current:
        return tuple(step for step in steps if step != futile and step != "migrate_policy")
    return tuple(step for step in steps if step != futile)


_DATE: TypeAdapter[date] = TypeAdapter(date)
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


@dataclass(slots=True)
class StepContext:
    """What a guard sees: everything it decides on is here, ``now`` included."""

    case: Case
    step: str
    actor: Actor
    now: datetime
    policy: Policy
    inputs: Mapping[str, Any]
    decide: DecideHook
    #: ``(case, policy, now) -> (what the customer was paid within the cap period, the
    #: versions of the customer's cases it was read from)``, read from the store by the
    #: engine; called only by guards that need it.
    paid_within_cap: Callable[[Case, Policy, datetime], tuple[Decimal, dict[str, int]]] = (
        lambda c, p, n: (Decimal(0), {})
    )
    #: Other cases a decision read, at the versions read (the append re-checks them).
    read_cases: dict[str, int] | None = None
    #: The engine's current policy (``migrate_policy`` moves a case to it).
    current_policy: Policy | None = None
    #: The steps the case accepts now, when they are not read under ``policy`` (the
    #: engine was not given the case's policy: only ``migrate_policy``).
    allowed: tuple[str, ...] | None = None

    def _where(self) -> dict[str, Any]:
        allowed = self.allowed
        return {
            "case_id": self.case.id,
            "state": self.case.state,
            "step": self.step,
            "allowed": (
                allowed_for(self.case, self.policy, self._current_stamp())
                if allowed is None
                else allowed
            ),
        }

    def _current_stamp(self) -> str | None:
        return self.current_policy.stamp if self.current_policy is not None else None

    def paid(self) -> Decimal:
        """What this case's customer was paid within the policy's cap period. The
        customer's other cases it was read from must be unchanged when the step is
        written (so two cases cannot pay past the cap at once)."""
        total, versions = self.paid_within_cap(self.case, self.policy, self.now)
        versions.pop(self.case.id, None)
        self.read_cases = versions
        return total

    def missing(self, *fields: str, hint: str | None = None) -> NoReturn:
        raise MissingInformation(fields=fields, hint=hint, **self._where())

    def invalid(self, field: str, problem: str) -> NoReturn:
        self.invalid_each([(field, problem)])

    def invalid_each(self, problems: Sequence[tuple[str, str]]) -> NoReturn:
        raise InvalidStepData(problems=problems, **self._where())

    def not_allowed(self, reason: str) -> NoReturn:
        raise StepNotAllowed(reason=reason, **self._where())

    def violation(self, decision: Decision) -> NoReturn:
        raise PolicyViolation(decision=decision, **self._where())

    def decided(self, request: OfferRequest) -> Decision:
        """The decide hook's decision on ``request`` under the case's policy. A hook
        that returns anything but a ``Decision`` is a bug in the embedding program:
        ``TypeError`` naming the hook, rather than a failure deep in the guard."""
        decision = self.decide(self.policy, request)
        if not isinstance(decision, Decision):
            hook = getattr(self.decide, "__qualname__", repr(self.decide))
            raise TypeError(
                f"the decide hook {hook} returned {decision!r}; expected a Decision "
                "(policies.Decision.allowed/needs_approval/denied)"
            )
        return decision

    # -- reading inputs --------------------------------------------------------------

    def text(
        self, name: str, *, required: bool, hint: str | None = None, longest: int = MAX_TEXT
    ) -> str | None:
        value = self.inputs.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.missing(name, hint=hint)
            return None
        if not isinstance(value, str):
            self.invalid(name, f"expected text, got {type(value).__name__}")
        value = value.strip()  # what is recorded, and so what the limit counts
        if len(value) > longest:
            self.invalid(name, f"longer than {longest} characters")
        return value

    def slug(self, name: str, *, required: bool) -> str | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return _SLUG.validate_python(value)
        except ValidationError:
            self.invalid(name, not_a_name(value))

    def aware_datetime(self, name: str, *, required: bool) -> datetime | None:
        value = self.inputs.get(name)
        if value is None:
            if required:
                self.missing(name)
            return None
        if type(value) is datetime and value.tzinfo is UTC:
            return value  # what validating and converting to UTC give (a test checks it)
        if not isinstance(value, datetime | str):  # a number is not read as seconds
            self.invalid(name, f"expected a datetime or ISO 8601 text, got {type(value).__name__}")
        try:
            parsed = _DATETIME.validate_python(value)
        except ValidationError as exc:
            self.invalid(name, _first_line(exc))
        if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
            self.invalid(
                name,
                f"naive datetime {parsed.isoformat()} refused; give a time zone "
                "(for example datetime.now(timezone.utc))",
            )
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            self.invalid(name, outside_utc(parsed))


def read_day(value: Any) -> date:
    """A date from a ``date`` or its ISO text. A datetime is refused (which day it is
    depends on the zone), and so is a number (pydantic would read it as seconds)."""
    if isinstance(value, datetime):
        raise ValueError("give a date, not a datetime")
    if not isinstance(value, date | str):
        raise ValueError(f"expected a date or ISO 8601 text, got {type(value).__name__}")
    return _DATE.validate_python(value)


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(_message(e) for e in exc.errors())
    return str(exc)


def validation_problems(exc: ValidationError, field: str) -> list[tuple[str, str]]:
    """Each of ``exc``'s errors as ``(where, what is wrong)``: ``field`` followed by the
    error's place in the value (``options[1].amount.currency``), so that a form can mark
    the input at fault, and the check's own sentence."""
    return [
        (field + "".join(f".{part}" for part in error["loc"]), _message(error))
        for error in exc.errors()
    ]


def _message(error: ErrorDetails) -> str:
    """An error's sentence, without the ``Value error, `` pydantic puts before the text
    of a ``ValueError`` a validator raised (that text is the sentence)."""
    return str(error["msg"]).removeprefix("Value error, ")


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# -- the guards -------------------------------------------------------------------------


def acknowledge(ctx: StepContext) -> dict[str, Any]:
    return _drop_none({"message": ctx.text("message", required=False)})


def listen(ctx: StepContext) -> dict[str, Any]:
    note = ctx.text(
        "note", required=True, hint="the customer's account of the problem, in their words"
    )
    return {"note": note}


def record(ctx: StepContext) -> dict[str, Any]:
    case = ctx.case
    data: dict[str, Any] = _drop_none(
        {
            "category": ctx.slug("category", required=False),
            "subject": ctx.text("subject", required=False),
            "contact": ctx.text("contact", required=False, longest=MAX_CONTACT),
            "details": ctx.text("details", required=False),
        }
    )
    categories = ctx.policy.categories
    if categories is not None and data.get("category", case.category) not in (None, *categories):
        ctx.invalid(
            "category",
            f"{data.get('category', case.category)!r} is not one of the policy's categories: "
            f"{', '.join(categories)}",
        )
    occurred = ctx.inputs.get("occurred_on")
    if occurred is not None:
        try:
            day = read_day(occurred)
        except ValueError as exc:  # a ValidationError too
            ctx.invalid("occurred_on", _first_line(exc))
        if day > (ctx.now + OCCURRED_ON_SLACK).date():
            ctx.invalid("occurred_on", f"{day.isoformat()} is in the future")
        data["occurred_on"] = day.isoformat()
    have = {
        "category": case.category,
        "subject": case.subject,
        # An erased contact is no contact: the agent records how to reach them now.
        "contact": None if case.customer.contact == ERASED else case.customer.contact,
        "occurred_on": case.occurred_on,
        "details": case.details,
    }
    missing = [name for name, value in have.items() if value is None and name not in data]
    if missing:
        ctx.missing(*missing, hint="the complaint's type, subject, contact, date and details")
    return data


def apologise(ctx: StepContext) -> dict[str, Any]:
    message = ctx.text(
        "message", required=True, hint="the apology, thanking the customer for raising it"
    )
    return {"message": message}


def _remedies(ctx: StepContext) -> list[Remedy]:
    options = ctx.inputs.get("options")
    if isinstance(options, str | bytes) or not isinstance(options, Sequence | None):
        ctx.invalid("options", "expected a list of remedies")
    if not options:
        ctx.missing("options", hint="one or more remedies for the customer to choose from")
    if len(options) > MAX_OPTIONS:
        ctx.invalid("options", f"at most {MAX_OPTIONS} options per offer")
    remedies: list[Remedy] = []
    for i, option in enumerate(options, start=1):
        try:
            remedy = Remedy.model_validate(option)
        except ValidationError as exc:
            ctx.invalid_each(validation_problems(exc, f"options[{i}]"))
        if remedy.amount is not None and remedy.amount.currency != ctx.policy.currency:
            ctx.invalid(
                f"options[{i}].amount",
                f"{remedy.amount.currency} given; the policy's currency is {ctx.policy.currency}",
            )
        if remedy.amount is not None and too_large(remedy.amount.amount):
            ctx.invalid(
                f"options[{i}].amount",
                f"{shown(remedy.amount.amount)} is too large: at most {MAX_WHOLE_DIGITS} digits "
                "before the decimal point",
            )
        problem = ctx.policy.check_remedy(remedy)
        if problem is not None:
            ctx.invalid(f"options[{i}]", problem)
        if remedy in remedies:  # a choice must mean something (0025-guards-duplicate-options)
            ctx.invalid(
                f"options[{i}]", f"the same remedy as options[{remedies.index(remedy) + 1}]"
            )
        remedies.append(remedy)
    return remedies


def _offer_request(
    ctx: StepContext, role: str, remedies: tuple[Remedy, ...], offers_made: int | None = None
) -> OfferRequest:
    case = ctx.case
    capped = ctx.policy.caps.per_customer is not None
    return OfferRequest(
        role=role,
        remedies=remedies,
        customer_tier=case.customer.tier,
        category=case.category,
        complainant_type=case.complainant_type.value,
        offers_made=len(case.offers) if offers_made is None else offers_made,
        declines=case.declines,
        paid_in_period=ctx.paid() if capped else Decimal(0),
    )


def offer_remedy(ctx: StepContext) -> dict[str, Any]:
    case = ctx.case
    breached = case.first_breach_at
    if (
        ctx.policy.sla.escalate_before_offer_when_breached
        and breached is not None
        and (case.last_escalated_at is None or case.last_escalated_at < breached)
    ):
        ctx.not_allowed(
            f"the case breached its SLA at {format_at(breached)}; the policy requires an "
            "escalation before a remedy is offered"
        )
    remedies = _remedies(ctx)
    case = ctx.case
    request = _offer_request(ctx, ctx.actor.role, tuple(remedies))
    decision = ctx.decided(request)
    if decision.outcome is Outcome.DENIED:
        ctx.violation(decision)
    return _drop_none(
        {
            "offer": len(case.offers) + 1,
            "options": [r.to_json() for r in remedies],
            "decision": decision.to_json(),
            "note": ctx.text("note", required=False),
        }
    )


def _offer_number(ctx: StepContext, status: OfferStatus) -> int:
    offer = ctx.case.current_offer
    if offer is None or offer.status is not status:
        ctx.not_allowed(f"there is no offer that is {status.value}")
    return offer.number


def approve_offer(ctx: StepContext) -> dict[str, Any]:
    number = _offer_number(ctx, OfferStatus.AWAITING_APPROVAL)
    offer = ctx.case.offers[-1]
    # The id after the role as recorded: an ``Actor`` built directly may have recorded
    # text that ``Actor.parse`` refuses (``Actor(role="agent", id=" bob")``: ``agent: bob``).
    if person_of(offer.offered_by.partition(":")[2]) == ctx.actor.person:
        ctx.violation(
            Decision.denied(
                "approval.four_eyes",
                f"{ctx.actor.id} made offer {number}; a second person must approve it",
            )
        )
    # The offer as the approver would make it now (the offers before it counted): under
    # the case's policy and classification as they are now, with what the customer was
    # paid meanwhile. Approval lifts ``needs_approval``, never a denial (decision 0019).
    request = _offer_request(ctx, ctx.actor.role, offer.options, offers_made=number - 1)
    authority = decide_approval(ctx.policy, request, ctx.actor.role)
    if authority.outcome is Outcome.DENIED:
        ctx.violation(authority)
    now = ctx.decided(request)
    if now.outcome is Outcome.DENIED:
        ctx.violation(now)
    return _drop_none({"offer": number, "note": ctx.text("note", required=False)})


def refuse_offer(ctx: StepContext) -> dict[str, Any]:
    number = _offer_number(ctx, OfferStatus.AWAITING_APPROVAL)
    return {"offer": number, "reason": ctx.text("reason", required=True)}


def accept_remedy(ctx: StepContext) -> dict[str, Any]:
    number = _offer_number(ctx, OfferStatus.OPEN)
    offer = ctx.case.offers[-1]
    option = ctx.inputs.get("option")
    if option is None:
        ctx.missing("option", hint=f"which of the {len(offer.options)} options the customer chose")
    if isinstance(option, bool) or not isinstance(option, int):
        ctx.invalid("option", "expected the option's number (1 for the first)")
    if not 1 <= option <= len(offer.options):
        ctx.invalid("option", f"offer {number} has options 1 to {len(offer.options)}")
    promise = ctx.text("promise", required=True, hint="what the company will do for the customer")
    due = ctx.aware_datetime("due", required=True)
    assert due is not None
    if due <= ctx.now:
        ctx.invalid("due", f"{format_at(due)} is not after now ({format_at(ctx.now)})")
    if due - ctx.now > PROMISE_HORIZON:
        ctx.invalid("due", f"{format_at(due)} is more than 10 years after now")
    if ctx.policy.caps.per_customer is not None:
        cap = decide_acceptance(ctx.policy, offer.options[option - 1], ctx.paid())
        if cap.outcome is Outcome.DENIED:
            ctx.violation(cap)
    return {"offer": number, "option": option, "promise": promise, "due": format_at(due)}


def decline_remedy(ctx: StepContext) -> dict[str, Any]:
    number = _offer_number(ctx, OfferStatus.OPEN)
    return _drop_none({"offer": number, "reason": ctx.text("reason", required=False)})


def keep_promise(ctx: StepContext) -> dict[str, Any]:
    evidence = ctx.text(
        "evidence", required=True, hint="proof the promise was kept, e.g. a refund reference"
    )
    return {"evidence": evidence}


def request_feedback(ctx: StepContext) -> dict[str, Any]:
    return _drop_none({"message": ctx.text("message", required=False)})


def close(ctx: StepContext) -> dict[str, Any]:
    data = _drop_none({"resolution": ctx.text("resolution", required=False)})
    if ctx.case.state == State.PROMISE_KEPT:
        if ctx.policy.feedback.required_before_close:
            ctx.missing(
                "feedback request",
                hint="the policy requires request_feedback before a case is closed",
            )
        data["feedback_waived"] = True
    return data


def escalate(ctx: StepContext) -> dict[str, Any]:
    reason = ctx.text("reason", required=True)
    to_role = ctx.slug("to_role", required=True)
    assert to_role is not None
    unknown = ctx.policy.not_a_role(to_role)
    if unknown is not None:
        ctx.invalid("to_role", unknown)
    return {"reason": reason, "to_role": to_role, "resume_to": ctx.case.state}


def resume(ctx: StepContext) -> dict[str, Any]:
    return _drop_none({"note": ctx.text("note", required=False)})


def reopen(ctx: StepContext) -> dict[str, Any]:
    reason = ctx.text("reason", required=True)
    closed_at = ctx.case.closed_at
    window = ctx.policy.reopen.window
    if closed_at is not None and ctx.now - closed_at > window:
        ctx.violation(
            Decision.denied(
                "reopen.window",
                f"closed at {format_at(closed_at)}; the policy allows reopening within "
                f"{format_duration(window)}",
            )
        )
    return {"reason": reason}


def withdraw(ctx: StepContext) -> dict[str, Any]:
    return {"reason": ctx.text("reason", required=True)}


def add_note(ctx: StepContext) -> dict[str, Any]:
    return {"text": ctx.text("text", required=True)}


def assign(ctx: StepContext) -> dict[str, Any]:
    to = ctx.text("to", required=True, longest=MAX_ASSIGNEE)
    nul = to.find("\x00") if to is not None else -1
    if nul >= 0:  # PostgreSQL's assignee column, which cases are found by, cannot hold it
        ctx.invalid("to", f"holds U+0000 at position {nul + 1}, which PostgreSQL cannot store")
    if to == ctx.case.assignee:
        ctx.invalid("to", f"the case is already assigned to {to}")
    return _drop_none({"to": to, "from": ctx.case.assignee})


def classify(ctx: StepContext) -> dict[str, Any]:
    value = ctx.inputs.get("complainant_type")
    if value is None:
        ctx.missing("complainant_type")
    try:
        kind = ComplainantType(value)
    except ValueError:
        ctx.invalid("complainant_type", not_a_choice(ComplainantType, value))
    # An offer is judged by the type the case has when it is made: moving a case out of
    # a stricter type is for the roles its playbook names (decision 0059). The role is
    # the actor's, as ``Actor`` parses it (``agent:team-lead`` acts as an agent).
    moved = decide_reclassification(
        ctx.policy, ctx.case.complainant_type.value, kind.value, ctx.actor.role
    )
    if moved.outcome is Outcome.DENIED:
        ctx.violation(moved)
    data = {"complainant_type": kind.value}
    playbook = ctx.policy.playbook(kind.value)
    if playbook is not None and playbook.priority is not None:
        data["priority"] = playbook.priority
    return data


def migrate_policy(ctx: StepContext) -> dict[str, Any]:
    reason = ctx.text("reason", required=True, hint="why the case moves to the new policy")
    target = ctx.current_policy
    assert target is not None
    if ctx.case.policy_version == target.stamp:
        ctx.invalid("policy", f"the case already runs under {target.stamp}")
    offer = ctx.case.current_offer
    if offer is not None and offer.status in (OfferStatus.OPEN, OfferStatus.AWAITING_APPROVAL):
        # The offer's amounts say its currency even when the engine was not given the
        # case's policy (``ctx.policy`` is then the target itself).
        currencies = [ctx.policy.currency]
        currencies += [o.amount.currency for o in offer.options if o.amount is not None]
        other = next((c for c in currencies if c != target.currency), None)
        if other is not None:
            ctx.not_allowed(
                f"offer {offer.number} is open in {other}; the new policy's currency "
                f"is {target.currency}: settle or decline the offer first"
            )
    undeclared = _undeclared_under(ctx.case, target)
    if undeclared:
        ctx.not_allowed("; ".join(undeclared))
    return {"from": ctx.case.policy_version, "to": target.stamp, "reason": reason}


def _undeclared_under(case: Case, policy: Policy) -> list[str]:
    """Why ``case`` cannot run under ``policy``: its customer's tier or its category is
    not one the policy declares (a policy declaring none takes any). A case moved there
    would run under the defaults (a factor of 1 for an unlisted tier) silently."""
    named = f"policy {policy.name!r} version {policy.version}"
    keep = "or keep the case under the policy it runs under"
    found = []
    tier = case.customer.tier
    if policy.tiers is not None and tier not in policy.tiers:
        found.append(
            f"the case's customer is of tier {tier!r}, which {named} does not declare (its "
            f"tiers: {', '.join(policy.tiers)}): add it to that policy's tiers, {keep}"
        )
    category = case.category
    if policy.categories is not None and category is not None and category not in policy.categories:
        found.append(
            f"the case's category {category!r} is not one {named} declares (its "
            f"categories: {', '.join(policy.categories)}): add it to that policy's "
            f"categories, {keep}"
        )
    return found


def pause_sla(ctx: StepContext) -> dict[str, Any]:
    if ctx.case.sla_paused:
        ctx.not_allowed("the SLA clock is already paused")
    return {"reason": ctx.text("reason", required=True, hint="what the case is waiting on")}


def resume_sla(ctx: StepContext) -> dict[str, Any]:
    if not ctx.case.sla_paused:
        ctx.not_allowed("the SLA clock is not paused")
    return _drop_none({"note": ctx.text("note", required=False)})


def record_feedback(ctx: StepContext) -> dict[str, Any]:
    score = ctx.inputs.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
        ctx.invalid("score", "expected a whole number from 1 to 5")
    if score is not None and not 1 <= score <= 5:
        ctx.invalid("score", f"{score} is not from 1 to 5")
    comment = ctx.text("comment", required=False)
    if score is None and comment is None:
        ctx.missing("score or comment")
    return _drop_none({"score": score, "comment": comment})


Guard = Callable[[StepContext], dict[str, Any]]

#: Each step's guard and the inputs it accepts.
GUARDS: dict[str, tuple[Guard, frozenset[str]]] = {
    "acknowledge": (acknowledge, frozenset({"message"})),
    "listen": (listen, frozenset({"note"})),
    "record": (
        record,
        frozenset({"category", "subject", "contact", "occurred_on", "details"}),
    ),
    "apologise": (apologise, frozenset({"message"})),
    "offer_remedy": (offer_remedy, frozenset({"options", "note"})),
    "approve_offer": (approve_offer, frozenset({"note"})),
    "refuse_offer": (refuse_offer, frozenset({"reason"})),
    "accept_remedy": (accept_remedy, frozenset({"option", "promise", "due"})),
    "decline_remedy": (decline_remedy, frozenset({"reason"})),
    "keep_promise": (keep_promise, frozenset({"evidence"})),
    "request_feedback": (request_feedback, frozenset({"message"})),
    "close": (close, frozenset({"resolution"})),
    "escalate": (escalate, frozenset({"reason", "to_role"})),
    "resume": (resume, frozenset({"note"})),
    "reopen": (reopen, frozenset({"reason"})),
    "withdraw": (withdraw, frozenset({"reason"})),
    "add_note": (add_note, frozenset({"text"})),
    "assign": (assign, frozenset({"to"})),
    "classify": (classify, frozenset({"complainant_type"})),
    "pause_sla": (pause_sla, frozenset({"reason"})),
    "resume_sla": (resume_sla, frozenset({"note"})),
    "record_feedback": (record_feedback, frozenset({"score", "comment"})),
    "migrate_policy": (migrate_policy, frozenset({"reason"})),
}
