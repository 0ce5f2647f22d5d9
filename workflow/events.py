"""Events: the audit record of every accepted step, SHA-256 chained per case.

``hash = sha256(canonical(event without its hash))``, where ``canonical`` is JSON with
sorted keys, no whitespace, UTF-8, ``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` and
``prev_hash`` the previous event's hash (``GENESIS`` for the first). docs/audit.md gives
the byte-for-byte rules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from pydantic.dataclasses import dataclass

#: ``prev_hash`` of a case's first event.
GENESIS = "0" * 64

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _not_json(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# ``JSONEncoder.encode`` builds a new C encoder on every call; build it once. The output
# is byte-identical to ``_ENCODER.encode`` (tests/test_events.py checks it).
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_encode_c = (
    _C_ENCODER(None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False)
    if _C_ENCODER is not None
    else None
)
_encode_str = json.encoder.encode_basestring
_sha256 = hashlib.sha256
_object_setattr = object.__setattr__


def canonical_json(value: dict[str, Any]) -> str:
    """JSON text with sorted keys, no whitespace, non-ASCII kept, NaN refused."""
    if _encode_c is not None:
        return "".join(_encode_c(value, 0))
    return _ENCODER.encode(value)


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted step. ``data`` holds JSON values only (amounts as strings); like the
    record, it is never changed once the event is made.

    ``data_text`` is ``data`` as the canonical JSON text the hash was computed over, on
    the events the engine makes and appends itself (``make_event(keep_text=True)``), so
    that a store need not encode the data a second time; None otherwise. It is not
    compared and not shown."""

    case_id: str
    seq: Annotated[int, Field(ge=1)]
    type: str
    at: datetime
    actor: str
    data: dict[str, Any]
    policy_version: str
    prev_hash: str
    hash: str
    data_text: str | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object, ``hash`` included."""
        body = _body(
            self.case_id,
            self.seq,
            self.type,
            self.at,
            self.actor,
            self.data,
            self.policy_version,
            self.prev_hash,
        )
        body["hash"] = self.hash
        return body

    def expected_hash(self) -> str:
        """The hash this event's content gives (equal to ``hash`` unless it was altered)."""
        return event_hash(
            self.case_id,
            self.seq,
            self.type,
            self.at,
            self.actor,
            self.data,
            self.policy_version,
            self.prev_hash,
        )


def format_at(at: datetime) -> str:
    """An aware UTC datetime as the canonical text: always microseconds, ``+00:00``."""
    if type(at) is datetime and at.tzinfo is UTC:
        # Exactly ``isoformat(timespec="microseconds")`` for a UTC datetime (a test checks
        # it), at two thirds of the cost: every event and deadline writes one.
        return _UTC_TEXT % (
            at.year,
            at.month,
            at.day,
            at.hour,
            at.minute,
            at.second,
            at.microsecond,
        )
    return at.isoformat(timespec="microseconds")


_UTC_TEXT = "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00"


def _body(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "actor": actor,
        "at": format_at(at),
        "case_id": case_id,
        "data": data,
        "policy_version": policy_version,
        "prev_hash": prev_hash,
        "seq": seq,
        "type": type_,
    }


def canonical(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
) -> bytes:
    """The exact bytes an event's hash is computed over."""
    return _canonical_text(case_id, seq, type_, at, actor, data, policy_version, prev_hash).encode(
        "utf-8"
    )


def _canonical_text(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
) -> str:
    return _canonical_pair(case_id, seq, type_, at, actor, data, policy_version, prev_hash)[0]


def _canonical_pair(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
) -> tuple[str, str | None]:
    """The canonical text, and ``data``'s canonical JSON text within it (None when it
    took the general path)."""
    # The top-level keys are fixed, so the object is written in sorted-key order here and
    # only ``data`` goes through the JSON encoder. Byte-identical to
    # ``canonical_json(_body(...))`` (tests/test_events.py checks it); anything but plain
    # ``str``/``int``/``dict`` values takes the general path.
    if (
        _encode_c is None
        or type(data) is not dict
        or type(seq) is not int
        or type(case_id) is not str
        or type(type_) is not str
        or type(actor) is not str
        or type(policy_version) is not str
        or type(prev_hash) is not str
    ):
        body = _body(case_id, seq, type_, at, actor, data, policy_version, prev_hash)
        return canonical_json(body), None
    data_text = "".join(_encode_c(data, 0))
    # ``format_at`` writes nothing JSON escapes: its text is quoted as it is.
    at_json = f'"{format_at(at)}"'
    return _assemble(case_id, seq, type_, at_json, actor, data_text, policy_version,
                     prev_hash), data_text  # fmt: skip


#: JSON string texts of step names and policy versions (see ``_repeated``).
_ENCODED: dict[str, str] = {}
_MAX_ENCODED = 256


def _assemble(
    case_id: str,
    seq: int,
    type_: str,
    at_json: str,
    actor: str,
    data_text: str,
    policy_version: str,
    prev_hash: str,
) -> str:
    """The canonical text from its parts, ``at`` and ``data`` already as JSON text."""
    enc = _encode_str
    enc_type, enc_policy = _repeated(type_, policy_version)
    return (
        f'{{"actor":{enc(actor)},"at":{at_json},"case_id":{enc(case_id)},'
        f'"data":{data_text},"policy_version":{enc_policy},'
        f'"prev_hash":{enc(prev_hash)},"seq":{seq},"type":{enc_type}}}'
    )


def _repeated(type_: str, policy_version: str) -> tuple[str, str]:
    """The JSON string texts of the step and the policy version, which events share
    with many others: encoded once, then looked up in a small table (emptied when
    full). Case ids are not kept: there is one per case, without bound."""
    known = _ENCODED
    enc_type, enc_policy = known.get(type_), known.get(policy_version)
    if enc_type is None or enc_policy is None:
        if len(known) >= _MAX_ENCODED:
            known.clear()
        enc_type = known[type_] = _encode_str(type_)
        enc_policy = known[policy_version] = _encode_str(policy_version)
    return enc_type, enc_policy


def stored_hash(
    case_id: str,
    seq: int,
    type_: str,
    at_text: str,
    actor: str,
    data_text: str,
    policy_version: str,
    prev_hash: str,
) -> str:
    """The hash of an event as a store keeps it: ``at`` as its canonical text and
    ``data`` as the canonical JSON text it was written as. The bytes are hashed as
    stored, so data rewritten even into equivalent JSON no longer matches. Raises
    ``TypeError`` for a field of the wrong type."""
    if type(seq) is not int:
        raise TypeError(f"seq is {type(seq).__name__}, not an integer")
    if type(data_text) is not str or type(at_text) is not str:
        raise TypeError("at and data must be text")
    body = _assemble(case_id, seq, type_, _encode_str(at_text), actor, data_text,
                     policy_version, prev_hash)  # fmt: skip
    return _sha256(body.encode("utf-8")).hexdigest()


def restored_event(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
    hash_: str,
    data_text: str | None = None,
) -> Event:
    """An event as stored, with its stored hash, not validated: for verification, which
    checks the hash itself (``stored_hash``)."""
    event = _EventBuilder()
    event.case_id = case_id
    event.seq = seq
    event.type = type_
    event.at = at
    event.actor = actor
    event.data = data
    event.policy_version = policy_version
    event.prev_hash = prev_hash
    event.hash = hash_
    event.data_text = data_text
    _object_setattr(event, "__class__", Event)
    result: Event = event  # type: ignore[assignment]
    return result


def event_hash(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
) -> str:
    return _sha256(
        _canonical_text(case_id, seq, type_, at, actor, data, policy_version, prev_hash).encode(
            "utf-8"
        )
    ).hexdigest()


class _EventBuilder:
    """Same slots as ``Event``, not frozen: ``make_event`` fills one with plain attribute
    stores, then makes it an ``Event`` (same layout, so ``__class__`` may be set)."""

    __slots__ = Event.__slots__

    case_id: str
    seq: int
    type: str
    at: datetime
    actor: str
    data: dict[str, Any]
    policy_version: str
    prev_hash: str
    hash: str
    data_text: str | None


def make_event(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy_version: str,
    prev_hash: str,
    *,
    keep_text: bool = False,
) -> Event:
    """Build and hash an event from values the engine has already validated.

    ``keep_text``: keep the data's canonical text on the event (``data_text``), for the
    store to write as it is instead of encoding the data again. Only for an event that
    nothing else can reach before it is appended (the engine's own): a store writes that
    text even if ``data`` were changed in between, where it must write what it is given
    (for verify to find the change)."""
    text, data_text = _canonical_pair(
        case_id, seq, type_, at, actor, data, policy_version, prev_hash
    )
    digest = _sha256(text.encode()).hexdigest()
    return restored_event(
        case_id, seq, type_, at, actor, data, policy_version, prev_hash, digest,
        data_text if keep_text else None,
    )  # fmt: skip


def forget_text(event: Event) -> None:
    """Drop the data text ``make_event(keep_text=True)`` kept, once the engine has
    appended the event and hands it out: from then on the event is the caller's, and a
    store it is given to must write its data as it is then."""
    _object_setattr(event, "data_text", None)


def event_from_json(obj: dict[str, Any]) -> Event:
    """An event from ``Event.to_json`` output, validated (the hash is not checked here).
    ``at`` must be in UTC, as every event's time is (docs/audit.md): a time without a
    zone or at another offset would be hashed as written, not as the page says."""
    event = Event(**obj)
    if event.at.utcoffset() != timedelta(0):
        raise ValueError(f"at {obj.get('at')!r} is not a UTC time (+00:00)")
    return event
