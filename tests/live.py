"""The service served for real, in this process: ``create_app`` under a uvicorn server on
127.0.0.1 (a thread of its own), with an injected wall clock the test moves.

In-process rather than a child process so a test can hand the app a clock and read
its state (timer ticks); the HTTP, the server and the store are the real ones.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import uvicorn

#: For services fed dated stories (2030 and later) that test something other than the
#: clock skew: issue 17's edge refuses times more than 5 minutes ahead of the wall clock
#: by default (``test_service_edge.py`` tests that).
STORY_SKEW = timedelta(days=100 * 366)


class FakeClock:
    """A wall clock that moves only when told (``create_app(clock=...)``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Live:
    """``with Live(app) as client:``: the app served by uvicorn until the block ends."""

    def __init__(self, app: Any) -> None:
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "uvicorn to start")
        assert self.server.started, "uvicorn did not start"
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def wait_until(condition: Callable[[], Any], what: str, bound: float = 30.0) -> Any:
    """Poll ``condition`` until it is true (waiting for a background task, not timing
    it: the bound is only there so that a bug fails rather than hangs)."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")
