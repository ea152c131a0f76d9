"""The example HTTP service, for real: ``python examples/service.py`` in a subprocess
on 127.0.0.1 and a free port, spoken to over HTTP with httpx.

Each module-level story uses its own subjects and a day of its own (:func:`day`), so
the engine's single clock never makes one test's events "out of order" for another.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine.replay import replay_path, to_json
from statemachine.timeutil import format_instant, parse_instant

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "examples" / "service.py"
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
PROBLEM_KEYS = {"type", "title", "status", "detail", "field"}


class Server:
    """The example service as a child process; ``start`` waits until it answers."""

    #: The stories here are dated 2030 and later: let them lie ahead of the wall clock
    #: (issue 17's edge refuses times more than 5 minutes ahead by default).
    EXTRA: tuple[str, ...] = ("--clock-skew", str(100 * 366 * 86400))

    def __init__(self, db: Path, log: Path, extra: tuple[str, ...] = EXTRA) -> None:
        self.db, self.log, self.extra = db, log, extra
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Server:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SERVICE), "--host", "127.0.0.1", "--port", str(port),
                 "--db", str(self.db), "--drain-interval", "0.1", *self.extra],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        for _ in range(300):  # waiting for start-up, not timing anything
            if self.process.poll() is not None:
                pytest.fail(f"the service exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"the service did not answer:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[httpx.Client]:
    base = tmp_path_factory.mktemp("service")
    server = Server(base / "service.db", base / "service.log").start()
    with server.client() as client:
        yield client
    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises the signal


@pytest.fixture
def fresh(tmp_path) -> Iterator[Server]:
    server = Server(tmp_path / "fresh.db", tmp_path / "fresh.log").start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


@pytest.fixture
def fresh_client(fresh) -> Iterator[httpx.Client]:
    """One client for many requests (a client of its own per request costs ~0.1 s)."""
    with fresh.client() as client:
        yield client


_today = [datetime(2030, 1, 1, tzinfo=UTC)]


def day(after: datetime | None = None) -> str:
    """A date of its own for each story (``2030-01-05``), later than every story
    before, and than ``after`` when a story moved the clock itself."""
    _today[0] = max(_today[0], after or _today[0]) + timedelta(days=1)
    return _today[0].strftime("%Y-%m-%d")


def envelope(ident: str, time: str, type_: str, subject: str, **data: Any) -> dict[str, Any]:
    return {"id": ident, "time": time, "type": type_, "subject": subject, **({"data": data} if data else {})}


def story(http: httpx.Client, tag: str, *, review: str = "manual", fee: str = "250.00") -> str:
    """A creator project with one agreed order: ``project/{tag}`` and ``order/{tag}-1``."""
    d = day()
    ok(http.post("/events", json=envelope(f"{tag}-p", f"{d}T09:00:00Z", "project.created", f"project/{tag}",
                                          kind="creator", currency="USD", deadline="2031-12-01T00:00:00Z")))
    ok(http.post("/events", json=envelope(f"{tag}-a", f"{d}T09:10:00Z", "order.agreed", f"order/{tag}-1",
                                          project=tag, fee=fee, review=review)))
    return d


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def problem(response: httpx.Response, status: int, slug: str, field: str | None = ...) -> dict[str, Any]:
    """Check an RFC 9457 body: the media type, the members, the status and the type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"] == f"urn:collab-lifecycles:problem:{slug}", body
    assert body["title"] and body["detail"]
    if field is not ...:
        assert body["field"] == field, body
    return body


# -- POST /events ---------------------------------------------------------------------
def test_an_event_is_applied_and_answered_with_state_version_and_effects(http):
    d = story(http, "A", review="auto", fee="199.99")
    answer = ok(http.post("/events", json=envelope("A-s", f"{d}T10:00:00Z", "order.submitted", "order/A-1")))
    assert answer == {
        "id": "A-s", "duplicate": False, "type": "order.submitted", "subject": "order/A-1",
        "time": f"{d}T10:00:00Z", "state": "approved", "version": 2,
        "steps": [{"subject": "order/A-1", "trigger": "submit", "from": "agreed", "to": "approved",
                   "version": 2}],
        "effects": [{"id": "A-s#1", "type": "PaymentReleased", "cause": "A-s", "time": f"{d}T10:00:00Z",
                     "order": "order/A-1", "amount": "199.99", "currency": "USD"}],
    }


def test_reposting_an_id_returns_the_same_answer_flagged_as_a_duplicate(http):
    d = story(http, "B")
    event = envelope("B-c", f"{d}T11:00:00Z", "project.cancellation_requested", "project/B", by="provider")
    first = ok(http.post("/events", json=event))
    again = ok(http.post("/events", content=json.dumps(event, indent=2)))  # same content, other spelling
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert {**again, "duplicate": False} == first
    reused = http.post("/events", json={**event, "data": {"by": "advertiser"}})
    body = problem(reused, 409, "id-conflict", "id")
    assert body["detail"] == "id 'B-c' was applied before with different content"
    assert ok(http.get("/entities/project/B"))["version"] == 2  # nothing else happened


def test_an_amount_sent_as_a_json_number_is_kept_exactly(http):
    d = day()
    raw = ('{"id": "N-p", "time": "' + d + 'T09:00:00Z", "type": "promotion.created", "subject": '
           '"promotion/N", "data": {"budget": 0.30, "currency": "USD", "end": "2031-01-01T00:00:00Z"}}')
    ok(http.post("/events", content=raw))
    entity = ok(http.get("/entities/promotion/N"))
    assert entity["data"]["budget"] == "0.30"
    assert entity["money"] == {"USD": {"hold_placed": "0.30"}}


# -- bad input: problem details, never 500 ----------------------------------------------
NOW = "now"  # replaced by the test's own day: a refused well-formed event moves the clock (spec)
GOOD = {"id": "bad-1", "time": NOW, "type": "order.started", "subject": "order/X"}


@pytest.mark.parametrize(("body", "status", "slug", "field"), [
    (b"", 400, "malformed-json", None),
    (b"{", 400, "malformed-json", None),
    (b"\xff\xfe{}", 400, "malformed-json", None),
    (b"[" * 100_000 + b"]" * 100_000, 400, "malformed-json", None),
    (b"[]", 422, "invalid-event", None),
    (b'"an event"', 422, "invalid-event", None),
    ({k: v for k, v in GOOD.items() if k != "id"}, 422, "invalid-event", "id"),
    ({**GOOD, "id": 7}, 422, "invalid-event", "id"),
    ({**GOOD, "time": "yesterday"}, 422, "invalid-event", "time"),
    ({**GOOD, "time": "2031-01-01T00:00:00"}, 422, "invalid-event", "time"),
    ({**GOOD, "type": "order.teleported"}, 422, "invalid-event", "type"),
    ({**GOOD, "subject": "order"}, 422, "invalid-event", "subject"),
    ({**GOOD, "subject": "project/P"}, 422, "invalid-event", "subject"),
    ({**GOOD, "specversion": "2.0"}, 422, "invalid-event", "specversion"),
    ({**GOOD, "data": [1]}, 422, "invalid-event", "data"),
    ({**GOOD, "type": "order.agreed", "data": {"project": "P", "fee": "ten", "review": "auto"}},
     422, "invalid-event", "data.fee"),
    ({**GOOD, "type": "order.agreed", "data": {"project": "P", "fee": "1", "review": "maybe"}},
     422, "invalid-event", "data.review"),
    ({**GOOD, "type": "project.created", "subject": "project/P",
      "data": {"kind": "creator", "currency": "XXX", "deadline": "2031-01-01T00:00:00Z"}},
     422, "invalid-event", "data.currency"),
], ids=lambda v: v[:40].decode(errors="replace") if isinstance(v, bytes) else None)
def test_bad_input_is_a_problem_naming_the_field(http, body, status, slug, field):
    if isinstance(body, dict) and body.get("time") == NOW:
        body = {**body, "time": f"{day()}T00:00:00Z"}
    response = http.post("/events", content=body if isinstance(body, bytes) else json.dumps(body))
    problem(response, status, slug, field)


def test_refused_events_are_409_with_the_reason(http):
    d = story(http, "C")
    refused = http.post("/events", json=envelope("C-x", f"{d}T12:00:00Z", "order.approved", "order/C-1"))
    body = problem(refused, 409, "transition-refused", "subject")
    assert body["detail"] == "order/C-1: cannot approve in state agreed"
    assert (body["state"], body["trigger"], body["event_id"]) == ("agreed", "approve", "C-x")
    problem(http.post("/events", json=envelope("C-y", f"{d}T12:00:00Z", "order.started", "order/C-404")),
            409, "unknown-entity", "subject")
    problem(http.post("/events", json=envelope("C-z", f"{d}T12:00:00Z", "order.agreed", "order/C-1",
                                               project="C", fee="1.00", review="auto")),
            409, "entity-exists", "subject")
    late = problem(http.post("/events", json=envelope("C-o", "2029-01-01T00:00:00Z", "order.started",
                                                      "order/C-1")), 409, "out-of-order", "time")
    assert late["detail"].startswith("out of order: 2029-01-01T00:00:00Z is before the clock")
    assert ok(http.get("/entities/order/C-1"))["version"] == 1  # none of it changed anything
    # a refused id is not remembered: the same id may come again and be applied
    assert ok(http.post("/events", json=envelope("C-x", f"{d}T12:00:00Z", "order.started",
                                                 "order/C-1")))["state"] == "in_progress"


def test_a_bad_value_in_the_data_is_a_422_naming_that_field(http):
    d = story(http, "V")
    too_precise = problem(http.post("/events", json=envelope(
        "V-x", f"{d}T12:00:00Z", "order.agreed", "order/V-9", project="V", fee="1.234",
        review="auto")), 422, "transition-refused", "data.fee")
    assert too_precise["detail"] == (
        "order/V-9: cannot create: the fee 1.234 has more decimals than USD allows")
    problem(http.post("/events", json=envelope(
        "V-y", f"{d}T12:00:00Z", "order.agreed", "order/V-8", project="nope", fee="1.00",
        review="auto")), 422, "transition-refused", "data.project")


def test_unknown_routes_and_methods_are_problems_too(http):
    problem(http.get("/nothing/here"), 404, "not-found", None)
    problem(http.delete("/ledger"), 405, "method-not-allowed", None)
    problem(http.get("/entities/order/never"), 404, "unknown-entity", "subject")
    problem(http.get("/entities/widget/W-1"), 422, "invalid-subject", "subject")
    problem(http.get("/entities/order"), 422, "invalid-subject", "subject")


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"), ("limit=-5", "limit"),
    ("limit=", "limit"), ("limit=\u0663", "limit"), ("after=12", "after"), ("after=a-b", "after"),
    ("limit=5&after=1-2-3", "after"),
])
def test_a_bad_ledger_page_request_names_the_parameter(http, query, field):
    body = problem(http.get(f"/ledger?{query}"), 422, "invalid-request", field)
    assert field in body["detail"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=60),
    st.dictionaries(st.sampled_from(["id", "time", "type", "subject", "data", "specversion"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=8), st.floats(),
                              st.lists(st.integers(), max_size=2),
                              st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)),
                    max_size=6).map(lambda d: json.dumps(d).encode()),
))
def test_no_body_makes_the_service_fail(fresh_client, body):
    response = fresh_client.post("/events", content=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        problem(response, response.status_code, response.json()["type"].rpartition(":")[2])


# -- reading ---------------------------------------------------------------------------
def test_an_entity_shows_state_version_data_timers_and_money_so_far(http):
    d = story(http, "D", fee="300.00")
    ok(http.post("/events", json=envelope("D-s", f"{d}T10:00:00Z", "order.submitted", "order/D-1")))
    order = ok(http.get("/entities/order/D-1"))
    assert (order["state"], order["version"], order["lifecycle"]) == ("submitted", 2, "order")
    assert order["data"]["fee"] == "300.00" and order["data"]["submitted_at"] == f"{d}T10:00:00Z"
    assert [t["name"] for t in order["timers"]] == ["deemed_approval"]
    assert order["money"] == {} and order["ledger"] == []
    ok(http.post("/events", json=envelope("D-r", f"{d}T11:00:00Z", "project.cancellation_requested",
                                          "project/D", by="advertiser")))
    ok(http.post("/events", json=envelope("D-k", f"{d}T12:00:00Z", "project.cancellation_accepted",
                                          "project/D", by="provider")))
    order = ok(http.get("/entities/order/D-1"))
    assert order["state"] == "cancelled"
    assert order["money"] == {"USD": {"refund": "150.00", "payment_released": "150.00"}}
    project = ok(http.get("/entities/project/D"))
    assert project["children"] == ["order/D-1"]
    assert project["money"] == order["money"]  # a project's money is its orders'
    assert {line["cause"] for line in project["ledger"]} == {"D-k"}


def test_the_clock_fires_timers_and_refuses_a_bad_time(http):
    d = story(http, "E")
    ok(http.post("/events", json=envelope("E-s", f"{d}T10:00:00Z", "order.submitted", "order/E-1")))
    health = ok(http.get("/health"))
    due = parse_instant(f"{d}T10:00:00Z") + timedelta(days=14)
    day(after=due)  # the stories after this one happen after the clock it sets
    fired = ok(http.post("/clock", json={"time": format_instant(due)}))
    assert fired["clock"] == format_instant(due)
    assert fired["fired"] == [{"timer": "deemed_approval", "cause": "E-s", "subject": "order/E-1",
                               "state": "deemed_approved", "time": format_instant(due)}]
    assert ok(http.get("/entities/order/E-1"))["state"] == "deemed_approved"
    assert ok(http.get("/health"))["timers"] > health["timers"]
    problem(http.post("/clock", json={"time": "soon"}), 422, "invalid-request", "time")
    problem(http.post("/clock", json={}), 422, "invalid-request", "time")
    problem(http.post("/clock", content=b"{"), 400, "malformed-json", None)


def test_the_diagram_of_an_entity_is_an_svg_of_its_path(http):
    story(http, "F")
    response = http.get("/entities/order/F-1/diagram.svg")
    if shutil.which("dot") is None:
        problem(response, 503, "diagram-unavailable")
        return
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in response.content
    assert b"now agreed" in response.content  # the entity's current state is marked
    assert b"order/F&#45;1" in response.content or b"order/F-1" in response.content
    problem(http.get("/entities/order/F-404/diagram.svg"), 404, "unknown-entity", "subject")


# -- the whole example log, a crash and a restart --------------------------------------
def test_the_example_log_over_http_gives_the_replay_ledger_and_survives_sigkill(fresh):
    answers: dict[int, int] = {}
    with fresh.client() as client:
        for raw in EXAMPLE.read_bytes().splitlines():
            if raw.strip():
                status = client.post("/events", content=raw).status_code
                answers[status] = answers.get(status, 0) + 1
        before = ok(client.get("/ledger"))
    report = replay_path(EXAMPLE)
    expected = json.loads(to_json(report))
    assert answers[200] == report.applied + report.duplicates
    assert sum(n for s, n in answers.items() if s != 200) == len(report.rejected)
    assert before == {"ledger": expected["ledger"], "totals": expected["totals"]}
    with fresh.client() as client:  # the same lines, in pages of 4 (no totals: see service.py)
        paged, after, more = [], None, True
        while more:
            page = ok(client.get("/ledger", params={"limit": 4, **({"after": after} if after else {})}))
            assert page.keys() == {"ledger", "next", "more"} and len(page["ledger"]) <= 4
            paged += page["ledger"]
            after, more = page["next"], page["more"]
        assert paged == expected["ledger"]
        assert ok(client.get("/ledger", params={"after": after})) == {
            "ledger": [], "next": after, "more": False}
    assert fresh.stop(signal.SIGKILL) == -signal.SIGKILL
    fresh.start()
    with fresh.client() as client:
        assert ok(client.get("/ledger")) == before
        for subject, state in report.entities.items():
            assert ok(client.get(f"/entities/{subject}"))["state"] == state
        again = client.post("/events", content=EXAMPLE.read_bytes().splitlines()[0])
        assert ok(again)["duplicate"] is True
