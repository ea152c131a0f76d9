"""The embedding API: one obvious entry point, :class:`Engine`.

An ``Engine`` runs the project's lifecycles (or any :class:`~.engine.Domain`) over
entities kept in memory. Events go in as CloudEvents-style envelopes (the same JSON as
the replay log) or as :class:`~.engine.Event`; each ``apply`` returns the
:class:`~.engine.Outcome` (new state, emitted effects) or raises one
:class:`~.engine.EventRejected` naming what, where and why, having changed nothing.

With a store (``Engine(store=SQLiteStore("app.db"))`` or ``MemoryStore()``) every
outcome is committed (event, entity versions, outbox effects: one transaction) before
``apply`` returns or any subscriber hears of it; reopening the store rebuilds the
engine. Without one, the engine is the bare in-memory runtime the replay uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Decision, Domain, Entity, Event, Outcome, Runtime
from .envelope import MalformedEvent, to_event
from .timeutil import parse_instant

if TYPE_CHECKING:
    from .lifecycles.versions import Policies
    from .replay.report import LedgerLine
    from .store import LedgerPage, LedgerPosition, OutboxItem, Recorded
    from .store.contract import Store
    from .store.durable import DurableRuntime

__all__ = ["Engine", "EntityView"]


class EntityView(Entity, frozen=True, gc=False):
    """An entity record as :meth:`Engine.get` shows it when its lifecycle declares a
    derived status: ``state`` is its own (stored) state, ``status`` its effective status
    (``off_by_campaign``, ``budget_exhausted``, …), derived when read."""

    status: str = ""


class Engine:
    """Apply events, ask what is allowed, read entities, advance time.

    >>> engine = Engine()
    >>> engine.apply({"id": "e1", "time": "2026-03-01T10:00:00Z", "type": "project.created",
    ...               "subject": "project/P-1", "data": {"kind": "creator",
    ...               "currency": "USD", "deadline": "2026-04-01T00:00:00Z"}}).state
    'active'
    """

    def __init__(self, domain: Domain | None = None, *, store: Store | None = None,
                 policies: Policies | None = None) -> None:
        """``policies``: the policy versions orders are priced by (``policy-versions.md``;
        default: the built-in version alone); only with the project's own lifecycles."""
        if policies is not None and domain is not None:
            raise ValueError("give either a domain or policies (the project's lifecycles priced by them)")
        if domain is None:
            from .lifecycles import BUILTIN_POLICIES, domain_for

            policies = policies or BUILTIN_POLICIES
            domain = domain_for(policies)
        #: The policy versions this engine prices orders by (``None`` for another domain).
        self.policies = policies
        self.runtime = Runtime(domain)
        self.store = store
        self._durable: DurableRuntime | None = None
        if store is not None:
            from .store.durable import DurableRuntime

            self._durable = DurableRuntime(self.runtime, store)
            if policies is not None:
                # Every stored order must find the version that governs it: said now,
                # not at its first refund (an unknown id raises PolicyError).
                for entity in self.runtime.entities.values():
                    if "policy" in entity.data:
                        policies.get(entity.data["policy"])

    def apply(self, event: Mapping[str, Any] | Event) -> Outcome:
        """Apply one event (envelope dict or :class:`Event`). Timers due by its time
        fire first. A repeat of an applied id with the same content is a duplicate
        (``outcome.duplicate``); with other content it raises :class:`Conflict`.

        With a store, a write that lost a race to another writer raises
        :class:`~.store.StaleWrite` (nothing stored; applying again decides afresh)."""
        envelope: Mapping[str, Any] | Event
        if isinstance(event, Event):
            parsed, envelope = event, event
        else:
            parsed, envelope = to_event(event), event
        if self._durable is None:
            return self.runtime.apply(parsed)
        from .store.codec import dump_envelope, envelope_of

        try:
            line = dump_envelope(envelope_of(parsed) if isinstance(envelope, Event) else envelope)
        except TypeError as exc:
            raise MalformedEvent(f"the event cannot be stored as JSON: {exc}", field="data") from None
        return self._durable.apply(parsed, line)

    def may(self, subject: str, trigger: str, params: Mapping[str, Any] | None = None,
            *, time: datetime | str | None = None) -> Decision:
        """Would ``trigger`` be allowed on ``subject`` (at ``time``, default: the clock)?
        Pure: evaluates guards only, emits nothing, changes nothing."""
        moment = parse_instant(time) if time is not None else None
        if self._durable is not None:
            return self._durable.may(subject, trigger, params, moment)
        return self.runtime.may(subject, trigger, params, time=moment)

    def get(self, subject: str) -> Entity | None:
        """The entity's current record, or ``None`` if it was never created.

        For a lifecycle that declares a derived status (an Ads Manager campaign, ad
        group or ad), an :class:`EntityView`: the record plus ``status``, its effective
        status derived now (``state`` stays its own state)."""
        entity = self._durable.get(subject) if self._durable is not None else self.runtime.get(subject)
        if entity is None or self.runtime.compiled[entity.lifecycle].declaration.status is None:
            return entity
        return EntityView(entity.subject, entity.lifecycle, entity.state, entity.data,
                          entity.version, entity.timers,
                          self.runtime.derive(entity, self.runtime.entities.get))

    def status(self, subject: str) -> str | None:
        """The entity's effective status (its own state for lifecycles without a derived
        one), or ``None`` if it was never created. Derived on read, never stored."""
        if self._durable is not None:
            self._durable.get(subject)  # catches up with other writers first
        return self.runtime.status(subject)

    def advance_to(self, time: datetime | str) -> list[Outcome]:
        """Fire every timer due up to ``time``; returns what they did."""
        moment = parse_instant(time)
        if self._durable is not None:
            return self._durable.advance_to(moment)
        return self.runtime.advance_to(moment)

    def subscribe(self, subscriber: Callable[[Outcome], None]) -> Callable[[], None]:
        """Receive every committed outcome (events and timers); returns an unsubscribe.

        With a store, subscribers hear of an outcome only after it is durably stored;
        an exception in one is logged, never undoes the commit. For effects that must
        not be lost, drain the outbox (:meth:`drain`) instead."""
        if self._durable is not None:
            return self._durable.subscribe(subscriber)
        return self.runtime.subscribe(subscriber)

    @property
    def clock(self) -> datetime | None:
        """The latest time seen (events and ``advance_to``)."""
        return self.runtime.clock

    # -- with a store ---------------------------------------------------------------
    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError("this engine has no store: use Engine(store=SQLiteStore(path)) "
                               "or Engine(store=MemoryStore())")
        return self.store

    def drain(self, deliver: Callable[[OutboxItem], None], limit: int = 100) -> int:
        """Deliver pending outbox effects (at-least-once; ``item.effect_id`` is the
        idempotency key); returns how many were delivered and marked."""
        return self._store().drain(deliver, limit)

    def export(self, path: str | Path) -> datetime | None:
        """Write the applied input events as a JSON Lines log; returns the clock to
        replay it ``--as-of`` (timers that fired after the last event)."""
        return self._store().export(path)

    def ledger(self, subjects: Iterable[str] | None = None) -> list[LedgerLine]:
        """The money lines committed so far (the replay report's ``ledger``)."""
        return self._store().ledger(subjects)

    def ledger_page(self, *, after: LedgerPosition | None = None, limit: int = 100) -> LedgerPage:
        """Up to ``limit`` money lines after the position ``after``: :meth:`ledger` in
        pages, for ledgers too long to read at once, or to follow one as it grows."""
        return self._store().ledger_page(after=after, limit=limit)

    def recorded(self, event_id: str) -> Recorded | None:
        """The stored outcome of an applied input event (what a repeat is told)."""
        return self._store().recorded(event_id)

    def refresh(self) -> None:
        """Catch up with other writers of the store now (reads do so by themselves)."""
        if self._durable is not None:
            self._durable.refresh()

    def close(self) -> None:
        """Close the store (if any). The engine cannot be used afterwards."""
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
