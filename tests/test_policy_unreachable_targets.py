"""The check that refuses an SLA target that can never apply (decision 0042), held to the
engine's own choice of targets: a target is refused exactly when an earlier one in its
list, for the same step and group, is chosen for every case it would be chosen for.
Checked by trying every case of a small world on the targets as loaded."""

from __future__ import annotations

import itertools
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.errors import PolicyFileError
from policies.loader import parse_policy
from policies.sla import Conditions, Target

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
    """The targets first-match-wins never chooses, for any case of the world."""
    chosen = set()
    for case in _cases(kind):
        seen = set()
        for index, target in enumerate(targets):
            if target.key not in seen and target.when.match(*case):
                seen.add(target.key)
                chosen.add(index)
    return set(range(len(targets))) - chosen


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


@settings(max_examples=300, deadline=None)
@given(
    place=st.sampled_from(["sla", "meek", "aggressive"]),
    drawn=st.lists(TARGET, min_size=1, max_size=5),
)
def test_a_target_is_refused_exactly_when_an_earlier_one_covers_it(
    place: str, drawn: list[dict[str, Any]]
) -> None:
    targets = [{"id": f"t{i}", "within": "PT4H", **t} for i, t in enumerate(drawn)]
    kind = None if place == "sla" else place
    loaded = [Target.model_validate(t) for t in targets]
    refused = _refused(_policy(place, targets))
    assert refused == _covered_by_an_earlier_one(loaded, kind)
    assert refused <= _never_chosen(loaded, kind)  # a policy that works is never refused


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
