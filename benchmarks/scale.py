"""Scale-out replay (issue 13): one process against local Dask clusters, same report.

Generates a seeded log of about ``--events`` events (``generate.py``), splits it into
``--files`` files of uneven size, replays them in one process, then on a fresh
``LocalCluster`` of each size in ``--clusters`` (scan tasks, then replay tasks), and
prints, for each: wall time, speed-up, the report's digest (must be the one-process
one), every worker's peak RSS, the time Dask spent around the tasks (each pass's wall
time less its busiest worker's compute time; per event and per task), the scheduler's
round trip for an empty task, the time split (scan, combine, replay, merge) and the
CPU time of the workers' tasks against one process's.

``nice -n 10 .venv/bin/python benchmarks/scale.py --events 1000000 --files 10 --clusters 2,4,8``

Timings on a shared machine are noisy: compare the rows of one run (ratios).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from statemachine.replay import parallel, to_json  # noqa: E402
from statemachine.replay.files import replay_paths  # noqa: E402

EVENTS_PER_ORDER = 2.34  # generate.py's mix (970,000 orders: 2,271,830 events)


def split(log: Path, files: int, folder: Path, seed: int) -> list[Path]:
    """``files`` pieces of uneven size, cut at line boundaries, named in log order."""
    lines = log.read_bytes().split(b"\n")
    cuts = sorted(random.Random(seed).sample(range(1, len(lines)), files - 1))
    paths = []
    for k, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(lines)], strict=True)):
        path = folder / f"events-{k:03d}.jsonl"
        path.write_bytes(b"\n".join(lines[start:end]))
        paths.append(path)
    return paths


def _peak_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would carry the parent's peak across the
    fork and exec that start a worker process)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _nothing(_: int) -> int:
    return 0


def run_cluster(paths: list[Path], workers: int, events: int) -> dict[str, object]:
    from distributed import Client, get_task_stream

    from statemachine.replay.cluster import _local_cluster  # the one --cluster local:N starts

    started = time.perf_counter()
    with _local_cluster(workers) as cluster, Client(cluster) as client:
        start_s = time.perf_counter() - started
        tick = time.perf_counter()
        client.gather(client.map(_nothing, range(200), pure=False))
        per_task_ms = (time.perf_counter() - tick) / 200 * 1000
        merge = [0.0]
        finish = parallel._finish

        def timed_finish(*args: object) -> object:
            tick = time.perf_counter()
            try:
                return finish(*args)  # type: ignore[arg-type]
            finally:
                merge[0] = time.perf_counter() - tick

        parallel._finish = timed_finish  # type: ignore[assignment]
        try:
            with get_task_stream(client) as stream:
                tick = time.perf_counter()
                report = parallel.replay_distributed([str(p) for p in paths], client)
                wall = time.perf_counter() - tick
        finally:
            parallel._finish = finish

        def computing(prefix: str) -> tuple[list[float], float]:
            """Each task's compute time, and the busiest worker's total."""
            times, busy = [], {}
            for task in stream.data:
                if str(task["key"]).startswith(prefix):
                    took = sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
                    times.append(took)
                    busy[task["worker"]] = busy.get(task["worker"], 0.0) + took
            return times, max(busy.values())

        (replays, replay_busy), (scans, scan_busy) = computing("_task"), computing("_scan_task")
        longest = max(replays)
        peaks = sorted(client.run(_peak_mb).values())
        cpu = list(client.run(lambda: dict(parallel._CPU)).values())
    split = dict(parallel._TIMINGS)
    # Dask's share: the wall time of each pass less the busiest worker's compute time in it.
    around = (split["scan"] - scan_busy) + (split["replay"] - replay_busy)
    tasks = len(scans) + len(replays)
    return {"workers": workers, "start_s": start_s, "wall_s": wall, "longest_task_s": longest,
            "merge_s": merge[0], "around_s": around, "per_task_ms": per_task_ms, "split": split,
            "scan_tasks": len(scans), "scan_cpu_s": sum(scans), "longest_scan_s": max(scans),
            "replay_cpu_s": sum(replays), "cpu": cpu,
            "around_us_per_event": around / events * 1e6, "around_ms_per_task": around / tasks * 1e3,
            "worker_peak_mb": peaks,
            "digest": hashlib.sha256(to_json(report)).hexdigest()[:16]}


def passes(paths: list[Path], cores: int, single_cpu: float, digest: str) -> None:
    """The scan, the combine, every replay task and the merge, one after the other here,
    each timed in CPU seconds; and the wall time on ``cores`` idle cores: the scan and the
    tasks spread over them (the tasks as the scheduler would place them, as many on each),
    the combine and the merge in the caller."""
    import numpy as np

    from statemachine.lifecycles import DOMAIN
    from statemachine.replay.scan import combine, links_of, plan_ranges, scan_range

    names = [str(p) for p in paths]

    def cpu() -> float:
        return time.process_time()

    tick = cpu()
    ranges = plan_ranges(names, parallel._range_bytes(names, cores))
    links = links_of(DOMAIN)
    parts = [(f, scan_range(names[f], start, end, links)) for f, start, end in ranges]
    scan = cpu() - tick
    lines = sum(len(part.number) // 4 for _, part in parts)
    groups = cores * max(1, -(-lines // (parallel.GROUP_LINES * cores)))
    tick = cpu()
    plan = combine(parts, groups, False, parallel._reader(names))
    combined = cpu() - tick
    del parts
    clock = (plan.changes, plan.clock_at[plan.changes])
    answers, tasks = [], []
    for me in range(groups):
        own = np.nonzero(plan.group == me)[0]
        mine = (plan.file[own], plan.number[own], plan.offset[own], plan.length[own], own,
                plan.clock_before[own], plan.clock_at[own])
        tick = cpu()
        answers.append(parallel._DONE + parallel._work(names, me, None, None, False, False,
                                                       plan.lines, mine, clock, {}))
        tasks.append(cpu() - tick)
    tick = cpu()
    report = parallel._finish(answers, names, lambda: None, plan, groups)  # type: ignore[arg-type, return-value]
    merged = cpu() - tick
    got = hashlib.sha256(to_json(report)).hexdigest()[:16]
    same = "same report" if got == digest else "A DIFFERENT REPORT"
    busiest = max(sum(tasks[me::cores]) for me in range(cores))
    wall = scan / cores + combined + busiest + merged
    print(f"passes in this process ({same}), CPU seconds: scan {scan:.2f} ({len(ranges)} ranges), "
          f"combine {combined:.2f}, replay {sum(tasks):.2f} ({groups} tasks, {min(tasks):.2f}-"
          f"{max(tasks):.2f} each), merge {merged:.2f}; one process {single_cpu:.2f}. On {cores} "
          f"idle cores: {wall:.2f} s, {single_cpu / wall:.2f}x one process; "
          f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--clusters", default="2", help="comma-separated local cluster sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--passes", type=int, default=0, metavar="CORES",
                        help="also run the three passes one after the other in this process (no "
                             "Dask) and print each one's CPU time, and the wall time they would "
                             "take on CORES idle cores: the time split, free of the machine's load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "whole.log"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--orders",
                        str(int(args.events / EVENTS_PER_ORDER)), "--seed", str(args.seed),
                        "--out", str(log)], check=True)
        (folder / "parts").mkdir()
        paths = split(log, args.files, folder / "parts", args.seed)
        log.unlink()
        events = sum(p.read_bytes().count(b"\n") + 1 for p in paths)
        sizes = [p.stat().st_size for p in paths]
        print(f"{events:,} lines in {len(paths)} files of {min(sizes) / 1e6:.1f}-{max(sizes) / 1e6:.1f} MB")
        tick, cpu_tick = time.perf_counter(), time.process_time()
        one = to_json(replay_paths(paths))
        single, single_cpu = time.perf_counter() - tick, time.process_time() - cpu_tick
        digest = hashlib.sha256(one).hexdigest()[:16]
        del one
        print(f"one process: {single:.1f} s ({events / single:,.0f} events/s), report {digest}, "
              f"peak RSS {_peak_mb():.0f} MB; load average {os.getloadavg()[0]:.2f}")
        if args.passes:
            passes(paths, args.passes, single_cpu, digest)
        for size in map(int, args.clusters.split(",") if args.clusters else ()):
            row = run_cluster(paths, size, events)
            same = "same report" if row["digest"] == digest else "A DIFFERENT REPORT"
            print(f"local:{size}: {row['wall_s']:.1f} s, {single / row['wall_s']:.2f}x one process "  # type: ignore[operator]
                  f"({same}); cluster start {row['start_s']:.1f} s; longest task "
                  f"{row['longest_task_s']:.1f} s, merge {row['merge_s']:.1f} s, around the tasks "
                  f"{row['around_s']:.2f} s ({row['around_us_per_event']:.2f} us/event, "
                  f"{row['around_ms_per_task']:.0f} ms/task); empty task "
                  f"round trip {row['per_task_ms']:.2f} ms; worker peak RSS "
                  f"{', '.join(f'{mb:.0f}' for mb in row['worker_peak_mb'])} MB")  # type: ignore[attr-defined]
            times = row["split"]
            print(f"  {times['groups']:.0f} replay tasks; time split: scan {times['scan']:.2f} s "  # type: ignore[index]
                  f"({row['scan_tasks']} tasks, "  # type: ignore[index]
                  f"{row['scan_cpu_s']:.2f} s of task time, longest {row['longest_scan_s']:.2f} s), "
                  f"combine {times['combine']:.2f} s, replay {times['replay']:.2f} s "  # type: ignore[index]
                  f"({row['replay_cpu_s']:.2f} s of task time), merge {times['merge']:.2f} s; "  # type: ignore[index]
                  f"load average {os.getloadavg()[0]:.2f}")
            cpu: list[dict[str, float]] = row["cpu"]  # type: ignore[assignment]
            scan_cpu, replay_cpu = (sum(c.get(k, 0.0) for c in cpu) for k in ("scan", "replay"))
            workers_cpu = ", ".join(f"{c.get('scan', 0.0) + c.get('replay', 0.0):.2f}" for c in cpu)
            print(f"  CPU time in the workers: scan {scan_cpu:.2f} s, replay {replay_cpu:.2f} s "
                  f"(per worker: {workers_cpu} s); one process: {single_cpu:.2f} s of CPU")


if __name__ == "__main__":
    main()
