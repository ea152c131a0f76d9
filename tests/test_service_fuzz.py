"""Issue 17: schema-driven fuzzing of the live service (schemathesis, pytest integration).

The schema is the real document the running service serves (``/openapi.json``), whose
event bodies are derived from the lifecycle declarations (``statemachine/http_schema.py``),
so generated events reach the engine: valid envelopes of every declared type (most
refused by the state, some applied), and, in the negative mode, envelopes that break
the schema. For each request: no 5xx, the status and content type are documented, the
body matches its schema, and a refused request (4xx) stored nothing: the event rows,
the entity versions and the ledger (outbox) are the same before and after.

The wall clock is injected at the calendar's last instant, so every readable time
passes the edge's skew check and reaches the engine (the skew itself is tested in
``test_service_edge.py``). Bounded: a fixed number of examples per operation and mode,
no shrinking past the first failure, about 20-30 s on a loaded 2-core machine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_harness import serve, stored

from statemachine.service import create_app
from statemachine.timeutil import LAST, format_instant, parse_instant

#: Examples per operation and phase: enough to reach every declared event type and
#: each refusal, small enough to keep CI fast.
EXAMPLES = 40

#: Seeded so the run is the same on every machine (a property that finds a failure is
#: made a test of its own).
CONFIG = schemathesis.Config.from_dict({
    "seed": 17,
    "generation": {"mode": "all", "max-examples": EXAMPLES, "no-shrink": False},
    "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
})

#: The statuses each operation answered, for the last test: the schema must be precise
#: enough that generated events get past the body checks into the engine.
SEEN: defaultdict[tuple[str, str], set[int]] = defaultdict(set)

#: After the seeded entities: the times the hook gives every other generated event.
START = datetime(2026, 1, 2, tzinfo=UTC)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    # No wall-clock timers: at the calendar's end every seeded timer would fire at once.
    with serve(create_app(db, clock=_clock, drain_interval=None, timer_interval=None)) as url:
        with httpx.Client(base_url=url) as http:  # a few entities for the events to find
            for ident, subject, data in (
                    ("seed-p", "project/P-1", {"kind": "partner", "currency": "USD",
                                               "deadline": "2099-01-01T00:00:00Z"}),
                    ("seed-m", "promotion/M-1", {"budget": "100.00", "currency": "USD",
                                                 "end": "2099-01-01T00:00:00Z"})):
                http.post("/events", json={"id": ident, "time": "2026-01-01T00:00:00Z", "type":
                                           subject.split("/")[0] + ".created", "subject": subject,
                                           "data": data}).raise_for_status()
            for ident, kind, subject, data in (
                    ("seed-o", "order.agreed", "order/O-1",
                     {"project": "P-1", "fee": "10.00", "review": "manual"}),
                    ("seed-c", "campaign.created", "campaign/C-1",
                     {"currency": "USD", "budget_level": "campaign", "budget": "100.00",
                      "end": "2099-01-01T00:00:00Z"}),
                    ("seed-g", "ad_group.created", "ad_group/G-1", {"campaign": "C-1"}),
                    ("seed-a", "ad.created", "ad/A-1", {"ad_group": "G-1"})):
                http.post("/events", json={"id": ident, "time": "2026-01-01T00:00:00Z", "type": kind,
                                           "subject": subject, "data": data}).raise_for_status()
        yield url, db


def _clock() -> Any:
    return LAST


#: The document the service serves at /openapi.json (the app is only asked for it here;
#: the requests go to the uvicorn of ``service``, and a test checks the two documents are
#: the same). Loaded at import: schemathesis's lazy ``from_fixture`` does not run under
#: pytest 9.
DOCUMENT = create_app("unused.db", clock=_clock, drain_interval=None).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


_count = [0]
_SEEDED = {"project": "project/P-1", "order": "order/O-1", "promotion": "promotion/M-1",
           "campaign": "campaign/C-1", "ad_group": "ad_group/G-1", "ad": "ad/A-1"}
#: Parent links in ``data``, pointed at the seeded parents.
_PARENTS = {"project": "P-1", "campaign": "C-1", "ad_group": "G-1"}


@schema.hook("map_body")
def _now_and_then_current(context: Any, body: Any) -> Any:
    """Generated times spread over ten thousand years, and the engine's clock only goes
    forward (a well-formed event moves it, refused or not): most generated events would
    be out of order. So every other event is dated a minute after the one before (the
    engine then decides on its content), and so is every readable time after the seeds
    and one readable time in four of the rest; every third event names a seeded entity
    of its kind (its state then decides), its parent links the seeded parents. The rest
    stay as generated: unreadable times, and times before the clock (out of order)."""
    if not isinstance(body, dict) or context.operation.path not in ("/events", "/clock"):
        return body
    _count[0] += 1
    n = _count[0]
    if context.operation.path == "/clock":  # never years ahead: the events would all be late
        return {**body, "time": format_instant(START + timedelta(minutes=n))} if _ahead(
            body.get("time")) else body
    if n % 2 == 0 or _ahead(body.get("time")) or (n % 4 == 3 and _readable(body.get("time"))):
        body = {**body, "time": format_instant(START + timedelta(minutes=n))}
    kind = str(body.get("type", "")).split(".")[0]
    if n % 3 == 0 and kind in _SEEDED:
        body = {**body, "subject": _SEEDED[kind]}
        if isinstance(body.get("data"), dict):
            body["data"] = {**body["data"], **{key: ident for key, ident in _PARENTS.items()
                                               if key in body["data"]}}
    return body


def _ahead(time: Any) -> bool:
    """A readable time after the seeds: left as generated, it would move the clock years
    ahead and make every later event out of order (the far future has tests of its own)."""
    try:
        return isinstance(time, str) and parse_instant(time) > START
    except ValueError:
        return False


def _readable(time: Any) -> bool:
    try:
        return isinstance(time, str) and parse_instant(time) is not None
    except ValueError:
        return False


def test_the_fuzzed_document_is_the_one_the_service_serves(service: tuple[str, Path]) -> None:
    url, _ = service
    assert httpx.get(f"{url}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_service_holds_against_its_own_schema(case: Any, service: tuple[str, Path]) -> None:
    url, db = service
    before = stored(db)
    response = case.call(base_url=url)
    SEEN[(case.method, case.path)].add(response.status_code)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert _but_timers(before, stored(db)) == before, \
            f"{case.method} {case.path} ({response.status_code}) stored something"


def _but_timers(before: tuple[Any, ...], after: tuple[Any, ...]) -> tuple[Any, ...]:
    """``after`` less what timers fired: a refused but well-formed event still moves the
    clock (the contract's rule), and every timer due by then fires first, storing its own
    event row (``timer:<name>:<subject>@<due>``), its entity's new version and its effects.
    Anything else that changed is the refused request's doing."""
    events, heads, outbox = after
    fired = [row for row in events[len(before[0]):] if str(row[1]).startswith("timer:")]
    if not fired:
        return after
    subjects = {str(row[1]).split(":", 2)[2].rsplit("@", 1)[0] for row in fired}
    ids = tuple(str(row[1]) for row in fired)
    old_heads = dict(before[1])
    return ([row for row in events if row not in fired],
            [(subject, old_heads[subject]) if subject in subjects and subject in old_heads
             else (subject, version) for subject, version in heads],
            [row for row in outbox if not str(row[0]).startswith(ids)])


def test_generated_events_reached_the_engine() -> None:
    events = SEEN.get(("POST", "/events"))
    if not events:
        pytest.skip("run with the fuzz test above")
    assert 200 in events  # applied (a creation, or an event on a seeded entity)
    assert 409 in events  # refused by the state: the engine decided, not the body checks
