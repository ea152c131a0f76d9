"""What ``replay LOG --html FILE`` costs: the HTML report's overhead and file size.

Replays the benchmark's generated log (``generate.py``; 100,000 orders by default: the
log ``run.py`` uses) through the command line, as a user runs it, with and without
``--html``, the two alternating so that a slow minute of a shared machine hits both;
prints the median wall times, the overhead, the peak memory of each and the size of the
file, and checks the issue's targets: the report adds at most a fifth to the replay's
time and stays under 20 MB. The JSON on stdout must be the same bytes either way.

``python benchmarks/html_report.py [--orders 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"

#: The issue's targets.
MAX_OVERHEAD = 0.20
MAX_BYTES = 20 * 1024 * 1024


def log_for(orders: int, seed: int) -> Path:
    """The generated log, named as ``run.py`` names it (made once, then reused)."""
    path = OUT / f"log-o{orders}-s{seed}.jsonl"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--orders", str(orders),
                        "--seed", str(seed), "--out", str(path)], check=True)
    return path


def timed(cmd: list[str], stdout: Path) -> tuple[float, int, float]:
    """Run ``cmd`` (stdout to a file): wall seconds, peak RSS in KiB (its largest
    process: the command or a helper it waited for) and CPU seconds (user and system,
    of the command and the helpers it waited for: the chart's painter, Graphviz). On a
    shared machine the CPU seconds vary less than the wall time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(stdout, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    err = child.stderr.read().decode() if child.stderr else ""
    if code not in (0, 1):
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {code}\n{err[-3000:]}")
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (medians)")
    args = parser.parse_args(argv)
    log = log_for(args.orders, args.seed)
    events = sum(1 for line in log.open("rb") if line.strip())
    html = OUT / f"report-o{args.orders}-s{args.seed}.html"
    replay = [sys.executable, "-m", "statemachine", "replay", str(log), "--format", "json"]
    plain: list[tuple[float, int, float]] = []
    with_html: list[tuple[float, int, float]] = []
    for round_ in range(args.repeat):
        # Alternate which goes first: a machine slowing down mid-run hits both alike.
        order = [("plain", replay), ("html", [*replay, "--html", str(html)])]
        for name, cmd in order if round_ % 2 == 0 else order[::-1]:
            result = timed(cmd, OUT / f"html-bench-{name}.json")
            (plain if name == "plain" else with_html).append(result)
            print(f"  run {round_ + 1} {name:5}: {result[0]:6.2f} s, {result[1] / 1024:5.0f} MB, "
                  f"{result[2]:6.2f} s CPU, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    same = (OUT / "html-bench-plain.json").read_bytes() == (OUT / "html-bench-html.json").read_bytes()
    base = statistics.median(w for w, _, _ in plain)
    more = statistics.median(w for w, _, _ in with_html)
    overhead = more / base - 1
    base_cpu = statistics.median(c for _, _, c in plain)
    more_cpu = statistics.median(c for _, _, c in with_html)
    size = html.stat().st_size
    print(f"--html on {log.name}: {events:,} events, medians of {args.repeat}")
    print("| | wall s | CPU s | peak RSS |")
    print("|---|---:|---:|---:|")
    mb = 1024 * 1024
    print(f"| `replay --format json` | {base:.2f} | {base_cpu:.2f} | "
          f"{max(r for _, r, _ in plain) / 1024:.0f} MB |")
    print(f"| `replay --format json --html FILE` | {more:.2f} | {more_cpu:.2f} | "
          f"{max(r for _, r, _ in with_html) / 1024:.0f} MB |")
    print(f"overhead: {overhead:+.1%} of the replay's time ({more_cpu / base_cpu - 1:+.1%} in CPU seconds, "
          f"helpers included); file: {size:,} bytes ({size / mb:.1f} MB); load average "
          f"{os.getloadavg()[0]:.2f}")
    checks = [
        (same, "the JSON report is the same bytes with --html"),
        (overhead <= MAX_OVERHEAD, f"--html adds at most {MAX_OVERHEAD:.0%} to the replay's time "
                                   f"({overhead:+.1%})"),
        (size < MAX_BYTES, f"the file stays under {MAX_BYTES // mb} MB ({size / mb:.1f} MB)"),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
