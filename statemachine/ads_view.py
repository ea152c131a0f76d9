"""The Ads Manager part of an entity view (the service's ``GET /entities/...``).

``lifecycles.md`` ("Effective status"): the view shows the effective status next to
the own state; a campaign or ad group also lists its descendants, each with its own
state, its effective status and its money so far (an owner's budget, spent, charged,
held; an ad's spent). Kept apart from the service so it moves with no HTTP code.
"""

from __future__ import annotations

from typing import Any

from .api import Engine, EntityView
from .money import format_amount

__all__ = ["ads_view"]

_MONEY = ("budget", "spent", "charged", "held")


def _node(engine: Engine, subject: str) -> dict[str, Any]:
    entity = engine.get(subject)
    assert isinstance(entity, EntityView)
    node: dict[str, Any] = {"subject": subject, "state": entity.state, "status": entity.status}
    cur = entity.data["currency"]
    node["money"] = {k: format_amount(entity.data[k], cur) for k in _MONEY
                     if k in entity.data and entity.data[k] is not None}
    kids = engine.runtime.children.get(subject, ())
    if kids:
        node["children"] = [_node(engine, child) for child in kids]
    return node


def ads_view(engine: Engine, entity: EntityView) -> dict[str, Any]:
    """``status`` and, for a level with children, ``descendants`` as a tree."""
    extra: dict[str, Any] = {"status": entity.status}
    kids = engine.runtime.children.get(entity.subject, ())
    if kids:
        extra["descendants"] = [_node(engine, child) for child in kids]
    return extra
