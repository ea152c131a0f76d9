"""The ground floor: declaration types, compiler and runtime. Knows nothing of orders."""

from .applied import SpilledIds
from .compiler import CompiledLifecycle, CompiledTransition, compile_lifecycle
from .declaration import (
    INITIAL,
    Action,
    Domain,
    Field,
    Guard,
    Input,
    Lifecycle,
    Parent,
    State,
    Timer,
    Transition,
    action,
    guard,
)
from .effects import Assign, Effect, Send
from .errors import (
    Conflict,
    DeclarationError,
    EntityExists,
    EventRejected,
    InvalidEvent,
    OutOfOrder,
    TransitionRefused,
    UnknownEntity,
)
from .record import Record, record_type
from .runtime import ArmedTimer, Context, Decision, Entity, Event, Outcome, Runtime, Step

__all__ = [
    "INITIAL",
    "Action",
    "ArmedTimer",
    "Assign",
    "CompiledLifecycle",
    "CompiledTransition",
    "Conflict",
    "Context",
    "Decision",
    "DeclarationError",
    "Domain",
    "Effect",
    "Entity",
    "EntityExists",
    "Event",
    "EventRejected",
    "Field",
    "Guard",
    "Input",
    "InvalidEvent",
    "Lifecycle",
    "OutOfOrder",
    "Outcome",
    "Parent",
    "Record",
    "Runtime",
    "Send",
    "SpilledIds",
    "State",
    "Step",
    "Timer",
    "Transition",
    "TransitionRefused",
    "UnknownEntity",
    "action",
    "compile_lifecycle",
    "guard",
    "record_type",
]
