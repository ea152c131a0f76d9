"""The CloudEvents-style envelope of ``event-log.md``: JSON in, a validated Event out.

Shared by the replay and by services, so what a service accepts and what the replay
rebuilds can never drift apart. Errors name the field and the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from .engine.errors import InvalidEvent
from .engine.runtime import Event
from .timeutil import parse_instant

__all__ = ["DIGEST_BITS", "MalformedEvent", "digest", "digest_of", "loads", "to_event"]


class MalformedEvent(InvalidEvent):
    """The line is not an event at all (bad JSON, a missing or ill-typed envelope
    field). A malformed event moves no clock."""


def loads(raw: bytes | str) -> Any:
    """Parse one JSON value; JSON numbers with a fraction are read as exact Decimals.

    orjson is fast but reads ``199.99`` as a float; when any float shows up in an
    event's ``data`` the line is read again with the standard parser and
    ``parse_float=Decimal``, so an amount never passes through binary floating point.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # nested past orjson's limit (1024): no event is that deep
            raise MalformedEvent(f"malformed JSON: nested too deeply ({exc})") from None
        try:  # integers beyond 64 bits are valid JSON; orjson refuses them
            value = json.loads(raw, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # One event is one line: orjson's "line 1 column 71" would read like a second
            # line number next to the report's own.
            raise MalformedEvent(f"malformed JSON: {str(exc).replace('line 1 column', 'column')}") from None
        return value
    data = value.get("data") if type(value) is dict else None
    if type(data) is dict:
        for v in data.values():
            if type(v) is float:
                return json.loads(raw, parse_float=Decimal)
    return value


_last_time: tuple[str, datetime] = ("", datetime.min)


def _instant(text: str) -> datetime:
    """``parse_instant`` with a one-entry cache: logs write runs of equal timestamps."""
    global _last_time
    if _last_time[0] == text:
        return _last_time[1]
    moment = parse_instant(text)
    _last_time = (text, moment)
    return moment


#: An empty BLAKE2b-128, copied for each digest: copying skips the parameter set-up of a
#: new hash object (a third of the cost of a digest of one event).
_BLAKE2B_128 = hashlib.blake2b(digest_size=16)

#: Bits in a content digest: the first 60 of the BLAKE2b-128, as an ``int``. The index of
#: applied ids keeps one per event, and an int below 2**60 is a 32-byte object where the
#: 16 bytes of the whole hash take 64: half the memory per event, at odds of 2**-60
#: (1e-18) that an event reusing an id with other content passes for a duplicate.
DIGEST_BITS = 60
_SHIFT = 64 - DIGEST_BITS


def digest_of(blake2b_128: bytes) -> int:
    """The digest an earlier version stored as the BLAKE2b-128 bytes (or a prefix of at
    least 8 of them): the same number :func:`digest` gives today."""
    return int.from_bytes(blake2b_128[:8], "big") >> _SHIFT


def digest(envelope: Mapping[str, Any]) -> int:
    """A content fingerprint (the first :data:`DIGEST_BITS` of the BLAKE2b-128 of the
    sorted-key JSON) that ignores key order and white space."""
    try:
        canonical = orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS, default=str)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard encoder copes
        canonical = json.dumps(envelope, sort_keys=True, default=str, separators=(",", ":")).encode()
    fingerprint = _BLAKE2B_128.copy()
    fingerprint.update(canonical)
    return digest_of(fingerprint.digest())


def _text(envelope: Mapping[str, Any], name: str) -> str:
    value = envelope.get(name)
    if value is None:
        raise MalformedEvent(f"{name} is required", field=name)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{name} must be a non-empty string", field=name)
    return value


def to_event(envelope: Any, *, fingerprint: bool = True) -> Event:
    """Validate an envelope (a parsed JSON object) and return the :class:`Event`.

    Raises :class:`MalformedEvent` naming the field; the data fields themselves are
    checked later by the lifecycle that receives the event. Without ``fingerprint``
    the event's ``digest`` is left 0: for a reader that only needs its time and subject
    (a parallel replay's worker, for the lines another worker applies).
    """
    if type(envelope) is not dict and not isinstance(envelope, Mapping):
        raise MalformedEvent("an event must be a JSON object")
    get = envelope.get
    ident, when, kind, subject = get("id"), get("time"), get("type"), get("subject")
    # The common case in one test; the slow path names the first bad field.
    if not (type(ident) is str and type(when) is str and type(kind) is str
            and type(subject) is str and ident and kind and subject):
        ident, when = _text(envelope, "id"), _text(envelope, "time")
        kind, subject = _text(envelope, "type"), _text(envelope, "subject")
    try:
        moment = _instant(when)
    except ValueError as exc:
        raise MalformedEvent(f"time: {exc}", field="time") from None
    if "specversion" in envelope and envelope["specversion"] != "1.0":
        raise MalformedEvent(
            f"specversion must be \"1.0\", not {envelope['specversion']!r}", field="specversion"
        )
    data = get("data")
    if data is None:
        data = {}
    elif type(data) is not dict and not isinstance(data, Mapping):
        raise MalformedEvent("data must be an object", field="data")
    return Event(ident, moment, kind, subject, data, digest(envelope) if fingerprint else 0)
