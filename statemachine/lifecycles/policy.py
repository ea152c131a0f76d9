"""Every money rule of ``shared/spec/lifecycles.md``, in one place.

"Why was this refund 90 %?" is answered here: each rule is a named constant or a
small pure function citing the row of the spec it implements. The lifecycles call
these; nothing else decides a percentage, a delay or a channel.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs

from ..money import percent_of

__all__ = [
    "ADVERTISER",
    "DEEMED_APPROVAL_AFTER",
    "DELIVERED",
    "EXPIRY_REFUND",
    "NOTIFICATION_CHANNEL",
    "OPEN",
    "PARTIES",
    "PROVIDER",
    "SETTLED",
    "RefundRule",
    "creator_cancellation_refund",
    "partner_cancellation_refund",
    "split_fee",
]

ADVERTISER = "advertiser"
PROVIDER = "provider"
PARTIES = (ADVERTISER, PROVIDER)

#: Order: "approval will be deemed if there is no response after 14 days" — due
#: exactly 14 days after the latest (re)submission; a resubmission restarts it.
DEEMED_APPROVAL_AFTER = timedelta(days=14)

#: Order states, as the spec groups them. *Delivered*: approved or deemed approved.
#: *Open*: delivery started and not yet delivered. *Settled*: money fully decided
#: before any cancellation (what ``project.complete`` requires of every order).
DELIVERED = frozenset({"approved", "deemed_approved"})
OPEN = frozenset({"in_progress", "submitted", "rejected"})
SETTLED = frozenset({"approved", "deemed_approved", "expired"})
#: Orders a cancellation leaves alone: their money is already decided.
KEEPS_STATE_ON_CANCELLATION = frozenset({"approved", "deemed_approved", "expired", "cancelled"})

#: Order row "(timer) content deadline passes": the provider failed to deliver in
#: time, so the advertiser gets everything back.
EXPIRY_REFUND = 100

#: "the engine also emits a notification request for both parties (platform or
#: e-mail)". Our choice: creators work on the platform, so they are notified there;
#: partners manage creators off-app, so they are notified by e-mail.
NOTIFICATION_CHANNEL = {"creator": "platform", "partner": "email"}


@attrs.frozen
class RefundRule:
    """A refund percentage and the policy row it comes from (carried on the event)."""

    percent: int
    rule: str


# Creator project, "Refunds when a cancellation takes effect", priced by the order's
# stage when the cancellation was *requested*. Keys: (stage, requested_by).
_CREATOR_TABLE: dict[tuple[str, str], RefundRule] = {
    # "agreed, content not submitted" (in_progress included)
    ("not_submitted", ADVERTISER): RefundRule(90, "creator/advertiser/not-submitted: 90 %"),
    ("not_submitted", PROVIDER): RefundRule(100, "creator/provider/not-submitted: 100 %"),
    # "submitted / rejected (not finally approved)"
    ("submitted", ADVERTISER): RefundRule(50, "creator/advertiser/submitted: 50 %"),
    # Our choice in the spec: the provider withdrew, so the advertiser gets it all.
    ("submitted", PROVIDER): RefundRule(100, "creator/provider/submitted: 100 %"),
    # "approved or deemed approved": full payment due.
    ("approved", ADVERTISER): RefundRule(0, "creator/advertiser/approved: 0 %"),
    ("approved", PROVIDER): RefundRule(0, "creator/provider/approved: 0 %"),
}

_STAGE = {
    "agreed": "not_submitted",
    "in_progress": "not_submitted",
    "submitted": "submitted",
    "rejected": "submitted",
    "approved": "approved",
    "deemed_approved": "approved",
}


def creator_cancellation_refund(stage_at_request: str, requested_by: str) -> RefundRule:
    """The refund for one order of a creator project whose cancellation takes effect.

    ``stage_at_request`` is the order's state when the cancellation was requested (the
    policy prices the stage "in which the cancellation has been communicated").
    """
    return _CREATOR_TABLE[(_STAGE[stage_at_request], requested_by)]


def partner_cancellation_refund(state: str) -> RefundRule:
    """Partner project: every order never delivered is refunded in full, every
    delivered one paid in full ("the outstanding balance")."""
    if state in DELIVERED:
        return RefundRule(0, "partner/delivered: 0 %")
    return RefundRule(100, "partner/undelivered: 100 %")


def split_fee(fee: Decimal, percent: int, currency: str) -> tuple[Decimal, Decimal]:
    """``(refund, released)`` for ``percent`` % refunded: the refund is rounded half-up
    to minor units and the provider gets the rest, so ``refund + released == fee``
    exactly and a refund never exceeds the fee (``0 <= percent <= 100``)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a refund percentage lies in 0..100, not {percent}")
    refund = percent_of(fee, percent, currency)
    return refund, fee - refund
