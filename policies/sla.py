"""SLA targets in the policy file: what must be done by when, chosen by conditions."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from policies.types import Duration, LocatedError, Name, Strict, format_duration

#: Steps an SLA target can time.
TIMED_STEPS = (
    "acknowledge", "listen", "record", "apologise", "offer_remedy", "accept_remedy",
    "keep_promise", "request_feedback", "close",
)  # fmt: skip
#: The longest ``within`` counted around the clock (no calendar): two years, as on a
#: calendar (``WorkingCalendar.too_long``); a longer one is a typo, and one of thousands of
#: years would put the deadline past the year 9999.
LONGEST_WITHIN = timedelta(weeks=104)


class Conditions(Strict):
    """A target applies when each given list contains the case's value (empty: any)."""

    channel: list[Literal["email", "phone", "chat", "social", "sms", "web"]] = []
    priority: list[Literal["low", "normal", "high", "urgent"]] = []
    tier: list[Name] = []
    complainant_type: list[
        Literal["meek", "aggressive", "high-roller", "rip-off", "chronic", "unknown"]
    ] = []
    category: list[Name] = []

    def covers(self, other: Conditions, *, complainant_type: str | None = None) -> bool:
        """Every case ``other`` holds for (at least one), this holds for too; with
        ``complainant_type`` (a playbook's list), of the cases of that type only. A list
        of every channel, priority or type holds for every case, as no list does; tiers
        and categories are open (a case's may be one no list names, or none)."""
        for name in _CONDITIONS:
            mine, theirs = set(getattr(self, name)), set(getattr(other, name))
            every = _EVERY.get(name)
            if name == "complainant_type" and complainant_type is not None:
                every = frozenset({complainant_type})
            if every is None:
                if mine and not (theirs and theirs <= mine):
                    return False
                continue
            mine = mine & every if mine else set(every)
            theirs = theirs & every if theirs else set(every)
            if not theirs or not theirs <= mine:
                return False  # (no case at all for ``other``: not this check's finding)
        return True

    def taken_by(
        self, earlier: Sequence[Conditions], *, complainant_type: str | None = None
    ) -> list[int] | None:
        """The indexes of the ``earlier`` conditions that hold for some case this holds
        for, when between them they hold for every such case (so a target on these
        conditions after theirs is never chosen); else None. ``complainant_type`` as in
        ``covers``. Tiers and categories are open: a case's may be one no list names
        (``_UNNAMED`` below), so only a list naming it holds for such a case."""
        domains: dict[str, frozenset[str]] = {}
        for name in _CONDITIONS:
            if name == "complainant_type" and complainant_type is not None:
                domains[name] = frozenset({complainant_type})
            elif name in _EVERY:
                domains[name] = _EVERY[name]
            else:  # open: the names the lists give, and any other (one case for all)
                given = {value for c in (self, *earlier) for value in getattr(c, name)}
                domains[name] = frozenset({*given, _UNNAMED})
        mine = self._box(domains)
        if not all(mine):
            return None  # (no case at all: not this check's finding)
        boxes = [(i, c._box(domains)) for i, c in enumerate(earlier)]
        overlapping = [
            (i, box) for i, box in boxes if all(a & b for a, b in zip(mine, box, strict=True))
        ]
        if not _inside(mine, [box for _, box in overlapping], 0):
            return None
        return [i for i, _ in overlapping]

    def _box(self, domains: dict[str, frozenset[str]]) -> list[frozenset[str]]:
        """The values of each condition (in ``_CONDITIONS`` order) this holds for."""
        box = []
        for name in _CONDITIONS:
            listed = getattr(self, name)
            box.append(domains[name] & frozenset(listed) if listed else domains[name])
        return box

    def match(
        self, channel: str, priority: str, tier: str, complainant_type: str, category: str | None
    ) -> bool:
        return (
            (not self.channel or channel in self.channel)
            and (not self.priority or priority in self.priority)
            and (not self.tier or tier in self.tier)
            and (not self.complainant_type or complainant_type in self.complainant_type)
            and (not self.category or category in self.category)
        )


_CONDITIONS = ("channel", "priority", "tier", "complainant_type", "category")
#: Stands for every value of an open condition (tier, category) that no list names, and
#: for a case without a category (not a name itself).
_UNNAMED = ""


def _inside(box: list[frozenset[str]], boxes: list[list[frozenset[str]]], axis: int) -> bool:
    """Whether every case in ``box`` (a set of values per condition, from ``axis`` on)
    is in one of ``boxes``. The values on ``axis`` that the same boxes hold are one
    case for what follows: each such group must be covered by those boxes."""
    if not boxes:
        return False
    if axis == len(box):
        return True
    groups = {
        tuple(i for i, other in enumerate(boxes) if value in other[axis]) for value in box[axis]
    }
    return all(_inside(box, [boxes[i] for i in group], axis + 1) for group in groups)


#: The values a condition on a fixed set can take (from the schema): a list of them all
#: holds for every case.
_EVERY: dict[str, frozenset[str]] = {
    name: frozenset(typing.get_args(typing.get_args(Conditions.model_fields[name].annotation)[0]))
    for name in ("channel", "priority", "complainant_type")
}


class Target(Strict):
    """``step`` must be taken within ``within`` (an ISO 8601 duration) or by the close of
    the ``business_days``-th business day, counted from ``start``.

    ``start``: ``opened`` (the case opened, or was last reopened), ``previous_step``
    (the case entered the state ``step`` is taken from) or ``promise_due`` (the due date
    of the promise; for ``keep_promise``). Time counts on ``calendar`` (business time) or,
    without one, around the clock. For each ``(step, group)`` the first target whose
    ``when`` matches applies.
    """

    id: Name
    step: Literal[TIMED_STEPS]  # type: ignore[valid-type]
    group: Name | None = None
    within: Duration | None = None
    business_days: StrictInt | None = Field(default=None, ge=1, le=366)
    start: Literal["opened", "previous_step", "promise_due"] = "opened"
    calendar: Name | None = None
    when: Conditions = Conditions()
    on_breach: Literal["record", "escalate", "raise_priority"] = "record"
    escalate_to: Name | None = None
    raise_to: Literal["high", "urgent"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if (self.within is None) == (self.business_days is None):
            raise ValueError("give exactly one of within (a duration) or business_days")
        if self.business_days is not None and self.calendar is None:
            raise ValueError("business_days needs a calendar")
        if self.within is not None and self.within == timedelta(0) and self.start != "promise_due":
            raise ValueError("within must be more than zero")
        if self.on_breach == "escalate" and self.escalate_to is None:
            raise ValueError("on_breach: escalate needs escalate_to (a role)")
        if self.on_breach == "raise_priority" and self.raise_to is None:
            raise ValueError("on_breach: raise_priority needs raise_to (high or urgent)")
        if self.start == "promise_due" and self.step != "keep_promise":
            raise ValueError("start: promise_due only applies to keep_promise")
        if self.calendar is None and self.within is not None and self.within > LONGEST_WITHIN:
            raise LocatedError(
                [
                    (
                        ("within",),
                        f"within {format_duration(self.within)} is more than two years "
                        f"({format_duration(LONGEST_WITHIN)}): deadlines are set at most two "
                        "years ahead",
                    )
                ]
            )
        return self

    @property
    def key(self) -> tuple[str, str]:
        return (self.step, self.group or self.step)

    def describe_key(self) -> str:
        """``acknowledge``, or ``close (group final)``."""
        return self.step if self.group in (None, self.step) else f"{self.step} (group {self.group})"


class SlaRules(Strict):
    """``warn_at``: percentages of a target at which a warning fires;
    ``escalate_before_offer_when_breached``: a breached case must be escalated before a
    remedy is offered."""

    warn_at: list[StrictInt] = Field(default=[75])
    escalate_before_offer_when_breached: StrictBool = False
    targets: list[Target] = []

    @model_validator(mode="after")
    def _checks(self) -> SlaRules:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for index, percent in enumerate(self.warn_at):
            if not 0 < percent < 100:
                breach = " (the breach is at 100)" if percent == 100 else ""
                problems.append(
                    (("warn_at", index), f"{percent} is not a warning percentage: warn_at "
                                         f"takes whole numbers from 1 to 99{breach}")
                )  # fmt: skip
            elif percent in self.warn_at[:index]:
                # Warnings are recorded by percentage (``0:ack:warn80``): one listed twice
                # would be one warning recorded twice.
                problems.append((("warn_at", index), f"{percent} is listed twice"))
        if problems:
            raise LocatedError(problems)
        return self  # target ids are checked with the playbooks' (``Policy``)
