"""Ads Manager rules in one place (``lifecycles.md``, "Ads Manager: campaign → ad group → ad").

Every level stores only its own switch (``on``/``off``) or a final state
(``deleted``/``completed``); what it effectively does is :func:`effective_status`, a
pure function of its own record and its ancestors' (the spec's "Effective status"
list, first match wins). It is declared as the lifecycles' derived ``status``, so the
engine's guards, ``Engine.get`` and the service all read this one function; it is
never stored.

Money (the spec's "Money" table) belongs to the *budget owner*: the campaign
(``budget_level: "campaign"``) or each ad group (``"ad_group"``). An owner keeps
``spent``, ``charged`` and ``held``. Whenever something may change whether an owner
delivers (its own toggle or creation, an ancestor's toggle), the toggled entity sends
the owners below it an optional ``reconcile`` (the engine's ordinary cascade, applied
after the toggle in the same unit of work, so it sees the new states). ``reconcile``
compares "delivering now" with "holding now" and places a hold or settles; when they
agree it is not taken at all. Delete and the campaign end settle on entering the final
state. So each money rule is written once, whichever level's switch moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from ..engine import (
    INITIAL,
    Action,
    Assign,
    Context,
    Entity,
    Field,
    Guard,
    Input,
    Send,
    State,
    Transition,
)
from ..engine import fields as f
from ..money import MoneyError, format_amount, validate_amount
from . import parties
from .effects import BudgetCharged, BudgetHoldPlaced, BudgetHoldReleased

__all__ = [
    "ACTIVE",
    "BUDGET_EXHAUSTED",
    "EFFECTIVE_STATUSES",
    "OFF_BY_AD_GROUP",
    "OFF_BY_CAMPAIGN",
    "effective_status",
    "owner_of",
    "stop_reason",
]

Lookup = Callable[[str], Entity | None]

# -- own states (spec: "Own states (stored)") -------------------------------------------
ON, OFF, DELETED, COMPLETED = "on", "off", "deleted", "completed"
FINAL = (DELETED, COMPLETED)
SWITCHES = (ON, OFF)

# -- effective statuses (spec: "Effective status", in the order the rules match) --------
OFF_BY_CAMPAIGN = "off_by_campaign"
OFF_BY_AD_GROUP = "off_by_ad_group"
BUDGET_EXHAUSTED = "budget_exhausted"
ACTIVE = "active"
EFFECTIVE_STATUSES = (DELETED, COMPLETED, OFF_BY_CAMPAIGN, OFF_BY_AD_GROUP, OFF,
                      BUDGET_EXHAUSTED, ACTIVE)

#: ``campaign.created``'s ``budget_level`` values: who owns the money.
BUDGET_LEVELS = ("campaign", "ad_group")

#: The rules as the hierarchy diagram's legend shows them (first match wins).
STATUS_RULES = (
    (DELETED + " / " + COMPLETED, "its own final state"),
    (OFF_BY_CAMPAIGN, "ad group, ad: the campaign is not on"),
    (OFF_BY_AD_GROUP, "ad: its ad group is not on"),
    (OFF, "its own switch is off"),
    (BUDGET_EXHAUSTED, "its budget owner's spend reached the budget"),
    (ACTIVE, "otherwise: delivering"),
)


# -- the hierarchy --------------------------------------------------------------------
def campaign_of(entity: Entity, get: Lookup) -> Entity:
    """The campaign an entity belongs to (itself, for a campaign)."""
    if entity.subject.startswith("campaign/"):
        return entity
    campaign = get(f"campaign/{entity.data['campaign']}")
    assert campaign is not None, f"{entity.subject}: its campaign is gone"
    return campaign


def ad_group_of(ad: Entity, get: Lookup) -> Entity:
    group = get(f"ad_group/{ad.data['ad_group']}")
    assert group is not None, f"{ad.subject}: its ad group is gone"
    return group


def owner_of(entity: Entity, get: Lookup) -> Entity | None:
    """The budget owner above or at ``entity`` (spec: "The budget owner is the campaign
    … or each ad group"); ``None`` for a campaign whose budgets sit on its ad groups."""
    campaign = campaign_of(entity, get)
    if campaign.data["budget_level"] == "campaign":
        return campaign
    if entity is campaign:
        return None
    if entity.subject.startswith("ad_group/"):
        return entity
    return ad_group_of(entity, get)


def is_owner(entity: Entity, get: Lookup) -> bool:
    return owner_of(entity, get) is entity


def _exhausted(owner: Entity) -> bool:
    return bool(owner.data["spent"] >= owner.data["budget"])


def effective_status(entity: Entity, get: Lookup) -> str:
    """The spec's "Effective status (derived on read, never stored)": first match wins.

    A parent in a final state while its child is not yet (only ever inside the unit of
    work that cascades it) counts as "not on", so it stops the child like ``off``.
    """
    state = entity.state
    if state in FINAL:
        return state
    kind = entity.subject.partition("/")[0]
    if kind != "campaign":
        if campaign_of(entity, get).state != ON:
            return OFF_BY_CAMPAIGN
        if kind == "ad" and ad_group_of(entity, get).state != ON:
            return OFF_BY_AD_GROUP
    if state == OFF:
        return OFF
    owner = owner_of(entity, get)
    if owner is not None and _exhausted(owner):
        return BUDGET_EXHAUSTED
    return ACTIVE


def _amount(value: Decimal, owner: Entity) -> str:
    return format_amount(value, owner.data["currency"])


def stop_reason(entity: Entity, get: Lookup) -> str:
    """Why ``entity`` does not deliver, naming the level that stops it (spec: "the
    reason names the level that stops it, or, when exhausted, the owner with spent,
    budget and currency")."""
    status = effective_status(entity, get)
    if status == OFF_BY_CAMPAIGN:
        campaign = campaign_of(entity, get)
        return f"{campaign.subject} is {campaign.state}"
    if status == OFF_BY_AD_GROUP:
        group = ad_group_of(entity, get)
        return f"{group.subject} is {group.state}"
    if status == BUDGET_EXHAUSTED:
        owner = owner_of(entity, get)
        assert owner is not None
        return (f"{owner.subject} has spent its budget: {_amount(owner.data['spent'], owner)} "
                f"of {_amount(owner.data['budget'], owner)} {owner.data['currency']}")
    return f"{entity.subject} is {status}"


# -- creation checks (spec: "Creation") -------------------------------------------------
def budget_fits(budget: Decimal | None, currency: str) -> bool:
    """A budget is > 0 with the currency's decimals (absent: nothing to check here)."""
    if budget is None:
        return True
    try:
        validate_amount(budget, currency)
    except MoneyError:
        return False
    return budget > 0


def budget_reason(budget: Decimal, currency: str) -> str:
    if budget <= 0:
        return f"the budget must be > 0, not {budget}"
    return f"the budget {budget} has more decimals than {currency} allows"


def budget_level_reason(kind: str, level: str, has_budget: bool) -> str:
    """One budget level per campaign, never two (spec: "as Meta enforces")."""
    if has_budget:
        return (f"a {kind} takes no budget when the campaign's budget_level is {level}"
                " (one budget level per campaign)")
    return f"data.budget is required: the campaign's budget_level is {level}"


def parent_open(ctx: Context) -> bool:
    parent = ctx.parent()
    return parent is not None and parent.state not in FINAL


def parent_open_reason(ctx: Context) -> str:
    link = ctx.lifecycle.parent
    assert link is not None
    parent = ctx.parent()
    if parent is None:
        return f"{link.kind}/{ctx.params[link.field]} does not exist"
    return f"{parent.subject} is {parent.state}"


def created_on(ctx: Context) -> bool:
    return ctx.params.get("status", ON) == ON


def created_off(ctx: Context) -> bool:
    return ctx.params.get("status", ON) == OFF


STATUS_GUARDS = (
    Guard("created_on", created_on, "created off", "status on"),
    Guard("created_off", created_off, "created on", "status off"),
)


# -- money (spec: "Money: the budget owner holds, only spend is charged") ---------------
#: What a budget owner's data starts with: nothing spent, charged or held.
NO_MONEY = {"spent": Decimal(0), "charged": Decimal(0), "held": Decimal(0)}


def reconcile_send(subject: str) -> Send:
    """Ask an owner to place or settle its hold if its delivery changed (optional: an
    owner whose delivery did not change, or that is final, is simply not stepped)."""
    return Send(subject, "reconcile", optional=True)


def owners_below(ctx: Context) -> Iterator[Send]:
    """The reconciles a toggle (or a creation) of this entity sends: to the owners whose
    delivery its switch decides, in their creation order (spec: "their lines come in the
    owners' creation order")."""
    entity = ctx.entity
    if entity.subject.startswith("ad/"):
        return  # "Turning an ad on or off, or deleting it, never moves money"
    if entity.subject.startswith("campaign/") and entity.data["budget_level"] == "ad_group":
        for child in ctx.children():
            yield reconcile_send(child.subject)
    elif is_owner(entity, ctx.get):
        yield reconcile_send(entity.subject)


def tell_owners(ctx: Context) -> Iterator[Any]:
    yield from owners_below(ctx)


def reconcile_self(ctx: Context) -> Iterator[Any]:
    """A creation: the new entity places its hold if it is an owner that delivers
    ("created ``on`` under delivering ancestors")."""
    yield reconcile_send(ctx.subject)


def _delivering(ctx: Context) -> bool:
    return ctx.status() == ACTIVE


def needs_reconcile(ctx: Context) -> bool:
    """An owner delivering but holding nothing, or holding but no longer delivering."""
    return is_owner(ctx.entity, ctx.get) and _delivering(ctx) != (ctx.data["held"] > 0)


def _settle(ctx: Context) -> Iterator[Any]:
    """The owner stops delivering: ``charge`` of the spend not yet charged, then
    ``hold_released`` of what stays held beyond it. Zero amounts write no line."""
    data = ctx.data
    charge = data["spent"] - data["charged"]
    release = data["held"] - charge
    assert release >= 0, f"{ctx.subject}: charge {charge} exceeds the hold {data['held']}"
    currency = data["currency"]
    if charge:
        yield BudgetCharged(cause=ctx.event_id, time=ctx.time, owner=ctx.subject, amount=charge,
                            currency=currency)
    if release:
        yield BudgetHoldReleased(cause=ctx.event_id, time=ctx.time, owner=ctx.subject,
                                 amount=release, currency=currency)
    if charge or data["held"]:
        yield Assign({"charged": data["spent"], "held": Decimal(0)})


def reconcile(ctx: Context) -> Iterator[Any]:
    """Starts delivering: ``hold_placed`` of budget − charged so far; stops: settle."""
    if _delivering(ctx):
        amount = ctx.data["budget"] - ctx.data["charged"]
        yield BudgetHoldPlaced(cause=ctx.event_id, time=ctx.time, owner=ctx.subject,
                               amount=amount, currency=ctx.data["currency"])
        yield Assign({"held": amount})
    else:
        yield from _settle(ctx)


def settle_if_owner(ctx: Context) -> Iterator[Any]:
    """Entering ``deleted`` or ``completed``: an owner that holds is settled once."""
    if ctx.data.get("held"):
        yield from _settle(ctx)


def cascade(trigger: str) -> Callable[[Context], Iterator[Any]]:
    """Entering a final state: every child not final yet follows (``delete`` or
    ``complete``), in creation order; its own children follow in turn."""

    def run(ctx: Context) -> Iterator[Any]:
        for child in ctx.children():
            if child.state not in FINAL:
                yield Send(child.subject, trigger, optional=True)

    run.__name__ = f"cascade_{trigger}"
    return run


def spend_valid(ctx: Context) -> bool:
    return budget_fits(ctx.params["amount"], ctx.data["currency"])


def spend_reason(ctx: Context) -> str:
    amount = ctx.params["amount"]
    if amount <= 0:
        return f"the amount must be > 0, not {amount}"
    return f"the amount {amount} has more decimals than {ctx.data['currency']} allows"


def ad_delivering(ctx: Context) -> bool:
    return _delivering(ctx)


def ad_stop_reason(ctx: Context) -> str:
    return stop_reason(ctx.entity, ctx.get)


def within_budget(ctx: Context) -> bool:
    owner = owner_of(ctx.entity, ctx.get)
    assert owner is not None
    return bool(owner.data["spent"] + ctx.params["amount"] <= owner.data["budget"])


def over_budget_reason(ctx: Context) -> str:
    owner = owner_of(ctx.entity, ctx.get)
    assert owner is not None
    cur = owner.data["currency"]
    return (f"spending {format_amount(ctx.params['amount'], cur)} would exceed the budget of "
            f"{owner.subject}: {_amount(owner.data['spent'], owner)} of "
            f"{_amount(owner.data['budget'], owner)} {cur} spent")


def record_spend(ctx: Context) -> Iterator[Any]:
    """``ad.spent``: the spend accumulates on the ad and on its owner (no ledger line)."""
    amount = validate_amount(ctx.params["amount"], ctx.data["currency"])
    yield Assign({"spent": ctx.data["spent"] + amount})
    owner = owner_of(ctx.entity, ctx.get)
    assert owner is not None
    yield Send(owner.subject, "add_spend", {"amount": amount})


def add_spend(ctx: Context) -> Iterator[Any]:
    """The owner's share of a spend; reaching the budget exactly charges the spend not
    yet charged (the whole hold: nothing is left to release) and the owner becomes
    ``budget_exhausted`` while its own state stays ``on``."""
    data = ctx.data
    spent = data["spent"] + ctx.params["amount"]
    if spent < data["budget"]:
        yield Assign({"spent": spent})
        return
    charge = spent - data["charged"]
    yield BudgetCharged(cause=ctx.event_id, time=ctx.time, owner=ctx.subject, amount=charge,
                        currency=data["currency"])
    if rest := data["held"] - charge:  # zero whenever the hold was budget − charged
        yield BudgetHoldReleased(cause=ctx.event_id, time=ctx.time, owner=ctx.subject,
                                 amount=rest, currency=data["currency"])
    yield Assign({"spent": spent, "charged": spent, "held": Decimal(0)})


def derived(entity: Any, get: Callable[[str], Any]) -> str:
    """The lifecycles' declared ``status`` (see :func:`effective_status`)."""
    return effective_status(entity, get)


# -- the declaration pieces the three lifecycles share ---------------------------------
def states(kind: str, *, end: str, owner: bool = True, parent: bool = True,
           ) -> tuple[State, ...]:
    """The four own states (spec: "The same four for campaign, ad group and ad"). A
    level that may own the budget settles on entering a final state; a level with
    children makes them follow."""
    settle = ("settle",) if owner else ()
    deleted = (*settle, "cascade_delete") if parent else settle
    completed = (*settle, "cascade_complete") if parent else settle
    return (
        State(ON, f"The {kind}'s own switch is on (its effective status may still be off)."),
        State(OFF, f"The {kind}'s own switch is off; reversible, keeps everything."),
        State(DELETED, "Deleted: final; owners settled, descendants deleted too.", final=True,
              group="ended", on_enter=deleted),
        State(COMPLETED, end, final=True, group="ended", on_enter=completed),
    )


def toggles() -> tuple[Transition, ...]:
    """turn_on / turn_off (idempotent: the same switch again moves no money) and delete."""
    return (
        Transition("turn_on", SWITCHES, ON, actions=("tell_owners",)),
        Transition("turn_off", SWITCHES, OFF, actions=("tell_owners",)),
        Transition("delete", SWITCHES, DELETED,
                   description="by its own event, or its parent's deletion"),
    )


def owner_transitions() -> tuple[Transition, ...]:
    """What only a level that may own the budget has: reconcile and the owner's spend."""
    return (
        Transition("reconcile", (ON,), ON, guards=("needs_reconcile",), actions=("reconcile",),
                   internal=True, description="its delivery changed: hold, or settle"),
        Transition("reconcile", (OFF,), OFF, guards=("needs_reconcile",),
                   actions=("reconcile",), internal=True,
                   description="its delivery changed: hold, or settle"),
        Transition("add_spend", (ON,), ON, actions=("add_spend",), internal=True,
                   description="an ad below spent"),
    )


def actions(*, parent: bool = True) -> tuple[Action, ...]:
    """Every level's actions; ``parent``: it has children to cascade to."""
    own = (Action("tell_owners", tell_owners, "reconcile owners"),)
    if not parent:
        return own
    return (*own,
            Action("cascade_delete", cascade("delete"), "delete children"),
            Action("cascade_complete", cascade("complete"), "complete children"))


def owner_actions() -> tuple[Action, ...]:
    return (
        Action("settle", settle_if_owner, "charge spent, release rest"),
        Action("reconcile_self", reconcile_self),
        Action("reconcile", reconcile, "hold budget − charged, or charge spent, release rest"),
        Action("add_spend", add_spend, "spent += amount; at budget: charge"),
    )


def owner_guards() -> tuple[Guard, ...]:
    return (Guard("needs_reconcile", needs_reconcile, "its delivery did not change",
                  "delivery changed"),)


def creations(guards: tuple[str, ...], actions: tuple[str, ...]) -> tuple[Transition, ...]:
    """create → on, or → off with ``"status": "off"`` (status guards last, so a refusal
    explains the first real problem)."""
    return (
        Transition("create", (INITIAL,), ON, guards=(*guards, "created_on"), actions=actions),
        Transition("create", (INITIAL,), OFF, guards=(*guards, "created_off"), actions=actions),
    )


def inputs(kind: str, created: tuple[Field, ...]) -> tuple[Input, ...]:
    status = Field("status", f.choice(ON, OFF), required=False,
                   description="on (default) or off; null counts as absent")
    # The advertiser builds and toggles its campaigns (or the platform on its behalf).
    return (
        Input(f"{kind}.created", "create", (*created, status), parties=parties.BUYER),
        Input(f"{kind}.turned_on", "turn_on", parties=parties.BUYER),
        Input(f"{kind}.turned_off", "turn_off", parties=parties.BUYER),
        Input(f"{kind}.deleted", "delete", parties=parties.BUYER),
    )
