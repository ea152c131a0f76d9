"""Campaign: the top of the Ads Manager hierarchy (``lifecycles.md``, "Ads Manager").

Its own switch, its end timer (``completed``, cascading to every descendant not yet
deleted), its delete (cascading), and, with ``budget_level: "campaign"``, the budget
it holds while it delivers. With ``budget_level: "ad_group"`` its toggles reconcile
each ad group's hold instead. The rules themselves live in :mod:`.ads`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..engine import Action, Assign, Context, Field, Guard, Lifecycle, Timer, Transition
from ..engine import fields as f
from ..timeutil import format_instant
from . import ads

__all__ = ["CAMPAIGN"]


def _level_matches(ctx: Context) -> bool:
    """``budget`` is required with ``budget_level: "campaign"``, refused with ``"ad_group"``."""
    return (ctx.params["budget_level"] == "campaign") == ("budget" in ctx.params)


def _level_reason(ctx: Context) -> str:
    if "budget" in ctx.params:
        return ("data.budget is refused with budget_level ad_group: the budgets sit on the "
                "ad groups (one budget level per campaign)")
    return "data.budget is required with budget_level campaign"


def _record_creation(ctx: Context) -> Iterator[Any]:
    yield Assign({"currency": ctx.params["currency"], "budget_level": ctx.params["budget_level"],
                  "budget": ctx.params.get("budget"), "end": ctx.params["end"],
                  "created_event": ctx.event_id, **ads.NO_MONEY})


CAMPAIGN = Lifecycle(
    name="campaign",
    kind="campaign",
    title="Campaign",
    description="Ads Manager's top level: a switch, an end, and the budget at one level.",
    data=("currency", "budget_level", "budget", "end", "created_event", "spent", "charged",
          "held"),
    states=ads.states("campaign", end="Its end passed: final; owners settled, descendants too."),
    guards=(
        Guard("end_after_creation", lambda ctx: ctx.params["end"] > ctx.time,
              lambda ctx: (f"the end {format_instant(ctx.params['end'])} does not lie after "
                           f"the creation {format_instant(ctx.time)}"), "end after creation",
              field="data.end"),
        Guard("budget_level_matches", _level_matches, _level_reason,
              "budget iff budget_level campaign", field="data.budget"),
        Guard("budget_valid",
              lambda ctx: ads.budget_fits(ctx.params.get("budget"), ctx.params["currency"]),
              lambda ctx: ads.budget_reason(ctx.params["budget"], ctx.params["currency"]),
              "budget > 0", field="data.budget"),
        *ads.STATUS_GUARDS,
        *ads.owner_guards(),
    ),
    actions=(
        Action("record_creation", _record_creation),
        *ads.actions(),
        *ads.owner_actions(),
    ),
    transitions=(
        *ads.creations(("end_after_creation", "budget_level_matches", "budget_valid"),
                       ("record_creation", "reconcile_self")),
        *ads.toggles(),
        *ads.owner_transitions(),
        Transition("end", ads.SWITCHES, ads.COMPLETED, internal=True,
                   description="the campaign's end passed"),
    ),
    timers=(
        Timer("campaign_end", "end", ads.SWITCHES, lambda data: data["end"],
              lambda data: data["created_event"], delay="end time"),
    ),
    inputs=ads.inputs("campaign", (
        Field("currency", f.currency, description="ISO 4217"),
        Field("budget_level", f.choice(*ads.BUDGET_LEVELS)),
        Field("budget", f.decimal, required=False, description="campaign level only"),
        Field("end", f.instant),
    )),
    status=ads.derived,
)
