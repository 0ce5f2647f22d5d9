"""``complaintflow demo``: an angry customer's parcel arrived broken. One case runs
through every checklist step on a simulated clock; the timeline is printed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters import open_store
from adapters.urls import shown_url
from policies.loader import bundled_policy
from policies.money import Money
from policies.remedy import Remedy
from workflow.audit import revealed
from workflow.cli.common import printable
from workflow.clock import ManualClock
from workflow.engine import Engine
from workflow.events import Event
from workflow.personal import Vault, vault_of

#: Monday 2 November 2026, 09:12 UTC: the complaint email arrives.
START = datetime(2026, 11, 2, 9, 12, tzinfo=UTC)

AGENT = "agent:maria"
LEAD = "team-lead:sam"
CUSTOMER = "customer:c-1042"


def _summary(event: Event, vault: Vault) -> str:
    d: dict[str, Any] = revealed(event, vault)
    kind = event.type
    if kind == "open":
        return f"{d['customer']['name']} writes by {d['channel']}: {d.get('subject', '')}"
    if kind == "offer_remedy":
        options = " | ".join(_remedy_text(o) for o in d["options"])
        return f"offer {d['offer']}: {options} ({d['decision']['outcome']})"
    if kind == "accept_remedy":
        due = datetime.fromisoformat(d["due"])
        return f"option {d['option']} of offer {d['offer']}: {d['promise']}, by {due:%a %d %b}"
    if kind == "record_feedback":
        return f"score {d.get('score', '-')}/5: {d.get('comment', '')}"
    if kind == "escalate":
        return f"to {d['to_role']}: {d['reason']}"
    for key in ("note", "message", "reason", "evidence", "text", "resolution", "to"):
        if key in d:
            return str(d[key])
    if kind == "classify":
        return f"complainant type: {d['complainant_type']}"
    if kind == "record":
        return f"category {d.get('category')}, happened {d.get('occurred_on')}"
    return ""


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return " ".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "min")) if n) or "0min"


def _remedy_text(option: dict[str, Any]) -> str:
    amount = option.get("amount")
    money = f" {amount['amount']} {amount['currency']}" if amount else ""
    return f"{option['kind']}{money}"


def run_demo(store_url: str, echo: Callable[[str], Any]) -> str:
    """Run the demo against ``store_url``; returns the case id."""
    clock = ManualClock(START)
    store = open_store(store_url, create=True)
    earlier = list(store.case_ids())
    policy = bundled_policy("retail")
    engine = Engine(store, policy=policy, clock=clock)
    try:
        # Every run opens at the same simulated instant, and stores list cases by when they
        # opened, then by id: a numbered id keeps "the latest" the run before this one.
        case = engine.open_case(
            actor="system:mailbox",
            case_id=f"case-demo-{len(earlier) + 1:04d}",
            customer={"id": "c-1042", "name": "Dana Whitfield", "tier": "standard"},
            channel="email",
            subject="Parcel arrived smashed - I want my money back NOW",
            priority="high",
        )
        cid = case.id

        def at(minutes: float = 0, **kw: float) -> None:
            clock.advance(timedelta(minutes=minutes, **kw))

        at(3)
        engine.acknowledge(
            cid,
            actor="system:mailbox",
            message="We have your message and a person will reply within the hour.",
        )
        at(25)
        engine.assign(cid, actor=LEAD, to="maria")
        at(15)
        engine.listen(
            cid,
            actor=AGENT,
            note="Called the customer. The vase was a wedding gift; the box was crushed on one "
            "side and the vase is in pieces. Angry: second broken delivery this year.",
        )
        engine.classify(cid, actor=AGENT, complainant_type="aggressive")
        engine.escalate(cid, actor=AGENT, reason="customer asks for a manager", to_role="team-lead")
        at(20)
        engine.resume(
            cid, actor=LEAD, note="Spoke with the customer; Maria keeps the case with my backing."
        )
        at(10)
        engine.record(
            cid,
            actor=AGENT,
            category="delivery",
            contact="dana.whitfield@example.com",
            occurred_on="2026-10-31",
            details="Order 88-2231, vase 'Aalto 160mm', delivered Sat 31 Oct by courier, "
            "outer box crushed, item broken.",
        )
        at(5)
        engine.apologise(
            cid,
            actor=AGENT,
            message="I am sorry the vase arrived broken, and thank you for telling us "
            "straight away - it helps us fix this with the courier.",
        )
        engine.pause_sla(cid, actor=AGENT, reason="waiting for photos of the damage")
        at(hours=3)
        engine.resume_sla(cid, actor=AGENT, note="photos received")
        at(10)
        engine.offer_remedy(
            cid,
            actor=AGENT,
            options=[Remedy(kind="coupon", amount=Money.of("15.00", "EUR"))],
        )
        at(20)
        engine.decline_remedy(cid, actor=CUSTOMER, reason="A coupon does not replace a gift.")
        at(5)
        engine.offer_remedy(
            cid,
            actor=AGENT,
            options=[
                Remedy(kind="replacement", description="new vase, express courier"),
                Remedy(kind="refund", amount=Money.of("89.00", "EUR")),
            ],
        )
        at(10)
        engine.approve_offer(cid, actor=LEAD, note="fair: second broken delivery this year")
        at(20)
        engine.accept_remedy(
            cid,
            actor=CUSTOMER,
            option=1,
            promise="replacement vase by express courier",
            due=clock.now() + timedelta(days=3),
        )
        at(hours=46)
        engine.keep_promise(
            cid, actor=AGENT, evidence="courier JD014600006231 delivered, signed by the customer"
        )
        at(hours=2)
        engine.request_feedback(cid, actor=AGENT, message="Did we put it right?")
        at(hours=20)
        engine.record_feedback(
            cid, actor=CUSTOMER, score=4, comment="Vase arrived fine. Thank you, Maria."
        )
        at(5)
        final = engine.close(
            cid, actor=AGENT, resolution="replacement delivered; customer satisfied"
        )

        echo(f"complaintflow demo: case {cid} (store {shown_url(store_url)}; times in UTC)")
        if earlier:
            echo(f"this store already held {len(earlier)} case(s) from earlier runs, "
                 f"the latest {earlier[-1]} ({engine.get(earlier[-1]).state})")  # fmt: skip
        echo("")
        vault = vault_of(final.personal)
        for event in engine.history(cid):
            when = event.at.strftime("%a %d %b %H:%M")
            text = _summary(event, vault)
            text = text if len(text) <= 72 else text[:71] + "…"
            echo(f"  {event.seq:>2}  {when}  {printable(event.actor):<16} {event.type:<17} {text}")
        replayed = engine.replay(cid)
        echo("")
        echo(f"final state      : {final.state}")
        echo(f"offers           : {len(final.offers)} ({final.declines} declined)")
        if final.promise is not None:
            echo(
                f"promise          : {final.promise.description}, kept "
                f"{final.promise.kept_at:%a %d %b %H:%M}"
            )
        echo(f"transfers        : {final.transfers}, escalations: {final.escalations}")
        echo(f"events           : {final.version}, chain head {final.head_hash[:16]}…")
        echo(f"policy           : {policy.name}, {final.policy_version[:40]}…")
        for target in engine.sla_status(cid):
            if target.done_at is None or target.start is None:
                continue
            verdict = "met" if target.achieved else "BREACHED"
            if target.done_at < target.start:
                when = f"{_span(target.start - target.done_at)} before it was due"
            elif target.elapsed_business is not None:
                when = f"after {_span(target.elapsed_business)} of business time"
            else:
                when = f"after {_span(target.elapsed)}"
            echo(f"SLA {target.target:<19}: {verdict}, {target.step} {when}")
        echo(f"replay == state  : {replayed == final}")
        return cid
    finally:
        store.close()
