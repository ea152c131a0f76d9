"""Promotion: a paid boost of one video (``lifecycles.md``, "Promotion").

The whole budget is held at creation; spend accumulates while running; turning off,
the end time, or spend reaching the budget charges what was spent and releases the
rest of the hold. Nothing is refunded: the money was only ever held.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ..engine import (
    INITIAL,
    Action,
    Assign,
    Context,
    Field,
    Guard,
    Input,
    Lifecycle,
    State,
    Timer,
    Transition,
)
from ..engine import fields as f
from ..money import MoneyError, format_amount, validate_amount, validate_written
from ..timeutil import format_instant
from . import parties
from .effects import Charged, HoldPlaced, HoldReleased

__all__ = ["PROMOTION"]


def _fits(amount: Decimal, currency: str) -> bool:
    try:
        validate_written(amount, currency)
    except MoneyError:
        return False
    return amount > 0


def _amount_reason(what: str, amount: Decimal, currency: str) -> str:
    if amount <= 0:
        return f"the {what} must be > 0, not {amount}"
    return f"the {what} {amount} has more decimals than {currency} allows"


def _spent_after(ctx: Context) -> Decimal:
    """What is spent once this step commits (a ``spend`` adds its amount)."""
    return ctx.data["spent"] + ctx.params.get("amount", 0)


def _spent_total(ctx: Context) -> Decimal:
    """``_spent_after`` in the currency's minor units (``2`` JPY, not ``2.00``), for the
    actions: the guards have checked the amount fits the currency, so this never raises."""
    return validate_amount(_spent_after(ctx), ctx.data["currency"])


def _within_budget(ctx: Context) -> bool:
    return _spent_after(ctx) <= ctx.data["budget"]


def _over_budget_reason(ctx: Context) -> str:
    cur = ctx.data["currency"]
    return (f"spending {format_amount(ctx.params['amount'], cur)} would exceed the budget: "
            f"{format_amount(ctx.data['spent'], cur)} of {format_amount(ctx.data['budget'], cur)}"
            f" {cur} spent")


def _record_creation(ctx: Context) -> Iterator[Any]:
    # In the currency's minor units ("100.5" USD is kept as 100.50), as an order's fee is:
    # equal Decimals print differently, and the outbox and entity view print them as kept.
    # The guards have checked the budget fits the currency, so this never raises.
    currency = ctx.params["currency"]
    budget = validate_amount(ctx.params["budget"], currency)
    yield Assign({"budget": budget, "currency": currency, "spent": validate_amount(Decimal(0), currency),
                  "end": ctx.params["end"], "created_event": ctx.event_id})
    yield HoldPlaced(cause=ctx.event_id, time=ctx.time, promotion=ctx.subject, amount=budget,
                     currency=currency)


def _add_spend(ctx: Context) -> Iterator[Any]:
    yield Assign({"spent": _spent_total(ctx)})


def _release_hold(ctx: Context) -> Iterator[Any]:
    yield HoldReleased(cause=ctx.event_id, time=ctx.time, promotion=ctx.subject,
                       amount=ctx.data["budget"], currency=ctx.data["currency"])


def _settle(ctx: Context) -> Iterator[Any]:
    """Charge what was spent; release the rest of the hold. Zero amounts emit nothing."""
    spent, currency = _spent_total(ctx), ctx.data["currency"]
    if spent:
        yield Charged(cause=ctx.event_id, time=ctx.time, promotion=ctx.subject, amount=spent,
                      currency=currency)
    if rest := ctx.data["budget"] - spent:
        yield HoldReleased(cause=ctx.event_id, time=ctx.time, promotion=ctx.subject, amount=rest,
                           currency=currency)


PROMOTION = Lifecycle(
    name="promotion",
    kind="promotion",
    title="Promotion",
    description="A paid boost of one video: budget held, spend charged, rest released.",
    data=("budget", "currency", "spent", "end", "created_event"),
    states=(
        State("in_review", "The platform reviews the promotion; the budget is held."),
        State("running", "Delivering; spend accumulates up to the budget."),
        State("not_approved", "Refused in review; the hold is released.", final=True,
              group="ended"),
        State("turned_off", "Turned off; spent charged, the rest released.", final=True,
              group="ended", on_enter=("settle",)),
        State("completed", "Ended or budget spent; spent charged, the rest released.",
              final=True, group="ended", on_enter=("settle",)),
    ),
    guards=(
        Guard("end_after_creation", lambda ctx: ctx.params["end"] > ctx.time,
              lambda ctx: (f"the end {format_instant(ctx.params['end'])} does not lie after "
                           f"the creation {format_instant(ctx.time)}"), "end after creation",
              field="data.end"),
        Guard("budget_valid", lambda ctx: _fits(ctx.params["budget"], ctx.params["currency"]),
              lambda ctx: _amount_reason("budget", ctx.params["budget"], ctx.params["currency"]),
              "budget > 0", field="data.budget"),
        Guard("end_not_passed", lambda ctx: ctx.time < ctx.data["end"],
              lambda ctx: f"its end {format_instant(ctx.data['end'])} has passed",
              "before end"),
        Guard("spend_valid", lambda ctx: _fits(ctx.params["amount"], ctx.data["currency"]),
              lambda ctx: _amount_reason("amount", ctx.params["amount"], ctx.data["currency"]),
              "amount > 0", field="data.amount"),
        Guard("within_budget", _within_budget, _over_budget_reason, "spent ≤ budget",
              field="data.amount"),
        Guard("reaches_budget", lambda ctx: _spent_after(ctx) == ctx.data["budget"],
              "the budget is not reached yet", "spent = budget"),
    ),
    actions=(
        Action("record_creation", _record_creation, "hold budget"),
        Action("add_spend", _add_spend, "spent += amount"),
        Action("release_hold", _release_hold, "release hold"),
        Action("settle", _settle, "charge spent, release rest"),
    ),
    transitions=(
        Transition("create", (INITIAL,), "in_review",
                   guards=("end_after_creation", "budget_valid"), actions=("record_creation",)),
        Transition("approve", ("in_review",), "running", guards=("end_not_passed",)),
        Transition("not_approve", ("in_review",), "not_approved", actions=("release_hold",)),
        Transition("spend", ("running",), "completed",
                   guards=("spend_valid", "within_budget", "reaches_budget"),
                   actions=("add_spend",), description="spend reaches the budget"),
        Transition("spend", ("running",), "running", guards=("spend_valid", "within_budget"),
                   actions=("add_spend",)),
        Transition("turn_off", ("in_review", "running"), "turned_off"),
        Transition("end", ("in_review", "running"), "completed", internal=True,
                   description="the end time passed"),
    ),
    timers=(
        Timer("promotion_end", "end", ("in_review", "running"), lambda data: data["end"],
              lambda data: data["created_event"], delay="end time"),
    ),
    inputs=(
        Input("promotion.created", "create", (
            Field("budget", f.decimal),
            Field("currency", f.currency, description="ISO 4217"),
            Field("end", f.instant),
        ), parties=parties.BUYER),
        Input("promotion.approved", "approve", parties=parties.PLATFORM_ONLY),
        Input("promotion.not_approved", "not_approve", parties=parties.PLATFORM_ONLY),
        Input("promotion.turned_off", "turn_off", parties=parties.BUYER),
        Input("promotion.spent", "spend", (Field("amount", f.decimal),), parties=parties.PLATFORM_ONLY),
    ),
)
