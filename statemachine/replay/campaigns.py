"""The replay report's Ads Manager section: per campaign, its budget owners' money.

``lifecycles.md`` ("Money: the budget owner holds, only spend is charged") keeps
``spent``, ``charged`` and ``held`` on each owner; the ledger alone cannot show what
was spent but not yet charged (a delivering owner), nor the budget of an owner that
never delivered, so the replay summarizes the final records here. The JSON report is
the spec's and stays as it is; this section is for the text report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from ..money import format_amount

__all__ = ["CampaignSummary", "OwnerSummary", "render_campaigns", "summarize"]


class OwnerSummary(msgspec.Struct, frozen=True):
    """One budget owner (the campaign itself, or one of its ad groups) at the end."""

    subject: str
    state: str
    status: str
    budget: Decimal
    spent: Decimal
    charged: Decimal
    held: Decimal


class CampaignSummary(msgspec.Struct, frozen=True):
    subject: str
    state: str
    status: str
    currency: str
    budget_level: str
    owners: list[OwnerSummary]


def summarize(entities: Mapping[str, Any], children: Mapping[str, Sequence[str]],
              status: Callable[[Any], str]) -> list[CampaignSummary]:
    """Every campaign among ``entities`` (in their order), with its owners in creation
    order; ``status(entity)`` is the lifecycles' derived status."""
    found = []
    for subject, entity in entities.items():
        if entity.lifecycle != "campaign":
            continue
        data = entity.data
        level = data["budget_level"]
        members = [entity] if level == "campaign" else [entities[g] for g in children.get(subject, ())]
        owners = [OwnerSummary(o.subject, o.state, status(o), o.data["budget"], o.data["spent"],
                               o.data["charged"], o.data["held"]) for o in members]
        found.append(CampaignSummary(subject, entity.state, status(entity), data["currency"],
                                     level, owners))
    return found


def ordered(campaigns: Iterable[CampaignSummary], entities: Mapping[str, str]) -> list[CampaignSummary]:
    """Campaigns in the report's order of creation (for summaries merged from workers)."""
    rank = {subject: n for n, subject in enumerate(entities)}
    return sorted(campaigns, key=lambda c: rank[c.subject])


def render_campaigns(campaigns: Sequence[CampaignSummary], console: Any) -> None:
    """A table per campaign: owners, budget, spent, charged, held."""
    from rich.table import Table

    for campaign in campaigns:
        cur = campaign.currency
        table = Table(title=(f"{campaign.subject} ({cur}, budget_level {campaign.budget_level}): "
                             f"{campaign.state}, {campaign.status}"), title_justify="left")
        for name in ("owner", "state", "status"):
            table.add_column(name)
        for name in ("budget", "spent", "charged", "held"):
            table.add_column(name, justify="right")
        for o in campaign.owners:
            table.add_row(o.subject, o.state, o.status,
                          *(format_amount(v, cur) for v in (o.budget, o.spent, o.charged, o.held)))
        console.print(table)
