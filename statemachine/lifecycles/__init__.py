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
from .order import ORDER, order_lifecycle
from .project import PROJECT_CREATOR, PROJECT_PARTNER, project_lifecycles
from .promotion import PROMOTION
from .versions import BUILTIN_POLICIES, Policies, PolicyError, PolicyVersion, load_policies

#: Every lifecycle this project runs; a project's ``kind`` field picks its variant.
DOMAIN = Domain(
    lifecycles=(PROJECT_CREATOR, PROJECT_PARTNER, ORDER, PROMOTION, CAMPAIGN, AD_GROUP, AD),
    variant_field={"project": "kind"},
)


def domain_for(policies: Policies | None = None) -> Domain:
    """The lifecycles pricing orders by ``policies`` (``policy-versions.md``): the
    version in force when an order is agreed governs its money and timers. ``None``
    or the built-in version alone is :data:`DOMAIN` itself."""
    if policies is None or policies == BUILTIN_POLICIES:
        return DOMAIN
    creator, partner = project_lifecycles(policies)
    priced = {lc.name: lc for lc in (creator, partner, order_lifecycle(policies))}
    return Domain(lifecycles=tuple(priced.get(lc.name, lc) for lc in DOMAIN.lifecycles),
                  variant_field=DOMAIN.variant_field)


__all__ = [
    "AD",
    "AD_GROUP",
    "BUILTIN_POLICIES",
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
    "Policies",
    "PolicyError",
    "PolicyVersion",
    "RefundIssued",
    "domain_for",
    "load_policies",
]
