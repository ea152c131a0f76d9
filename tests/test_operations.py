"""What operators expect (issue 16): ``GET /metrics`` (Prometheus text), ``/health`` that
says whether the store answers, JSON logs, and the example service's start-up rules
(loopback only without ``--auth``; ``--db postgresql://`` selects PostgreSQL).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from live import STORY_SKEW, FakeClock, Live, wait_until
from prometheus_client.parser import text_string_to_metric_families

from statemachine.api import Engine
from statemachine.service import create_app
from statemachine.store import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "examples" / "service.py"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_applied_duplicate_rejected_timers_latency_and_the_outbox(db):
    clock = FakeClock(datetime(2032, 1, 1, tzinfo=UTC))
    app = create_app(db.target, clock=clock, drain_interval=None, timer_interval=0.02,
                     clock_skew=STORY_SKEW)
    created = {"id": "p1", "time": "2032-01-01T00:00:00Z", "type": "project.created",
               "subject": "project/P-1",
               "data": {"kind": "creator", "currency": "USD", "deadline": "2032-06-01T00:00:00Z"}}
    with Live(app) as client:
        assert client.post("/events", json=created).status_code == 200
        assert client.post("/events", json=created).status_code == 200  # a duplicate
        for n, bad in enumerate([{"type": "order.approved", "subject": "order/O-9"},     # unknown entity
                                 {"type": "no.such", "subject": "order/O-9"}]):          # unknown type
            assert client.post("/events", json={"id": f"b{n}", "time": "2032-01-01T00:00:00Z", **bad}
                               ).status_code in (409, 422)
        agreed = {"id": "a1", "time": "2032-01-01T01:00:00Z", "type": "order.agreed", "subject": "order/O-1",
                  "data": {"project": "P-1", "fee": "80.00", "review": "manual"}}
        submitted = {"id": "s1", "time": "2032-01-01T02:00:00Z", "type": "order.submitted",
                     "subject": "order/O-1"}
        for event in (agreed, submitted):
            assert client.post("/events", json=event).status_code == 200
        clock.move(days=15)
        wait_until(lambda: client.get("/entities/order/O-1").json()["state"] == "deemed_approved",
                   "the timer")
        response = client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        got = samples(response.text)
    assert got[("collab_events_applied_total", (("type", "project.created"),))] == 1
    assert got[("collab_events_applied_total", (("type", "order.submitted"),))] == 1
    assert got[("collab_events_duplicate_total", (("type", "project.created"),))] == 1
    refused = (("reason", "unknown-entity"), ("type", "order.approved"))
    assert got[("collab_events_rejected_total", refused)] == 1
    assert got[("collab_events_rejected_total", (("reason", "invalid-event"), ("type", "unknown")))] == 1
    assert got[("collab_timers_fired_total", (("timer", "deemed_approval"),))] == 1
    assert got[("collab_apply_seconds_count", ())] == 6
    assert got[("collab_outbox_pending", ())] == 1  # the released fee, not drained here


def test_health_says_when_the_store_does_not_answer(tmp_path):
    engine = Engine(store=SQLiteStore(tmp_path / "h.db"))
    app = create_app(engine=engine, drain_interval=None, timer_interval=None, clock_skew=STORY_SKEW)
    with Live(app) as client:
        healthy = client.get("/health")
        assert healthy.status_code == 200 and healthy.json()["store"] == "ok"
        engine.store.close()
        down = client.get("/health")
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "store": "not answering: StoreError"}
        assert client.get("/metrics").status_code == 200  # a scrape still answers


# -- the example service's start-up ---------------------------------------------------
def run_service(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SERVICE), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_without_auth_the_service_refuses_to_listen_beyond_loopback(tmp_path):
    done = run_service("--host", "0.0.0.0", "--db", str(tmp_path / "x.db"))
    assert done.returncode == 2
    assert "loopback only" in done.stderr and "--auth FILE" in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before opening anything


def test_a_bad_auth_file_is_one_clear_line(tmp_path):
    (tmp_path / "auth.toml").write_text('[tokens.a-secret-token-123456]\nparty = "king"\naccount = "K"\n')
    done = run_service("--auth", str(tmp_path / "auth.toml"), "--db", str(tmp_path / "x.db"))
    assert done.returncode == 2
    assert "party must be one of advertiser, provider, platform" in done.stderr
    assert "a-secret-token" not in done.stderr


@pytest.fixture
def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_example_service_on_either_store_with_json_logs(db, port, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, str(SERVICE), "--port", str(port), "--db", db.target,
                                    "--log-format", "json", "-v", "--timer-interval", "0.05",
                                    "--clock-skew", str(int(STORY_SKEW.total_seconds()))],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return process.poll() is not None
        wait_until(answers, "the service to start")
        assert process.poll() is None, log.read_text()
        refused = httpx.post(url + "/events", json={"id": "e", "time": "2032-01-01T00:00:00Z",
                                                    "type": "order.approved", "subject": "order/O-1"})
        assert refused.status_code == 409
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert "no --auth: every caller may act as any party; listening on loopback only" in text
    if db.kind == "postgres":  # named without a password: host and database only
        assert "(store: PostgresStore(host=" in text and "dbname=tests)" in text
    else:
        assert f"(store: {db.target})" in text
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    refusal = next(r for r in records if r.get("event") == "request.refused")
    assert refusal["status"] == 409 and refusal["level"] == "warning" and refusal["account"] is None
    if db.kind == "postgres":
        assert db.rows("SELECT COUNT(*) FROM meta WHERE key = 'schema'") == [(1,)]  # it used this database


def test_a_database_url_is_printed_without_its_password():
    from statemachine.store.opening import describe

    assert describe("postgresql://collab:s3cret@db.internal/collab") == "postgresql://collab:***@db.internal/collab"
    assert describe("postgres://u@h/d?password=s3cret&sslmode=require") == \
        "postgres://u@h/d?password=***&sslmode=require"
    assert describe("collab.db") == "collab.db"
