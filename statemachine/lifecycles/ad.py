"""Ad: the bottom of the Ads Manager hierarchy (``lifecycles.md``, "Ads Manager").

Its own switch, delete, ``complete`` when its campaign ends, and ``spent``: spend on
an effectively active ad counts against its budget owner. Ads own no money: their
toggles and their deletion never move any. The rules themselves live in :mod:`.ads`.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ..engine import Action, Assign, Context, Field, Guard, Input, Lifecycle, Parent, Transition
from ..engine import fields as f
from . import ads, parties

__all__ = ["AD"]


def _record_creation(ctx: Context) -> Iterator[Any]:
    group = ctx.parent()
    assert group is not None
    yield Assign({"ad_group": ctx.params["ad_group"], "campaign": group.data["campaign"],
                  "currency": group.data["currency"], "spent": Decimal(0)})


AD = Lifecycle(
    name="ad",
    kind="ad",
    title="Ad",
    description="Ads Manager's bottom level: a switch; its spend counts against the owner.",
    parent=Parent("ad_group", "ad_group"),
    data=("ad_group", "campaign", "currency", "spent"),
    states=ads.states("ad", end="Its campaign ended: final.", owner=False, parent=False),
    guards=(
        Guard("ad_group_open", ads.parent_open, ads.parent_open_reason,
              "ad group exists, not final", field="data.ad_group"),
        *ads.STATUS_GUARDS,
        Guard("spend_valid", ads.spend_valid, ads.spend_reason, "amount > 0",
              field="data.amount"),
        Guard("delivering", ads.ad_delivering, ads.ad_stop_reason, "effectively active"),
        Guard("within_budget", ads.within_budget, ads.over_budget_reason,
              "owner's spent ≤ budget", field="data.amount"),
    ),
    actions=(
        Action("record_creation", _record_creation),
        Action("record_spend", ads.record_spend, "spent += amount, on the owner too"),
        *ads.actions(parent=False),
    ),
    transitions=(
        *ads.creations(("ad_group_open",), ("record_creation",)),
        *ads.toggles(),
        Transition("spend", (ads.ON,), ads.ON, guards=("spend_valid", "delivering", "within_budget"),
                   actions=("record_spend",)),
        Transition("complete", ads.SWITCHES, ads.COMPLETED, internal=True,
                   description="its campaign's end passed"),
    ),
    inputs=(*ads.inputs("ad", (Field("ad_group", f.identifier, description="the ad group's id"),)),
            # Spend is reported by the delivery system: the platform's, as for promotions.
            Input("ad.spent", "spend", (Field("amount", f.decimal),), parties=parties.PLATFORM_ONLY)),
    status=ads.derived,
)
