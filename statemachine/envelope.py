"""The CloudEvents-style envelope of ``event-log.md``: JSON in, a validated Event out.

Shared by the replay and by services, so what a service accepts and what the replay
rebuilds can never drift apart. Errors name the field and the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ciso8601
import msgspec
import orjson

from . import limits
from .engine.errors import InvalidEvent
from .engine.runtime import Event
from .timeutil import parse_instant

_rfc3339 = ciso8601.parse_rfc3339

__all__ = [
    "DIGEST_BITS", "MalformedEvent", "check_keys", "check_line", "check_names", "digest", "digest_of",
    "loads", "to_event", "typed_event",
]


class MalformedEvent(InvalidEvent):
    """The line is not an event at all (bad JSON, a missing or ill-typed envelope
    field). A malformed event moves no clock."""


def loads(raw: bytes | str) -> Any:
    """Parse one JSON value; JSON numbers with a fraction are read as exact Decimals.

    orjson is fast but reads ``199.99`` as a float; when any float shows up in an
    event's ``data`` the line is read again with the standard parser and
    ``parse_float=Decimal``, so an amount never passes through binary floating point.
    A line longer than the limit, repeated keys, invalid UTF-8 and numbers that are
    not JSON (``NaN``) are refused (:func:`check_line`, :func:`check_keys`).
    """
    if len(raw) > _LIMITS.line_bytes:
        check_line(raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # nested past orjson's limit (1024): no event is that deep
            raise MalformedEvent(f"malformed JSON: nested too deeply ({exc})") from None
        return _exact_loads(raw, exc)
    data = value.get("data") if type(value) is dict else None
    if type(data) is dict:
        for v in data.values():
            if type(v) is float:
                return _exact_loads(raw)
    if type(value) is dict:
        check_keys(raw, value, data)
    return value


# -- hardening: each check in a function of its own, off the common path --------------
_LIMITS = limits.LIMITS
#: A quote followed by JSON white space: besides ``":``, what may follow the closing
#: quote of an object key. Counted to bound the keys a line holds (:func:`check_keys`).
_QUOTE_SPACE = re.compile(rb'"[ \t\r\n]')
_QUOTE_SPACE_TEXT = re.compile(r'"[ \t\r\n]')


def check_line(raw: bytes | str) -> None:
    """Refuse a line over :attr:`Limits.line_bytes <statemachine.limits.Limits.line_bytes>`:
    one rejected line, read no further (a 50 MB id must not be parsed, stored or echoed)."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > _LIMITS.line_bytes:
        raise MalformedEvent(f"the line is longer than {_LIMITS.line_bytes:,} bytes, the limit "
                             f"(STATEMACHINE_MAX_LINE_BYTES)")


def check_keys(raw: bytes | str, value: dict[str, Any], data: Any) -> None:
    """Refuse an object that repeats a key: JSON parsers disagree on which copy wins,
    and two readers of one line must never read two events.

    Cheap on the common line. A compact line that orjson writes back byte for byte
    (the usual machine-written log, 0.2 µs) cannot have held a repeated key: the
    dropped copy would be missing from what is written back. Otherwise the closing
    quote of every key is followed by ``:`` or white space, so counting those pairs
    bounds the keys written; when the bound equals the keys parsed (the envelope's and
    ``data``'s), none was repeated. Only a line where the bound is higher (a nested
    object, a ``\":`` inside a string) is parsed again, with a parser that sees every key.
    """
    if type(raw) is bytes and orjson.dumps(value) == raw:
        return
    text: Any = raw
    if isinstance(raw, bytes):
        written = text.count(b'":') + len(_QUOTE_SPACE.findall(text))
    else:
        written = text.count('":') + len(_QUOTE_SPACE_TEXT.findall(text))
    parsed = len(value) + (len(data) if type(data) is dict else 0)
    if written > parsed:
        _exact_loads(raw)  # raises on a repeated key; the value read is the same


def _exact_loads(raw: bytes | str, error: Exception | None = None) -> Any:
    """The standard parser, reading every number exactly and every key: for what orjson
    cannot read (integers past 64 bits, lone surrogates), a line with a float, and to
    find a repeated key. ``error`` is orjson's, when it refused the line."""
    if isinstance(raw, bytes):
        if raw.startswith(b"\xef\xbb\xbf"):  # a byte order mark, which orjson skips too
            raw = raw[3:]
        try:
            raw.decode()
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"malformed JSON: invalid UTF-8 at byte {exc.start + 1} "
                                 f"(0x{raw[exc.start]:02x})") from None
    if error is not None and "surrogate" in str(error):
        # "\ud800" alone is no character: the standard parser would make a string that
        # no UTF-8 writer (the report, the store) can write back.
        raise MalformedEvent("malformed JSON: a \\u escape names a lone surrogate "
                             "(U+D800 to U+DFFF), not a character")
    try:
        return json.loads(raw, parse_float=Decimal, parse_int=_integer, parse_constant=_constant,
                          object_pairs_hook=_unique)
    except (ValueError, RecursionError) as exc:
        # One event is one line: "line 1 column 71" would read like a second line
        # number next to the report's own.
        reason = str(error if error is not None else exc)
        raise MalformedEvent(f"malformed JSON: {reason.replace('line 1 column', 'column')}") from None


def _integer(text: str) -> int | Decimal:
    """A JSON integer, exactly: an ``int``, or past Python's int-from-text limit (4,300
    digits) a ``Decimal``, so the field that reads it says why it is too large."""
    return int(text) if len(text) <= 4000 else Decimal(text)


def _constant(name: str) -> Any:
    raise MalformedEvent(f"malformed JSON: {name} is not a JSON number (an amount is a decimal "
                         f"string, like \"199.99\")")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedEvent(f"malformed JSON: the key {limits.shown(key)} appears twice in "
                                     f"one object (readers would disagree on its value)")
            seen.add(key)
    return obj


def check_names(ident: str, kind: str, subject: str) -> None:
    """Refuse an ``id``, ``type`` or ``subject`` that is too long or not printable (a
    NUL or a newline): each is echoed on one report line, stored, and put in a URL."""
    for name, value, most in (("id", ident, _LIMITS.id_chars), ("type", kind, _LIMITS.id_chars),
                              ("subject", subject, _LIMITS.subject_chars)):
        if len(value) > most:
            raise MalformedEvent(f"{name} is {len(value):,} characters long; at most {most:,}",
                                 field=name)
        if not value.isprintable():
            bad = next(c for c in value if not c.isprintable())
            raise MalformedEvent(f"{name} {limits.shown(value)} holds the unprintable character "
                                 f"U+{ord(bad):04X}", field=name)


_last_time: tuple[str, datetime] = ("", datetime.min)


def _instant(text: str) -> datetime:
    """``parse_instant`` with a one-entry cache: logs write runs of equal timestamps."""
    global _last_time
    if _last_time[0] == text:
        return _last_time[1]
    try:  # parse_instant's common case without its frame: a "Z" time, read in C
        moment = _rfc3339(text)
    except ValueError:
        moment = parse_instant(text)  # raises, explaining
    if moment.tzinfo is not UTC:
        moment = parse_instant(text)  # another offset, or a day UTC cannot hold
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


_ID, _SUBJECT = _LIMITS.id_chars, _LIMITS.subject_chars


def to_event(envelope: Any, *, fingerprint: bool = True, token: int | None = None) -> Event:
    """Validate an envelope (a parsed JSON object) and return the :class:`Event`.

    Raises :class:`MalformedEvent` naming the field; the data fields themselves are
    checked later by the lifecycle that receives the event. Without ``fingerprint``
    the event's ``digest`` is left 0: for a reader that only needs its time and subject
    (a parallel replay's worker, for the lines another worker applies). ``token``, when
    given, is stored as the digest instead (a lazy file replay: where the line is; no
    digest computed, no second event built to carry it).
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
    if (len(ident) > _ID or len(kind) > _ID or len(subject) > _SUBJECT or not ident.isprintable()
            or not kind.isprintable() or not subject.isprintable()):
        check_names(ident, kind, subject)
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
    if token is not None:
        return Event(ident, moment, kind, subject, data, token)
    return Event(ident, moment, kind, subject, data, digest(envelope) if fingerprint else 0)


# -- the typed decode of a lazy file replay --------------------------------------------
class _Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The envelope as ``msgspec`` reads it straight from the line, in C, without the
    intermediate dict: for a file replay, whose digest is lazy (it needs the whole parsed
    object only when an id repeats). Every field that may appear is declared (an unknown
    one sends the line down the general path), so the keys parsed can be counted."""

    # Declared in the order a machine-written line has them (the generator's, the
    # service's), so that writing the struct back gives such a line byte for byte.
    specversion: str | msgspec.UnsetType = msgspec.UNSET
    id: str | msgspec.UnsetType = msgspec.UNSET
    source: Any = msgspec.UNSET
    time: str | msgspec.UnsetType = msgspec.UNSET
    type: str | msgspec.UnsetType = msgspec.UNSET
    subject: str | msgspec.UnsetType = msgspec.UNSET
    data: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET


_OPTIONAL = ("specversion", "source", "data")
_typed = msgspec.json.Decoder(_Envelope, float_hook=Decimal).decode
_write = msgspec.json.Encoder().encode
_UNSET = msgspec.UNSET
_INT64 = 1 << 63


def typed_event(raw: bytes, token: int) -> Event | None:
    """The :class:`Event` of a line as ``to_event(loads(raw), token=token)`` would give
    it, or None when this path cannot be sure of that: then the caller takes the general
    path (``loads``, ``to_event``), which accepts the same lines and explains the others.

    The fast path takes only what it can check completely: the declared envelope fields
    and nothing else, of the right types; no key repeated (the keys written, bounded as
    :func:`check_keys` bounds them, equal the keys parsed: a repeated key, a nested
    object or a ``\":`` in a string all send the line on); no integer past 64 bits; the
    names, time and specversion valid. Floats are read as exact Decimals, as ``loads``
    reads them."""
    if len(raw) > _LIMITS.line_bytes:
        return None
    try:
        envelope = _typed(raw)
    except (msgspec.DecodeError, ValueError):
        return None
    ident, when, kind, subject = envelope.id, envelope.time, envelope.type, envelope.subject
    if ident is _UNSET or when is _UNSET or kind is _UNSET or subject is _UNSET:
        return None  # the general path names the missing field
    if envelope.specversion is not _UNSET and envelope.specversion != "1.0":
        return None
    source = envelope.source
    if source is not _UNSET and type(source) is not str:
        return None  # a nested value: its keys would not be counted below
    data = envelope.data
    if data is not _UNSET and data is not None:
        for value in data.values():
            cls = type(value)
            if cls is int:
                if not -_INT64 <= value < _INT64:
                    return None  # orjson refuses it; the general path reads it exactly
            elif cls is not str and cls is not Decimal and cls is not bool and value is not None:
                # A list or object: ``loads`` leaves a float inside it a float (only the
                # top level of data is read again exactly), where this decoder reads a
                # Decimal; the general path keeps today's reading.
                return None
    # No key repeated (a repeated key leaves one value, silently). A compact line written
    # in the declared order comes back byte for byte (the usual case: one encode in C);
    # otherwise every key written ends in '":' (no white space after any quote), and
    # the keys written must be the keys parsed.
    if _write(envelope) != raw:
        parsed = 4 + (envelope.specversion is not _UNSET) + (source is not _UNSET)
        if data is not _UNSET:
            parsed += 1 + (len(data) if data is not None else 0)
        if raw.count(b'":') != parsed or _QUOTE_SPACE.search(raw) is not None:
            return None
    if data is _UNSET or data is None:
        data = {}
    if (not ident or not kind or not subject or len(ident) > _ID or len(kind) > _ID
            or len(subject) > _SUBJECT or not ident.isprintable() or not kind.isprintable()
            or not subject.isprintable()):
        return None
    try:
        moment = _instant(when)  # type: ignore[arg-type]
    except ValueError:
        return None
    return Event(ident, moment, kind, subject, data, token)  # type: ignore[arg-type]
