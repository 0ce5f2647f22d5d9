"""The policy file's schema: one pydantic model, unknown keys refused.

See docs/policies.md for every key. Amounts are plain decimals in the policy's
``currency`` (``"40.00"`` or ``40.00``, never a binary float).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from policies.calendar import WorkingCalendar
from policies.money import currency_code, minor_units
from policies.remedy import BUILTIN_REMEDY_KINDS, MONETARY_REMEDY_KINDS, Remedy
from policies.sla import SlaRules, Target
from policies.types import (
    Amount,
    Duration,
    LocatedError,
    Multiplier,
    Name,
    Strict,
    _version_text,
)

#: The complainant types a playbook can be written for (``workflow.ComplainantType``).
COMPLAINANT_TYPES = ("meek", "aggressive", "high-roller", "rip-off", "chronic", "unknown")
#: The steps guidance can be written for (``workflow.STEP_NAMES``).
STEPS = (
    "acknowledge", "listen", "record", "apologise", "offer_remedy", "approve_offer",
    "refuse_offer", "accept_remedy", "decline_remedy", "keep_promise", "request_feedback",
    "close", "escalate", "resume", "reopen", "withdraw", "add_note", "assign", "classify",
    "pause_sla", "resume_sla", "record_feedback", "migrate_policy", "sla_warning",
    "sla_breached", "erase_personal_data",
)  # fmt: skip
PRIORITIES = ("low", "normal", "high", "urgent")


class RoleRules(Strict):
    """What one role may give on its own. ``authority``: the most for one option of a
    money-valued remedy; ``limits``: per remedy kind, instead of ``authority``."""

    authority: Amount = Decimal(0)
    limits: dict[Name, Amount] = {}


class Adjustments(Strict):
    """Multipliers on every limit, by customer tier and by category (``vip: 2``)."""

    tiers: dict[Name, Multiplier] = {}
    categories: dict[Name, Multiplier] = {}


class CustomerCap(Strict):
    """At most ``amount`` paid to one customer over the rolling ``period``, across all
    of that customer's cases."""

    amount: Amount
    period: Duration

    @field_validator("period")
    @classmethod
    def _some_time(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(
                "a cap's period must be longer than zero (over no time at all, nothing "
                "paid would ever count): write e.g. P365D"
            )
        return value


class Caps(Strict):
    per_customer: CustomerCap | None = None


class RemedyKindRules(Strict):
    """A company-defined remedy kind. ``monetary``: its options must name an amount."""

    monetary: StrictBool = False
    description: str = ""


class Playbook(Strict):
    """How to handle one complainant type: guidance per step, a priority to set when a
    case is classified so (or opened so, no priority given), whether every offer needs
    approval, and who may classify a case of this type as another."""

    guidance: dict[str, str] = {}
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    always_needs_approval: StrictBool = False
    #: SLA targets for this complainant type, tried before the policy's own.
    sla: list[Target] = []
    #: The roles that may ``classify`` a case of this type as another type (an offer is
    #: judged by the type the case has when it is made); None: any role, as before.
    reclassify_roles: list[Name] | None = None

    @field_validator("guidance")
    @classmethod
    def _known_steps(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STEPS))
        if unknown:
            raise ValueError(f"guidance for unknown steps {unknown}; steps are {list(STEPS)}")
        return value


class FeedbackRules(Strict):
    """``required_before_close``: a case may only close after feedback was requested."""

    required_before_close: StrictBool = True


class ReopenRules(Strict):
    """``window``: how long after closing a case may be reopened (ISO 8601, e.g. ``P30D``)."""

    window: Duration = timedelta(days=30)


class OfferRules(Strict):
    """``max_per_case``: at most this many offers per case (declined ones count)."""

    max_per_case: StrictInt | None = Field(default=None, ge=1)


class Retention(Strict):
    """How long case records are kept after closing, in years."""

    years: StrictInt = Field(default=6, ge=1, le=100)


#: A customer's tier when none is given (``workflow.domain.Customer``).
DEFAULT_TIER = "standard"
#: Keys added after stamps were first recorded (2026-12-07), left out of the digest while
#: they hold their default, None: see ``Policy.digest``. A key added later goes here too,
#: with a default that keeps what policies without it meant.
_UNSTAMPED_DEFAULTS: tuple[str, ...] = ("tiers", "escalation_roles")
#: The same for keys added to each playbook (``playbooks.<type>.<key>``).
_UNSTAMPED_PLAYBOOK_DEFAULTS: tuple[str, ...] = ("reclassify_roles",)


def _declared_once(
    key: str, names: list[str], problems: list[tuple[tuple[str | int, ...], str]]
) -> set[str]:
    """The names a declaring list (``categories``, ``tiers``) holds; each name listed
    again is a problem at its place."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append(((key, index), f"{name!r} is listed twice"))
        seen.add(name)
    return seen


class Policy(Strict):
    """A loaded, validated policy. ``version`` is declared by its author; ``digest`` is the
    SHA-256 of its content, so two policies with one version but other rules differ."""

    name: str = Field(min_length=1, max_length=200)
    version: Annotated[str, BeforeValidator(_version_text)] = Field(min_length=1, max_length=100)
    currency: str
    categories: list[Name] | None = None
    tiers: list[Name] | None = None
    roles: dict[Name, RoleRules] = {}
    #: Roles a case may be escalated to that give no compensation (not in ``roles``).
    escalation_roles: list[Name] | None = None
    remedy_kinds: dict[Name, RemedyKindRules] = {}
    adjustments: Adjustments = Adjustments()
    caps: Caps = Caps()
    offers: OfferRules = OfferRules()
    normal_remedies: dict[Name, dict[Name, Amount]] = {}
    playbooks: dict[Literal[COMPLAINANT_TYPES], Playbook] = {}  # type: ignore[valid-type]
    feedback: FeedbackRules = FeedbackRules()
    reopen: ReopenRules = ReopenRules()
    retention: Retention = Retention()
    calendars: dict[Name, WorkingCalendar] = {}
    sla: SlaRules = SlaRules()

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        return currency_code(value)  # ``eur`` is EUR, as in amounts

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for kind in sorted(set(self.remedy_kinds) & set(BUILTIN_REMEDY_KINDS)):
            problems.append((("remedy_kinds", kind), f"{kind!r} is a built-in remedy kind"))
        known = self.remedy_kind_names
        places = minor_units(self.currency)

        def amount(loc: tuple[str | int, ...], value: Decimal) -> None:
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and -exponent > places:
                problems.append(
                    (loc, f"{value} has more decimals than {self.currency} allows ({places})")
                )

        def kind_known(loc: tuple[str | int, ...], kind: str) -> None:
            if kind not in known:
                problems.append(
                    (loc, f"unknown remedy kind {kind!r}; known kinds are {sorted(known)}")
                )

        for role, rules in self.roles.items():
            amount(("roles", role, "authority"), rules.authority)
            for kind, value in rules.limits.items():
                kind_known(("roles", role, "limits", kind), kind)
                amount(("roles", role, "limits", kind), value)
        for category, kinds in self.normal_remedies.items():
            for kind, value in kinds.items():
                kind_known(("normal_remedies", category, kind), kind)
                amount(("normal_remedies", category, kind), value)
        cap = self.caps.per_customer
        if cap is not None:
            amount(("caps", "per_customer", "amount"), cap.amount)
            kept = timedelta(days=365 * self.retention.years)  # a calendar year is no shorter
            if cap.period > kept:
                problems.append(
                    (
                        ("caps", "per_customer", "period"),
                        f"the cap counts payments over {cap.period.days} days, longer than "
                        f"closed cases are kept (retention.years: {self.retention.years}): "
                        "payments on purged cases would drop out of the cap; shorten the "
                        "period or keep records longer",
                    )
                )
        if self.categories is not None:
            seen = _declared_once("categories", self.categories, problems)
            for section, names in (
                (("adjustments", "categories"), self.adjustments.categories),
                (("normal_remedies",), self.normal_remedies),
            ):
                for name in names:
                    if name not in seen:
                        problems.append(((*section, name), self.not_a_category(name)))
        if self.tiers is not None:
            listed_tiers = _declared_once("tiers", self.tiers, problems)
            if DEFAULT_TIER not in listed_tiers:
                problems.append(
                    (("tiers",), f"{DEFAULT_TIER!r} (a customer's tier when none is given) "
                                 "is not listed")
                )  # fmt: skip
            for tier in self.adjustments.tiers:
                if tier not in listed_tiers:
                    problems.append((("adjustments", "tiers", tier), self.not_a_tier(tier)))
        if self.escalation_roles is not None:
            _declared_once("escalation_roles", self.escalation_roles, problems)
        for kind, playbook in self.playbooks.items():
            if playbook.reclassify_roles is None:
                continue
            place = ("playbooks", kind, "reclassify_roles")
            seen_roles: set[str] = set()
            for index, role in enumerate(playbook.reclassify_roles):
                if role in seen_roles:
                    problems.append(((*place, index), f"{role!r} is listed twice"))
                seen_roles.add(role)
                unknown = self.not_a_role(role)
                if unknown is not None:  # a fraud team that gives nothing may clear a flag
                    hint = " (a role that gives no compensation goes in escalation_roles)"
                    problems.append(((*place, index), unknown + hint))
        targets: list[tuple[tuple[str | int, ...], Target]] = [
            (("sla", "targets", i), t) for i, t in enumerate(self.sla.targets)
        ]
        for kind, playbook in self.playbooks.items():
            targets += [(("playbooks", kind, "sla", i), t) for i, t in enumerate(playbook.sla)]
        first: dict[str, tuple[tuple[str | int, ...], Target]] = {}
        listed: dict[tuple[tuple[str | int, ...], str], tuple[str | int, ...]] = {}
        earlier: dict[tuple[str | int, ...], list[tuple[tuple[str | int, ...], Target]]] = {}
        for loc, target in targets:
            # First match wins in each list: a target after ones for the same step and
            # group that hold for every case it would hold for can never apply.
            before = earlier.setdefault(loc[:-1], [])
            # A playbook's list is tried only for its complainant type.
            only = str(loc[1]) if loc[0] == "playbooks" else None
            same = [(where, other) for where, other in before if other.key == target.key]
            unreachable = _never_applies(target, same, only)
            if unreachable is not None:
                problems.append((loc, unreachable))
            before.append((loc, target))
            for field, declared, refusal in (
                ("tier", self.tiers, self.not_a_tier),
                ("category", self.categories, self.not_a_category),
            ):
                for index, name in enumerate(getattr(target.when, field)):
                    if declared is not None and name not in declared:
                        problems.append(((*loc, "when", field, index), refusal(name)))
            if target.escalate_to is not None:
                unknown = self.not_a_role(target.escalate_to)
                if unknown is not None:
                    hint = " (a role that gives no compensation goes in escalation_roles)"
                    problems.append(((*loc, "escalate_to"), unknown + hint))
            if target.calendar is not None and target.calendar not in self.calendars:
                problems.append(
                    ((*loc, "calendar"), f"no calendar {target.calendar!r} in calendars")
                )
            elif target.calendar is not None:
                calendar = self.calendars[target.calendar]
                too_long = calendar.too_long(target.within, target.business_days)
                if too_long is not None:
                    problems.append(((*loc, "within" if target.within else "business_days"),
                                     f"{too_long} on calendar {target.calendar!r}"))  # fmt: skip
            # Fired warnings and breaches are keyed by target id: an id names one
            # (step, group) in the whole policy (decision 0017).
            here = (loc[:-1], target.id)
            if here in listed:
                problems.append(
                    (
                        (*loc, "id"),
                        f"target id {target.id!r} is already used by "
                        f"{_target_place(listed[here])}; ids are unique in sla.targets and "
                        "in each playbook's sla",
                    )
                )
                continue
            listed[here] = loc
            where, other = first.setdefault(target.id, (loc, target))
            if other.key != target.key:
                problems.append(
                    (
                        (*loc, "id"),
                        f"target id {target.id!r} is already used by {_target_place(where)} "
                        f"for {other.describe_key()}; an id names one step (and group) in the "
                        "whole policy, since warnings and breaches are recorded by id: choose "
                        "another id, or keep that step and group to override the target",
                    )
                )
        if problems:
            raise LocatedError(problems)
        return self

    # Computed once and kept in the instance's __dict__ (cached_property): the engine
    # reads ``stamp`` on every step, and pydantic private attributes are slow to read.
    @cached_property
    def digest(self) -> str:
        """``sha256:<hex>`` over the policy's canonical JSON. A key added to policies
        after their stamps were first recorded is left out while it holds its default
        (``_UNSTAMPED_DEFAULTS``; in each playbook, ``_UNSTAMPED_PLAYBOOK_DEFAULTS``): a
        policy that does not use it keeps its stamp, and the cases recorded under it
        their policy."""
        content = self.model_dump(mode="json")
        for key in _UNSTAMPED_DEFAULTS:
            if content[key] is None:
                del content[key]
        for playbook in content["playbooks"].values():
            for key in _UNSTAMPED_PLAYBOOK_DEFAULTS:
                if playbook[key] is None:
                    del playbook[key]
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @cached_property
    def stamp(self) -> str:
        """What every event records: ``<declared version>@<digest>`` (one shared string)."""
        return f"{self.version}@{self.digest}"

    @cached_property
    def sla_target_keys(self) -> Mapping[str, tuple[str, str]]:
        """The ``(step, group)`` each SLA target id names, in the policy's own targets and
        every playbook's (an id names one throughout the policy)."""
        every = [*self.sla.targets, *(t for p in self.playbooks.values() for t in p.sla)]
        return {target.id: target.key for target in every}

    def not_a_tier(self, tier: str) -> str:
        """Why ``tier`` is refused by a policy that declares its tiers."""
        return f"{tier!r} is not one of the policy's tiers: {', '.join(self.tiers or ())}"

    @cached_property
    def known_roles(self) -> tuple[str, ...] | None:
        """The roles a case may be escalated to: ``roles`` then ``escalation_roles``;
        None when the policy declares neither (any role, then)."""
        if not self.roles and self.escalation_roles is None:
            return None
        extra = [r for r in self.escalation_roles or () if r not in self.roles]
        return (*self.roles, *dict.fromkeys(extra))

    def not_a_role(self, role: str) -> str | None:
        """Why a case cannot be escalated to ``role`` under this policy, or None: a
        policy that declares its roles knows only those."""
        known = self.known_roles
        if known is None or role in known:
            return None
        close = difflib.get_close_matches(role, known, n=1)
        mean = f" (did you mean {close[0]!r}?)" if close else ""
        listed = ", ".join(known) or "none"
        return f"unknown role {role!r}{mean}; the policy's roles are: {listed}"

    @staticmethod
    def not_a_category(category: str) -> str:
        """Why a policy that declares its categories refuses ``category`` where it names
        one."""
        return f"{category!r} is not one of the policy's categories"

    @cached_property
    def remedy_kind_names(self) -> frozenset[str]:
        """Built-in and company-defined remedy kinds."""
        return frozenset(BUILTIN_REMEDY_KINDS) | frozenset(self.remedy_kinds)

    def is_monetary(self, kind: str) -> bool:
        rules = self.remedy_kinds.get(kind)
        return rules.monetary if rules is not None else kind in MONETARY_REMEDY_KINDS

    def check_remedy(self, remedy: Remedy) -> str | None:
        """What is wrong with ``remedy`` under this policy, or None."""
        if remedy.kind not in self.remedy_kind_names:
            return (
                f"unknown remedy kind {remedy.kind!r}; this policy knows "
                f"{', '.join(sorted(self.remedy_kind_names))}"
            )
        if self.is_monetary(remedy.kind) and remedy.amount is None:
            return f"a {remedy.kind} remedy needs an amount"
        if remedy.amount is not None and remedy.amount.currency != self.currency:
            return f"{remedy.amount.currency} given; the policy's currency is {self.currency}"
        return None

    def playbook(self, complainant_type: str) -> Playbook | None:
        return self.playbooks.get(complainant_type)

    def sla_targets(
        self, channel: str, priority: str, tier: str, complainant_type: str, category: str | None
    ) -> list[Target]:
        """The targets that apply to a case like this: for each (step, group), the first
        matching one, the complainant type's playbook targets tried first."""
        playbook = self.playbooks.get(complainant_type)
        candidates = [*(playbook.sla if playbook else ()), *self.sla.targets]
        chosen: dict[tuple[str, str], Target] = {}
        for target in candidates:
            if target.key not in chosen and target.when.match(
                channel, priority, tier, complainant_type, category
            ):
                chosen[target.key] = target
        return list(chosen.values())


def _never_applies(
    target: Target, same: list[tuple[tuple[str | int, ...], Target]], only: str | None
) -> str | None:
    """Why ``target`` can never apply behind ``same`` (the targets before it in its list
    for its step and group, with their places), or None: one of them holds for every case
    it would hold for, or several do between them (``channel: [email, chat]``, then the
    other four channels, then a target without conditions). ``only``: the complainant
    type of a playbook's list (``Conditions.covers``)."""
    alone = next((p for p in same if p[1].when.covers(target.when, complainant_type=only)), None)
    if alone is not None:
        firsts = f"{_target_place(alone[0])} ({alone[1].id}) comes first"
        applies = "applies"
    else:
        taken = target.when.taken_by([t.when for _, t in same], complainant_type=only)
        if taken is None:
            return None
        named = [f"{_target_place(same[i][0])} ({same[i][1].id})" for i in taken]
        if len(named) > _LISTED_TARGETS:
            more = len(named) - _LISTED_TARGETS + 1
            named = [*named[: _LISTED_TARGETS - 1], f"{more} more"]
        firsts = f"{', '.join(named[:-1])} and {named[-1]} come first"
        applies = "between them apply"
    return (
        f"can never apply: {firsts} for {target.describe_key()} and {applies} to every case "
        f"this target ({target.id}) would (the first target that applies wins): put the "
        "narrower target first, or remove one"
    )


#: How many earlier targets a "can never apply" names (the rest are counted).
_LISTED_TARGETS = 4


def _target_place(loc: tuple[str | int, ...]) -> str:
    """``("playbooks", "meek", "sla", 0)`` as ``playbooks.meek.sla[0]``."""
    *names, index = loc
    return f"{'.'.join(str(n) for n in names)}[{index}]"


def default_policy() -> Policy:
    """A permissive policy: no compensation limits, feedback required before closing,
    reopening within 30 days."""
    return Policy(name="complaintflow default", version="1", currency="EUR")
