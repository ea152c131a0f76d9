"""The interpreter: applies events to entities, atomically, with timers as data.

How an event is applied (``Runtime.apply``):

1. **Idempotency**: an id applied before is a duplicate (same content) or a
   :class:`~.errors.Conflict` (different content).
2. **Clock**: an event older than the clock is :class:`~.errors.OutOfOrder`; otherwise
   the clock advances to the event's time and every timer due at or before it fires,
   in order of due time, then subject. Time only ever comes from events.
3. **Decide**: the entity's compiled table gives the candidate transitions for
   ``(state, trigger)``; the first whose guards all hold is taken. Guards are pure.
4. **Act**: the transition's actions return data changes, sends to other entities and
   effects. Sends are applied in the same unit of work (a project's cancellation
   cancels its orders), reading the pending states, never the committed ones.
5. **Commit**: only when every step succeeded are the new entity records stored and
   their timers armed; then each step is logged and the effects go to subscribers.

Any refusal anywhere raises before step 5, so a rejected event changes nothing: the
entity after it is the very object it was before.

Steps 3 and 4 run, by default, the step functions generated from the declaration
(:mod:`.codegen`): one function per ``(lifecycle, state, trigger)``. The common event
(one entity, no cascade) goes through a fast path that builds no unit of work and, when
nobody subscribes and the caller does not ask for it (:meth:`Runtime.feed`), no step or
outcome either. ``Runtime(..., interpret=True)`` runs the plain interpreter of the
declaration instead (the table, ``_choose`` and the action loop): the reference that a
differential test holds the generated functions to, and the path to step through in a
debugger.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import datetime
from typing import Any

import attrs
import msgspec
import structlog

from ..timeutil import format_instant
from .applied import Digest
from .compiler import CompiledLifecycle, CompiledTransition, compile_lifecycle
from .declaration import INITIAL, Domain, Input, Lifecycle
from .effects import Assign, Effect, Send
from .errors import (
    Conflict,
    EntityExists,
    EventRejected,
    InvalidEvent,
    OutOfOrder,
    TransitionRefused,
    UnknownEntity,
)

__all__ = [
    "ArmedTimer",
    "Context",
    "Decision",
    "Entity",
    "Event",
    "Outcome",
    "Runtime",
    "Step",
]

_log = structlog.get_logger("statemachine.engine")
_is_configured = structlog.is_configured
_STRUCTLOG_CONFIG: Any
try:  # structlog's global configuration, read only to cache a decision (_transition_log)
    from structlog._config import _CONFIG as _STRUCTLOG_CONFIG
except ImportError:  # pragma: no cover - another structlog layout: no cache, same logs
    _STRUCTLOG_CONFIG = None
#: Wrapper classes seen to filter DEBUG out: a commit under one skips the logger.
_QUIET_WRAPPERS: set[type] = set()


def _transition_log() -> Any:
    """The logger for transition lines, or None when DEBUG is filtered out.

    Resolving structlog's lazy proxy costs about half a microsecond, on every commit; the
    answer depends on the configured wrapper class only, so a class seen to filter DEBUG
    out is remembered (a new ``structlog.configure`` with another class asks again)."""
    wrapper = getattr(_STRUCTLOG_CONFIG, "default_wrapper_class", None)
    if wrapper is not None and wrapper in _QUIET_WRAPPERS:
        return None
    log = _log.bind()
    enabled = getattr(log, "is_enabled_for", None)
    if enabled is None or enabled(logging.DEBUG):
        return log
    if type(log) is wrapper:
        _QUIET_WRAPPERS.add(wrapper)
    return None
_NO_PARAMS: Mapping[str, Any] = {}


# The records below are built on every event, and a replay keeps an Entity per entity,
# so they are ``msgspec.Struct``s rather than attrs classes: frozen (immutable for
# real), built in C (a third of a slotted attrs class's time), and ``gc=False``: never
# tracked by the cyclic collector. They cannot form a cycle (an entity never refers to
# an entity), and untracked they cost 16 bytes less each and no collector pass over a
# million live records, which was a fifth of a long replay's time.


class ArmedTimer(msgspec.Struct, frozen=True, gc=False, order=True):
    """A timer kept with its entity: ``trigger`` fires at ``due``; ``cause`` armed it.

    Ordered (by name first), so the timer heap orders ``(due, subject, armed)`` entries
    by due time, subject and timer name without holding the name twice."""

    name: str
    trigger: str
    due: datetime
    cause: str


class Entity(msgspec.Struct, frozen=True, gc=False):
    """A small record: never a machine of its own. Never mutated: each commit stores a
    new record with ``version`` + 1 (``data`` is a read-only mapping)."""

    subject: str
    lifecycle: str
    state: str
    data: Mapping[str, Any]
    version: int
    timers: tuple[ArmedTimer, ...] = ()

    @property
    def kind(self) -> str:
        return self.subject.partition("/")[0]


class Event(msgspec.Struct, frozen=True, gc=False):
    """An input event, validated: what the log and the service feed the engine.

    ``digest`` identifies its content for idempotency: the same id with the same
    digest is a duplicate, with another a conflict.
    """

    id: str
    time: datetime
    type: str
    subject: str
    data: Mapping[str, Any] = msgspec.field(default_factory=dict)
    digest: int = 0


class Step(msgspec.Struct, frozen=True, gc=False):
    """One entity's committed transition within an outcome."""

    subject: str
    lifecycle: str
    trigger: str
    source: str
    dest: str
    version: int
    effects: tuple[Effect, ...]


class Outcome(msgspec.Struct, frozen=True, gc=False):
    """What one input event (or one timer) did, after it committed.

    ``steps[0]`` is the entity the event named; later steps are cascades. ``effects``
    lists every step's effects in the order they were produced. ``timer`` names the
    timer for a timer firing and ``due`` its due time (``time`` is later when it fired
    overdue); ``duplicate`` is true for a skipped repeat.
    """

    cause: str
    time: datetime
    steps: tuple[Step, ...] = ()
    timer: str | None = None
    duplicate: bool = False
    due: datetime | None = None

    @property
    def effects(self) -> tuple[Effect, ...]:
        return tuple(e for s in self.steps for e in s.effects)

    @property
    def state(self) -> str | None:
        return self.steps[0].dest if self.steps else None


@attrs.frozen
class Decision:
    """The answer of :meth:`Runtime.may`: would ``trigger`` be allowed now, to where."""

    allowed: bool
    dest: str | None = None
    reason: str | None = None
    guard: str | None = None



#: A lifecycle's declared derived status: ``status(entity, get) -> str``.
StatusFn = Callable[[Entity, Callable[[str], "Entity | None"]], str]


def derive(statuses: Mapping[str, StatusFn | None], entity: Entity,
           get: Callable[[str], Entity | None]) -> str:
    """``entity``'s derived status (its lifecycle's ``status``, else its state), reading
    other entities through ``get``: one definition for the runtime and every context."""
    status = statuses.get(entity.lifecycle)
    return entity.state if status is None else status(entity, get)


class Context(msgspec.Struct, gc=False):
    """What guards and actions see: the entity before the step, the trigger's params,
    the cause and time, and read-only access to other entities as the step sees them.

    A ``msgspec.Struct`` (built in C: a third of a slotted class's ``__init__``, on every
    step), built as ``Context(uow, entity, entity.subject, entity.data, lifecycle,
    trigger, params, event_id, time)``. Not tracked by the cyclic collector: it refers
    to the unit of work (or the committed view), the entity and the event, none of
    which refers back to it.
    """

    _uow: Any
    entity: Entity
    #: ``entity.subject`` and ``entity.data``, read by nearly every guard and action.
    subject: str
    data: Mapping[str, Any]
    lifecycle: Lifecycle
    trigger: str
    params: Mapping[str, Any]
    event_id: str
    time: datetime
    _parent: Any = False  # False: not looked up yet

    def get(self, subject: str) -> Entity | None:
        """Another entity as this unit of work sees it (pending changes included)."""
        return self._uow.get(subject)

    def parent(self) -> Entity | None:
        """The parent entity named by the lifecycle's :class:`~.declaration.Parent`."""
        if self._parent is not False:
            return self._parent  # type: ignore[return-value]
        link = self.lifecycle.parent
        parent = None
        if link is not None:
            ident = self.entity.data.get(link.field, self.params.get(link.field))
            if ident is not None:
                parent = self._uow.get(f"{link.kind}/{ident}")
        self._parent = parent
        return parent

    def children(self) -> list[Entity]:
        """This entity's children, in order of creation, as this unit of work sees them."""
        return [self._uow.get(s) for s in self._uow.children(self.entity.subject)]  # type: ignore[misc]

    def status(self, subject: str | None = None) -> str | None:
        """The derived status (``Lifecycle.status``) of ``subject`` (default: this
        entity) as this unit of work sees it, pending changes included; ``None`` when
        the entity does not exist."""
        entity = self._uow.get(subject or self.entity.subject)
        return None if entity is None else derive(self._uow.statuses, entity, self._uow.get)


class _UnitOfWork:
    """Pending changes of one event: read-through to the runtime, committed all at once."""

    __slots__ = ("changed", "new_children", "queue", "runtime", "statuses", "steps")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.statuses = runtime.statuses
        self.changed: dict[str, Entity] = {}
        self.new_children: dict[str, list[str]] = {}
        self.steps: list[Step] = []
        self.queue: list[Send] = []

    def get(self, subject: str) -> Entity | None:
        entity = self.changed.get(subject)
        if entity is None:
            entity = self.runtime.entities.get(subject)
            if entity is None and self.runtime.fence is not None:
                self.runtime.fence(subject)
        return entity

    def children(self, parent: str) -> list[str]:
        return [*self.runtime.children.get(parent, ()), *self.new_children.get(parent, ())]


class _Committed:
    """What a context reads through on the fast path, where nothing is pending yet: the
    committed entities (with the fence, as :meth:`_UnitOfWork.get`) and children.

    It holds the runtime's dicts, not the runtime: no reference cycle, so a runtime is
    freed as soon as its last reference goes (``Runtime.fence`` keeps ``fence`` here)."""

    __slots__ = ("_fence", "children_of", "entities", "get", "statuses")

    def __init__(self, entities: dict[str, Entity], children: dict[str, list[str]],
                 statuses: Mapping[str, StatusFn | None]) -> None:
        self.entities = entities
        self.children_of = children
        self.statuses = statuses
        self._fence: Callable[[str], None] | None = None
        #: ``get(subject)``: the dict's own ``get`` (no Python frame per parent lookup)
        #: while there is no fence; with one, a function that calls it for a miss.
        self.get: Callable[[str], Entity | None] = entities.get

    @property
    def fence(self) -> Callable[[str], None] | None:
        return self._fence

    @fence.setter
    def fence(self, fence: Callable[[str], None] | None) -> None:
        self._fence = fence
        self.get = self.entities.get if fence is None else self._fenced_get

    def _fenced_get(self, subject: str) -> Entity | None:
        entity = self.entities.get(subject)
        if entity is None and self._fence is not None:
            self._fence(subject)
        return entity

    def children(self, parent: str) -> list[str]:
        return self.children_of.get(parent, [])


def refuse(ctx: Context, candidates: tuple[CompiledTransition, ...]) -> TransitionRefused:
    """The refusal of a generated step whose candidates all failed: the interpreter's
    own explanation (guards are pure, so asking them again gives the same answers)."""
    chosen = Runtime._choose(ctx, candidates)
    return TransitionRefused(  # pragma: no cover - only a guard that is not pure gets here
        ctx.entity.subject, ctx.entity.state, ctx.trigger,
        f"guards answered differently when asked again (guards must be pure): {chosen.dest}")


Subscriber = Callable[[Outcome], None]
#: What :meth:`Runtime._fire` hands :meth:`Runtime._commit_one`: the lifecycle, the entity
#: before (``None`` for a creation), after, the step's effects and the state it left.
_Fast = tuple[CompiledLifecycle, "Entity | None", "Entity", "list[Effect] | tuple[()]", str]
#: What :meth:`Runtime._apply` returns for a duplicate when no outcome is wanted.
_DUPLICATE: Any = object()
#: ``sink(effect, subject)``: every committed effect, in order, with its step's subject.
EffectSink = Callable[[Effect, str], object]


class Runtime:
    """Runs a :class:`~.declaration.Domain` over in-memory entity records.

    One runtime holds many entities; each lifecycle is compiled once, at construction.
    It is the engine without persistence: the replay drives it directly, and a service
    puts a store around it.
    """

    #: Stale timer entries tolerated before the heap may be rebuilt (see ``_compact``).
    COMPACT_AFTER = 1024

    def __init__(self, domain: Domain, *, clock: datetime | None = None,
                 applied: MutableMapping[str, Digest] | None = None,
                 interpret: bool = False) -> None:
        """``applied`` is the index of applied event ids (id -> content digest) kept for
        idempotency: a plain dict by default, or a
        :class:`~statemachine.engine.applied.SpilledIds` whose memory stays flat on a
        long replay. ``interpret`` runs the plain reference interpreter of the
        declaration instead of the generated step functions (same outcomes, slower)."""
        self.domain = domain
        #: True: the reference interpreter; False: the generated step functions.
        self.interpret = interpret
        #: Called with every committed effect and its step's subject, in order, before
        #: the subscribers: how a replay books its ledger without outcome objects.
        self.effect_sink: EffectSink | None = None
        #: Compares a repeated id's stored digest with a new event: ``same(seen, event)``.
        #: A file replay stores where the line was and compares content only then.
        self.same_content: Callable[[Digest, Event], bool] | None = None

        self.compiled: dict[str, CompiledLifecycle] = {
            lc.name: compile_lifecycle(lc) for lc in domain.lifecycles
        }
        #: Each lifecycle's declared ``status`` function (None: the state is the status).
        self.statuses: dict[str, StatusFn | None] = {
            name: c.declaration.status for name, c in self.compiled.items()}
        self.entities: dict[str, Entity] = {}
        self.children: dict[str, list[str]] = {}
        self._view = _Committed(self.entities, self.children, self.statuses)
        self.clock: datetime | None = clock
        self.applied: MutableMapping[str, Digest] = {} if applied is None else applied
        #: Called with every subject a step looks for and does not find (see ``fence``).
        self._fence: Callable[[str], None] | None = None
        # (due, subject, armed timer) entries. An entry is live while the entity holds
        # that very ArmedTimer object; re-arming makes a new one, so an old entry (even
        # an equal one) is stale and is skipped when popped, or dropped by _compact.
        self._timers: list[tuple[datetime, str, ArmedTimer]] = []
        # Heap entries known to be stale (see _compact). An upper bound: a fired timer is
        # counted too when its entity moves on, though its entry is already off the heap.
        # Counting exactly was tried (session 4): compactions fell from 11 to 2 on a 100k
        # log and took 0.1 s instead of 0.45, but the larger heap cost as much in pops and
        # pushes (cache misses); the replay was no faster.
        self._stale = 0
        self._subscribers: list[Subscriber] = []
        # event type -> (kind, input, variant -> lifecycle name, creates?)
        self._inputs: dict[str, tuple[str, Input, dict[str | None, str], bool]] = {}
        self._kinds: set[str] = set()
        #: kind -> the data field naming its variant (``Domain.variant_field``).
        self._variant_field: Mapping[str, str] = domain.variant_field
        for lc in domain.lifecycles:
            self._kinds.add(lc.kind)
            for inp in lc.inputs:
                kind, _, _ = inp.type.partition(".")
                if kind != lc.kind:
                    raise ValueError(f"input {inp.type} declared on lifecycle {lc.name}")
                creates = (INITIAL, inp.trigger) in self.compiled[lc.name].table
                entry = self._inputs.setdefault(inp.type, (lc.kind, inp, {}, creates))
                if entry[1] != inp:
                    raise ValueError(f"variants of {lc.kind} declare {inp.type} differently")
                entry[2][lc.variant] = lc.name

    @property
    def fence(self) -> Callable[[str], None] | None:
        """Called with every subject a step looks for and does not find (a send's
        target, a guard's read), before the step goes on without it. A parallel
        replay's worker raises there when the subject belongs to another worker."""
        return self._fence

    @fence.setter
    def fence(self, fence: Callable[[str], None] | None) -> None:
        self._fence = self._view.fence = fence

    # -- subscriptions --------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(outcome)`` after every commit; returns an unsubscribe."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    # -- reading --------------------------------------------------------------------
    def get(self, subject: str) -> Entity | None:
        return self.entities.get(subject)

    def status(self, subject: str) -> str | None:
        """The entity's derived status (``Lifecycle.status``; its own state when the
        lifecycle declares none), or ``None`` if it was never created. Never stored."""
        entity = self.entities.get(subject)
        return None if entity is None else self.derive(entity, self.entities.get)

    def derive(self, entity: Entity, get: Callable[[str], Entity | None]) -> str:
        """``entity``'s derived status, reading other entities through ``get``."""
        return derive(self.statuses, entity, get)

    def next_due(self) -> datetime | None:
        """The due time of the earliest armed timer, if any (stale entries skipped)."""
        while self._timers:
            due, subject, armed = self._timers[0]
            if self._live(subject, armed):
                return due
            heapq.heappop(self._timers)
            self._stale -= 1
        return None

    def may(self, subject: str, trigger: str, params: Mapping[str, Any] | None = None,
            *, time: datetime | None = None) -> Decision:
        """Would ``trigger`` be allowed on ``subject`` now? Pure: changes nothing."""
        entity = self.entities.get(subject)
        if entity is None:
            return Decision(False, reason=UnknownEntity(subject).reason)
        uow = _UnitOfWork(self)
        moment = time or self.clock
        if moment is None:
            raise ValueError("may() needs a time when the engine has seen none")
        # The same field checks as apply, so params read like an event's data ("60.00").
        inp = next((i for i in self.compiled[entity.lifecycle].declaration.inputs
                    if i.trigger == trigger), None)
        try:
            if inp is not None:
                params = self._params(inp, params or {})
            chosen, _ = self._decide(uow, entity, trigger, params or {}, "may", moment)
        except InvalidEvent as exc:
            return Decision(False, reason=exc.reason)
        except TransitionRefused as exc:
            return Decision(False, reason=exc.reason, guard=exc.guard)
        return Decision(True, dest=chosen.dest)

    # -- time -----------------------------------------------------------------------
    def advance_to(self, moment: datetime) -> list[Outcome]:
        """Fire every timer due at or before ``moment``; the clock becomes ``moment``."""
        return self._advance(moment, True)

    def _advance(self, moment: datetime, want: bool) -> list[Outcome]:
        """:meth:`advance_to`; without ``want`` the outcomes are built only for subscribers
        and not returned."""
        fired: list[Outcome] = []
        timers = self._timers
        entities = self.entities
        while timers and timers[0][0] <= moment:
            due, subject, armed = heapq.heappop(timers)
            holder = entities.get(subject)  # _live, inlined
            if holder is not None:
                for held in holder.timers:
                    if held is armed:
                        break
                else:
                    holder = None
            if holder is None:
                self._stale -= 1
                continue  # stale: the entity left the state or re-armed the timer
            if self.clock is None or due > self.clock:
                self.clock = due
            when = self.clock  # a timer armed after its due time (overdue) fires now
            try:
                if self.interpret:
                    uow: _UnitOfWork | None = _UnitOfWork(self)
                    self._step(uow, subject, armed.trigger, _NO_PARAMS, armed.cause, when)  # type: ignore[arg-type]
                    if uow.queue:  # type: ignore[union-attr]
                        self._cascade(uow, armed.cause, when)  # type: ignore[arg-type]
                    fast = None
                else:
                    uow, fast = self._fire(subject, armed.trigger, _NO_PARAMS, armed.cause, when, None)
            except EventRejected as exc:
                # A timer whose transition is refused (a guard changed its mind) is
                # dropped, loudly: the entity stays as it was.
                if structlog.is_configured():
                    _log.warning("timer.refused", entity=subject, timer=armed.name,
                                 reason=exc.reason)
                continue
            if uow is not None:
                fired.append(self._commit(uow, armed.cause, when, timer=armed.name, due=due))
            else:
                outcome = self._commit_one(*fast, armed.trigger, armed.cause, when, None, want,  # type: ignore[misc,call-arg]
                                           armed.name, due)
                if want:
                    fired.append(outcome)  # type: ignore[arg-type]
        if self.clock is None or moment > self.clock:
            self.clock = moment
        return fired

    def _live(self, subject: str, armed: ArmedTimer) -> bool:
        """Does the entity still hold this very timer? (Else its heap entry is stale.)"""
        entity = self.entities.get(subject)
        if entity is not None:
            for held in entity.timers:
                if held is armed:
                    return True
        return False

    def _compact(self) -> None:
        """Drop stale heap entries once they are two thirds of the heap.

        A re-armed or disarmed timer leaves its old entry in the heap (deleting from a
        heap is O(n)); they are skipped when popped. On a long log (many resubmissions,
        each restarting a 14-day timer) they would pile up, and memory would grow with
        the log instead of with the live entities. Rebuilding costs O(n) and happens
        once stale entries are two thirds of the heap (the heap stays within three
        times the live timers), so it is O(1) amortised per timer. Filtered in place:
        the rebuild adds nothing to the peak memory of a replay.
        """
        heap = self._timers
        get = self.entities.get
        write = 0
        for entry in heap:
            holder = get(entry[1])  # _live, inlined: this loop visits the whole heap
            if holder is not None:
                armed = entry[2]
                for held in holder.timers:
                    if held is armed:
                        heap[write] = entry  # write <= the position read: safe
                        write += 1
                        break
        del heap[write:]
        heapq.heapify(heap)
        self._stale = 0

    # -- applying -------------------------------------------------------------------
    def apply(self, event: Event) -> Outcome:
        """Apply one input event; raise an :class:`~.errors.EventRejected` if refused.

        Timers due up to the event's time fire first (their outcomes go to
        subscribers) and the clock advances even when the event itself is refused:
        the clock is the latest time of any well-formed event.
        """
        return self._apply(event, True)  # type: ignore[return-value]

    def feed(self, event: Event) -> bool:
        """:meth:`apply` for a caller that needs no :class:`Outcome` (a replay): True when
        the event applied, False for a duplicate. Outcomes are built only when someone
        subscribes; effects still reach :attr:`effect_sink`."""
        return self._apply(event, False) is not _DUPLICATE

    def _apply(self, event: Event, want: bool) -> Outcome | None:
        event_id = event.id
        seen = self.applied.get(event_id)
        if seen is not None:
            same = self.same_content
            if seen == event.digest if same is None else same(seen, event):
                return Outcome(cause=event_id, time=event.time, duplicate=True) if want else _DUPLICATE
        moment = event.time
        clock = self.clock
        if clock is not None and moment < clock and seen is None:
            raise OutOfOrder(f"out of order: {_fmt(moment)} is before the clock {_fmt(clock)}")
        timers = self._timers
        if timers and timers[0][0] <= moment:
            self._advance(moment, False)  # a conflict is well-formed: it moves the clock too
        elif clock is None or moment > clock:
            self.clock = moment
        if seen is not None:
            raise Conflict(f"id {event_id!r} was applied before with different content")
        found = self._inputs.get(event.type)
        kind, _, ident = event.subject.partition("/")
        if found is None or kind != found[0] or not ident or "/" in ident:
            found = self._resolve(event)  # raises, naming the first thing wrong
        kind, inp, variants, creates = found
        data = event.data
        params = self._params(inp, data) if inp.fields or type(data) is not dict else _NO_PARAMS
        create = None
        if creates:  # _variant, inlined
            field = self._variant_field.get(kind)
            create = variants[None] if field is None else variants[params[field]]
        trigger = inp.trigger
        if self.interpret:
            uow: _UnitOfWork | None = _UnitOfWork(self)
            self._step(uow, event.subject, trigger, params, event_id, moment, create=create)  # type: ignore[arg-type]
            if uow.queue:  # type: ignore[union-attr]
                self._cascade(uow, event_id, moment)  # type: ignore[arg-type]
        else:
            # _fire, inlined: the path of nearly every event (a call and a tuple saved).
            subject = event.subject
            entity = self.entities.get(subject)
            if create is not None:
                if entity is not None:
                    raise EntityExists(subject, entity.state)
                compiled = self.compiled[create]
                old = None
                entity = Entity(subject, create, INITIAL, compiled.empty_data, 0)
            elif entity is None:
                if self.fence is not None:
                    self.fence(subject)
                raise UnknownEntity(subject)
            else:
                compiled = self.compiled[entity.lifecycle]
                old = entity
            source = entity.state
            step = compiled.steps.get((source, trigger))
            if step is None:
                raise TransitionRefused(subject, source, trigger)
            new, effects, sends = step(self._view, entity, params, event_id, moment)
            if sends is None or self._droppable(sends, subject, new):
                self.applied[event_id] = event.digest
                one = self._commit_one(compiled, old, new, effects, source, trigger, event_id,
                                       moment, create, want)
                if timers and timers[0][0] <= moment:
                    self._advance(moment, False)
                return one
            uow = self._cascade_from(compiled, entity, new, effects, sends, source, trigger,
                                     event_id, moment, create)
        self.applied[event_id] = event.digest
        outcome: Outcome | None = self._commit(uow, event_id, moment)  # type: ignore[arg-type]
        # A timer this event armed already due (an order rejected after its content
        # deadline) fires right away, not at some later event.
        if timers and timers[0][0] <= moment:
            self._advance(moment, False)
        return outcome

    def _resolve(self, event: Event) -> tuple[str, Input, dict[str | None, str], bool]:
        found = self._inputs.get(event.type)
        if found is None:
            raise InvalidEvent(f"unknown event type {event.type!r}", field="type")
        kind, _, ident = event.subject.partition("/")
        if not ident or "/" in ident:
            raise InvalidEvent(f"subject {event.subject!r} is not <kind>/<id>", field="subject")
        if kind != found[0]:
            raise InvalidEvent(
                f"event type {event.type} does not apply to subject {event.subject}",
                field="subject",
            )
        return found

    @staticmethod
    def _params(inp: Input, data: Mapping[str, Any]) -> Mapping[str, Any]:
        if type(data) is not dict and not isinstance(data, Mapping):
            raise InvalidEvent("data must be an object", field="data")
        if not inp.fields:
            return _NO_PARAMS
        params: dict[str, Any] = {}
        for field in inp.fields:
            if field.name not in data or data[field.name] is None:
                if field.required:
                    raise InvalidEvent(f"data.{field.name} is required for {inp.type}",
                                       field=f"data.{field.name}")
                continue
            try:
                params[field.name] = field.parse(data[field.name])
            except ValueError as exc:
                raise InvalidEvent(f"data.{field.name}: {exc}", field=f"data.{field.name}") from None
        return params

    def _allowed(self, uow: _UnitOfWork, entity: Entity, trigger: str,
                 params: Mapping[str, Any], cause: str, time: datetime) -> bool:
        """Would ``_choose`` succeed? Without building an exception for a no."""
        compiled = self.compiled[entity.lifecycle]
        candidates = compiled.table.get((entity.state, trigger))
        if not candidates:
            return False
        ctx = Context(uow, entity, entity.subject, entity.data, compiled.declaration, trigger,
                      params, cause, time)
        return any(all(test(ctx) for test in c.tests) for c in candidates)

    def _decide(self, uow: _UnitOfWork, entity: Entity, trigger: str,
                params: Mapping[str, Any], cause: str, time: datetime,
                ) -> tuple[CompiledTransition, Context]:
        """The transition ``trigger`` takes from ``entity`` now, and the context its
        guards saw; :class:`~.errors.TransitionRefused` when none is allowed."""
        compiled = self.compiled[entity.lifecycle]
        candidates = compiled.table.get((entity.state, trigger))
        if not candidates:
            raise TransitionRefused(entity.subject, entity.state, trigger)
        ctx = Context(uow, entity, entity.subject, entity.data, compiled.declaration, trigger,
                      params, cause, time)
        return self._choose(ctx, candidates), ctx

    @staticmethod
    def _choose(ctx: Context, candidates: tuple[CompiledTransition, ...]) -> CompiledTransition:
        """The first candidate whose guards all hold; else refuse, explaining the guard
        of the candidate that got furthest (the most specific reason)."""
        # Conditional transitions often share guards (submit: auto or manual review,
        # both "before the deadline"): each guard runs once per step. Guards are pure,
        # so the memo changes no answer.
        memo: dict[Callable[[Any], bool], bool] = {}
        furthest = -1
        guard = None
        for candidate in candidates:
            passed = 0
            for test in candidate.tests:
                ok = memo.get(test)
                if ok is None:
                    ok = memo[test] = bool(test(ctx))
                if not ok:
                    if passed > furthest:
                        furthest, guard = passed, candidate.guards[passed]
                    break
                passed += 1  # noqa: SIM113 - enumerate costs more on this path
            else:
                return candidate
        assert guard is not None
        entity = ctx.entity
        raise TransitionRefused(entity.subject, entity.state, ctx.trigger,
                                guard.explain(ctx), guard.name, guard.field)

    def _step(self, uow: _UnitOfWork, subject: str, trigger: str, params: Mapping[str, Any],
              cause: str, time: datetime, *, create: str | None = None) -> None:
        # The hot path of the engine: every input event and every cascade comes here.
        # Inlined on purpose (uow.get, the single-candidate choice): each call saved is
        # a measurable share of a replay.
        entity = uow.changed.get(subject)
        if entity is None:
            entity = self.entities.get(subject)
        if create is not None:
            if entity is not None:
                raise EntityExists(subject, entity.state)
            entity = Entity(subject, create, INITIAL, self.compiled[create].empty_data, 0)
        elif entity is None:
            if self.fence is not None:
                self.fence(subject)
            raise UnknownEntity(subject)
        source = entity.state
        compiled = self.compiled[entity.lifecycle]
        candidates = compiled.table.get((source, trigger))
        if not candidates:
            raise TransitionRefused(subject, source, trigger)
        ctx = Context(uow, entity, entity.subject, entity.data, compiled.declaration, trigger,
                      params, cause, time)
        chosen: CompiledTransition | None = None
        if len(candidates) == 1:
            chosen = candidates[0]
            for test in chosen.tests:
                if not test(ctx):
                    chosen = None
                    break
        if chosen is None:
            chosen = self._choose(ctx, candidates)
        data: Mapping[str, Any] | None = None  # new data, once assigned to
        effects: list[Effect] = []
        for action in chosen.actions:
            for item in action.run(ctx):
                if isinstance(item, Effect):
                    effects.append(item)
                elif isinstance(item, Assign):
                    try:
                        data = compiled.evolve(entity.data if data is None else data, item.changes)
                    except TypeError as exc:  # a name the lifecycle's data does not declare
                        raise TypeError(f"action {action.name}: {exc}") from None
                elif isinstance(item, Send):
                    uow.queue.append(item)
                else:
                    raise TypeError(f"action {action.name} returned {item!r}")
        if data is None:
            data = entity.data  # shared: records never mutate it
        dest = chosen.dest
        timers: tuple[ArmedTimer, ...] = ()
        specs = compiled.timers_by_state.get(dest)
        if specs:
            armed = []
            for spec in specs:
                due = spec.due(data)
                if due is not None:
                    armed.append(ArmedTimer(spec.name, spec.trigger, due, spec.cause(data)))
            timers = tuple(armed)
            if timers == entity.timers:
                timers = entity.timers  # unchanged: the commit need not re-arm
        version = entity.version + 1
        # The record keeps the subject string it was created with (the entities dict's own
        # key), not this event's equal copy: one string per entity, not two.
        uow.changed[subject] = Entity(entity.subject, entity.lifecycle, dest, data, version,  # type: ignore[arg-type]
                                      timers)
        if create is not None and (link := compiled.declaration.parent) is not None:
            uow.new_children.setdefault(f"{link.kind}/{data[link.field]}", []).append(subject)  # type: ignore[index]
        uow.steps.append(Step(subject, entity.lifecycle, trigger, source, dest, version,
                              tuple(effects)))

    # -- the generated step functions ------------------------------------------------
    def _fire(self, subject: str, trigger: str, params: Mapping[str, Any], cause: str,
              time: datetime, create: str | None,
              ) -> tuple[_UnitOfWork | None, _Fast | None]:
        """One step through its generated function. The common case (one entity, and no
        send that could do anything) returns ``(None, fast)`` for :meth:`_commit_one`,
        having built no unit of work; otherwise ``(uow, None)``, cascade applied."""
        entity = self.entities.get(subject)
        if create is not None:
            if entity is not None:
                raise EntityExists(subject, entity.state)
            compiled = self.compiled[create]
            entity = Entity(subject, create, INITIAL, compiled.empty_data, 0)
            old = None
        else:
            if entity is None:
                if self.fence is not None:
                    self.fence(subject)
                raise UnknownEntity(subject)
            compiled = self.compiled[entity.lifecycle]
            old = entity
        source = entity.state
        step = compiled.steps.get((source, trigger))
        if step is None:
            raise TransitionRefused(subject, source, trigger)
        new, effects, sends = step(self._view, entity, params, cause, time)
        if sends is not None and not self._droppable(sends, subject, new):
            return self._cascade_from(compiled, entity, new, effects, sends, source, trigger,
                                      cause, time, create), None
        return None, (compiled, old, new, effects, source)

    def _cascade_from(self, compiled: CompiledLifecycle, entity: Entity, new: Entity,
                      effects: list[Effect] | tuple[()], sends: list[Send], source: str,
                      trigger: str, cause: str, time: datetime, create: str | None,
                      ) -> _UnitOfWork:
        """The unit of work of a first step whose sends may do something: that step
        pending, then its cascade applied."""
        subject = new.subject
        uow = _UnitOfWork(self)
        uow.changed[subject] = new
        if create is not None and (link := compiled.declaration.parent) is not None:
            uow.new_children[f"{link.kind}/{new.data[link.field]}"] = [subject]
        uow.steps.append(Step(subject, entity.lifecycle, trigger, source, new.state,
                              new.version, tuple(effects)))
        uow.queue.extend(sends)
        self._cascade(uow, cause, time)
        return uow

    def _droppable(self, sends: list[Send], subject: str, new: Entity) -> bool:
        """Would the cascade drop every one of ``sends`` without a step? (Optional sends
        whose target has no transition for the trigger in its state: an order telling
        its creator project it closed.) Checked in queue order, as the cascade would."""
        compiled = self.compiled
        view = self._view
        for send in sends:
            if not send.optional:
                return False
            target = new if send.subject == subject else view.get(send.subject)
            if target is not None and (target.state, send.trigger) in compiled[target.lifecycle].table:
                return False
        return True

    def _commit_one(self, compiled: CompiledLifecycle, old: Entity | None, new: Entity,
                    effects: list[Effect] | tuple[()], source: str, trigger: str, cause: str,
                    time: datetime, create: str | None, want: bool, timer: str | None = None,
                    due: datetime | None = None) -> Outcome | None:
        """:meth:`_commit` for one step and no unit of work (the fast path)."""
        subject = new.subject
        self.entities[subject] = new
        timers = new.timers
        if old is not None and old.timers and old.timers is not timers:
            self._stale += len(old.timers)  # new timers are new objects: the old are stale
        if timers and (old is None or old.timers is not timers):
            heap = self._timers
            for armed in timers:
                heapq.heappush(heap, (armed.due, subject, armed))
        if self._stale > self.COMPACT_AFTER and self._stale * 3 > len(self._timers) * 2:
            self._compact()
        if create is not None and (link := compiled.declaration.parent) is not None:
            self.children.setdefault(f"{link.kind}/{new.data[link.field]}", []).append(subject)
        sink = self.effect_sink
        if sink is not None:
            for effect in effects:
                sink(effect, subject)
        subscribers = self._subscribers
        outcome = None
        if want or subscribers:
            outcome = Outcome(cause, time, (Step(subject, new.lifecycle, trigger, source, new.state,
                                                 new.version, tuple(effects)),), timer, False, due)
        config = _STRUCTLOG_CONFIG  # two attribute reads where a quiet logger needs no call
        if ((config.is_configured and config.default_wrapper_class not in _QUIET_WRAPPERS)
                if config is not None else _is_configured()) and (log := _transition_log()) is not None:
            log.debug("transition", entity=subject, event_id=cause, trigger=trigger,
                      src=source, dst=new.state, version=new.version, timer=timer)
        for subscriber in subscribers:
            subscriber(outcome)  # type: ignore[arg-type]
        return outcome

    def _step_compiled(self, uow: _UnitOfWork, subject: str, trigger: str,
                       params: Mapping[str, Any], cause: str, time: datetime, *,
                       create: str | None = None) -> None:
        """:meth:`_step` through the generated function: a step of a cascade."""
        entity = uow.changed.get(subject)
        if entity is None:
            entity = self.entities.get(subject)
        if create is not None:  # pragma: no cover - a cascade never creates
            if entity is not None:
                raise EntityExists(subject, entity.state)
            entity = Entity(subject, create, INITIAL, self.compiled[create].empty_data, 0)
        elif entity is None:
            if self.fence is not None:
                self.fence(subject)
            raise UnknownEntity(subject)
        source = entity.state
        compiled = self.compiled[entity.lifecycle]
        step = compiled.steps.get((source, trigger))
        if step is None:
            raise TransitionRefused(subject, source, trigger)
        new, effects, sends = step(uow, entity, params, cause, time)
        uow.changed[subject] = new
        if create is not None and (link := compiled.declaration.parent) is not None:  # pragma: no cover
            uow.new_children.setdefault(f"{link.kind}/{new.data[link.field]}", []).append(subject)
        uow.steps.append(Step(subject, entity.lifecycle, trigger, source, new.state, new.version,
                              tuple(effects)))
        if sends is not None:
            uow.queue.extend(sends)

    def _cascade(self, uow: _UnitOfWork, cause: str, time: datetime) -> None:
        """Apply the sends of the steps so far, first in first out, sends of sends too."""
        queue = uow.queue
        step = self._step if self.interpret else self._step_compiled
        index = 0
        while index < len(queue):
            send = queue[index]
            index += 1
            if send.optional:
                target = uow.get(send.subject)
                if target is None or not self._allowed(uow, target, send.trigger, send.params,
                                                       cause, time):
                    continue
            step(uow, send.subject, send.trigger, send.params, cause, time)

    def _commit(self, uow: _UnitOfWork, cause: str, time: datetime, *,
                timer: str | None = None, due: datetime | None = None) -> Outcome:
        entities = self.entities
        timers = self._timers
        for subject, entity in uow.changed.items():
            old = entities.get(subject)
            entities[subject] = entity
            if old is not None and old.timers and old.timers is not entity.timers:
                self._stale += len(old.timers)  # new timers are new objects: the old are stale
            if entity.timers and (old is None or old.timers is not entity.timers):
                for armed in entity.timers:
                    heapq.heappush(timers, (armed.due, entity.subject, armed))
        if self._stale > self.COMPACT_AFTER and self._stale * 3 > len(timers) * 2:
            self._compact()
        if uow.new_children:
            for parent, subjects in uow.new_children.items():
                self.children.setdefault(parent, []).extend(subjects)
        sink = self.effect_sink
        if sink is not None:
            for step in uow.steps:
                for effect in step.effects:
                    sink(effect, step.subject)
        outcome = Outcome(cause, time, tuple(uow.steps), timer, False, due)
        # Log only once the application configured structlog: unconfigured, structlog
        # prints everything to stdout, which an embedded library must never do.
        if _is_configured():
            # Resolve the configured logger once per commit and skip the per-step calls
            # when it filters DEBUG out: a discarded call through structlog's lazy proxy
            # costs microseconds, more than the step itself.
            log = _transition_log()
            if log is not None:
                for step in outcome.steps:
                    log.debug("transition", entity=step.subject, event_id=cause,
                              trigger=step.trigger, src=step.source, dst=step.dest,
                              version=step.version, timer=timer)
        for subscriber in self._subscribers:
            subscriber(outcome)
        return outcome

    # -- restoring (stores) ---------------------------------------------------------
    def restore(self, entities: Iterable[Entity], *, applied: Mapping[str, Digest] | None = None,
                clock: datetime | None = None, reset: bool = False) -> None:
        """Install committed records kept by a store: rehydrating on open, catching up
        with another writer, or starting over after a failed write (``reset``).

        ``entities`` come in order of creation. A record replaces an older version of
        its entity (never a newer one); a new subject joins its parent's children and
        its timers are armed. No rule runs here: the records are what rules produced.
        """
        if reset:
            self.entities.clear()
            self.children.clear()
            self.applied.clear()
            self._timers.clear()
            self._stale = 0
            self.clock = None
        for entity in entities:
            old = self.entities.get(entity.subject)
            if old is not None and old.version >= entity.version:
                continue
            compiled = self.compiled[entity.lifecycle]
            data = compiled.coerce(entity.data)  # a store keeps dicts; the lifecycle, records
            if data is not entity.data:
                entity = msgspec.structs.replace(entity, data=data)
            self.entities[entity.subject] = entity
            link = compiled.declaration.parent
            if old is None and link is not None:
                parent = f"{link.kind}/{entity.data[link.field]}"
                self.children.setdefault(parent, []).append(entity.subject)
            if old is not None and old.timers and old.timers is not entity.timers:
                self._stale += len(old.timers)
            if entity.timers and (old is None or old.timers is not entity.timers):
                for armed in entity.timers:
                    heapq.heappush(self._timers, (armed.due, entity.subject, armed))
        if applied:
            self.applied.update(applied)
        if clock is not None and (self.clock is None or clock > self.clock):
            self.clock = clock


_fmt = format_instant
