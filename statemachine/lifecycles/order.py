"""Order: one piece of content inside a project (``lifecycles.md``, "Order").

agreed → (in_progress) → submitted → approved / rejected → resubmitted …, with the
14-day deemed approval and the content deadline as timers, and ``cancel`` fired by
the project when its cancellation takes effect. Money rules live in :mod:`.policy`.

The policy version in force when the order is agreed governs its money and timers
(``policy-versions.md``): :func:`order_lifecycle` builds the lifecycle for a set of
versions, and the order keeps its version's id in its data (``policy``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
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
    Parent,
    Send,
    State,
    Timer,
    Transition,
)
from ..engine import fields as f
from ..money import MoneyError, validate_written
from ..timeutil import format_instant, later
from . import parties, policy
from .effects import PaymentReleased, RefundIssued
from .versions import BUILTIN_POLICIES, Policies, PolicyVersion

__all__ = ["ORDER", "order_lifecycle"]

UNSETTLED = ("agreed", "in_progress", "submitted", "rejected")


# -- guards (pure) --------------------------------------------------------------------
def _project_active(ctx: Context) -> bool:
    project = ctx.parent()
    return project is not None and project.state == "active"


def _project_active_reason(ctx: Context) -> str:
    project = ctx.parent()
    if project is None:
        return f"project/{ctx.params['project']} does not exist"
    return f"{project.subject} is {project.state}, not active"


def _fee_ok(ctx: Context) -> bool:
    project = ctx.parent()
    if project is None or ctx.params["fee"] <= 0:
        return False
    try:
        validate_written(ctx.params["fee"], project.data["currency"])
    except MoneyError:
        return False
    return True


def _fee_reason(ctx: Context) -> str:
    fee, currency = ctx.params["fee"], ctx.parent().data["currency"]  # type: ignore[union-attr]
    if fee <= 0:
        return f"the fee must be > 0, not {fee}"
    return f"the fee {fee} has more decimals than {currency} allows"


def _agreed_before_deadline(ctx: Context) -> bool:
    project = ctx.parent()
    return project is not None and ctx.time < project.data["deadline"]


def _before_deadline(ctx: Context) -> bool:
    return ctx.time < ctx.data["deadline"]


def _deadline_reason(ctx: Context) -> str:
    deadline = ctx.data.get("deadline") or ctx.parent().data["deadline"]  # type: ignore[union-attr]
    return f"the project's content deadline {format_instant(deadline)} has passed"


def _may_deliver(ctx: Context) -> bool:
    # Spec: "While a partner project is winding down, orders that are merely agreed
    # cannot start". Our reading: nor can they submit straight from agreed, which would
    # start and deliver in one step; open orders (already started) go on. Only the
    # transitions leaving ``agreed`` carry this guard, so its label says all it checks.
    project = ctx.parent()
    return project is None or project.state != "winding_down"


def _may_deliver_reason(ctx: Context) -> str:
    if ctx.trigger == "start":
        return "the partner project is winding down: merely agreed orders cannot start"
    return (f"the partner project is winding down: merely agreed orders cannot {ctx.trigger} "
            f"(it would start delivery)")


# -- actions (return assignments, sends and effects; never act) ----------------------
def _record_agreement(policies: Policies, ctx: Context) -> Iterator[Any]:
    project = ctx.parent()
    assert project is not None
    yield Assign(
        {
            # The version in force at the agreement governs the order from now on.
            "policy": policies.governing(ctx.time).id,
            "project": ctx.params["project"],
            "fee": validate_written(ctx.params["fee"], project.data["currency"]),
            "currency": project.data["currency"],
            "review": ctx.params["review"],
            "deadline": project.data["deadline"],
            "agreed_event": ctx.event_id,
        }
    )


def _record_submission(ctx: Context) -> Iterator[Any]:
    yield Assign({"submitted_at": ctx.time, "submitted_event": ctx.event_id})


def _release_fee(ctx: Context) -> Iterator[Any]:
    yield PaymentReleased(cause=ctx.event_id, time=ctx.time, order=ctx.subject,
                          amount=ctx.data["fee"], currency=ctx.data["currency"])


def _refund(ctx: Context, percent: int, rule: str) -> Iterator[Any]:
    refund, released = policy.split_fee(ctx.data["fee"], percent, ctx.data["currency"])
    if refund:
        yield RefundIssued(cause=ctx.event_id, time=ctx.time, order=ctx.subject, amount=refund,
                           currency=ctx.data["currency"], percent=percent, rule=rule)
    if released:
        yield PaymentReleased(cause=ctx.event_id, time=ctx.time, order=ctx.subject,
                              amount=released, currency=ctx.data["currency"])


def _refund_expired(policies: Policies, ctx: Context) -> Iterator[Any]:
    rule = policy.expiry_refund(policies.get(ctx.data.get("policy")), named=policies.named)
    yield from _refund(ctx, rule.percent, rule.rule)


def _refund_cancelled(ctx: Context) -> Iterator[Any]:
    yield from _refund(ctx, ctx.params["percent"], ctx.params["rule"])


def _tell_project(ctx: Context) -> Iterator[Any]:
    # A winding-down partner project is cancelled once no open order remains; the
    # project decides (its guard), the order only says it closed.
    yield Send(f"project/{ctx.data['project']}", "order_closed", optional=True)


# -- timers --------------------------------------------------------------------------
def _deemed_due(policies: Policies, data: Any) -> Any:
    if data["review"] != "manual":
        return None
    # None past the calendar's end (year 10000): no event can ever reach that time.
    return later(data["submitted_at"], policies.get(data.get("policy")).deemed_approval_after)


def _days(version: PolicyVersion) -> str:
    days = version.deemed_approval_days
    return f"{days} day" if days == 1 else f"{days} days"


def _cancel_label(version: PolicyVersion) -> str:
    # "refund 90 / 50 / 100 % by policy": the creator table's percents that can move
    # money (the delivered row never does), each once, in the table's order.
    table = [version.creator_refund(stage, by) for by in policy.PARTIES
             for stage in ("agreed", "submitted")]
    return "refund " + " / ".join(str(p) for p in dict.fromkeys(table)) + " % by policy"


def order_lifecycle(policies: Policies = BUILTIN_POLICIES) -> Lifecycle:
    """The Order lifecycle priced by ``policies``; diagrams label it with the latest
    version's numbers. The same declaration whatever the versions: only the numbers
    the money actions and the deemed-approval timer read differ."""
    label = policies.latest
    return attrs.evolve(
        _ORDER,
        states=tuple(
            attrs.evolve(s, description=f"No review answer within {_days(label)}; the fee is released.")
            if s.name == "deemed_approved" else s for s in _ORDER.states),
        actions=(
            Action("record_agreement", functools.partial(_record_agreement, policies)),
            *_ORDER.actions[:2],
            Action("refund_expired", functools.partial(_refund_expired, policies),
                   f"refund {label.expiry_refund_percent} %"),
            Action("refund_cancelled", _refund_cancelled, _cancel_label(label)),
            *_ORDER.actions[2:],
        ),
        transitions=tuple(
            attrs.evolve(t, description=f"{_days(label)} after the latest submission, manual review")
            if t.trigger == "deem_approve" else t for t in _ORDER.transitions),
        timers=(
            Timer("deemed_approval", "deem_approve", ("submitted",),
                  functools.partial(_deemed_due, policies),
                  lambda data: data["submitted_event"], delay=_days(label),
                  period=label.deemed_approval_after),
            *_ORDER.timers,
        ),
    )


# The parts that do not depend on the versions; order_lifecycle completes them.
_ORDER = Lifecycle(
    name="order",
    kind="order",
    title="Order",
    description="One piece of content inside a project, from agreement to settlement.",
    parent=Parent(kind="project", field="project"),
    data=("project", "fee", "currency", "review", "deadline", "agreed_event", "submitted_at",
          "submitted_event", "policy"),
    states=(
        State("agreed", "The fee is agreed; nothing delivered yet."),
        State("in_progress", "A creator accepted the invitation: an open order.", group="open"),
        State("submitted", "Content submitted, awaiting review.", group="open"),
        State("rejected", "Content rejected; may be resubmitted before the deadline.",
              group="open"),
        State("approved", "Finally approved; the fee is released.", final=True,
              group="settled", on_enter=("release_fee", "tell_project")),
        State("deemed_approved", "(order_lifecycle: the version's period)",
              final=True, group="settled", on_enter=("release_fee", "tell_project")),
        State("expired", "The content deadline passed undelivered; refunded in full.",
              final=True, group="settled", on_enter=("tell_project",)),
        State("cancelled", "The project's cancellation took effect; refunded per policy.",
              final=True, group="settled"),
    ),
    guards=(
        Guard("project_active", _project_active, _project_active_reason, "project active",
              field="data.project"),
        Guard("fee_valid", _fee_ok, _fee_reason, "fee > 0", field="data.fee"),
        Guard("agreed_before_deadline", _agreed_before_deadline, _deadline_reason,
              "before deadline", field="time"),
        Guard("before_deadline", _before_deadline, _deadline_reason, "before deadline",
              field="time"),
        Guard("may_deliver", _may_deliver, _may_deliver_reason, "project not winding down"),
        Guard("auto_review", lambda ctx: ctx.data["review"] == "auto",
              "the review is manual", "auto review"),
    ),
    actions=(
        Action("record_submission", _record_submission),
        Action("release_fee", _release_fee, "release fee"),
        Action("tell_project", _tell_project),
    ),
    transitions=(
        Transition("create", (INITIAL,), "agreed",
                   guards=("project_active", "fee_valid", "agreed_before_deadline"),
                   actions=("record_agreement",)),
        Transition("start", ("agreed",), "in_progress", guards=("may_deliver",)),
        Transition("submit", ("agreed",), "approved",
                   guards=("before_deadline", "may_deliver", "auto_review"),
                   actions=("record_submission",),
                   description="auto review: approved on submission"),
        Transition("submit", ("agreed",), "submitted",
                   guards=("before_deadline", "may_deliver"), actions=("record_submission",)),
        Transition("approve", ("submitted",), "approved"),
        Transition("reject", ("submitted",), "rejected"),
        Transition("resubmit", ("rejected",), "submitted", guards=("before_deadline",),
                   actions=("record_submission",), description="restarts the review clock"),
        Transition("deem_approve", ("submitted",), "deemed_approved", internal=True,
                   description="(order_lifecycle: the version's period)"),
        Transition("expire", ("agreed", "in_progress", "rejected"), "expired", internal=True,
                   actions=("refund_expired",), description="the content deadline passed"),
        Transition("cancel", UNSETTLED, "cancelled", internal=True,
                   actions=("refund_cancelled",),
                   description="the project's cancellation took effect"),
        # Submitting a started order: no winding-down guard (only merely agreed orders
        # are stopped). Declared last so the diagrams' node ids of the others stay put.
        Transition("submit", ("in_progress",), "approved",
                   guards=("before_deadline", "auto_review"), actions=("record_submission",),
                   description="auto review: approved on submission"),
        Transition("submit", ("in_progress",), "submitted",
                   guards=("before_deadline",), actions=("record_submission",)),
    ),
    timers=(
        Timer("content_deadline", "expire", ("agreed", "in_progress", "rejected"),
              lambda data: data["deadline"], lambda data: data["agreed_event"],
              delay="content deadline"),
    ),
    inputs=(
        Input("order.agreed", "create", (
            Field("project", f.identifier, description="the project's id, without project/"),
            Field("fee", f.decimal, description="in the project's currency"),
            Field("review", f.choice("manual", "auto")),
        ), parties=parties.BUYER),
        Input("order.started", "start", parties=parties.DELIVERER),
        Input("order.submitted", "submit", parties=parties.DELIVERER),
        Input("order.approved", "approve", parties=(parties.ADVERTISER,)),
        Input("order.rejected", "reject", parties=(parties.ADVERTISER,)),
        Input("order.resubmitted", "resubmit", parties=parties.DELIVERER),
    ),
)

#: The Order lifecycle under the built-in version alone.
ORDER = order_lifecycle()
