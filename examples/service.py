"""The example HTTP service: the durable engine behind FastAPI, served by uvicorn.

    python examples/service.py --host 127.0.0.1 --port 8000 --db collab.db

Then, for instance::

    curl -s -X POST localhost:8000/events -H 'content-type: application/json' -d '{"id": "e1",
      "time": "2026-03-01T10:00:00Z", "type": "project.created", "subject": "project/P-1",
      "data": {"kind": "creator", "currency": "USD", "deadline": "2026-04-01T00:00:00Z"}}'
    curl -s localhost:8000/entities/project/P-1
    curl -s localhost:8000/ledger

The routes and error bodies are documented in :mod:`statemachine.service`; the app
factory lives there so tests and other services can import it.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

try:
    import statemachine  # noqa: F401
except ImportError:  # run from a fresh clone without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
import uvicorn

from statemachine import Engine
from statemachine.lifecycles import PolicyError, load_policies
from statemachine.service import create_app
from statemachine.store import SQLiteStore, StoreError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/service.py",
                                     description="Serve the collaboration lifecycles over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument("--db", required=True, help="the SQLite store (created if missing)")
    parser.add_argument("--drain-interval", type=float, default=1.0, metavar="SECONDS",
                        help="deliver the outbox (by logging) every SECONDS; 0 turns it off")
    parser.add_argument("-v", "--verbose", action="store_true", help="log transitions and deliveries")
    parser.add_argument("--policy", action="append", default=[], metavar="FILE",
                        help="a policy version (TOML) besides the built-in one (repeatable)")
    args = parser.parse_args(argv)
    try:  # a bad policy file: one line naming file, key and problem
        policies = load_policies(args.policy)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:  # open the store first: a bad path is one line, not a traceback from a worker
        engine = Engine(store=SQLiteStore(Path(args.db)), policies=policies)
    except PolicyError as exc:  # a stored order governed by a version not given
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError, StoreError) as exc:
        print(f"error: cannot open the store {args.db}: {exc}", file=sys.stderr)
        return 2
    app = create_app(engine=engine, drain_interval=args.drain_interval or None)
    print(f"serving on http://{args.host}:{args.port} (store: {args.db}); Ctrl-C stops",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port,
                    log_level="info" if args.verbose else "warning")
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
