"""The example HTTP service: the durable engine behind FastAPI, served by uvicorn.

    python examples/service.py --host 127.0.0.1 --port 8000 --db collab.db
    python examples/service.py --db postgresql://collab@db.internal/collab   # PostgreSQL

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
from datetime import timedelta
from pathlib import Path

try:
    import statemachine  # noqa: F401
except ImportError:  # run from a fresh clone without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn

from statemachine import Engine
from statemachine.lifecycles import PolicyError, load_policies
from statemachine.loading import DomainError, load_domain
from statemachine.service import create_app
from statemachine.service.auth import AuthError, load_tokens
from statemachine.service.logs import configure_logging, is_loopback
from statemachine.store import StoreError
from statemachine.store.opening import describe, is_postgres, open_store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/service.py",
                                     description="Serve the collaboration lifecycles over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument("--db", required=True,
                        help="the store: a SQLite file (created if missing) or a postgresql:// URL")
    parser.add_argument("--drain-interval", type=float, default=1.0, metavar="SECONDS",
                        help="deliver the outbox (by logging) every SECONDS; 0 turns it off")
    parser.add_argument("--domain", metavar="MODULE:ATTRIBUTE",
                        help="the lifecycles to serve, e.g. examples.support_request:DOMAIN (default: ours)")
    # Off unless asked: a service fed a log of past events (a demo, a migration) would
    # otherwise fire those events' timers at once and refuse the rest as out of order.
    parser.add_argument("--timer-interval", type=float, default=0, metavar="SECONDS",
                        help="fire the timers due on the wall clock every SECONDS (a live "
                             "service: 0.25); 0, the default, leaves time to POST /clock")
    parser.add_argument("--auth", metavar="FILE",
                        help="a TOML file of bearer tokens (party and account each); without it the "
                             "service trusts every caller and so listens on loopback only")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="structured logs as text (default) or one JSON object per line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log transitions and deliveries")
    parser.add_argument("--clock-skew", type=float, default=300.0, metavar="SECONDS",
                        help="refuse event and /clock times more than SECONDS ahead of the wall "
                             "clock (300)")
    parser.add_argument("--max-body", type=int, default=262144, metavar="BYTES",
                        help="refuse request bodies larger than BYTES with 413 (262144)")
    parser.add_argument("--policy", action="append", default=[], metavar="FILE",
                        help="a policy version (TOML) besides the built-in one (repeatable)")
    args = parser.parse_args(argv)
    try:  # a bad policy file: one line naming file, key and problem
        policies = load_policies(args.policy)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING
    configure_logging(level, args.log_format)
    try:  # --domain: loaded and compiled before anything is opened
        domain = load_domain(args.domain) if args.domain else None
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tokens = None
    if args.auth:
        try:
            tokens = load_tokens(args.auth)
        except AuthError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif not is_loopback(args.host):
        print(f"error: without --auth every caller may act as any party, so the service listens on "
              f"loopback only, not on {args.host}; pass --auth FILE to serve other hosts",
              file=sys.stderr)
        return 2
    if domain is not None and args.policy:
        print("error: --policy prices this project's own lifecycles; it does not apply to --domain",
              file=sys.stderr)
        return 2
    try:  # open the store first: a bad path is one line, not a traceback from a worker
        engine = (Engine(domain, store=open_store(args.db)) if domain is not None
                  else Engine(store=open_store(args.db), policies=policies))
    except PolicyError as exc:  # a stored order governed by a version not given
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError, StoreError, ImportError) as exc:
        print(f"error: cannot open the store {describe(args.db)}: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(engine=engine, drain_interval=args.drain_interval or None,
                         timer_interval=args.timer_interval or None, auth=tokens,
                         clock_skew=timedelta(seconds=args.clock_skew), max_body=args.max_body)
    except ValueError as exc:  # a negative skew, a body limit past the envelope's line limit
        engine.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = args.db if not is_postgres(args.db) else repr(engine.store)  # never a password
    print(f"serving on http://{args.host}:{args.port} (store: {where}); Ctrl-C stops",
          file=sys.stderr, flush=True)
    if tokens is None:
        print("no --auth: every caller may act as any party; listening on loopback only",
              file=sys.stderr, flush=True)
    else:
        print(f"--auth: {len(tokens)} bearer tokens; every route but /health and /metrics needs one",
              file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port,
                    log_level="info" if args.verbose else "warning")
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
