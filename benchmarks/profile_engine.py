"""Where our engine's replay time goes: cProfile (and py-spy when it is available).

``python benchmarks/profile_engine.py --orders 100000`` replays the generated log with
``benchmarks/ours.py`` under ``cProfile`` and writes to ``benchmarks/out/``:

* ``profile-<log>.pstats`` and ``profile-<log>-cumtime.txt`` / ``-tottime.txt`` (top 40);
* ``profile-<log>-categories.txt``: the self time of every function put in one bucket
  (parse, digest, envelope, dedupe/apply, timers, guards, actions, records,
  structlog, ledger, ...), in microseconds per event, so the buckets add up to the
  whole. Guards, actions and timer functions are recognised from the declarations
  themselves, not by name;
* with ``--py-spy`` (installed into ``benchmarks/.venv-peers`` on demand): a sampling
  profile without cProfile's per-call overhead, ``pyspy-<log>.txt`` (collapsed stacks)
  and its own top functions by self samples.
* with ``--counts``: in this process, the replay alone (start-up excluded): Python
  calls per event (cProfile's count; every call a frame), the functions called most per
  event, and with ``tracemalloc`` the memory blocks allocated per event and the peak of
  traced memory. Counts, not times: they compare across machines and loads (issue 12's
  before/after).
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from run import OUT, VENV, VENV_PYTHON, ensure_venv, log_for  # noqa: E402

__all__ = ["categorise", "main"]

Key = tuple[str, int, str]


def _declared_functions() -> dict[Key, str]:
    """(file, first line, name) of every guard, action and timer function -> bucket."""
    from statemachine.lifecycles import DOMAIN

    found: dict[Key, str] = {}

    def add(function: object, bucket: str) -> None:
        code = getattr(function, "__code__", None)
        if code is not None:
            found[(code.co_filename, code.co_firstlineno, code.co_name)] = bucket

    for lifecycle in DOMAIN.lifecycles:
        for guard in lifecycle.guards:
            add(guard.test, "guards")
        for action in lifecycle.actions:
            add(action.run, "actions")
        for timer in lifecycle.timers:
            add(timer.due, "timers: due/cause functions")
            add(timer.cause, "timers: due/cause functions")
    return found


#: (substring of the file, function name or None for any) -> bucket; first match wins.
#: For built-ins (file ``~``) the name is matched as a substring.
_DIGEST = "digest (orjson.dumps sorted + blake2b)"
_TIME = "time parsing (ciso8601, astimezone)"
_TIMERS = "timers (advance_to, heap, _live, _compact)"
_PARAMS = "params (_resolve, _params, field parsers)"
_LOOKUP = "context lookups (parent, children, get)"
_STARTUP = "imports and start-up (not per event)"
RULES: tuple[tuple[str, str | None, str], ...] = (
    ("envelope.py", "loads", "parse (orjson + float check)"),
    ("~", "orjson.loads", "parse (orjson + float check)"),
    ("envelope.py", "digest", _DIGEST),
    ("~", "orjson.dumps", _DIGEST),
    ("~", "blake2b", _DIGEST),
    ("envelope.py", None, "envelope (to_event, field checks)"),
    ("timeutil.py", None, _TIME),
    ("~", "ciso8601", _TIME),
    ("~", "astimezone", _TIME),
    ("runtime.py", "advance_to", _TIMERS),
    ("runtime.py", "_live", _TIMERS),
    ("runtime.py", "_compact", _TIMERS),
    ("runtime.py", "next_due", _TIMERS),
    ("~", "_heapq", _TIMERS),
    ("runtime.py", "apply", "apply (dedupe, clock check)"),
    ("runtime.py", "_resolve", _PARAMS),
    ("runtime.py", "_params", _PARAMS),
    ("runtime.py", "_variant", _PARAMS),
    ("engine/fields.py", None, _PARAMS),
    ("runtime.py", "_choose", "dispatch (_choose: table, Context)"),
    ("runtime.py", "__init__", "unit of work / Context objects"),
    ("runtime.py", "get", _LOOKUP),
    ("runtime.py", "parent", _LOOKUP),
    ("runtime.py", "children", _LOOKUP),
    ("runtime.py", "data", _LOOKUP),
    ("runtime.py", "subject", _LOOKUP),
    ("runtime.py", "<listcomp>", _LOOKUP),
    ("runtime.py", "_step", "step (_step: actions loop, data merge, timers)"),
    ("runtime.py", "<genexpr>", "step (_step: actions loop, data merge, timers)"),
    ("runtime.py", "_cascade", "cascade (_cascade)"),
    ("runtime.py", "_commit", "commit (_commit: store, arm, subscribers)"),
    ("engine/errors.py", None, "exceptions raised and caught (optional sends)"),
    ("<attrs generated", None, "attrs records (__init__/__eq__ of frozen classes)"),
    ("<record ", None, "declared data (Record reads)"),
    ("record.py", None, "declared data (Record reads)"),
    ("structlog", None, "structlog (debug call per step)"),
    ("replayer.py", "_book", "ledger (_book, LedgerLine)"),
    ("replayer.py", None, "replayer (feed, read_lines)"),
    ("report.py", None, "report (totals, entities)"),
    ("money.py", None, "money (Decimal quantize, validation)"),
    ("~", "quantize", "money (Decimal quantize, validation)"),
    ("lifecycles/", None, "lifecycle helpers (policy, reasons)"),
    ("~", "_abc_instancecheck", "isinstance checks (ABC Mapping)"),
    ("<frozen abc>", None, "isinstance checks (ABC Mapping)"),
    ("~", "isinstance", "isinstance checks (ABC Mapping)"),
    ("benchmarks/", None, "benchmark's own summary (not the engine)"),
    ("<frozen importlib", None, _STARTUP),
    ("~", "marshal", _STARTUP),
    ("~", "builtins.compile", _STARTUP),
    ("~", "builtins.exec", _STARTUP),
    ("~", "builtins.eval", _STARTUP),
    ("~", "__build_class__", _STARTUP),
    ("~", "_imp.", _STARTUP),
    ("~", "posix.stat", _STARTUP),
    ("site-packages/", None, _STARTUP),
    ("/lib/python3", None, _STARTUP),
)


def _matches(rule: tuple[str, str | None, str], filename: str, name: str) -> bool:
    part, function, _ = rule
    if part not in filename:
        return False
    if function is None:
        return True
    return function in name if part == "~" else function == name


def categorise(stats: pstats.Stats) -> dict[str, float]:
    """Self time (seconds) per bucket; every function lands in exactly one."""
    declared = _declared_functions()
    buckets: dict[str, float] = defaultdict(float)
    for key, (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        filename, line, name = key
        bucket = declared.get((filename, line, name))
        if bucket is None:
            bucket = next((rule[2] for rule in RULES if _matches(rule, filename, name)), None)
        buckets[bucket or "other (interpreter, generators, dict/tuple ops)"] += tottime
    return dict(buckets)


def _top(path: Path, order: str, n: int = 40) -> str:
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats(order).print_stats(n)
    return out.getvalue()


def _cprofile(log: Path, events: int) -> str:
    base = OUT / f"profile-{log.stem}"
    pstats_path = base.with_suffix(".pstats")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(pstats_path), str(HERE / "ours.py"),
                    str(log)], check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    for order in ("cumtime", "tottime"):
        Path(f"{base}-{order}.txt").write_text(_top(pstats_path, order))
    buckets = categorise(pstats.Stats(str(pstats_path)))
    total = sum(buckets.values())
    lines = [f"cProfile of our engine on {log.name}: {events:,} events, {total:.1f} s of self time "
             f"({total / events * 1e6:.1f} us/event under cProfile; its overhead inflates small calls)",
             f"{'bucket':60} {'s':>7} {'us/event':>9} {'share':>6}"]
    for bucket, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        lines.append(f"{bucket:60} {seconds:7.2f} {seconds / events * 1e6:9.2f} {seconds / total:6.1%}")
    text = "\n".join(lines) + "\n"
    Path(f"{base}-categories.txt").write_text(text)
    return text


def _py_spy(log: Path) -> str:
    spy = VENV / "bin" / "py-spy"
    if not spy.exists():
        if ensure_venv() is None:
            return "py-spy: no peers' virtualenv\n"
        done = subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "-q", "py-spy"], check=False)
        if done.returncode != 0 or not spy.exists():
            return "py-spy: could not be installed\n"
    raw = OUT / f"pyspy-{log.stem}.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(spy), "record", "--rate", "250", "--format", "raw", "--output", str(raw),
                           "--", sys.executable, str(HERE / "ours.py"), str(log)],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or not raw.exists():
        return f"py-spy failed: {done.stderr.strip()[-500:]}\n"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"py-spy on {log.name}: {total:,} samples at 250 Hz", "top self:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(25)]
    lines.append("top inclusive:")
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(40)]
    text = "\n".join(lines) + "\n"
    Path(OUT / f"pyspy-{log.stem}-summary.txt").write_text(text)
    return text


def counts(log: Path) -> str:
    """Calls and allocations per event of the replay alone, in this process."""
    import cProfile
    import logging
    import tracemalloc

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        cache_logger_on_first_use=True)
    from statemachine.replay import replay_path

    replay_path(os.devnull)  # imports, lifecycles compiled: not counted
    profile = cProfile.Profile()
    profile.enable()
    report = replay_path(log)
    profile.disable()
    events = report.lines
    stats = pstats.Stats(profile)
    by_function = sorted(((nc, key) for key, (_, nc, _, _, _) in stats.stats.items()),  # type: ignore[attr-defined]
                         reverse=True)
    total = sum(nc for nc, _ in by_function)
    lines = [f"counts of the replay of {log.name} alone ({events:,} events, "
             f"{len(report.entities):,} entities):",
             f"  Python calls per event (cProfile): {total / events:.1f}"]
    for nc, (filename, line, name) in by_function[:15]:
        where = filename if filename == "~" else Path(filename).name
        lines.append(f"    {nc / events:6.2f}  {name} ({where}:{line})")
    # Allocations: tracemalloc counts every block the replay allocates through Python's
    # allocators (objects, their buffers); freed or kept.
    allocated = [0]

    def replay_traced() -> Any:
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            result = replay_path(log)
            after = tracemalloc.take_snapshot()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        kept = sum(stat.count_diff for stat in after.compare_to(before, "filename"))
        allocated[0] = kept
        return result, peak

    result, peak = replay_traced()
    lines.append(f"  blocks still allocated after the replay (report, ledger): "
                 f"{allocated[0] / events:.1f} per event; peak traced memory {peak / 2**20:.1f} MB "
                 f"({peak / len(result.entities):,.0f} bytes per entity)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--py-spy", action="store_true", help="also sample with py-spy")
    parser.add_argument("--counts", action="store_true",
                        help="only count calls and allocations per event, in this process")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    log = log_for(args.orders, args.seed)
    if args.counts:
        print(counts(log))
        return 0
    with open(log, "rb") as stream:
        events = sum(1 for raw in stream if raw.strip())
    print(_cprofile(log, events))
    print(f"top 40 by cumulative time: {OUT / f'profile-{log.stem}-cumtime.txt'}")
    if args.py_spy:
        print(_py_spy(log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
