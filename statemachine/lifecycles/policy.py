"""Every money rule of ``shared/spec/lifecycles.md``, in one place.

"Why was this refund 90 %?" is answered here: each rule is a named constant or a
small pure function citing the row of the spec it implements. The lifecycles call
these; nothing else decides a percentage, a delay or a channel.

The numbers themselves are data: a :class:`~.versions.PolicyVersion` (a TOML file;
``policy-versions.md``). The constants below are the built-in version's, read from
its file; the functions take the version that governs the order (default: the
built-in one).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs

from ..money import percent_of
from .versions import BUILTIN, PolicyVersion

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
    "deemed_approval_after",
    "expiry_refund",
    "partner_cancellation_refund",
    "split_fee",
]

ADVERTISER = "advertiser"
PROVIDER = "provider"
PARTIES = (ADVERTISER, PROVIDER)

#: Order: "approval will be deemed if there is no response after 14 days" — due
#: exactly 14 days after the latest (re)submission; a resubmission restarts it.
#: (The built-in version's period; an order's own version may say otherwise.)
DEEMED_APPROVAL_AFTER: timedelta = BUILTIN.deemed_approval_after

#: Order states, as the spec groups them. *Delivered*: approved or deemed approved.
#: *Open*: delivery started and not yet delivered. *Settled*: money fully decided
#: before any cancellation (what ``project.complete`` requires of every order).
DELIVERED = frozenset({"approved", "deemed_approved"})
OPEN = frozenset({"in_progress", "submitted", "rejected"})
SETTLED = frozenset({"approved", "deemed_approved", "expired"})
#: Orders a cancellation leaves alone: their money is already decided.
KEEPS_STATE_ON_CANCELLATION = frozenset({"approved", "deemed_approved", "expired", "cancelled"})

#: Order row "(timer) content deadline passes": the provider failed to deliver in
#: time, so the advertiser gets everything back. (The built-in version's percent.)
EXPIRY_REFUND: int = BUILTIN.expiry_refund_percent

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
# stage when the cancellation was *requested*: the version's table row of each state.
_STAGE = {
    # "agreed, content not submitted" (in_progress included)
    "agreed": "agreed",
    "in_progress": "agreed",
    # "submitted / rejected (not finally approved)"
    "submitted": "submitted",
    "rejected": "submitted",
    # "approved or deemed approved": full payment due (never moves money: released at approval)
    "approved": "delivered",
    "deemed_approved": "delivered",
}

#: The names the rules of the built-in version alone have always carried, per row.
_LEGACY_ROW = {"agreed": "not-submitted", "submitted": "submitted", "delivered": "approved"}


def _named(version: PolicyVersion, named: bool | None) -> bool:
    return version is not BUILTIN if named is None else named


def _rule(text: str, version: PolicyVersion, named: bool | None) -> str:
    return f"{text} (policy {version.id})" if _named(version, named) else text


def creator_cancellation_refund(stage_at_request: str, requested_by: str,
                                version: PolicyVersion = BUILTIN, *,
                                named: bool | None = None) -> RefundRule:
    """The refund for one order of a creator project whose cancellation takes effect.

    ``stage_at_request`` is the order's state when the cancellation was requested (the
    policy prices the stage "in which the cancellation has been communicated");
    ``version`` the policy version that governs the order (the one in force when it
    was agreed). ``named``: whether the rule names the version (default: unless it is
    the built-in one); the built-in version alone keeps its rules' old names
    (``creator/advertiser/not-submitted: 90 %``), a named rule reads as the spec's
    example (``creator/advertiser/agreed: 80 % (policy 2026-07)``).
    """
    row = _STAGE[stage_at_request]
    percent = version.creator_refund(row, requested_by)
    label = row if _named(version, named) else _LEGACY_ROW[row]
    return RefundRule(percent, _rule(f"creator/{requested_by}/{label}: {percent} %", version, named))


def partner_cancellation_refund(state: str, version: PolicyVersion = BUILTIN, *,
                                named: bool | None = None) -> RefundRule:
    """Partner project: every order never delivered is refunded in full, every
    delivered one paid in full ("the outstanding balance"). Partner projects keep this
    rule under every version; the rule still names the version governing the order."""
    if state in DELIVERED:
        return RefundRule(0, _rule("partner/delivered: 0 %", version, named))
    return RefundRule(100, _rule("partner/undelivered: 100 %", version, named))


def expiry_refund(version: PolicyVersion = BUILTIN, *, named: bool | None = None) -> RefundRule:
    """Order row "(timer) content deadline passes": the version's expiry percent."""
    percent = version.expiry_refund_percent
    return RefundRule(percent, _rule(f"order/expired: {percent} %", version, named))


def deemed_approval_after(version: PolicyVersion = BUILTIN) -> timedelta:
    """How long after the latest (re)submission approval is deemed, under ``version``."""
    return version.deemed_approval_after


def split_fee(fee: Decimal, percent: int, currency: str) -> tuple[Decimal, Decimal]:
    """``(refund, released)`` for ``percent`` % refunded: the refund is rounded half-up
    to minor units and the provider gets the rest, so ``refund + released == fee``
    exactly and a refund never exceeds the fee (``0 <= percent <= 100``)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a refund percentage lies in 0..100, not {percent}")
    refund = percent_of(fee, percent, currency)
    return refund, fee - refund
