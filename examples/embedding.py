"""Embedding complaintflow in a support product.

A helpdesk already has tickets and agents. It opens a complaint case per ticket (using
the ticket id as the case id), shows agents the steps allowed now, and turns refusals
into messages in its UI. Webhooks and forms can arrive twice: idempotency keys make the
second delivery a no-op, and a step that lost a race with another agent is retried on
the fresh case. Run:  python examples/embedding.py
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from adapters import open_store
from workflow import Engine, ManualClock, StepRefused


class Helpdesk:
    """The support product's side: tickets in, complaint steps out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_new_ticket(self, ticket_id: str, email: str, name: str, subject: str) -> None:
        """The new-ticket webhook (it may be delivered more than once)."""
        self.engine.open_case(
            actor="system:helpdesk",
            case_id=ticket_id,
            customer={"id": email, "name": name, "contact": email},
            channel="email",
            subject=subject,
            idempotency_key=f"ticket-opened:{ticket_id}",
        )

    def buttons(self, ticket_id: str) -> tuple[str, ...]:
        """What the agent's screen offers now."""
        return self.engine.allowed_steps(ticket_id)

    def click(
        self, ticket_id: str, agent: str, step: str, request_id: str | None = None, **form: Any
    ) -> str:
        """An agent pressed a button; the form's fields are the step's inputs, and
        ``request_id`` the form submission's id (a double click sends it twice)."""
        try:
            case = self.engine.retrying(
                lambda: self.engine.step(
                    ticket_id, step, actor=f"agent:{agent}", idempotency_key=request_id, **form
                )
            )
        except StepRefused as refused:
            return f"refused: {refused}"
        return f"ok: {ticket_id} is now {case.state}"


def main() -> None:
    # Your application configures logging; here: warnings only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = Helpdesk(Engine(open_store("memory://"), clock=clock))
    desk.on_new_ticket("T-1001", "ann@example.com", "Ann Example", "Charged twice")
    desk.on_new_ticket("T-1001", "ann@example.com", "Ann Example", "Charged twice")  # again
    print("buttons:", ", ".join(desk.buttons("T-1001")))
    print(desk.click("T-1001", "alice", "listen", note="too early"))
    print(desk.click("T-1001", "alice", "acknowledge", message="We are looking into it."))
    print(desk.click("T-1001", "alice", "listen", note="Charged 2 x 19.99 on 30 Oct."))
    print(desk.click("T-1001", "alice", "record", category="billing"))
    print(
        desk.click(
            "T-1001",
            "alice",
            "record",
            category="billing",
            occurred_on="2026-10-30",
            details="Duplicate card charge for order 77.",
        )
    )
    clock.advance(minutes=5)
    sorry = {"message": "Sorry - and thanks for telling us."}
    print(desk.click("T-1001", "alice", "apologise", request_id="form-7", **sorry))
    print(desk.click("T-1001", "alice", "apologise", request_id="form-7", **sorry))  # twice
    history = desk.engine.history("T-1001")
    print("opened:", sum(e.type == "open" for e in history), "| apologised:",
          sum(e.type == "apologise" for e in history))  # fmt: skip
    print(
        desk.click(
            "T-1001",
            "alice",
            "offer_remedy",
            options=[{"kind": "refund", "amount": {"amount": "19.99", "currency": "EUR"}}],
        )
    )
    print(
        desk.click(
            "T-1001",
            "alice",
            "accept_remedy",
            option=1,
            promise="refund 19.99 EUR",
            due=clock.now() + timedelta(days=2),
        )
    )
    print("buttons:", ", ".join(desk.buttons("T-1001")))


if __name__ == "__main__":
    main()
