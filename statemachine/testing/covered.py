"""Which declared transitions and guards a test run exercised: lifecycle coverage.

Line coverage says a guard's function ran; it cannot say that the suite ever *took*
``submit`` from ``in_progress`` to ``approved``, or ever saw ``within_budget`` refuse.
:class:`LifecycleCoverage` listens to every :class:`~statemachine.engine.Runtime` made
while it is installed (each commit's steps, through the runtime's public ``subscribe``)
and to every :class:`~statemachine.engine.TransitionRefused` raised, and reports per
lifecycle:

* **transitions**: declared transitions taken at least once (from any source);
* **edges**: ``source --trigger--> dest`` for every source of every declared
  transition (the stricter count: what a diagram draws);
* **guards**: each guard seen holding (a transition it guards was taken) and seen
  false: it refused an event (or a ``may``), or it was the one guard that set aside an
  earlier branch of a conditional transition (``submit`` taken to ``submitted``, so
  ``auto_review`` was false). A last branch's guards are not even asked when an
  earlier branch is taken, so one like ``review_refused`` (the "else" of
  ``review_approved``) may never be seen false: the report lists it, to be judged.

A step names its lifecycle, source, trigger and destination; when two declared
transitions share all four (they differ in guards only) the step counts for both. A
refusal names the entity's kind, state, trigger and guard: it counts for each
lifecycle of that kind with such a transition (for both project variants, say, when
the guard and the state are shared).

``pytest --lifecycle-coverage`` (:mod:`.plugin`) installs one for the session and
prints :meth:`LifecycleCoverage.table` at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ..engine import CompiledLifecycle, Lifecycle, Outcome, Runtime, TransitionRefused

__all__ = ["LifecycleCoverage", "Tally"]


@attrs.define
class Tally:
    """What was exercised of one declared lifecycle."""

    lifecycle: Lifecycle
    taken: set[tuple[str, str, str]] = attrs.field(factory=set)  # (source, trigger, dest)
    refused: set[str] = attrs.field(factory=set)  # guard names seen false

    def edges(self) -> list[tuple[str, str, str]]:
        """Every declared edge, in declaration order, once."""
        return list(dict.fromkeys((s, t.trigger, t.dest) for t in self.lifecycle.transitions
                                  for s in t.sources))

    def transitions_taken(self) -> list[bool]:
        return [any((s, t.trigger, t.dest) in self.taken for s in t.sources)
                for t in self.lifecycle.transitions]

    def guards_held(self) -> set[str]:
        return {g for t, ok in zip(self.lifecycle.transitions, self.transitions_taken(), strict=True)
                if ok for g in t.guards}

    def missed(self) -> list[str]:
        """The declared edges never taken, as ``source --trigger--> dest``."""
        return [f"{s} --{t}--> {d}" for s, t, d in self.edges() if (s, t, d) not in self.taken]

    def percent(self) -> float:
        flags = self.transitions_taken()
        return 100.0 * sum(flags) / len(flags) if flags else 100.0


class LifecycleCoverage:
    """Collects what runtimes did while installed (:meth:`install` / :meth:`uninstall`)."""

    def __init__(self, only: Iterable[Lifecycle] | None = None) -> None:
        """``only``: report these lifecycles (listed even if never run), no others."""
        #: By lifecycle name; the first declaration of a name seen is the one counted.
        self.tallies: dict[str, Tally] = {}
        self._only: set[str] | None = None
        if only is not None:
            self.tallies = {lc.name: Tally(lc) for lc in only}
            self._only = set(self.tallies)
        self._undo: list[Callable[[], None]] = []

    # -- recording --------------------------------------------------------------------
    def watch(self, runtime: Runtime) -> None:
        """Count the lifecycles of ``runtime`` and every step it commits from now on."""
        for lc in runtime.domain.lifecycles:
            if self._only is None or lc.name in self._only:
                self.tallies.setdefault(lc.name, Tally(lc))
        compiled = runtime.compiled
        runtime.subscribe(lambda outcome: self.record(outcome, compiled))

    def record(self, outcome: Outcome, compiled: Mapping[str, CompiledLifecycle] | None = None) -> None:
        for step in outcome.steps:
            tally = self.tallies.get(step.lifecycle)
            if tally is None:
                continue
            tally.taken.add((step.source, step.trigger, step.dest))
            lifecycle = compiled.get(step.lifecycle) if compiled else None
            if lifecycle is None or lifecycle.declaration is not tally.lifecycle:
                continue
            # Earlier branches were set aside: one guard of theirs was false. When the
            # taken branch's guards (which held) leave exactly one, that one it was.
            candidates = lifecycle.table.get((step.source, step.trigger), ())
            taken = next((c for c in candidates if c.dest == step.dest), None)
            if taken is None:
                continue
            held = set(taken.declaration.guards)
            for candidate in candidates[:candidates.index(taken)]:
                unknown = set(candidate.declaration.guards) - held
                if len(unknown) == 1:
                    tally.refused |= unknown

    def refusal(self, kind: str, state: str, trigger: str, guard: str) -> None:
        for tally in self.tallies.values():
            lc = tally.lifecycle
            if lc.kind == kind and any(trigger == t.trigger and state in t.sources and guard in t.guards
                                       for t in lc.transitions):
                tally.refused.add(guard)

    def install(self) -> None:
        """Watch every runtime made from now on, and every guard refusal raised."""
        if self._undo:
            return
        original_init = Runtime.__init__
        original_refused = TransitionRefused.__init__
        coverage = self

        def init(runtime: Runtime, *args: Any, **kwargs: Any) -> None:
            original_init(runtime, *args, **kwargs)
            coverage.watch(runtime)

        def refused(exc: TransitionRefused, subject: str, state: str, trigger: str,
                    *args: Any, **kwargs: Any) -> None:
            original_refused(exc, subject, state, trigger, *args, **kwargs)
            guard = getattr(exc, "guard", None)
            if guard:
                coverage.refusal(subject.partition("/")[0], state, trigger, guard)

        Runtime.__init__ = init  # type: ignore[assignment,method-assign]
        TransitionRefused.__init__ = refused  # type: ignore[assignment,method-assign]

        def undo() -> None:
            Runtime.__init__ = original_init  # type: ignore[method-assign]
            TransitionRefused.__init__ = original_refused  # type: ignore[method-assign]

        self._undo.append(undo)

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    # -- reporting --------------------------------------------------------------------
    def below(self, percent: float) -> list[str]:
        """The lifecycles whose declared transitions were taken less than ``percent`` %."""
        return [name for name, tally in sorted(self.tallies.items()) if tally.percent() < percent]

    def table(self) -> str:
        """The per-lifecycle table (sorted by name) and, below it, what was never taken."""
        rows = [("lifecycle", "transitions", "edges", "guards held", "guards false", "cover")]
        notes: list[str] = []
        for name in sorted(self.tallies):
            tally = self.tallies[name]
            flags = tally.transitions_taken()
            edges = tally.edges()
            guards = [g.name for g in tally.lifecycle.guards]
            held, refused = tally.guards_held(), tally.refused
            rows.append((name, f"{sum(flags)}/{len(flags)}",
                         f"{len(edges) - len(tally.missed())}/{len(edges)}",
                         f"{len(held & set(guards))}/{len(guards)}",
                         f"{len(refused & set(guards))}/{len(guards)}", f"{tally.percent():.0f} %"))
            for edge in tally.missed():
                notes.append(f"  {name}: never took {edge}")
            for guard in guards:
                if guard not in refused:
                    notes.append(f"  {name}: guard {guard} never seen false")
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                 for row in rows]
        return "\n".join([*lines, *notes]) + "\n"
