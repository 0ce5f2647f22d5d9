"""SLA guards through the engine: deadlines as data, tick, pauses, reopen, workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from adapters.memory import CLAIM_LEASE, MemoryStore
from policies.errors import PolicyFileError
from policies.loader import parse_policy
from policies.model import Policy
from tests.stores import STORE_KINDS, each_store
from workflow import Case, Engine, ManualClock, StepNotAllowed, StoreUnavailable, audit
from workflow.replay import replay
from workflow.store import Store

HEL = ZoneInfo("Europe/Helsinki")
POLICY = parse_policy(
    """
name: SLA shop
version: "1"
currency: EUR
calendars:
  office:
    timezone: Europe/Helsinki
    country: FI
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
            thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
sla:
  warn_at: [75]
  escalate_before_offer_when_breached: true
  targets:
    - {id: ack-social, step: acknowledge, within: PT1H, when: {channel: [social]},
       on_breach: escalate, escalate_to: team-lead}
    - {id: ack-chat, step: acknowledge, within: PT10M, when: {channel: [chat, phone]},
       on_breach: raise_priority, raise_to: urgent}
    - {id: ack-email, step: acknowledge, within: PT24H}
    - {id: listen-fast, step: listen, within: PT4H, start: previous_step, calendar: office}
    - {id: remedy-agreed, step: accept_remedy, business_days: 2, calendar: office}
"""
)
# Monday 9 November 2026, 10:00 in Helsinki.
START = datetime(2026, 11, 9, 10, 0, tzinfo=HEL).astimezone(UTC)


def make(store: MemoryStore | None = None) -> tuple[Engine, ManualClock, MemoryStore]:
    store = store or MemoryStore()
    clock = ManualClock(START)
    return Engine(store, policy=POLICY, clock=clock), clock, store


def open_on(engine: Engine, channel: str) -> str:
    return engine.open_case(
        actor="system:inbox", customer={"id": "c", "name": "N"}, channel=channel, subject="s"
    ).id


def types(engine: Engine, cid: str) -> list[str]:
    return [e.type for e in engine.history(cid)]


def test_targets_are_chosen_by_channel_first_match_wins() -> None:
    engine, _, store = make()
    social, email = open_on(engine, "social"), open_on(engine, "email")
    assert {d.target for d in store.pending_deadlines(social)} == {"ack-social", "remedy-agreed"}
    assert {d.target for d in store.pending_deadlines(email)} == {"ack-email", "remedy-agreed"}
    ack = [d for d in store.pending_deadlines(social) if d.target == "ack-social"]
    assert [(d.kind, d.due_at - START) for d in ack] == [
        ("warn", timedelta(minutes=45)),
        ("breach", timedelta(hours=1)),
    ]


def test_tick_fires_the_warning_then_the_breach_exactly_once_and_escalates() -> None:
    engine, clock, _ = make()
    cid = open_on(engine, "social")
    assert engine.tick() == []
    clock.advance(minutes=45)
    assert [e.type for e in engine.tick()] == ["sla_warning"]
    assert engine.tick() == []
    clock.advance(minutes=15)
    fired = engine.tick()
    assert [e.type for e in fired] == ["sla_breached", "escalate"]
    assert fired[1].data["to_role"] == "team-lead"
    assert engine.tick() == []
    case = engine.get(cid)
    assert (case.state, case.first_breach_at) == ("escalated", clock.now())
    assert engine.replay(cid) == case


def test_closing_or_withdrawing_records_every_breach_the_sweeper_has_not_seen() -> None:
    # The acknowledgement was due after 24 hours; nobody ticked; the customer withdraws
    # after 25. The breach happened and must be in the history, though the case's
    # clocks stop with it.
    engine, clock, store = make()
    cid = open_on(engine, "email")
    clock.advance(hours=25)
    case = engine.withdraw(cid, actor="customer:c", reason="sorted it myself")
    assert types(engine, cid) == ["open", "sla_warning", "sla_breached", "withdraw"]
    assert engine.history(cid)[2].data["target"] == "ack-email"
    assert case.first_breach_at == clock.now()
    assert store.pending_deadlines(cid) == []
    assert engine.tick(clock.now() + timedelta(days=30)) == []
    assert engine.replay(cid) == case


def test_a_breach_can_raise_the_priority() -> None:
    engine, clock, _ = make()
    cid = open_on(engine, "chat")
    clock.advance(minutes=11)
    engine.tick()
    assert engine.get(cid).priority.value == "urgent"


def test_a_step_breaches_once_even_when_the_breach_makes_a_tighter_target_apply() -> None:
    # Raising the priority makes the urgent target (5 minutes, already passed) the one
    # that applies to acknowledge; the step has breached already and must not again.
    tighter = parse_policy(
        """
name: SLA shop
version: "2"
currency: EUR
sla:
  warn_at: [75]
  targets:
    - {id: ack-urgent, step: acknowledge, within: PT5M, when: {priority: [urgent]}}
    - {id: ack-chat, step: acknowledge, within: PT10M, when: {channel: [chat]},
       on_breach: raise_priority, raise_to: urgent}
"""
    )
    engine, clock, store = make()
    engine = Engine(store, policy=tighter, clock=clock)
    cid = open_on(engine, "chat")
    clock.advance(minutes=11)
    fired = engine.tick()
    assert [(e.type, e.data["target"]) for e in fired] == [
        ("sla_warning", "ack-chat"),
        ("sla_breached", "ack-chat"),
    ]
    assert engine.get(cid).priority.value == "urgent"
    assert store.pending_deadlines(cid) == []
    clock.advance(minutes=30)
    assert engine.tick() == []
    engine.acknowledge(cid, actor="agent:a")
    breaches = [e.data["target"] for e in engine.history(cid) if e.type == "sla_breached"]
    assert breaches == ["ack-chat"]
    assert engine.replay(cid) == engine.get(cid)


def test_a_step_after_its_deadline_is_accepted_and_records_the_breach() -> None:
    engine, clock, _ = make()
    cid = open_on(engine, "email")
    clock.advance(hours=25)
    case = engine.acknowledge(cid, actor="agent:a")
    assert case.state == "acknowledged"
    assert types(engine, cid) == ["open", "sla_warning", "sla_breached", "acknowledge"]
    assert engine.history(cid)[2].data["late_step"] is True
    status = {s.target: s for s in engine.sla_status(cid)}["ack-email"]
    assert (status.breached, status.achieved, status.done_at) == (True, False, clock.now())


def test_a_step_in_time_achieves_its_target_and_cancels_its_deadlines() -> None:
    engine, clock, store = make()
    cid = open_on(engine, "email")
    clock.advance(hours=1)
    engine.acknowledge(cid, actor="agent:a")
    assert "ack-email" not in {d.target for d in store.pending_deadlines(cid)}
    status = {s.target: s for s in engine.sla_status(cid)}["ack-email"]
    assert (status.achieved, status.breached, status.elapsed) == (True, False, timedelta(hours=1))


def test_a_step_taken_exactly_at_its_due_time_is_late_in_the_history_and_in_status() -> None:
    """Regression: the sweeper and a late step treat the due time as the breach (due_at
    <= now), but status called a step taken at that instant achieved, and breached too."""
    engine, clock, _ = make()
    cid = open_on(engine, "social")
    clock.advance(hours=1)
    engine.acknowledge(cid, actor="agent:a")
    assert types(engine, cid) == ["open", "sla_warning", "sla_breached", "acknowledge"]
    status = {s.target: s for s in engine.sla_status(cid)}["ack-social"]
    assert (status.breached, status.achieved) == (True, False)


def test_status_at_the_due_time_of_a_running_target_shows_it_breached() -> None:
    engine, _, _ = make()
    cid = open_on(engine, "social")
    at_due = START + timedelta(hours=1)
    status = {s.target: s for s in engine.sla_status(cid, at_due)}["ack-social"]
    assert (status.remaining, status.breached) == (timedelta(0), True)
    before = {s.target: s for s in engine.sla_status(cid, at_due - timedelta(seconds=1))}
    assert before["ack-social"].breached is False


def test_a_step_taken_late_still_shows_as_breached_while_the_clock_is_paused() -> None:
    """Regression: while paused, status dropped every due time, and a step taken late
    showed as achieved."""
    engine, clock, _ = make()
    cid = open_on(engine, "email")
    clock.advance(hours=25)
    engine.acknowledge(cid, actor="agent:a")
    engine.pause_sla(cid, actor="agent:a", reason="waiting")
    status = {s.target: s for s in engine.sla_status(cid)}["ack-email"]
    assert (status.achieved, status.breached) == (False, True)
    assert status.due_at == START + timedelta(hours=24)


def test_status_while_paused_shows_the_time_left_on_the_stopped_clock() -> None:
    """Regression: while paused, remaining time was None; it is what is left when the
    clock stopped, and it stays so however long the pause."""
    engine, clock, _ = make()
    cid = open_on(engine, "email")  # Monday 10:00 in Helsinki
    clock.advance(hours=2)
    engine.pause_sla(cid, actor="agent:a", reason="waiting")
    for later in (timedelta(hours=1), timedelta(days=4)):
        rows = {s.target: s for s in engine.sla_status(cid, clock.now() + later)}
        ack, remedy = rows["ack-email"], rows["remedy-agreed"]
        assert (ack.paused, ack.due_at, ack.remaining) == (True, None, timedelta(hours=22))
        # the close of Wednesday: 7 + 8 + 8 working hours, 2 of them used
        assert remedy.remaining_business == timedelta(hours=21)
        assert (ack.breached, remedy.breached) == (False, False)


def test_business_time_targets_count_working_hours_from_the_previous_step() -> None:
    engine, clock, store = make()
    cid = open_on(engine, "email")
    clock.set(datetime(2026, 11, 13, 15, 0, tzinfo=HEL))  # Friday 15:00
    engine.acknowledge(cid, actor="agent:a")
    listen = [d for d in store.pending_deadlines(cid) if d.target == "listen-fast"]
    assert [d.due_at.astimezone(HEL) for d in listen] == [
        datetime(2026, 11, 16, 10, 0, tzinfo=HEL),  # warn at 75%: 3 working hours
        datetime(2026, 11, 16, 11, 0, tzinfo=HEL),  # Monday 11:00
    ]
    clock.set(datetime(2026, 11, 16, 9, 30, tzinfo=HEL))
    status = {s.target: s for s in engine.sla_status(cid)}["listen-fast"]
    assert status.elapsed_business == timedelta(hours=2, minutes=30)
    assert status.remaining_business == timedelta(hours=1, minutes=30)
    assert status.remaining == timedelta(hours=1, minutes=30)


def test_business_days_mean_the_close_of_the_nth_business_day() -> None:
    engine, _, store = make()
    cid = open_on(engine, "email")
    agreed = [d for d in store.pending_deadlines(cid) if d.key.endswith("remedy-agreed:breach")]
    assert agreed[0].due_at.astimezone(HEL) == datetime(2026, 11, 11, 17, 0, tzinfo=HEL)


def test_paused_time_does_not_count_and_each_pause_is_an_event() -> None:
    engine, clock, store = make()
    cid = open_on(engine, "email")
    clock.advance(hours=2)
    engine.pause_sla(cid, actor="agent:a", reason="waiting for the order number")
    assert store.pending_deadlines(cid) == []
    clock.advance(hours=30)
    assert engine.tick() == []
    engine.resume_sla(cid, actor="agent:a", note="customer replied")
    breach = [d for d in store.pending_deadlines(cid) if d.key.endswith("ack-email:breach")]
    assert breach[0].due_at == START + timedelta(hours=24 + 30)
    assert types(engine, cid)[-2:] == ["pause_sla", "resume_sla"]
    status = {s.target: s for s in engine.sla_status(cid)}["ack-email"]
    assert status.elapsed == timedelta(hours=2)


def test_a_reopened_case_starts_a_new_cycle_and_keeps_the_old_one_in_history() -> None:
    engine, clock, store = make()
    cid = open_on(engine, "social")
    clock.advance(hours=2)
    engine.tick()  # warning, breach, escalation in the first cycle
    engine.resume(cid, actor="team-lead:t")
    for step, data in [
        ("acknowledge", {}), ("listen", {"note": "n"}),
        ("record", {"category": "x", "contact": "c", "occurred_on": "2026-11-01",
                    "details": "d"}),
        ("apologise", {"message": "m"}),
    ]:  # fmt: skip
        engine.step(cid, step, actor="agent:a", **data)
    engine.escalate(cid, actor="agent:a", reason="breached before", to_role="lead")
    engine.resume(cid, actor="team-lead:t")
    engine.offer_remedy(cid, actor="agent:a", options=[{"kind": "replacement"}])
    engine.accept_remedy(
        cid, actor="customer:c", option=1, promise="p", due=clock.now() + timedelta(days=1)
    )
    engine.keep_promise(cid, actor="agent:a", evidence="e")
    engine.request_feedback(cid, actor="agent:a")
    engine.close(cid, actor="agent:a")
    assert store.pending_deadlines(cid) == []
    engine.reopen(cid, actor="customer:c", reason="broken again")
    keys = {d.key for d in store.pending_deadlines(cid)}
    assert "1:ack-social:breach" in keys
    clock.advance(hours=1)
    fired = engine.tick()
    assert [e.data.get("key") for e in fired if e.type.startswith("sla")] == [
        "1:ack-social:warn75",
        "1:ack-social:breach",
    ]
    assert sum(e.type == "sla_breached" for e in engine.history(cid)) == 2


def test_the_policy_can_require_an_escalation_before_offering_on_a_breached_case() -> None:
    engine, clock, _ = make()
    cid = open_on(engine, "email")
    clock.advance(hours=25)
    engine.acknowledge(cid, actor="agent:a")
    engine.listen(cid, actor="agent:a", note="n")
    engine.record(cid, actor="agent:a", category="x", contact="c", occurred_on="2026-11-01",
                  details="d")  # fmt: skip
    engine.apologise(cid, actor="agent:a", message="m")
    with pytest.raises(StepNotAllowed, match="requires an escalation"):
        engine.offer_remedy(cid, actor="agent:a", options=[{"kind": "replacement"}])
    engine.escalate(cid, actor="agent:a", reason="late", to_role="team-lead")
    engine.resume(cid, actor="team-lead:t")
    assert engine.offer_remedy(cid, actor="agent:a", options=[{"kind": "replacement"}]).state == (
        "remedy_offered"
    )


def test_two_workers_ticking_at_once_fire_each_deadline_once() -> None:
    store = MemoryStore()
    engine, clock, _ = make(store)
    cases = [open_on(engine, "social") for _ in range(40)]
    clock.advance(hours=2)
    workers = [Engine(store, policy=POLICY, clock=clock) for _ in range(2)]
    fired: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def run(n: int) -> None:
        barrier.wait()
        for _ in range(3):
            fired[n].extend(f"{e.case_id}/{e.data['key']}" for e in workers[n].tick()
                            if e.type.startswith("sla"))  # fmt: skip

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = fired[0] + fired[1]
    assert len(everything) == len(set(everything)) == 2 * len(cases)
    for cid in cases:
        assert types(engine, cid).count("sla_breached") == 1
        assert engine.replay(cid) == engine.get(cid)


def test_a_new_engine_on_the_same_store_fires_an_overdue_breach_on_its_first_tick() -> None:
    engine, clock, store = make()
    cid = open_on(engine, "email")
    del engine  # the process stops
    clock.advance(days=3)
    restarted = Engine(store, policy=POLICY, clock=clock)
    fired = restarted.tick()
    assert sorted(e.data["key"] for e in fired) == [
        "0:ack-email:breach",
        "0:ack-email:warn75",
        "0:remedy-agreed:breach",
        "0:remedy-agreed:warn75",
    ]
    assert {e.case_id for e in fired} == {cid}


def test_tick_reads_the_wall_clock_under_freezegun() -> None:
    store = MemoryStore()
    with freeze_time(START):
        engine = Engine(store, policy=POLICY)
        cid = open_on(engine, "chat")
    with freeze_time(START + timedelta(minutes=30)):
        assert {e.type for e in engine.tick()} == {"sla_warning", "sla_breached"}
    assert engine.get(cid).first_breach_at == START + timedelta(minutes=30)


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("{id: t, step: listen, within: -PT1H}", "cannot be negative"),
        ("{id: t, step: listen}", "exactly one of within"),
        ("{id: t, step: listen, business_days: 2}", "needs a calendar"),
        ("{id: t, step: listen, within: PT1H, calendar: nope}", "no calendar 'nope'"),
        ("{id: t, step: smile, within: PT1H}", "'acknowledge'"),
        ("{id: t, step: listen, within: PT1H, on_breach: escalate}", "escalate_to"),
    ],
)
def test_bad_targets_are_refused_when_the_policy_loads(target: str, problem: str) -> None:
    text = f"name: x\nversion: '1'\ncurrency: EUR\nsla:\n  targets:\n    - {target}\n"
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="p.yaml")
    assert error.value.problems[0].location.startswith("sla.targets[0]")
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("target", "problem", "longest"),
    [
        (
            "within: P200D",
            "within P200D is more than two years of working time (at most P4DT8H, 104 weeks "
            "of its hours)",
            "within: P4DT8H",
        ),
        (
            "within: PT105H",  # shown in the ISO 8601 form a policy file may write
            "within P4DT9H is more than two years of working time (at most P4DT8H, 104 "
            "weeks of its hours)",
            "within: PT104H",
        ),
        (
            "business_days: 105",
            "business_days 105 is more than two years of business days (at most 104, 104 "
            "weeks of its working days)",
            "business_days: 104",
        ),
    ],
)
def test_a_target_longer_than_two_years_of_its_calendar_is_refused_when_the_policy_loads(
    target: str, problem: str, longest: str
) -> None:
    """Regression: such a policy loaded, and then every open_case raised a bare
    ValueError ("no working time within three years"). The message showed the target as
    a Python ``timedelta`` (``within 200 days, 0:00:00``) and not the longest there is."""
    text = (
        "name: p\nversion: '1'\ncurrency: EUR\ncalendars:\n  saturdays:\n"
        "    timezone: UTC\n    hours: {sat: ['10:00-11:00']}\nsla:\n  targets:\n"
        f"    - {{id: slow, step: acknowledge, calendar: saturdays, {target}}}\n"
    )
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="p.yaml")
    assert f"{problem} on calendar 'saturdays'" in str(error.value)
    assert error.value.problems[0].location.startswith("sla.targets[0]")
    parse_policy(text.replace(target, longest), file="p.yaml")  # the longest it names


def test_a_late_step_taken_while_paused_still_records_its_breach() -> None:
    """Regression: pause, then the late step, then resume lost the breach."""
    engine, clock, _ = make()
    cid = open_on(engine, "social")
    clock.advance(hours=2)
    engine.pause_sla(cid, actor="agent:a", reason="waiting")
    engine.acknowledge(cid, actor="agent:a")
    assert types(engine, cid) == ["open", "pause_sla", "sla_warning", "sla_breached",
                                  "acknowledge"]  # fmt: skip
    assert engine.get(cid).first_breach_at == clock.now()


def test_a_breach_that_passed_before_a_pause_is_still_fired_by_the_sweeper() -> None:
    """Regression: the acknowledgement breached at 60 minutes; nobody ticked before the
    agent paused at 70; the pause dropped every deadline, so the breach and its
    escalation waited for the customer's reply."""
    engine, clock, store = make()
    cid = open_on(engine, "social")
    clock.advance(minutes=70)
    engine.pause_sla(cid, actor="agent:a", reason="waiting for the order number")
    assert [d.key for d in store.pending_deadlines(cid)] == [
        "0:ack-social:warn75",
        "0:ack-social:breach",
    ]
    clock.advance(minutes=5)
    assert [e.type for e in engine.tick()] == ["sla_warning", "sla_breached", "escalate"]
    case = engine.get(cid)
    assert (case.state, case.sla_paused, store.pending_deadlines(cid)) == ("escalated", True, [])
    clock.advance(days=3)
    assert engine.tick() == []
    engine.resume_sla(cid, actor="agent:a", note="customer replied")
    later = engine.tick(clock.now() + timedelta(days=30))
    assert [e.data["target"] for e in later] == ["remedy-agreed", "remedy-agreed"]
    assert engine.replay(cid) == engine.get(cid)


def test_a_pause_holds_the_deadlines_that_have_not_passed() -> None:
    engine, clock, store = make()
    cid = open_on(engine, "social")
    clock.advance(minutes=50)  # after the warning (45), before the breach (60)
    engine.pause_sla(cid, actor="agent:a", reason="waiting")
    assert [d.key for d in store.pending_deadlines(cid)] == ["0:ack-social:warn75"]
    clock.advance(hours=5)
    assert [e.type for e in engine.tick()] == ["sla_warning"]
    engine.resume_sla(cid, actor="agent:a")
    breach = [d for d in store.pending_deadlines(cid) if d.key == "0:ack-social:breach"]
    assert breach[0].due_at == START + timedelta(hours=6)


def test_status_counts_a_new_offer_from_when_it_was_made() -> None:
    """Regression: after a decline, the remedy target's previous step is the new offer."""
    policy = parse_policy(
        "name: p\nversion: '1'\ncurrency: EUR\nsla:\n  targets:\n"
        "    - {id: agree, step: accept_remedy, start: previous_step, within: PT2H}\n"
    )
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), policy=policy, clock=clock)
    cid = open_on(engine, "email")
    for step, data in [("acknowledge", {}), ("listen", {"note": "n"}),
                       ("record", {"category": "x", "contact": "c", "occurred_on": "2026-11-01",
                                   "details": "d"}), ("apologise", {"message": "m"})]:  # fmt: skip
        engine.step(cid, step, actor="agent:a", **data)
    engine.offer_remedy(cid, actor="agent:a", options=[{"kind": "replacement"}])
    clock.advance(minutes=50)
    engine.decline_remedy(cid, actor="customer:c")
    clock.advance(hours=1)
    engine.offer_remedy(cid, actor="agent:a", options=[{"kind": "replacement"}])
    clock.advance(minutes=90)
    engine.accept_remedy(cid, actor="customer:c", option=1, promise="p",
                         due=clock.now() + timedelta(days=1))  # fmt: skip
    status = {s.target: s for s in engine.sla_status(cid)}["agree"]
    assert (status.achieved, status.breached) == (True, False)
    assert status.elapsed == timedelta(minutes=90)


def test_events_never_go_back_in_time_when_clocks_disagree() -> None:
    """Regression: a worker whose clock is behind wrote events before earlier ones."""
    store = MemoryStore()
    engine, clock, _ = make(store)
    cid = open_on(engine, "email")
    clock.advance(hours=3)
    engine.add_note(cid, actor="agent:a", text="at +3h")
    behind = Engine(store, policy=POLICY, clock=ManualClock(START + timedelta(hours=1)))
    behind.add_note(cid, actor="agent:b", text="clock behind")
    times = [e.at for e in engine.history(cid)]
    assert times == sorted(times)
    assert engine.state_at(cid, START + timedelta(hours=3)) == engine.get(cid)


class Flaky(MemoryStore):
    """A memory store that cannot load one case (``broken``)."""

    broken: str | None = None

    def load(self, case_id: str) -> Case:
        if case_id == self.broken:
            raise StoreUnavailable("that row is on a disk that just failed")
        return super().load(case_id)


def test_one_case_that_cannot_be_swept_does_not_stop_the_sweep() -> None:
    store = Flaky()
    engine, clock, _ = make(store)
    first, second = open_on(engine, "chat"), open_on(engine, "chat")
    store.broken = first
    clock.advance(minutes=30)
    fired = engine.tick()
    assert {e.case_id for e in fired} == {second}
    store.broken = None
    # Its deadlines were handed out once; they come up again when the claim lapses.
    assert engine.tick() == []
    clock.advance(CLAIM_LEASE)
    assert {e.case_id for e in engine.tick()} == {first}


def test_deadlines_that_are_never_swept_do_not_starve_the_others() -> None:
    store = Flaky()
    engine, clock, _ = make(store)
    first = open_on(engine, "chat")
    clock.advance(minutes=5)  # after the first case's warning and breach fall due
    second = open_on(engine, "chat")
    store.broken = first
    clock.advance(minutes=30)
    # Two deadlines per case (warning, breach); the first case's come up first.
    assert engine.tick(limit=2) == []
    assert {e.case_id for e in engine.tick(limit=2)} == {second}


def test_with_freezegun_a_friday_evening_ticket_breaches_on_monday_morning() -> None:
    """The engine on its default wall clock, time frozen and moved by freezegun."""
    policy = parse_policy(
        POLICY_TEXT_BASE + "    - {id: first-reply, step: listen, start: opened, within: PT2H, "
        "calendar: office}\n"
    )
    store = MemoryStore()
    friday_evening = datetime(2026, 11, 13, 16, 30, tzinfo=HEL)
    with freeze_time(friday_evening):
        engine = Engine(store, policy=policy)  # SystemClock: reads the frozen time
        cid = open_on(engine, "email")
    with freeze_time(datetime(2026, 11, 16, 10, 29, tzinfo=HEL)):  # Monday 10:29
        assert [e.data["key"] for e in engine.tick() if "first-reply" in e.data["key"]] == [
            "0:first-reply:warn75"
        ]
    with freeze_time(datetime(2026, 11, 16, 10, 30, tzinfo=HEL)):  # 30 min Fri + 90 Mon
        fired = [e.data["key"] for e in engine.tick()]
    assert "0:first-reply:breach" in fired
    assert engine.get(cid).first_breach_at == datetime(2026, 11, 16, 10, 30, tzinfo=HEL)


POLICY_TEXT_BASE = """
name: freezegun shop
version: "1"
currency: EUR
calendars:
  office:
    timezone: Europe/Helsinki
    country: FI
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
            thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
sla:
  targets:
"""


def test_the_events_tick_hands_out_are_stored_as_given_if_a_caller_changes_them() -> None:
    """``tick`` returns the events it appended; from then on they are the caller's, like
    any event, and carry no kept data text (``make_event(keep_text=True)`` is for events
    nothing else reaches before the engine appends them). Changed and appended to another
    store, the change is stored, for verify to find."""
    engine, clock, store = make()
    cid = open_on(engine, "social")
    clock.advance(minutes=45)
    (fired,) = engine.tick()
    assert fired.data_text is None
    earlier = store.events(cid)[: fired.seq - 1]
    mirror = MemoryStore()
    mirror.append(replay(earlier), earlier, 0)
    fired.data["key"] = "changed after it was handed out"
    mirror.append(replay([*earlier, fired]), [fired], len(earlier))
    assert mirror.events(cid)[-1].data == fired.data
    assert any("does not match its hash" in f.problem for f in audit.verify_store(mirror, cid))


def test_a_playbook_target_with_a_policy_targets_id_overrides_it_and_shares_its_warnings() -> None:
    """A playbook target reusing a policy target's id (same step) is that target, timed
    for the complainant type: a warning recorded under one is not recorded again."""
    policy = parse_policy(
        "name: p\nversion: '1'\ncurrency: EUR\n"
        "playbooks:\n  aggressive:\n    sla:\n"
        "      - {id: ack, step: acknowledge, within: PT4H}\n"
        "sla:\n  targets:\n    - {id: ack, step: acknowledge, within: PT24H}\n"
    )
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), policy=policy, clock=clock)
    cid = open_on(engine, "email")
    clock.advance(hours=18)
    assert [e.data["key"] for e in engine.tick()] == ["0:ack:warn75"]
    engine.classify(cid, actor="agent:a", complainant_type="aggressive")
    clock.advance(minutes=1)
    fired = engine.tick()
    assert [(e.type, e.data["key"]) for e in fired] == [("sla_breached", "0:ack:breach")]
    assert fired[0].data["due_at"] == "2026-11-09T12:00:00.000000+00:00"  # opened + 4h
    assert engine.replay(cid) == engine.get(cid)


def test_a_step_breached_under_a_playbook_target_does_not_breach_again_once_reclassified() -> None:
    """The breach was recorded under the aggressive playbook's target; classified meek,
    the case gets the policy's target for the same step, which must not fire again."""
    policy = parse_policy(
        "name: p\nversion: '1'\ncurrency: EUR\n"
        "playbooks:\n  aggressive:\n    sla:\n"
        "      - {id: ack-aggressive, step: acknowledge, within: PT1H}\n"
        "sla:\n  targets:\n    - {id: ack, step: acknowledge, within: PT24H}\n"
    )
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), policy=policy, clock=clock)
    cid = open_on(engine, "email")
    engine.classify(cid, actor="agent:a", complainant_type="aggressive")
    clock.advance(hours=2)
    assert [e.data["key"] for e in engine.tick()] == [
        "0:ack-aggressive:warn75",
        "0:ack-aggressive:breach",
    ]
    engine.classify(cid, actor="agent:a", complainant_type="meek")
    clock.advance(hours=23)
    assert engine.tick() == []
    engine.acknowledge(cid, actor="agent:a")
    assert types(engine, cid).count("sla_breached") == 1
    assert engine.replay(cid) == engine.get(cid)


def _versioned(version: str, targets: str) -> Policy:
    return parse_policy(
        f"name: p\nversion: '{version}'\ncurrency: EUR\nsla:\n  targets:\n{targets}", file="p.yaml"
    )


ACK_V1 = _versioned("1", "    - {id: ack-v1, step: acknowledge, within: PT1H}\n")
ACK_V2 = _versioned(
    "2",
    "    - {id: ack-v2, step: acknowledge, within: PT1H}\n"
    "    - {id: listen-v2, step: listen, start: previous_step, within: PT4H}\n",
)


@pytest.fixture(params=STORE_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


@pytest.mark.parametrize("given_the_old_policy", [True, False])
def test_a_step_that_breached_does_not_breach_again_after_migrate_policy(
    any_store: Store, given_the_old_policy: bool
) -> None:
    """The breach was recorded under version 1's target id; version 2 times the same
    step under another id. The step breached this cycle: version 2's target must not
    warn or breach for it again, whether or not the engine still has version 1."""
    clock = ManualClock(START)
    old = Engine(any_store, policy=ACK_V1, clock=clock)
    cid = open_on(old, "email")
    clock.advance(minutes=65)
    assert [e.data["key"] for e in old.tick()] == ["0:ack-v1:warn75", "0:ack-v1:breach"]
    previous = [ACK_V1] if given_the_old_policy else []
    engine = Engine(any_store, policy=ACK_V2, previous_policies=previous, clock=clock)
    engine.migrate_policy(cid, actor="team-lead:sam", reason="version 2")
    assert any_store.pending_deadlines(cid) == []
    clock.advance(hours=1)
    assert engine.tick() == []
    engine.acknowledge(cid, actor="agent:a")
    assert [d.target for d in any_store.pending_deadlines(cid)] == ["listen-v2", "listen-v2"]
    assert types(engine, cid).count("sla_breached") == 1
    assert engine.replay(cid) == engine.get(cid)


def test_after_migrate_policy_only_the_group_that_breached_is_spared() -> None:
    """Two targets on one step (an FCA summary and final response): the summary breached
    under version 1; version 2's final response (another id) still warns and breaches."""
    targets = (
        "    - {id: summary-VERSION, step: close, group: summary, within: PT1H}\n"
        "    - {id: final-VERSION, step: close, group: final, within: PT4H}\n"
    )
    v1 = _versioned("1", targets.replace("VERSION", "v1"))
    v2 = _versioned("2", targets.replace("VERSION", "v2"))
    store, clock = MemoryStore(), ManualClock(START)
    cid = open_on(Engine(store, policy=v1, clock=clock), "email")
    clock.advance(minutes=65)
    Engine(store, policy=v1, clock=clock).tick()
    engine = Engine(store, policy=v2, previous_policies=[v1], clock=clock)
    engine.migrate_policy(cid, actor="team-lead:sam", reason="version 2")
    assert {d.target for d in store.pending_deadlines(cid)} == {"final-v2"}
    clock.advance(hours=3)
    assert [e.data["key"] for e in engine.tick()] == ["0:final-v2:warn75", "0:final-v2:breach"]
    assert engine.replay(cid) == engine.get(cid)


TWO_RAISES = parse_policy(
    """
name: two raises
version: "1"
currency: EUR
sla:
  warn_at: []
  targets:
    - {id: ack-urgent, step: acknowledge, group: fast, within: PT10M,
       on_breach: raise_priority, raise_to: urgent}
    - {id: ack-high, step: acknowledge, within: PT20M, on_breach: raise_priority, raise_to: high}
"""
)


def test_two_breaches_in_one_tick_never_lower_the_priority_the_first_raised() -> None:
    """Regression: each breach in one sweep compared its ``raise_to`` with the priority
    the case had before the sweep, so a later breach raising to ``high`` brought back
    down a case an earlier breach of the same sweep had raised to ``urgent``."""
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), policy=TWO_RAISES, clock=clock)
    cid = open_on(engine, "email")
    clock.advance(minutes=30)
    fired = engine.tick()
    assert [(e.data["key"], e.data.get("priority")) for e in fired] == [
        ("0:ack-urgent:breach", "urgent"),
        ("0:ack-high:breach", None),
    ]
    assert engine.get(cid).priority == "urgent"
    assert engine.replay(cid) == engine.get(cid)


def test_status_at_an_earlier_time_reads_the_case_as_it_stood_then() -> None:
    """Regression: ``sla_status(case, now)`` with ``now`` before the case's last event
    judged the case as it is now: a step taken after ``now`` counted as done (achieved,
    nothing remaining) and a breach recorded after ``now`` as breached already."""
    engine, clock, _ = make()
    cid = open_on(engine, "social")
    clock.advance(minutes=40)
    engine.acknowledge(cid, actor="agent:a")
    then = START + timedelta(minutes=30)
    ack = {s.target: s for s in engine.sla_status(cid, then)}["ack-social"]
    assert (ack.done_at, ack.achieved, ack.remaining) == (None, False, timedelta(minutes=30))
    assert ack.elapsed == timedelta(minutes=30)
    late = open_on(engine, "social")
    clock.advance(hours=2)
    engine.tick()
    before_breach = START + timedelta(minutes=40 + 50)
    ack = {s.target: s for s in engine.sla_status(late, before_breach)}["ack-social"]
    assert (ack.warned, ack.breached, ack.remaining) == (False, False, timedelta(minutes=10))
    assert {s.target: s for s in engine.sla_status(late)}["ack-social"].breached


def test_status_at_a_time_before_the_case_opened_names_the_case() -> None:
    engine, _, _ = make()
    cid = open_on(engine, "social")
    with pytest.raises(audit.AuditFailure, match=f"case {cid}: the case did not exist at"):
        engine.sla_status(cid, START - timedelta(seconds=1))
