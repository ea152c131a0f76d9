"""A service app served by a real uvicorn on a thread of the test process, and a reading
of everything its store holds: for the edge tests and the schema-driven fuzz, which
need an injected wall clock (``create_app(clock=...)``) that a child process cannot take.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):  # waiting for start-up, not timing anything
        if server.started or not thread.is_alive():
            break
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def stored(db: Path) -> tuple[Any, ...]:
    """What the store holds: every event row, entity version and outbox line (the
    ledger). Equal before and after a refused request, or the request stored something.
    (A refused but well-formed event may still move the stored clock: the contract's
    rule, kept by the durable engine; :func:`stored_clock` reads it.)"""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return (con.execute("SELECT seq, id, time FROM events ORDER BY seq").fetchall(),
                con.execute("SELECT subject, version FROM heads ORDER BY subject").fetchall(),
                con.execute("SELECT effect_id, amount FROM outbox ORDER BY effect_id").fetchall())


def stored_clock(db: Path) -> str | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        row = con.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
    return None if row is None else row[0]
