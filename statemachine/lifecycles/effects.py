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
    "CancellationEffective",
    "Charged",
    "HoldPlaced",
    "HoldReleased",
    "NotificationRequested",
    "PaymentReleased",
    "RefundIssued",
]


@attrs.frozen(kw_only=True)
class RefundIssued(Effect):
    """Part of an order's fee goes back to the advertiser; ``rule`` names the policy row."""

    ledger_kind: ClassVar[str | None] = "refund"
    order: str
    amount: Decimal
    currency: str
    percent: int
    rule: str

    def ledger_subject(self) -> str:
        return self.order


@attrs.frozen(kw_only=True)
class PaymentReleased(Effect):
    """Part of an order's fee is paid out to the content provider."""

    ledger_kind: ClassVar[str | None] = "payment_released"
    order: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.order


@attrs.frozen(kw_only=True)
class HoldPlaced(Effect):
    ledger_kind: ClassVar[str | None] = "hold_placed"
    promotion: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.promotion


@attrs.frozen(kw_only=True)
class HoldReleased(Effect):
    """Held money that is not charged: given back. Not a refund: it was only held."""

    ledger_kind: ClassVar[str | None] = "hold_released"
    promotion: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.promotion


@attrs.frozen(kw_only=True)
class Charged(Effect):
    ledger_kind: ClassVar[str | None] = "charge"
    promotion: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.promotion


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
