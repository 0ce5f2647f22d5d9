"""Actors: a policy-style role and a checked id, refused clearly wherever one is built
or parsed; four eyes not fooled by invisible characters; histories written before ids
were checked still replayed, verified, exported and shown (escaped)
(docs/decisions/0036-actor-roles-and-ids.md)."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import AGENT, CUSTOMER, LEAD, PATH, START, open_case, unchecked_actor
from tests.stores import STORE_KINDS, each_store, sqlite_url
from workflow import (
    Actor,
    ComplaintflowError,
    Customer,
    Decision,
    Engine,
    InvalidActor,
    InvalidStepData,
    ManualClock,
    OfferRequest,
    Policy,
    PolicyViolation,
    audit,
)
from workflow.cli import main
from workflow.domain import person_of
from workflow.personal import vault_of

ROLE_RULE = "a role is a lower-case name"
ID_RULE = "an id is 1 to 200 characters"


def refused(given: str) -> InvalidActor:
    """The ``InvalidActor`` both ways of making an actor raise for ``role:id`` text
    ``given``; they must say the same."""
    with pytest.raises(InvalidActor) as parsed:
        Actor.parse(given)
    role, _, id_ = given.partition(":")
    with pytest.raises(InvalidActor) as built:
        Actor(role=role, id=id_)
    assert str(built.value) == str(parsed.value)
    return parsed.value


# -- the error ---------------------------------------------------------------------------


def test_invalid_actor_is_a_library_error_and_a_value_error() -> None:
    """Callers catching ``ValueError`` (what a malformed actor raised before) still do."""
    import workflow

    assert issubclass(InvalidActor, ComplaintflowError)
    assert issubclass(InvalidActor, ValueError)
    assert "InvalidActor" in workflow.__all__
    assert workflow.InvalidActor is InvalidActor


# -- roles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "problem", "position", "character"),
    [
        ("Agent:alice", "its role holds U+0041 'A' at position 1", 1, "U+0041"),
        ("team lead:sam", "its role holds U+0020 ' ' at position 5", 5, "U+0020"),
        ("agent.x:alice", "its role holds U+002E '.' at position 6", 6, "U+002E"),
        ("-agent:alice", "its role starts with U+002D '-'", 1, "U+002D"),
        ("_agent:alice", "its role starts with U+005F '_'", 1, "U+005F"),
        ("\u00e9quipe:alice", "its role holds U+00E9 '\u00e9' at position 1", 1, "U+00E9"),
        (":alice", "its role is empty", None, None),
        ("a" * 65 + ":alice", "its role is 65 characters long, more than 64", None, None),
    ],
)
def test_a_role_that_is_not_a_policy_style_name_is_refused_naming_where(
    given: str, problem: str, position: int | None, character: str | None
) -> None:
    error = refused(given)
    assert problem in str(error)
    assert ROLE_RULE in str(error)
    assert (error.part, error.position, error.character) == ("role", position, character)


@pytest.mark.parametrize(("role", "code"), [("agent\x1b[2K", "U+001B"), ("agent\n", "U+000A")])
def test_a_role_with_a_control_character_names_it_by_code_point_only(role: str, code: str) -> None:
    """A newline at the end too (Python's ``$`` would match before it)."""
    error = refused(f"{role}:alice")
    assert f"its role holds {code} at position 6" in str(error)
    assert role[5] not in str(error)
    assert str(error).isprintable()


@pytest.mark.parametrize("role", ["agent", "team-lead", "1st-line", "dpo_2", "a" * 64])
def test_every_name_a_policy_file_may_give_a_role_is_taken(role: str) -> None:
    """The policy files' own pattern: ``1st-line`` was a role a policy could name that
    ``Actor.parse`` refused (it wanted a letter first)."""
    from pydantic import TypeAdapter

    from policies.types import Name

    TypeAdapter(Name).validate_python(role)  # a policy file may name it
    assert Actor.parse(f"{role}:alice") == Actor(role=role, id="alice")


# -- ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_", "problem", "position", "character"),
    [
        ("bob\x07", "its id holds U+0007 (a control character) at position 4", 4, "U+0007"),
        ("b\nob", "its id holds U+000A (a control character) at position 2", 2, "U+000A"),
        ("bo\x9bb", "its id holds U+009B (a control character) at position 3", 3, "U+009B"),
        ("bob\u202e", "its id holds U+202E (a format character) at position 4", 4, "U+202E"),
        ("\u200bbob", "its id holds U+200B (a format character) at position 1", 1, "U+200B"),
        ("bob\ud800", "its id holds U+D800 (a surrogate) at position 4", 4, "U+D800"),
        ("b\ue000ob", "its id holds U+E000 (a private-use character) at position 2", 2,
         "U+E000"),
        ("\U000f0000", "its id holds U+F0000 (a private-use character) at position 1", 1,
         "U+F0000"),
        (" bob", "its id starts with whitespace (U+0020 at position 1)", 1, "U+0020"),
        ("bob ", "its id ends with whitespace (U+0020 at position 4)", 4, "U+0020"),
        ("bob\u00a0", "its id ends with whitespace (U+00A0 at position 4)", 4, "U+00A0"),
        ("\u3000bob", "its id starts with whitespace (U+3000 at position 1)", 1, "U+3000"),
        ("jose\u0301", "its id is not in Unicode normalisation form NFC (from position 4, "
         "U+0065)", 4, "U+0065"),
        ("\u212bngstr\u00f6m", "its id is not in Unicode normalisation form NFC (from "
         "position 1, U+212B)", 1, "U+212B"),
        ("", "its id is empty", None, None),
        ("x" * 201, "its id is 201 characters long, more than 200", None, None),
    ],
)  # fmt: skip
def test_an_id_breaking_a_rule_is_refused_naming_what_and_where(
    id_: str, problem: str, position: int | None, character: str | None
) -> None:
    error = refused(f"agent:{id_}")
    assert problem in str(error)
    assert ID_RULE in str(error)
    assert (error.part, error.position, error.character) == ("id", position, character)
    assert str(error).isprintable()  # no control, format or surrogate character raw


def test_an_id_not_in_nfc_is_refused_not_normalised() -> None:
    """The recorded id must be what the caller passed: the message says how to pass the
    NFC form instead of the library quietly recording another text."""
    error = refused("customer:Jos\u0065\u0301")
    assert "unicodedata.normalize('NFC', id)" in str(error)
    nfc = unicodedata.normalize("NFC", "customer:Jos\u0065\u0301")
    assert str(Actor.parse(nfc)) == nfc


@pytest.mark.parametrize(
    "id_",
    ["alice", "c-42", "Ann Example", "a:b", "\uff41lice", "Jos\u00e9", "\u5f20\u4f1f",
     "x" * 200, "bob\u00a0smith", "\U0001f600"],
)  # fmt: skip
def test_an_id_keeping_the_rules_is_recorded_exactly_as_given(id_: str) -> None:
    actor = Actor.parse(f"agent:{id_}")
    assert (actor.role, actor.id, str(actor)) == ("agent", id_, f"agent:{id_}")
    assert Actor(role="agent", id=id_) == actor


def test_long_refused_text_is_shown_cut() -> None:
    error = refused("agent:" + "x" * 150 + "\x07" + "y" * 40)
    assert "(197 characters)" in str(error)
    assert "y" * 40 not in str(error)
    assert "its id holds U+0007 (a control character) at position 151" in str(error)


# -- the shape of an actor ---------------------------------------------------------------


def test_text_without_a_role_is_refused() -> None:
    with pytest.raises(InvalidActor, match="is not 'role:id' text") as error:
        Actor.parse("alice")
    assert (error.value.part, error.value.actor) == ("actor", "alice")


@pytest.mark.parametrize("given", [42, None, b"agent:alice"])
def test_an_actor_that_is_not_text_is_refused(given: object) -> None:
    with pytest.raises(InvalidActor, match=f"it is {type(given).__name__}, not text"):
        Actor.parse(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(("role", "id_", "part"), [(1, "alice", "role"), ("agent", 7, "id")])
def test_a_role_or_id_that_is_not_text_is_refused(role: Any, id_: Any, part: str) -> None:
    with pytest.raises(InvalidActor, match=f"its {part} must be text, not int") as error:
        Actor(role=role, id=id_)
    assert error.value.part == part


@given(st.text(max_size=30))
def test_any_text_is_an_actor_recorded_as_given_or_refused_in_printable_words(
    text: str,
) -> None:
    try:
        actor = Actor.parse(text)
    except InvalidActor as error:
        message = str(error)
    else:
        assert str(actor) == text
        return
    assert message.isprintable()


def test_parsing_is_remembered_per_text() -> None:
    """The step hot path: one check per distinct text, then the same ``Actor``."""
    from workflow.domain import _parse_actor

    text = "agent:remembered-once"
    first = Actor.parse(text)
    hits = _parse_actor.cache_info().hits
    assert Actor.parse(text) is first
    assert _parse_actor.cache_info().hits == hits + 1


def test_an_actor_is_frozen() -> None:
    actor = Actor.parse(AGENT)
    with pytest.raises(AttributeError):
        actor.id = "bob\x07"  # type: ignore[misc]


# -- the engine --------------------------------------------------------------------------


@pytest.fixture
def engine_with_case(engine: Engine) -> tuple[Engine, str]:
    return engine, open_case(engine)


def _written(engine: Engine) -> list[Any]:
    store = engine.store
    return [(cid, store.load(cid), list(store.events(cid))) for cid in sorted(store.case_ids())]


def test_a_step_by_an_invalid_actor_is_refused_naming_the_step_and_case_and_writes_nothing(
    engine_with_case: tuple[Engine, str],
) -> None:
    engine, cid = engine_with_case
    before = _written(engine)
    with pytest.raises(InvalidActor) as error:
        engine.acknowledge(cid, actor="agent:alice\u202e", message="Hello",
                           idempotency_key="k-1")  # fmt: skip
    message = str(error.value)
    assert f"given to 'acknowledge' on case {cid}" in message
    assert "its id holds U+202E (a format character) at position 6" in message
    assert "Nothing was written" in message
    assert (error.value.step, error.value.case_id) == ("acknowledge", cid)
    assert _written(engine) == before
    # The key was not spent: the same command by a valid actor is taken.
    case = engine.acknowledge(cid, actor=AGENT, message="Hello", idempotency_key="k-1")
    assert case.state == "acknowledged"


@pytest.mark.parametrize("actor", ["Agent:alice", "agent: alice", "agent:alice\x00", "alice"])
def test_every_engine_method_taking_an_actor_refuses_an_invalid_one(
    engine_with_case: tuple[Engine, str], actor: str
) -> None:
    engine, cid = engine_with_case
    before = _written(engine)
    calls = {
        "open": lambda: engine.open_case(
            actor=actor, customer={"id": "c-2", "name": "N"}, channel="web", case_id="c-2"
        ),
        "classify": lambda: engine.step(cid, "classify", actor=actor, complainant_type="meek"),
        "acknowledge": lambda: engine.acknowledge(cid, actor=actor, message="m"),
        "add_note": lambda: engine.add_note(cid, actor=actor, text="x"),
        "erase_customer": lambda: engine.erase_customer("c-1", actor=actor, reason="GDPR-1"),
        "purge_expired": lambda: engine.purge_expired(
            actor=actor, now=START + timedelta(days=365 * 30)
        ),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidActor) as error:
            call()
        assert error.value.step == name
        assert "Nothing was written" in str(error.value)
    assert _written(engine) == before
    assert list(engine.store.tombstones()) == []


@pytest.mark.parametrize(
    ("case_id", "problem"),
    [
        ("", "the case id is empty"),
        ("T-1\x07", "the case id holds U+0007 (a control character) at position 4"),
        ("T-\u202e1", "the case id holds U+202E (a format character) at position 3"),
        (" T-1", "the case id starts with whitespace (U+0020 at position 1)"),
        ("x" * 201, "the case id is 201 characters long, more than 200"),
        ("Jose\u0301", "the case id is not in Unicode normalisation form NFC"),
        (42, "the case id must be text, not int"),
    ],
)
def test_a_case_id_given_to_open_case_follows_an_actor_ids_rules(
    engine_with_case: tuple[Engine, str], case_id: Any, problem: str
) -> None:
    """A case id is written into every event, the store's keys and every command's output:
    one given by the caller (a ticket number) is checked as an actor id is."""
    engine, _ = engine_with_case
    before = _written(engine)
    with pytest.raises(InvalidStepData) as error:
        engine.open_case(actor=AGENT, customer={"id": "c-2", "name": "N"}, channel="web",
                         case_id=case_id, idempotency_key="k-open")  # fmt: skip
    assert error.value.problems[0][0] == "case_id"
    assert problem in error.value.problems[0][1]
    assert str(error.value).isprintable()  # shown escaped
    assert _written(engine) == before
    taken = engine.open_case(actor=AGENT, customer={"id": "c-2", "name": "N"}, channel="web",
                             case_id="T-\u00e91", idempotency_key="k-open")  # fmt: skip
    assert taken.id == "T-\u00e91"  # the key was not spent on the refused command


@pytest.mark.parametrize(
    ("customer_id", "problem"),
    [
        ("c-1\x1b[2J", "the customer id holds U+001B (a control character) at position 4"),
        ("c-1\nc-2", "the customer id holds U+000A (a control character) at position 4"),
        ("c-\u202e1", "the customer id holds U+202E (a format character) at position 3"),
        ("c-1\u200b", "the customer id holds U+200B (a format character) at position 4"),
        ("c-1 ", "the customer id ends with whitespace (U+0020 at position 4)"),
        ("Jose\u0301", "the customer id is not in Unicode normalisation form NFC"),
    ],
)
@pytest.mark.parametrize("as_record", [False, True])
def test_a_customer_id_given_to_open_case_follows_an_actor_ids_rules(
    engine_with_case: tuple[Engine, str], customer_id: str, problem: str, as_record: bool
) -> None:
    """Regression: a customer id is written into the open event and shown by the command
    line, the reports and their CSV, and logged by stores; one holding an escape
    sequence, a line break or a bidi override was recorded as given."""
    engine, _ = engine_with_case
    before = _written(engine)
    given = {"id": customer_id, "name": "N"}
    customer = Customer(**given) if as_record else given  # a record is built unchecked
    with pytest.raises(InvalidStepData) as error:
        engine.open_case(actor=AGENT, customer=customer, channel="web", case_id="T-9",
                         idempotency_key="k-open")  # fmt: skip
    assert error.value.problems == (("id", error.value.problems[0][1]),)
    assert problem in error.value.problems[0][1]
    assert str(error.value).isprintable()
    assert _written(engine) == before
    taken = engine.open_case(actor=AGENT, customer={"id": "c-\u00e9", "name": "N"},
                             channel="web", case_id="T-9", idempotency_key="k-open")  # fmt: skip
    assert taken.customer.id == "c-\u00e9"  # the key was not spent on the refused command


def test_a_customer_id_stored_before_ids_were_checked_is_still_read_found_and_erased(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customer ids are checked when a case is opened, never when one is read: a case
    whose customer id the rules refuse, written before they existed, is still read, found
    by it and erased by it."""
    engine = Engine(store, clock=ManualClock(START))
    with monkeypatch.context() as before_the_check:
        before_the_check.setattr("workflow.engine.customer_id_problem", lambda _: None)
        cid = engine.open_case(
            actor=AGENT, customer={"id": "c-\x07", "name": "N"}, channel="web"
        ).id
    assert engine.get(cid).customer.id == "c-\x07"
    assert engine.replay(cid) == engine.get(cid)
    assert [c.id for c in engine.find_cases(customer_id="c-\x07").cases] == [cid]
    assert [c.id for c in engine.erase_customer("c-\x07", actor=LEAD, reason="GDPR-1")] == [cid]


def test_case_ids_from_your_own_factory_are_checked_too(store: MemoryStore) -> None:
    engine = Engine(store, clock=ManualClock(START), new_case_id=lambda: "T-1\n")
    with pytest.raises(InvalidStepData, match=r"the case id holds U\+000A"):
        open_case(engine)
    assert list(store.case_ids()) == []


def test_an_actor_given_as_an_actor_is_taken_as_built(engine_with_case: tuple[Engine, str]) -> None:
    engine, cid = engine_with_case
    case = engine.add_note(cid, actor=Actor(role="1st-line", id="Jos\u00e9"), text="x")
    assert case.notes[-1].by == "1st-line:Jos\u00e9"
    assert engine.history(cid)[-1].actor == "1st-line:Jos\u00e9"


def test_the_command_line_refuses_an_invalid_actor_in_one_escaped_line(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    SqlStore(url, create=True).close()
    result = CliRunner().invoke(
        main, ["privacy", "erase", "c-1", "--store", url, "--actor", "dpo:kim\x1b[2K",
               "--reason", "GDPR-1"],
    )  # fmt: skip
    assert result.exit_code == 2  # a usage error naming the option (decision 0058)
    assert "Invalid value for '--actor': 'dpo:kim\\x1b[2K' is refused" in result.output
    assert "its id holds U+001B (a control character) at position 4" in result.output
    assert "\x1b" not in result.output
    assert "Traceback" not in result.output


# -- four eyes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alice\u200b", "alice"),  # zero-width space (a format character)
        ("al\u00adice", "alice"),  # soft hyphen
        ("\u2066alice\u2069", "alice"),  # bidi isolates
        ("alice\x00", "alice"),
        ("al\x7fice", "alice"),
        ("jose\u200b\u0301", "Jos\u00e9"),  # dropped before composing: é either way
        ("bob\nsmith", "bob smith"),  # a line break still parts words, as a space does
        ("bob\tsmith", "BOB  SMITH"),
        ("\uff41lice ", "alice"),
    ],
)
def test_four_eyes_compares_people_ignoring_invisible_characters(one: str, other: str) -> None:
    assert person_of(one) == person_of(other)


def test_four_eyes_still_tells_different_people_apart() -> None:
    assert person_of("alice") != person_of("alicia")
    assert person_of("bob smith") != person_of("bobsmith")


def _needs_approval(store: Any, clock: ManualClock) -> Engine:
    def always_approve(policy: Policy, request: OfferRequest) -> Decision:
        return Decision.needs_approval("test", "always")

    return Engine(store, clock=clock, decide=always_approve)


@pytest.mark.parametrize("maker_id", ["alice\u200b", "\u2066alice\u2069", "al\u00adice", "alice "])
def test_an_offer_stored_by_an_id_with_invisible_characters_needs_another_person(
    store: Any, clock: ManualClock, maker_id: str
) -> None:
    """An offer recorded (before ids were checked) as made by ``alice`` with invisible
    characters is not approved by ``alice``: four eyes drops them when it compares."""
    engine = _needs_approval(store, clock)
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    engine.step(cid, "offer_remedy", actor=unchecked_actor("agent", maker_id), **PATH[4][1])
    before = engine.get(cid)
    for approver in ("team-lead:alice", "team-lead:ALICE", "team-lead:\uff41lice"):
        with pytest.raises(PolicyViolation, match="four_eyes"):
            engine.approve_offer(cid, actor=approver)
    assert engine.get(cid) == before
    assert engine.approve_offer(cid, actor=LEAD).state == "remedy_offered"


# -- histories stored before ids were checked --------------------------------------------

#: Ids the rules now refuse, as an old history may hold them (every kind of rule).
OLD_IDS = ["bob\x07", "bob\u202e", " bob", "bob ", "jose\u0301", "x\ue000", "y\x1b[2K"]


@pytest.fixture(params=STORE_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from each_store(request.param, tmp_path)


def _old_history(engine: Engine) -> str:
    """A case whose every step was taken by an actor the rules now refuse."""
    olds = [unchecked_actor("agent", id_) for id_ in OLD_IDS]
    cid = engine.open_case(
        actor=olds[0], customer={"id": "c-old", "name": "Ann"}, channel="email", subject="s"
    ).id
    for number, (step, inputs) in enumerate(PATH[:6]):
        actor = (
            unchecked_actor("customer", "c\x011")
            if step == "accept_remedy"
            else olds[(number + 1) % len(olds)]
        )
        engine.step(cid, step, actor=actor, **inputs)
    engine.add_note(cid, actor=olds[-1], text="note")
    return cid


def test_an_old_history_with_refused_ids_replays_verifies_and_exports(any_store: Any) -> None:
    clock = ManualClock(START)
    engine = Engine(any_store, clock=clock)
    cid = _old_history(engine)
    events = engine.history(cid)
    assert {e.actor for e in events} >= {f"agent:{id_}" for id_ in OLD_IDS}
    assert engine.replay(cid) == engine.get(cid)
    assert audit.verify_store(any_store) == []
    vault = vault_of(engine.get(cid).personal)
    assert audit.state_at(events, START + timedelta(days=1), vault) == engine.get(cid)
    out = io.StringIO()
    assert audit.export_jsonl(any_store, out) == len(events)
    assert audit.verify_export(out.getvalue().splitlines()) == []
    assert [e.actor for e in audit.read_jsonl(out.getvalue().splitlines())] == [
        e.actor for e in events
    ]
    table = io.StringIO()
    assert audit.export_csv(any_store, table) == len(events)
    assert [row["actor"] for row in csv.DictReader(io.StringIO(table.getvalue()))] == [
        e.actor for e in events
    ]
    # The case goes on: a step by a valid actor on the old history is taken.
    clock.advance(hours=1)
    assert engine.keep_promise(cid, actor=AGENT, evidence="R-1").state == "promise_kept"
    assert audit.verify_store(any_store) == []


def test_an_old_history_reopens_from_a_fresh_store_object(tmp_path: Path) -> None:
    """Read back by another process (a new SQL store object: nothing cached)."""
    url = sqlite_url(tmp_path)
    first = SqlStore(url, create=True)
    cid = _old_history(Engine(first, clock=ManualClock(START)))
    first.close()
    again = Engine(SqlStore(url), clock=ManualClock(START + timedelta(days=1)))
    try:
        assert again.replay(cid) == again.get(cid)
        assert again.verify() == []
        assert again.add_note(cid, actor=AGENT, text="still works").version == 9
    finally:
        again.store.close()


# -- the command line shows ids escaped ----------------------------------------------------


def test_printable_is_shared_by_the_command_line() -> None:
    from workflow.cli.common import printable

    assert printable("agent:y\x1b[2K\u202e\u2028") == "agent:y\\x1b[2K\\u202e\\u2028"
    assert printable("agent:Jos\u00e9") == "agent:Jos\u00e9"


def _old_store(tmp_path: Path) -> tuple[str, str]:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    cid = _old_history(Engine(store, clock=ManualClock(START)))
    store.close()
    return url, cid


def test_audit_show_escapes_old_actor_ids(tmp_path: Path) -> None:
    url, cid = _old_store(tmp_path)
    shown = CliRunner().invoke(main, ["audit", "show", cid, "--store", url])
    assert shown.exit_code == 0, shown.output
    assert "agent:y\\x1b[2K" in shown.output
    assert "agent:bob\\u202e" in shown.output
    for char in "\x07\x1b\u202e\ue000\x00":
        assert char not in shown.output


def test_the_spend_report_table_escapes_old_actor_ids(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid = open_case(engine)
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor=AGENT, **inputs)
    engine.step(cid, "offer_remedy", actor=unchecked_actor("agent", "eve\x1b]0;x\x07"),
                **PATH[4][1])  # fmt: skip
    engine.step(cid, "accept_remedy", actor=CUSTOMER, **PATH[5][1])
    store.close()
    table = CliRunner().invoke(main, ["report", "spend", "--store", url, "--by", "agent"])
    assert table.exit_code == 0, table.output
    assert "agent:eve\\x1b]0;x\\x07" in table.output
    assert "\x1b" not in table.output
    assert "\x07" not in table.output


def test_the_list_of_purged_cases_escapes_who_purged(tmp_path: Path) -> None:
    from policies.loader import parse_policy

    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    policy = parse_policy("name: short\nversion: '1'\ncurrency: EUR\nretention:\n  years: 1\n",
                          file="short.yaml")  # fmt: skip
    engine = Engine(store, policy=policy, clock=clock)
    cid = open_case(engine)
    engine.withdraw(cid, actor=AGENT, reason="sorted out")
    clock.set(START + timedelta(days=800))
    engine.purge_expired(actor=unchecked_actor("system", "ret\x1b[2K"))
    store.close()
    listed = CliRunner().invoke(main, ["privacy", "purged", "--store", url])
    assert listed.exit_code == 0, listed.output
    assert "by system:ret\\x1b[2K" in listed.output
    assert "\x1b" not in listed.output


def test_events_keep_the_actor_text_as_recorded(store: MemoryStore) -> None:
    """Events keep the actor text as recorded; the person is derived, never stored."""
    engine = Engine(store, clock=ManualClock(START))
    cid = open_case(engine, actor=unchecked_actor("agent", "alice\u200b"))
    (event,) = engine.history(cid)
    assert event.actor == "agent:alice\u200b"
    assert person_of(event.actor.partition(":")[2]) == Actor.parse(AGENT).person


def test_the_message_docs_concepts_shows_is_the_one_raised(engine: Engine) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "concepts.md").read_text()
    shown = page.split("## Actors", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    with pytest.raises(InvalidActor) as error:
        engine.acknowledge("c-1", actor="agent:bob\x07", message="Hello")
    assert " ".join(shown.split()) == str(error.value)
