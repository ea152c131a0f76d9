"""Many log files replayed as one log (issue 13): the report of the concatenated log,
with line numbers per file and each rejection naming its file.

Every comparison is with the one-file replay of the same lines joined: the promise is
exactly "as one log", so the expected report is that one with its rejections renumbered.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from helpers import T0, at, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import event_logs

from statemachine.replay import replay_path, to_json
from statemachine.replay.files import expand_logs, replay_paths
from statemachine.replay.report import Rejection, Report, render_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
EXPECTED = ROOT / "examples" / "collaborations.expected.json"


def split(text: bytes, cuts: list[int], folder: Path, names: list[str] | None = None) -> list[Path]:
    """The physical lines of ``text`` cut before each line index in ``cuts`` into files
    whose sorted names keep that order."""
    physical = text.split(b"\n")
    bounds = [0, *cuts, len(physical)]
    paths = []
    for k, (start, end) in enumerate(itertools.pairwise(bounds)):
        path = folder / (names[k] if names else f"part-{k:02d}.jsonl")
        path.write_bytes(b"\n".join(physical[start:end]))
        paths.append(path)
    return paths


def as_one(whole: Report, cuts: list[int], paths: list[Path]) -> Report:
    """``whole`` (the joined log's report) with each rejection numbered in its file."""
    starts = [0, *cuts]
    rejected = []
    for r in whole.rejected:
        k = max(i for i, s in enumerate(starts) if s < r.line)
        rejected.append(Rejection(r.line - starts[k], r.id, r.error, str(paths[k])))
    return attrs.evolve(whole, rejected=tuple(rejected))


def write(path: Path, *events: dict[str, Any] | str) -> Path:
    path.write_bytes(b"\n".join(e.encode() if isinstance(e, str) else orjson.dumps(e) for e in events))
    return path


def cli(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", "replay", *map(str, args)], cwd=ROOT,
                          capture_output=True, input=stdin, timeout=120, check=False)


# -- one file: nothing changes ---------------------------------------------------------
def test_one_file_is_the_report_of_today_byte_for_byte(tmp_path):
    assert to_json(replay_paths([EXAMPLE])) == to_json(replay_paths(EXAMPLE)) == EXPECTED.read_bytes()
    (tmp_path / "only.jsonl").write_bytes(EXAMPLE.read_bytes())
    assert to_json(replay_paths(tmp_path)) == EXPECTED.read_bytes()  # a folder of one file
    done = cli(tmp_path / "*.jsonl", "--format", "json")
    assert done.returncode == 1 and done.stdout == EXPECTED.read_bytes()


# -- several files: one log, numbered per file ------------------------------------------
@pytest.mark.parametrize("sort", [False, True])
def test_the_example_split_in_three_is_the_example_with_rejections_named_by_file(tmp_path, sort):
    cuts = [5, 40]
    paths = split(EXAMPLE.read_bytes(), cuts, tmp_path)
    whole = replay_path(EXAMPLE, sort=sort)
    report = replay_paths([tmp_path], sort=sort)
    assert to_json(report) == to_json(as_one(whole, cuts, paths))
    rejected = orjson.loads(to_json(report))["rejected"]
    assert rejected and all(list(r) == ["file", "line", "id", "error"] for r in rejected)
    assert {r["file"] for r in rejected} <= {str(p) for p in paths}


def test_files_are_replayed_in_the_order_of_their_sorted_paths_whatever_the_order_given(tmp_path):
    cuts = [20, 30, 50]
    (tmp_path / "b").mkdir()
    paths = split(EXAMPLE.read_bytes(), cuts, tmp_path, ["b/2.jsonl", "a.jsonl", "b/1.jsonl", "c.jsonl"])
    # sorted: a.jsonl, b/1.jsonl, b/2.jsonl, c.jsonl; the log joined in that order:
    order = sorted(paths, key=str)
    joined = write(tmp_path / "joined.log", *(p.read_text() for p in order))
    expected = replay_path(joined)
    starts = [0]
    for p in order[:-1]:
        starts.append(starts[-1] + p.read_bytes().count(b"\n") + 1)
    for logs in ([str(p) for p in reversed(paths)], [str(tmp_path / "*.jsonl"), str(tmp_path / "b")],
                  [str(tmp_path / "**" / "*.jsonl")]):
        report = replay_paths(logs)
        assert to_json(report) == to_json(as_one(expected, starts[1:], order))


def test_an_id_repeated_in_a_later_file_is_a_duplicate_or_a_conflict_naming_that_file(tmp_path):
    project = ev("p", T0, "project.created", "project/P1", kind="creator", currency="USD",
                 deadline="2026-06-01T00:00:00Z")
    order = ev("o", at(T0, hours=1), "order.agreed", "order/O1", project="P1", fee="10.00", review="auto")
    other = {**order, "data": {**order["data"], "fee": "11.00"}}
    for sort in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write(folder / "1.jsonl", project, order)
            (folder / "2.jsonl").write_bytes(b"")  # an empty file between them
            write(folder / "3.jsonl", "", order, other)
            report = replay_paths(folder, sort=sort)
            assert (report.applied, report.duplicates) == (2, 1)
            assert report.rejected == (Rejection(3, "o", "id 'o' was applied before with different "
                                                 "content", str(folder / "3.jsonl")),)


def test_a_timer_runs_on_across_files_on_the_one_clock(tmp_path):
    write(tmp_path / "day1.jsonl",
          ev("p", T0, "project.created", "project/P1", kind="creator", currency="USD",
             deadline="2026-06-01T00:00:00Z"),
          ev("o", at(T0, hours=1), "order.agreed", "order/O1", project="P1", fee="10.00", review="manual"),
          ev("s", at(T0, hours=2), "order.submitted", "order/O1"))
    write(tmp_path / "day9.jsonl",  # 14 days later: deemed approved before this line applies
          ev("x", at(T0, days=20), "project.created", "project/P2", kind="creator", currency="USD",
             deadline="2026-06-01T00:00:00Z"))
    report = replay_paths(tmp_path)
    assert report.entities["order/O1"] == "deemed_approved"
    assert [line.kind for line in report.ledger] == ["payment_released"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_events=25), st.lists(st.integers(0, 60), max_size=4), st.booleans())
def test_any_log_cut_into_files_is_the_log_replayed_whole(lines, cuts, sort):
    text = "\n".join(lines).encode("utf-8", "surrogateescape")
    count = text.count(b"\n") + 1
    cuts = sorted({c for c in cuts if 0 < c < count})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        whole = replay_path(write_bytes(folder / "whole.log", text), sort=sort)
        (folder / "parts").mkdir()
        paths = split(text, cuts, folder / "parts")
        report = replay_paths(folder / "parts", sort=sort)
        if len(paths) == 1:
            assert to_json(report) == to_json(whole)
        else:
            assert to_json(report) == to_json(as_one(whole, cuts, paths))


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- what cannot be read ----------------------------------------------------------------
def test_a_pattern_or_folder_without_files_and_a_missing_file_cannot_be_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches this pattern"):
        expand_logs([str(tmp_path / "*.jsonl")])
    with pytest.raises(FileNotFoundError, match="no log file in this directory"):
        expand_logs([tmp_path])
    write(tmp_path / "a.jsonl", "{}")
    with pytest.raises(FileNotFoundError):  # before anything is replayed
        replay_paths([tmp_path / "a.jsonl", tmp_path / "missing.jsonl"])
    assert expand_logs([tmp_path, tmp_path / "a.jsonl", str(tmp_path / "?.jsonl")]) == [
        str(tmp_path / "a.jsonl")]  # one file, found three ways: once


def test_the_command_replays_many_files_and_names_them_in_the_text_report(tmp_path):
    cuts = [5, 40]
    paths = split(EXAMPLE.read_bytes(), cuts, tmp_path)
    done = cli(*paths[::-1], "--format", "json")
    assert done.returncode == 1
    assert done.stdout == to_json(as_one(replay_path(EXAMPLE), cuts, paths))
    text = cli(tmp_path)
    assert text.returncode == 1
    assert text.stdout.decode() == render_text(replay_paths([tmp_path]))
    assert "┃ file" in text.stdout.decode().split("Rejected lines")[1]  # a column of its own


@pytest.mark.parametrize(("args", "message"), [
    (["{missing}/*.jsonl"], "no file matches this pattern"),
    (["-", "{example}"], "- (standard input) cannot be replayed together with other logs"),
    (["{folder}", "--html", "{folder}/r.html"], "--html read one log file; 3 were given"),
    (["{folder}", "--what-if", "examples/policy-2026-03.toml"], "read one log file; 3 were given"),
])
def test_the_command_refuses_what_it_cannot_read_with_one_line_and_exit_2(tmp_path, args, message):
    split(EXAMPLE.read_bytes(), [5, 40], tmp_path)
    values = {"missing": tmp_path / "none", "example": EXAMPLE, "folder": tmp_path}
    done = cli(*(a.format(**values) for a in args))
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().count("\n") == 1 and message in done.stderr.decode()


def test_standard_input_still_reads_as_one_log():
    done = cli("-", "--format", "json", stdin=EXAMPLE.read_bytes())
    assert done.returncode == 1 and done.stdout == EXPECTED.read_bytes()


def test_a_pipe_among_the_files_is_read_once(tmp_path):
    import threading

    cuts = [30]
    paths = split(EXAMPLE.read_bytes(), cuts, tmp_path)
    fifo = tmp_path / "part-01.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(paths[1].read_bytes()))
    writer.start()
    report = replay_paths([paths[0], fifo])
    writer.join()
    assert to_json(report) == to_json(as_one(replay_path(EXAMPLE), cuts, [paths[0], fifo]))


# -- --out DIR: Parquet -----------------------------------------------------------------
def test_out_writes_the_ledger_by_currency_and_the_entities_as_parquet_equal_to_the_report(tmp_path):
    pytest.importorskip("pyarrow")
    from statemachine.replay.parquet import read_entities, read_ledger

    split(EXAMPLE.read_bytes(), [20], tmp_path)
    out = tmp_path / "out"
    done = cli(tmp_path, "--format", "json", "--out", out)
    assert done.returncode == 1, done.stderr
    report = orjson.loads(done.stdout)
    assert sorted(p.name for p in (out / "ledger").iterdir()) == [
        f"currency={c}" for c in sorted(report["totals"])]
    ledger = read_ledger(out)
    assert [{**row, "time": row["time"].strftime("%Y-%m-%dT%H:%M:%SZ"), "amount": row["amount"]}
            for row in ledger] == [
        {"position": n, **{k: v for k, v in line.items() if k != "amount"},
         "amount": Decimal(line["amount"])} for n, line in enumerate(report["ledger"])]
    assert all(type(row["amount"]) is Decimal for row in ledger)
    assert read_entities(out) == report["entities"]
    again = cli(tmp_path, "--format", "json", "--out", out)  # written anew, not appended
    assert again.stdout == done.stdout and len(read_ledger(out)) == len(report["ledger"])


def test_out_with_a_face_that_reads_one_log_is_refused(tmp_path):
    done = cli(EXAMPLE, "--out", tmp_path / "o", "--html", tmp_path / "r.html")
    assert done.returncode == 2 and b"--out is written by the plain replay" in done.stderr
    assert not (tmp_path / "o").exists()
