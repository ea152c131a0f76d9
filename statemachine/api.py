"""The embedding API: one obvious entry point, :class:`Engine`.

An ``Engine`` runs the project's lifecycles (or any :class:`~.engine.Domain`) over
entities kept in memory. Events go in as CloudEvents-style envelopes (the same JSON as
the replay log) or as :class:`~.engine.Event`; each ``apply`` returns the
:class:`~.engine.Outcome` (new state, emitted effects) or raises one
:class:`~.engine.EventRejected` naming what, where and why, having changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .engine import Decision, Domain, Entity, Event, Outcome, Runtime
from .envelope import to_event
from .timeutil import parse_instant

__all__ = ["Engine"]


class Engine:
    """Apply events, ask what is allowed, read entities, advance time.

    >>> engine = Engine()
    >>> engine.apply({"id": "e1", "time": "2026-03-01T10:00:00Z", "type": "project.created",
    ...               "subject": "project/P-1", "data": {"kind": "creator",
    ...               "currency": "USD", "deadline": "2026-04-01T00:00:00Z"}}).state
    'active'
    """

    def __init__(self, domain: Domain | None = None) -> None:
        if domain is None:
            from .lifecycles import DOMAIN

            domain = DOMAIN
        self.runtime = Runtime(domain)

    def apply(self, event: Mapping[str, Any] | Event) -> Outcome:
        """Apply one event (envelope dict or :class:`Event`). Timers due by its time
        fire first. A repeat of an applied id with the same content is a duplicate
        (``outcome.duplicate``); with other content it raises :class:`Conflict`."""
        if not isinstance(event, Event):
            event = to_event(event)
        return self.runtime.apply(event)

    def may(self, subject: str, trigger: str, params: Mapping[str, Any] | None = None,
            *, time: datetime | str | None = None) -> Decision:
        """Would ``trigger`` be allowed on ``subject`` (at ``time``, default: the clock)?
        Pure: evaluates guards only, emits nothing, changes nothing."""
        moment = parse_instant(time) if time is not None else None
        return self.runtime.may(subject, trigger, params, time=moment)

    def get(self, subject: str) -> Entity | None:
        """The entity's current record, or ``None`` if it was never created."""
        return self.runtime.get(subject)

    def advance_to(self, time: datetime | str) -> list[Outcome]:
        """Fire every timer due up to ``time``; returns what they did."""
        return self.runtime.advance_to(parse_instant(time))

    def subscribe(self, subscriber: Callable[[Outcome], None]) -> Callable[[], None]:
        """Receive every committed outcome (events and timers); returns an unsubscribe."""
        return self.runtime.subscribe(subscriber)

    @property
    def clock(self) -> datetime | None:
        """The latest time seen (events and ``advance_to``)."""
        return self.runtime.clock
