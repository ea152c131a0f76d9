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
    GET  /health                               whether the store answers, row counts, the clock
    GET  /metrics                              Prometheus text format (:mod:`.metrics`)

With ``auth`` (:mod:`.auth`) every route but ``/health`` and ``/metrics`` needs a bearer
token (401 without a known one) and an event goes through only as its party may send it
(403). With ``timer_interval`` the timers due on the wall clock fire by themselves
(:mod:`.clock`).
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
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..api import Engine, EntityView
from ..edge import DEFAULT_MAX_BODY, DEFAULT_SKEW, Edge, Refused, text_fields
from ..engine import (
    Conflict,
    Domain,
    Entity,
    EntityExists,
    EventRejected,
    InvalidEvent,
    OutOfOrder,
    TransitionRefused,
    UnknownEntity,
)
from ..envelope import MalformedEvent, loads
from ..http_schema import document
from ..lifecycles import DOMAIN
from ..lifecycles.parties import PLATFORM
from ..lifecycles.versions import Policies
from ..limits import ENV_ERROR, LIMITS, Limits
from ..replay.report import LedgerLine, Report
from ..store import LedgerPosition, OutboxItem, Recorded, StaleWrite
from ..store.codec import plain
from ..store.opening import open_store
from ..timeutil import format_instant, parse_instant
from .auth import Forbidden, Principal, Tokens, authorize
from .clock import Clock, TimerFiring, utc_now
from .metrics import CONTENT_TYPE, Metrics

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
        self.headers: dict[str, str] | None = None  # e.g. WWW-Authenticate on a 401
        self.body = {"type": _TYPE + slug, "title": title, "status": status, "detail": detail,
                     "field": field, **extra}


def _problem(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body, status_code=problem.status, media_type=PROBLEM_JSON,
                        headers=problem.headers)


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


def _post_event(engine: Engine, raw: bytes, who: Principal | None = None,
                edge: Edge | None = None) -> dict[str, Any]:
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
    if edge is not None:
        edge.check_event(envelope)  # a time too far ahead, a service limit: nothing moves
    if who is not None and isinstance(envelope, dict):  # --auth: may this party send it?
        try:
            envelope = authorize(engine, who, envelope)
        except Forbidden as exc:
            raise Problem(403, "forbidden", "This party may not send this event", exc.reason,
                          field=exc.field, event_id=event_id) from None
    try:
        outcome = engine.apply(envelope)
    except EventRejected as exc:
        if who is not None and isinstance(exc, TransitionRefused) and exc.field == "data.by":
            # A guard on who acts refused the token's own party (an advertiser accepting
            # its own cancellation): the caller may not do this, whatever it sends.
            raise Problem(403, "forbidden", "This party may not send this event now", exc.reason,
                          field="data.by", event_id=event_id, state=exc.state, trigger=exc.trigger,
                          guard=exc.guard) from None
        problem = _rejection(exc, event_id)
        if isinstance(exc, OutOfOrder) and engine.clock is not None:  # what "older" is measured by
            problem.body["clock"] = format_instant(engine.clock)
        raise problem from None
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
    view = {
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
    if isinstance(entity, EntityView):  # Ads Manager (issue 14): effective statuses, descendants
        from ..ads_view import ads_view

        view.update(ads_view(engine, entity))
    return view


def _diagram(engine: Engine, subject: str) -> bytes:
    """The entity view: its lifecycle drawn by :mod:`statemachine.diagrams`, with the
    path it took (read from the store, not replayed) laid over it, as SVG."""
    entity = _entity(engine, subject)
    try:
        from ..diagrams import (
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
               drain_interval: float | None = 1.0, clock: Clock | None = None,
               timer_interval: float | None = 0.25, auth: Tokens | None = None,
               clock_skew: timedelta = DEFAULT_SKEW, max_body: int = DEFAULT_MAX_BODY,
               limits: Limits | None = None, domain: Domain | None = None,
               policies: Policies | None = None) -> FastAPI:
    """The service over the store at ``db`` (a SQLite path or a ``postgresql://`` URL),
    or over ``engine``, which the caller owns. ``policies``: the policy versions an
    engine opened on ``db`` prices orders by (default: the built-in one alone).

    With ``drain_interval`` the outbox is drained every so many seconds by logging each
    effect (a stand-in for a payment system); ``None`` or 0 leaves it to others.
    ``domain``: the lifecycles an engine opened on ``db`` runs (default: ours).
    ``clock`` is the wall clock the service's edge reads (an aware datetime; default: the
    real UTC now): every ``timer_interval`` seconds the timers due on it fire
    (:mod:`.clock`); ``None`` or 0 leaves time to ``POST /clock``. Event and ``/clock``
    times more than ``clock_skew`` ahead of it are refused (422), bodies over
    ``max_body`` bytes get 413, and ``limits`` may tighten the envelope's
    (:mod:`statemachine.edge`).
    With ``auth`` (:mod:`.auth`) every route but ``/health`` and ``/metrics`` needs a
    bearer token, and an event only goes through as its party may send it.
    """
    if ENV_ERROR is not None:
        raise ValueError(ENV_ERROR)
    if domain is not None and policies is not None:
        raise ValueError("give either a domain or policies (the project's lifecycles priced by them)")
    if engine is None and policies is not None:
        from ..lifecycles import domain_for

        domain = domain_for(policies)
    domain = engine.runtime.domain if engine is not None else (domain or DOMAIN)
    edge = Edge(clock=clock or utc_now, skew=clock_skew, max_body=max_body, limits=limits or LIMITS,
                texts=text_fields(domain))
    if (db is None) == (engine is None):
        raise ValueError("create_app needs exactly one of db or engine")
    if engine is not None and engine.store is None:
        raise ValueError("the service needs an engine with a store: Engine(store=SQLiteStore(path))")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        app.state.engine = engine or (
            Engine(store=open_store(os.fspath(db)), policies=policies)  # type: ignore[arg-type]
            if policies is not None else Engine(domain, store=open_store(os.fspath(db))))  # type: ignore[arg-type]
        drainer = None
        if drain_interval:
            drainer = asyncio.create_task(_drain_forever(app.state.engine, drain_interval))
        app.state.timers = ticker = None
        if timer_interval:
            app.state.timers = TimerFiring(app.state.engine, clock or utc_now, timer_interval,
                                           on_fired=metrics.fired)
            ticker = asyncio.create_task(app.state.timers.run_forever())
        try:
            yield
        finally:
            for task in (drainer, ticker):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if own:
                app.state.engine.close()

    metrics = Metrics(i.type for lc in domain.lifecycles for i in lc.inputs)
    app = FastAPI(title="collab-lifecycles", version="0.1.0", lifespan=lifespan,
                  summary="Orders, projects and promotions as explicit state machines",
                  dependencies=[Depends(_authenticator(auth))])

    fastapi_openapi = app.openapi
    precise = lambda: document(fastapi_openapi(), domain, max_body=edge.max_body)  # noqa: E731
    app.openapi = precise  # type: ignore[method-assign]  # the precise bodies and answers

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        _log_refusal(request, exc)
        return _problem(exc)

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> JSONResponse:
        return _problem(Problem(exc.status, exc.slug, exc.title, exc.detail, field=exc.field))

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
        raw = await edge.read_body(request)
        who = getattr(request.state, "principal", None)
        started = time.perf_counter()
        try:
            answer = await run_in_threadpool(_post_event, engine_of(request), raw, who, edge)
        except Problem as problem:
            metrics.event(_type_of(raw), rejected=problem.body["type"].removeprefix(_TYPE))
            raise
        finally:
            metrics.latency.observe(time.perf_counter() - started)
        metrics.event(answer["type"], duplicate=answer["duplicate"])
        return JSONResponse(answer)

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
        who = getattr(request.state, "principal", None)
        if who is not None and who.party != PLATFORM:
            raise Problem(403, "forbidden", "Only the platform may move the clock",
                          f"a {who.party} may not move the clock; the platform may")
        raw = await edge.read_body(request)
        return JSONResponse(await run_in_threadpool(_advance, engine_of(request), raw, edge))

    @app.get("/health", summary="Whether the store answers; row counts and the clock")
    async def health(request: Request) -> JSONResponse:
        engine = engine_of(request)
        try:
            stats = await run_in_threadpool(engine.store.stats) if engine.store is not None else {}
        except Exception as exc:  # the database is down: say so, as a 503 a probe understands
            if structlog.is_configured():
                _log.warning("health.store_unavailable", error=str(exc))
            return JSONResponse({"status": "unavailable", "store": f"not answering: {type(exc).__name__}"},
                                status_code=503)
        clock = engine.clock
        return JSONResponse({"status": "ok", "store": "ok",
                             "clock": format_instant(clock) if clock else None, **stats})

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def get_metrics(request: Request) -> Response:
        engine = engine_of(request)
        try:
            pending = (await run_in_threadpool(engine.store.stats))["pending"] if engine.store else None
        except Exception:  # a scrape still answers; /health tells that the store is down
            pending = None
        return Response(metrics.render(pending), media_type=CONTENT_TYPE)

    @app.get("/policies", summary="The policy versions orders are priced by, with their dates")
    async def get_policies(request: Request) -> JSONResponse:
        chosen = engine_of(request).policies
        return JSONResponse({"policies": [v.to_dict() for v in (chosen.versions if chosen else ())]})

    return app


def _advance(engine: Engine, raw: bytes, edge: Edge | None = None) -> dict[str, Any]:
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
    if edge is not None:
        edge.check_time(moment)
    fired = engine.advance_to(moment)
    return {
        "clock": format_instant(engine.clock) if engine.clock else None,
        "fired": [{"timer": o.timer, "cause": o.cause, "time": format_instant(o.time),
                   "subject": o.steps[0].subject, "state": o.state} for o in fired],
    }


# -- who is asking (--auth) ----------------------------------------------------------
#: Routes open to anyone even with --auth: probes and scrapers carry no party's token.
_OPEN_PATHS = frozenset({"/health", "/metrics"})


def _authenticator(tokens: Tokens | None) -> Any:
    """The app-wide dependency: with ``tokens``, a request without a known bearer token
    is a 401 before its body is read; the principal goes on ``request.state``."""

    async def authenticate(request: Request) -> None:
        request.state.principal = None
        if tokens is None or request.url.path in _OPEN_PATHS:
            return
        who = tokens.identify(request.headers.get("authorization"))
        if who is None:
            given = "authorization" in request.headers
            problem = Problem(401, "unauthenticated", "A valid bearer token is needed",
                              "the bearer token is not one this service knows" if given else
                              "send Authorization: Bearer <token> (see the service's --auth file)")
            problem.headers = {"WWW-Authenticate": 'Bearer realm="collab-lifecycles"'}
            raise problem
        request.state.principal = who

    return authenticate


def _log_refusal(request: Request, problem: Problem) -> None:
    """Every refusal, with the account that asked (never its token)."""
    if not structlog.is_configured():
        return
    who: Principal | None = getattr(request.state, "principal", None)
    _log.warning("request.refused", status=problem.status, problem=problem.body["type"].removeprefix(_TYPE),
                 method=request.method, path=request.url.path, detail=problem.body["detail"],
                 party=who.party if who else None, account=who.account if who else None)


def _type_of(raw: bytes) -> object:
    """The ``type`` of a refused body, when it has one (for the metrics' label)."""
    try:
        envelope = loads(raw)
    except (MalformedEvent, RecursionError):
        return None
    return envelope.get("type") if isinstance(envelope, dict) else None
