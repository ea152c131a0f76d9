"""collab-lifecycles: an explicit state-machine engine for creator collaborations.

The public API: :class:`Engine` to embed; the declaration types to write lifecycles;
the domain events the lifecycles emit; :func:`replay` for event logs.
"""

from .api import Engine, EntityView
from .engine import (
    Conflict,
    Decision,
    Domain,
    Effect,
    Entity,
    Event,
    EventRejected,
    InvalidEvent,
    Lifecycle,
    Outcome,
    OutOfOrder,
    Record,
    Runtime,
    SpilledIds,
    Step,
    TransitionRefused,
    UnknownEntity,
)
from .lifecycles import (
    DOMAIN,
    ORDER,
    PROJECT_CREATOR,
    PROJECT_PARTNER,
    PROMOTION,
    AccountCredited,
    CancellationEffective,
    Charged,
    HoldPlaced,
    HoldReleased,
    NotificationRequested,
    PaymentReleased,
    RefundIssued,
)
from .replay import Report, replay, replay_path

__version__ = "0.1.0"

__all__ = [
    "DOMAIN",
    "ORDER",
    "PROJECT_CREATOR",
    "PROJECT_PARTNER",
    "PROMOTION",
    "AccountCredited",
    "CancellationEffective",
    "Charged",
    "Conflict",
    "Decision",
    "Domain",
    "Effect",
    "Engine",
    "Entity",
    "EntityView",
    "Event",
    "EventRejected",
    "HoldPlaced",
    "HoldReleased",
    "InvalidEvent",
    "Lifecycle",
    "NotificationRequested",
    "OutOfOrder",
    "Outcome",
    "PaymentReleased",
    "Record",
    "RefundIssued",
    "Report",
    "Runtime",
    "SpilledIds",
    "Step",
    "TransitionRefused",
    "UnknownEntity",
    "replay",
    "replay_path",
]
