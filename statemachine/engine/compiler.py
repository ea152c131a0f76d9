"""Compile a declaration once: check it, build its ``transitions`` machine, derive a table.

Compiling happens once per lifecycle, never per entity. The result holds:

* ``machine``: one shared ``transitions.Machine(model=None)`` built from the
  declaration (the library's documented pattern for many models). It is the reference
  semantics of which trigger leaves which state, and what peers and tools understand.
* ``table``: ``(state, trigger) -> candidates``, derived *from that machine's events*
  in the machine's own order, with guards and actions resolved to functions. The
  runtime dispatches through the table: one dict lookup instead of building an
  ``EventData`` per trigger, so entities stay small records and never carry a machine.

``transitions`` accepts some inconsistencies silently (an unknown destination state,
for one), so the declaration is checked here first, with errors that name the
lifecycle and the offending item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
from transitions import Machine

from .declaration import INITIAL, Action, Guard, Input, Lifecycle, Timer, Transition
from .errors import DeclarationError
from .record import Record, check_fields, record_type

__all__ = ["CompiledLifecycle", "CompiledTransition", "compile_lifecycle"]


@attrs.frozen
class CompiledTransition:
    """One candidate for ``(state, trigger)``: guards in order, then actions
    (the transition's own, then the destination's entry actions)."""

    declaration: Transition
    dest: str
    guards: tuple[Guard, ...]
    actions: tuple[Action, ...]
    #: The guards' test functions, resolved once: what the runtime calls.
    tests: tuple[Callable[[Any], bool], ...] = attrs.field(eq=False, repr=False, default=())


@attrs.frozen
class CompiledLifecycle:
    declaration: Lifecycle
    machine: Machine = attrs.field(eq=False, repr=False)
    table: Mapping[tuple[str, str], tuple[CompiledTransition, ...]]
    timers_by_state: Mapping[str, tuple[Timer, ...]]
    inputs: Mapping[str, Input]
    #: The record class of the declared data (``None``: the lifecycle keeps dicts).
    record: type[Record] | None = attrs.field(default=None, eq=False, repr=False)
    #: The data a new entity starts with (shared: data is never mutated).
    empty_data: Mapping[str, Any] = attrs.field(init=False, eq=False, repr=False)
    #: ``evolve(data, changes)``: new data with ``changes`` assigned.
    evolve: Callable[[Any, Mapping[str, Any]], Mapping[str, Any]] = attrs.field(
        init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        record = self.record
        object.__setattr__(self, "empty_data", _NO_DATA if record is None else record.empty)
        object.__setattr__(self, "evolve", _merge if record is None else record.evolve)

    def coerce(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """``data`` (a store's dict, say) in this lifecycle's representation."""
        return data if self.record is None else self.record.of(data)

    @property
    def name(self) -> str:
        return self.declaration.name

    def triggers(self, state: str, *, include_internal: bool = False) -> list[str]:
        """The triggers that leave ``state`` (guards not evaluated), sorted."""
        return sorted(
            {
                trigger
                for (source, trigger), cands in self.table.items()
                if source == state
                and (include_internal or any(not c.declaration.internal for c in cands))
            }
        )


_NO_DATA: Mapping[str, Any] = MappingProxyType({})


def _merge(data: Mapping[str, Any], changes: Mapping[str, Any]) -> Mapping[str, Any]:
    return {**data, **changes}


def _check(lc: Lifecycle) -> None:
    where = f"lifecycle {lc.name!r}"
    try:
        check_fields(lc.name, lc.data)
    except ValueError as exc:
        raise DeclarationError(str(exc)) from None
    names = [s.name for s in lc.states]
    if len(set(names)) != len(names):
        raise DeclarationError(f"{where}: duplicate state names")
    if INITIAL in names:
        raise DeclarationError(f"{where}: {INITIAL!r} is reserved for the pseudo-state")
    states = set(names)
    guards = {g.name for g in lc.guards}
    actions = {a.name for a in lc.actions}
    if len(guards) != len(lc.guards) or len(actions) != len(lc.actions):
        raise DeclarationError(f"{where}: duplicate guard or action names")
    finals = {s.name for s in lc.states if s.final}
    used_guards: set[str] = set()
    used_actions: set[str] = set()
    for state in lc.states:
        for action in state.on_enter:
            if action not in actions:
                raise DeclarationError(f"{where}: state {state.name!r} enters unknown action {action!r}")
            used_actions.add(action)
    if not any(INITIAL in t.sources for t in lc.transitions):
        raise DeclarationError(f"{where}: no creating transition (from INITIAL)")
    for t in lc.transitions:
        label = f"{where}: transition {t.trigger!r} {list(t.sources)} -> {t.dest!r}"
        if not t.sources:
            raise DeclarationError(f"{label}: no source state")
        for source in t.sources:
            if source != INITIAL and source not in states:
                raise DeclarationError(f"{label}: unknown source state {source!r}")
            if source in finals:
                raise DeclarationError(f"{label}: leaves the final state {source!r}")
        if INITIAL in t.sources and len(t.sources) > 1:
            raise DeclarationError(f"{label}: a creating transition has INITIAL as its only source")
        if t.dest not in states:
            raise DeclarationError(f"{label}: unknown destination state {t.dest!r}")
        for guard in t.guards:
            if guard not in guards:
                raise DeclarationError(f"{label}: unknown guard {guard!r}")
            used_guards.add(guard)
        for action in t.actions:
            if action not in actions:
                raise DeclarationError(f"{label}: unknown action {action!r}")
            used_actions.add(action)
    if unused := (guards - used_guards) | (actions - used_actions):
        raise DeclarationError(f"{where}: declared but never used: {sorted(unused)}")
    triggers = {t.trigger for t in lc.transitions}
    internal = {t.trigger for t in lc.transitions if t.internal}
    for timer in lc.timers:
        if timer.trigger not in internal:
            raise DeclarationError(
                f"{where}: timer {timer.name!r} fires {timer.trigger!r}, not an internal trigger"
            )
        if unknown := set(timer.states) - states:
            raise DeclarationError(f"{where}: timer {timer.name!r} armed in unknown {sorted(unknown)}")
    for inp in lc.inputs:
        if inp.trigger not in triggers:
            raise DeclarationError(f"{where}: input {inp.type!r} fires unknown trigger {inp.trigger!r}")
        if inp.trigger in internal:
            raise DeclarationError(f"{where}: input {inp.type!r} fires internal trigger {inp.trigger!r}")
    # Every state must be reachable from the creation, or the declaration has a hole.
    seen = {INITIAL}
    todo = deque([INITIAL])
    while todo:
        here = todo.popleft()
        for t in lc.transitions:
            if here in t.sources and t.dest not in seen:
                seen.add(t.dest)
                todo.append(t.dest)
    if unreachable := states - seen:
        raise DeclarationError(f"{where}: unreachable states {sorted(unreachable)}")


def _machine(lc: Lifecycle) -> Machine:
    return Machine(
        model=None,
        states=[INITIAL, *(s.name for s in lc.states)],
        initial=INITIAL,
        transitions=[
            {
                "trigger": t.trigger,
                "source": list(t.sources),
                "dest": t.dest,
                "conditions": list(t.guards),
            }
            for t in lc.transitions
        ],
        auto_transitions=False,
        send_event=True,
    )


def _compiled(t: Transition, guards: tuple[Guard, ...], actions: tuple[Action, ...]) -> CompiledTransition:
    return CompiledTransition(declaration=t, dest=t.dest, guards=guards, actions=actions,
                              tests=tuple(g.test for g in guards))


def compile_lifecycle(lc: Lifecycle) -> CompiledLifecycle:
    """Check ``lc`` and compile it; raises :class:`DeclarationError` when inconsistent."""
    _check(lc)
    machine = _machine(lc)
    guards = {g.name: g for g in lc.guards}
    actions = {a.name: a for a in lc.actions}
    entry = {s.name: tuple(actions[a] for a in s.on_enter) for s in lc.states}
    table: dict[tuple[str, str], tuple[CompiledTransition, ...]] = {}
    for trigger, event in machine.events.items():
        for source, machine_transitions in event.transitions.items():
            declared = [t for t in lc.transitions if t.trigger == trigger and source in t.sources]
            if [m.dest for m in machine_transitions] != [t.dest for t in declared]:
                raise DeclarationError(f"lifecycle {lc.name!r}: machine and declaration disagree")
            table[(source, trigger)] = tuple(
                _compiled(t, tuple(guards[g] for g in t.guards),
                          tuple(actions[a] for a in t.actions)
                          + (entry[t.dest] if t.dest != source else ()))
                for t in declared
            )
    timers_by_state = {
        s.name: tuple(t for t in lc.timers if s.name in t.states) for s in lc.states
    }
    return CompiledLifecycle(
        declaration=lc,
        machine=machine,
        table=table,
        timers_by_state=timers_by_state,
        inputs={i.type: i for i in lc.inputs},
        record=record_type(lc.name, lc.data) if lc.data else None,
    )
