"""statemachine.testing on our own lifecycles: generated histories (and a planted bug
they find), given/when/then, and the lifecycle coverage with its pytest plugin."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from statemachine import DOMAIN, PROMOTION, Engine, Runtime
from statemachine.engine import Domain, TransitionRefused
from statemachine.lifecycles import (
    Charged,
    HoldPlaced,
    HoldReleased,
    PaymentReleased,
    RefundIssued,
)
from statemachine.replay import replay, to_json
from statemachine.testing import LifecycleCoverage, histories
from statemachine.testing import given as story

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
T0 = "2026-03-01T10:00:00Z"


# -- (a) generated histories -------------------------------------------------------------
def money_is_conserved(domain: Domain, events: list[dict]) -> None:
    """Every promotion: charged + released == held, never charged above the hold; every
    order: refunded + paid out never above its fee, exactly its fee once settled."""
    engine = Engine(domain)
    effects = []
    engine.subscribe(lambda outcome: effects.extend(outcome.effects))
    for event in events:
        engine.apply(event)  # valid by construction: a rejection fails the property
    held: dict[str, Decimal] = defaultdict(Decimal)
    out: dict[str, Decimal] = defaultdict(Decimal)
    charged: dict[str, Decimal] = defaultdict(Decimal)
    for effect in effects:
        if isinstance(effect, HoldPlaced):
            held[effect.promotion] += effect.amount
        elif isinstance(effect, HoldReleased | Charged):
            assert effect.amount > 0, f"a non-positive {effect.name}: {effect}"
            out[effect.promotion] += effect.amount
            if isinstance(effect, Charged):
                charged[effect.promotion] += effect.amount
        elif isinstance(effect, RefundIssued | PaymentReleased):
            out[effect.order] += effect.amount
    for subject, entity in engine.runtime.entities.items():
        if entity.lifecycle.startswith("promotion"):
            assert charged[subject] <= held[subject], f"{subject} charged more than held"
            if entity.state in ("not_approved", "turned_off", "completed"):
                assert out[subject] == held[subject], f"{subject}: {out[subject]} of {held[subject]}"
        elif entity.lifecycle == "order":
            assert out[subject] <= entity.data["fee"]
            if entity.state in ("approved", "deemed_approved", "expired", "cancelled"):
                assert out[subject] == entity.data["fee"], f"{subject}: {out[subject]}"


def conservation_property(domain: Domain, examples: int, phases=tuple(Phase), seen: list | None = None):
    """``seen``, when given, keeps the events of the latest example run (the failing one, last)."""

    @settings(max_examples=examples, database=None, derandomize=True, deadline=None, phases=phases,
              report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow])
    @given(histories(domain, max_events=25))
    def prop(events: list[dict]) -> None:
        if seen is not None:
            seen[:] = events
        money_is_conserved(domain, events)

    return prop


def test_generated_histories_conserve_money_on_our_lifecycles() -> None:
    conservation_property(DOMAIN, 60)()


@settings(max_examples=30, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(DOMAIN, max_events=20))
def test_a_generated_history_is_valid_and_replays_to_the_same_states(events: list[dict]) -> None:
    engine = Engine()
    for event in events:
        assert not engine.apply(event).duplicate
    lines = b"\n".join(orjson.dumps(e) for e in events)
    report = replay(io.BytesIO(lines))
    assert report.rejected == () and report.applied == len(events)
    assert dict(report.entities) == {s: e.state for s, e in engine.runtime.entities.items()}
    assert to_json(report) == to_json(replay(io.BytesIO(lines)))


def _without_budget_check() -> Domain:
    """PROMOTION with the bug planted: a spend is no longer checked against the budget."""
    transitions = tuple(
        attrs.evolve(t, guards=tuple(g for g in t.guards if g != "within_budget"))
        if t.trigger == "spend" else t for t in PROMOTION.transitions)
    broken = attrs.evolve(PROMOTION, name="promotion_broken", transitions=transitions,
                          guards=tuple(g for g in PROMOTION.guards if g.name != "within_budget"))
    return Domain(lifecycles=(broken,))


def test_the_strategy_finds_a_planted_bug_in_a_broken_copy() -> None:
    """Found without shrinking (shrinking a walk through a model is hypothesis's slow part:
    seconds for most seeds, minutes for a few): a spend over the budget is in the story."""
    broken = _without_budget_check()
    story: list[dict] = []  # hypothesis's own note is worded by whichever plugins are loaded
    with pytest.raises(AssertionError, match=r"charged more than held|a non-positive HoldReleased"):
        conservation_property(broken, 200, phases=(Phase.explicit, Phase.generate), seen=story)()
    types = {event["type"] for event in story}
    assert {"promotion.created", "promotion.spent"} <= types, story


def test_the_same_property_holds_on_the_real_promotion() -> None:
    conservation_property(Domain(lifecycles=(PROMOTION,)), 100)()


def test_a_parser_without_values_is_named_up_front() -> None:
    if str(ROOT) not in sys.path:  # examples/ is not installed: import it from the checkout
        sys.path.insert(0, str(ROOT))
    from examples.support_request import DOMAIN as SUPPORT

    with pytest.raises(ValueError, match=r"no values for data.influencers of agreement.signed "
                                         r"\(parser 'influencer_ids'\): pass values="):
        histories(SUPPORT)


# -- (b) given / when / then ---------------------------------------------------------------
PROJECT = {"type": "project.created", "subject": "project/P-1", "time": T0,
           "data": {"kind": "creator", "currency": "USD", "deadline": "2026-04-01T00:00:00Z"}}
ORDER = {"type": "order.agreed", "subject": "order/O-1",
         "data": {"project": "P-1", "fee": "250.00", "review": "manual"}}


def test_given_when_then_on_an_order() -> None:
    outcome = story(PROJECT, ORDER, {"type": "order.submitted", "subject": "order/O-1"}).when(
        {"type": "order.approved", "subject": "order/O-1"}).then(
        state="approved", effects=[PaymentReleased(cause="w1", time=outcome_time(), order="order/O-1",
                                                   amount=Decimal("250.00"), currency="USD")])
    assert outcome.cause == "w1"


def outcome_time():
    from statemachine.timeutil import parse_instant

    return parse_instant("2026-03-01T10:03:00Z")  # three numbered minutes after T0


def test_refused_with_the_reason_and_the_guard() -> None:
    rejection = story(PROJECT).when({"type": "order.agreed", "subject": "order/O-1",
                                     "data": {"project": "P-1", "fee": "0", "review": "auto"}}).refused(
        "the fee must be > 0", guard="fee_valid")
    assert isinstance(rejection, TransitionRefused)


def test_scenarios_fail_with_what_happened() -> None:
    with pytest.raises(AssertionError, match=r"given event 2 \(order.agreed order/O-1\) was rejected: "
                                             r"order/O-1: cannot create: project/P-9 does not exist"):
        story(PROJECT, {**ORDER, "data": {**ORDER["data"], "project": "P-9"}})
    when = story(PROJECT, ORDER).when({"type": "order.started", "subject": "order/O-1"})
    with pytest.raises(AssertionError, match="order/O-1 is in_progress, not submitted"):
        when.then(state="submitted")
    with pytest.raises(AssertionError, match=r"effects differ: expected \['PaymentReleased'\], got \[\]"):
        when.then(effects=["PaymentReleased"])
    with pytest.raises(AssertionError, match=r"data.fee is Decimal\('250.00'\), not '250'"):
        when.then(data={"fee": "250"})
    with pytest.raises(AssertionError, match=r"applied \(now in_progress\), expected a refusal"):
        when.refused()
    refused = story(PROJECT, ORDER).when({"type": "order.approved", "subject": "order/O-1"})
    with pytest.raises(AssertionError, match="was refused, not applied: order/O-1: cannot approve"):
        refused.then(state="approved")
    with pytest.raises(AssertionError, match="refused for another reason"):
        refused.refused("budget")
    with pytest.raises(AssertionError, match="refused by guard None, not 'x'"):
        refused.refused(guard="x")


def test_a_refusal_after_a_timer_fired_is_judged_on_the_event_alone() -> None:
    """The 14-day timer fires before the late event is judged: not a change by it."""
    base = story(PROJECT, ORDER, {"type": "order.submitted", "subject": "order/O-1",
                                  "time": "2026-03-02T10:00:00Z"})
    base.when({"type": "order.rejected", "subject": "order/O-1",
               "time": "2026-03-20T10:00:00Z"}).refused("cannot reject in state deemed_approved")


# -- (c) lifecycle coverage ----------------------------------------------------------------
def test_coverage_counts_edges_guards_held_and_guards_seen_false() -> None:
    original = Runtime.__init__  # (pytest --lifecycle-coverage may have wrapped it already)
    coverage = LifecycleCoverage(DOMAIN.lifecycles)
    coverage.install()
    try:
        with open(EXAMPLE, "rb") as stream:
            replay(stream)
    finally:
        coverage.uninstall()
    assert Runtime.__init__ is original
    order = coverage.tallies["order"]
    assert ("__initial__", "create", "agreed") in order.taken
    assert "fee_valid" in order.guards_held()
    assert "auto_review" in order.refused  # a manual order set the auto branch aside
    promotion = coverage.tallies["promotion"]
    assert "within_budget" in promotion.refused  # the example's spend over the budget
    table = coverage.table()
    assert table.splitlines()[0].split() == ["lifecycle", "transitions", "edges", "guards", "held",
                                             "guards", "false", "cover"]
    assert [line.split()[0] for line in table.splitlines()[1:len(OURS) + 1]] == OURS
    # Uninstalled: new runtimes are no longer watched.
    creator = set(coverage.tallies["project_creator"].taken)
    coverage.tallies["project_creator"].taken.clear()
    Engine().apply({"id": "x", "time": T0, **PROJECT})
    assert coverage.tallies["project_creator"].taken == set() and creator


def test_coverage_of_a_refusal_is_counted_for_the_lifecycles_that_could_make_it() -> None:
    coverage = LifecycleCoverage()
    coverage.install()
    try:
        story(PROJECT).when({"type": "order.agreed", "subject": "order/O-1",
                             "data": {"project": "P-1", "fee": "-1", "review": "auto"}}).refused()
    finally:
        coverage.uninstall()
    assert coverage.tallies["order"].refused == {"fee_valid"}
    assert coverage.tallies["promotion"].refused == set()
    assert coverage.below(100) == OURS


# Every lifecycle of our domain, as the coverage table sorts them.
OURS = sorted(lifecycle.name for lifecycle in DOMAIN.lifecycles)

PLUGIN_TEST = '''
from statemachine import Engine

def test_a_project() -> None:
    Engine().apply({"id": "e1", "time": "2026-03-01T10:00:00Z", "type": "project.created",
                    "subject": "project/P-1", "data": {"kind": "creator", "currency": "USD",
                                                       "deadline": "2026-04-01T00:00:00Z"}})
'''


def _pytest(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_plugin_story.py").write_text(PLUGIN_TEST)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path / "test_plugin_story.py"), *options],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)


def test_the_plugin_is_registered_and_prints_the_table(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--lifecycle-coverage")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lifecycle coverage: declared transitions taken" in result.stdout
    assert "project_creator          1/6    1/6          1/4           0/4   17 %" in result.stdout
    assert "project_creator: never took active --complete--> completed" in result.stdout
    quiet = _pytest(tmp_path)
    assert "lifecycle coverage" not in quiet.stdout


def test_the_plugin_fails_a_run_under_the_floor_and_reports_only_the_domain(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--lifecycle-coverage-domain", "statemachine.lifecycles:DOMAIN",
                     "--lifecycle-coverage-fail-under", "100")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert f"FAIL: lifecycle coverage under 100 % for {', '.join(OURS)}" in result.stdout
    assert re.search(r"^order +0/12 +0/17 ", result.stdout, re.M)  # listed though no test ran it
    fine = _pytest(tmp_path, "--lifecycle-coverage-domain", "statemachine.lifecycles:DOMAIN",
                   "--lifecycle-coverage-fail-under", "0")
    assert fine.returncode == 0, fine.stdout
    bad = _pytest(tmp_path, "--lifecycle-coverage-domain", "nowhere_at_all:DOMAIN")
    assert bad.returncode == 4
    assert "--lifecycle-coverage-domain nowhere_at_all:DOMAIN: cannot import nowhere_at_all" in bad.stderr
