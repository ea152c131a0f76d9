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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
    on_enter: tuple[str, ...] = ()


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
    sources: tuple[str, ...]
    dest: str
    guards: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
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

    ``parties`` declares who may send it (``("advertiser",)``): the parties an
    authenticating service (``statemachine.service.auth``) lets through, and what the
    diagrams print beside the trigger. Empty: the lifecycle does not say (anyone).
    """

    type: str
    trigger: str
    fields: tuple[Field, ...] = ()
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
    """

    name: str
    kind: str
    title: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    guards: tuple[Guard, ...] = ()
    actions: tuple[Action, ...] = ()
    timers: tuple[Timer, ...] = ()
    inputs: tuple[Input, ...] = ()
    parent: Parent | None = None
    variant: str | None = None
    description: str = ""
    data: tuple[str, ...] = ()

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

    lifecycles: tuple[Lifecycle, ...]
    variant_field: Mapping[str, str] = attrs.field(factory=dict)

    def lifecycle(self, name: str) -> Lifecycle:
        for lifecycle in self.lifecycles:
            if lifecycle.name == name:
                return lifecycle
        raise KeyError(f"no lifecycle named {name!r}")
