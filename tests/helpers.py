"""Small, stable test helpers: envelopes, a recorder of outcomes, "rejected changes nothing".

Test modules load the fixtures with ``pytest_plugins = ["helpers"]`` and import the
functions (``from helpers import T0, at, ev, rejected``). Keep this module small: other
test modules and helpers depend on its names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from statemachine.api import Engine
from statemachine.engine import Effect, EventRejected, Outcome
from statemachine.timeutil import parse_instant

__all__ = ["MICROSECOND", "T0", "Recorder", "at", "engine", "ev", "of", "recorder", "rejected"]

#: The start of most stories: small, explicit, in UTC.
T0 = "2026-03-01T10:00:00Z"

MICROSECOND = timedelta(microseconds=1)


def at(moment: str | datetime, **delta: float) -> datetime:
    """The instant ``moment`` (RFC 3339 text or aware datetime) plus ``timedelta(**delta)``."""
    return parse_instant(moment) + timedelta(**delta)


def ev(id: str, time: str | datetime, type: str, subject: str, **data: Any) -> dict[str, Any]:
    """A CloudEvents-style envelope as the log carries it (``event-log.md``).

    ``time`` may be a datetime (written as RFC 3339 with microseconds); ``data`` values
    are passed as given, so amounts should be strings (``fee="199.99"``).
    """
    when = time.isoformat() if isinstance(time, datetime) else time
    envelope: dict[str, Any] = {"id": id, "time": when, "type": type, "subject": subject}
    if data:
        envelope["data"] = data
    return envelope


def of(effects: Any, kind: type[Effect]) -> list[Any]:
    """The effects of one class, in order (``effects`` is an Outcome or an iterable)."""
    items = effects.effects if isinstance(effects, Outcome) else effects
    return [e for e in items if type(e) is kind]


class Recorder:
    """Every committed outcome of an engine (events and timers), in order."""

    def __init__(self, engine: Engine) -> None:
        self.outcomes: list[Outcome] = []
        engine.subscribe(self.outcomes.append)

    @property
    def effects(self) -> list[Effect]:
        return [e for o in self.outcomes for e in o.effects]

    def clear(self) -> None:
        self.outcomes.clear()


def rejected(engine: Engine, envelope: Mapping[str, Any], match: str) -> EventRejected:
    """Apply ``envelope``, expect an :class:`EventRejected` whose reason contains
    ``match``, and check the event changed nothing: every entity record is the very
    same object as before and the id is not remembered as applied.

    Timers due by the event's time fire before it is judged (``apply`` does that, and
    they may well change entities): the records are compared with those left by the
    last timer, so only the event itself is judged.
    """
    snapshot = [dict(engine.runtime.entities)]

    def after_timer(outcome: Outcome) -> None:
        if outcome.timer is not None:
            snapshot[0] = dict(engine.runtime.entities)

    children = {k: list(v) for k, v in engine.runtime.children.items()}
    unsubscribe = engine.subscribe(after_timer)
    try:
        with pytest.raises(EventRejected) as info:
            engine.apply(envelope)
    finally:
        unsubscribe()
    assert match in info.value.reason, info.value.reason
    before, after = snapshot[0], engine.runtime.entities
    assert after.keys() == before.keys()
    for subject, entity in before.items():
        assert after[subject] is entity, f"{subject} changed by a rejected event"
    assert engine.runtime.children == children
    assert envelope["id"] not in engine.runtime.applied
    return info.value


@pytest.fixture
def engine() -> Engine:
    """A fresh engine running the project's lifecycles."""
    return Engine()


@pytest.fixture
def recorder(engine: Engine) -> Recorder:
    return Recorder(engine)
