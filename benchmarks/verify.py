"""``replay --verify`` on a recorded ledger of about a million lines: time and peak memory.

The log is the benchmark's seeded generator (``generate.py``); about 1.03 ledger lines per
order, so ``--orders 970000`` makes a ledger of about 1,000,000 lines. The recorded
ledger is the replay's own, written as JSON Lines (or CSV), with a few discrepancies
planted (one line missing, one amount changed, one line twice, one stray, one
malformed), so the audit has every kind of finding to report and most lines match.

What is timed: reading and indexing the recorded file (one pass, into a temporary
SQLite file) and the comparison, in this process after the replay; the replay itself
is timed for scale. Peak memory of the audit is the process's resident peak while it
runs (Linux: the peak is reset through ``/proc/self/clear_refs`` first) minus what was
resident before: what the audit adds, on top of the replay's report it reads.
``--cli`` also times the whole command, ``python -m statemachine replay LOG --verify
RECORDED --format json``, in a child process (its own peak RSS).

``nice -n 10 python benchmarks/verify.py --orders 970000 --cli``
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import write_log

from statemachine.money import quantum
from statemachine.replay import Report, replay_path
from statemachine.replay.audit import RecordedLedger, Verification

ROOT = Path(__file__).resolve().parent.parent


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure in bytes (VmRSS, VmHWM); 0 where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def write_recorded(report: Report, path: Path) -> dict[str, int]:
    """The report's ledger with one finding of each kind planted; the counts expected."""
    lines = [line.to_dict() for line in report.ledger]
    n = len(lines)
    missing, differs, twice = n // 3, n // 2, (2 * n) // 3
    rows: list[dict[str, str] | str] = []
    for index, line in enumerate(lines):
        if index == missing:
            continue
        if index == differs:
            line = {**line, "amount": str(Decimal(line["amount"]) + quantum(line["currency"]))}
        rows.append(line)
        if index == twice:
            rows.append(line)
    rows.append({**lines[0], "cause": "stray"})
    rows.append("{not json")
    if path.suffix == ".csv":
        with open(path, "w", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            fields = ["time", "kind", "subject", "amount", "currency", "cause"]
            writer.writerow(fields)
            for row in rows:
                writer.writerow([row[f] for f in fields] if isinstance(row, dict) else [row])
    else:
        with open(path, "wb") as out:
            for row in rows:
                out.write((orjson.dumps(row) if isinstance(row, dict) else row.encode()) + b"\n")
    return {"lines": len(rows), "differs": 1, "missing": 1, "duplicate": 1, "unexpected": 1, "malformed": 1}


def audit(report: Report, recorded: Path) -> tuple[Verification, float, float, int]:
    """Read and index, compare: ``(result, read seconds, compare seconds, peak bytes added)``."""
    before = _status("VmRSS")
    measured = _reset_peak()
    started = time.perf_counter()
    with RecordedLedger(recorded) as index:
        read = time.perf_counter() - started
        result = index.compare(report.ledger)
        total = time.perf_counter() - started
    peak = _status("VmHWM") - before if measured else -1
    return result, read, total - read, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=970_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=("jsonl", "csv"), action="append",
                        help="the recorded ledger's format (repeatable; default: jsonl)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="where the files go")
    parser.add_argument("--cli", action="store_true", help="also time the whole command in a child process")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"verify-{args.orders}.jsonl"
    if not log.exists():
        write_log(log, args.orders, args.seed)
    started = time.perf_counter()
    report = replay_path(log)
    replayed = time.perf_counter() - started
    print(f"log: {report.lines:,} events, ledger {len(report.ledger):,} lines; replay {replayed:.1f} s, "
          f"resident {_status('VmRSS') / 2**20:,.0f} MB")
    failures = 0
    for fmt in args.format or ["jsonl"]:
        recorded = out / f"verify-{args.orders}.recorded.{fmt}"
        expected = write_recorded(report, recorded)
        result, read, compare, peak = audit(report, recorded)
        counts = result.counts()
        ok = counts["matched"] == len(report.ledger) - 2 and all(
            counts[k] == v for k, v in expected.items() if k != "lines")
        failures += not ok
        lines = expected["lines"]
        print(f"--verify {fmt}: {lines:,} recorded lines ({recorded.stat().st_size / 2**20:,.0f} MB); "
              f"read + index {read:.1f} s, compare {compare:.1f} s, total {read + compare:.1f} s "
              f"({lines / (read + compare):,.0f} lines/s); peak memory added "
              f"{peak / 2**20:,.0f} MB; findings {counts} {'OK' if ok else 'UNEXPECTED'}")
        if args.cli:
            with tempfile.TemporaryFile() as sink:
                began = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(log), "--verify",
                                       str(recorded), "--format", "json"], stdout=sink, check=False, cwd=ROOT)
                took = time.perf_counter() - began
            child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
            print(f"  CLI replay --verify ({fmt}): exit {done.returncode}, {took:.1f} s, peak RSS "
                  f"{child / 2**20:,.0f} MB (the largest child so far)")
            failures += done.returncode != 1
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
