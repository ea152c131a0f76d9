"""The Ads Manager example log (``examples/ads_manager.jsonl``) replays to exactly its
expected reports, JSON and text, by one process or two, sorted or not; and its
ledger keeps every owner's money whole."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
from test_cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ads_manager.jsonl"
EXPECTED = ROOT / "examples" / "ads_manager.expected.json"
EXPECTED_TEXT = ROOT / "examples" / "ads_manager.expected.txt"


@pytest.mark.parametrize("options", [(), ("--sort",), ("--workers", "2"), ("--spill-ids",)])
def test_the_ads_example_replays_to_exactly_the_expected_reports(options: tuple[str, ...]) -> None:
    done = cli("replay", EXAMPLE, "--format", "json", *options)
    assert done.returncode == 1  # refused lines on purpose
    assert done.stdout == EXPECTED.read_bytes()
    assert cli("replay", EXAMPLE, *options).stdout == EXPECTED_TEXT.read_bytes()


def test_the_ads_example_shows_each_kind_of_refusal_and_keeps_the_money_whole() -> None:
    report = json.loads(EXPECTED.read_bytes())
    errors = [r["error"] for r in report["rejected"]]
    assert any("ad_group/G-102 is off" in e for e in errors)
    assert any("campaign/C-100 is off" in e for e in errors)
    assert any("would exceed the budget of campaign/C-100" in e for e in errors)
    assert any("cannot turn_on in state deleted" in e for e in errors)
    owners = {line["subject"] for line in report["ledger"]}
    assert not any(o.startswith("ad/") for o in owners)
    for owner in owners:
        sums = {k: sum((Decimal(x["amount"]) for x in report["ledger"]
                        if x["subject"] == owner and x["kind"] == k), Decimal(0))
                for k in ("hold_placed", "charge", "hold_released")}
        assert sums["hold_placed"] == sums["charge"] + sums["hold_released"], owner
    # the campaign end fired as a timer: caused by the campaign's creation, at its end
    ends = [x for x in report["ledger"] if x["cause"] == "c100" and x["kind"] != "hold_placed"]
    assert {x["time"] for x in ends} == {"2026-05-10T00:00:00Z"}
    assert "ad_group/G-202 │ deleted │ deleted │ 100.00 │ 100.00 │  100.00 │ 0.00" in \
        EXPECTED_TEXT.read_text(encoding="utf-8")


def test_the_ads_example_through_a_store_survives_a_reopen(tmp_path: Path) -> None:
    from statemachine.api import Engine
    from statemachine.engine import EventRejected
    from statemachine.store import SQLiteStore

    engine = Engine(store=SQLiteStore(tmp_path / "ads.db"))
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(EventRejected):
            engine.apply(json.loads(line))
    subjects = json.loads(EXPECTED.read_bytes())["entities"]
    before = {s: (engine.get(s).state, engine.status(s)) for s in subjects}  # type: ignore[union-attr]
    engine.close()
    with Engine(store=SQLiteStore(tmp_path / "ads.db")) as reopened:
        after = {s: (reopened.get(s).state, reopened.status(s)) for s in before}  # type: ignore[union-attr]
        assert after == before
        assert [line.to_dict() for line in reopened.ledger()] == json.loads(EXPECTED.read_bytes())["ledger"]


@pytest.mark.parametrize("workers", [2, 3])
def test_the_ads_example_is_really_replayed_in_parallel(workers: int, monkeypatch) -> None:
    """Campaign, ad groups and ads are one family (their Parent links): no fallback, and
    the same JSON and text (the campaign tables come back from the workers)."""
    from statemachine.replay import parallel, render_text, replay_path, to_json

    fell_back: list[object] = []
    monkeypatch.setattr(parallel, "replay_path", lambda *a, **k: fell_back.append(a))
    report = parallel.replay_parallel(EXAMPLE, workers)
    assert fell_back == []
    monkeypatch.undo()
    one = replay_path(EXAMPLE)
    assert to_json(report) == to_json(one) == EXPECTED.read_bytes()
    assert render_text(report) == render_text(one) == EXPECTED_TEXT.read_text(encoding="utf-8")


def test_the_generated_log_gains_an_ads_share_only_when_asked(tmp_path: Path) -> None:
    import subprocess
    import sys

    from statemachine.replay import replay_path, to_json
    from statemachine.replay.parallel import replay_parallel

    generate = ROOT / "benchmarks" / "generate.py"
    base, mixed = tmp_path / "base.jsonl", tmp_path / "ads.jsonl"
    subprocess.run([sys.executable, str(generate), "--orders", "500", "--out", str(base)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, str(generate), "--orders", "500", "--ads", "60", "--out",
                    str(mixed)], check=True, capture_output=True)
    lines = mixed.read_bytes().splitlines()
    assert [x for x in lines if b'"ads-manager"' not in x] == base.read_bytes().splitlines()
    report = replay_path(mixed)
    assert report.rejected == () and report.campaigns
    campaigns = {s for s in report.entities if s.startswith("campaign/")}
    assert campaigns == {f"campaign/C-{n}" for n in range(1, 61)}
    assert to_json(replay_parallel(mixed, 2)) == to_json(report)
