"""The path one entity took through an event log: what the entity view overlays.

The log is replayed with the same :class:`~statemachine.replay.Replayer` as
``python -m statemachine replay``; a subscriber on its runtime keeps, in commit order,
every step of the one subject, whether an input event, a timer or a cascade from
another entity (a project's cancellation cancelling its orders) caused it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import attrs

from ..engine.declaration import Domain
from ..engine.runtime import Outcome, Runtime
from ..replay.replayer import Replayer, read_lines, sort_lines

__all__ = ["PathStep", "Trace", "UnknownSubject", "trace_log"]


class UnknownSubject(LookupError):
    """The log never created the subject asked for."""

    def __init__(self, subject: str, log: str) -> None:
        super().__init__(f"no entity {subject} in {log}")
        self.subject = subject


@attrs.frozen
class PathStep:
    """The ``number``-th transition of the entity, and what caused it.

    ``event`` is the id of the input event behind it (for a timer: the event that
    armed it); ``timer`` names the timer that fired; ``via`` is set for a cascade and
    names the entity the event (or timer) was applied to, whose step set off the
    chain of sends that reached this entity.
    """

    number: int
    trigger: str
    source: str
    dest: str
    event: str
    time: datetime
    timer: str | None = None
    via: str | None = None

    @property
    def label(self) -> str:
        """``1: create (evt-002)``; timers and cascades say so."""
        if self.timer is not None and self.via is not None:
            cause = f"timer {self.timer} of {self.via}, armed by {self.event}"
        elif self.timer is not None:
            cause = f"timer {self.timer}, armed by {self.event}"
        elif self.via is not None:
            cause = f"{self.event} via {self.via}"
        else:
            cause = self.event
        return f"{self.number}: {self.trigger} ({cause})"


@attrs.frozen
class Trace:
    """An entity's lifecycle name, its current state and its steps in order."""

    subject: str
    lifecycle: str
    state: str
    steps: tuple[PathStep, ...]
    #: For a lifecycle with a derived status (Ads Manager): every descendant at the end,
    #: as ``(subject, own state, effective status)``, parents before their children.
    descendants: tuple[tuple[str, str, str], ...] = ()


class _Recorder:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.steps: list[PathStep] = []

    def __call__(self, outcome: Outcome) -> None:
        for index, step in enumerate(outcome.steps):
            if step.subject != self.subject:
                continue
            # steps[0] is the entity the event (or the timer) named; later steps are
            # cascades, sent by an earlier step of the same unit of work.
            first = outcome.steps[0].subject
            self.steps.append(
                PathStep(
                    number=len(self.steps) + 1,
                    trigger=step.trigger,
                    source=step.source,
                    dest=step.dest,
                    event=outcome.cause,
                    time=outcome.time,
                    timer=outcome.timer,
                    via=first if index > 0 else None,
                )
            )


def trace_lines(lines: Iterable[tuple[int, bytes]], subject: str, *, log: str = "the log",
                as_of: datetime | None = None, domain: Domain | None = None) -> Trace:
    """Replay numbered lines and return ``subject``'s path; :class:`UnknownSubject` if
    the log never created it. ``domain``: the lifecycles to run (default: ours)."""
    replayer = Replayer(domain)
    recorder = _Recorder(subject)
    replayer.runtime.subscribe(recorder)
    for number, raw in lines:
        replayer.feed(number, raw)
    replayer.finish(as_of)
    entity = replayer.runtime.get(subject)
    if entity is None:
        raise UnknownSubject(subject, log)
    return Trace(subject, entity.lifecycle, entity.state, tuple(recorder.steps),
                 _descendants(replayer.runtime, subject))


def _descendants(runtime: Runtime, subject: str) -> tuple[tuple[str, str, str], ...]:
    entity = runtime.get(subject)
    if entity is None or runtime.compiled[entity.lifecycle].declaration.status is None:
        return ()
    found: list[tuple[str, str, str]] = []

    def walk(parent: str) -> None:
        for child in runtime.children.get(parent, ()):
            record = runtime.entities[child]
            found.append((child, record.state, runtime.derive(record, runtime.entities.get)))
            walk(child)

    walk(subject)
    return tuple(found)


def trace_log(path: str | Path, subject: str, *, as_of: datetime | None = None,
              sort: bool = False, domain: Domain | None = None) -> Trace:
    """Replay the log at ``path`` (``OSError`` when unreadable) and trace ``subject``."""
    with open(path, "rb") as stream:
        lines: Iterable[tuple[int, bytes]] = read_lines(stream)
        if sort:
            lines = sort_lines(lines)
        return trace_lines(lines, subject, log=str(path), as_of=as_of, domain=domain)
