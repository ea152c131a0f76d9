"""The parallel replay: the same report as one process, byte for byte, or a fallback.

Every test compares with :func:`replay_path` in one process, never with figures of its
own: what the parallel replay promises is exactly that equality.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import T0, at, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from test_engine import FAMILY
from test_properties import event_logs

from statemachine.replay import parallel, replay_path, to_json
from statemachine.replay.parallel import replay_parallel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"


def write(path: Path, *events: dict[str, Any] | str) -> Path:
    path.write_bytes(b"\n".join(e.encode() if isinstance(e, str) else orjson.dumps(e) for e in events))
    return path


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The logs the parallel replay handed to one process."""
    seen: list[Path] = []

    def spy(path: Path, **options: Any) -> Any:
        seen.append(path)
        return replay_path(path, **options)

    monkeypatch.setattr(parallel, "replay_path", spy)
    return seen


def same(path: Path, workers: int, **options: Any) -> None:
    assert to_json(replay_parallel(path, workers, **options)) == to_json(replay_path(path, **options))


@pytest.mark.parametrize("workers", [2, 3, 5])
@pytest.mark.parametrize("options", [{}, {"sort": True}, {"as_of": at("2026-09-01T00:00:00Z")},
                                     {"spill_ids": True}])
def test_the_example_log_gives_the_same_report_on_any_number_of_workers(workers, options, fallbacks):
    same(EXAMPLE, workers, **options)
    assert fallbacks == []  # its families are independent: really done in parallel


def test_a_generated_log_with_timers_cascades_and_refunds_gives_the_same_report(tmp_path, fallbacks):
    log = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--orders", "2000",
                    "--seed", "7", "--out", str(log)], check=True, capture_output=True)
    report = replay_path(log)
    assert len(report.ledger) > 1000 and "deemed_approved" in report.entities.values()
    for workers in (2, 4):
        assert to_json(replay_parallel(log, workers)) == to_json(report)
    assert fallbacks == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_events=25), st.integers(2, 4), st.booleans(), st.booleans())
def test_any_log_gives_the_same_report_in_parallel(lines, workers, advance, sort):
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
        until = replay_path(log).as_of
        as_of = until + timedelta(days=40) if advance and until is not None else None
        same(log, workers, as_of=as_of, sort=sort)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_events=25).flatmap(st.permutations), st.integers(2, 3))
def test_a_shuffled_log_out_of_order_events_and_all_gives_the_same_report(lines, workers):
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
        same(log, workers)


# -- the fallbacks: whenever families are not independent ------------------------------
def _project(eid: str, pid: str, hours: float = 0) -> dict[str, Any]:
    return ev(eid, at(T0, hours=hours), "project.created", f"project/{pid}", kind="creator",
              currency="USD", deadline="2026-06-01T00:00:00Z")


def _projects_on_two_workers() -> tuple[str, str]:
    """Two project ids whose families two workers split between them."""
    worker = {p: parallel.zlib.crc32(f"project/{p}".encode()) % 2 for p in map("P{}".format, range(20))}
    return next(p for p, w in worker.items() if w == 0), next(p for p, w in worker.items() if w == 1)


def test_an_id_used_in_two_families_falls_back_to_one_process(tmp_path, fallbacks):
    a, b = _projects_on_two_workers()
    log = write(tmp_path / "ids.jsonl", _project("x", a), _project("x", b, hours=1),
                _project("y", b, hours=2))
    with capture_logs() as logs:
        same(log, 2)
    assert fallbacks == [log]
    assert [(e["event"], e["reason"]) for e in logs if e["log_level"] == "warning"] == [
        ("replay.one_process", "id 'x' is used by lines of two families")]
    assert replay_path(log).rejected[0].error.startswith("id 'x' was applied before")


def test_a_child_created_under_two_parents_falls_back_to_one_process(tmp_path, fallbacks):
    a, b = _projects_on_two_workers()
    log = write(tmp_path / "parents.jsonl", _project("p", b),
                ev("o1", at(T0, hours=1), "order.agreed", "order/O1", project=a, fee="10.00",
                   review="auto"),  # refused: no such project
                ev("o2", at(T0, hours=2), "order.agreed", "order/O1", project=b, fee="10.00",
                   review="auto"))
    same(log, 2)
    assert fallbacks == [log]
    assert replay_path(log).entities == {f"project/{b}": "active", "order/O1": "agreed"}


def test_a_step_reaching_into_another_family_falls_back_to_one_process(tmp_path, fallbacks):
    # The parent of this domain sends to children it does not own by a Parent link.
    children = [f"C{n}" for n in range(6)]
    log = write(tmp_path / "sends.jsonl",
                *(ev(f"c{n}", T0, "child.created", f"child/{c}", stoppable=n != 4)
                  for n, c in enumerate(children)),
                ev("p", T0, "parent.created", "parent/X", children=children[:3]),
                ev("q", T0, "parent.created", "parent/Y", children=children[3:]),
                ev("f1", at(T0, hours=1), "parent.finished", "parent/X"),
                ev("f2", at(T0, hours=1), "parent.finished", "parent/Y"))
    same(log, 2, domain=FAMILY)
    assert fallbacks == [log]
    report = replay_path(log, domain=FAMILY)
    assert report.entities["parent/X"] == "done" and report.entities["parent/Y"] == "running"


def test_a_failing_worker_is_an_error_with_its_traceback(tmp_path, monkeypatch):
    def broken(*args: Any) -> bytes:
        raise ZeroDivisionError("a bug in a worker")

    monkeypatch.setattr(parallel, "_work", broken)
    with pytest.raises(RuntimeError, match=r"(?s)a replay worker failed:.*ZeroDivisionError: a bug"):
        replay_parallel(EXAMPLE, 2)


def test_an_unreadable_log_is_an_os_error_as_in_one_process(tmp_path):
    with pytest.raises(FileNotFoundError):
        replay_parallel(tmp_path / "missing.jsonl", 2)


def test_zero_workers_means_one_per_cpu_and_fewer_is_an_error(fallbacks):
    same(EXAMPLE, 0)
    assert fallbacks == ([] if (os.cpu_count() or 1) > 1 else [EXAMPLE])
    with pytest.raises(ValueError, match=r"workers must be 0 \(one per CPU\) or more, not -1"):
        replay_path(EXAMPLE, workers=-1)


def test_a_pipe_is_read_once_by_one_process(tmp_path, fallbacks):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(EXAMPLE.read_bytes()))
    writer.start()
    report = replay_parallel(fifo, 2)
    writer.join()
    assert fallbacks == [fifo] and to_json(report) == to_json(replay_path(EXAMPLE))


def test_progress_tells_lines_and_rejections_while_the_workers_run(tmp_path, monkeypatch):
    calls: list[tuple[int, int]] = []
    slow = parallel._work

    def work(*args: Any) -> bytes:  # long enough for the parent to look in twice
        import time

        answer = slow(*args)
        time.sleep(0.6)
        return answer

    monkeypatch.setattr(parallel, "_work", work)
    report = replay_parallel(EXAMPLE, 2, progress=lambda p: calls.append((p.lines, len(p.rejected))))
    assert calls and all(lines >= 0 and rejected >= 0 for lines, rejected in calls)
    assert to_json(report) == to_json(replay_path(EXAMPLE))


def test_the_cli_replays_on_workers_with_the_same_bytes():
    def cli(*args: str) -> bytes:
        done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE),
                               "--format", "json", *args], cwd=ROOT, capture_output=True)
        assert done.returncode == 1, done.stderr  # the example has rejected lines
        return done.stdout

    assert cli("--workers", "2") == cli("--workers", "0") == cli()


@pytest.mark.parametrize("value", ["-1", "two", ""])
def test_the_cli_refuses_a_bad_number_of_workers(value):
    done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE),
                           "--workers", value], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "--workers" in done.stderr
