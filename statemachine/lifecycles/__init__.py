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
from .order import ORDER, order_lifecycle
from .project import PROJECT_CREATOR, PROJECT_PARTNER, project_lifecycles
from .promotion import PROMOTION
from .versions import BUILTIN_POLICIES, Policies, PolicyError, PolicyVersion, load_policies

#: Every lifecycle this project runs; a project's ``kind`` field picks its variant.
DOMAIN = Domain(
    lifecycles=(PROJECT_CREATOR, PROJECT_PARTNER, ORDER, PROMOTION),
    variant_field={"project": "kind"},
)


def domain_for(policies: Policies | None = None) -> Domain:
    """The lifecycles pricing orders by ``policies`` (``policy-versions.md``): the
    version in force when an order is agreed governs its money and timers. ``None``
    or the built-in version alone is :data:`DOMAIN` itself."""
    if policies is None or policies == BUILTIN_POLICIES:
        return DOMAIN
    creator, partner = project_lifecycles(policies)
    return Domain(lifecycles=(creator, partner, order_lifecycle(policies), PROMOTION),
                  variant_field=DOMAIN.variant_field)

__all__ = [
    "BUILTIN_POLICIES",
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
    "Policies",
    "PolicyError",
    "PolicyVersion",
    "RefundIssued",
    "domain_for",
    "load_policies",
]
