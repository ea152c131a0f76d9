"""The lifecycles: *what* orders, projects and promotions are. The engine says *how*."""

from ..engine import Domain
from .effects import (
    AccountCredited,
    CancellationEffective,
    Charged,
    HoldPlaced,
    HoldReleased,
    NotificationRequested,
    PaymentReleased,
    RefundIssued,
)
from .order import ORDER
from .project import PROJECT_CREATOR, PROJECT_PARTNER
from .promotion import PROMOTION

#: Every lifecycle this project runs; a project's ``kind`` field picks its variant.
DOMAIN = Domain(
    lifecycles=(PROJECT_CREATOR, PROJECT_PARTNER, ORDER, PROMOTION),
    variant_field={"project": "kind"},
)

__all__ = [
    "DOMAIN",
    "ORDER",
    "PROJECT_CREATOR",
    "PROJECT_PARTNER",
    "PROMOTION",
    "AccountCredited",
    "CancellationEffective",
    "Charged",
    "HoldPlaced",
    "HoldReleased",
    "NotificationRequested",
    "PaymentReleased",
    "RefundIssued",
]
