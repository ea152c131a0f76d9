"""The lifecycles: *what* orders, projects and promotions are. The engine says *how*."""

from ..engine import Domain
from .ad import AD
from .ad_group import AD_GROUP
from .campaign import CAMPAIGN
from .effects import (
    AccountCredited,
    BudgetCharged,
    BudgetHoldPlaced,
    BudgetHoldReleased,
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
    lifecycles=(PROJECT_CREATOR, PROJECT_PARTNER, ORDER, PROMOTION, CAMPAIGN, AD_GROUP, AD),
    variant_field={"project": "kind"},
)

__all__ = [
    "AD",
    "AD_GROUP",
    "CAMPAIGN",
    "DOMAIN",
    "ORDER",
    "PROJECT_CREATOR",
    "PROJECT_PARTNER",
    "PROMOTION",
    "AccountCredited",
    "BudgetCharged",
    "BudgetHoldPlaced",
    "BudgetHoldReleased",
    "CancellationEffective",
    "Charged",
    "HoldPlaced",
    "HoldReleased",
    "NotificationRequested",
    "PaymentReleased",
    "RefundIssued",
]
