"""structlog lines carry the case id and the step; the library configures nothing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from adapters import MemoryStore
from tests.conftest import AGENT, CUSTOMER, OTHER_AGENT, START
from workflow import Engine, MissingInformation, StepNotAllowed, StoreError


def test_accepted_and_refused_steps_are_logged_with_case_id_and_step(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("acknowledged")
    with capture_logs() as logs:
        engine.add_note(cid, actor=AGENT, text="called back")
        with pytest.raises(MissingInformation):
            engine.listen(cid, actor=AGENT, note="")
    assert [(line["event"], line["case_id"], line["step"]) for line in logs] == [
        ("step accepted", cid, "add_note"),
        ("step refused", cid, "listen"),
    ]
    assert logs[0]["seq"] == engine.get(cid).version
    assert "needs: note" in logs[1]["reason"]


def test_the_library_configures_nothing_globally(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    structlog.reset_defaults()
    case_in("recorded")
    assert not structlog.is_configured()


def test_a_standard_library_logger_is_accepted_and_a_step_it_logs_is_not_failed(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """``Engine(logger=logging.getLogger(...))``: the step's line reaches it; a logger
    that cannot take keywords must not make a step that was written raise."""
    import logging

    from workflow import ManualClock

    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    desk = logging.getLogger("complaintflow-test-desk")
    handler = Lines()
    desk.addHandler(handler)
    desk.setLevel(logging.INFO)
    try:
        cid = case_in("acknowledged")
        own = Engine(engine.store, clock=ManualClock(engine.now()), logger=desk)
        case = own.add_note(cid, actor=AGENT, text="called back")
    finally:
        desk.removeHandler(handler)
    assert case.version == engine.get(cid).version
    assert any("step accepted" in line and cid in line for line in lines)


def test_a_retry_is_logged_with_the_case_id(engine: Engine, case_in: Callable[[str], str]) -> None:
    from workflow import ConcurrencyConflict

    cid = case_in("acknowledged")
    calls = []

    def action() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConcurrencyConflict(cid, 2, 3)
        return cid

    with capture_logs() as logs:
        engine.retrying(action)
    assert [(line["event"], line["case_id"]) for line in logs] == [
        ("retrying after a concurrent change", cid)
    ]


def test_a_retry_after_a_pause_logs_the_pause_it_takes(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    from datetime import timedelta

    from workflow import ConcurrencyConflict

    cid = case_in("acknowledged")
    conflicts = [ConcurrencyConflict(cid, 2, 3), ConcurrencyConflict(cid, 3, 4)]

    def action() -> str:
        if conflicts:
            raise conflicts.pop()
        return cid

    slept: list[float] = []
    with capture_logs() as logs:
        engine.retrying(action, backoff=timedelta(milliseconds=40), sleep=slept.append)
    assert [line["pause_seconds"] for line in logs] == slept
    assert len(slept) == 2


# -- every line, on a day at the desk ---------------------------------------------------

NAME, CONTACT, ACCOUNT = "Zelda Secretname", "zelda@secret.example", "ACC-998877"
#: A mark in every free text an agent or a customer writes.
FREE = "FREETEXT-7f3a"
DESK_POLICY = """
name: logging desk
version: "1"
currency: EUR
retention: {years: 1}
sla:
  warn_at: [50]
  targets:
    - {id: ack, step: acknowledge, within: PT1H, on_breach: escalate, escalate_to: team-lead}
"""
#: Lines about no step: purging is not a step, it writes no event (docs/embedding.md).
NO_STEP = {
    "case purged",
    "purge: case changed meanwhile, kept",
    "retention: the case's policy is not loaded; not purged",
}


def _deny_large(policy: Any, request: Any) -> Any:
    from policies.decision import Decision
    from workflow import decide_offer

    if any(o.amount is not None and o.amount.amount > 100 for o in request.remedies):
        return Decision.denied("desk.limit", "more than 100 EUR needs the finance team")
    return decide_offer(policy, request)


class _Raced(MemoryStore):
    """Runs ``race`` once, right after the next ``load``: another worker's step landing
    between a sweeper's read and its write; ``fail`` makes the next append fail."""

    race: Callable[[], object] | None = None
    fail: bool = False

    def load(self, case_id: str) -> Any:
        case = super().load(case_id)
        race, self.race = self.race, None
        if race is not None:
            race()
        return case

    def append(self, *args: Any, **kwargs: Any) -> None:
        if self.fail:
            self.fail = False
            raise StoreError("the disk is full")
        super().append(*args, **kwargs)


def a_day_at_the_desk() -> tuple[Engine, list[str]]:
    """Everything the engine logs about: cases opened, every main-path step with free
    texts, each kind of refusal (with personal values and free text in the refused
    input), a retry, an SLA sweep (warning, breach, escalation; a case another worker
    changed meanwhile; a case whose write fails; a case under a policy not given), an
    erasure and a purge. Returns the engine and the ids of its cases."""
    from policies.loader import parse_policy
    from workflow import ComplaintflowError, ConcurrencyConflict, ManualClock, Money, Remedy

    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    store = _Raced()
    engine = Engine(store, policy=parse_policy(DESK_POLICY), clock=clock, decide=_deny_large)
    other = Engine(store, policy=parse_policy(DESK_POLICY.replace("desk", "shop")), clock=clock)
    customer = {"id": "c-desk", "name": NAME, "contact": CONTACT, "account": ACCOUNT}

    def refused(action: Callable[[], object]) -> None:
        with pytest.raises(ComplaintflowError):
            action()

    refused(lambda: engine.open_case(actor=AGENT, customer={**customer, "name": NAME * 40},
                                     channel="email", details=FREE))  # fmt: skip
    refused(lambda: engine.open_case(actor=AGENT, customer=customer, channel="fax", details=FREE))
    cid = engine.open_case(
        actor=AGENT, customer=customer, channel="email", subject=FREE, details=FREE,
        case_id="case-desk", idempotency_key="k-open",
    ).id  # fmt: skip
    refused(lambda: engine.open_case(actor=AGENT, customer=customer, channel="email",
                                     case_id="case-other", idempotency_key="k-open"))  # fmt: skip
    refused(lambda: engine.listen(cid, actor=AGENT, note=FREE))  # out of order
    refused(lambda: engine.step(cid, "console", actor=AGENT))  # no such step
    refused(lambda: engine.step(cid, "acknowledge", actor=AGENT, messages=FREE))  # no such input
    clock.advance(minutes=40)
    engine.tick()  # the warning
    engine.acknowledge(cid, actor=AGENT, message=FREE)
    refused(lambda: engine.listen(cid, actor=AGENT, note=""))  # missing information
    engine.listen(cid, actor=AGENT, note=FREE)
    refused(lambda: engine.record(cid, actor=AGENT, category="delivery", contact=FREE * 100,
                                  occurred_on="2026-11-01", details=FREE))  # fmt: skip
    engine.record(cid, actor=AGENT, category="delivery", contact=CONTACT,
                  occurred_on="2026-11-01", details=FREE)  # fmt: skip
    engine.add_note(cid, actor=AGENT, text=FREE)
    engine.apologise(cid, actor=AGENT, message=FREE)
    big = [Remedy(kind="refund", amount=Money.of("400.00", "EUR"))]
    refused(lambda: engine.offer_remedy(cid, actor=AGENT, options=big))  # the decide hook
    small = [Remedy(kind="refund", amount=Money.of("40.00", "EUR"))]
    engine.offer_remedy(cid, actor=AGENT, options=small)
    engine.accept_remedy(cid, actor=CUSTOMER, option=1, promise=FREE,
                         due=clock.now() + timedelta(days=3))  # fmt: skip
    engine.keep_promise(cid, actor=AGENT, evidence=FREE)
    engine.request_feedback(cid, actor=AGENT, message=FREE)
    engine.close(cid, actor=AGENT, resolution=FREE)

    raced, failing = (
        engine.open_case(actor=AGENT, customer=customer, channel="chat", subject=FREE,
                         case_id=f"case-{name}").id
        for name in ("raced", "failing")
    )  # fmt: skip
    foreign = other.open_case(actor=AGENT, customer=customer, channel="chat", subject=FREE,
                              case_id="case-foreign").id  # fmt: skip
    clock.advance(hours=2)
    store.race = lambda: engine.add_note(raced, actor=OTHER_AGENT, text=FREE)
    engine.tick(limit=2)  # the raced case (first due), then the failing one
    store.fail = True
    engine.tick(limit=1)
    engine.tick()
    other.withdraw(foreign, actor=AGENT, reason=FREE)
    calls: list[int] = []

    def note_once_raced() -> object:
        calls.append(1)
        if len(calls) == 1:
            raise ConcurrencyConflict(raced, 1, 2, step="add_note")
        return engine.add_note(raced, actor=AGENT, text=FREE)

    engine.retrying(note_once_raced)
    engine.erase_customer("c-desk", actor="dpo:kim", reason=FREE)
    clock.advance(days=400)
    engine.purge_expired(actor="system:retention")
    return engine, [cid, raced, failing, foreign]


def test_a_day_at_the_desk_logs_each_kind_of_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with capture_logs() as logs:
        a_day_at_the_desk()
    events = {line["event"] for line in logs}
    assert events == {
        "case opened",
        "step accepted",
        "step refused",
        "sla event",
        "sla sweep: case changed under this worker",
        "sla sweep: case skipped",
        "sla sweep: the case's policy is not loaded",
        "retrying after a concurrent change",
        "personal data erased",
        "case purged",
        "retention: the case's policy is not loaded; not purged",
    }


def test_every_line_about_a_case_carries_its_id_and_its_step() -> None:
    with capture_logs() as logs:
        a_day_at_the_desk()
    assert [line for line in logs if "case_id" not in line] == []
    assert [line for line in logs if "step" not in line and line["event"] not in NO_STEP] == []
    swept = [line for line in logs if line["event"].startswith("sla sweep")]
    assert {line["step"] for line in swept} <= {"sla_warning", "sla_breached"}


def test_every_refusal_is_logged_once_at_info_with_the_error_s_message() -> None:
    from workflow import ComplaintflowError

    raised: list[ComplaintflowError] = []
    real_step = Engine.step

    def step(self: Engine, *args: Any, **kwargs: Any) -> Any:
        try:
            return real_step(self, *args, **kwargs)
        except ComplaintflowError as exc:
            raised.append(exc)
            raise

    with capture_logs() as logs, pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "step", step)
        a_day_at_the_desk()
    refusals = [line for line in logs if line["event"] == "step refused"]
    assert {line["log_level"] for line in refusals} == {"info"}
    assert [(r["step"], r["error"]) for r in refusals] == [
        ("open", "InvalidStepData"),
        ("open", "InvalidStepData"),
        ("open", "IdempotencyKeyReused"),
        ("listen", "StepNotAllowed"),
        ("console", "StepNotAllowed"),
        ("acknowledge", "InvalidStepData"),
        ("listen", "MissingInformation"),
        ("record", "InvalidStepData"),
        ("offer_remedy", "PolicyViolation"),
    ]
    assert [r["reason"] for r in refusals[3:]] == [exc.log_reason for exc in raised]


def test_no_line_carries_personal_values_or_free_text() -> None:
    """Not the customer's name, contact or account (docs/audit.md, personal data), nor
    any text an agent or customer wrote, not even in a refused input."""
    with capture_logs() as logs:
        a_day_at_the_desk()
    leaks = [
        line
        for line in logs
        if any(value in repr(line) for value in (NAME, CONTACT, ACCOUNT, FREE))
    ]
    assert leaks == []


@pytest.mark.parametrize(
    "given",
    [
        {"channel": NAME},  # a name typed into the wrong box
        {"customer": {"id": "c-1", "name": "N", NAME: "x"}},  # ... or sent as a key
        {"category": "zelda-secretname"},  # a valid name, not one of the policy's
    ],
    ids=["channel", "customer key", "category"],
)
def test_a_refused_input_is_logged_by_its_field_not_its_text(given: dict[str, Any]) -> None:
    """The caller's error says what was wrong with the value it gave; the log line (kept
    where an erasure cannot reach) names where, never the text (docs/embedding.md)."""
    from policies.loader import parse_policy
    from workflow import InvalidStepData, ManualClock

    policy = parse_policy(DESK_POLICY + "categories: [delivery]\n")
    engine = Engine(MemoryStore(), policy=policy, clock=ManualClock(START))
    opening: dict[str, Any] = {"actor": AGENT, "customer": {"id": "c-1", "name": "N"},
                               "channel": "email", **given}  # fmt: skip
    with capture_logs() as logs, pytest.raises(InvalidStepData) as refused:
        engine.open_case(**opening)
    assert "ecretname" in str(refused.value)  # the caller is told which value
    (line,) = logs
    assert "ecretname" not in repr(line)
    field = refused.value.problems[0][0]
    assert line["reason"].endswith(
        f"got bad data at: {field if field.isidentifier() else '(an input not named here)'}. "
        "Nothing was written."
    )


# -- embedding: the embedder's logger, stdlib or structlog; nothing global --------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def desk_log() -> Iterator[tuple[logging.Logger, _Records]]:
    """A standard library logger of the embedder's, at INFO, and what reaches it."""
    logger = logging.getLogger(f"desk-{uuid.uuid4().hex[:8]}")
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_a_stdlib_logger_gets_one_plain_record_per_line_with_the_keys_as_attributes(
    engine: Engine, desk_log: tuple[logging.Logger, _Records]
) -> None:
    """The message is the line and its keys, whatever structlog's own configuration
    (here: captured); ``record.case_id`` and ``record.step`` are there for filters and
    JSON formatters."""
    from workflow import ManualClock

    logger, handler = desk_log
    own = Engine(engine.store, clock=ManualClock(engine.now()), logger=logger)
    with capture_logs() as global_lines:
        cid = own.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="email").id
        with pytest.raises(StepNotAllowed):
            own.listen(cid, actor=AGENT, note="x")
    assert global_lines == []
    opened, refused = handler.records
    assert (opened.levelno, opened.getMessage()) == (
        logging.INFO,
        f"case opened actor={AGENT} case_id={cid} step=open",
    )
    assert (refused.case_id, refused.step, refused.state, refused.error) == (  # type: ignore[attr-defined]
        cid,
        "listen",
        "received",
        "StepNotAllowed",
    )
    assert refused.getMessage().startswith(f"step refused case_id={cid} error=StepNotAllowed ")
    assert f"reason=\"case {cid} is 'received'" in refused.getMessage()


def test_a_stdlib_logger_below_info_gets_nothing_and_the_line_is_not_rendered(
    engine: Engine, desk_log: tuple[logging.Logger, _Records], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow import ManualClock, logs

    logger, handler = desk_log
    logger.setLevel(logging.WARNING)
    rendered: list[object] = []
    render = logs._render
    monkeypatch.setattr(logs, "_render", lambda *a: rendered.append(a) or render(*a))
    own = Engine(engine.store, clock=ManualClock(engine.now()), logger=logger)
    own.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="email")
    assert (handler.records, rendered) == ([], [])


def test_a_logger_adapter_is_accepted_and_a_step_it_logs_is_not_failed(
    engine: Engine, desk_log: tuple[logging.Logger, _Records]
) -> None:
    """``logging.LoggerAdapter`` takes no keywords either: a step that was written must
    not raise because its line could not be logged."""
    from workflow import ManualClock

    logger, handler = desk_log
    adapter = logging.LoggerAdapter(logger, {"tenant": "t-1"})
    own = Engine(engine.store, clock=ManualClock(engine.now()), logger=adapter)
    case = own.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="email")
    assert engine.get(case.id) == case
    assert [(r.getMessage().split(" ")[:2], r.tenant) for r in handler.records] == [  # type: ignore[attr-defined]
        (["case", "opened"], "t-1")
    ]


def test_a_structlog_logger_passed_in_is_used_and_not_the_global_one(engine: Engine) -> None:
    from workflow import ManualClock

    mine = structlog.testing.CapturingLogger()
    own = Engine(
        engine.store,
        clock=ManualClock(engine.now()),
        logger=structlog.wrap_logger(mine, processors=[]).bind(tenant="t-1"),
    )
    with capture_logs() as global_lines:
        cid = own.open_case(actor=AGENT, customer={"id": "c", "name": "N"}, channel="email").id
    assert global_lines == []
    assert [(c.method_name, c.kwargs) for c in mine.calls] == [
        (
            "info",
            {"tenant": "t-1", "event": "case opened", "case_id": cid, "step": "open",
             "actor": AGENT},
        )
    ]  # fmt: skip


def test_without_a_logger_lines_go_to_structlog_once_it_is_configured_else_to_logging(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    """An application that configured structlog gets the lines there; one that uses only
    the standard library gets them through its logger ``complaintflow`` (its handlers,
    its level), not printed to stdout by structlog's unconfigured default."""
    handler = _Records()
    library = logging.getLogger("complaintflow")
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        structlog.reset_defaults()
        cid = case_in("acknowledged")
        assert [r.step for r in handler.records] == ["open", "acknowledge"]  # type: ignore[attr-defined]
        with capture_logs() as lines:  # configures structlog
            engine.add_note(cid, actor=AGENT, text="called back")
        assert [line["step"] for line in lines] == ["add_note"]
        assert len(handler.records) == 2
    finally:
        library.removeHandler(handler)
        library.setLevel(logging.NOTSET)


GLOBAL_STATE_SCRIPT = r"""
import io, logging, sys, warnings
from contextlib import redirect_stdout

# The dependencies first: what they do on import (SQLAlchemy sets its logger's level,
# alembic and transitions add NullHandlers) is theirs, not complaintflow's.
import alembic.command, pydantic, sqlalchemy, structlog, transitions, yaml  # noqa: E401

def state():
    loggers = {
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled, list(lg.filters))
        for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger) and lg.handlers + lg.filters or getattr(lg, "level", 0)
    }
    root = logging.getLogger()
    return {
        "structlog": (structlog.is_configured(), structlog.get_config()),
        "root": (root.level, list(root.handlers), list(root.filters)),
        "loggers": loggers,
        "logging": (logging.root.manager.disable, logging.getLoggerClass(),
                    logging.getLogRecordFactory(), logging.lastResort, logging.raiseExceptions),
        "warnings": list(warnings.filters),
    }

before = state()
out = io.StringIO()
with redirect_stdout(out):
    from tests.test_logging import a_day_at_the_desk
    import adapters, adapters.sql, adapters.testing, policies, workflow, workflow.cli
    a_day_at_the_desk()
    store = adapters.open_store("sqlite:///" + sys.argv[1], create=True)
    engine = workflow.Engine(store)
    engine.acknowledge(engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"},
                                        channel="web").id, actor="agent:a")
    store.close()
after = state()
changed = sorted(key for key in before if before[key] != after[key])
print(changed, repr(out.getvalue()))
"""


def test_importing_and_using_the_library_changes_no_global_logging_state(
    tmp_path: Path,
) -> None:
    """In a fresh interpreter: structlog's configuration, the root logger, every
    logger's level, handlers and filters, logging's module settings and the warning
    filters are the same after importing every package and running a day at the desk
    (and a SQLite store created and used) as before; nothing was printed to stdout."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_STATE_SCRIPT, str(tmp_path / "cases.db")],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[] ''\n"
    # Warnings reach stderr through ``logging.lastResort``, as any library's do when the
    # application configured no logging; nothing below a warning does.
    assert [line.split(" case_id=")[0] for line in result.stderr.splitlines()] == [
        "sla sweep: the case's policy is not loaded",
        "sla sweep: case skipped",
        "sla sweep: the case's policy is not loaded",
        "retention: the case's policy is not loaded; not purged",
    ]


@pytest.mark.postgres
def test_a_row_postgresql_refuses_is_not_quoted_into_the_error_or_the_sweep_s_line() -> None:
    """PostgreSQL's refusal of a row (a check constraint a support product added) comes
    with ``DETAIL: Failing row contains (...)``, the row's values, the snapshot with the
    customer's name among them: the ``StoreError`` and the line logging it keep the
    refusal, not the row (the driver's error, whole, is its ``__cause__``)."""
    from sqlalchemy import text

    from policies.loader import parse_policy
    from tests.stores import postgres_store
    from workflow import ManualClock

    stores = postgres_store()
    store: Any = next(stores)
    try:
        clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        engine = Engine(store, policy=parse_policy(DESK_POLICY), clock=clock)
        customer = {"id": "c", "name": NAME, "contact": CONTACT}
        cid = engine.open_case(actor=AGENT, customer=customer, channel="web", case_id="c1").id
        with store.engine.begin() as conn:
            conn.execute(text(
                f"ALTER TABLE {store.tables.cases.name} ADD CONSTRAINT no_sla CHECK (version < 2)"
            ))  # fmt: skip
        clock.advance(minutes=40)
        with capture_logs() as logs:
            assert engine.tick() == []
        (line,) = logs
        assert (line["event"], line["case_id"]) == ("sla sweep: case skipped", cid)
        assert 'violates check constraint "no_sla"' in line["error"]
        assert NAME not in line["error"]
        with pytest.raises(StoreError) as refused:
            engine.add_note(cid, actor=AGENT, text="n")
        assert 'violates check constraint "no_sla"' in str(refused.value)
        assert NAME not in str(refused.value)
        assert NAME in str(refused.value.__cause__)
    finally:
        stores.close()


def test_an_erasure_the_library_cannot_carry_out_is_a_warning_per_case() -> None:
    from tests.test_privacy import NAME as LEGACY_NAME
    from tests.test_privacy import legacy_case
    from workflow import ErasureRefused, ManualClock

    store = MemoryStore()
    cid = legacy_case(store)
    engine = Engine(store, clock=ManualClock(datetime(2026, 11, 3, tzinfo=UTC)))
    with capture_logs() as logs, pytest.raises(ErasureRefused):
        engine.erase_customer("cust-old", actor="dpo:kim", reason="DSR-9")
    assert logs == [
        {
            "event": "erasure refused",
            "log_level": "warning",
            "case_id": cid,
            "step": "erase_personal_data",
            "reason": "its events hold personal values as plain text",
        }
    ]
    assert LEGACY_NAME not in repr(logs)
