"""A lifecycle declared as plain data.

The declaration says *what* a lifecycle is: its states, the transitions between them
(trigger, sources, destination), the named guards that may refuse a transition, the
named actions whose effects go out once it commits, the timers that fire it, and the
external events (with their fields) that drive it. It says nothing of *how* events are
applied: that is :mod:`statemachine.engine.runtime`. The runtime, the diagrams and the
docs all read this one declaration, so it is the single source of truth.

Everything here is a frozen ``attrs`` class. Guards and actions are plain functions
referenced by *name* from transitions, like XState's ``guard: 'isPaid'``; a compile
step (:mod:`statemachine.engine.compiler`) resolves and checks the names once.

A transition may also name a :class:`Guard` or :class:`Action` *object* in place of its
name (written once with :func:`guard` and :func:`action`, next to its function), a single
source without a tuple, and a lifecycle may leave out ``kind`` (its ``name``) and
``title``. That is sugar only: :class:`Lifecycle` normalises it on construction into
the one canonical form (names in transitions, the objects in ``guards``/``actions``),
so the compiler, the runtime and the diagrams never see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

import attrs

if TYPE_CHECKING:
    from .runtime import Context

__all__ = [
    "INITIAL",
    "Action",
    "Domain",
    "Field",
    "Guard",
    "Input",
    "Lifecycle",
    "Parent",
    "State",
    "Timer",
    "Transition",
    "action",
    "guard",
]

#: The pseudo-state an entity is in before its creating transition: a creation is a
#: transition from ``INITIAL`` (drawn as the black dot in diagrams).
INITIAL = "__initial__"


@attrs.frozen
class State:
    """A state. ``final`` states accept no trigger; ``group`` clusters states in diagrams.

    ``on_enter`` names actions that run whenever the state is entered, whatever the
    transition (XState's entry actions): e.g. refunds when a cancellation takes effect.
    """

    name: str
    description: str = ""
    final: bool = False
    group: str | None = None
    on_enter: tuple[str, ...] = attrs.field(default=(), converter=lambda v: _refs(v, "Action"))


@attrs.frozen
class Guard:
    """A pure predicate: may this transition happen?

    ``test(ctx)`` returns a bool and must have no effects, so "may I?" can be asked at
    any time. ``reason`` explains a refusal: a string, or a function of the context for
    a reason that quotes values ("would exceed the budget: 80.00 of 100.00 spent").
    ``label`` is the short text a diagram shows in brackets. ``field`` names the input
    field the guard judges (``data.fee``), so a refusal can point at it.
    """

    name: str
    test: Callable[[Context], bool]
    reason: str | Callable[[Context], str]
    label: str = ""
    field: str | None = None

    def explain(self, ctx: Context) -> str:
        return self.reason(ctx) if callable(self.reason) else self.reason


@attrs.frozen
class Action:
    """A named action: returns what a committed transition does.

    ``run(ctx)`` returns an iterable of :class:`~statemachine.engine.effects.Assign`
    (changes to the entity's data), :class:`~statemachine.engine.effects.Send`
    (a trigger for another entity, applied in the same atomic step) and domain
    :class:`~statemachine.engine.effects.Effect` objects (emitted after the commit).
    ``label`` is what a diagram shows after the slash ("refund 90 %").
    """

    name: str
    run: Callable[[Context], Iterable[Any]]
    label: str = ""
    description: str = ""


@attrs.frozen
class Transition:
    """``trigger``: ``sources`` → ``dest`` if every guard in ``guards`` holds.

    Several transitions may share a trigger and a source: the first whose guards all
    hold is taken (a conditional transition, as in ``transitions`` and XState).
    ``internal`` transitions are fired only by the engine (a timer, another entity);
    external events cannot name them.
    """

    trigger: str
    sources: tuple[str, ...] = attrs.field(converter=lambda v: _sources(v))
    dest: str
    guards: tuple[str, ...] = attrs.field(default=(), converter=lambda v: _refs(v, "Guard"))
    actions: tuple[str, ...] = attrs.field(default=(), converter=lambda v: _refs(v, "Action"))
    internal: bool = False
    description: str = ""


@attrs.frozen
class Timer:
    """A timer as data: while the entity is in one of ``states``, ``trigger`` is due at
    ``due(entity)``; ``cause(entity)`` is the id of the event that armed it.

    The runtime re-arms timers after every commit, so leaving ``states`` disarms, and a
    new ``due`` (a resubmission) restarts the clock. ``delay`` is the text diagrams show
    ("14 days"). Nothing here runs a thread: an injected clock fires due timers.
    """

    name: str
    trigger: str
    states: tuple[str, ...]
    due: Callable[[Any], datetime | None]
    cause: Callable[[Any], str]
    delay: str = ""
    period: timedelta | None = None


@attrs.frozen
class Field:
    """One field of an input event's ``data``: ``parse`` converts the JSON value and
    raises ``ValueError`` with the reason when it is not acceptable."""

    name: str
    parse: Callable[[Any], Any]
    required: bool = True
    description: str = ""


@attrs.frozen
class Input:
    """An external event type (``order.submitted``) and the trigger it fires.

    ``fields`` are :class:`Field` s, or a mapping of required fields to their parsers
    (``{"reason": fields.text}``). ``parties`` declares who may send it
    (``("advertiser",)``): the parties an authenticating service
    (``statemachine.service.auth``) lets through, and what the diagrams print beside the
    trigger. Empty: the lifecycle does not say (anyone).
    """

    type: str
    trigger: str
    fields: tuple[Field, ...] = attrs.field(default=(), converter=lambda v: _fields(v))
    parties: tuple[str, ...] = ()


@attrs.frozen
class Parent:
    """An entity belongs to a parent: its ``field`` (an id) names ``kind/<id>``.

    The runtime keeps the parent's children in creation order, so guards of the
    parent can ask about them (``ctx.children('order')``).
    """

    kind: str
    field: str


@attrs.frozen
class Lifecycle:
    """A whole lifecycle: the declaration the engine compiles and diagrams draw.

    ``kind`` is the subject prefix (``order`` in ``order/O-1``); ``variant`` tells apart
    lifecycles of one kind chosen at creation (``creator``/``partner`` projects).

    ``data`` names the fields the actions may assign. Declared, the entities' data is a
    compact read-only record (:mod:`.record`: 80 bytes for an order, where a dict takes 272)
    and assigning any other name is an error; left empty, data is a plain dict.

    ``status`` declares a *derived* status: ``status(entity, get)`` (``get`` looks up
    another entity by subject) says what the entity effectively does given its own
    state and the entities it depends on (an ad whose campaign is off is
    ``off_by_campaign``). It is never stored: the runtime computes it on read
    (:meth:`~.runtime.Runtime.status`, ``Context.status``) from whatever records it
    sees, committed or pending, so a parent turned on again restores exactly what its
    children's own states say. ``None``: the status is the own state.
    """

    name: str
    kind: str = ""
    title: str = ""
    states: tuple[State, ...] = ()
    transitions: tuple[Transition, ...] = ()
    guards: tuple[Guard, ...] = ()
    actions: tuple[Action, ...] = ()
    timers: tuple[Timer, ...] = ()
    inputs: tuple[Input, ...] = ()
    parent: Parent | None = None
    variant: str | None = None
    description: str = ""
    data: tuple[str, ...] = ()
    status: Callable[[Any, Callable[[str], Any]], str] | None = None

    def __attrs_post_init__(self) -> None:
        _normalise(self)

    def state(self, name: str) -> State:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(f"{self.name} has no state {name!r}")

    @property
    def initial(self) -> str:
        """The state the creating transition leads to."""
        for transition in self.transitions:
            if INITIAL in transition.sources:
                return transition.dest
        raise ValueError(f"{self.name} has no creating transition")


@attrs.frozen
class Domain:
    """The set of lifecycles one engine runs, and how a creation picks a variant.

    ``variant_field`` maps a kind with several variants to the creation field that
    chooses among them: ``{"project": "kind"}`` picks ``creator`` or ``partner``.
    """

    lifecycles: tuple[Lifecycle, ...] = attrs.field(converter=lambda v: _lifecycles(v))
    variant_field: Mapping[str, str] = attrs.field(factory=dict)

    def lifecycle(self, name: str) -> Lifecycle:
        for lifecycle in self.lifecycles:
            if lifecycle.name == name:
                return lifecycle
        raise KeyError(f"no lifecycle named {name!r}")


# -- the sugar, and its normalisation into the canonical form -------------------------
class _Ref(str):
    """The name of a guard or action written as the object itself: equal to its name
    (so it may stand wherever a name does) and carrying the object until
    :class:`Lifecycle` moves it into its ``guards`` or ``actions``."""

    item: Guard | Action

    def __new__(cls, item: Guard | Action) -> _Ref:
        ref = super().__new__(cls, item.name)
        ref.item = item
        return ref


def _refs(value: Any, kind: str) -> tuple[str, ...]:
    """Names from names, :class:`Guard`/:class:`Action` objects, or a single one of either."""
    items = (value,) if isinstance(value, str | Guard | Action) else tuple(value)
    out: list[str] = []
    for item in items:
        if isinstance(item, Guard | Action):
            if type(item).__name__ != kind:
                raise TypeError(f"{item.name!r} is a {type(item).__name__}, not a {kind}")
            out.append(_Ref(item))
        elif isinstance(item, str):
            out.append(item)
        else:
            raise TypeError(f"a {kind} is given by its name or as a {kind}, not {item!r}")
    return tuple(out)


def _sources(value: str | Iterable[str]) -> tuple[str, ...]:
    """One source state as a plain string, or several."""
    return (value,) if isinstance(value, str) else tuple(value)


def _fields(value: Mapping[str, Callable[[Any], Any]] | Iterable[Field]) -> tuple[Field, ...]:
    """Fields as declared, or ``{"reason": fields.text}``: required fields by name and parser."""
    if isinstance(value, Mapping):
        return tuple(Field(name, parse) for name, parse in value.items())
    return tuple(value)


def _lifecycles(value: Lifecycle | Iterable[Lifecycle]) -> tuple[Lifecycle, ...]:
    return (value,) if isinstance(value, Lifecycle) else tuple(value)


def _hoist(names: tuple[str, ...], found: list[Any]) -> tuple[str, ...]:
    """Plain names for ``names``; the objects behind references appended to ``found``
    (once each: equal objects are one declaration)."""
    plain: list[str] = []
    for name in names:
        if isinstance(name, _Ref):
            if name.item not in found:
                found.append(name.item)
            name = str.__str__(name)
        plain.append(name)
    return tuple(plain)


def _normalise(lc: Lifecycle) -> None:
    """Rewrite ``lc`` in place (once, at construction) into the canonical form.

    ``kind`` defaults to ``name``, ``title`` to the name in words. Guard and action
    objects named in transitions or entry actions join ``guards``/``actions`` after the
    declared ones, in order of first use, and are replaced by their names. Two
    *different* objects of one name both join, so the compiler reports the duplicate.
    """
    setattr_ = object.__setattr__
    if not lc.kind:
        setattr_(lc, "kind", lc.name)
    if not lc.title:
        setattr_(lc, "title", lc.name.replace("_", " ").capitalize())
    guards, actions = list(lc.guards), list(lc.actions)
    transitions = tuple(
        attrs.evolve(t, guards=_hoist(t.guards, guards), actions=_hoist(t.actions, actions))
        if any(isinstance(n, _Ref) for n in (*t.guards, *t.actions)) else t
        for t in lc.transitions
    )
    states = tuple(
        attrs.evolve(s, on_enter=_hoist(s.on_enter, actions))
        if any(isinstance(n, _Ref) for n in s.on_enter) else s
        for s in lc.states
    )
    setattr_(lc, "states", tuple(states))
    setattr_(lc, "transitions", transitions)
    setattr_(lc, "guards", tuple(guards))
    setattr_(lc, "actions", tuple(actions))
    for name in ("inputs", "timers", "data"):
        value = getattr(lc, name)
        if not isinstance(value, tuple):
            setattr_(lc, name, tuple(value))


def guard(reason: str | Callable[[Context], str], *, label: str = "", field: str | None = None,
          name: str | None = None) -> Callable[[Callable[[Context], bool]], Guard]:
    """Declare a guard where its test is written: the function becomes a :class:`Guard`
    named after it (a leading ``_`` dropped), to be named in transitions as an object::

        @guard("the request was answered already", label="unanswered")
        def unanswered(ctx): ...

        Transition("escalate", "waiting", "escalated", guards=[unanswered])
    """

    def declare(test: Callable[[Context], bool]) -> Guard:
        return Guard(name or test.__name__.lstrip("_"), test, reason, label, field)

    return declare


@overload
def action(run: Callable[[Context], Iterable[Any]], *, label: str = "", description: str = "",
           name: str | None = None) -> Action: ...


@overload
def action(run: None = None, *, label: str = "", description: str = "",
           name: str | None = None) -> Callable[[Callable[[Context], Iterable[Any]]], Action]: ...


def action(run: Callable[[Context], Iterable[Any]] | None = None, *, label: str = "",
           description: str = "", name: str | None = None,
           ) -> Action | Callable[[Callable[[Context], Iterable[Any]]], Action]:
    """Declare an action where its function is written (``@action`` or
    ``@action(label="charge fee")``): the function becomes an :class:`Action` named
    after it (a leading ``_`` dropped), to be named in transitions as an object."""

    def declare(fn: Callable[[Context], Iterable[Any]]) -> Action:
        return Action(name or fn.__name__.lstrip("_"), fn, label, description)

    return declare if run is None else declare(run)
