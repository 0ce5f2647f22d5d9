"""Reports over case histories: SLA attainment, compensation spend, case handling and
the regulatory resolution buckets. Each report is a list of rows (dicts) with fixed
columns, so it prints as a table, JSON or CSV alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from statistics import median
from typing import Any

from policies.calendar import WorkingCalendar
from policies.money import minor_units
from workflow import sla
from workflow.checklist import CHECKLIST
from workflow.clock import to_utc
from workflow.domain import Case, Offer, OfferStatus
from workflow.engine import Engine
from workflow.errors import InvalidTime
from workflow.events import Event
from workflow.replay import replay

Row = dict[str, Any]


def period(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A report's period, ``since`` (included) to ``until`` (left out), in UTC; either
    may be None (open). A naive time is refused, and so is an ``until`` not after
    ``since`` (``InvalidTime``, a ``ValueError``, naming it)."""
    start = to_utc(since, "since") if since is not None else None
    end = to_utc(until, "until") if until is not None else None
    if start is not None and end is not None and end <= start:
        raise InvalidTime(
            "until",
            f"{end.isoformat()} is not after since {start.isoformat()}: the period is empty",
            value=until,
        )
    return start, end


def _within(at: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """Whether ``at`` is in the period (``since`` included, ``until`` left out). Without a
    period everything is; with one, a time not known (None) is not."""
    if since is None and until is None:
        return True
    if at is None:
        return False
    return (since is None or at >= since) and (until is None or at < until)


def _cases(engine: Engine) -> Iterable[Case]:
    for case_id in engine.store.case_ids():
        yield engine.get(case_id)


def _cycles(engine: Engine, case: Case) -> list[Case]:
    """The case as each of its cycles ended (just before each reopen), then as it is."""
    events = engine.history(case.id)
    ends = [replay(events[: e.seq - 1]) for e in events if e.type == "reopen"]
    return [*ends, case]


def policy_not_given(engine: Engine, case: Case) -> bool:
    """Whether ``case`` (or one of its cycles) runs under a policy the engine was not
    given: its SLA targets are then unknown."""
    return engine.policy_of(case).stamp != case.policy_version


def sla_attainment(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[Row]:
    """Per target, step and channel, over every cycle of every case: targets met,
    breached, and the attainment (met / decided, a percentage with one decimal). A
    cycle run under a policy the engine was not given is left out (never judged by
    another policy's targets): give the engine every policy the cases ran under. With
    a period (``since``, ``until``), the targets decided in it: a target met when its
    step was taken, a breached one when it fell due."""
    since, until = period(since, until)
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for case in (cycle for current in _cases(engine) for cycle in _cycles(engine, current)):
        if policy_not_given(engine, case):
            continue
        policy = engine.policy_of(case)
        for status in sla.status(case, policy, case.updated_at):
            if status.done_at is None and not status.breached:
                continue  # still running: not decided yet
            decided_at = status.done_at if status.achieved else status.due_at
            if not _within(decided_at, since, until):
                continue
            key = (status.target, status.step, case.channel.value)
            counts[key][0 if status.achieved else 1] += 1
    rows = []
    for (target, step, channel), (met, breached) in sorted(counts.items()):
        decided = met + breached
        rows.append(
            {
                "target": target,
                "step": step,
                "channel": channel,
                "met": met,
                "breached": breached,
                "attainment_pct": str((Decimal(100) * met / decided).quantize(Decimal("0.1"))),
            }
        )
    return rows


#: What ``compensation_spend`` groups by.
SPEND_GROUPS = ("kind", "agent", "category", "customer")


def compensation_spend(
    engine: Engine,
    by: str = "kind",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """Accepted money remedies summed per ``by`` (``kind``, ``agent``, ``category`` or
    ``customer``) and currency, with the offers made, approved, declined, refused (by the
    approver) and accepted. Each offer is counted once, in the row of its currency: the
    accepted option's, else its first option with an amount, else (no money offered)
    the currency of the policy its case runs under ("" if that policy was not given).
    With a period (``since``, ``until``), the offers made in it, and what was paid for
    them."""
    if by not in SPEND_GROUPS:
        raise ValueError("by must be kind, agent, category or customer")
    since, until = period(since, until)
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    # per group and currency: offers made, approved, declined, refused, accepted
    tallies: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for case in _cases(engine):
        for offer in case.offers:
            if not _within(offer.offered_at, since, until):
                continue
            keys = {
                "agent": offer.offered_by,
                "category": case.category or "(none)",
                "customer": case.customer.id,
            }
            paid = offer.paid
            group = (paid.kind if paid else offer.options[0].kind) if by == "kind" else keys[by]
            key = (group, _currency(engine, case, offer))
            tally = tallies[key]
            tally[0] += 1
            tally[1] += offer.approved_by is not None
            tally[2] += offer.status is OfferStatus.DECLINED
            tally[3] += offer.status is OfferStatus.REFUSED
            if offer.status is OfferStatus.ACCEPTED and paid is not None:
                tally[4] += 1
                if paid.amount is not None:
                    totals[key] += paid.amount.amount
    rows = []
    for (group, currency), (offers, approved, declined, refused, accepted) in sorted(
        tallies.items()
    ):
        rows.append(
            {
                by: group,
                "currency": currency,
                "paid": _money(totals.get((group, currency), Decimal(0)), currency),
                "offers": offers,
                "approved": approved,
                "declined": declined,
                "refused": refused,
                "accepted": accepted,
            }
        )
    return rows


def _currency(engine: Engine, case: Case, offer: Offer) -> str:
    paid = offer.paid
    if paid is not None and paid.amount is not None:
        return paid.amount.currency
    for option in offer.options:
        if option.amount is not None:
            return option.amount.currency
    return "" if policy_not_given(engine, case) else engine.policy_of(case).currency


def _money(amount: Decimal, currency: str) -> str:
    """``amount`` to the currency's minor units; as it is when that would take more
    digits than ``Decimal`` holds (an absurd amount accepted before offers were
    limited to ``MAX_WHOLE_DIGITS``)."""
    if not currency:
        return str(amount)
    try:
        return str(amount.quantize(Decimal(1).scaleb(-minor_units(currency))))
    except InvalidOperation:
        return str(amount)


def _opened(engine: Engine, since: datetime | None, until: datetime | None) -> Iterable[Case]:
    """The cases opened in the period (every case without one)."""
    since, until = period(since, until)
    for case in _cases(engine):
        if _within(case.opened_at, since, until):
            yield case


def handling(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[Row]:
    """One row per case: transfers, escalations, reopenings, feedback score, state. With
    a period (``since``, ``until``), the cases opened in it."""
    rows = []
    for case in _opened(engine, since, until):
        scores = [f.score for f in case.feedback if f.score is not None]
        rows.append(
            {
                "case_id": case.id,
                "state": case.state,
                "transfers": case.transfers,
                "escalations": case.escalations,
                "reopened": case.reopened,
                "feedback": _mean(scores),
            }
        )
    return rows


def summary(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[Row]:
    """Cases, closed, reopen rate (reopened closed cases / cases ever closed; a withdrawn
    case was never closed, and cannot be reopened), mean feedback score. With a period
    (``since``, ``until``), of the cases opened in it."""
    cases = list(_opened(engine, since, until))
    closed = [c for c in cases if c.state == "closed" or c.reopened]
    reopened = [c for c in closed if c.reopened]
    scores = [f.score for c in cases for f in c.feedback if f.score is not None]
    rate = Decimal(100) * len(reopened) / len(closed) if closed else Decimal(0)
    return [
        {
            "cases": len(cases),
            "closed": len([c for c in cases if c.state == "closed"]),
            "reopen_rate_pct": str(rate.quantize(Decimal("0.1"))),
            "feedback_mean": _mean(scores),
        }
    ]


def _mean(scores: list[int]) -> str:
    """The mean of ``scores`` to two decimals; "" when there are none."""
    if not scores:
        return ""
    return str((Decimal(sum(scores)) / len(scores)).quantize(Decimal("0.01")))


def _duration(delta: timedelta) -> str:
    """``delta`` in whole hours and minutes (seconds dropped), with its sign."""
    seconds = delta.total_seconds()
    hours, mins = divmod(int(abs(seconds) // 60), 60)
    return f"{'-' if seconds <= -60 else ''}{hours}h{mins:02d}"


def time_per_step(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[Row]:
    """For each checklist step: how often it was taken and the mean and median time from
    the step before it (the opening, or the reopening, for ``acknowledge``), over every
    cycle of every case. With a period (``since``, ``until``), the steps taken in it
    (the step before may be earlier)."""
    since, until = period(since, until)
    spans: dict[str, list[timedelta]] = defaultdict(list)
    for case_id in engine.store.case_ids():
        previous = None
        for event in engine.history(case_id):
            if event.type in ("open", "reopen"):
                previous = event.at
            elif event.type in CHECKLIST and previous is not None:
                if _within(event.at, since, until):
                    spans[event.type].append(event.at - previous)
                previous = event.at
    rows = []
    for step in CHECKLIST:
        taken = sorted(spans.get(step, []))
        if not taken:
            continue
        mean = sum(taken, timedelta(0)) / len(taken)
        rows.append(
            {
                "step": step,
                "taken": len(taken),
                "mean": _duration(mean),
                "median": _duration(timedelta(seconds=median(t.total_seconds() for t in taken))),
            }
        )
    return rows


def breaches(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[Row]:
    """One row per SLA breach recorded (an ``sla_breached`` event), soonest first: the
    case, the target, its step, the case's channel, when the target was due, when the
    breach was recorded (the event's time: the sweeper's run, or the late step's),
    whether the step was taken later in the same cycle (a reopening starts another) and
    when, and the case's assignee then ("" if none). Read from the events alone, so a
    case's policy need not be given. With a period (``since``, ``until``), the breaches
    that fell due in it (as ``sla_attainment`` counts them)."""
    since, until = period(since, until)
    rows: list[tuple[datetime, str, int, Row]] = []
    for case_id in engine.store.case_ids():
        events = engine.history(case_id)
        channel = str(events[0].data.get("channel", "")) if events else ""
        assignee = ""
        for i, event in enumerate(events):
            if event.type == "assign":
                assignee = str(event.data.get("to", ""))
            if event.type != "sla_breached":
                continue
            due = _time(event.data.get("due_at"))
            if not _within(due or event.at, since, until):
                continue
            step = str(event.data.get("step", ""))
            met = _taken_later(events[i + 1 :], step)
            row = {
                "case_id": case_id,
                "target": str(event.data.get("target", "")),
                "step": step,
                "channel": channel,
                "due_at": _time_text(event.data.get("due_at")),
                "breached_at": _utc(event.at),
                "met_later": met is not None,
                "met_at": _utc(met) if met is not None else "",
                "assignee": assignee,
            }
            rows.append((event.at, case_id, event.seq, row))
    rows.sort(key=lambda entry: entry[:3])
    return [row for *_, row in rows]


def _taken_later(events: Iterable[Event], step: str) -> datetime | None:
    """When ``step`` was first taken among ``events``, before the case was reopened."""
    for event in events:
        if event.type == "reopen":
            return None
        if event.type == step:
            return event.at
    return None


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _time(value: object) -> datetime | None:
    """An event's time text as a UTC datetime; None if it is not one."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at.astimezone(UTC) if at.tzinfo is not None else None


def _time_text(value: object) -> str:
    """An event's time text (``format_at``'s) as ``_utc`` writes times; as it is if it
    is not one."""
    try:
        return _utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def subject_key(subject: str | None) -> str:
    """The subject as the recurring report counts it: case-folded, runs of white space
    (spaces, tabs, line breaks) as one space, none at either end."""
    return " ".join((subject or "").split()).casefold()


def recurring(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> list[Row]:
    """Complaints counted per category, subject and ISO week of opening; a row is
    ``rising`` when its count is at least 2 and higher than the week before. With a
    period (``since``, ``until``), the rows of the cases opened in it; the week before
    is counted whole, in the period or not."""
    since, until = period(since, until)
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    shown: dict[tuple[str, str, str], int] = defaultdict(int)
    for case in _cases(engine):
        iso = case.opened_at.isocalendar()
        key = (
            case.category or "(none)",
            subject_key(case.subject),
            f"{iso.year}-W{iso.week:02d}",
        )
        counts[key] += 1
        if _within(case.opened_at, since, until):
            shown[key] += 1
    rows = []
    for (category, subject, week), count in sorted(shown.items()):
        monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
        before = (monday - timedelta(days=7)).isocalendar()
        previous_key = f"{before.year}-W{before.week:02d}"
        previous = counts.get((category, subject, previous_key), 0)
        rows.append(
            {
                "category": category,
                "subject": subject,
                "week": week,
                "count": count,
                "previous_week": previous,
                "rising": count >= 2 and count > previous,
            }
        )
    return rows


def _closings(engine: Engine, case: Case) -> Iterable[tuple[datetime, datetime]]:
    """``(received, closed)`` of each of ``case``'s cycles that was closed: the cycles
    before its reopenings, and the current one if it is closed."""
    cycles = _cycles(engine, case) if case.reopened else [case]
    for cycle in cycles:
        if cycle.state == "closed" and cycle.closed_at and cycle.cycle_started_at:
            yield cycle.cycle_started_at, cycle.closed_at


#: Each closing is in one bucket: the second holds the cases closed within 4 weeks but
#: after the first's 3 business days (its label says so: "within 4 weeks" alone read as
#: every case closed within 4 weeks).
BUCKETS = (
    "within 3 business days",
    "after 3 business days, within 4 weeks",
    "4-8 weeks",
    "over 8 weeks",
)


def regulatory_buckets(
    engine: Engine,
    calendar: WorkingCalendar,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """Closings by the time from receipt to closing, in the buckets regulators ask for
    (FCA DISP), each closing in one: by the close of the third business day after
    receipt (on ``calendar``), after that but within four weeks, four to eight weeks,
    over eight weeks. Every closing counts, a reopened case's too, each from the receipt
    of its cycle (the opening, or the reopening): a later reopening does not take a
    closing out of a period already reported. With a period (``since``, ``until``), the
    closings in it."""
    since, until = period(since, until)
    counts = dict.fromkeys(BUCKETS, 0)
    for received, closed in (span for case in _cases(engine) for span in _closings(engine, case)):
        if not _within(closed, since, until):
            continue
        # weeks on the calendar's clock: both in one zone, so a clock change in between
        # does not move the boundary by an hour
        taken = closed.astimezone(calendar.zone) - received.astimezone(calendar.zone)
        if closed <= calendar.close_of_business_day(received, 3):
            counts[BUCKETS[0]] += 1
        elif taken <= timedelta(weeks=4):
            counts[BUCKETS[1]] += 1
        elif taken <= timedelta(weeks=8):
            counts[BUCKETS[2]] += 1
        else:
            counts[BUCKETS[3]] += 1
    return [{"bucket": bucket, "cases": count} for bucket, count in counts.items()]
