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
from workflow.domain import Case, Offer, OfferStatus
from workflow.engine import Engine
from workflow.events import Event
from workflow.replay import replay

Row = dict[str, Any]


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


def sla_attainment(engine: Engine) -> list[Row]:
    """Per target, step and channel, over every cycle of every case: targets met,
    breached, and the attainment (met / decided, a percentage with one decimal). A
    cycle run under a policy the engine was not given is left out (never judged by
    another policy's targets): give the engine every policy the cases ran under."""
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for case in (cycle for current in _cases(engine) for cycle in _cycles(engine, current)):
        if policy_not_given(engine, case):
            continue
        policy = engine.policy_of(case)
        for status in sla.status(case, policy, case.updated_at):
            if status.done_at is None and not status.breached:
                continue  # still running: not decided yet
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


def compensation_spend(engine: Engine, by: str = "kind") -> list[Row]:
    """Accepted money remedies summed per ``by`` (``kind``, ``agent``, ``category`` or
    ``customer``) and currency, with the offers made, approved, declined, refused (by the
    approver) and accepted. Each offer is counted once, in the row of its currency: the
    accepted option's, else its first option with an amount, else (no money offered)
    the currency of the policy its case runs under ("" if that policy was not given)."""
    if by not in ("kind", "agent", "category", "customer"):
        raise ValueError("by must be kind, agent, category or customer")
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    # per group and currency: offers made, approved, declined, refused, accepted
    tallies: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for case in _cases(engine):
        for offer in case.offers:
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


def handling(engine: Engine) -> list[Row]:
    """One row per case: transfers, escalations, reopenings, feedback score, state."""
    rows = []
    for case in _cases(engine):
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


def summary(engine: Engine) -> list[Row]:
    """Cases, closed, reopen rate (reopened closed cases / cases ever closed; a withdrawn
    case was never closed, and cannot be reopened), mean feedback score."""
    cases = list(_cases(engine))
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


def time_per_step(engine: Engine) -> list[Row]:
    """For each checklist step: how often it was taken and the mean and median time from
    the step before it (the opening, or the reopening, for ``acknowledge``), over every
    cycle of every case."""
    spans: dict[str, list[timedelta]] = defaultdict(list)
    for case_id in engine.store.case_ids():
        previous = None
        for event in engine.history(case_id):
            if event.type in ("open", "reopen"):
                previous = event.at
            elif event.type in CHECKLIST and previous is not None:
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


def breaches(engine: Engine) -> list[Row]:
    """One row per SLA breach recorded (an ``sla_breached`` event), soonest first: the
    case, the target, its step, the case's channel, when the target was due, when the
    breach was recorded (the event's time: the sweeper's run, or the late step's),
    whether the step was taken later in the same cycle (a reopening starts another) and
    when, and the case's assignee then ("" if none). Read from the events alone, so a
    case's policy need not be given."""
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


def recurring(engine: Engine) -> list[Row]:
    """Complaints counted per category, subject and ISO week of opening; a row is
    ``rising`` when its count is at least 2 and higher than the week before."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for case in _cases(engine):
        iso = case.opened_at.isocalendar()
        key = (
            case.category or "(none)",
            subject_key(case.subject),
            f"{iso.year}-W{iso.week:02d}",
        )
        counts[key] += 1
    rows = []
    for (category, subject, week), count in sorted(counts.items()):
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


BUCKETS = ("within 3 business days", "within 4 weeks", "4-8 weeks", "over 8 weeks")


def regulatory_buckets(engine: Engine, calendar: WorkingCalendar) -> list[Row]:
    """Closed cases by the time from receipt to closing, in the buckets regulators ask
    for (FCA DISP): by the close of the third business day after receipt (on
    ``calendar``), within four weeks, four to eight weeks, over eight weeks."""
    counts = dict.fromkeys(BUCKETS, 0)
    for case in _cases(engine):
        if case.state != "closed" or case.closed_at is None or case.cycle_started_at is None:
            continue
        received, closed = case.cycle_started_at, case.closed_at
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
