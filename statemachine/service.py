"""An HTTP face for the durable engine (FastAPI): the example service's app factory.

``create_app(db)`` returns the app; ``python examples/service.py --db PATH`` serves it
with uvicorn. No rule lives here: requests become :meth:`Engine.apply` calls and
answers are read back from the store, so a repeated event gets the very answer the
first one got.

Routes::

    POST /events                               one event envelope (event-log.md)
    GET  /entities/{subject}                   state, version, data, timers, money so far
    GET  /entities/{subject}/diagram.svg       the lifecycle with the entity's path
    GET  /ledger                               every money line and the totals
    GET  /ledger?limit=N&after=CURSOR          the same lines in pages (no totals)
    POST /clock        {"time": "…"}           let time pass: fire the timers due
    GET  /health                               row counts and the clock
    GET  /policies                             the policy versions in force (ids, dates)

Errors are RFC 9457 problem details (``application/problem+json``): ``type``,
``title``, ``status``, ``detail`` and ``field`` (the offending field, or ``null``
when the whole body is at fault). A malformed body is 400; an event that is wrong
in itself (a missing field, an unknown type, a bad amount) 422; an event the current
state refuses (a transition not allowed, an unknown or existing entity, out of
order, an id reused with other content, a lost race) 409. Never 500 for bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api import Engine
from .engine import (
    Conflict,
    Entity,
    EntityExists,
    EventRejected,
    InvalidEvent,
    OutOfOrder,
    TransitionRefused,
    UnknownEntity,
)
from .envelope import MalformedEvent, loads
from .lifecycles.versions import Policies
from .replay.report import LedgerLine, Report
from .store import LedgerPosition, OutboxItem, Recorded, SQLiteStore, StaleWrite
from .store.codec import plain
from .timeutil import format_instant, parse_instant

__all__ = ["PROBLEM_JSON", "Problem", "create_app"]

PROBLEM_JSON = "application/problem+json"
_TYPE = "urn:collab-lifecycles:problem:"
_log = structlog.get_logger("statemachine.service")


class Problem(Exception):
    """An RFC 9457 problem: raised by a route, rendered by the app's handler."""

    def __init__(self, status: int, slug: str, title: str, detail: str, *,
                 field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"type": _TYPE + slug, "title": title, "status": status, "detail": detail,
                     "field": field, **extra}


def _problem(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body, status_code=problem.status, media_type=PROBLEM_JSON)


# -- events -------------------------------------------------------------------------
_REFUSALS: tuple[tuple[type[EventRejected], str, str], ...] = (
    (UnknownEntity, "unknown-entity", "The event names an entity that does not exist"),
    (EntityExists, "entity-exists", "The entity already exists"),
    (TransitionRefused, "transition-refused", "The entity's lifecycle refuses this event now"),
    (OutOfOrder, "out-of-order", "The event is older than the engine's clock"),
    (Conflict, "id-conflict", "The event id was applied before with other content"),
)


def _rejection(exc: EventRejected, event_id: str | None) -> Problem:
    if isinstance(exc, InvalidEvent):
        return Problem(422, "invalid-event", "The event is not valid", exc.reason, field=exc.field,
                       event_id=event_id)
    for kind, slug, title in _REFUSALS:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, TransitionRefused):
                extra = {"state": exc.state, "trigger": exc.trigger, "guard": exc.guard}
                if exc.field is not None and exc.field.startswith("data."):
                    # The guard judged a value of the event itself (a fee, a budget):
                    # the event is wrong in itself, whatever the state.
                    return Problem(422, slug, title, exc.reason, field=exc.field,
                                   event_id=event_id, **extra)
            field = "id" if isinstance(exc, Conflict) else "time" if isinstance(exc, OutOfOrder) \
                else getattr(exc, "field", None) or "subject"
            return Problem(409, slug, title, exc.reason, field=field, event_id=event_id, **extra)
    return Problem(409, "rejected", "The event was rejected", exc.reason, event_id=event_id)


def _effect(item: OutboxItem) -> dict[str, Any]:
    return {"id": item.effect_id, **item.body}


def _answer(recorded: Recorded, duplicate: bool) -> dict[str, Any]:
    """The answer to an applied event, read back from the store: the same for a repeat."""
    return {
        "id": recorded.id,
        "duplicate": duplicate,
        "type": recorded.type,
        "subject": recorded.subject,
        "time": format_instant(recorded.time),
        "state": recorded.state,
        "version": recorded.steps[0].version if recorded.steps else None,
        "steps": [{"subject": s.subject, "trigger": s.trigger, "from": s.source, "to": s.state,
                   "version": s.version} for s in recorded.steps],
        "effects": [_effect(item) for item in recorded.effects],
    }


def _post_event(engine: Engine, raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise Problem(400, "malformed-json", "The body is not one JSON event",
                      "the request body is empty; send one event envelope as JSON")
    try:
        envelope = loads(raw)
    except MalformedEvent as exc:
        raise Problem(400, "malformed-json", "The body is not one JSON event", exc.reason) from None
    except RecursionError:
        raise Problem(400, "malformed-json", "The body is not one JSON event",
                      "the JSON is nested too deeply") from None
    event_id = envelope.get("id") if isinstance(envelope, dict) else None
    event_id = event_id if isinstance(event_id, str) else None
    try:
        outcome = engine.apply(envelope)
    except EventRejected as exc:
        raise _rejection(exc, event_id) from None
    except StaleWrite as exc:
        raise Problem(409, "stale-write", "Another writer changed the entity first",
                      f"{exc.reason}; send the event again", field="subject", event_id=event_id,
                      retry=True) from None
    recorded = engine.recorded(outcome.cause)
    assert recorded is not None  # applied or a duplicate: stored either way
    return _answer(recorded, outcome.duplicate)


# -- entities and money -------------------------------------------------------------
def _money(lines: list[LedgerLine]) -> dict[str, Any]:
    report = Report(as_of=None, lines=0, applied=0, duplicates=0, entities={}, ledger=tuple(lines),
                    rejected=())
    doc = report.to_dict()
    return {"ledger": doc["ledger"], "totals": doc["totals"]}


#: The largest page ``GET /ledger?limit=`` serves, and the size when only ``after`` is given.
MAX_PAGE = 1000
_CURSOR = re.compile(r"([0-9]{1,18})-([0-9]{1,9})")


def _cursor(position: LedgerPosition) -> str:
    """The ``next`` of a ledger page (``<event seq>-<effect n>``): pass it as ``after``
    for the next page, or later for the lines committed since."""
    return f"{position[0]}-{position[1]}"


def _page_request(limit: str | None, after: str | None) -> tuple[int, LedgerPosition | None]:
    """``limit`` and ``after`` of ``GET /ledger``, checked: a 422 names the bad one.

    Paged answers carry no totals: summing them would read the whole ledger, which is
    what paging avoids. ``GET /ledger`` without parameters still has them."""
    size = MAX_PAGE
    if limit is not None:
        if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
            raise Problem(422, "invalid-request", "The request is not valid",
                          f"limit must be a whole number from 1 to {MAX_PAGE}, not {limit!r}",
                          field="limit")
        size = int(limit)
    position = None
    if after is not None:
        match = _CURSOR.fullmatch(after)
        if match is None:
            raise Problem(422, "invalid-request", "The request is not valid",
                          f"after must be the next cursor of an earlier page, not {after!r}",
                          field="after")
        position = (int(match[1]), int(match[2]))
    return size, position


def _entity(engine: Engine, subject: str) -> Entity:
    kind, _, ident = subject.partition("/")
    if not ident or "/" in ident or kind not in {lc.kind for lc in engine.runtime.domain.lifecycles}:
        raise Problem(422, "invalid-subject", "The subject is not <kind>/<id>",
                      f"{subject!r} is not a subject like order/O-1 or project/P-1", field="subject")
    entity = engine.get(subject)
    if entity is None:
        raise Problem(404, "unknown-entity", "No such entity",
                      f"{subject}: no such entity (it was never created)", field="subject")
    return entity


def _entity_view(engine: Engine, subject: str) -> dict[str, Any]:
    entity = _entity(engine, subject)
    children = list(engine.runtime.children.get(subject, ()))
    money = _money(engine.ledger([subject, *children]))
    return {
        "subject": entity.subject,
        "lifecycle": entity.lifecycle,
        "state": entity.state,
        "version": entity.version,
        "data": plain(entity.data),
        "timers": [{"name": t.name, "trigger": t.trigger, "due": format_instant(t.due), "cause": t.cause}
                   for t in entity.timers],
        "children": children,
        "money": money["totals"],
        "ledger": money["ledger"],
    }


def _diagram(engine: Engine, subject: str) -> bytes:
    """The entity view: its lifecycle drawn by :mod:`statemachine.diagrams`, with the
    path it took (read from the store, not replayed) laid over it, as SVG."""
    entity = _entity(engine, subject)
    try:
        from .diagrams import (
            GraphvizMissing,
            PathStep,
            RenderError,
            Trace,
            build_diagram,
            overlay,
            render,
            to_dot,
        )
    except ImportError as exc:
        raise Problem(404, "no-diagrams", "Diagrams are not available",
                      f"this build cannot draw diagrams ({exc})") from None
    history = engine.store.history(subject) if engine.store is not None else []
    trace = Trace(subject, entity.lifecycle, entity.state, tuple(
        PathStep(number=n, trigger=h.trigger, source=h.source, dest=h.state, event=h.cause,
                 time=h.time, timer=h.timer, via=h.via) for n, h in enumerate(history, start=1)))
    diagram = build_diagram(engine.runtime.compiled[entity.lifecycle])
    try:
        return render(to_dot(diagram, overlay(diagram, trace)), "svg")
    except (GraphvizMissing, RenderError) as exc:  # a server condition, and said so
        raise Problem(503, "diagram-unavailable", "The diagram cannot be drawn now", str(exc)) from None


# -- the app -------------------------------------------------------------------------
def _deliver(item: OutboxItem) -> None:
    """The example's delivery: log the effect. A real service calls its payment system
    here, passing ``item.effect_id`` as the idempotency key."""
    if structlog.is_configured():
        _log.info("effect.delivered", effect_id=item.effect_id, kind=item.kind, body=dict(item.body))


async def _drain_forever(engine: Engine, interval: float) -> None:
    while True:
        try:
            while await run_in_threadpool(engine.drain, _deliver, 100):
                pass
        except Exception:  # delivery failed: the effects stay pending, try again later
            if structlog.is_configured():
                _log.exception("outbox.drain_failed")
        await asyncio.sleep(interval)


def create_app(db: str | os.PathLike[str] | None = None, *, engine: Engine | None = None,
               drain_interval: float | None = 1.0, policies: Policies | None = None) -> FastAPI:
    """The service over the store at ``db`` (or over ``engine``, which the caller owns).

    With ``drain_interval`` the outbox is drained every so many seconds by logging each
    effect (a stand-in for a payment system); ``None`` or 0 leaves it to others.
    """
    if (db is None) == (engine is None):
        raise ValueError("create_app needs exactly one of db or engine")
    if engine is not None and engine.store is None:
        raise ValueError("the service needs an engine with a store: Engine(store=SQLiteStore(path))")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        app.state.engine = engine or Engine(store=SQLiteStore(Path(db)), policies=policies)  # type: ignore[arg-type]
        drainer = None
        if drain_interval:
            drainer = asyncio.create_task(_drain_forever(app.state.engine, drain_interval))
        try:
            yield
        finally:
            if drainer is not None:
                drainer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drainer
            if own:
                app.state.engine.close()

    app = FastAPI(title="collab-lifecycles", version="0.1.0", lifespan=lifespan,
                  summary="Orders, projects and promotions as explicit state machines")

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return _problem(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "path", "query"))
        return _problem(Problem(422, "invalid-request", "The request is not valid",
                                first.get("msg", "invalid request"), field=where or None))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = f"{request.method} {request.url.path}: {exc.detail}"
        response = _problem(Problem(exc.status_code, slug, str(exc.detail), detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:  # a bug, not bad input
        if structlog.is_configured():
            _log.exception("request.failed", path=request.url.path)
        return _problem(Problem(500, "internal", "Internal error", "the service failed; see its log"))

    def engine_of(request: Request) -> Engine:
        return request.app.state.engine  # type: ignore[no-any-return]

    envelope_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["id", "time", "type", "subject"],
        "properties": {"id": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
                       "type": {"type": "string"}, "subject": {"type": "string"},
                       "data": {"type": "object"}}}}}}}

    @app.post("/events", summary="Apply one event (a CloudEvents-style envelope)",
              openapi_extra=envelope_body)
    async def post_event(request: Request) -> JSONResponse:
        raw = await request.body()
        return JSONResponse(await run_in_threadpool(_post_event, engine_of(request), raw))

    @app.get("/entities/{subject:path}/diagram.svg", summary="The entity's path on its lifecycle")
    async def get_diagram(subject: str, request: Request) -> Response:
        svg = await run_in_threadpool(_diagram, engine_of(request), subject)
        return Response(svg, media_type="image/svg+xml")

    @app.get("/entities/{subject:path}", summary="An entity: state, version, data, money so far")
    async def get_entity(subject: str, request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(_entity_view, engine_of(request), subject))

    @app.get("/ledger", summary="Every money line committed so far, and the totals; or a page of lines")
    async def get_ledger(request: Request) -> JSONResponse:
        query = request.query_params
        if "limit" not in query and "after" not in query:
            lines = await run_in_threadpool(engine_of(request).ledger)
            return JSONResponse(_money(lines))
        limit, after = _page_request(query.get("limit"), query.get("after"))
        page = await run_in_threadpool(lambda: engine_of(request).ledger_page(after=after, limit=limit))
        return JSONResponse({"ledger": _money(list(page.lines))["ledger"],
                             "next": None if page.last is None else _cursor(page.last),
                             "more": page.more})

    @app.post("/clock", summary="Let time pass: fire the timers due up to a time")
    async def post_clock(request: Request) -> JSONResponse:
        raw = await request.body()
        return JSONResponse(await run_in_threadpool(_advance, engine_of(request), raw))

    @app.get("/health", summary="Row counts and the clock")
    async def health(request: Request) -> JSONResponse:
        engine = engine_of(request)
        stats = await run_in_threadpool(engine.store.stats) if engine.store is not None else {}
        clock = engine.clock
        return JSONResponse({"status": "ok", "clock": format_instant(clock) if clock else None, **stats})

    @app.get("/policies", summary="The policy versions orders are priced by, with their dates")
    async def get_policies(request: Request) -> JSONResponse:
        chosen = engine_of(request).policies
        return JSONResponse({"policies": [v.to_dict() for v in (chosen.versions if chosen else ())]})

    return app


def _advance(engine: Engine, raw: bytes) -> dict[str, Any]:
    try:
        body = loads(raw or b"null")
    except (MalformedEvent, RecursionError) as exc:
        raise Problem(400, "malformed-json", "The body is not JSON", str(exc)) from None
    if not isinstance(body, dict) or not isinstance(body.get("time"), str):
        raise Problem(422, "invalid-request", "The request is not valid",
                      'send {"time": "<RFC 3339 instant>"}', field="time")
    try:
        moment = parse_instant(body["time"])
    except ValueError as exc:
        raise Problem(422, "invalid-request", "The request is not valid", str(exc), field="time") from None
    fired = engine.advance_to(moment)
    return {
        "clock": format_instant(engine.clock) if engine.clock else None,
        "fired": [{"timer": o.timer, "cause": o.cause, "time": format_instant(o.time),
                   "subject": o.steps[0].subject, "state": o.state} for o in fired],
    }
