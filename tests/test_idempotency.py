"""An idempotency key names one command, inputs included: a retry with the same key and
the same inputs returns the first result; the same key with other inputs, another actor,
another case or step is refused and writes nothing (decisions 0022 and 0032). Keys
themselves are checked before anything is read or written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import START
from tests.stores import STORE_KINDS, each_store
from workflow import (
    Actor,
    ComplaintflowError,
    Customer,
    Engine,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidStepData,
    ManualClock,
    Money,
    Priority,
    Remedy,
    Store,
)
from workflow.events import make_event
from workflow.idempotency import FINGERPRINT_SCHEME, fingerprint
from workflow.replay import replay

CUSTOMER = {"id": "c-1", "name": "Ann Example"}
REFUND = {"kind": "refund", "amount": {"amount": "40.00", "currency": "EUR"}}
COUPON = {"kind": "coupon", "amount": {"amount": "15.00", "currency": "EUR"}}


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from each_store(request.param, tmp_path)


def _engine(store: Store) -> Engine:
    return Engine(store, clock=ManualClock(START))


def _open(engine: Engine, case_id: str = "case-i1", **more: Any) -> str:
    return engine.open_case(
        actor="agent:a", customer=CUSTOMER, channel="web", case_id=case_id, **more
    ).id


def _apologised(engine: Engine) -> str:
    cid = _open(engine)
    engine.acknowledge(cid, actor="agent:a")
    engine.listen(cid, actor="agent:a", note="The vase arrived broken.")
    engine.record(
        cid, actor="agent:a", category="delivery", subject="broken", contact="ann@example.com",
        occurred_on="2026-11-01", details="Order 42.",
    )  # fmt: skip
    engine.apologise(cid, actor="agent:a", message="Sorry.")
    return cid


def _types(store: Store, case_id: str) -> list[str]:
    return [e.type for e in store.events(case_id)]


# -- other inputs under the same key ----------------------------------------------------


def test_a_retry_with_another_note_text_is_refused_and_writes_nothing(store: Store) -> None:
    """The bug this fixes: the second note was silently answered with the first one's
    result, as if it had been recorded."""
    engine = _engine(store)
    cid = _open(engine)
    first = engine.add_note(cid, actor="agent:a", text="called the courier", idempotency_key="n-1")
    with pytest.raises(IdempotencyKeyReused) as refused:
        engine.add_note(cid, actor="agent:a", text="refund sent", idempotency_key="n-1")
    error = refused.value
    assert (error.key, error.case_id, error.step, error.differs) == (
        "n-1", cid, "add_note", "inputs"
    )  # fmt: skip
    assert (error.earlier_case_id, error.earlier_step) == (cid, "add_note")
    assert "the inputs differ from the first command's" in str(error)
    assert "Nothing was written" in str(error)
    assert _types(store, cid) == ["open", "add_note"]
    assert engine.get(cid) == first


def test_a_retry_with_another_remedy_amount_or_option_is_refused(store: Store) -> None:
    engine = _engine(store)
    cid = _apologised(engine)
    engine.offer_remedy(cid, actor="agent:a", options=[REFUND, COUPON], idempotency_key="offer")
    more = {**REFUND, "amount": {"amount": "45.00", "currency": "EUR"}}
    with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
        engine.offer_remedy(cid, actor="agent:a", options=[more, COUPON], idempotency_key="offer")
    with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
        engine.offer_remedy(cid, actor="agent:a", options=[REFUND], idempotency_key="offer")
    due = START + timedelta(days=3)
    accept = {"actor": "customer:c-1", "promise": "refund", "due": due, "idempotency_key": "acc"}
    engine.accept_remedy(cid, option=1, **accept)
    with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
        engine.accept_remedy(cid, option=2, **accept)
    with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
        engine.accept_remedy(cid, option=1, **{**accept, "due": due + timedelta(seconds=1)})
    assert _types(store, cid)[-2:] == ["offer_remedy", "accept_remedy"]
    promise = engine.get(cid).promise
    assert promise is not None
    assert (promise.option, promise.due_at) == (1, due)


def test_the_same_inputs_written_another_way_are_the_same_command(store: Store) -> None:
    """What the canonical form makes equal: a ``Money`` or ``Remedy`` and its JSON form,
    a Decimal and its text, one instant in two time zones, a tuple and a list, an input
    given as None and one left out, an ``Actor`` and its text."""
    engine = _engine(store)
    cid = _apologised(engine)
    helsinki = ZoneInfo("Europe/Helsinki")
    offered = engine.offer_remedy(
        cid, actor=Actor(role="agent", id="a"),
        options=(Remedy(kind="refund", amount=Money.of("40.00", "EUR")), COUPON),
        idempotency_key="offer",
    )  # fmt: skip
    again = engine.step(
        cid, "offer_remedy", actor="agent:a", idempotency_key="offer", note=None,
        options=[
            {"kind": "refund", "amount": {"amount": Decimal("40.00"), "currency": "EUR"}},
            {"kind": "coupon", "amount": Money.of("15.00", "EUR")},
        ],
    )  # fmt: skip
    assert again == offered
    due = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    accepted = engine.accept_remedy(
        cid, actor="customer:c-1", option=1, promise="refund", due=due, idempotency_key="acc"
    )
    assert accepted == engine.accept_remedy(
        cid, actor="customer:c-1", option=1, promise="refund", due=due.astimezone(helsinki),
        idempotency_key="acc",
    )  # fmt: skip
    assert _types(store, cid)[-2:] == ["offer_remedy", "accept_remedy"]


def test_a_retry_by_another_actor_is_refused_naming_both(store: Store) -> None:
    """Who took a step is evidence: a second agent's command under a key the first one
    spent would be recorded as the first agent's."""
    engine = _engine(store)
    cid = _open(engine)
    engine.add_note(cid, actor="agent:alice", text="same text", idempotency_key="n-1")
    with pytest.raises(IdempotencyKeyReused) as refused:
        engine.add_note(cid, actor="agent:bob", text="same text", idempotency_key="n-1")
    assert refused.value.differs == "actor"
    assert "the actor differs (agent:alice first, agent:bob now)" in str(refused.value)
    assert [e.actor for e in store.events(cid)] == ["agent:a", "agent:alice"]


def test_a_retried_open_case_compares_its_inputs_and_its_explicit_id(store: Store) -> None:
    """open_case's inputs are its keyword arguments, its defaults and explicit
    ``case_id`` included: a retry that names the id the first open made is another
    command (decision 0032 amends 0022 here)."""
    engine = _engine(store)
    opened = engine.open_case(
        actor="agent:a", customer=CUSTOMER, channel="web", subject="Broken vase",
        occurred_on=date(2026, 11, 1), idempotency_key="open-1",
    )  # fmt: skip
    assert opened == engine.open_case(
        actor="agent:a", customer=dict(CUSTOMER), channel="web", subject="Broken vase",
        occurred_on="2026-11-01", details=None, priority=Priority.NORMAL,
        idempotency_key="open-1",
    )  # fmt: skip
    for change in ({"subject": "Broken lamp"}, {"channel": "email"}, {"case_id": opened.id}):
        fields: dict[str, Any] = {
            "actor": "agent:a", "customer": CUSTOMER, "channel": "web",
            "subject": "Broken vase", "occurred_on": "2026-11-01", **change,
        }  # fmt: skip
        with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
            engine.open_case(idempotency_key="open-1", **fields)
    ann = Customer(id="c-2", name="Ann Other", tier="gold")
    second = engine.open_case(
        actor="agent:a", customer=ann, channel="web", idempotency_key="open-2"
    )
    assert second == engine.open_case(
        actor="agent:a", customer=ann, channel="web", idempotency_key="open-2"
    )
    assert sorted(store.case_ids()) == sorted([opened.id, second.id])


def test_a_key_stored_without_a_fingerprint_keeps_the_case_and_step_check(
    store: Store,
) -> None:
    """A key recorded before the upgrade (or by a store that keeps no fingerprint) is
    checked as before: same case and step return the first result whatever the inputs;
    another step is refused."""
    engine = _engine(store)
    cid = _open(engine)
    case = store.load(cid)
    event = make_event(
        cid, 2, "add_note", START, "agent:a", {"text": "before the upgrade"},
        engine.policy.stamp, case.head_hash,
    )  # fmt: skip
    store.append(replay([*store.events(cid), event]), [event], 1, None, "old-key")
    assert store.find_idempotent("old-key") == (cid, 2, None)
    again = engine.add_note(cid, actor="agent:b", text="other text", idempotency_key="old-key")
    assert again.version == 2
    assert [n.text for n in again.notes] == ["before the upgrade"]
    with pytest.raises(IdempotencyKeyReused, match="the step differs"):
        engine.acknowledge(cid, actor="agent:a", idempotency_key="old-key")
    assert _types(store, cid) == ["open", "add_note"]


def test_a_fingerprint_of_an_unknown_scheme_is_not_compared(store: Store) -> None:
    """A newer complaintflow may write fingerprints of another form (a rolling deploy
    runs both): this one cannot compare them, so it checks case and step only."""
    engine = _engine(store)
    cid = _open(engine)
    case = store.load(cid)
    event = make_event(
        cid, 2, "add_note", START, "agent:a", {"text": "by a newer version"},
        engine.policy.stamp, case.head_hash,
    )  # fmt: skip
    snapshot = replay([*store.events(cid), event])
    store.append(snapshot, [event], 1, None, "new-key", idempotency_fingerprint="v9:abc")
    assert engine.add_note(cid, actor="agent:a", text="x", idempotency_key="new-key") == snapshot


def test_every_command_records_its_fingerprint_with_the_key(store: Store) -> None:
    engine = _engine(store)
    cid = _open(engine, idempotency_key="open-k")
    engine.add_note(cid, actor="agent:a", text="n", idempotency_key="note-k")
    assert store.find_idempotent("open-k") == (
        cid, 1, fingerprint("open", cid, "agent:a", _open_inputs()),
    )  # fmt: skip
    assert store.find_idempotent("note-k") == (
        cid, 2, fingerprint("add_note", cid, "agent:a", {"text": "n"}),
    )  # fmt: skip


def _open_inputs() -> dict[str, Any]:
    """What ``_open`` passes to ``open_case`` (its defaults included)."""
    return {
        "customer": CUSTOMER, "channel": "web", "priority": "normal",
        "complainant_type": "unknown",
    }  # fmt: skip


# -- inputs that have no canonical form -------------------------------------------------


def test_a_retry_whose_inputs_have_no_canonical_form_is_refused_naming_them(
    store: Store,
) -> None:
    engine = _engine(store)
    cid = _apologised(engine)
    engine.offer_remedy(cid, actor="agent:a", options=[REFUND], idempotency_key="offer")
    before = store.load(cid)
    bad = {**REFUND, "amount": {"amount": 40.0, "currency": "EUR"}}
    with pytest.raises(InvalidStepData) as refused:
        engine.offer_remedy(cid, actor="agent:a", options=[bad], idempotency_key="offer")
    assert refused.value.problems[0][0] == "options[1].amount.amount"
    assert "a float" in refused.value.problems[0][1]
    with pytest.raises(InvalidStepData, match=r"note: a set has no order"):
        engine.step(cid, "offer_remedy", actor="agent:a", idempotency_key="offer",
                    options=[REFUND], note={"x"})  # fmt: skip
    assert store.load(cid) == before


def test_an_input_a_guard_took_without_a_canonical_form_is_refused_on_a_first_command(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped guards refuse such inputs first; a guard that lets one through (a
    changed guard, say) still gets a refusal naming it, and nothing is written."""
    from workflow import guards

    engine = _engine(store)
    cid = _open(engine)
    lenient = (lambda ctx: {"text": "taken"}, guards.GUARDS["add_note"][1])
    monkeypatch.setitem(guards.GUARDS, "add_note", lenient)
    with pytest.raises(InvalidStepData, match=r"text: a float") as refused:
        engine.add_note(cid, actor="agent:a", text=1.5, idempotency_key="k")  # type: ignore[arg-type]
    assert (refused.value.state, refused.value.step) == ("received", "add_note")
    assert _types(store, cid) == ["open"]
    assert store.find_idempotent("k") is None
    assert engine.add_note(cid, actor="agent:a", text=1.5).version == 2  # type: ignore[arg-type]


# -- malformed keys ---------------------------------------------------------------------

BAD_KEYS = [
    pytest.param("", "it is empty", id="empty"),
    pytest.param("   ", "it is blank", id="blank"),
    pytest.param("k" * 201, r"\(201 characters\) .*longer than 200 characters", id="too-long"),
    pytest.param(42, "an idempotency key is text, not int", id="int"),
    pytest.param(b"k-1", "an idempotency key is text, not bytes", id="bytes"),
    pytest.param("a\nb", r"control character U\+000A at position 2", id="newline"),
    pytest.param("a\x00b", r"control character U\+0000 at position 2", id="nul"),
    pytest.param("k\ud800", r"lone surrogate U\+D800 at position 2", id="surrogate"),
]


@pytest.mark.parametrize(("key", "problem"), BAD_KEYS)
def test_a_malformed_key_is_refused_naming_it_before_anything_is_written(
    store: Store, key: Any, problem: str
) -> None:
    """Before: a bare ValueError for some (not naming the key), and on the SQL stores a
    NUL or a lone surrogate reached the driver (a StoreError on PostgreSQL, a
    UnicodeEncodeError crash) while the memory store took them."""
    engine = _engine(store)
    cid = _open(engine)
    with pytest.raises(InvalidIdempotencyKey, match=problem) as refused:
        engine.add_note(cid, actor="agent:a", text="x", idempotency_key=key)
    error = refused.value
    assert isinstance(error, ComplaintflowError)
    assert isinstance(error, ValueError)  # what was raised before, for callers catching it
    assert (error.key, error.case_id, error.step) == (key, cid, "add_note")
    assert "idempotency key" in str(error)
    assert "Nothing was written" in str(error)
    with pytest.raises(InvalidIdempotencyKey, match=problem):
        engine.open_case(actor="agent:a", customer=CUSTOMER, channel="web", idempotency_key=key)
    assert _types(store, cid) == ["open"]
    assert list(store.case_ids()) == [cid]


def test_a_long_key_is_shown_shortened_in_the_message() -> None:
    error = InvalidIdempotencyKey("x" * 500, "it is longer than 200 characters")
    assert "x" * 41 not in str(error)
    assert "(500 characters)" in str(error)


def test_keys_of_200_characters_and_any_printable_text_are_taken(store: Store) -> None:
    engine = _engine(store)
    cid = _open(engine)
    for n, key in enumerate(["k" * 200, "ü" * 200, "Grüße ✓ 日本 \u200b", " padded "], start=2):
        assert engine.add_note(cid, actor="agent:a", text=f"{n}", idempotency_key=key).version == n
        assert engine.add_note(cid, actor="agent:a", text=f"{n}", idempotency_key=key).version == n
        assert store.find_idempotent(key) is not None
    assert len(store.events(cid)) == 5


# -- the canonical form -----------------------------------------------------------------


def test_a_fingerprint_is_sha256_of_the_documented_canonical_text() -> None:
    """The form decision 0032 documents, byte for byte: a third party can compute it."""
    import hashlib

    text = (
        '{"actor":"agent:a","case_id":"case-1","inputs":{"due":"2026-11-05T12:00:00.000000+00:00",'
        '"options":[{"amount":{"amount":"40.00","currency":"EUR"},"kind":"refund"}],'
        '"text":"Grüße"},"step":"add_note"}'
    )
    expected = FINGERPRINT_SCHEME + hashlib.sha256(text.encode()).hexdigest()
    inputs = {
        "text": "Grüße",
        "options": [Remedy(kind="refund", amount=Money.of("40.00", "EUR"))],
        "due": datetime(2026, 11, 5, 14, 0, tzinfo=ZoneInfo("Europe/Helsinki")),
        "note": None,
    }
    assert fingerprint("add_note", "case-1", "agent:a", inputs) == expected
    assert len(expected) == 67


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (Decimal("40.00"), "40.00"),
        (Money.of("40.00", "EUR"), {"currency": "EUR", "amount": "40.00"}),
        ((1, 2), [1, 2]),
        (Priority.HIGH, "high"),
        (Actor(role="agent", id="a"), "agent:a"),
        (date(2026, 11, 1), "2026-11-01"),
        (datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 1, 10, tzinfo=ZoneInfo("CET"))),
    ],
)
def test_values_the_library_reads_alike_have_one_canonical_form(one: Any, other: Any) -> None:
    assert fingerprint("s", "c", "a:b", {"v": one}) == fingerprint("s", "c", "a:b", {"v": other})


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (1, "1"),
        (1, True),
        (Decimal("40.00"), Decimal("40.0")),
        (" text", "text"),
        ([1, 2], [2, 1]),
        ({"a": None}, {}),
    ],
)
def test_values_that_differ_have_other_fingerprints(one: Any, other: Any) -> None:
    assert fingerprint("s", "c", "a:b", {"v": one}) != fingerprint("s", "c", "a:b", {"v": other})


def test_step_case_and_actor_are_part_of_the_fingerprint() -> None:
    base = fingerprint("add_note", "c-1", "agent:a", {"text": "x"})
    assert base != fingerprint("listen", "c-1", "agent:a", {"text": "x"})
    assert base != fingerprint("add_note", "c-2", "agent:a", {"text": "x"})
    assert base != fingerprint("add_note", None, "agent:a", {"text": "x"})
    assert base != fingerprint("add_note", "c-1", "agent:b", {"text": "x"})


@pytest.mark.parametrize(
    ("value", "path", "problem"),
    [
        (1.5, "v", "a float"),
        (float("nan"), "v", "a float"),
        (datetime(2026, 11, 1, 9), "v", "naive datetime"),  # noqa: DTZ001
        ({"a": [1, {2}]}, "v.a[2]", "a set has no order"),
        ({1: "x"}, "v", "keys must be text, got int"),
        (b"x", "v", "bytes"),
        (object(), "v", "object has no canonical form"),
        (timedelta(days=1), "v", "timedelta has no canonical form"),
    ],
)
def test_a_value_without_a_canonical_form_is_named_with_its_path(
    value: Any, path: str, problem: str
) -> None:
    from workflow.idempotency import Uncanonical

    with pytest.raises(Uncanonical) as refused:
        fingerprint("s", "c", "a:b", {"v": value})
    assert refused.value.path == path
    assert problem in refused.value.problem


def test_a_value_that_contains_itself_is_refused_not_a_recursion_error() -> None:
    from workflow.idempotency import Uncanonical

    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(Uncanonical, match="nested more than"):
        fingerprint("s", "c", "a:b", {"v": loop})
