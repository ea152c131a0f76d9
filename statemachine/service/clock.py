"""The wall clock at the service's edge, and the timers it fires.

The engine never reads a wall clock: its time comes from events, and from
:meth:`~statemachine.api.Engine.advance_to`. A live service still has to release a fee
on day 14 without anybody posting an event, so a background task here reads the wall
clock (an injectable ``Callable[[], datetime]``, so tests move time by 14 days without
waiting for them) and, whenever an armed timer is due, calls ``advance_to(due)``
(:func:`fire_due`).

That call is the recorded clock entry: it fires the due timers and stores the clock in
the same transaction (the store's ``clock``), so ``export()`` returns it and
``replay --as-of <clock>`` fires exactly the timers the service fired, at the same due
times: the same ledger. Nothing is written while no timer is due.

A timer fires once even with several replicas ticking on one database: ``advance_to``
runs under the store's writer lock after catching up, so the second replica finds the
timer already fired (and the store's unique ``(subject, version)`` and timer-row id are
the net under that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from starlette.concurrency import run_in_threadpool

from ..api import Engine
from ..engine import Outcome

__all__ = ["Clock", "TimerFiring", "fire_due", "utc_now"]

#: The wall clock: an aware datetime (converted to UTC), read at the service's edge only.
Clock = Callable[[], datetime]

_log = structlog.get_logger("statemachine.service")


def utc_now() -> datetime:
    """The real wall clock, in UTC: ``create_app``'s default ``clock``."""
    return datetime.now(UTC)


def read_clock(clock: Clock) -> datetime:
    """``clock()``, checked: a naive datetime would be a local time of unknown zone."""
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise TypeError(f"the service clock must return an aware datetime, not {now!r}")
    return now.astimezone(UTC)


def fire_due(engine: Engine, now: datetime) -> list[Outcome]:
    """Fire every timer due at ``now`` (after catching up with other writers), as
    ``advance_to(now)`` would; nothing is written when none is due. Blocking: call it
    from a worker thread.

    The engine's clock goes to the latest due time fired, not to ``now``: an event
    stamped a little before ``now`` (a client's clock, the network) but after every
    fired timer is still in order. Each step is ``advance_to(due)``, one transaction
    that fires every timer due by then (those armed by a firing included, next round).
    """
    store = engine.store
    assert store is not None, "the service's engine has a store"
    fired: list[Outcome] = []
    while True:
        with store.lock:  # the runtime's memory is guarded by the store's lock
            engine.refresh()
            due = engine.runtime.next_due()
        if due is None or due > now:
            return fired
        fired += engine.advance_to(due)


class TimerFiring:
    """The background task: every ``interval`` seconds, fire what is due on ``clock``.

    ``ticks`` counts the completed ticks (tests wait on it rather than on time);
    ``on_fired`` hears every outcome a timer made (metrics).
    """

    def __init__(self, engine: Engine, clock: Clock, interval: float,
                 on_fired: Callable[[Outcome], None] | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"the timer interval must be positive, not {interval}")
        self.engine, self.clock, self.interval = engine, clock, interval
        self.on_fired = on_fired
        self.ticks = 0

    async def tick(self) -> list[Outcome]:
        now = read_clock(self.clock)
        fired = await run_in_threadpool(fire_due, self.engine, now)
        for outcome in fired:
            if structlog.is_configured():
                _log.info("timer.fired", timer=outcome.timer, subject=outcome.steps[0].subject,
                          cause=outcome.cause, due=outcome.time.isoformat(), clock=now.isoformat())
            if self.on_fired is not None:
                self.on_fired(outcome)
        return fired

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down, a bug: log it and try again next tick
                if structlog.is_configured():
                    _log.exception("timer.tick_failed")
            self.ticks += 1
            await asyncio.sleep(self.interval)
