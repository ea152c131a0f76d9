"""Project: a collaboration between an advertiser and a content provider.

Two lifecycles, one per kind fixed at creation (``lifecycles.md``, "Project"):
``creator`` (the creator works through their own account) and ``partner`` (a partner
manages its creators off-app: the platform reviews a cancellation request, and open
orders finish before the cancellation takes effect). Both are built from the same
pieces below so the rules they share are written once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs

from ..engine import (
    INITIAL,
    Action,
    Assign,
    Context,
    Field,
    Guard,
    Input,
    Lifecycle,
    Send,
    State,
    Transition,
)
from ..engine import fields as f
from ..timeutil import format_instant
from . import parties, policy
from .effects import AccountCredited, CancellationEffective, NotificationRequested
from .versions import BUILTIN_POLICIES, Policies

__all__ = ["PROJECT_CREATOR", "PROJECT_PARTNER", "project_lifecycles"]


# -- guards (pure) --------------------------------------------------------------------
def _deadline_after_creation(ctx: Context) -> bool:
    return ctx.params["deadline"] > ctx.time


def _by_other_party(ctx: Context) -> bool:
    return ctx.params["by"] != ctx.data["requested_by"]


def _by_other_reason(ctx: Context) -> str:
    by = ctx.params["by"]
    other = policy.PROVIDER if by == policy.ADVERTISER else policy.ADVERTISER
    verb = ctx.trigger.split("_")[0]
    return f"the {by} requested the cancellation and cannot {verb} its own request; the {other} must"


def _by_requester(ctx: Context) -> bool:
    return ctx.params["by"] == ctx.data["requested_by"]


def _by_requester_reason(ctx: Context) -> str:
    return (f"only the requester ({ctx.data['requested_by']}) can withdraw the request, "
            f"not the {ctx.params['by']}")


def _open_orders(ctx: Context) -> list[str]:
    return [o.subject for o in ctx.children() if o.state in policy.OPEN]


def _unsettled_reason(ctx: Context) -> str:
    pending = [f"{o.subject} ({o.state})" for o in ctx.children() if o.state not in policy.SETTLED]
    return "orders not settled: " + ", ".join(pending[:5]) + (" …" if len(pending) > 5 else "")


# -- actions --------------------------------------------------------------------------
def _record_creation(ctx: Context) -> Iterator[Any]:
    yield Assign({"kind": ctx.params["kind"], "currency": ctx.params["currency"],
                  "deadline": ctx.params["deadline"], "created_event": ctx.event_id,
                  # The parties' account ids, when given (logs without them still replay).
                  **{party: ctx.params[party] for party in policy.PARTIES if party in ctx.params}})


def _record_request(ctx: Context) -> Iterator[Any]:
    # The policy prices the stage "in which the cancellation has been communicated":
    # every order's state at this moment is kept for when the cancellation takes effect.
    yield Assign({
        "requested_by": ctx.params["by"],
        "reason": ctx.params.get("reason"),
        "stages": {o.subject: o.state for o in ctx.children()},
    })


def _clear_request(ctx: Context) -> Iterator[Any]:
    yield Assign({"requested_by": None, "reason": None, "stages": None})


def _take_effect(policies: Policies, ctx: Context) -> Iterator[Any]:
    """Entering ``cancelled``: cancel every order whose money is not decided yet, with
    the refund the policy gives it; notify both parties; credit the advertiser.

    Each order is priced by the version that governs it (the one in force when it was
    agreed), whenever the cancellation was requested or took effect."""
    kind, currency = ctx.data["kind"], ctx.data["currency"]
    stages = ctx.data.get("stages") or {}
    credited = Decimal(0)
    for order in ctx.children():
        if order.state in policy.KEEPS_STATE_ON_CANCELLATION:
            continue
        version = policies.get(order.data.get("policy"))
        if kind == "creator":
            # Priced by the stage at the request; an order unsettled now was unsettled then
            # (settled states are final), so the snapshot always has a priced stage.
            stage = stages.get(order.subject, order.state)
            rule = policy.creator_cancellation_refund(stage, ctx.data["requested_by"], version,
                                                      named=policies.named)
        else:
            rule = policy.partner_cancellation_refund(order.state, version, named=policies.named)
        credited += policy.split_fee(order.data["fee"], rule.percent, currency)[0]
        yield Send(order.subject, "cancel", {"percent": rule.percent, "rule": rule.rule})
    yield CancellationEffective(cause=ctx.event_id, time=ctx.time, project=ctx.subject)
    channel = policy.NOTIFICATION_CHANNEL[kind]
    for party in policy.PARTIES:
        yield NotificationRequested(cause=ctx.event_id, time=ctx.time, party=party,
                                    channel=channel,
                                    subject=f"the cancellation of {ctx.subject} took effect")
    if credited:
        yield AccountCredited(cause=ctx.event_id, time=ctx.time,
                              advertiser=f"{ctx.subject}/advertiser", amount=credited,
                              currency=currency)


GUARDS = (
    Guard("deadline_after_creation", _deadline_after_creation,
          lambda ctx: (f"the deadline {format_instant(ctx.params['deadline'])} does not lie "
                       f"after the creation {format_instant(ctx.time)}"),
          "deadline after creation", field="data.deadline"),
    Guard("by_other_party", _by_other_party, _by_other_reason, "by the other party",
          field="data.by"),
    Guard("by_requester", _by_requester, _by_requester_reason, "by the requester",
          field="data.by"),
    Guard("all_orders_settled",
          lambda ctx: all(o.state in policy.SETTLED for o in ctx.children()),
          _unsettled_reason, "every order settled"),
)
PARTNER_GUARDS = (
    Guard("review_approved", lambda ctx: ctx.params["approved"], "the review refused it",
          "approved"),
    Guard("review_refused", lambda ctx: not ctx.params["approved"], "the review approved it",
          "refused"),
    Guard("no_open_orders", lambda ctx: not _open_orders(ctx),
          lambda ctx: "open orders remain: " + ", ".join(_open_orders(ctx)), "no open orders"),
    Guard("has_open_orders", lambda ctx: bool(_open_orders(ctx)), "no open orders remain",
          "open orders remain"),
)
ACTIONS = (
    Action("record_creation", _record_creation),
    Action("record_request", _record_request, "record order stages"),
    Action("clear_request", _clear_request),
    Action("take_effect", functools.partial(_take_effect, BUILTIN_POLICIES),
           "refund per policy, notify, credit"),
)

_BY = Field("by", f.choice(*policy.PARTIES))
INPUTS = (
    Input("project.created", "create", (
        Field("kind", f.choice("creator", "partner")),
        Field("currency", f.currency, description="ISO 4217"),
        Field("deadline", f.instant, description="the content deadline"),
        Field("advertiser", f.identifier, required=False, description="the advertiser's account id"),
        Field("provider", f.identifier, required=False, description="the provider's account id"),
    ), parties=parties.BUYER),
    Input("project.cancellation_requested", "request_cancellation",
          (_BY, Field("reason", f.text, required=False)), parties=parties.BOTH_SIDES),
    Input("project.cancellation_accepted", "accept_cancellation", (_BY,), parties=parties.BOTH_SIDES),
    Input("project.cancellation_declined", "decline_cancellation", (_BY,), parties=parties.BOTH_SIDES),
    Input("project.cancellation_withdrawn", "withdraw_cancellation", (_BY,), parties=parties.BOTH_SIDES),
    Input("project.completed", "complete", parties=parties.BUYER),
)
REVIEW_INPUT = Input("project.cancellation_reviewed", "review_cancellation",
                     (Field("approved", f.boolean),), parties=parties.PLATFORM_ONLY)

#: What the actions assign, in the order they first do (``Lifecycle.data``).
DATA = ("kind", "currency", "deadline", "created_event", "advertiser", "provider", "requested_by",
        "reason", "stages")

_ACTIVE = State("active", "The collaboration runs; orders are agreed and delivered.")
_PENDING = State("cancellation_pending", "Waiting for the other party to accept or decline.",
                 group="cancellation")
_CANCELLED = State("cancelled", "The cancellation took effect; unsettled orders refunded.",
                   final=True, group="ended", on_enter=("take_effect",))
_COMPLETED = State("completed", "Every order settled.", final=True, group="ended")

_CREATE = Transition("create", (INITIAL,), "active", guards=("deadline_after_creation",),
                     actions=("record_creation",))
_DECLINE = Transition("decline_cancellation", ("cancellation_pending",), "active",
                      guards=("by_other_party",), actions=("clear_request",))
_COMPLETE = Transition("complete", ("active",), "completed", guards=("all_orders_settled",))

PROJECT_CREATOR = Lifecycle(
    name="project_creator",
    kind="project",
    variant="creator",
    title="Project (creator)",
    description="The creator works through their own account.",
    states=(_ACTIVE, _PENDING, _CANCELLED, _COMPLETED),
    guards=GUARDS,
    actions=ACTIONS,
    data=DATA,
    transitions=(
        _CREATE,
        Transition("request_cancellation", ("active",), "cancellation_pending",
                   actions=("record_request",)),
        Transition("accept_cancellation", ("cancellation_pending",), "cancelled",
                   guards=("by_other_party",)),
        _DECLINE,
        Transition("withdraw_cancellation", ("cancellation_pending",), "active",
                   guards=("by_requester",), actions=("clear_request",)),
        _COMPLETE,
    ),
    inputs=INPUTS,
)

PROJECT_PARTNER = Lifecycle(
    name="project_partner",
    kind="project",
    variant="partner",
    title="Project (partner)",
    description="A partner manages its creators off-app; the platform reviews cancellations.",
    states=(
        _ACTIVE,
        State("cancellation_review", "The platform reviews the cancellation request.",
              group="cancellation"),
        _PENDING,
        State("winding_down", "Accepted; open orders still finishing.", group="cancellation"),
        _CANCELLED,
        _COMPLETED,
    ),
    guards=GUARDS + PARTNER_GUARDS,
    actions=ACTIONS,
    data=DATA,
    transitions=(
        _CREATE,
        Transition("request_cancellation", ("active",), "cancellation_review",
                   actions=("record_request",)),
        Transition("review_cancellation", ("cancellation_review",), "cancellation_pending",
                   guards=("review_approved",)),
        Transition("review_cancellation", ("cancellation_review",), "active",
                   guards=("review_refused",), actions=("clear_request",)),
        Transition("accept_cancellation", ("cancellation_pending",), "cancelled",
                   guards=("by_other_party", "no_open_orders")),
        Transition("accept_cancellation", ("cancellation_pending",), "winding_down",
                   guards=("by_other_party", "has_open_orders")),
        _DECLINE,
        Transition("withdraw_cancellation", ("cancellation_review", "cancellation_pending"),
                   "active", guards=("by_requester",), actions=("clear_request",)),
        Transition("order_closed", ("winding_down",), "cancelled", guards=("no_open_orders",),
                   internal=True, description="the last open order was delivered or expired"),
        _COMPLETE,
    ),
    inputs=(*INPUTS, REVIEW_INPUT),
)


def project_lifecycles(policies: Policies = BUILTIN_POLICIES) -> tuple[Lifecycle, Lifecycle]:
    """The creator and partner Project lifecycles whose cancellations price each order
    by the version (of ``policies``) that governs it."""
    take_effect = functools.partial(_take_effect, policies)

    def priced(lifecycle: Lifecycle) -> Lifecycle:
        return attrs.evolve(lifecycle, actions=tuple(
            attrs.evolve(a, run=take_effect) if a.name == "take_effect" else a
            for a in lifecycle.actions))

    return priced(PROJECT_CREATOR), priced(PROJECT_PARTNER)
