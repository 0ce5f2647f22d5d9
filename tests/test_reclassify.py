"""Who may move a case out of a complainant type whose playbook is stricter
(docs/decisions/0059-who-may-reclassify.md): ``playbooks.<type>.reclassify_roles``.

An offer is judged by the case's classification when it is made. ``classify`` was open
to any actor, so an agent could classify a ``rip-off`` case as ``meek`` and then offer
what the rip-off playbook would have denied or sent to a second person: the four-eyes
rule for such cases was lifted by one unreviewed step of the same agent."""

from __future__ import annotations

import pytest

from policies import Playbook, decide_reclassification
from policies.errors import PolicyFileError
from policies.loader import bundled_policy, parse_policy
from tests.policy_texts import BASE
from tests.test_engine_policy import POLICY_TEXT, apologised, new_engine, refund
from workflow import Actor, Engine, InvalidActor, PolicyViolation

#: POLICY_TEXT's playbooks, with two stricter ones: only a team lead may move a case out
#: of ``rip-off`` or ``high-roller``.
GUARDED = (
    POLICY_TEXT
    + """  rip-off:
    reclassify_roles: [team-lead]
  high-roller:
    always_needs_approval: true
    reclassify_roles: [team-lead]
"""
)


def _rip_off(text: str = GUARDED) -> tuple[Engine, str]:
    engine, _ = new_engine(parse_policy(text))
    cid = apologised(engine)
    engine.classify(cid, actor="agent:bob", complainant_type="rip-off")
    return engine, cid


def test_an_agent_cannot_lift_the_rip_off_playbook_by_reclassifying_the_case() -> None:
    """Regression: an agent classified a rip-off case as meek and offered a 45 EUR
    refund, which was open at once (within the agent's 50 EUR refund limit); as a
    rip-off case it is denied (the company normally gives 30 EUR), and 30 EUR would
    need a second person's approval."""
    engine, cid = _rip_off()
    before = engine.get(cid)
    with pytest.raises(PolicyViolation) as refused:
        engine.classify(cid, actor="agent:alice", complainant_type="meek")
    assert refused.value.decision.rule_ids == ("playbooks.rip-off.reclassify_roles",)
    assert str(refused.value) == (
        f"'classify' on case {cid} refused by the policy: denied: a rip-off case may be "
        "classified as another type only by team-lead; role 'agent' may not "
        "[playbooks.rip-off.reclassify_roles]"
    )
    assert engine.get(cid) == before  # nothing written
    with pytest.raises(PolicyViolation) as denied:
        engine.offer_remedy(cid, actor="agent:alice", options=[refund("45")])
    assert denied.value.decision.rule_ids == ("playbooks.rip-off.normal",)
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund("30")])
    assert case.state == "awaiting_approval"


def test_a_high_roller_case_keeps_its_approval_unless_a_named_role_reclassifies_it() -> None:
    """The same for a playbook that sends every offer to approval: an agent moving a
    high-roller case to ``unknown`` made a 10 EUR refund open at once."""
    engine, _ = new_engine(parse_policy(GUARDED))
    cid = engine.open_case(
        actor="agent:alice",
        customer={"id": "c-1", "name": "N"},
        channel="email",
        complainant_type="high-roller",
    ).id
    with pytest.raises(PolicyViolation) as refused:
        engine.classify(cid, actor="agent:alice", complainant_type="unknown")
    assert refused.value.decision.rule_ids == ("playbooks.high-roller.reclassify_roles",)
    assert engine.get(cid).version == 1
    engine.acknowledge(cid, actor="agent:alice")
    engine.listen(cid, actor="agent:alice", note="their account")
    engine.record(
        cid,
        actor="agent:alice",
        category="delivery",
        subject="s",
        contact="n@example.com",
        occurred_on="2026-11-01",
        details="d",
    )
    engine.apologise(cid, actor="agent:alice", message="sorry")
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund("10")])
    assert (case.state, case.offers[0].decision.rule_ids) == (
        "awaiting_approval",
        ("playbooks.high-roller.approval",),
    )


@pytest.mark.parametrize("lead", ["team-lead:sam", Actor(role="team-lead", id="sam")])
def test_a_role_the_playbook_names_may_reclassify_and_later_offers_follow_the_new_type(
    lead: Actor | str,
) -> None:
    engine, cid = _rip_off()
    case = engine.classify(cid, actor=lead, complainant_type="meek")
    assert case.complainant_type.value == "meek"
    assert engine.history(cid)[-1].actor == "team-lead:sam"
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund("45")])
    assert (case.state, case.offers[0].decision.rule_ids) == (
        "remedy_offered",
        ("limits.agent.refund", "caps.per_customer"),
    )


def test_the_role_is_the_actors_as_every_role_check_reads_it() -> None:
    """``agent:team-lead`` is an agent whose id is ``team-lead`` (the role is the text
    before the first colon, as for offers and approvals): it may not reclassify; a role
    the policy spells otherwise is not one of its roles either."""
    engine, cid = _rip_off()
    with pytest.raises(PolicyViolation, match="role 'agent' may not"):
        engine.classify(cid, actor="agent:team-lead", complainant_type="meek")
    with pytest.raises(PolicyViolation, match="role 'teamlead' may not"):
        engine.classify(cid, actor="teamlead:sam", complainant_type="meek")
    with pytest.raises(InvalidActor):  # roles are lower-case names, as the policy's
        engine.classify(cid, actor="Team-Lead:sam", complainant_type="meek")
    assert engine.get(cid).complainant_type.value == "rip-off"


def test_moving_a_case_into_a_type_or_keeping_it_there_is_anyones() -> None:
    engine, cid = _rip_off()  # an agent classified it rip-off
    assert engine.classify(cid, actor="agent:alice", complainant_type="rip-off").version == 7
    engine.classify(cid, actor="team-lead:sam", complainant_type="high-roller")
    with pytest.raises(PolicyViolation, match=r"playbooks\.high-roller\.reclassify_roles"):
        engine.classify(cid, actor="agent:alice", complainant_type="rip-off")
    case = engine.classify(cid, actor="team-lead:sam", complainant_type="aggressive")
    case = engine.classify(cid, actor="agent:alice", complainant_type="meek")  # no key there
    assert case.complainant_type.value == "meek"


def test_a_policy_without_the_key_lets_anyone_reclassify_as_before() -> None:
    """Without ``reclassify_roles`` the route is open, as it was: a company sets the
    key to close it (docs/policies.md)."""
    engine, cid = _rip_off(POLICY_TEXT + "  rip-off:\n    guidance: {offer_remedy: Normal.}\n")
    engine.classify(cid, actor="agent:alice", complainant_type="meek")
    case = engine.offer_remedy(cid, actor="agent:alice", options=[refund("45")])
    assert case.state == "remedy_offered"
    engine, cid = _rip_off(POLICY_TEXT)  # no rip-off playbook at all
    assert engine.classify(cid, actor="agent:alice", complainant_type="meek").version == 7


def test_an_empty_list_lets_no_one_move_a_case_out_and_several_roles_are_named() -> None:
    engine, cid = _rip_off(
        GUARDED.replace("reclassify_roles: [team-lead]", "reclassify_roles: []", 1)
    )
    with pytest.raises(PolicyViolation) as refused:
        engine.classify(cid, actor="team-lead:sam", complainant_type="meek")
    assert refused.value.decision.reasons == (
        "no role may classify a rip-off case as another type under this policy",
    )
    text = GUARDED.replace(
        "  team-lead: {", "  manager: {authority: 500.00}\n  team-lead: {"
    ).replace("reclassify_roles: [team-lead]", "reclassify_roles: [team-lead, manager]", 1)
    engine, cid = _rip_off(text)
    with pytest.raises(PolicyViolation) as refused:
        engine.classify(cid, actor="agent:alice", complainant_type="meek")
    assert refused.value.decision.reasons == (
        "a rip-off case may be classified as another type only by team-lead or manager; "
        "role 'agent' may not",
    )
    assert engine.classify(cid, actor="manager:max", complainant_type="meek").version == 7


def test_decide_reclassification_is_a_pure_decision_naming_the_key() -> None:
    policy = parse_policy(GUARDED)
    cases = [
        ("rip-off", "meek", "agent", "denied"),
        ("rip-off", "meek", "team-lead", "allowed"),
        ("rip-off", "rip-off", "agent", "allowed"),
        ("meek", "rip-off", "agent", "allowed"),
        ("aggressive", "meek", "agent", "allowed"),  # a playbook without the key
        ("chronic", "meek", "agent", "allowed"),  # no playbook
    ]
    for from_type, to_type, role, outcome in cases:
        decision = decide_reclassification(policy, from_type, to_type, role)
        assert decision.outcome.value == outcome, (from_type, to_type, role)
        assert decision.rule_ids == (f"playbooks.{from_type}.reclassify_roles",)


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(text)
    return [(p.location, p.message) for p in refused.value.problems]


#: BASE (roles: agent), a team lead, and a playbook; ``reclassify_roles`` on line 13.
ROLES = BASE + "  team-lead:\n    authority: 100.00\nplaybooks:\n  rip-off:\n"


def test_the_key_names_roles_the_policy_declares_located_where_written() -> None:
    assert _problems(ROLES + "    reclassify_roles: [team-laed]\n") == [
        (
            "playbooks.rip-off.reclassify_roles[0] (line 13)",
            "unknown role 'team-laed' (did you mean 'team-lead'?); the policy's roles are: "
            "agent, team-lead (a role that gives no compensation goes in escalation_roles)",
        )
    ]
    assert _problems(ROLES + "    reclassify_roles:\n      - team-lead\n      - team-lead\n") == [
        ("playbooks.rip-off.reclassify_roles[1] (line 15)", "'team-lead' is listed twice")
    ]
    ((where, message),) = _problems(ROLES + "    reclassify_roles: [Team Lead]\n")
    assert where == "playbooks.rip-off.reclassify_roles[0] (line 13)"
    assert "String should match pattern" in message
    ((where, message),) = _problems(ROLES + "    reclassify_roles: team-lead\n")
    assert (where, message) == (
        "playbooks.rip-off.reclassify_roles (line 13)",
        "Input should be a valid list",
    )


def test_a_team_that_gives_nothing_may_be_named_and_a_policy_without_roles_takes_any() -> None:
    text = ROLES.replace("playbooks:", "escalation_roles: [fraud]\nplaybooks:")
    policy = parse_policy(text + "    reclassify_roles: [fraud, team-lead]\n")
    assert policy.playbooks["rip-off"].reclassify_roles == ["fraud", "team-lead"]
    bare = 'name: Shop\nversion: "1"\ncurrency: EUR\nplaybooks:\n  rip-off:\n'
    policy = parse_policy(bare + "    reclassify_roles: [anyone]\n")
    assert policy.playbooks["rip-off"].reclassify_roles == ["anyone"]


def test_a_policy_without_the_key_keeps_its_stamp() -> None:
    """A new key, left out of the digest while it holds its default (decision 0049):
    the bundled retail policy has playbooks and keeps the stamp recorded on
    2026-12-07. Setting the key, even to an empty list, changes the stamp."""
    assert bundled_policy("retail").stamp == (
        "2026.1@sha256:dc2beb59c7d5e604df73ff1b2acae938371ff3753e5bcd298b14f25445a6ac77"
    )
    plain = parse_policy(ROLES + "    priority: high\n")
    stamps = {
        plain.stamp,
        parse_policy(ROLES + "    priority: high\n    reclassify_roles: []\n").stamp,
        parse_policy(ROLES + "    priority: high\n    reclassify_roles: [team-lead]\n").stamp,
    }
    assert len(stamps) == 3
    assert "reclassify_roles" in Playbook.model_fields


def test_histories_replay_and_verify_and_a_case_keeps_the_policy_it_runs_under() -> None:
    """Refusals write nothing, so histories replay and verify as before. A case opened
    under a policy without the key (where an agent reclassified it) is still read under
    that policy; moved to one with the key, the key holds."""
    old = parse_policy(POLICY_TEXT + "  rip-off:\n    guidance: {offer_remedy: Normal.}\n")
    engine, _ = new_engine(old)
    cid = apologised(engine)
    engine.classify(cid, actor="agent:bob", complainant_type="rip-off")
    engine.classify(cid, actor="agent:alice", complainant_type="meek")
    engine.classify(cid, actor="agent:bob", complainant_type="rip-off")
    new = parse_policy(GUARDED)
    upgraded = Engine(engine.store, policy=new, previous_policies=[old], clock=engine.clock)
    assert upgraded.replay(cid) == upgraded.get(cid)
    assert upgraded.verify() == []
    assert upgraded.classify(cid, actor="agent:alice", complainant_type="meek").version == 9
    upgraded.classify(cid, actor="agent:bob", complainant_type="rip-off")
    upgraded.migrate_policy(cid, actor="team-lead:sam", reason="reclassify rules")
    with pytest.raises(PolicyViolation, match=r"playbooks\.rip-off\.reclassify_roles"):
        upgraded.classify(cid, actor="agent:alice", complainant_type="meek")
    upgraded.classify(cid, actor="team-lead:sam", complainant_type="meek")
    assert upgraded.replay(cid) == upgraded.get(cid)
    assert upgraded.verify() == []
