"""An entity's path laid over its lifecycle's diagram: which transitions it took, in order.

Both renderers ask the same questions of an :class:`Overlay`: which numbered steps
went through this fork; was this state visited; which state is current.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .model import Diagram, Fork
from .trace import PathStep, Trace

__all__ = ["Overlay", "overlay"]


@attrs.frozen
class Overlay:
    subject: str
    state: str
    visited: frozenset[str]
    by_fork: Mapping[str, tuple[PathStep, ...]]
    #: ``(subject, own state, effective status)`` of each descendant (Ads Manager).
    descendants: tuple[tuple[str, str, str], ...] = ()

    def steps_in(self, fork: Fork) -> tuple[PathStep, ...]:
        """The steps that took ``fork``, in path order."""
        return self.by_fork.get(fork.ident, ())


def overlay(diagram: Diagram, trace: Trace) -> Overlay:
    """Match every step of ``trace`` to a fork of ``diagram``.

    Raises ``ValueError`` when the trace is of another lifecycle, ``KeyError`` when a
    step has no transition in the diagram (the two would disagree with the engine).
    """
    if trace.lifecycle != diagram.name:
        raise ValueError(f"{trace.subject} runs {trace.lifecycle}, not {diagram.name}")
    by_fork: dict[str, list[PathStep]] = {}
    for step in trace.steps:
        fork, _ = diagram.fork_of(step.source, step.dest, step.trigger)
        by_fork.setdefault(fork.ident, []).append(step)
    visited = {s.dest for s in trace.steps} | {s.source for s in trace.steps}
    return Overlay(
        subject=trace.subject,
        state=trace.state,
        visited=frozenset(visited),
        by_fork={k: tuple(v) for k, v in by_fork.items()},
        descendants=trace.descendants,
    )
