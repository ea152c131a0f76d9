"""Issue 17, the service's edge (``statemachine/edge.py``), over a real uvicorn: a time
too far ahead of the wall clock, a body too large, tighter limits, unprintable
subjects; and the calendar property through every time field the service takes.

The wall clock is injected (``create_app(clock=...)``), so nothing here depends on the
date the tests run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_harness import serve, stored, stored_clock
from test_hardening import instants

from statemachine.limits import LIMITS, LimitsError
from statemachine.service import create_app
from statemachine.timeutil import LAST, format_instant

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(**delta: float) -> str:
    return format_instant(NOW + timedelta(**delta))


def project(ident: str, time: str, subject: str = "project/P", **data: Any) -> dict[str, Any]:
    return {"id": ident, "time": time, "type": "project.created", "subject": subject,
            "data": {"kind": "creator", "currency": "USD", "deadline": at(days=30), **data}}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "edge.db"


@pytest.fixture
def client(db: Path) -> Iterator[httpx.Client]:
    with serve(create_app(db, clock=lambda: NOW, drain_interval=None)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith(slug), body
    return body  # type: ignore[no-any-return]


# -- 2. one refused event can no longer break a live service --------------------------------
def test_a_far_future_time_is_refused_at_the_edge_and_moves_nothing(client: httpx.Client, db: Path) -> None:
    client.post("/events", json=project("seed", at())).raise_for_status()
    before, clock = stored(db), stored_clock(db)
    poison = {"id": "x", "time": "9999-12-31T00:00:00Z", "type": "order.teleported", "subject": "order/X"}
    body = problem(client.post("/events", json=poison), 422, "time-ahead")
    assert body["field"] == "time"
    assert body["detail"] == ("time 9999-12-31T00:00:00Z is more than 0:05:00 ahead of this service's "
                              "clock (2026-06-01T12:00:00Z): send events as they happen")
    assert (stored(db), stored_clock(db)) == (before, clock)
    # Real events still apply, at the skew's very edge too.
    client.post("/events", json=project("p2", at(minutes=5), "project/Q")).raise_for_status()
    problem(client.post("/events", json=project("p3", at(minutes=5, microseconds=1), "project/R")),
            422, "time-ahead")


def test_the_clock_route_is_bounded_the_same_way(client: httpx.Client, db: Path) -> None:
    client.post("/events", json=project("seed", at())).raise_for_status()
    clock = stored_clock(db)
    problem(client.post("/clock", json={"time": "9999-12-31T00:00:00Z"}), 422, "time-ahead")
    assert stored_clock(db) == clock
    assert client.post("/clock", json={"time": at(minutes=4)}).json()["clock"] == at(minutes=4)


def test_after_a_restart_the_service_still_takes_real_events(db: Path) -> None:
    app = create_app(db, clock=lambda: NOW, drain_interval=None)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        problem(http.post("/events", json=project("x", "9999-12-31T00:00:00Z")), 422, "time-ahead")
    later = create_app(db, clock=lambda: NOW + timedelta(hours=1), drain_interval=None)
    with serve(later) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/events", json=project("p", at(hours=1))).status_code == 200


def test_the_skew_is_configurable(db: Path) -> None:
    with serve(create_app(db, clock=lambda: NOW, clock_skew=timedelta(0), drain_interval=None)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/events", json=project("p", at())).status_code == 200
        problem(http.post("/events", json=project("q", at(seconds=1), "project/Q")), 422, "time-ahead")
    with pytest.raises(ValueError, match="negative"):
        create_app(db, clock_skew=timedelta(seconds=-1))


# -- 3. size limits -------------------------------------------------------------------------
def test_a_body_over_the_limit_is_413_and_stores_nothing(client: httpx.Client, db: Path) -> None:
    before = stored(db)
    big = json.dumps(project("x" * 10_000_000, at())).encode()
    body = problem(client.post("/events", content=big), 413, "too-large")
    assert body["detail"].startswith("the body is larger than 262,144 bytes")
    # Sent in chunks without a Content-Length: refused while reading.
    problem(client.post("/events", content=iter([big[:100_000]] * 5)), 413, "too-large")
    problem(client.post("/clock", content=b" " * 300_000), 413, "too-large")
    assert stored(db) == before


def test_a_service_may_tighten_the_limits_never_loosen_them(db: Path) -> None:
    tight = LIMITS.tightened(id_chars=8, text_chars=10)
    with serve(create_app(db, clock=lambda: NOW, limits=tight, max_body=4096,
                          drain_interval=None)) as url, httpx.Client(base_url=url, timeout=30) as http:
        refused = problem(http.post("/events", json=project("p-1234567", at())), 422, "too-long")
        assert refused["field"] == "id"
        http.post("/events", json=project("p", at())).raise_for_status()
        request = {"id": "r", "time": at(), "type": "project.cancellation_requested",
                   "subject": "project/P", "data": {"by": "advertiser", "reason": "r" * 11}}
        assert problem(http.post("/events", json=request), 422, "too-long")["field"] == "data.reason"
        problem(http.post("/events", content=b"{" + b" " * 5000 + b"}"), 413, "too-large")
    with pytest.raises(LimitsError, match="only tighten"):
        create_app(db, limits=LIMITS.tightened().__class__(id_chars=LIMITS.id_chars + 1))
    with pytest.raises(LimitsError, match="max_body"):
        create_app(db, max_body=LIMITS.line_bytes + 1)


# -- 4. printable subjects ----------------------------------------------------------------------
@pytest.mark.parametrize("subject", ["project/P\x00", "project/P\n1", "project/P\u2028"])
def test_an_unprintable_subject_is_refused_and_stores_nothing(client: httpx.Client, db: Path,
                                                             subject: str) -> None:
    before = stored(db)
    body = problem(client.post("/events", json=project("p", at(), subject)), 422, "invalid-event")
    assert body["field"] == "subject"
    assert "unprintable character" in body["detail"]
    assert stored(db) == before


# -- the calendar property, through the service -------------------------------------------------
@pytest.fixture(scope="module")
def calendar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """A service whose wall clock is the calendar's last instant: every readable time
    passes the edge and reaches the engine."""
    db = tmp_path_factory.mktemp("calendar") / "calendar.db"
    with serve(create_app(db, clock=lambda: LAST, drain_interval=None)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http, db


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(instants(), min_size=3, max_size=3), st.integers(0, 10**9))
def test_no_instant_makes_the_service_answer_anything_but_2xx_or_4xx(
        calendar: tuple[httpx.Client, Path], times: list[str], n: int) -> None:
    http, db = calendar
    when, deadline, end = times
    requests = [
        ("/events", project(f"p{n}", when, f"project/P{n}", deadline=deadline)),
        ("/events", {"id": f"m{n}", "time": when, "type": "promotion.created",
                     "subject": f"promotion/M{n}", "data": {"budget": "1.00", "currency": "USD",
                                                             "end": end}}),
        ("/clock", {"time": end}),
    ]
    for path, body in requests:
        before = stored(db)
        response = http.post(path, json=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert stored(db) == before
