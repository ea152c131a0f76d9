"""Step functions generated from a compiled lifecycle (as ``attrs`` writes ``__init__``).

Why: the interpreter (:meth:`Runtime._step <statemachine.engine.runtime.Runtime._step>`)
looks up the candidates of ``(state, trigger)``, loops over them and their guards with
a memo, loops over the actions' items and the destination's timers, for every event.
All of that is known when the declaration is compiled. So each ``(lifecycle, state,
trigger)`` gets one plain Python function that does exactly what the interpreter would
do for it, with the loops unrolled:

* the candidates in declared order, guards called directly; consecutive candidates
  that share a prefix of guards evaluate it once (nested ``if``), and a guard tested at
  more than one place keeps its answer in a local;
* the chosen candidate's actions, each item sorted into data changes, sends and
  effects as the interpreter sorts them;
* the destination's timers armed from the new data, and the new entity record built.

A refusal (no candidate's guards all hold, the rare path) is explained by the
interpreter's own ``_choose`` over the same candidates: guards are pure, so asking
them again gives the same answers, and the message and guard are the reference ones.

The declaration stays the single source of truth: nothing here is written by hand
for a particular lifecycle. The generated module of each lifecycle is registered in
:mod:`linecache` under ``<statemachine generated NAME>`` before it is compiled, so
tracebacks and :func:`inspect.getsource` show the generated lines; its text is kept on
the compiled lifecycle (``compiled.source``). Guards, actions and timer functions are
injected into the module's globals as ``__guard_<name>``, ``__action_<name>``,
``__due_<name>`` and ``__cause_<name>``. The runtime's plain interpreter stays as the
reference (``Runtime(..., interpret=True)``); a differential test replays random logs
through both.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from .effects import Assign, Effect, Send

if TYPE_CHECKING:
    from .compiler import CompiledLifecycle, CompiledTransition

__all__ = ["StepFunction", "generate", "step_name"]

#: ``step(view, entity, params, cause, time) -> (new entity, effects, sends or None)``.
#: ``view`` is what the context reads other entities through (``get``, ``children``).
StepFunction = Callable[..., tuple[Any, list[Any] | tuple[()], list[Any] | None]]

_NOT_IDENTIFIER = re.compile(r"\W|^(?=\d)", re.ASCII)


def _ident(text: str) -> str:
    """A readable identifier for a declared name (names need not be identifiers)."""
    return _NOT_IDENTIFIER.sub("_", text) or "_"


def step_name(lifecycle: str, state: str, trigger: str) -> str:
    """``step__order__submitted__approve``: the name a generated function is given
    (before a numeric suffix that keeps two sanitised names apart)."""
    return f"step__{_ident(lifecycle)}__{_ident(state)}__{_ident(trigger)}"


class _Names:
    """Unique global names for injected objects, readable from the declared names."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self._by_key: dict[tuple[str, str], str] = {}

    def inject(self, prefix: str, name: str, value: Any) -> str:
        key = (prefix, name)
        found = self._by_key.get(key)
        if found is not None:
            return found
        base = f"__{prefix}_{_ident(name)}"
        candidate, n = base, 1
        while candidate in self.namespace:
            n += 1
            candidate = f"{base}_{n}"
        self.namespace[candidate] = value
        self._by_key[key] = candidate
        return candidate


def _assign(evolve: Callable[[Any, Mapping[str, Any]], Any]) -> Callable[[Any, Mapping[str, Any], str], Any]:
    def assign(data: Any, changes: Mapping[str, Any], action: str) -> Any:
        try:
            return evolve(data, changes)
        except TypeError as exc:  # a name the lifecycle's data does not declare
            raise TypeError(f"action {action}: {exc}") from None
    return assign


def _returned(action: str, item: Any) -> TypeError:
    return TypeError(f"action {action} returned {item!r}")


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


def _function(compiled: CompiledLifecycle, state: str, trigger: str,
              candidates: tuple[CompiledTransition, ...], fname: str, names: _Names,
              refuse: str) -> list[str]:
    lc = compiled.declaration
    w = _Writer()
    # Where each guard is tested: a guard tested at more than one place keeps its answer.
    sites: dict[str, int] = {}
    _count_sites([c.declaration.guards for c in candidates], 0, sites)
    memo = {g: f"_g{i}" for i, g in enumerate(g for g, n in sites.items() if n > 1)}
    needs_ctx = any(c.guards or c.actions for c in candidates)
    w(0, f"def {fname}(view, entity, params, cause, time):")
    w(1, f"# {lc.name}: {state!r} --{trigger!r}--> "
         + " | ".join(repr(c.dest) for c in candidates))
    for c in candidates:
        t = c.declaration
        number = lc.transitions.index(t) + 1
        w(1, f"#   transition {number} of {lc.name}: {t.trigger!r} {list(t.sources)!r} -> "
             f"{t.dest!r} guards={list(t.guards)!r} actions={[a.name for a in c.actions]!r}")
    if needs_ctx:
        w(1, f"ctx = __Context(view, entity, entity.subject, entity.data, __lifecycle, "
             f"{trigger!r}, params, cause, time)")
    for var in memo.values():
        w(1, f"{var} = None")
    indexed = list(enumerate(candidates))
    done = _tree(w, 1, indexed, 0, compiled, names, memo)
    if not done:
        cands = names.inject("candidates", f"{state}__{trigger}", candidates)
        w(1, f"raise {refuse}(ctx, {cands})")
    return w.lines


def _count_sites(guard_lists: list[tuple[str, ...]], depth: int, sites: dict[str, int]) -> None:
    """Count the test sites the nested-if layout of :func:`_tree` makes for each guard."""
    i = 0
    while i < len(guard_lists):
        guards = guard_lists[i]
        if len(guards) == depth:
            return
        group = _run(guard_lists, i, depth)
        sites[guards[depth]] = sites.get(guards[depth], 0) + 1
        _count_sites(guard_lists[i:i + group], depth + 1, sites)
        i += group


def _run(guard_lists: list[tuple[str, ...]], start: int, depth: int) -> int:
    """How many consecutive candidates from ``start`` test the same guard at ``depth``."""
    guard = guard_lists[start][depth]
    n = 1
    while (start + n < len(guard_lists) and len(guard_lists[start + n]) > depth
           and guard_lists[start + n][depth] == guard):
        n += 1
    return n


def _tree(w: _Writer, depth: int, cands: list[tuple[int, CompiledTransition]], level: int,
          compiled: CompiledLifecycle, names: _Names, memo: dict[str, str]) -> bool:
    """Emit the candidates (which share their first ``level`` guards) in declared order.

    Returns True when a candidate is taken unconditionally (the code after is dead)."""
    guard_lists = [c.declaration.guards for _, c in cands]
    i = 0
    while i < len(cands):
        candidate = cands[i][1]
        if len(guard_lists[i]) == level:
            _leaf(w, depth, candidate, compiled, names)
            return True
        group = _run(guard_lists, i, level)
        guard = candidate.guards[level]
        test = names.inject("guard", guard.name, guard.test)
        var = memo.get(guard.name)
        if var is None:
            w(depth, f"if {test}(ctx):")
        else:
            w(depth, f"if ({var} if {var} is not None else ({var} := bool({test}(ctx)))):")
        _tree(w, depth + 1, cands[i:i + group], level + 1, compiled, names, memo)
        i += group
    return False


def _leaf(w: _Writer, depth: int, candidate: CompiledTransition, compiled: CompiledLifecycle,
          names: _Names) -> None:
    """The chosen candidate: run its actions, arm the destination's timers, build the
    new entity, return it with the effects and sends."""
    dest = candidate.dest
    w(depth, f"# -> {dest!r}")
    if candidate.actions:
        w(depth, "data = entity.data")
        w(depth, "effects = []")
        w(depth, "sends = None")
        for action in candidate.actions:
            run = names.inject("action", action.name, action.run)
            w(depth, f"for item in {run}(ctx):")
            # The common item first, by its exact type (one identity test, no call);
            # a record's data is replaced in C, the wrapper (undeclared name) only on error.
            w(depth + 1, "if type(item) is __Assign:")
            if compiled.record is not None:
                w(depth + 2, "try:")
                w(depth + 3, "data = __replace(data, **item.changes)")
                w(depth + 2, "except TypeError:")
                w(depth + 3, f"data = __assign(data, item.changes, {action.name!r})")
            else:
                w(depth + 2, f"data = __assign(data, item.changes, {action.name!r})")
            w(depth + 1, "elif isinstance(item, __Effect):")
            w(depth + 2, "effects.append(item)")
            w(depth + 1, "elif isinstance(item, __Assign):")
            w(depth + 2, f"data = __assign(data, item.changes, {action.name!r})")
            w(depth + 1, "elif isinstance(item, __Send):")
            w(depth + 2, "if sends is None:")
            w(depth + 3, "sends = [item]")
            w(depth + 2, "else:")
            w(depth + 3, "sends.append(item)")
            w(depth + 1, "else:")
            w(depth + 2, f"raise __returned({action.name!r}, item)")
        effects, sends = "effects", "sends"
    else:
        w(depth, "data = entity.data")
        effects, sends = "()", "None"
    specs = compiled.timers_by_state.get(dest) or ()
    if not specs:
        w(depth, "timers = ()")
    else:
        w(depth, "armed = []")
        for spec in specs:
            due = names.inject("due", spec.name, spec.due)
            cause = names.inject("cause", spec.name, spec.cause)
            w(depth, f"due = {due}(data)")
            w(depth, "if due is not None:")
            w(depth + 1, f"armed.append(__ArmedTimer({spec.name!r}, {spec.trigger!r}, due, "
                         f"{cause}(data)))")
        w(depth, "timers = tuple(armed)")
        w(depth, "if timers == entity.timers:")
        w(depth + 1, "timers = entity.timers  # unchanged: the commit need not re-arm")
    w(depth, f"return (__Entity(entity.subject, entity.lifecycle, {dest!r}, data, "
             f"entity.version + 1, timers), {effects}, {sends})")


def _filename(lifecycle: str, source: str) -> str:
    """``<statemachine generated NAME>``, or with a suffix when another script took it.

    An identical script reuses its entry (attrs #826/#828: a search for a free name on
    every compile made class creation 60x slower); a different one gets the next free
    suffix, so a traceback never shows another script's lines."""
    base = f"<statemachine generated {lifecycle}"
    n = 1
    while True:
        name = f"{base}>" if n == 1 else f"{base}-{n}>"
        entry: Any = linecache.cache.get(name)
        if entry is None or "".join(entry[2]) == source:
            return name
        n += 1


def generate(compiled: CompiledLifecycle, *, entity: type, context: type, armed_timer: type,
             refuse: Callable[..., Any]) -> tuple[str, dict[tuple[str, str], StepFunction]]:
    """The generated source of ``compiled`` and its step functions by ``(state, trigger)``.

    ``entity``, ``context`` and ``armed_timer`` are the runtime's record types and
    ``refuse(ctx, candidates)`` raises the reference refusal; passed in (not imported)
    so that this module stays below the runtime.
    """
    lc = compiled.declaration
    names = _Names()
    ns = names.namespace
    ns.update({
        "__Entity": entity, "__Context": context, "__ArmedTimer": armed_timer,
        "__Effect": Effect, "__Assign": Assign, "__Send": Send,
        "__assign": _assign(compiled.evolve), "__returned": _returned,
        "__lifecycle": lc, "__refuse": refuse, "__replace": msgspec.structs.replace,
    })
    lines = [
        f"# Step functions of lifecycle {lc.name!r} ({lc.title}), generated by",
        "# statemachine.engine.codegen from its declaration: change the declaration, not this.",
        "# One function per (state, trigger): candidates in declared order, then the chosen",
        "# one's actions and the destination's timers; a refusal is explained by the interpreter.",
        "",
    ]
    functions: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for (state, trigger), candidates in compiled.table.items():
        fname = step_name(lc.name, state, trigger)
        base, n = fname, 1
        while fname in taken:
            n += 1
            fname = f"{base}_{n}"
        taken.add(fname)
        functions[(state, trigger)] = fname
        lines += _function(compiled, state, trigger, candidates, fname, names, "__refuse")
        lines.append("")
    source = "\n".join(lines)
    filename = _filename(lc.name, source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), ns)  # our own generated source
    steps = {key: ns[fname] for key, fname in functions.items()}
    return source, steps


def sources(compiled: Iterable[CompiledLifecycle]) -> str:
    """Every generated module, one after the other (for reading)."""
    return "\n".join(c.source for c in compiled)
