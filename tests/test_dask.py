"""Replay on a Dask cluster (issue 13): the one-process report, byte for byte, on real
local clusters of worker processes, or a logged fall back to one process for a log
whose families meet.

The clusters are started once for the module (seconds each) and every test compares
with the one-process replay of the same files, never with figures of its own.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import T0, at, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from test_many_logs import split, write
from test_properties import event_logs

pytest.importorskip("distributed")  # the dask extra (make install brings it)

from statemachine.replay import parallel, to_json
from statemachine.replay.cluster import ClusterSpec, connect, parse_cluster
from statemachine.replay.files import expand_logs, replay_paths

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
EXPECTED = ROOT / "examples" / "collaborations.expected.json"


@pytest.fixture(scope="module")
def clusters() -> Iterator[dict[int, Any]]:
    """Clients of local clusters of one and two worker processes."""
    with connect(ClusterSpec(workers=1)) as one, connect(ClusterSpec(workers=2)) as two:
        yield {1: one, 2: two}


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The logs the cluster replay handed to one process instead."""
    seen: list[list[str]] = []
    one_process = parallel._one_process

    def spy(paths: list[str], options: dict[str, Any]) -> Any:
        seen.append(paths)
        return one_process(paths, options)

    monkeypatch.setattr(parallel, "_one_process", spy)
    return seen


def same(clusters: dict[int, Any], logs: Any, groups: tuple[int | None, ...] = (None, 4),
         **options: Any) -> bytes:
    """The cluster reports (local:1, local:2, and 4 groups on local:2) equal one process's."""
    expected = to_json(replay_paths(logs, **options))
    for client in clusters.values():
        for count in groups:
            report = parallel.replay_distributed(expand_logs(logs), client, groups=count, **options)
            assert to_json(report) == expected
    return expected


@pytest.mark.parametrize("options", [{}, {"sort": True}, {"as_of": at("2026-09-01T00:00:00Z")},
                                     {"spill_ids": True}])
def test_the_example_log_gives_the_same_report_on_any_cluster(clusters, fallbacks, options):
    assert same(clusters, EXAMPLE, **options)
    assert fallbacks == []  # its families are independent: really replayed on the cluster


def test_a_generated_log_in_seven_files_of_uneven_size_gives_the_same_report(clusters, fallbacks,
                                                                              tmp_path):
    log = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--orders", "1500",
                    "--seed", "11", "--out", str(log)], check=True, capture_output=True)
    text = log.read_bytes()
    count = text.count(b"\n")
    cuts = sorted(random.Random(5).sample(range(1, count), 6))
    (tmp_path / "parts").mkdir()
    paths = split(text, cuts, tmp_path / "parts")
    sizes = [p.stat().st_size for p in paths]
    assert len(paths) == 7 and max(sizes) > 2 * min(sizes)
    report = replay_paths(paths)
    assert len(report.ledger) > 500 and "deemed_approved" in report.entities.values()
    same(clusters, paths)
    assert fallbacks == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(event_logs(max_events=25), st.booleans(), st.integers(1, 40))
def test_any_log_in_two_files_gives_the_same_report_on_a_cluster(clusters, lines, sort, cut):
    with tempfile.TemporaryDirectory() as tmp:
        text = "\n".join(lines).encode("utf-8", "surrogateescape")
        paths = split(text, [min(cut, text.count(b"\n"))] if text.count(b"\n") else [], Path(tmp))
        same(clusters, paths, groups=(None,), sort=sort)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(event_logs(max_events=25).flatmap(st.permutations))
def test_a_shuffled_log_gives_the_same_report_on_a_cluster(clusters, lines):
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
        same(clusters, log, groups=(None,))


# -- families across files, ids across families -----------------------------------------
def _project(eid: str, pid: str, hours: float = 0) -> dict[str, Any]:
    return ev(eid, at(T0, hours=hours), "project.created", f"project/{pid}", kind="creator",
              currency="USD", deadline="2026-06-01T00:00:00Z")


def _projects_in_two_groups() -> tuple[str, str]:
    group = {p: parallel.zlib.crc32(f"project/{p}".encode()) % 2 for p in map("P{}".format, range(20))}
    return next(p for p, g in group.items() if g == 0), next(p for p, g in group.items() if g == 1)


def test_a_family_spanning_two_files_is_replayed_on_the_cluster(clusters, fallbacks, tmp_path):
    a, b = _projects_in_two_groups()
    write(tmp_path / "1.jsonl", _project("pa", a), _project("pb", b, hours=0.5),
          ev("o1", at(T0, hours=1), "order.agreed", "order/O1", project=a, fee="10.00", review="manual"))
    write(tmp_path / "2.jsonl",
          ev("s1", at(T0, hours=2), "order.submitted", "order/O1"),
          ev("o2", at(T0, hours=3), "order.agreed", "order/O2", project=b, fee="20.00", review="auto"),
          ev("s2", at(T0, hours=4), "order.submitted", "order/O2"),
          ev("bad", at(T0, hours=5), "order.approved", "order/O2"))  # rejected: named by its file
    expected = same(clusters, sorted(map(str, tmp_path.iterdir())), as_of=at(T0, days=30))
    assert fallbacks == []
    assert b'"deemed_approved"' in expected and b'"file": "' in expected


def test_an_id_used_in_two_families_across_files_falls_back_to_one_process(clusters, fallbacks,
                                                                           tmp_path):
    a, b = _projects_in_two_groups()
    first = write(tmp_path / "1.jsonl", _project("x", a))
    second = write(tmp_path / "2.jsonl", _project("x", b, hours=1), _project("y", b, hours=2))
    with capture_logs() as logs:
        report = parallel.replay_distributed([first, second], clusters[2], groups=2)
    assert to_json(report) == to_json(replay_paths([first, second]))
    assert fallbacks == [[str(first), str(second)]]
    assert [(e["event"], e["reason"]) for e in logs if e["log_level"] == "warning"] == [
        ("replay.one_process", "id 'x' is used by lines of two families")]
    assert report.rejected[0].file == str(second)


# -- the command ------------------------------------------------------------------------
def cli(*args: str | Path, code: str | None = None) -> subprocess.CompletedProcess[bytes]:
    command = ["-m", "statemachine"] if code is None else ["-c", code]
    return subprocess.run([sys.executable, *command, "replay", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=180, check=False)


def test_the_command_on_a_local_cluster_and_its_workers_alias_give_the_same_bytes(tmp_path):
    paths = split(EXAMPLE.read_bytes(), [7, 33], tmp_path)
    one = cli(tmp_path, "--format", "json")
    assert one.returncode == 1 and b'"file"' in one.stdout
    for args in (["--cluster", "local:2"], ["--cluster", "local"], ["--workers", "2"]):
        done = cli(*paths, "--format", "json", *args)
        assert (done.returncode, done.stdout) == (1, one.stdout), done.stderr
    example = cli(EXAMPLE, "--format", "json", "--cluster", "local:1")
    assert (example.returncode, example.stdout) == (1, EXPECTED.read_bytes())


def test_without_dask_a_cluster_is_one_line_naming_the_extra_and_exit_2():
    code = ("import sys; sys.modules['distributed'] = None; from statemachine.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    for args in (["--cluster", "local:2"], ["--workers", "2"]):
        done = cli(EXAMPLE, *args, code=code)
        assert done.returncode == 2 and done.stdout == b""
        assert done.stderr == b"error: --cluster needs Dask: pip install 'collab-lifecycles[dask]'\n"


@pytest.mark.parametrize("value", ["local:0", "local:x", "remote", "tcp://"])
def test_a_bad_cluster_is_refused_by_the_command(value):
    with pytest.raises(ValueError, match="local"):
        parse_cluster(value)
    done = cli(EXAMPLE, "--cluster", value)
    assert done.returncode == 2 and b"--cluster" in done.stderr


def test_both_workers_and_cluster_are_refused():
    done = cli(EXAMPLE, "--cluster", "local:2", "--workers", "2")
    assert done.returncode == 2
    assert done.stderr == b"error: --workers N is an alias of --cluster local:N: give one of them\n"


def test_an_unreachable_scheduler_is_one_line_and_exit_2():
    done = cli(EXAMPLE, "--cluster", "tcp://127.0.0.1:9")
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.startswith(b"error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_cluster_addresses_and_local_sizes_parse():
    assert parse_cluster("local") == ClusterSpec()
    assert parse_cluster("local:3") == ClusterSpec(workers=3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ClusterSpec(address="tcp://10.0.0.5:8786")
    assert str(parse_cluster("local:3")) == "local:3"


# -- the scan pass and what the tasks check (issue 13) -----------------------------------
def test_a_line_the_scan_reads_as_an_event_but_the_envelope_refuses_falls_back(clusters, fallbacks,
                                                                              tmp_path):
    # A repeated key: the scan's partial view takes the last copy; the envelope refuses
    # the line, so its time must not be in the clock: the replay starts over, right.
    log = tmp_path / "keys.jsonl"
    log.write_bytes(b"\n".join([
        orjson.dumps(_project("p", "P1")),
        b'{"id": "r", "time": "2026-04-01T00:00:00Z", "time": "2026-04-02T00:00:00Z", '
        b'"type": "project.created", "subject": "project/P2", "data": {"kind": "creator", '
        b'"currency": "USD", "deadline": "2026-06-01T00:00:00Z"}}',
        orjson.dumps(_project("q", "P3", hours=1))]))
    with capture_logs() as logs:
        report = parallel.replay_distributed([log], clusters[2], groups=2)
    assert to_json(report) == to_json(replay_paths(log))
    assert fallbacks == [[str(log)]]
    assert [e["reason"] for e in logs if e["log_level"] == "warning"] == [
        f"line 2 of {log} reads as an event partially and as malformed in full"]
    assert "appears twice" in report.rejected[0].error


def test_progress_reports_the_scan_then_the_replay(clusters, monkeypatch, tmp_path):
    seen: list[tuple[str, int, int]] = []
    slow = parallel._work

    def work(*args: Any) -> bytes:  # long enough for the caller to look in while it runs
        import time

        answer = slow(*args)
        time.sleep(0.6)
        return answer

    monkeypatch.setattr(parallel, "_work", work)
    paths = split(EXAMPLE.read_bytes(), [10, 40], tmp_path)
    report = parallel.replay_distributed(paths, clusters[2], groups=2,
                                         progress=lambda p: seen.append((p.phase, p.lines, len(p.rejected))))
    assert to_json(report) == to_json(replay_paths(paths))
    phases = [phase for phase, _, _ in seen]
    assert phases[0] == "scanning" and "replaying" in phases
    assert phases.index("replaying") > max(i for i, p in enumerate(phases) if p == "scanning")
    scanned = [(lines, rejected) for phase, lines, rejected in seen if phase == "scanning"]
    assert scanned[-1][0] == report.lines  # every line scanned, the malformed ones rejected there
    assert 0 < scanned[-1][1] <= len(report.rejected)
    assert all(0 <= lines <= report.lines for phase, lines, _ in seen if phase == "replaying")


def test_the_dashboard_link_is_one_line_on_a_terminal_and_nothing_when_piped(clusters):
    import io

    from statemachine.replay.scale import note_dashboard

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, tty = io.StringIO(), Tty()
    note_dashboard(clusters[2], piped)
    note_dashboard(clusters[2], tty)
    assert piped.getvalue() == ""
    assert tty.getvalue() == f"Dask dashboard: {clusters[2].dashboard_link}\n"
    assert tty.getvalue().startswith("Dask dashboard: http://127.0.0.1:")


@pytest.mark.parametrize("options", [{}, {"as_of": at("2026-01-01T00:00:00Z")}, {"sort": True}])
def test_empty_blank_and_malformed_only_files_give_the_same_report(clusters, fallbacks, tmp_path,
                                                                   options):
    empty = tmp_path / "a.jsonl"
    empty.write_bytes(b"")
    blank = tmp_path / "b.jsonl"
    blank.write_bytes(b"\n\n  \n")
    broken = tmp_path / "c.jsonl"
    broken.write_bytes(b"{bad\n[1, 2]\n")
    for logs in ([empty], [empty, blank], [blank, broken], [empty, blank, broken]):
        same(clusters, logs, groups=(3,), **options)
    assert fallbacks == []


def test_the_scale_benchmark_runs_and_finds_the_same_report():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--events", "3000",
                           "--files", "3", "--clusters", "1", "--passes", "2"],
                          cwd=ROOT, capture_output=True, timeout=300, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert out.count("same report") == 2 and "DIFFERENT" not in out
    assert "passes in this process" in out and "time split: scan" in out


def test_on_a_terminal_the_command_shows_the_dashboard_and_the_same_report(tmp_path):
    import os
    import pty

    paths = split(EXAMPLE.read_bytes(), [20], tmp_path)
    command = [sys.executable, "-m", "statemachine", "replay", *map(str, paths), "--format", "json",
               "--cluster", "local:2"]
    master, slave = pty.openpty()  # stderr on a terminal; the report on a pipe
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=180)
    piped = cli(*paths, "--format", "json", "--cluster", "local:2")
    one = cli(*paths, "--format", "json")
    assert (proc.returncode, out) == (piped.returncode, piped.stdout) == (one.returncode, one.stdout)
    assert b"Dask dashboard: http://127.0.0.1:" in shown
    assert b"dashboard" not in piped.stderr
