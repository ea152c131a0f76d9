"""The example service with policy versions: ``--policy FILE`` at start, ``GET /policies``,
and the governing version in the entity view. A real uvicorn in a child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "examples" / "service.py"
MARCH = ROOT / "examples" / "policy-2026-03.toml"


def start(tmp_path: Path, *args: str | Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "service.log"
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, str(SERVICE), "--port", str(port), "--db",
                                    str(tmp_path / "db.sqlite"), "--drain-interval", "0", *map(str, args)],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):  # waiting for start-up, not timing anything
        if process.poll() is not None:
            pytest.fail(f"the service exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"the service did not answer:\n{log.read_text()}")


def test_the_service_prices_orders_by_the_versions_it_was_started_with(tmp_path: Path) -> None:
    process, url = start(tmp_path, "--policy", MARCH)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            listed = http.get("/policies").json()["policies"]
            assert [(p["id"], p["effective_from"]) for p in listed] == [
                ("2026-02", "0001-01-01T00:00:00Z"), ("2026-03", "2026-03-02T00:00:00Z")]
            assert listed[1]["deemed_approval_days"] == 7
            assert listed[1]["creator"]["refund_percent"]["agreed"] == {"advertiser": 80, "provider": 100}
            for event in (
                {"id": "p", "time": "2026-03-01T10:00:00Z", "type": "project.created", "subject": "project/P",
                 "data": {"kind": "creator", "currency": "USD", "deadline": "2026-04-01T00:00:00Z"}},
                {"id": "a", "time": "2026-03-01T23:59:59Z", "type": "order.agreed", "subject": "order/OLD",
                 "data": {"project": "P", "fee": "100.00", "review": "manual"}},
                {"id": "b", "time": "2026-03-02T00:00:00Z", "type": "order.agreed", "subject": "order/NEW",
                 "data": {"project": "P", "fee": "100.00", "review": "manual"}},
            ):
                assert http.post("/events", json=event).status_code == 200
            assert http.get("/entities/order/OLD").json()["data"]["policy"] == "2026-02"
            assert http.get("/entities/order/NEW").json()["data"]["policy"] == "2026-03"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def test_the_service_refuses_a_bad_policy_file_before_it_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(MARCH.read_text().replace("deemed_approval_days = 7", "deemed_approval_days = 0"))
    done = subprocess.run([sys.executable, str(SERVICE), "--db", str(tmp_path / "db.sqlite"), "--policy",
                           str(bad)], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr == f"error: {bad}: deemed_approval_days: 0 is outside 1..36500\n"
