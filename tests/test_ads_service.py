"""The service's view of an Ads Manager campaign, over real HTTP (uvicorn): its ad
groups and ads with their own states, effective statuses and money so far."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest
from test_service import Server, envelope, ok

pytest_plugins = ["helpers"]


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[httpx.Client]:
    base = tmp_path_factory.mktemp("ads-service")
    server = Server(base / "ads.db", base / "ads.log").start()
    with server.client() as client:
        yield client
    assert server.stop() in (0, -signal.SIGTERM)


def test_a_campaign_lists_its_ad_groups_and_ads_with_statuses_and_money(http):
    t = "2030-02-01T09:0{}:00Z"
    events = [
        envelope("c", t.format(0), "campaign.created", "campaign/C-1", currency="USD",
                 budget_level="ad_group", end="2030-03-01T00:00:00Z"),
        envelope("g1", t.format(1), "ad_group.created", "ad_group/G-1", campaign="C-1", budget="100.00"),
        envelope("g2", t.format(2), "ad_group.created", "ad_group/G-2", campaign="C-1", budget="50.00",
                 status="off"),
        envelope("a1", t.format(3), "ad.created", "ad/A-1", ad_group="G-1"),
        envelope("a2", t.format(4), "ad.created", "ad/A-2", ad_group="G-2"),
        envelope("s1", t.format(5), "ad.spent", "ad/A-1", amount="12.50"),
    ]
    for event in events:
        ok(http.post("/events", json=event))
    view = ok(http.get("/entities/campaign/C-1"))
    assert (view["state"], view["status"]) == ("on", "active")
    assert view["descendants"] == [
        {"subject": "ad_group/G-1", "state": "on", "status": "active",
         "money": {"budget": "100.00", "spent": "12.50", "charged": "0.00", "held": "100.00"},
         "children": [{"subject": "ad/A-1", "state": "on", "status": "active",
                       "money": {"spent": "12.50"}}]},
        {"subject": "ad_group/G-2", "state": "off", "status": "off",
         "money": {"budget": "50.00", "spent": "0.00", "charged": "0.00", "held": "0.00"},
         "children": [{"subject": "ad/A-2", "state": "on", "status": "off_by_ad_group",
                       "money": {"spent": "0.00"}}]},
    ]
    assert view["money"] == {"USD": {"hold_placed": "100.00"}}
    ad = ok(http.get("/entities/ad/A-2"))
    assert (ad["state"], ad["status"]) == ("on", "off_by_ad_group") and "descendants" not in ad
