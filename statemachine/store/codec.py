"""JSON for what the store keeps: entity records exactly, effects and envelopes readably.

Entity snapshots must come back *identical*, or a reopened engine would decide
differently from the one that wrote them: a ``Decimal`` keeps its exponent (``10.50``
stays ``10.50``), a ``datetime`` its microseconds and its UTC offset. JSON has neither,
so snapshot values are tagged (``{"$decimal": "10.50"}``, ``{"$time": "…"}``); a
mapping that could be mistaken for a tag is wrapped in ``{"$map": …}``. Anything the
codec does not know is refused loudly rather than stored approximately.

Effects and envelopes are for other programs (a payment service, the replay), so they
are plain JSON instead: amounts as decimal strings, instants as RFC 3339.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import orjson

from ..engine.effects import Effect
from ..engine.runtime import ArmedTimer, Entity, Event
from ..timeutil import format_instant

__all__ = [
    "decode_entity",
    "decode_value",
    "dump_envelope",
    "effect_body",
    "encode_entity",
    "encode_value",
    "envelope_of",
    "outbox_rows",
    "plain",
]

_TAGS = frozenset({"$decimal", "$time", "$map", "$tuple", "$int"})
_INT64 = 2**63


def encode_value(value: Any) -> Any:
    """A JSON-ready, tagged form of an entity data value (see the module docstring)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else {"$int": str(value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise TypeError(f"cannot store the naive datetime {value!r}")
        return {"$time": value.isoformat()}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"cannot store a mapping with the key {key!r} (keys are strings)")
            out[key] = encode_value(item)
        return {"$map": out} if len(out) == 1 and next(iter(out)) in _TAGS else out
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(item) for item in value]}
    if isinstance(value, list):
        return [encode_value(item) for item in value]
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return value
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} in an entity snapshot")


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "$decimal":
                return Decimal(inner)
            if tag == "$time":
                return datetime.fromisoformat(inner)
            if tag == "$map":
                return {k: decode_value(v) for k, v in inner.items()}
            if tag == "$tuple":
                return tuple(decode_value(v) for v in inner)
            if tag == "$int":
                return int(inner)
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def encode_entity(entity: Entity) -> str:
    """One committed entity record as a JSON snapshot."""
    return orjson.dumps({
        "subject": entity.subject,
        "lifecycle": entity.lifecycle,
        "state": entity.state,
        "version": entity.version,
        "data": encode_value(entity.data),
        "timers": [[t.name, t.trigger, t.due.isoformat(), t.cause] for t in entity.timers],
    }).decode()


def decode_entity(raw: str | bytes) -> Entity:
    """The entity record a snapshot was made from, equal field by field."""
    doc = orjson.loads(raw)
    timers = tuple(ArmedTimer(name, trigger, datetime.fromisoformat(due), cause)
                   for name, trigger, due, cause in doc["timers"])
    return Entity(doc["subject"], doc["lifecycle"], doc["state"], decode_value(doc["data"]),
                  doc["version"], timers)


def plain(value: Any) -> Any:
    """A value as plain JSON for other programs: decimals as strings, instants RFC 3339."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def effect_body(effect: Effect) -> dict[str, Any]:
    """An effect as the outbox keeps it: ``{"type": "RefundIssued", "cause": …, …}``."""
    body: dict[str, Any] = {"type": effect.name}
    for field in attrs.fields(type(effect)):
        body[field.name] = plain(getattr(effect, field.name))
    return body


def outbox_rows(key: str, seq: int, outcome: Any) -> Iterator[tuple[Any, ...]]:
    """The outbox rows of one stored event, the same for every store: ``(effect_id, seq,
    n, subject, kind, cause, time, ledger_kind, ledger_subject, amount, currency, body)``,
    effect ids ``<key>#<n>`` numbered over the outcome's steps in order."""
    n = 0
    for step in outcome.steps:
        for effect in step.effects:
            n += 1
            ledger = effect.ledger_kind
            yield (f"{key}#{n}", seq, n, step.subject, effect.name, effect.cause,
                   format_instant(effect.time), ledger,
                   effect.ledger_subject() if ledger else None,
                   str(effect.amount) if ledger else None,
                   effect.currency if ledger else None,
                   orjson.dumps(effect_body(effect)).decode())


def envelope_of(event: Event) -> dict[str, Any]:
    """The log envelope of an :class:`Event` handed to the engine without one."""
    envelope: dict[str, Any] = {"id": event.id, "time": format_instant(event.time),
                                "type": event.type, "subject": event.subject}
    if event.data:
        envelope["data"] = dict(event.data)
    return envelope


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} into an event")


def dump_envelope(envelope: Mapping[str, Any]) -> str:
    """An envelope as one log line (no newline), keys in their original order.

    A JSON number amount read as ``Decimal`` is written as a decimal string: the log
    format's preferred spelling, read back to the same value, and with the same
    content digest (:func:`statemachine.envelope.digest` also writes it as a string),
    so a re-sent original is still recognised as a duplicate.
    """
    try:
        return orjson.dumps(envelope, default=_default).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard encoder copes
        return json.dumps(envelope, default=_default, ensure_ascii=False, separators=(",", ":"))
