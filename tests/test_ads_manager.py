"""Ads Manager, row by row (``shared/spec/lifecycles.md``, "Ads Manager: campaign → ad
group → ad"): own states, creation, effective status, money, what off keeps and what
delete ends; then a hypothesis property over random histories."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from helpers import T0, at, ev, rejected
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.api import Engine, EntityView
from statemachine.engine import EventRejected
from statemachine.lifecycles import ads

pytest_plugins = ["helpers"]

END = "2026-04-01T00:00:00Z"
C = "campaign/C-1"
G1, G2 = "ad_group/G-1", "ad_group/G-2"
A1, A2, A3 = "ad/A-1", "ad/A-2", "ad/A-3"


class Story:
    """An engine and a clock that moves one minute per event (ids are numbered)."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.n = 0
        self.lines: list[dict[str, Any]] = []
        self.engine.subscribe(self._book)

    def _book(self, outcome: Any) -> None:
        for effect in outcome.effects:
            if effect.ledger_kind:
                self.lines.append({"kind": effect.ledger_kind, "subject": effect.ledger_subject(),
                                   "amount": effect.amount, "cause": effect.cause,
                                   "time": effect.time})

    def next(self) -> tuple[str, Any]:
        self.n += 1
        time = at(T0, minutes=self.n)
        clock = self.engine.clock
        return f"e{self.n}", time if clock is None or time > clock else at(clock, minutes=1)

    def envelope(self, type: str, subject: str, **data: Any) -> dict[str, Any]:
        eid, time = self.next()
        return ev(eid, time, type, subject, **data)

    def do(self, type: str, subject: str, **data: Any) -> list[tuple[str, str, Decimal]]:
        """Apply; return the ledger lines it wrote as (kind, subject, amount)."""
        before = len(self.lines)
        self.engine.apply(self.envelope(type, subject, **data))
        return [(x["kind"], x["subject"], x["amount"]) for x in self.lines[before:]]

    def refused(self, type: str, subject: str, match: str, **data: Any) -> EventRejected:
        return rejected(self.engine, self.envelope(type, subject, **data), match)

    def status(self, subject: str) -> str | None:
        return self.engine.status(subject)

    def state(self, subject: str) -> str:
        entity = self.engine.get(subject)
        assert entity is not None
        return entity.state


def campaign(s: Story, level: str = "ad_group", budget: str | None = None,
             status: str | None = None, currency: str = "USD") -> list[Any]:
    data: dict[str, Any] = {"currency": currency, "budget_level": level, "end": END}
    if budget is not None:
        data["budget"] = budget
    if status is not None:
        data["status"] = status
    return s.do("campaign.created", C, **data)


def group(s: Story, subject: str = G1, budget: str | None = None, status: str | None = None,
          campaign: str = "C-1") -> list[Any]:
    data: dict[str, Any] = {"campaign": campaign}
    if budget is not None:
        data["budget"] = budget
    if status is not None:
        data["status"] = status
    return s.do("ad_group.created", subject, **data)


def ad(s: Story, subject: str = A1, ad_group: str = "G-1", status: str | None = None) -> list[Any]:
    data: dict[str, Any] = {"ad_group": ad_group}
    if status is not None:
        data["status"] = status
    return s.do("ad.created", subject, **data)


D = Decimal


@pytest.fixture
def s() -> Story:
    return Story()


# -- creation ---------------------------------------------------------------------------
def test_a_campaign_level_budget_is_held_at_creation(s: Story) -> None:
    assert campaign(s, "campaign", "100.00") == [("hold_placed", C, D("100.00"))]
    assert s.state(C) == "on" and s.status(C) == "active"


def test_a_campaign_created_off_holds_nothing_and_null_status_counts_as_on(s: Story) -> None:
    assert campaign(s, "campaign", "100.00", status="off") == []
    assert s.status(C) == "off"
    s.do("campaign.turned_on", C)
    assert s.lines[-1]["kind"] == "hold_placed" and s.lines[-1]["amount"] == D("100.00")
    s2 = Story()
    s2.engine.apply(ev("x", T0, "campaign.created", C, currency="USD", budget_level="ad_group",
                       end=END, status=None))
    assert s2.state(C) == "on"


@pytest.mark.parametrize(("data", "match"), [
    ({"budget_level": "campaign"}, "data.budget is required with budget_level campaign"),
    ({"budget_level": "ad_group", "budget": "10.00"}, "data.budget is refused with budget_level ad_group"),
    ({"budget_level": "campaign", "budget": "0"}, "the budget must be > 0"),
    ({"budget_level": "campaign", "budget": "1.001"}, "more decimals than USD allows"),
    ({"budget_level": "campaign", "budget": "10", "end": T0}, "does not lie after the creation"),
    ({"budget_level": "campaign", "budget": "10", "status": "paused"}, "data.status"),
    ({"budget_level": "both", "budget": "10"}, "data.budget_level"),
])
def test_campaign_creation_is_checked(s: Story, data: dict[str, Any], match: str) -> None:
    eid, time = "bad", T0
    envelope = ev(eid, time, "campaign.created", C, **{"currency": "USD", "end": END, **data})
    rejected(s.engine, envelope, match)
    assert s.engine.get(C) is None


def test_jpy_budgets_have_no_decimals(s: Story) -> None:
    s.refused("campaign.created", C, "more decimals than JPY", currency="JPY",
              budget_level="campaign", budget="10.5", end=END)
    assert campaign(s, "campaign", "1000", currency="JPY") == [("hold_placed", C, D("1000"))]


def test_one_budget_level_per_campaign(s: Story) -> None:
    campaign(s, "campaign", "100.00")
    s.refused("ad_group.created", G1, "takes no budget when the campaign's budget_level is campaign",
              campaign="C-1", budget="10.00")
    s2 = Story()
    campaign(s2, "ad_group")
    s2.refused("ad_group.created", G1, "data.budget is required", campaign="C-1")
    s2.refused("ad_group.created", G1, "the budget must be > 0", campaign="C-1", budget="-1")


def test_children_need_a_parent_that_exists_and_is_not_final(s: Story) -> None:
    s.refused("ad_group.created", G1, "campaign/C-1 does not exist", campaign="C-1", budget="1")
    campaign(s, "ad_group", status="off")
    group(s, budget="50.00", status="off")  # under an off parent: allowed
    s.refused("ad.created", A2, "ad_group/G-9 does not exist", ad_group="G-9")
    ad(s)  # under an off ad group: allowed
    s.do("ad_group.deleted", G1)
    s.refused("ad.created", A2, "ad_group/G-1 is deleted", ad_group="G-1")
    s.do("campaign.deleted", C)
    s.refused("ad_group.created", G2, "campaign/C-1 is deleted", campaign="C-1", budget="1")


# -- own states: toggles ----------------------------------------------------------------
def test_toggling_to_the_same_switch_is_applied_and_moves_no_money(s: Story) -> None:
    campaign(s, "campaign", "100.00")
    assert s.do("campaign.turned_on", C) == []
    s.do("campaign.turned_off", C)
    assert s.do("campaign.turned_off", C) == []
    assert s.state(C) == "off"


def test_parent_off_then_on_restores_each_childs_own_switch(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, G1, "100.00")
    group(s, G2, "100.00", status="off")
    ad(s, A1, "G-1")
    ad(s, A2, "G-1", status="off")
    ad(s, A3, "G-2")
    before = {x: (s.state(x), s.status(x)) for x in (G1, G2, A1, A2, A3)}
    assert [v[1] for v in before.values()] == ["active", "off", "active", "off", "off_by_ad_group"]
    s.do("campaign.turned_off", C)
    assert {x: s.status(x) for x in before} == dict.fromkeys(before, "off_by_campaign")
    assert {x: s.state(x) for x in before} == {x: v[0] for x, v in before.items()}
    s.do("ad_group.turned_off", G1)  # a child toggled under an off parent
    s.do("ad_group.turned_on", G1)
    s.do("campaign.turned_on", C)
    assert {x: (s.state(x), s.status(x)) for x in before} == before


def test_an_ad_turned_on_under_an_off_campaign_places_no_hold(s: Story) -> None:
    campaign(s, "campaign", "100.00")
    group(s)
    ad(s, status="off")
    s.do("campaign.turned_off", C)
    assert s.do("ad.turned_on", A1) == []
    assert s.status(A1) == "off_by_campaign"
    s2 = Story()
    campaign(s2, "ad_group", status="off")
    assert group(s2, budget="40.00") == []  # an owner created on under an off campaign
    assert ad(s2) == []
    assert s2.do("ad.turned_off", A1) == [] and s2.do("ad.turned_on", A1) == []
    assert s2.do("campaign.turned_on", C) == [("hold_placed", G1, D("40.00"))]


def test_ad_toggles_and_deletion_never_move_money(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, budget="40.00")
    ad(s)
    s.do("ad.spent", A1, amount="5.00")
    assert s.do("ad.turned_off", A1) == []
    assert s.do("ad.turned_on", A1) == []
    assert s.do("ad.deleted", A1) == []
    assert s.state(G1) == "on" and s.status(G1) == "active"


def test_ad_group_toggles_under_a_campaign_budget_move_no_money(s: Story) -> None:
    campaign(s, "campaign", "100.00")
    group(s)
    assert s.do("ad_group.turned_off", G1) == []
    assert s.do("ad_group.turned_on", G1) == []
    assert s.do("ad_group.deleted", G1) == []
    assert s.status(C) == "active"


# -- money ------------------------------------------------------------------------------
def test_an_owner_stopping_is_charged_its_spend_and_the_rest_released(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, budget="100.00")
    ad(s)
    assert s.do("ad.spent", A1, amount="30.00") == []
    assert s.engine.get(A1).data["spent"] == D("30.00")  # type: ignore[union-attr]
    assert s.do("ad_group.turned_off", G1) == [("charge", G1, D("30.00")),
                                               ("hold_released", G1, D("70.00"))]
    assert s.do("ad_group.turned_on", G1) == [("hold_placed", G1, D("70.00"))]
    s.do("ad.spent", A1, amount="20.00")
    # an ancestor turned off stops the owner just the same
    assert s.do("campaign.turned_off", C) == [("charge", G1, D("20.00")),
                                              ("hold_released", G1, D("50.00"))]
    assert s.do("campaign.turned_on", C) == [("hold_placed", G1, D("50.00"))]


def test_spend_reaching_the_budget_exactly_charges_and_exhausts(s: Story) -> None:
    campaign(s, "campaign", "100.00")
    group(s)
    ad(s)
    ad(s, A2)
    s.do("ad.spent", A1, amount="60.00")
    s.refused("ad.spent", A2, "spending 40.01 would exceed the budget of campaign/C-1: "
              "60.00 of 100.00 USD spent", amount="40.01")
    assert s.do("ad.spent", A2, amount="40.00") == [("charge", C, D("100.00"))]
    assert s.state(C) == "on"
    assert {x: s.status(x) for x in (C, G1, A1, A2)} == dict.fromkeys((C, G1, A1, A2),
                                                                      "budget_exhausted")
    s.refused("ad.spent", A1, "campaign/C-1 has spent its budget: 100.00 of 100.00 USD",
              amount="0.01")
    assert s.do("campaign.turned_off", C) == []
    assert s.do("campaign.turned_on", C) == []
    assert s.do("campaign.deleted", C) == []


def test_spend_is_refused_naming_the_level_that_stops_it(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, budget="100.00")
    ad(s)
    s.do("ad_group.turned_off", G1)
    s.refused("ad.spent", A1, "ad_group/G-1 is off", amount="1.00")
    s.do("campaign.turned_off", C)
    s.refused("ad.spent", A1, "campaign/C-1 is off", amount="1.00")
    s.do("campaign.turned_on", C)
    s.do("ad_group.turned_on", G1)
    s.do("ad.turned_off", A1)
    s.refused("ad.spent", A1, "ad/A-1: cannot spend in state off", amount="1.00")
    s.do("ad.turned_on", A1)
    s.refused("ad.spent", A1, "the amount must be > 0", amount="0")
    s.refused("ad.spent", A1, "more decimals than USD allows", amount="0.001")
    s.do("ad.spent", A1, amount="1.00")


def test_an_owner_with_no_ads_still_holds(s: Story) -> None:
    campaign(s, "ad_group")
    assert group(s, budget="25.00") == [("hold_placed", G1, D("25.00"))]


# -- delete and end ---------------------------------------------------------------------
def test_deleting_a_campaign_settles_every_owner_once_in_creation_order(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, G1, "100.00")
    group(s, G2, "50.00")
    ad(s, A1, "G-1")
    ad(s, A2, "G-2")
    s.do("ad.spent", A1, amount="10.00")
    s.do("ad.spent", A2, amount="50.00")  # G-2 exhausted: already charged
    s.do("ad.deleted", A2)
    lines = s.do("campaign.deleted", C)
    assert lines == [("charge", G1, D("10.00")), ("hold_released", G1, D("90.00"))]
    assert {x: s.state(x) for x in (C, G1, G2, A1, A2)} == dict.fromkeys((C, G1, G2, A1, A2),
                                                                         "deleted")
    assert s.engine.get(A1).data["spent"] == D("10.00")  # type: ignore[union-attr]
    for owner in (G1, G2):
        mine = [x for x in s.lines if x["subject"] == owner]
        total = {k: sum((x["amount"] for x in mine if x["kind"] == k), D(0))
                 for k in ("hold_placed", "charge", "hold_released")}
        assert total["hold_placed"] == total["charge"] + total["hold_released"]


def test_deleting_a_campaign_owner_settles_it(s: Story) -> None:
    campaign(s, "campaign", "80.00")
    group(s)
    ad(s)
    s.do("ad.spent", A1, amount="30.00")
    assert s.do("campaign.deleted", C) == [("charge", C, D("30.00")),
                                           ("hold_released", C, D("50.00"))]


@pytest.mark.parametrize("final", ["deleted", "completed"])
@pytest.mark.parametrize("subject", [C, G1, A1])
def test_anything_sent_to_a_final_entity_is_refused_and_changes_nothing(
        s: Story, final: str, subject: str) -> None:
    campaign(s, "ad_group")
    group(s, budget="100.00")
    ad(s)
    if final == "deleted":
        s.do("campaign.deleted", C)
    else:
        s.engine.advance_to(END)
    kind = subject.partition("/")[0]
    for what in ("turned_on", "turned_off", "deleted"):
        s.refused(f"{kind}.{what}", subject, f"in state {final}")
    s.refused("ad.spent", A1, f"ad/A-1: cannot spend in state {final}", amount="1.00")


def test_the_campaign_end_completes_everything_not_deleted_and_settles(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, G1, "100.00")
    group(s, G2, "60.00", status="off")
    ad(s, A1, "G-1")
    ad(s, A2, "G-1")
    s.do("ad.spent", A1, amount="12.34")
    s.do("ad.deleted", A2)
    fired = s.engine.advance_to(at(END, days=1))
    assert len(fired) == 1 and fired[0].timer == "campaign_end"
    assert {x: s.state(x) for x in (C, G1, G2, A1, A2)} == {
        C: "completed", G1: "completed", G2: "completed", A1: "completed", A2: "deleted"}
    assert [(x["kind"], x["subject"], x["amount"], x["cause"], x["time"]) for x in s.lines[-2:]] == [
        ("charge", G1, D("12.34"), "e1", at(END)),
        ("hold_released", G1, D("87.66"), "e1", at(END))]
    s.refused("ad_group.created", "ad_group/G-3", "campaign/C-1 is completed", campaign="C-1",
              budget="1")


def test_deleting_an_owner_ad_group_settles_it_and_deletes_its_ads(s: Story) -> None:
    campaign(s, "ad_group")
    group(s, budget="100.00")
    ad(s)
    s.do("ad.spent", A1, amount="1.00")
    assert s.do("ad_group.deleted", G1) == [("charge", G1, D("1.00")),
                                            ("hold_released", G1, D("99.00"))]
    assert s.state(A1) == "deleted" and s.state(C) == "on"


# -- the entity view --------------------------------------------------------------------
def test_engine_get_shows_own_state_and_effective_status(s: Story) -> None:
    campaign(s, "campaign", "100.00")
    group(s)
    ad(s)
    s.do("ad_group.turned_off", G1)
    view = s.engine.get(A1)
    assert isinstance(view, EntityView)
    assert (view.state, view.status) == ("on", "off_by_ad_group")
    assert s.engine.get("ad/none") is None
    assert not isinstance(Story().engine.get("order/x"), EntityView)


# -- the property -----------------------------------------------------------------------
def _expected_status(subject: str, entities: dict[str, Any]) -> str:
    """The spec's list, written again from scratch over the ancestors."""
    me = entities[subject]
    if me.state in ("deleted", "completed"):
        return str(me.state)
    campaign = entities[f"campaign/{me.data['campaign']}"] if "campaign" in me.data else me
    group = entities[f"ad_group/{me.data['ad_group']}"] if "ad_group" in me.data else None
    if me is not campaign and campaign.state != "on":
        return "off_by_campaign"
    if group is not None and group.state != "on":
        return "off_by_ad_group"
    if me.state == "off":
        return "off"
    if campaign.data["budget_level"] == "campaign":
        owner = campaign
    elif me is campaign:
        owner = None
    else:
        owner = group or me
    if owner is not None and owner.data["spent"] >= owner.data["budget"]:
        return "budget_exhausted"
    return "active"


SUBJECTS = (C, G1, G2, A1, A2, A3)
ADS = (A1, A2, A3)
_ops = st.one_of(
    st.tuples(st.sampled_from(("turned_on", "turned_off", "deleted")), st.sampled_from(SUBJECTS)),
    st.tuples(st.just("spent"), st.sampled_from(ADS), st.integers(1, 4000)),
)


@settings(max_examples=150, deadline=None)
@given(level=st.sampled_from(ads.BUDGET_LEVELS), offs=st.lists(st.booleans(), min_size=6, max_size=6),
       ops=st.lists(_ops, max_size=40), end_early=st.booleans())
def test_random_histories_keep_the_money_whole(level: str, offs: list[bool],
                                               ops: list[tuple[Any, ...]], end_early: bool) -> None:
    s = Story()
    status = ["off" if o else None for o in offs]
    campaign(s, level, "50.00" if level == "campaign" else None, status=status[0])
    budget = "30.00" if level == "ad_group" else None
    group(s, G1, budget, status=status[1])
    group(s, G2, budget, status=status[2])
    ad(s, A1, "G-1", status=status[3])
    ad(s, A2, "G-1", status=status[4])
    ad(s, A3, "G-2", status=status[5])
    owners = [C] if level == "campaign" else [G1, G2]
    accepted = dict.fromkeys(owners, D(0))
    if end_early:
        ops = ops[: len(ops) // 2]
    for op in ops:
        kind = op[1].partition("/")[0]
        data = {"amount": str(D(op[2]) / 100)} if op[0] == "spent" else {}
        try:
            s.do(f"{kind}.{op[0]}", op[1], **data)
        except EventRejected:
            continue
        if op[0] == "spent":
            owner = C if level == "campaign" else f"ad_group/{s.engine.get(op[1]).data['ad_group']}"  # type: ignore[union-attr]
            accepted[owner] += D(op[2]) / 100
        entities = s.engine.runtime.entities
        for subject in SUBJECTS:
            assert s.status(subject) == _expected_status(subject, entities), subject
        for owner in owners:
            mine = [x for x in s.lines if x["subject"] == owner]
            placed = sum((x["amount"] for x in mine if x["kind"] == "hold_placed"), D(0))
            out = sum((x["amount"] for x in mine if x["kind"] != "hold_placed"), D(0))
            assert placed - out >= 0
            assert placed - out == entities[owner].data["held"]
            assert entities[owner].data["spent"] <= entities[owner].data["budget"]
    s.engine.advance_to(at(END, days=1))
    assert all(s.state(x) in ("deleted", "completed") for x in SUBJECTS)
    for owner in owners:
        mine = [x for x in s.lines if x["subject"] == owner]
        total = {k: sum((x["amount"] for x in mine if x["kind"] == k), D(0))
                 for k in ("hold_placed", "charge", "hold_released")}
        assert total["hold_placed"] == total["charge"] + total["hold_released"]
        assert total["charge"] == accepted[owner] == s.engine.get(owner).data["spent"]  # type: ignore[union-attr]
    assert not any(x["subject"].startswith("ad/") for x in s.lines)


def test_one_event_over_three_owners_writes_their_lines_in_creation_order(s: Story) -> None:
    campaign(s, "ad_group")
    g3 = "ad_group/G-3"
    group(s, G2, "20.00")
    group(s, G1, "10.00")
    group(s, g3, "30.00")
    ad(s, A1, "G-1")
    ad(s, A3, "G-3")
    s.do("ad.spent", A3, amount="1.00")
    s.do("ad.spent", A1, amount="2.00")
    assert s.do("campaign.turned_off", C) == [
        ("hold_released", G2, D("20.00")),
        ("charge", G1, D("2.00")), ("hold_released", G1, D("8.00")),
        ("charge", g3, D("1.00")), ("hold_released", g3, D("29.00"))]
    assert s.do("campaign.turned_on", C) == [
        ("hold_placed", G2, D("20.00")), ("hold_placed", G1, D("8.00")),
        ("hold_placed", g3, D("29.00"))]
