"""The service's OpenAPI document, precise: every body, parameter and answer described.

Why: a client (and a schema-driven fuzzer, ``tests/test_service_fuzz.py``) learns from
the document what to send and what comes back. The event body is derived from the
lifecycle declarations themselves (each ``Input``'s type, subject kind and ``data``
fields), so it cannot drift from what the engine accepts; the answers are pydantic
models. The routes still read the raw body (amounts must never pass through a float,
as a parsed JSON body would), so these schemas describe, and the engine decides.

:func:`document` post-processes FastAPI's own document: the service calls it from
``app.openapi`` with a few lines, whatever the routes' code looks like.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from .edge import DEFAULT_MAX_BODY
from .engine import fields as f
from .engine.declaration import Domain
from .limits import LIMITS

__all__ = ["document", "event_schema"]

_REF = "#/components/schemas/{model}"
PROBLEM_JSON = "application/problem+json"


# -- answers ----------------------------------------------------------------------------
class Problem(BaseModel):
    """An RFC 9457 problem: every refusal, with the offending field (or null)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    field: str | None


class EventAnswer(BaseModel):
    """An applied event (or a repeat of one: ``duplicate``), read back from the store."""

    model_config = ConfigDict(extra="forbid")
    id: str
    duplicate: bool
    type: str
    subject: str
    time: str
    state: str | None
    version: int | None
    steps: list[dict[str, Any]]
    effects: list[dict[str, Any]]


class LedgerLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time: str
    kind: str
    subject: str
    amount: str
    currency: str
    cause: str


class EntityView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str
    lifecycle: str
    state: str
    version: int
    data: dict[str, Any]
    timers: list[dict[str, Any]]
    children: list[str]
    money: dict[str, dict[str, str]]
    ledger: list[LedgerLine]


class Ledger(BaseModel):
    """The whole ledger with its totals, or a page of it (``next``, ``more``; no totals)."""

    model_config = ConfigDict(extra="forbid")
    ledger: list[LedgerLine]
    totals: dict[str, dict[str, str]] | None = None
    next: str | None = None
    more: bool | None = None


class Fired(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timer: str
    cause: str
    time: str
    subject: str
    state: str | None


class ClockAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clock: str | None
    fired: list[Fired]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    clock: str | None


# -- the event body, from the declarations ------------------------------------------------
_DECIMAL = {"type": "string", "pattern": r"^[+-]?[0-9]{1,18}(\.[0-9]{1,4})?$",
            "description": "an amount as a decimal string; a JSON number is read exactly too"}
#: An entity id inside ``data`` (no ``/``, no blank or control character).
_ID = {"type": "string", "minLength": 1, "maxLength": LIMITS.id_chars,
       "pattern": r"^[!-.0-~]+$"}
#: An event id. The engine takes any printable text up to the limit; a pattern cannot say
#: "printable" in Unicode's sense, so the document promises the portable subset that
#: every client can send: visible ASCII (ids of entities: without ``/``).
_EVENT_ID = {"type": "string", "minLength": 1, "maxLength": LIMITS.id_chars, "pattern": r"^[!-~]+$"}
_FIELDS: dict[Callable[[Any], Any], dict[str, Any]] = {
    f.identifier: _ID,
    f.decimal: _DECIMAL,
    f.boolean: {"type": "boolean"},
    f.currency: {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"},
    f.instant: {"type": "string", "format": "date-time"},
    f.text: {"type": "string", "maxLength": LIMITS.text_chars},
}


def _field(parse: Callable[[Any], Any]) -> dict[str, Any]:
    options = getattr(parse, "options", None)
    if options is not None:
        return {"type": "string", "enum": list(options)}
    return dict(_FIELDS.get(parse, {}))


def event_schema(domain: Domain) -> dict[str, Any]:
    """One envelope schema per declared input type (``oneOf``), each with its subject
    kind and ``data`` fields: a request made from it reaches the engine."""
    kinds = {lc.name: lc.kind for lc in domain.lifecycles}
    variants: dict[str, dict[str, Any]] = {}
    for lc in domain.lifecycles:
        for inp in lc.inputs:
            kind = kinds.get(lc.name, inp.type.split(".")[0])
            data = {"type": "object",
                    "properties": {fd.name: {**_field(fd.parse), **(
                        {"description": fd.description} if fd.description else {})}
                        for fd in inp.fields},
                    "required": [fd.name for fd in inp.fields if fd.required]}
            required = ["id", "time", "type", "subject"] + (["data"] if data["required"] else [])
            variants.setdefault(inp.type, {
                "type": "object", "title": inp.type, "required": required,
                "properties": {
                    "id": _EVENT_ID, "time": {"type": "string", "format": "date-time"},
                    "type": {"type": "string", "enum": [inp.type]},
                    "subject": {"type": "string", "maxLength": LIMITS.subject_chars,
                                "pattern": rf"^{kind}/[!-.0-~]+$"},
                    "data": data,
                    "specversion": {"type": "string", "enum": ["1.0"]},
                    "source": {"type": "string", "maxLength": LIMITS.text_chars},
                    "datacontenttype": {"type": "string", "maxLength": LIMITS.id_chars},
                }})
    return {"oneOf": list(variants.values())}


# -- the document ---------------------------------------------------------------------------
def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def _problems(*statuses: int) -> dict[str, Any]:
    why = {400: "the body is not JSON", 404: "no such entity or route",
           409: "the current state refuses the event", 413: "the body is too large",
           422: "the request or event is not valid", 503: "the diagram cannot be drawn now"}
    return {str(s): {"description": why[s],
                     "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}}}
            for s in statuses}


_SUBJECT_PARAM = {"name": "subject", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": r"^[a-z_]+/[^\s/\x00-\x1f\x7f]+$",
                             "maxLength": LIMITS.subject_chars}}


def document(openapi: dict[str, Any], domain: Domain, *, max_body: int = DEFAULT_MAX_BODY) -> dict[str, Any]:
    """FastAPI's ``openapi`` document with the precise bodies, parameters and answers
    (unknown paths are left as they are)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, EventAnswer, LedgerLine, EntityView, Ledger, Fired, ClockAnswer, Health):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    paths = openapi.get("paths", {})
    body_note = f"at most {max_body:,} bytes (413 beyond)"

    def op(path: str, method: str) -> dict[str, Any] | None:
        return paths.get(path, {}).get(method)

    if (events := op("/events", "post")) is not None:
        events["requestBody"] = {"required": True, "description": f"one event envelope; {body_note}",
                                 "content": {"application/json": {"schema": event_schema(domain)}}}
        events["responses"] = {"200": {"description": "applied, or a repeat of an applied id",
                                       "content": _json(EventAnswer)},
                               **_problems(400, 409, 413, 422)}
    for path, answer, extra in (("/entities/{subject}", EntityView, ()),
                                ("/entities/{subject}/diagram.svg", None, (503,))):
        if (entity := op(path, "get")) is not None:
            entity["parameters"] = [_SUBJECT_PARAM]
            ok = _json(answer) if answer is not None else {"image/svg+xml": {"schema": {"type": "string"}}}
            entity["responses"] = {"200": {"description": "found", "content": ok},
                                   **_problems(404, 422, *extra)}
    if (ledger := op("/ledger", "get")) is not None:
        ledger["parameters"] = [
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            {"name": "after", "in": "query", "required": False,
             "schema": {"type": "string", "pattern": r"^[0-9]{1,18}-[0-9]{1,9}$"}}]
        ledger["responses"] = {"200": {"description": "the ledger, or a page of it",
                                       "content": _json(Ledger)}, **_problems(422)}
    if (clock := op("/clock", "post")) is not None:
        clock["requestBody"] = {"required": True, "description": body_note, "content": {
            "application/json": {"schema": {"type": "object", "required": ["time"], "properties": {
                "time": {"type": "string", "format": "date-time"}}}}}}
        clock["responses"] = {"200": {"description": "the timers that fired",
                                      "content": _json(ClockAnswer)}, **_problems(400, 413, 422)}
    if (health := op("/health", "get")) is not None:
        health["responses"] = {
            "200": {"description": "row counts and the clock", "content": _json(Health)},
            "503": {"description": "the store does not answer", "content": {"application/json": {
                "schema": {"type": "object", "required": ["status", "store"], "properties": {
                    "status": {"const": "unavailable"}, "store": {"type": "string"}}}}}}}
    if (metrics := op("/metrics", "get")) is not None:
        metrics["responses"] = {"200": {"description": "Prometheus metrics in the text format",
                                        "content": {"text/plain": {"schema": {"type": "string"}}}}}
    return openapi
