"""SLA clocks for a case: pure functions of ``(case, policy, now)``.

``deadlines(case, policy)`` gives the case's pending warning and breach deadlines (absolute
UTC instants); the engine stores them with every append, so the sweeper finds due ones by
an indexed query and never loads every open case. ``status`` reports each target.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from policies.calendar import WorkingCalendar, advance, elapsed
from policies.model import Policy
from policies.sla import Target
from workflow.clock import to_utc
from workflow.domain import Case

#: The state a timed step is taken from (``previous_step`` targets start when the case
#: entered it).
FROM_STATE = {
    "acknowledge": "received",
    "listen": "acknowledged",
    "record": "listening",
    "apologise": "recorded",
    "offer_remedy": "apologised",
    "accept_remedy": "remedy_offered",
    "keep_promise": "promised",
    "request_feedback": "promise_kept",
    "close": "feedback_requested",
}


@dataclass(frozen=True, slots=True)
class Deadline:
    """One pending SLA deadline: ``kind`` is ``warn`` (at ``percent`` of the target) or
    ``breach``; ``key`` is unique within the case."""

    case_id: str
    key: str
    target: str
    step: str
    kind: str
    percent: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """Where one target stands at ``now``."""

    target: str
    step: str
    calendar: str | None
    start: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    paused: bool
    elapsed: timedelta
    elapsed_business: timedelta | None
    remaining: timedelta | None
    remaining_business: timedelta | None
    warned: bool
    breached: bool

    @property
    def achieved(self) -> bool:
        """Done, and in time: before the due time (at it, the breach is due and recorded)."""
        return self.done_at is not None and (self.due_at is None or self.done_at < self.due_at)


def targets_for(case: Case, policy: Policy) -> list[Target]:
    return policy.sla_targets(
        case.channel.value,
        case.priority.value,
        case.customer.tier,
        case.complainant_type.value,
        case.category,
    )


def _checklist_state(case: Case) -> str:
    if case.state == "escalated" and case.escalation is not None:
        return case.escalation.resume_to
    return case.state


#: The main step before each timed step (acknowledge's is the case's opening).
PREVIOUS_STEP = {
    "listen": "acknowledge",
    "record": "listen",
    "apologise": "record",
    "offer_remedy": "apologise",
    "accept_remedy": "offer_remedy",
    "keep_promise": "accept_remedy",
    "request_feedback": "keep_promise",
    "close": "request_feedback",
}


def _start(case: Case, target: Target) -> datetime | None:
    if target.start == "opened":
        return case.cycle_started_at
    if target.start == "promise_due":
        return case.promise.due_at if case.promise is not None else None
    if case.step_time(target.step) is not None:  # done: it started at the step before
        before = PREVIOUS_STEP.get(target.step)
        return case.step_time(before) if before else case.cycle_started_at
    if _checklist_state(case) == FROM_STATE[target.step]:
        return case.state_since
    return None


def _calendar(policy: Policy, target: Target) -> WorkingCalendar | None:
    return policy.calendars[target.calendar] if target.calendar is not None else None


def _amount(calendar: WorkingCalendar | None, target: Target, start: datetime) -> timedelta:
    """The target as an amount of counted time from ``start``."""
    if target.business_days is not None:
        assert calendar is not None
        close = calendar.close_of_business_day(start, target.business_days)
        return elapsed(calendar, start, close)
    assert target.within is not None
    return target.within


def _key(case: Case, target: Target, kind: str, percent: int) -> str:
    suffix = "breach" if kind == "breach" else f"warn{percent}"
    return f"{case.reopened}:{target.id}:{suffix}"


def unknown_breaches(case: Case, policy: Policy) -> frozenset[str]:
    """The keys of this cycle's recorded breaches whose target id ``policy`` does not
    have: recorded under the policy the case ran under before ``migrate_policy``. Which
    (step, group) they breached is in their ``sla_breached`` events (the engine reads
    them and passes ``breached_before`` to ``deadlines``)."""
    prefix, suffix = f"{case.reopened}:", ":breach"
    keys = policy.sla_target_keys
    return frozenset(
        key
        for key in case.sla_fired
        if key.startswith(prefix)
        and key.endswith(suffix)
        and key[len(prefix) : -len(suffix)] not in keys
    )


def _breached(case: Case, policy: Policy) -> set[tuple[str, str]]:
    """The (step, group) keys whose breach this cycle is recorded, under whichever target
    applied then: a step breaches once a cycle, even if the breach (raising the priority,
    say) or a new classification makes another target apply to it. Ids are looked up in
    every playbook: an id names one (step, group) in the whole policy."""
    prefix, suffix = f"{case.reopened}:", ":breach"
    keys = policy.sla_target_keys
    breached = set()
    for key in case.sla_fired:
        if key.startswith(prefix) and key.endswith(suffix):
            step_group = keys.get(key[len(prefix) : -len(suffix)])
            if step_group is not None:
                breached.add(step_group)
    return breached


def deadlines(
    case: Case,
    policy: Policy,
    *,
    now: datetime | None = None,
    breached_before: Collection[tuple[str, str]] = (),
) -> list[Deadline]:
    """The case's pending deadlines, soonest first. None while the case is closed or
    withdrawn; while its SLA clock is paused, only those that passed before the pause
    (unless ``now`` is given: then the pause so far counts as paused time, to find what
    a step taken now is late for); none for a step already taken this cycle, or one that
    breached this cycle: under ``policy``'s targets, or (``breached_before``: its (step,
    group) keys) under the targets of a policy the case ran under before (see
    ``unknown_breaches``)."""
    if case.state in ("closed", "withdrawn"):
        return []
    pauses = case.pauses
    passed_by: datetime | None = None  # paused: only what fell due before the pause
    if case.paused_since is not None:
        if now is None:
            passed_by = case.paused_since
        else:
            pauses = (*pauses, (case.paused_since, now))
    out: list[Deadline] = []
    breached: Collection[tuple[str, str]] = _breached(case, policy) if case.sla_fired else ()
    if breached_before:
        breached = {*breached, *breached_before}
    for target in targets_for(case, policy):
        if case.step_time(target.step) is not None or target.key in breached:
            continue
        start = _start(case, target)
        if start is None:
            continue
        calendar = _calendar(policy, target)
        amount = _amount(calendar, target, start)
        points = [("warn", p) for p in policy.sla.warn_at] + [("breach", 100)]
        for kind, percent in points:
            key = _key(case, target, kind, percent)
            if key in case.sla_fired:
                continue
            due = advance(calendar, start, amount * percent / 100, pauses)
            if passed_by is not None and due > passed_by:
                continue  # the pause holds it
            out.append(Deadline(case.id, key, target.id, target.step, kind, percent, due))
    out.sort(key=lambda d: (d.due_at, d.kind != "warn", d.key))
    return out


def status(case: Case, policy: Policy, now: datetime) -> list[TargetStatus]:
    """Each target's elapsed and remaining time (calendar time, and business time when
    the target counts on a calendar), and whether it is paused, warned, breached, done.
    While the case is paused, a target not yet done has no due time, and its remaining
    time is what is left on its stopped clock (the due time were the clock to restart
    ``now``); a done or breached target keeps its due time, so whether it was achieved,
    or when it breached, still shows. A target breaches at its due time, as the sweeper
    and a late step record it."""
    out = []
    paused = case.paused_since is not None
    pauses = [*case.pauses, *(((case.paused_since, now),) if case.paused_since else ())]
    for target in targets_for(case, policy):
        start = _start(case, target)
        done = case.step_time(target.step)
        calendar = _calendar(policy, target)
        until = done or now
        due = wall = business = None
        if start is not None:
            amount = _amount(calendar, target, start)
            counted = [p for p in pauses if p[0] < until]  # a done target's clock stopped
            due = advance(calendar, start, amount, counted)
            wall = elapsed(None, start, until, pauses)
            business = elapsed(calendar, start, until, pauses) if calendar else None
        warned = any(_key(case, target, "warn", p) in case.sla_fired for p in policy.sla.warn_at)
        breached = _key(case, target, "breach", 100) in case.sla_fired or (
            due is not None and until >= due
        )
        remaining = remaining_business = None
        if due is not None and done is None:
            remaining = due - now
            if calendar is not None:
                sign = 1 if due >= now else -1
                lo, hi = (now, due) if due >= now else (due, now)
                remaining_business = sign * elapsed(calendar, lo, hi, pauses)
        out.append(
            TargetStatus(
                target=target.id,
                step=target.step,
                calendar=target.calendar,
                start=start,
                due_at=None if paused and done is None and not breached else due,
                done_at=done,
                paused=paused,
                elapsed=wall or timedelta(0),
                elapsed_business=business,
                remaining=remaining,
                remaining_business=remaining_business,
                warned=warned,
                breached=breached,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """One target's verdict at a time, as ``status`` judges it: ``kind`` is ``met`` (done
    in time, ``at`` the step's time), ``breached`` (``at`` its due time, when it
    breached; ``done_at`` the late step's time, if taken), ``running`` or ``paused``
    (``remaining``: the time left, on a paused clock what is left on it; ``warned``),
    ``not started`` (its clock has not started: the case has not reached the state the
    step is taken from)."""

    target: str
    step: str
    due_at: datetime | None
    kind: str
    at: datetime | None = None
    done_at: datetime | None = None
    remaining: timedelta | None = None
    warned: bool = False


def verdict(target: TargetStatus) -> Verdict:
    """``target``'s status as a verdict."""
    common = (target.target, target.step, target.due_at)
    if target.achieved:
        return Verdict(*common, "met", at=target.done_at, done_at=target.done_at)
    if target.breached:
        return Verdict(*common, "breached", at=target.due_at, done_at=target.done_at)
    if target.start is None:
        return Verdict(*common, "not started")
    kind = "paused" if target.paused else "running"
    return Verdict(*common, kind, remaining=target.remaining, warned=target.warned)


def verdicts(case: Case, policy: Policy, now: datetime) -> list[Verdict]:
    """Each of ``policy``'s targets for ``case`` at ``now`` as a verdict (``status``, the
    computation ``Engine.sla_status`` and ``sla status`` use). ``case`` as it stood at
    ``now`` (``Engine.state_at``) and ``policy`` the one it ran under then: judge a case
    only by its own policy. A naive ``now`` is refused, as ``Engine.sla_status`` refuses
    it (``InvalidTime``, a ``ValueError``, naming ``now``)."""
    return [
        verdict(target)
        for target in status(case, policy, to_utc(now, "verdicts(now)", field="now"))
    ]
