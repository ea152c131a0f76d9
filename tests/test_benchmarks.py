"""Smoke test of the benchmark harness (``benchmarks/``): no timing, only agreement.

The benchmark is only worth its figures if the generated log is valid (our engine
rejects nothing) and every peer reaches the same final states and money totals as our
engine; these tests check that on small logs, so a broken generator or peer is caught
here rather than after a half-hour run.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.lifecycles import DOMAIN
from statemachine.replay import replay_path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
VENV_PYTHON = BENCH / ".venv-peers" / "bin" / "python"


@pytest.fixture(scope="module")
def bench():
    """The benchmark's modules (plain scripts in ``benchmarks/``, not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in ("generate", "peers", "results", "ours")}
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def small_log(bench, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "log.jsonl"
    bench["generate"].write_log(path, orders=300, seed=6)  # a seed whose log has every event kind
    return path


def _ours(bench, path: Path) -> dict:
    report = replay_path(path)
    assert report.rejected == (), report.rejected[:3]
    states, totals = bench["ours"].outcome(report)
    return bench["results"].summary("ours", report.lines, 0.0, states, totals)


def _peer(bench, variant: str, path: Path) -> dict:
    replay = bench["peers"].Replay(bench["peers"].BACKENDS[variant]())
    events = replay.run(path)
    states, totals = replay.outcome()
    return bench["results"].summary(variant, events, 0.0, states, totals)


def test_generated_log_is_valid_and_covers_the_rules(bench, small_log):
    ours = _ours(bench, small_log)
    lines = [json.loads(raw) for raw in small_log.read_bytes().splitlines()]
    assert ours["events"] == len(lines)
    assert [e["time"] for e in lines] == sorted(e["time"] for e in lines)
    assert len({e["id"] for e in lines}) == len(lines)
    kinds = {e["type"] for e in lines}
    assert {"order.agreed", "order.started", "order.submitted", "order.approved", "order.rejected",
            "order.resubmitted", "project.cancellation_requested", "project.cancellation_accepted",
            "project.completed", "promotion.created", "promotion.approved", "promotion.spent",
            "promotion.turned_off"} <= kinds
    # deemed approvals (a timer), expiries (a timer, full refund) and refunds all happen
    assert ours["counts"]["order:deemed_approved"] > 0
    assert ours["counts"]["order:expired"] > 0
    assert ours["counts"]["order:cancelled"] > 0
    assert any("refund" in per for per in ours["totals"].values())


def test_generator_is_deterministic_for_a_seed(bench):
    generate = bench["generate"].generate
    first = list(generate(60, seed=5))
    assert first == list(generate(60, seed=5))
    assert first != list(generate(60, seed=6))


@pytest.mark.parametrize("variant", ["dict-table", "transitions-shared", "transitions-per-entity",
                                     "transitions-add-model"])
def test_peer_agrees_with_our_engine(bench, small_log, variant):
    ours = _ours(bench, small_log)
    assert bench["results"].compare(ours, _peer(bench, variant, small_log)) == []


def test_a_disagreement_is_reported(bench, small_log):
    """The benchmark must fail when a variant reaches another outcome."""
    ours = _ours(bench, small_log)
    replay = bench["peers"].Replay(bench["peers"].BACKENDS["dict-table"]())
    events = replay.run(small_log)
    states, totals = replay.outcome()
    subject = next(s for s, state in states.items() if state == "deemed_approved")
    states[subject] = "approved"
    changed = bench["results"].summary("changed", events, 0.0, states, totals)
    problems = bench["results"].compare(ours, changed)
    assert problems and "final states differ" in problems[0]
    currency = next(iter(totals))
    totals[currency]["refund"] = "0.00"
    assert any("totals differ" in p for p in bench["results"].compare(
        ours, bench["results"].summary("changed", events, 0.0, states, totals)))


def test_stretched_log_keeps_the_entities(bench, tmp_path):
    base, longer = tmp_path / "base.jsonl", tmp_path / "longer.jsonl"
    n_base = bench["generate"].write_log(base, orders=150, seed=4)
    n_longer = bench["generate"].write_log(longer, orders=150, seed=4, stretch=4)
    assert n_longer >= 3 * n_base
    ours_base, ours_longer = _ours(bench, base), _ours(bench, longer)
    assert ours_longer["entities"] == ours_base["entities"]
    assert bench["results"].compare(ours_longer, _peer(bench, "dict-table", longer)) == []


@pytest.mark.skipif(not VENV_PYTHON.exists(),
                    reason="benchmarks/.venv-peers not created (python benchmarks/run.py makes it)")
def test_python_statemachine_peer_agrees(bench, small_log):
    done = subprocess.run([str(VENV_PYTHON), str(BENCH / "peers.py"), "python-statemachine",
                           str(small_log)], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin"})
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert bench["results"].compare(_ours(bench, small_log), theirs) == []


def test_floor_records_the_rules_of_a_real_replay(bench, small_log):
    """``benchmarks/floor.py`` times the declared functions as a replay calls them: its
    recording domain must replay exactly as the real one, and record every kind."""
    floor = importlib.import_module("floor")
    recorder = floor.Recorder(DOMAIN)
    assert replay_path(small_log, domain=recorder.domain) == replay_path(small_log)
    kinds = {kind for kind, _, _ in recorder.calls}
    assert kinds == {"field", "guard", "action", "timer"}
    result = floor.floor(small_log, repeat=1)
    assert result["events"] == len(small_log.read_bytes().splitlines())
    assert result["rejected"] == 0
    assert set(result["seconds"]) == {"rules", "envelope", "orjson", "engine", "dict-table",
                                      "transitions-shared"}
    text = "\n".join(floor._lines(result))
    assert "floor: rules + envelope" in text
    assert text.count("target ") == 4


def test_convention_prototype_reaches_the_engines_report(bench, small_log, tmp_path):
    """``benchmarks/convention.py``'s figures stand only if its Order rules, written in
    another calling convention, do what the engine does: the same states, ledger and
    rejected lines on the order part of a log, refusals and repeats included."""
    convention = importlib.import_module("convention")
    part = convention.order_part(small_log, tmp_path / "orders.jsonl")
    lines = [line for line in part.read_bytes().splitlines() if line.strip()]
    first = next(e for e in map(json.loads, lines) if e["type"] == "order.agreed")
    conflict = dict(first, source="elsewhere")
    half = len(lines) // 2
    late = json.loads(lines[half - 1])  # the line before the odd ones: the clock stays put
    odd = [
        json.dumps(first).encode(),  # a repeat: a duplicate
        json.dumps(conflict).encode(),  # the same id, other content: a conflict
        json.dumps(dict(late, id="early", time="2000-01-01T00:00:00Z")).encode(),  # out of order
        json.dumps(dict(late, id="ghost", type="order.approved", subject="order/nobody")).encode(),
        json.dumps(dict(first, id="again", time=late["time"])).encode(),  # created twice
        json.dumps(dict(late, id="zero", type="order.agreed", subject="order/Z-1",
                        data={"project": first["data"].get("project", "nope"), "fee": "0.00",
                              "review": "manual"})).encode(),  # the fee guard refuses
        b'{"id": "broken"',  # not JSON
    ]
    log = tmp_path / "tricky.jsonl"
    log.write_bytes(b"\n".join(lines[:half] + odd + lines[half:]) + b"\n")
    proto = convention.Prototype([line for line in log.read_bytes().splitlines() if line.strip()]).run()
    checked = convention.check(log, proto)
    assert "same as the engine" in checked
    assert len(proto.rejected) == 6 and proto.duplicates == 1, checked
    assert proto.ledger, "no money moved: the check would prove little"
