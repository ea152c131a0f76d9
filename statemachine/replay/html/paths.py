"""Every entity's path, recorded while the log replays: what the HTML report draws.

``python -m statemachine diagram LOG SUBJECT`` replays a whole log to trace *one*
entity. The report shows many, and cannot afford a replay per entity, so a
:class:`PathBook` subscribes to the replay's runtime and keeps every committed step of
every entity, in commit order, in one flat list of small C-built records (untracked by
the cyclic collector, like the runtime's own: about 90 bytes a step). Which entities the
report details is known only once the replay is over (it samples by final state), so
the book keeps all of them and builds :class:`~statemachine.diagrams.Trace` objects only
for the few asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

import attrs
import msgspec

from ...diagrams.trace import PathStep, Trace
from ...engine.declaration import Domain
from ...engine.runtime import Outcome, Runtime
from ..replayer import Replayer, replay
from ..report import Report

__all__ = ["PathBook", "Traced", "replay_traced", "replay_traced_path"]


class _Step(msgspec.Struct, frozen=True, gc=False, array_like=True):
    subject: str
    lifecycle: str
    trigger: str
    source: str
    dest: str
    cause: str
    time: datetime
    timer: str | None
    via: str | None


_subject_of = attrgetter("subject")


def _recorder(append: Callable[[_Step], None]) -> Callable[[Outcome], None]:
    """The function that records an outcome's steps with ``append``: the common
    outcome (one step, no cascade) first."""
    record_step = _Step

    def record(outcome: Outcome) -> None:
        steps = outcome.steps
        if len(steps) == 1:
            step = steps[0]
            append(record_step(step.subject, step.lifecycle, step.trigger, step.source, step.dest,
                               outcome.cause, outcome.time, outcome.timer, None))
        elif steps:
            first = steps[0].subject
            for index, step in enumerate(steps):
                append(record_step(step.subject, step.lifecycle, step.trigger, step.source, step.dest,
                                   outcome.cause, outcome.time, outcome.timer, first if index else None))

    return record


class PathBook:
    """A runtime subscriber that keeps every entity's steps, for :meth:`traces`.

    Attach it before the first event (:meth:`attach`), so every path starts at the
    entity's creation. Steps are recorded as ``diagram`` records them
    (:mod:`statemachine.diagrams.trace`): an input event's, a timer's (``timer`` set,
    ``event`` the id that armed it) and a cascade's (``via`` the entity the event was
    applied to).
    """

    def __init__(self) -> None:
        self._steps: list[_Step] = []
        #: The subscriber itself: a plain function (called by the runtime for every
        #: commit of the replay, so kept to the one record a step; a closure is called
        #: faster than an instance's ``__call__``).
        self.record: Callable[[Outcome], None] = _recorder(self._steps.append)

    def attach(self, runtime: Runtime) -> Callable[[], None]:
        """Subscribe to ``runtime``; returns the unsubscribe."""
        return runtime.subscribe(self.record)

    def __call__(self, outcome: Outcome) -> None:
        """:attr:`record` ``outcome``."""
        self.record(outcome)

    def __len__(self) -> int:
        """How many steps were recorded (of every entity)."""
        return len(self._steps)

    def traces(self, subjects: Collection[str], states: Mapping[str, str]) -> dict[str, Trace]:
        """The :class:`Trace` of each of ``subjects`` that has steps, ``states`` giving
        its current state (the report's ``entities``). One pass over the book."""
        wanted = set(subjects)
        found: dict[str, list[_Step]] = {}
        every = self._steps
        # The wanted steps picked out in C (a million steps: a few hundredths of a second).
        for step in compress(every, map(wanted.__contains__, map(_subject_of, every))):
            found.setdefault(step.subject, []).append(step)
        return {
            subject: Trace(
                subject, steps[0].lifecycle, states.get(subject, steps[-1].dest),
                tuple(PathStep(number, s.trigger, s.source, s.dest, s.cause, s.time, s.timer, s.via)
                      for number, s in enumerate(steps, start=1)),
            )
            for subject, steps in found.items()
        }


@attrs.frozen
class Traced:
    """A replay's report and the paths its entities took."""

    report: Report
    paths: PathBook


def replay_traced(stream: BinaryIO, *, as_of: datetime | None = None, sort: bool = False,
                  domain: Domain | None = None, spill_ids: bool = False,
                  progress: Callable[[Replayer], None] | None = None) -> Traced:
    """:func:`~statemachine.replay.replay` with a :class:`PathBook` subscribed: the same
    report, and every entity's path (for :func:`~.page.render_html`). The very replay a
    plain ``replay`` runs (a file's content digested lazily, only when an id repeats):
    the book is its one addition."""
    paths = PathBook()
    report = replay(stream, as_of=as_of, sort=sort, domain=domain, spill_ids=spill_ids,
                    progress=progress, subscriber=paths.record)
    return Traced(report, paths)


def replay_traced_path(path: str | Path, **options: object) -> Traced:
    """:func:`replay_traced` of the log at ``path``; ``OSError`` when it cannot be read.

    Always one process: the paths are recorded by a subscriber in this process (a
    parallel replay's steps happen in its workers)."""
    with open(path, "rb") as stream:
        return replay_traced(stream, **options)  # type: ignore[arg-type]
