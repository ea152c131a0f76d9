"""The engine itself: the compiler's checks, the table it derives from ``transitions``, and
the runtime's guarantees (atomic units of work, conditional transitions, logging, timers).

Tiny domains declared here keep each rule visible without the business lifecycles; the
business domain is used where its shape is what matters (many lifecycles, timers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
import structlog
from helpers import ev
from structlog.testing import capture_logs

from statemachine.api import Engine
from statemachine.engine import (
    INITIAL,
    Action,
    Assign,
    Domain,
    Effect,
    Entity,
    EventRejected,
    Field,
    Guard,
    Input,
    Lifecycle,
    Outcome,
    Runtime,
    Send,
    State,
    Timer,
    Transition,
    TransitionRefused,
    UnknownEntity,
    compile_lifecycle,
)
from statemachine.engine import fields as f
from statemachine.engine.errors import DeclarationError
from statemachine.envelope import to_event
from statemachine.lifecycles import DOMAIN, PaymentReleased
from statemachine.timeutil import parse_instant

T0 = "2026-03-01T10:00:00Z"


def at(**delta: float) -> str:
    """``T0`` plus ``delta`` as RFC 3339 text."""
    return (parse_instant(T0) + timedelta(**delta)).isoformat()


# -- a minimal, valid lifecycle; each declaration test breaks one thing ----------------
def _door() -> Lifecycle:
    return Lifecycle(
        name="door",
        kind="door",
        title="Door",
        states=(State("closed"), State("open"), State("gone", final=True)),
        transitions=(
            Transition("create", (INITIAL,), "closed"),
            Transition("open", ("closed",), "open", guards=("unlocked",), actions=("creak",)),
            Transition("close", ("open",), "closed"),
            Transition("remove", ("closed", "open"), "gone", internal=True),
        ),
        guards=(Guard("unlocked", lambda ctx: True, "the door is locked"),),
        actions=(Action("creak", lambda ctx: ()),),
        timers=(Timer("rot", "remove", ("closed",), lambda data: None, lambda data: "x"),),
        inputs=(Input("door.created", "create"), Input("door.opened", "open"),
                Input("door.closed", "close")),
    )


def test_the_minimal_lifecycle_compiles() -> None:
    compiled = compile_lifecycle(_door())
    assert [c.dest for c in compiled.table[("closed", "open")]] == ["open"]
    assert compiled.triggers("closed") == ["open"]
    assert compiled.triggers("closed", include_internal=True) == ["open", "remove"]


def _broken(**changes: Any) -> Lifecycle:
    return attrs.evolve(_door(), **changes)


_DOOR = _door()
_T = _DOOR.transitions


@pytest.mark.parametrize(("lifecycle", "message"), [
    pytest.param(_broken(transitions=(*_T, Transition("close", ("ajar",), "closed"))),
                 "lifecycle 'door': transition 'close' ['ajar'] -> 'closed': unknown source state 'ajar'",
                 id="unknown-source-state"),
    pytest.param(_broken(transitions=(*_T, Transition("slam", ("open",), "shut"))),
                 "lifecycle 'door': transition 'slam' ['open'] -> 'shut': unknown destination state 'shut'",
                 id="unknown-destination-state"),
    pytest.param(_broken(transitions=(*_T, Transition("slam", ("open",), "closed", guards=("strong",)))),
                 "transition 'slam' ['open'] -> 'closed': unknown guard 'strong'",
                 id="unknown-guard"),
    pytest.param(_broken(transitions=(*_T, Transition("slam", ("open",), "closed", actions=("bang",)))),
                 "transition 'slam' ['open'] -> 'closed': unknown action 'bang'",
                 id="unknown-action"),
    pytest.param(_broken(states=(State("closed", on_enter=("bang",)), *_DOOR.states[1:])),
                 "lifecycle 'door': state 'closed' enters unknown action 'bang'",
                 id="unknown-entry-action"),
    pytest.param(_broken(guards=(*_DOOR.guards, Guard("spare", lambda ctx: True, "no"))),
                 "lifecycle 'door': declared but never used: ['spare']",
                 id="unused-guard"),
    pytest.param(_broken(actions=(*_DOOR.actions, Action("spare", lambda ctx: ()))),
                 "lifecycle 'door': declared but never used: ['spare']",
                 id="unused-action"),
    pytest.param(_broken(transitions=(*_T, Transition("rebuild", ("gone",), "closed"))),
                 "transition 'rebuild' ['gone'] -> 'closed': leaves the final state 'gone'",
                 id="final-state-with-outgoing-transition"),
    pytest.param(_broken(states=(*_DOOR.states, State("ajar"))),
                 "lifecycle 'door': unreachable states ['ajar']",
                 id="unreachable-state"),
    pytest.param(_broken(transitions=_T[1:], inputs=_DOOR.inputs[1:]),
                 "lifecycle 'door': no creating transition (from INITIAL)",
                 id="no-creating-transition"),
    pytest.param(_broken(timers=(Timer("rot", "close", ("open",), lambda d: None, lambda d: "x"),)),
                 "lifecycle 'door': timer 'rot' fires 'close', not an internal trigger",
                 id="timer-fires-external-trigger"),
    pytest.param(_broken(timers=(Timer("rot", "remove", ("ajar",), lambda d: None, lambda d: "x"),)),
                 "lifecycle 'door': timer 'rot' armed in unknown ['ajar']",
                 id="timer-in-unknown-state"),
    pytest.param(_broken(inputs=(*_DOOR.inputs, Input("door.removed", "remove"))),
                 "lifecycle 'door': input 'door.removed' fires internal trigger 'remove'",
                 id="input-fires-internal-trigger"),
    pytest.param(_broken(inputs=(*_DOOR.inputs, Input("door.painted", "paint"))),
                 "lifecycle 'door': input 'door.painted' fires unknown trigger 'paint'",
                 id="input-fires-unknown-trigger"),
    pytest.param(_broken(states=(*_DOOR.states, State("open"))),
                 "lifecycle 'door': duplicate state names",
                 id="duplicate-state"),
    pytest.param(_broken(states=(*_DOOR.states, State(INITIAL))),
                 "is reserved for the pseudo-state",
                 id="reserved-initial-name"),
    pytest.param(_broken(transitions=(*_T, Transition("slam", (), "closed"))),
                 "transition 'slam' [] -> 'closed': no source state",
                 id="no-source"),
    pytest.param(_broken(transitions=(*_T, Transition("create", (INITIAL, "open"), "closed"))),
                 "a creating transition has INITIAL as its only source",
                 id="creation-with-other-sources"),
])
def test_the_compiler_rejects_bad_declarations(lifecycle: Lifecycle, message: str) -> None:
    with pytest.raises(DeclarationError) as info:
        compile_lifecycle(lifecycle)
    assert message in str(info.value)


def test_a_runtime_refuses_a_bad_declaration_at_construction() -> None:
    with pytest.raises(DeclarationError, match="unreachable states"):
        Runtime(Domain(lifecycles=(_broken(states=(*_DOOR.states, State("ajar"))),)))


# -- the table is derived from the transitions Machine ---------------------------------
_ALL = [*DOMAIN.lifecycles, _DOOR]


@pytest.mark.parametrize("lifecycle", _ALL, ids=lambda lc: lc.name)
def test_the_table_has_exactly_the_machines_triggers(lifecycle: Lifecycle) -> None:
    compiled = compile_lifecycle(lifecycle)
    machine = compiled.machine
    for state in (INITIAL, *(s.name for s in lifecycle.states)):
        in_table = {trigger for (source, trigger) in compiled.table if source == state}
        assert in_table == set(machine.get_triggers(state)), state
        for trigger in in_table:
            # same candidates, same order (the first whose guards hold wins)
            dests = [m.dest for m in machine.events[trigger].transitions[state]]
            assert [c.dest for c in compiled.table[(state, trigger)]] == dests
            conditions = [[c.func for c in m.conditions]
                          for m in machine.events[trigger].transitions[state]]
            assert [[g.name for g in c.guards] for c in compiled.table[(state, trigger)]] == conditions


@pytest.mark.parametrize("lifecycle", _ALL, ids=lambda lc: lc.name)
def test_final_states_accept_no_trigger(lifecycle: Lifecycle) -> None:
    compiled = compile_lifecycle(lifecycle)
    for state in lifecycle.states:
        if state.final:
            assert compiled.machine.get_triggers(state.name) == []
            assert compiled.triggers(state.name, include_internal=True) == []


# -- entities are small records; one shared machine per lifecycle ---------------------
def _project(id: str = "p1", subject: str = "project/P", kind: str = "creator",
             time: str = T0, deadline: str | None = None, currency: str = "USD") -> dict[str, Any]:
    return ev(id, time, "project.created", subject, kind=kind, currency=currency,
              deadline=deadline or at(days=30))


def _order(id: str, subject: str, time: str, fee: str = "100.00", review: str = "manual",
           project: str = "P") -> dict[str, Any]:
    return ev(id, time, "order.agreed", subject, project=project, fee=fee, review=review)


def test_entities_are_small_records_sharing_one_machine_per_lifecycle() -> None:
    engine = Engine()
    engine.apply(_project())
    for n in range(5):
        engine.apply(_order(f"o{n}", f"order/O-{n}", at(minutes=n + 1)))
    engine.apply(ev("pr", at(minutes=9), "promotion.created", "promotion/PR", budget="10.00",
                    currency="USD", end=at(days=3)))
    runtime = engine.runtime
    assert len(runtime.entities) == 7
    for entity in runtime.entities.values():
        assert type(entity) is Entity
        assert not hasattr(entity, "__dict__")  # slots: a record, not an object graph
        assert not hasattr(entity, "machine") and not hasattr(entity, "trigger")
        assert isinstance(entity.state, str)
    # one compiled lifecycle (one machine) per declaration, none per entity, no models
    assert set(runtime.compiled) == {lc.name for lc in DOMAIN.lifecycles}
    machines = [c.machine for c in runtime.compiled.values()]
    assert len({id(m) for m in machines}) == len(DOMAIN.lifecycles)
    assert all(m.models == [] for m in machines)
    orders = [e for e in runtime.entities.values() if e.kind == "order"]
    assert {e.lifecycle for e in orders} == {"order"}


# -- a refused event changes nothing and emits nothing ----------------------------------
def _snapshot(engine: Engine) -> tuple[dict[str, Entity], dict[str, list[str]], set[str]]:
    runtime = engine.runtime
    return (dict(runtime.entities), {k: list(v) for k, v in runtime.children.items()},
            set(runtime.applied))


def _unchanged(engine: Engine, before: tuple[dict[str, Entity], dict[str, list[str]], set[str]]) -> None:
    entities, children, applied = before
    runtime = engine.runtime
    assert list(runtime.entities) == list(entities)
    for subject, entity in entities.items():
        assert runtime.entities[subject] is entity, subject
    assert runtime.children == children
    assert set(runtime.applied) == applied


@pytest.mark.parametrize(("envelope", "error", "reason"), [
    (ev("x", at(hours=1), "order.approved", "order/O-1"), TransitionRefused,
     "order/O-1: cannot approve in state agreed"),
    (ev("x", at(hours=1), "order.started", "order/O-9"), UnknownEntity,
     "order/O-9: no such entity (it was never created)"),
    (_order("x", "order/O-1", at(hours=1)), EventRejected,
     "order/O-1: already exists (in state agreed)"),
    (_order("x", "order/O-2", at(hours=1), fee="0"), TransitionRefused,
     "order/O-2: cannot create: the fee must be > 0, not 0"),
    (_order("x", "order/O-2", at(hours=1), fee="1.001"), TransitionRefused,
     "the fee 1.001 has more decimals than USD allows"),
    (_order("x", "order/O-2", at(hours=1), project="Q"), TransitionRefused,
     "project/Q does not exist"),
    (_order("x", "order/O-2", at(hours=1), review="sometimes"), EventRejected,
     "data.review: 'sometimes' is not one of manual, auto"),
    (ev("x", at(hours=1), "project.cancellation_accepted", "project/P", by="provider"),
     TransitionRefused, "project/P: cannot accept_cancellation in state active"),
])
def test_a_refused_event_changes_nothing_and_emits_nothing(
        envelope: dict[str, Any], error: type[EventRejected], reason: str) -> None:
    engine = Engine()
    engine.apply(_project())
    engine.apply(_order("o1", "order/O-1", at(minutes=5)))
    seen: list[Outcome] = []
    engine.subscribe(seen.append)
    before = _snapshot(engine)
    with pytest.raises(error) as info:
        engine.apply(envelope)
    assert reason in info.value.reason
    _unchanged(engine, before)
    assert seen == []


# -- a tiny two-lifecycle domain: a cascade that fails rolls the whole unit back --------
@attrs.frozen(kw_only=True)
class Noted(Effect):
    what: str


def _finish(ctx: Any) -> Iterator[Any]:
    yield Assign({"finished_by": ctx.event_id})
    yield Noted(cause=ctx.event_id, time=ctx.time, what="finished")
    for child in ctx.data["children"]:
        yield Send(f"child/{child}", "stop")


def _stop(ctx: Any) -> Iterator[Any]:
    yield Noted(cause=ctx.event_id, time=ctx.time, what=f"{ctx.subject} stopped")


PARENT = Lifecycle(
    name="parent", kind="parent", title="Parent",
    states=(State("running"), State("done", final=True)),
    transitions=(
        Transition("create", (INITIAL,), "running", actions=("keep",)),
        Transition("finish", ("running",), "done", actions=("finish",)),
    ),
    actions=(
        Action("keep", lambda ctx: [Assign({"children": ctx.params["children"]})]),
        Action("finish", _finish),
    ),
    inputs=(
        Input("parent.created", "create", (Field("children", lambda v: tuple(v)),)),
        Input("parent.finished", "finish"),
    ),
)
CHILD = Lifecycle(
    name="child", kind="child", title="Child",
    states=(State("active"), State("stopped", final=True, on_enter=("say",))),
    transitions=(
        Transition("create", (INITIAL,), "active", actions=("keep",)),
        Transition("stop", ("active",), "stopped", guards=("stoppable",), internal=True),
    ),
    guards=(Guard("stoppable", lambda ctx: ctx.data["stoppable"],
                  lambda ctx: f"{ctx.subject} refuses to stop"),),
    actions=(
        Action("keep", lambda ctx: [Assign({"stoppable": ctx.params["stoppable"]})]),
        Action("say", _stop),
    ),
    inputs=(Input("child.created", "create", (Field("stoppable", f.boolean),)),),
)
FAMILY = Domain(lifecycles=(PARENT, CHILD))


def _family(b_stoppable: bool) -> Runtime:
    runtime = Runtime(FAMILY)
    runtime.apply(to_event(ev("c1", T0, "child.created", "child/A", stoppable=True)))
    runtime.apply(to_event(ev("c2", T0, "child.created", "child/B", stoppable=b_stoppable)))
    runtime.apply(to_event(ev("p1", T0, "parent.created", "parent/X", children=["A", "B"])))
    return runtime


def test_a_cascade_commits_every_step_in_one_outcome() -> None:
    runtime = _family(b_stoppable=True)
    outcome = runtime.apply(to_event(ev("fin", at(hours=1), "parent.finished", "parent/X")))
    assert [(s.subject, s.source, s.dest) for s in outcome.steps] == [
        ("parent/X", "running", "done"), ("child/A", "active", "stopped"),
        ("child/B", "active", "stopped")]
    assert [e.what for e in outcome.effects] == ["finished", "child/A stopped", "child/B stopped"]
    assert all(e.cause == "fin" for e in outcome.effects)
    assert runtime.entities["parent/X"].data["finished_by"] == "fin"


def test_a_cascade_failure_rolls_back_the_whole_unit() -> None:
    runtime = _family(b_stoppable=False)
    seen: list[Outcome] = []
    runtime.subscribe(seen.append)
    before = dict(runtime.entities)
    with pytest.raises(TransitionRefused) as info:
        runtime.apply(to_event(ev("fin", at(hours=1), "parent.finished", "parent/X")))
    assert info.value.reason == "child/B: cannot stop in state active: child/B refuses to stop"
    assert info.value.guard == "stoppable"
    # neither the parent (first step) nor child A (second step) committed
    assert runtime.entities == before
    for subject, entity in before.items():
        assert runtime.entities[subject] is entity
    assert runtime.entities["parent/X"].state == "running"
    assert runtime.entities["child/A"].state == "active"
    assert "fin" not in runtime.applied
    assert seen == []


def test_a_send_to_a_missing_entity_rolls_back_too() -> None:
    runtime = Runtime(FAMILY)
    runtime.apply(to_event(ev("c1", T0, "child.created", "child/A", stoppable=True)))
    runtime.apply(to_event(ev("p1", T0, "parent.created", "parent/X", children=["A", "Z"])))
    before = dict(runtime.entities)
    with pytest.raises(UnknownEntity, match="child/Z: no such entity"):
        runtime.apply(to_event(ev("fin", at(hours=1), "parent.finished", "parent/X")))
    assert all(runtime.entities[s] is e for s, e in before.items())
    # the same id may then be sent again once the world allows it
    runtime.apply(to_event(ev("c3", at(hours=2), "child.created", "child/Z", stoppable=True)))
    outcome = runtime.apply(to_event(ev("fin", at(hours=3), "parent.finished", "parent/X")))
    assert outcome.state == "done"


# -- conditional transitions: the first candidate whose guards hold ---------------------
GATE = Lifecycle(
    name="gate", kind="gate", title="Gate",
    states=(State("idle"), State("fast", final=True), State("slow", final=True)),
    transitions=(
        Transition("create", (INITIAL,), "idle"),
        Transition("pass", ("idle",), "fast", guards=("is_vip", "is_paid_vip")),
        Transition("pass", ("idle",), "slow", guards=("is_paid", "is_open")),
    ),
    guards=(
        Guard("is_vip", lambda ctx: ctx.params["vip"], "vip is false"),
        Guard("is_paid_vip", lambda ctx: ctx.params["paid"], "the vip has not paid"),
        Guard("is_paid", lambda ctx: ctx.params["paid"], "not paid"),
        Guard("is_open", lambda ctx: ctx.params["open"], "the gate is closed"),
    ),
    inputs=(
        Input("gate.created", "create"),
        Input("gate.passed", "pass", (Field("vip", f.boolean), Field("paid", f.boolean),
                                      Field("open", f.boolean))),
    ),
)


@pytest.mark.parametrize(("vip", "paid", "open_", "dest"), [
    (True, True, True, "fast"),    # both candidates hold: the first wins
    (True, True, False, "fast"),
    (False, True, True, "slow"),   # the first fails, the second holds
])
def test_a_conditional_transition_takes_the_first_candidate_whose_guards_hold(
        vip: bool, paid: bool, open_: bool, dest: str) -> None:
    runtime = Runtime(Domain(lifecycles=(GATE,)))
    runtime.apply(to_event(ev("g", T0, "gate.created", "gate/G")))
    assert runtime.may("gate/G", "pass", {"vip": vip, "paid": paid, "open": open_}).dest == dest
    outcome = runtime.apply(to_event(ev("p", at(minutes=1), "gate.passed", "gate/G",
                                        vip=vip, paid=paid, open=open_)))
    assert outcome.state == dest == runtime.entities["gate/G"].state


@pytest.mark.parametrize(("vip", "paid", "open_", "reason", "guard"), [
    # candidate 1 passes is_vip then fails (1 guard passed); candidate 2 fails at once
    (True, False, True, "the vip has not paid", "is_paid_vip"),
    # candidate 1 fails at once; candidate 2 passes is_paid then fails: it got further
    (False, True, False, "the gate is closed", "is_open"),
    # a tie (both fail at their first guard): the first candidate's reason
    (False, False, True, "vip is false", "is_vip"),
])
def test_the_refusal_reason_comes_from_the_candidate_that_got_furthest(
        vip: bool, paid: bool, open_: bool, reason: str, guard: str) -> None:
    runtime = Runtime(Domain(lifecycles=(GATE,)))
    runtime.apply(to_event(ev("g", T0, "gate.created", "gate/G")))
    before = runtime.entities["gate/G"]
    decision = runtime.may("gate/G", "pass", {"vip": vip, "paid": paid, "open": open_})
    assert (decision.allowed, decision.reason, decision.guard) == (
        False, f"gate/G: cannot pass in state idle: {reason}", guard)
    with pytest.raises(TransitionRefused) as info:
        runtime.apply(to_event(ev("p", at(minutes=1), "gate.passed", "gate/G",
                                  vip=vip, paid=paid, open=open_)))
    assert info.value.reason == f"gate/G: cannot pass in state idle: {reason}"
    assert info.value.guard == guard
    assert runtime.entities["gate/G"] is before


# -- structlog: every committed transition is logged with its facts ---------------------
@pytest.fixture
def debug_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog entries at DEBUG (the test configuration filters at WARNING)."""
    old = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
                        cache_logger_on_first_use=False)
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(wrapper_class=old["wrapper_class"],
                            cache_logger_on_first_use=old["cache_logger_on_first_use"])


def _transitions(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["entity"], e["event_id"], e["trigger"], e["src"], e["dst"])
            for e in entries if e["event"] == "transition"]


def test_each_committed_transition_is_logged(debug_logs: list[dict[str, Any]]) -> None:
    engine = Engine()
    engine.apply(_project())
    engine.apply(_order("o1", "order/O-1", at(minutes=1)))
    engine.apply(ev("req", at(hours=1), "project.cancellation_requested", "project/P",
                    by="advertiser"))
    with pytest.raises(TransitionRefused):  # refused: not logged as a transition
        engine.apply(ev("bad", at(hours=2), "project.cancellation_accepted", "project/P",
                        by="advertiser"))
    engine.apply(ev("acc", at(hours=3), "project.cancellation_accepted", "project/P",
                    by="provider"))
    assert _transitions(debug_logs) == [
        ("project/P", "p1", "create", INITIAL, "active"),
        ("order/O-1", "o1", "create", INITIAL, "agreed"),
        ("project/P", "req", "request_cancellation", "active", "cancellation_pending"),
        ("project/P", "acc", "accept_cancellation", "cancellation_pending", "cancelled"),
        ("order/O-1", "acc", "cancel", "agreed", "cancelled"),  # the cascade, same cause
    ]
    assert all(e["log_level"] == "debug" for e in debug_logs if e["event"] == "transition")


def test_a_timer_transition_is_logged_with_its_cause(debug_logs: list[dict[str, Any]]) -> None:
    engine = Engine()
    engine.apply(_project())
    engine.apply(_order("o1", "order/O-1", at(minutes=1)))
    engine.apply(ev("sub", at(days=1), "order.submitted", "order/O-1"))
    engine.advance_to(at(days=15))
    last = [e for e in debug_logs if e["event"] == "transition"][-1]
    assert (last["entity"], last["event_id"], last["trigger"], last["src"], last["dst"],
            last["timer"]) == ("order/O-1", "sub", "deem_approve", "submitted", "deemed_approved",
                               "deemed_approval")


# -- subscribers get timer outcomes too --------------------------------------------------
def test_subscribers_get_timer_outcomes() -> None:
    engine = Engine()
    engine.apply(_project())
    engine.apply(_order("o1", "order/O-1", at(minutes=1), fee="250.00"))
    engine.apply(ev("sub", at(days=1), "order.submitted", "order/O-1"))
    seen: list[Outcome] = []
    unsubscribe = engine.subscribe(seen.append)
    assert engine.advance_to(at(days=15, seconds=-1)) == [] and seen == []  # not due yet
    fired = engine.advance_to(at(days=15))
    assert seen == fired and len(seen) == 1
    outcome = seen[0]
    assert (outcome.timer, outcome.cause, outcome.time, outcome.state) == (
        "deemed_approval", "sub", parse_instant(at(days=15)), "deemed_approved")
    [released] = outcome.effects
    assert isinstance(released, PaymentReleased)
    assert (str(released.amount), released.cause, released.time) == (
        "250.00", "sub", parse_instant(at(days=15)))
    # a timer that fires before an event reaches subscribers before that event's outcome
    engine.apply(_project("p2", "project/Q", time=at(days=16), deadline=at(days=20)))
    engine.apply(_order("o2", "order/O-2", at(days=16), project="Q"))
    seen.clear()
    engine.apply(ev("late", at(days=21), "project.created", "project/R", kind="creator",
                    currency="USD", deadline=at(days=40)))
    assert [(o.timer, o.cause) for o in seen] == [("content_deadline", "o2"), (None, "late")]
    unsubscribe()
    engine.advance_to(at(days=60))
    assert len(seen) == 2


def test_stale_timers_are_compacted_and_the_live_ones_still_fire(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resubmission re-arms the 14-day timer and leaves the old heap entry stale.
    The heap is rebuilt once stale entries pass ``COMPACT_AFTER`` and two thirds of the
    heap, so it stays within three times the live timers however long the log; the rebuild loses
    no live timer: each deemed approval fires at its latest submission + 14 days."""
    monkeypatch.setattr(Runtime, "COMPACT_AFTER", 4)
    engine = Engine()
    runtime = engine.runtime
    engine.apply(_project(deadline=at(days=60)))
    orders = [f"order/O-{n}" for n in range(6)]
    for n, subject in enumerate(orders):
        engine.apply(_order(f"a{n}", subject, at(minutes=n)))
    largest = 0
    for round_ in range(12):
        for n, subject in enumerate(orders):
            base = dict(hours=round_ * 2 + 1, minutes=n)
            engine.apply(ev(f"s{round_}-{n}", at(**base), "order.submitted" if round_ == 0
                            else "order.resubmitted", subject))
            if round_ < 11:
                engine.apply(ev(f"r{round_}-{n}", at(**base, seconds=30), "order.rejected", subject))
            largest = max(largest, len(runtime._timers))
    live = sum(len(e.timers) for e in runtime.entities.values())
    assert live == len(orders)  # one deemed-approval timer each
    assert largest <= 3 * (live + len(orders)) + Runtime.COMPACT_AFTER  # ~100 without compaction
    fired = engine.advance_to(at(days=15))
    assert sorted((o.steps[0].subject, o.cause, o.time) for o in fired) == sorted(
        (subject, f"s11-{n}", parse_instant(at(hours=23, minutes=n, days=14)))
        for n, subject in enumerate(orders))


def test_a_restored_record_with_equal_timers_still_fires_them_once() -> None:
    """Heap entries stand for the very timer objects an entity holds: a record restored
    from a store holds equal but new ones, which must be armed (the old entries are
    stale now) and fire once."""
    import msgspec

    engine = Engine()
    engine.apply(_project())
    engine.apply(_order("a", "order/O-1", at(minutes=1)))
    engine.apply(ev("s", at(hours=1), "order.submitted", "order/O-1"))
    runtime = engine.runtime
    entity = runtime.get("order/O-1")
    assert entity is not None and [t.name for t in entity.timers] == ["deemed_approval"]
    copy = msgspec.structs.replace(entity, version=entity.version + 1, timers=tuple(
        msgspec.structs.replace(t) for t in entity.timers))
    assert copy.timers == entity.timers and copy.timers[0] is not entity.timers[0]
    runtime.restore([copy])
    fired = engine.advance_to(at(days=30))
    assert [(o.steps[0].subject, o.timer) for o in fired] == [("order/O-1", "deemed_approval")]


def test_an_entity_keeps_one_subject_string_however_many_events_name_it() -> None:
    """Memory: each event parses its own copy of the subject; the record must keep the
    one the entities dict is keyed by, not the latest copy (one string per entity)."""
    engine = Engine()
    engine.apply(_project())
    engine.apply(_order("a", "order/O-1", at(minutes=1)))
    engine.apply(to_event(_order("b", "".join(["order/", "O-2"]), at(minutes=2))))
    for n, kind in enumerate(("order.submitted", "order.rejected", "order.resubmitted")):
        engine.apply(ev(f"e{n}", at(hours=n + 1), kind, "".join(["order/", "O-1"])))
    runtime = engine.runtime
    for key, entity in runtime.entities.items():
        assert entity.subject is key
    assert all(subject is runtime.entities[subject].subject
               for _, subject, _ in runtime._timers if subject in runtime.entities)
