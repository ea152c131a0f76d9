"""A support-mediated cancellation request: a lifecycle of your own, on this engine.

The guide ``docs/your-own-lifecycle.md`` builds this file step by step. The process is
the one public guides to cancelling a paid promotion describe: the requester contacts
support with a reason; support reviews the request against the agreement and approves
it (charging the cancellation fee or the penalty the agreement sets), declines it, or
asks for information; the requester answers, or follows up; a request support leaves
unanswered is escalated after ``ESCALATE_AFTER``; the influencers of the agreement are
notified when the request is processed (approved or declined).

Two lifecycles: the ``agreement`` (its terms and its influencers) and the
``support_request``, whose parent is an agreement. Run them with any face::

    python -m statemachine replay examples/support_request.jsonl --domain examples.support_request:DOMAIN
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from statemachine.engine import (
    INITIAL,
    Assign,
    Context,
    Domain,
    Effect,
    Field,
    Input,
    Lifecycle,
    Parent,
    Send,
    State,
    Timer,
    Transition,
    action,
    guard,
)
from statemachine.engine import fields as f
from statemachine.money import MoneyError, validate_amount

__all__ = ["AGREEMENT", "DOMAIN", "ESCALATE_AFTER", "SUPPORT_REQUEST", "CancellationCharged",
           "InfluencerNotified", "RequestEscalated"]

#: An unanswered request goes to a support lead this long after the requester last spoke.
ESCALATE_AFTER = timedelta(days=3)


# -- the effects: what the outside world hears, after a transition committed -----------
@attrs.frozen(kw_only=True)
class CancellationCharged(Effect):
    """The fee or penalty of the agreement, charged for an approved cancellation."""

    ledger_kind: ClassVar[str | None] = "charge"  # booked in the replay's ledger
    request: str
    charge: str
    amount: Decimal
    currency: str

    def ledger_subject(self) -> str:
        return self.request


@attrs.frozen(kw_only=True)
class InfluencerNotified(Effect):
    influencer: str
    request: str
    outcome: str


@attrs.frozen(kw_only=True)
class RequestEscalated(Effect):
    request: str


# -- a field parser: JSON in, a typed value out, or ValueError with the reason ---------
def influencer_ids(value: Any) -> tuple[str, ...]:
    """A non-empty list of distinct influencer ids."""
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of influencer ids")
    ids = tuple(f.identifier(item) for item in value)
    if len(set(ids)) != len(ids):
        raise ValueError("lists an influencer twice")
    return ids


# -- the agreement ---------------------------------------------------------------------
def _terms_problem(ctx: Context) -> str | None:
    for name in ("cancellation_fee", "penalty"):
        amount = ctx.params.get(name, Decimal(0))
        if amount < 0:
            return f"the {name} must be >= 0, not {amount}"
        try:
            validate_amount(amount, ctx.params["currency"])
        except MoneyError as exc:
            return f"the {name}: {exc}"
    return None


@guard(lambda ctx: _terms_problem(ctx) or "", label="terms valid", field="data.cancellation_fee")
def terms_valid(ctx: Context) -> bool:
    return _terms_problem(ctx) is None


@action
def record_terms(ctx: Context) -> Iterator[Any]:
    yield Assign({"currency": ctx.params["currency"],
                  "cancellation_fee": ctx.params["cancellation_fee"],
                  "penalty": ctx.params.get("penalty", Decimal(0)),
                  "influencers": ctx.params["influencers"]})


AGREEMENT = Lifecycle(
    name="agreement",
    description="A paid promotion agreed with influencers: its cancellation terms.",
    data=("currency", "cancellation_fee", "penalty", "influencers"),
    states=(
        State("active", "The promotion runs under these terms."),
        State("cancelled", "Cancelled through an approved support request.", final=True),
    ),
    transitions=(
        Transition("sign", INITIAL, "active", guards=[terms_valid], actions=[record_terms]),
        Transition("cancel", "active", "cancelled", internal=True,
                   description="a support request to cancel it was approved"),
    ),
    inputs=(
        Input("agreement.signed", "sign", (
            Field("currency", f.currency, description="ISO 4217"),
            Field("cancellation_fee", f.decimal, description="charged on an approved request"),
            Field("penalty", f.decimal, required=False, description="the alternative charge"),
            Field("influencers", influencer_ids, description="their ids, notified of the outcome"),
        )),
    ),
)


# -- the support request: guards (pure, with a reason) ---------------------------------
def _agreement_refusal(ctx: Context) -> str:
    agreement = ctx.parent()
    if agreement is None:
        return f"agreement/{ctx.params['agreement']} does not exist"
    return f"{agreement.subject} is {agreement.state}, not active"


@guard(_agreement_refusal, label="agreement active", field="data.agreement")
def agreement_active(ctx: Context) -> bool:
    agreement = ctx.parent()
    return agreement is not None and agreement.state == "active"


def _charge(ctx: Context) -> Decimal:
    """What the agreement sets for the charge support chose (0 for ``none``)."""
    name = ctx.params["charge"]
    return Decimal(0) if name == "none" else ctx.parent().data[name]  # type: ignore[union-attr]


@guard(lambda ctx: f"{ctx.parent().subject} sets no {ctx.params['charge']}",  # type: ignore[union-attr]
       label="charge set by the agreement", field="data.charge")
def charge_in_agreement(ctx: Context) -> bool:
    return ctx.params["charge"] == "none" or _charge(ctx) > 0


# -- actions: they return what happens; the engine applies it on commit ----------------
@action
def record_request(ctx: Context) -> Iterator[Any]:
    yield Assign({"agreement": ctx.params["agreement"], "reason": ctx.params["reason"],
                  "waiting_since": ctx.time, "waiting_event": ctx.event_id, "follow_ups": 0})


@action
def restart_clock(ctx: Context) -> Iterator[Any]:
    """The requester answered: support has ``ESCALATE_AFTER`` again from now."""
    yield Assign({"waiting_since": ctx.time, "waiting_event": ctx.event_id})


@action
def count_follow_up(ctx: Context) -> Iterator[Any]:
    yield Assign({"follow_ups": ctx.data["follow_ups"] + 1})


@action(label="alert a support lead")
def alert_lead(ctx: Context) -> Iterator[Any]:
    yield RequestEscalated(cause=ctx.event_id, time=ctx.time, request=ctx.subject)


@action(label="charge fee or penalty, cancel agreement")
def charge_and_cancel(ctx: Context) -> Iterator[Any]:
    agreement = ctx.parent()
    assert agreement is not None
    yield Assign({"decision": ctx.params["charge"]})
    if amount := _charge(ctx):
        yield CancellationCharged(cause=ctx.event_id, time=ctx.time, request=ctx.subject,
                                  charge=ctx.params["charge"], amount=amount,
                                  currency=agreement.data["currency"])
    yield Send(agreement.subject, "cancel")


@action
def record_decline(ctx: Context) -> Iterator[Any]:
    yield Assign({"decision": "declined: " + ctx.params["reason"]})


@action(label="notify influencers")
def notify_influencers(ctx: Context) -> Iterator[Any]:
    agreement = ctx.parent()
    assert agreement is not None
    for influencer in agreement.data["influencers"]:
        yield InfluencerNotified(cause=ctx.event_id, time=ctx.time, influencer=influencer,
                                 request=ctx.subject, outcome=ctx.trigger)


REVIEWABLE = ("awaiting_support", "escalated")

SUPPORT_REQUEST = Lifecycle(
    name="support_request",
    title="Support request (cancellation)",
    description="A requester asks support to cancel an agreement; support decides by its terms.",
    parent=Parent(kind="agreement", field="agreement"),
    data=("agreement", "reason", "waiting_since", "waiting_event", "follow_ups", "decision"),
    states=(
        State("awaiting_support", "The requester gave a reason; support has not answered yet.",
              group="open"),
        State("awaiting_requester", "Support asked for information.", group="open"),
        State("escalated", "Unanswered too long: a support lead reviews it.", group="open"),
        State("approved", "Cancelled; the agreement's fee or penalty charged.", final=True,
              group="processed", on_enter=[notify_influencers]),
        State("declined", "Refused, with the reason.", final=True, group="processed",
              on_enter=[notify_influencers]),
    ),
    transitions=(
        Transition("open", INITIAL, "awaiting_support", guards=[agreement_active],
                   actions=[record_request]),
        Transition("ask", REVIEWABLE, "awaiting_requester"),
        Transition("answer", "awaiting_requester", "awaiting_support", actions=[restart_clock]),
        Transition("follow_up", "awaiting_support", "awaiting_support", actions=[count_follow_up]),
        Transition("escalate", "awaiting_support", "escalated", internal=True,
                   actions=[alert_lead], description="support left it unanswered"),
        Transition("approve", REVIEWABLE, "approved", guards=[charge_in_agreement],
                   actions=[charge_and_cancel]),
        Transition("decline", REVIEWABLE, "declined", actions=[record_decline]),
    ),
    timers=(
        Timer("escalation", "escalate", ("awaiting_support",),
              due=lambda data: data["waiting_since"] + ESCALATE_AFTER,
              cause=lambda data: data["waiting_event"], delay="3 days", period=ESCALATE_AFTER),
    ),
    inputs=(
        Input("support_request.opened", "open", (
            Field("agreement", f.identifier, description="the agreement's id, without agreement/"),
            Field("reason", f.text, description="why the requester wants to cancel"),
        )),
        Input("support_request.information_requested", "ask"),
        Input("support_request.answered", "answer"),
        Input("support_request.followed_up", "follow_up"),
        Input("support_request.approved", "approve",
              (Field("charge", f.choice("cancellation_fee", "penalty", "none")),)),
        Input("support_request.declined", "decline", (Field("reason", f.text),)),
    ),
)

#: What ``--domain examples.support_request:DOMAIN`` runs.
DOMAIN = Domain(lifecycles=(AGREEMENT, SUPPORT_REQUEST))
