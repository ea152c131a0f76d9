"""The domain events the lifecycles emit (``lifecycles.md``, "Events the engine emits").

Each carries ``cause`` (the id of the input event that caused it) and ``time``, so a
ledger line always traces back to its cause. Money effects name their ledger kind.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import attrs

from ..engine.effects import Effect

__all__ = [
    "AccountCredited",
    "BudgetCharged",
    "BudgetHoldPlaced",
    "BudgetHoldReleased",
    "BudgetMoney",
    "CancellationEffective",
    "Charged",
    "HoldPlaced",
    "HoldReleased",
    "NotificationRequested",
    "OrderMoney",
    "PaymentReleased",
    "PromotionMoney",
    "RefundIssued",
]


@attrs.frozen(kw_only=True)
class OrderMoney(Effect):
    """Money of an order's fee moved: booked in the ledger under the order."""

    order: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.order


@attrs.frozen(kw_only=True)
class PromotionMoney(Effect):
    """Money of a promotion's budget moved: booked in the ledger under the promotion."""

    promotion: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.promotion


@attrs.frozen(kw_only=True)
class RefundIssued(OrderMoney):
    """Part of an order's fee goes back to the advertiser; ``rule`` names the policy row."""

    ledger_kind: ClassVar[str | None] = "refund"
    percent: int
    rule: str


@attrs.frozen(kw_only=True)
class PaymentReleased(OrderMoney):
    """Part of an order's fee is paid out to the content provider."""

    ledger_kind: ClassVar[str | None] = "payment_released"


@attrs.frozen(kw_only=True)
class HoldPlaced(PromotionMoney):
    """The whole budget is held when the promotion is created."""

    ledger_kind: ClassVar[str | None] = "hold_placed"


@attrs.frozen(kw_only=True)
class HoldReleased(PromotionMoney):
    """Held money that is not charged: given back. Not a refund: it was only held."""

    ledger_kind: ClassVar[str | None] = "hold_released"


@attrs.frozen(kw_only=True)
class Charged(PromotionMoney):
    """What a promotion spent, charged when it ends."""

    ledger_kind: ClassVar[str | None] = "charge"


@attrs.frozen(kw_only=True)
class CancellationEffective(Effect):
    project: str


@attrs.frozen(kw_only=True)
class NotificationRequested(Effect):
    party: str
    channel: str
    subject: str


@attrs.frozen(kw_only=True)
class AccountCredited(Effect):
    """The refunds of a cancellation, credited to the advertiser's account balance."""

    advertiser: str
    amount: Decimal
    currency: str


# -- Ads Manager (``lifecycles.md``, "Money: the budget owner holds, only spend is charged")
@attrs.frozen(kw_only=True)
class BudgetMoney(Effect):
    """Money of an Ads Manager budget owner (a campaign or an ad group) moved: booked
    in the ledger under the owner, never under an ad (ads own no money)."""

    owner: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.owner


@attrs.frozen(kw_only=True)
class BudgetHoldPlaced(BudgetMoney):
    """An owner started delivering: what is left of its budget (budget − charged) is held."""

    ledger_kind: ClassVar[str | None] = "hold_placed"


@attrs.frozen(kw_only=True)
class BudgetHoldReleased(BudgetMoney):
    """An owner stopped delivering: what stays held beyond the charge is given back."""

    ledger_kind: ClassVar[str | None] = "hold_released"


@attrs.frozen(kw_only=True)
class BudgetCharged(BudgetMoney):
    """An owner stopped delivering or spent its whole budget: the uncharged spend."""

    ledger_kind: ClassVar[str | None] = "charge"
