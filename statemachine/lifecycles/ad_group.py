"""Ad group: a campaign's child, an ad's parent (``lifecycles.md``, "Ads Manager").

Its own switch, delete (cascading to its ads), ``complete`` when its campaign ends,
and, under a campaign with ``budget_level: "ad_group"``, the budget it holds while it
delivers. The rules themselves live in :mod:`.ads`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..engine import Action, Assign, Context, Field, Guard, Lifecycle, Parent, Transition
from ..engine import fields as f
from . import ads

__all__ = ["AD_GROUP"]


def _level(ctx: Context) -> str:
    campaign = ctx.parent()
    assert campaign is not None
    return str(campaign.data["budget_level"])


def _level_matches(ctx: Context) -> bool:
    """``budget`` is required when the campaign's ``budget_level`` is ``ad_group`` and
    refused when it is ``campaign`` (spec: "never two")."""
    return (_level(ctx) == "ad_group") == ("budget" in ctx.params)


def _budget_valid(ctx: Context) -> bool:
    campaign = ctx.parent()
    assert campaign is not None
    return ads.budget_fits(ctx.params.get("budget"), campaign.data["currency"])


def _record_creation(ctx: Context) -> Iterator[Any]:
    campaign = ctx.parent()
    assert campaign is not None
    yield Assign({"campaign": ctx.params["campaign"], "currency": campaign.data["currency"],
                  "budget": ctx.params.get("budget"), **ads.NO_MONEY})


AD_GROUP = Lifecycle(
    name="ad_group",
    kind="ad_group",
    title="Ad group",
    description="Ads Manager's middle level: a switch, and the budget when the campaign says so.",
    parent=Parent("campaign", "campaign"),
    data=("campaign", "currency", "budget", "spent", "charged", "held"),
    states=ads.states("ad group", end="Its campaign ended: final; settled, its ads too."),
    guards=(
        Guard("campaign_open", ads.parent_open, ads.parent_open_reason,
              "campaign exists, not final", field="data.campaign"),
        Guard("budget_level_matches", _level_matches,
              lambda ctx: ads.budget_level_reason("ad group", _level(ctx), "budget" in ctx.params),
              "budget iff budget_level ad_group", field="data.budget"),
        Guard("budget_valid", _budget_valid,
              lambda ctx: ads.budget_reason(ctx.params["budget"],
                                            ctx.parent().data["currency"]),  # type: ignore[union-attr]
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
        *ads.creations(("campaign_open", "budget_level_matches", "budget_valid"),
                       ("record_creation", "reconcile_self")),
        *ads.toggles(),
        *ads.owner_transitions(),
        Transition("complete", ads.SWITCHES, ads.COMPLETED, internal=True,
                   description="its campaign's end passed"),
    ),
    inputs=ads.inputs("ad_group", (
        Field("campaign", f.identifier, description="the campaign's id"),
        Field("budget", f.decimal, required=False, description="ad group level only"),
    )),
    status=ads.derived,
)
