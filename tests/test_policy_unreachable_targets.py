"""The check that refuses an SLA target that can never apply (decisions 0042 and 0056),
held to the engine's own choice of targets (``Policy.sla_targets``): a target is refused
exactly when, for every case it would be chosen for, earlier ones in its list for the
same step and group (one of them, or several between them) are chosen instead. Checked by
trying every case of a small world on the targets as loaded."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policies.errors import PolicyFileError
from policies.loader import parse_policy
from policies.model import Playbook, Policy
from policies.sla import Conditions, SlaRules, Target

CHANNELS = ["email", "phone", "chat", "social", "sms", "web"]
PRIORITIES = ["low", "normal", "high", "urgent"]
TYPES = ["meek", "aggressive", "high-roller", "rip-off", "chronic", "unknown"]
TIERS = ["gold", "silver"]  # a customer's tier may be one no target names: "bronze"
CATEGORIES = ["late", "broken"]  # and a case may have no category
WORLD = {
    "channel": CHANNELS,
    "priority": PRIORITIES,
    "tier": [*TIERS, "bronze"],
    "complainant_type": TYPES,
    "category": [*CATEGORIES, None],
}


def _policy(place: str, targets: list[dict[str, Any]]) -> str:
    document: dict[str, Any] = {"name": "Shop", "version": "1", "currency": "EUR"}
    if place == "sla":
        document["sla"] = {"targets": targets}
    else:
        document["playbooks"] = {place: {"sla": targets}}
    return yaml.safe_dump(document, sort_keys=False)


def _refused(text: str) -> set[int]:
    """The indexes of the targets refused as never applying."""
    try:
        parse_policy(text)
    except PolicyFileError as error:
        problems = error.problems
    else:
        return set()
    assert all("can never apply" in p.message for p in problems), problems
    return {int(p.location.split("[")[1].split("]")[0]) for p in problems}


def _cases(kind: str | None) -> list[tuple[Any, ...]]:
    """Every case of the world (a playbook's list is only tried for its own type)."""
    world = dict(WORLD, complainant_type=[kind] if kind else TYPES)
    return list(itertools.product(*world.values()))


def _covered_by_an_earlier_one(targets: list[Target], kind: str | None) -> set[int]:
    """The targets that match some case, every one of which an earlier target of the
    same step and group also matches: tried on every case of the world."""
    cases = _cases(kind)
    covered = set()
    for j, later in enumerate(targets):
        theirs = [c for c in cases if later.when.match(*c)]
        if theirs and any(
            earlier.key == later.key and all(earlier.when.match(*c) for c in theirs)
            for earlier in targets[:j]
        ):
            covered.add(j)
    return covered


def _never_chosen(targets: list[Target], kind: str | None) -> set[int]:
    """The targets the engine never chooses (``Policy.sla_targets``, first match wins),
    for any case of the world: asked of the policy built without its checks."""
    sla = SlaRules.model_construct(targets=[] if kind else targets)
    playbooks = {kind: Playbook.model_construct(sla=targets)} if kind else {}
    policy = Policy.model_construct(sla=sla, playbooks=playbooks)
    index = {target.id: i for i, target in enumerate(targets)}
    chosen = {index[t.id] for case in _cases(kind) for t in policy.sla_targets(*case)}
    return set(range(len(targets))) - chosen


def _matching_some_case(targets: list[Target], kind: str | None) -> set[int]:
    """The targets whose conditions hold for some case of the world (in a playbook's
    list, one naming only other complainant types holds for none: no finding)."""
    cases = _cases(kind)
    return {i for i, target in enumerate(targets) if any(target.when.match(*c) for c in cases)}


def _values(pool: list[str]) -> st.SearchStrategy[list[str]]:
    """A condition's list: none, every value, or some."""
    return st.one_of(st.just([]), st.just(list(pool)), st.lists(st.sampled_from(pool), unique=True))


WHEN = st.fixed_dictionaries(
    {},
    optional={
        "channel": _values(CHANNELS),
        "priority": _values(PRIORITIES),
        "tier": _values(TIERS),
        "complainant_type": _values(TYPES),
        "category": _values(CATEGORIES),
    },
)
TARGET = st.fixed_dictionaries(
    {"step": st.sampled_from(["acknowledge", "close"]), "when": WHEN},
    optional={"group": st.sampled_from(["summary", "final"])},
)


@settings(max_examples=400, deadline=None)
@given(
    place=st.sampled_from(["sla", "meek", "aggressive"]),
    drawn=st.lists(TARGET, min_size=1, max_size=6),
)
@example(  # two earlier targets between them cover the third (regression)
    place="sla",
    drawn=[
        {"step": "close", "when": {"priority": ["low", "normal"]}},
        {"step": "close", "when": {"priority": ["high", "urgent"], "tier": []}},
        {"step": "close", "when": {"tier": ["gold"]}},
    ],
)
def test_a_target_is_refused_exactly_when_the_engine_never_chooses_it(
    place: str, drawn: list[dict[str, Any]]
) -> None:
    targets = [{"id": f"t{i}", "within": "PT4H", **t} for i, t in enumerate(drawn)]
    kind = None if place == "sla" else place
    loaded = [Target.model_validate(t) for t in targets]
    refused = _refused(_policy(place, targets))
    assert refused == _never_chosen(loaded, kind) & _matching_some_case(loaded, kind)
    assert refused >= _covered_by_an_earlier_one(loaded, kind)


def test_a_list_of_every_channel_covers_a_target_without_one() -> None:
    """``channel: [all six]`` holds for every case, as no ``channel`` does: a target
    for the step after it can never apply."""
    every = {"channel": CHANNELS}
    text = _policy("sla", [
        {"id": "ack-any", "step": "acknowledge", "within": "PT4H", "when": every},
        {"id": "ack", "step": "acknowledge", "within": "PT24H"},
    ])  # fmt: skip
    assert _refused(text) == {1}


def test_in_a_playbook_its_own_complainant_type_covers_every_case() -> None:
    """A playbook's targets are tried only for its complainant type: there
    ``complainant_type: [meek]`` holds for every case the list sees."""
    text = _policy("meek", [
        {"id": "m1", "step": "listen", "within": "PT1H", "when": {"complainant_type": ["meek"]}},
        {"id": "m2", "step": "listen", "within": "PT2H", "when": {"channel": ["chat"]}},
    ])  # fmt: skip
    assert _refused(text) == {1}


def test_conditions_cover_their_own_cases_only() -> None:
    """``covers`` is a statement about cases: an earlier target naming two channels
    does not cover a later one with none."""
    assert not Conditions(channel=["email", "chat"]).covers(Conditions())
    assert Conditions().covers(Conditions(channel=["email"]))


def test_targets_that_between_them_cover_a_later_one_make_it_unreachable() -> None:
    """Regression: only one earlier target was compared at a time, so a target that two
    earlier ones covered between them loaded, and never applied."""
    text = _policy("sla", [
        {"id": "ack-email-chat", "step": "acknowledge", "within": "PT1H",
         "when": {"channel": ["email", "chat"]}},
        {"id": "ack-rest", "step": "acknowledge", "within": "PT4H",
         "when": {"channel": ["phone", "social", "sms", "web"]}},
        {"id": "ack", "step": "acknowledge", "within": "PT24H"},
    ])  # fmt: skip
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(text)
    assert [(p.location, p.message) for p in refused.value.problems] == [
        (
            "sla.targets[2] (line 22)",
            "can never apply: sla.targets[0] (ack-email-chat) and sla.targets[1] (ack-rest) "
            "come first for acknowledge and between them apply to every case this target "
            "(ack) would (the first target that applies wins): put the narrower target "
            "first, or remove one",
        )
    ]


def test_a_target_on_several_conditions_is_unreachable_behind_two_that_split_one() -> None:
    """Gold customers' targets split by priority cover a gold target for one category;
    they do not cover one for every tier (a customer may be of another tier)."""
    split = [
        {"id": "gold-fast", "step": "close", "within": "P1D",
         "when": {"tier": ["gold"], "priority": ["high", "urgent"]}},
        {"id": "gold-slow", "step": "close", "within": "P3D",
         "when": {"tier": ["gold"], "priority": ["low", "normal"]}},
    ]  # fmt: skip
    late = {"tier": ["gold"], "category": ["late"], "channel": ["web"]}
    assert _refused(_policy("sla", [*split, {"id": "gl", "step": "close", "within": "P2D",
                                             "when": late}])) == {2}  # fmt: skip
    anyone = {"category": ["late"]}
    assert _refused(_policy("sla", [*split, {"id": "l", "step": "close", "within": "P2D",
                                             "when": anyone}])) == set()  # fmt: skip


def test_the_same_conditions_written_in_another_order_are_one_target_twice() -> None:
    """A target for the same step, tier, category and priority as an earlier one, its
    conditions in another order, is the earlier one again."""
    first = {"tier": ["gold"], "category": ["late"], "priority": ["high"]}
    again = {"priority": ["high"], "category": ["late"], "tier": ["gold"]}
    text = _policy("meek", [
        {"id": "a", "step": "close", "within": "P1D", "when": first},
        {"id": "b", "step": "close", "within": "P2D", "when": again},
    ])  # fmt: skip
    assert _refused(text) == {1}


def test_many_targets_between_them_are_named_four_at_most() -> None:
    targets = [
        {"id": f"ack-{channel}", "step": "acknowledge", "within": "PT1H",
         "when": {"channel": [channel]}}
        for channel in CHANNELS
    ] + [{"id": "ack", "step": "acknowledge", "within": "PT24H"}]  # fmt: skip
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(_policy("sla", targets))
    (problem,) = refused.value.problems
    assert problem.message.startswith(
        "can never apply: sla.targets[0] (ack-email), sla.targets[1] (ack-phone), "
        "sla.targets[2] (ack-chat) and 3 more come first for acknowledge and between them "
        "apply to every case this target (ack) would"
    )
