"""The in-memory runtime made durable: every decision it takes is committed to a store
before anyone hears of it.

The runtime stays the single place rules are applied; this class only puts a
transaction around it:

1. take the store's write lock (``BEGIN IMMEDIATE``): one writer at a time, across
   threads and processes;
2. catch up: load every entity another writer changed since we last looked, its
   applied ids and the clock, so the runtime decides on the current state;
3. let the runtime apply the event (timers due first), capturing each committed
   outcome with the records it left;
4. append the outcomes (event rows, entity versions, outbox effects) and the clock,
   and commit: all of it or nothing;
5. only then tell subscribers.

If step 4 fails (a stale version, a full disk, anything), the transaction rolls back
and the runtime is reloaded from the store, so memory never holds what the store does
not. With the write lock and the catch-up a stale version should never happen; the
``(subject, version)`` constraint is the net under that argument, and it turns any
violation into :class:`~.errors.StaleWrite`, never into a lost update.

Memory: the runtime holds every entity and every applied id, as the replay does.
Rehydration reads the latest snapshot of each entity, one per row, so opening is
proportional to the live entities; bounding memory for millions of entities (a
cache over the store, ids looked up in the store) is a separate concern.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from ..engine.runtime import Decision, Entity, Event, Outcome, Runtime
from .contract import Store
from .errors import StaleWrite

__all__ = ["DurableRuntime"]

_log = structlog.get_logger("statemachine.store")

Subscriber = Callable[[Outcome], None]


def _problem(event: str, *, exc_info: bool = False, **fields: Any) -> None:
    """Log a warning through structlog once the application configured it, else
    through stdlib ``logging`` (stderr by default): a library never prints to stdout,
    and a failure is never swallowed silently."""
    if structlog.is_configured():
        _log.warning(event, exc_info=exc_info, **fields)
    else:
        logging.getLogger("statemachine.store").warning("%s %s", event, fields, exc_info=exc_info)


class DurableRuntime:
    """A :class:`Runtime` kept in step with a store (SQLite or PostgreSQL; module docs)."""

    def __init__(self, runtime: Runtime, store: Store) -> None:
        self.runtime = runtime
        self.store = store
        self.lock: threading.RLock = store.lock
        self._subscribers: list[Subscriber] = []
        self._captured: list[tuple[Outcome, dict[str, Entity]]] = []
        self._seq = 0
        self._generation = -1
        runtime.subscribe(self._capture)
        with self.lock:
            self._reload()

    # -- keeping memory in step with the store --------------------------------------
    def _capture(self, outcome: Outcome) -> None:
        entities = self.runtime.entities
        self._captured.append((outcome, {s.subject: entities[s.subject] for s in outcome.steps}))

    def _reload(self) -> None:
        """Forget memory and rehydrate from the store (on open, after a failed write)."""
        changes = self.store.changes_since(0)
        self.runtime.restore(changes.entities, applied=changes.applied, clock=changes.clock,
                             reset=True)
        self._seq, self._generation = changes.seq, changes.generation
        if structlog.is_configured():
            _log.debug("store.loaded", entities=len(changes.entities), seq=changes.seq)

    def _catch_up(self) -> None:
        """Load what other writers committed since we last looked (cheap when nothing)."""
        if self.store.generation() == self._generation:
            return
        changes = self.store.changes_since(self._seq)
        self.runtime.restore(changes.entities, applied=changes.applied, clock=changes.clock)
        self._seq, self._generation = changes.seq, changes.generation

    def _run(self, action: Callable[[], Any], event: Event | None = None,
             envelope: str | None = None) -> Any:
        """Run ``action`` on the runtime inside one write transaction (module docs)."""
        with self.lock:
            self._captured.clear()
            result: Any = None
            error: BaseException | None = None
            clock = self.runtime.clock
            try:
                with self.store.writing() as writer:
                    self._catch_up()
                    clock = self.runtime.clock
                    try:
                        result = action()
                    except Exception as exc:  # refused, or a bug: timers may have fired
                        error = exc
                    if self._captured or self.runtime.clock != clock:
                        for outcome, records in self._captured:
                            own = outcome.timer is None and event is not None
                            writer.append(outcome, records, event=event if own else None,
                                          envelope=envelope if own else None)
                        generation = writer.finish(self.runtime.clock)
                        if writer.last_seq is not None:
                            self._seq = writer.last_seq
                        self._generation = generation
            except BaseException as exc:
                self._captured.clear()
                self._reload()
                if isinstance(exc, StaleWrite):
                    _problem("store.stale_write", reason=exc.reason)
                raise
            captured, self._captured = self._captured, []
        for outcome, _ in captured:
            for subscriber in list(self._subscribers):
                try:
                    subscriber(outcome)
                except Exception:  # the event is committed; a listener cannot undo it
                    _problem("subscriber.failed", exc_info=True, cause=outcome.cause)
        if error is not None:
            raise error
        return result

    # -- the engine's operations ----------------------------------------------------
    def apply(self, event: Event, envelope: str) -> Outcome:
        result: Outcome = self._run(lambda: self.runtime.apply(event), event, envelope)
        return result

    def advance_to(self, moment: datetime) -> list[Outcome]:
        result: list[Outcome] = self._run(lambda: self.runtime.advance_to(moment))
        return result

    def get(self, subject: str) -> Entity | None:
        with self.lock, self.store.reading():
            self._catch_up()
            return self.runtime.get(subject)

    def may(self, subject: str, trigger: str, params: Mapping[str, Any] | None,
            time: datetime | None) -> Decision:
        with self.lock, self.store.reading():
            self._catch_up()
            return self.runtime.may(subject, trigger, params, time=time)

    def refresh(self) -> None:
        """Catch up with other writers now (reads do this by themselves)."""
        with self.lock, self.store.reading():
            self._catch_up()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)
