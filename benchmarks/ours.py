"""Our engine on a generated log, through the library API (``replay_path``).

Runs in the project's interpreter as a process of its own, so ``run.py`` measures its
peak memory alone. Logging is configured as the CLI does it (warnings and up): without
that, structlog's default configuration prints every transition's debug line.

``python benchmarks/ours.py LOG [--dump FILE]`` prints one JSON object, like the peers.
It fails (exit 3) when any line of the log is rejected: the generator writes only valid
logs, so a rejection is a bug in the generator or the engine.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import structlog

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):  # results.py, and the checkout's statemachine
    if _path not in sys.path:
        sys.path.insert(0, _path)
from results import dump, summary  # noqa: E402  (a sibling module, found from any cwd)

__all__ = ["main", "outcome"]


def outcome(report) -> tuple[Mapping[str, str], dict[str, dict[str, str]]]:
    """Final states and money totals of a :class:`statemachine.replay.Report`."""
    from statemachine.money import format_amount

    totals = {cur: {kind: format_amount(amount, cur) for kind, amount in kinds.items()}
              for cur, kinds in report.totals().items()}
    return report.entities, totals  # no copy: the peers build their states once too


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay a generated log with our engine.")
    parser.add_argument("log")
    parser.add_argument("--dump", help="also write every final state and the totals here")
    parser.add_argument("--spill-ids", action="store_true",
                        help="keep the applied ids on disk (Replayer(spill_ids=True))")
    parser.add_argument("--workers", type=int, default=1,
                        help="replay on this many processes (replay_path(workers=N))")
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    from statemachine.replay import replay_path

    started = time.perf_counter()
    report = replay_path(args.log, spill_ids=args.spill_ids, workers=args.workers)
    seconds = time.perf_counter() - started
    states, totals = outcome(report)
    if args.dump:
        dump(args.dump, states, totals)
    variant = "ours-spill" if args.spill_ids else "ours-parallel" if args.workers > 1 else "ours-api"
    print(json.dumps(summary(variant, report.lines, seconds, states, totals,
                             rejected=len(report.rejected))))
    if report.rejected:
        for rejection in report.rejected[:10]:
            print(f"rejected line {rejection.line} ({rejection.id}): {rejection.error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
