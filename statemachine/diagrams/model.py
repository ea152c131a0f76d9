"""The graph a diagram draws, extracted from a compiled lifecycle.

Renderers (:mod:`.dot`, :mod:`.mermaid`) never read the declaration themselves: they
draw this model, so Graphviz and Mermaid show exactly the same states and arrows, and
both show what the engine runs. Arrows come from ``compile_lifecycle(lc).table``, the
table the runtime dispatches through, so an arrow's money labels include the
destination's entry actions exactly when the runtime runs them.

The unit of drawing is a :class:`Fork`: one trigger from a set of source states, with
one or more guarded :class:`Branch` es (a conditional transition: the first branch
whose guards hold is taken). Drawn the UML way, several sources meet in a junction
dot and several branches leave a choice diamond, so each label is written once.
:attr:`Diagram.edges` flattens the forks into plain ``source → dest`` edges: what an
entity's path is matched against.

Everything is kept in declaration order, which makes every rendering deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import attrs

from ..engine.compiler import CompiledLifecycle, CompiledTransition, compile_lifecycle
from ..engine.declaration import INITIAL, Lifecycle, Transition

__all__ = ["INITIAL", "Branch", "Diagram", "Edge", "EdgeKind", "Fork", "Node", "build_diagram"]

#: The guard text of a last branch taken whenever the earlier ones are not.
ELSE = "else"


class EdgeKind(StrEnum):
    """How a transition is fired: by an input event, by a timer, or by another entity."""

    EVENT = "event"
    TIMER = "timer"
    INTERNAL = "internal"


@attrs.frozen
class Node:
    """A state. ``initial`` marks the state the creating transition leads to."""

    name: str
    description: str
    final: bool
    group: str | None
    initial: bool


@attrs.frozen
class Branch:
    """Where a fork leads when ``guards`` hold (after the fork's own guards).

    ``effects`` are the non-empty labels of the actions the runtime runs on this
    branch beyond the fork's own (the destination's entry actions included).
    """

    dest: str
    guards: tuple[str, ...]
    effects: tuple[str, ...]
    description: str


@attrs.frozen
class Fork:
    """``trigger`` from ``sources``: guards and effects common to every branch, then
    the branches in the order the runtime tries them.

    ``when`` is the timer text of a timer ("after 14 days", "at content deadline").
    ``ident`` is a stable name for the junction and choice nodes.
    """

    ident: str
    trigger: str
    kind: EdgeKind
    sources: tuple[str, ...]
    guards: tuple[str, ...]
    effects: tuple[str, ...]
    when: str
    description: str
    branches: tuple[Branch, ...]

    @property
    def choice(self) -> bool:
        return len(self.branches) > 1

    @property
    def junction(self) -> bool:
        return len(self.sources) > 1

    def head_label(self) -> str:
        """``trigger (when) [guards] / effects``: the fork's own part of the label."""
        return _label(self.trigger, self.when, self.guards, self.effects)


@attrs.frozen
class Edge:
    """One ``source → dest`` arrow of a fork's branch, with its whole label."""

    source: str
    dest: str
    trigger: str
    kind: EdgeKind
    guards: tuple[str, ...]
    effects: tuple[str, ...]
    when: str
    description: str
    fork: str

    @property
    def label(self) -> str:
        """The one-line label: ``trigger (when) [guard, guard] / money, money``."""
        return _label(self.trigger, self.when, self.guards, self.effects)


def _label(trigger: str, when: str, guards: Sequence[str], effects: Sequence[str]) -> str:
    text = trigger
    if when:
        text += f" ({when})"
    if guards:
        text += f" [{', '.join(guards)}]"
    if effects:
        text += " / " + ", ".join(effects)
    return text


@attrs.frozen
class Diagram:
    """A lifecycle as a graph: ``nodes`` and ``forks`` in declaration order."""

    name: str
    title: str
    description: str
    nodes: tuple[Node, ...]
    forks: tuple[Fork, ...]
    #: Who may send which trigger (``Input.parties``): ``(parties, triggers)`` pairs in
    #: declaration order, triggers grouped by the same parties.
    senders: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()

    @property
    def groups(self) -> tuple[tuple[str, tuple[Node, ...]], ...]:
        """``(group, nodes)`` in order of each group's first state."""
        order: dict[str, list[Node]] = {}
        for node in self.nodes:
            if node.group is not None:
                order.setdefault(node.group, []).append(node)
        return tuple((group, tuple(nodes)) for group, nodes in order.items())

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every ``source → dest`` arrow, whole label included, fork by fork."""
        return tuple(
            Edge(source, branch.dest, fork.trigger, fork.kind,
                 tuple(g for g in fork.guards + branch.guards if g != ELSE),
                 fork.effects + branch.effects, fork.when,
                 "; ".join(d for d in (fork.description, branch.description) if d), fork.ident)
            for fork in self.forks
            for source in fork.sources
            for branch in fork.branches
        )

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"{self.name} has no state {name!r}")

    def fork_of(self, source: str, dest: str, trigger: str) -> tuple[Fork, Branch]:
        """The fork and branch a runtime step took (``KeyError`` when there is none)."""
        for fork in self.forks:
            if fork.trigger == trigger and source in fork.sources:
                for branch in fork.branches:
                    if branch.dest == dest:
                        return fork, branch
        raise KeyError(f"{self.name} has no transition {trigger!r} {source} -> {dest}")


def _timer_text(delay: str, period: object) -> str:
    # A timer with a period runs a duration ("after 14 days"); one without is due at a
    # moment the entity's data names ("at content deadline").
    return f"after {delay}" if period is not None else f"at {delay}"


def _common_prefix(rows: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    prefix: list[str] = []
    for items in zip(*rows, strict=False):
        if len(set(items)) != 1:
            break
        prefix.append(items[0])
    return tuple(prefix)


def build_diagram(lifecycle: Lifecycle | CompiledLifecycle) -> Diagram:
    """The diagram of one lifecycle (compiled here when given a declaration)."""
    compiled = lifecycle if isinstance(lifecycle, CompiledLifecycle) else compile_lifecycle(lifecycle)
    lc = compiled.declaration
    initial = lc.initial
    nodes = tuple(
        Node(s.name, s.description, s.final, s.group, s.name == initial) for s in lc.states
    )
    # Transitions with one trigger and the same sources form one fork (a conditional
    # transition), keyed at the first of them.
    grouped: dict[tuple[str, tuple[str, ...]], list[Transition]] = {}
    for transition in lc.transitions:
        grouped.setdefault((transition.trigger, transition.sources), []).append(transition)
    timers = {
        (state, t.trigger): _timer_text(t.delay or t.name, t.period) for t in lc.timers for state in t.states
    }
    forks: list[Fork] = []
    for (trigger, sources), transitions in grouped.items():
        # Entry actions run only when the destination differs from the source, so a
        # transition that may loop can run other actions from one source than from
        # another: sources that run the same are drawn together.
        parts: dict[tuple[object, ...], list[str]] = {}
        for source in sources:
            parts.setdefault(_signature(compiled, source, trigger, transitions), []).append(source)
        for part in parts.values():
            ident = f"{trigger}_{len(forks)}"
            forks.append(_fork(compiled, ident, trigger, tuple(part), transitions, timers))
    senders: dict[tuple[str, ...], list[str]] = {}
    for declared in lc.inputs:
        if declared.parties and declared.trigger not in senders.setdefault(declared.parties, []):
            senders[declared.parties].append(declared.trigger)
    return Diagram(lc.name, lc.title, lc.description, nodes, tuple(forks),
                   tuple((who, tuple(triggers)) for who, triggers in senders.items()))


def _candidates(compiled: CompiledLifecycle, source: str, trigger: str,
                transitions: list[Transition]) -> list[CompiledTransition]:
    table = compiled.table[(source, trigger)]
    return [next(c for c in table if c.declaration is t) for t in transitions]


def _signature(compiled: CompiledLifecycle, source: str, trigger: str,
               transitions: list[Transition]) -> tuple[object, ...]:
    return tuple(
        (c.dest, tuple(a.name for a in c.actions))
        for c in _candidates(compiled, source, trigger, transitions)
    )


def _fork(compiled: CompiledLifecycle, ident: str, trigger: str, sources: tuple[str, ...],
          transitions: list[Transition], timers: dict[tuple[str, str], str]) -> Fork:
    candidates = _candidates(compiled, sources[0], trigger, transitions)
    guards = [tuple(g.label or g.name for g in c.guards) for c in candidates]
    effects = [tuple(a.label for a in c.actions if a.label) for c in candidates]
    common_guards = _common_prefix(guards) if len(candidates) > 1 else guards[0]
    common_effects = _common_prefix(effects) if len(candidates) > 1 else effects[0]
    # The last branch is an "else" when it has no guard of its own and the fork holds
    # every candidate the runtime tries for this trigger from these sources.
    complete = all(
        [c.declaration for c in compiled.table[(s, trigger)]] == transitions for s in sources
    )
    branches: dict[str, Branch] = {}
    for position, (candidate, g, e) in enumerate(zip(candidates, guards, effects, strict=True)):
        own = g[len(common_guards):]
        if not own and len(candidates) > 1 and position == len(candidates) - 1 and complete:
            own = (ELSE,)
        branch = Branch(candidate.dest, own, e[len(common_effects):], candidate.declaration.description)
        if (seen := branches.get(branch.dest)) is not None:
            branch = _merge(seen, branch)
        branches[branch.dest] = branch
    first = transitions[0]
    when = timers.get((sources[0], trigger), "")
    kind = EdgeKind.TIMER if when else EdgeKind.INTERNAL if first.internal else EdgeKind.EVENT
    shared = first.description if len(candidates) == 1 else ""
    if shared:
        branches = {d: attrs.evolve(b, description="") for d, b in branches.items()}
    return Fork(ident, trigger, kind, sources, common_guards, common_effects, when, shared,
                tuple(branches.values()))


def _merge(first: Branch, second: Branch) -> Branch:
    """Two branches to one destination: one arrow, guarded by either alternative."""
    alternatives = [", ".join(g) for g in (first.guards, second.guards)]
    guards = (" or ".join(alternatives),) if all(alternatives) else ()
    return Branch(
        first.dest,
        guards,
        first.effects + tuple(e for e in second.effects if e not in first.effects),
        "; ".join(d for d in dict.fromkeys((first.description, second.description)) if d),
    )
