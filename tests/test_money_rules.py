"""Money and time rules that a mutation run (``make mutants``) found unpinned.

Each test here fails on one hand-written mutant of ``scripts/mutants.toml`` and
passes on the code. They are written with literal values (``"1.5"``, 18 digits,
``2026-04-01T00:00:00Z``), never with the constants they check: a test that reads
``MAX_INTEGER_DIGITS`` agrees with any value the constant takes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from helpers import T0, at, ev, rejected

from statemachine.api import Engine
from statemachine.engine import (
    INITIAL,
    Action,
    Assign,
    Context,
    Domain,
    Field,
    Input,
    InvalidEvent,
    Lifecycle,
    Send,
    State,
    Transition,
)
from statemachine.engine import fields as f
from statemachine.lifecycles import ORDER, Charged, HoldReleased, PaymentReleased, RefundIssued
from statemachine.lifecycles.policy import (
    ADVERTISER,
    PROVIDER,
    RefundRule,
    creator_cancellation_refund,
    partner_cancellation_refund,
)
from statemachine.money import MoneyError, parse_decimal
from statemachine.replay import replay, to_json

pytest_plugins = ["helpers"]

DEADLINE = "2026-04-01T00:00:00Z"
PROMO = "promotion/X1"
END = "2026-03-10T00:00:00Z"


def _project(engine: Engine, currency: str = "USD", kind: str = "creator") -> None:
    engine.apply(ev("p1", T0, "project.created", "project/P1", kind=kind, currency=currency,
                    deadline=DEADLINE))


def _order(engine: Engine, fee: str = "100.00", review: str = "manual") -> None:
    engine.apply(ev("a1", at(T0, hours=1), "order.agreed", "order/O1", project="P1", fee=fee,
                    review=review))


def _promotion(engine: Engine, budget: str, currency: str) -> None:
    engine.apply(ev("c", T0, "promotion.created", PROMO, budget=budget, currency=currency, end=END))
    engine.apply(ev("ok", at(T0, hours=1), "promotion.approved", PROMO))


# == 1. a spend is checked against the promotion's own currency =========================
@pytest.mark.parametrize(("currency", "budget", "amount", "allows"), [
    ("JPY", "5000", "1.5", "JPY allows"),       # USD would take 1.5: JPY has no minor unit
    ("JPY", "5000", "0.01", "JPY allows"),
    ("EUR", "100.00", "0.005", "EUR allows"),
])
def test_a_spend_with_more_decimals_than_the_promotions_currency_is_refused(
        engine: Engine, currency: str, budget: str, amount: str, allows: str) -> None:
    _promotion(engine, budget, currency)
    exc = rejected(engine, ev("s", at(T0, hours=2), "promotion.spent", PROMO, amount=amount),
                   f"the amount {amount} has more decimals than {allows}")
    assert exc.guard == "spend_valid"
    assert engine.get(PROMO).data["spent"] == 0


def test_a_spend_in_a_three_decimal_currency_may_use_its_third_decimal(engine: Engine) -> None:
    """BHD has 3 decimals: ``0.125`` fits it (USD would refuse it), and is charged as is."""
    _promotion(engine, "10.000", "BHD")
    assert engine.apply(ev("s", at(T0, hours=2), "promotion.spent", PROMO, amount="0.125")).state == "running"
    off = engine.apply(ev("off", at(T0, hours=3), "promotion.turned_off", PROMO))
    assert [(type(e).__name__, str(e.amount), e.currency) for e in off.effects] == [
        ("Charged", "0.125", "BHD"), ("HoldReleased", "9.875", "BHD")]


def test_a_whole_yen_spend_is_charged_in_whole_yen(engine: Engine) -> None:
    _promotion(engine, "5000", "JPY")
    engine.apply(ev("s", at(T0, hours=2), "promotion.spent", PROMO, amount="2"))
    off = engine.apply(ev("off", at(T0, hours=3), "promotion.turned_off", PROMO))
    assert off.effects == (
        Charged(cause="off", time=at(T0, hours=3), promotion=PROMO, amount=Decimal("2"), currency="JPY"),
        HoldReleased(cause="off", time=at(T0, hours=3), promotion=PROMO, amount=Decimal("4998"),
                     currency="JPY"),
    )


# == 2. a timer due exactly at the event that armed it fires in that same apply ==========
def test_an_order_rejected_exactly_at_its_deadline_expires_within_that_apply(engine: Engine) -> None:
    """Rejected at 2026-04-01T00:00:00Z, the deadline itself: the content-deadline timer
    armed by the rejection is due at that very instant and fires before ``apply`` returns,
    not at some later event (there may be none)."""
    _project(engine)
    _order(engine, fee="80.00")
    engine.apply(ev("s1", "2026-03-31T00:00:00Z", "order.submitted", "order/O1"))
    seen: list[Any] = []
    engine.subscribe(seen.append)
    outcome = engine.apply(ev("rj", "2026-04-01T00:00:00Z", "order.rejected", "order/O1"))
    assert outcome.state == "rejected"
    assert engine.get("order/O1").state == "expired"
    assert [(o.cause, o.timer, o.time, o.due) for o in seen] == [
        ("rj", None, at("2026-04-01T00:00:00Z"), None),
        ("a1", "content_deadline", at("2026-04-01T00:00:00Z"), at("2026-04-01T00:00:00Z")),
    ]
    assert seen[1].effects == (RefundIssued(
        cause="a1", time=at("2026-04-01T00:00:00Z"), order="order/O1", amount=Decimal("80.00"),
        currency="USD", percent=100, rule="order/expired: 100 %"),)


def test_a_log_ending_with_a_rejection_at_the_deadline_reports_the_order_expired() -> None:
    """The same story as a replay without ``--as-of``: nothing comes after the rejection."""
    lines = [
        ev("p1", T0, "project.created", "project/P1", kind="creator", currency="USD", deadline=DEADLINE),
        ev("a1", "2026-03-01T11:00:00Z", "order.agreed", "order/O1", project="P1", fee="80.00",
           review="manual"),
        ev("s1", "2026-03-31T00:00:00Z", "order.submitted", "order/O1"),
        ev("rj", "2026-04-01T00:00:00Z", "order.rejected", "order/O1"),
    ]
    log = "\n".join(json.dumps(line) for line in lines).encode()
    report = json.loads(to_json(replay(io.BytesIO(log))))
    assert report["entities"]["order/O1"] == "expired"
    assert report["as_of"] == "2026-04-01T00:00:00Z"
    assert report["ledger"] == [{"time": "2026-04-01T00:00:00Z", "kind": "refund", "subject": "order/O1",
                                 "amount": "80.00", "currency": "USD", "cause": "a1"}]


# == 3. amounts have at most 18 digits before the point ==================================
@pytest.mark.parametrize("text", ["999999999999999999.99", "-999999999999999999", "999999999999999999",
                                  "0.000000000000000000001"])
def test_an_amount_of_18_digits_before_the_point_is_read_exactly(text: str) -> None:
    assert parse_decimal(text) == Decimal(text)


@pytest.mark.parametrize("value", ["1000000000000000000", "1000000000000000000.00", "-1000000000000000000",
                                   "9999999999999999999", Decimal("1E+18"), 10**18])
def test_an_amount_of_19_digits_before_the_point_is_too_large(value: object) -> None:
    with pytest.raises(MoneyError, match="too large: at most 18 digits before the point"):
        parse_decimal(value)


def test_the_largest_fee_is_agreed_and_refunded_to_the_cent(engine: Engine) -> None:
    _project(engine)
    _order(engine, fee="999999999999999999.99")
    [fired] = engine.advance_to(at(DEADLINE))
    assert [(str(e.amount), e.percent) for e in fired.effects] == [("999999999999999999.99", 100)]


def test_a_fee_of_19_digits_is_refused_naming_the_field(engine: Engine) -> None:
    _project(engine)
    exc = rejected(engine, ev("a1", at(T0, hours=1), "order.agreed", "order/O1", project="P1",
                              fee="1000000000000000000", review="manual"),
                   "data.fee: 1000000000000000000 is too large: at most 18 digits before the point")
    assert isinstance(exc, InvalidEvent) and exc.field == "data.fee"


# == 4. rules no event reaches, as units ==================================================
# A delivered order is settled before any cancellation takes effect (its fee was released
# at approval), so no replay ever asks these rows; the policy-versions contract keeps the
# `delivered` row anyway ("completes the table but never moves money").
@pytest.mark.parametrize("stage", ["approved", "deemed_approved"])
def test_the_creator_table_prices_a_delivered_order_at_0_percent(stage: str) -> None:
    assert creator_cancellation_refund(stage, ADVERTISER) == RefundRule(0, "creator/advertiser/approved: 0 %")
    assert creator_cancellation_refund(stage, PROVIDER) == RefundRule(0, "creator/provider/approved: 0 %")


@pytest.mark.parametrize(("state", "rule"), [
    ("approved", RefundRule(0, "partner/delivered: 0 %")),
    ("deemed_approved", RefundRule(0, "partner/delivered: 0 %")),
    ("agreed", RefundRule(100, "partner/undelivered: 100 %")),
    ("in_progress", RefundRule(100, "partner/undelivered: 100 %")),
    ("submitted", RefundRule(100, "partner/undelivered: 100 %")),
    ("rejected", RefundRule(100, "partner/undelivered: 100 %")),
])
def test_the_partner_rule_pays_delivered_orders_and_refunds_the_rest(state: str, rule: RefundRule) -> None:
    assert partner_cancellation_refund(state) == rule


def _cancel_every_order(percent: int) -> Lifecycle:
    """A stand-in parent of kind ``project`` whose completion cancels its orders at
    ``percent`` %: the one way to run the order's ``cancel`` with a percentage that no
    row of today's policy gives an unsettled order (0 %)."""

    def record(ctx: Context) -> Iterator[Any]:
        yield Assign({"currency": ctx.params["currency"], "deadline": ctx.params["deadline"]})

    def cancel(ctx: Context) -> Iterator[Any]:
        for order in ctx.children():
            yield Send(order.subject, "cancel", {"percent": percent, "rule": f"test: {percent} %"})

    return Lifecycle(
        name="sponsor", kind="project", title="Sponsor",
        states=(State("active"), State("closed", final=True)),
        transitions=(Transition("create", (INITIAL,), "active", actions=("record",)),
                     Transition("close", ("active",), "closed", actions=("cancel",))),
        actions=(Action("record", record), Action("cancel", cancel)),
        inputs=(Input("project.created", "create", (Field("currency", f.currency),
                                                    Field("deadline", f.instant))),
                Input("project.completed", "close")),
    )


@pytest.mark.parametrize(("percent", "effects"), [
    (0, [("PaymentReleased", "100.00", None)]),                       # no zero refund
    (100, [("RefundIssued", "100.00", 100)]),                         # no zero payment
    (30, [("RefundIssued", "30.00", 30), ("PaymentReleased", "70.00", None)]),
])
def test_a_cancelled_order_emits_no_zero_amount(percent: int,
                                                effects: list[tuple[str, str, int | None]]) -> None:
    engine = Engine(Domain(lifecycles=(_cancel_every_order(percent), ORDER)))
    engine.apply(ev("p1", T0, "project.created", "project/P1", currency="USD", deadline=DEADLINE))
    _order(engine)
    outcome = engine.apply(ev("done", at(T0, days=1), "project.completed", "project/P1"))
    assert engine.get("order/O1").state == "cancelled"
    assert [(type(e).__name__, str(e.amount), getattr(e, "percent", None))
            for e in outcome.effects] == effects
    assert all(isinstance(e, RefundIssued | PaymentReleased) and e.cause == "done" for e in outcome.effects)


# == 5. the strict deadline and end guards, alone =========================================
# In an apply at the deadline (or the end) the timer fires first, so these guards never
# decide an applied event at the boundary: only ``may`` (the service's "may I?") asks them
# there. Each is pinned on both sides of the instant and well after it.
@pytest.mark.parametrize(("path", "trigger"), [((), "submit"), (("order.started",), "submit"),
                                               (("order.submitted", "order.rejected"), "resubmit")])
def test_the_deadline_guard_holds_strictly_before_the_deadline_only(
        engine: Engine, path: tuple[str, ...], trigger: str) -> None:
    _project(engine)
    _order(engine)
    for n, type_ in enumerate(path):
        engine.apply(ev(f"e{n}", at("2026-03-05T10:00:00Z", hours=n), type_, "order/O1"))
    for moment, allowed in [("2026-03-31T23:59:59.999999Z", True), ("2026-04-01T00:00:00Z", False),
                            ("2026-04-01T00:00:00.000001Z", False), ("2026-05-01T00:00:00Z", False)]:
        decision = engine.may("order/O1", trigger, time=at(moment))
        assert decision.allowed is allowed, moment
        assert decision.guard == (None if allowed else "before_deadline"), moment


def test_the_end_guard_holds_strictly_before_the_end_only(engine: Engine) -> None:
    engine.apply(ev("c", T0, "promotion.created", PROMO, budget="100.00", currency="USD", end=END))
    for moment, allowed in [("2026-03-09T23:59:59.999999Z", True), ("2026-03-10T00:00:00Z", False),
                            ("2026-03-10T00:00:00.000001Z", False), ("2026-04-10T00:00:00Z", False)]:
        decision = engine.may(PROMO, "approve", time=at(moment))
        assert decision.allowed is allowed, moment
        assert decision.guard == (None if allowed else "end_not_passed"), moment



# == amounts carry their currency's exponent, wherever they are read =====================
# Equal Decimals may print differently ("10.5" and "10.50"): the outbox body and the entity
# view print them as they are, so the engine keeps every amount in its currency's minor units.
@pytest.mark.parametrize(("currency", "fee", "text"), [("USD", "10.5", "10.50"), ("USD", "7", "7.00"),
                                                       ("JPY", "5000", "5000")])
def test_a_fee_is_kept_and_paid_in_its_currencys_minor_units(engine: Engine, currency: str, fee: str,
                                                             text: str) -> None:
    _project(engine, currency)
    _order(engine, fee=fee, review="auto")
    assert str(engine.get("order/O1").data["fee"]) == text
    outcome = engine.apply(ev("s1", at(T0, days=1), "order.submitted", "order/O1"))
    assert [str(e.amount) for e in outcome.effects] == [text]


@pytest.mark.parametrize(("currency", "budget", "spent", "texts"), [
    ("USD", "100", ["100"], ["100.00", "100.00"]),                     # held, charged
    ("USD", "100.5", ["30", "0.5"], ["100.50", "30.50", "70.00"]),     # held, charged, released
    ("JPY", "5000", ["2"], ["5000", "2", "4998"]),  # ("5000.0" or "2.00" JPY is refused: issue 17)
])
def test_promotion_amounts_are_kept_in_their_currencys_minor_units(
        engine: Engine, currency: str, budget: str, spent: list[str], texts: list[str]) -> None:
    seen: list[Any] = []
    engine.subscribe(seen.append)
    _promotion(engine, budget, currency)
    for n, amount in enumerate(spent):
        engine.apply(ev(f"s{n}", at(T0, hours=2, minutes=n), "promotion.spent", PROMO, amount=amount))
    if engine.get(PROMO).state == "running":
        engine.apply(ev("off", at(T0, hours=3), "promotion.turned_off", PROMO))
    promo = engine.get(PROMO)
    assert (str(promo.data["budget"]), str(promo.data["spent"])) == (texts[0], texts[1])
    assert [str(e.amount) for o in seen for e in o.effects] == texts


# == the clock only moves forward ==========================================================
def test_advancing_to_an_earlier_moment_leaves_the_clock_where_it_was(engine: Engine) -> None:
    """The clock is the latest time of any well-formed event (``event-log.md``): asking
    for timers up to an earlier moment fires nothing and does not turn it back, so an
    event older than the clock is still refused as out of order."""
    _project(engine)
    engine.apply(ev("a1", "2026-03-02T00:00:00Z", "order.agreed", "order/O1", project="P1", fee="1.00",
                    review="manual"))
    assert engine.advance_to(at("2026-03-01T12:00:00Z")) == []
    assert engine.clock == at("2026-03-02T00:00:00Z")
    rejected(engine, ev("a2", "2026-03-01T13:00:00Z", "order.agreed", "order/O2", project="P1", fee="1.00",
                        review="manual"), "out of order: 2026-03-01T13:00:00Z is before the clock")


# == both runtimes arm and fire alike: the generated steps and the reference interpreter ==
# A replay runs the generated steps (one step: ``_commit_one``); the interpreter
# (``interpret=True``) and every cascade commit through ``_commit``, which arms timers with
# code of its own. Each rule below is pinned on both.
def _runtime(interpret: bool) -> Any:
    from statemachine.engine import Runtime
    from statemachine.lifecycles import DOMAIN

    return Runtime(DOMAIN, interpret=interpret)


def _feed(runtime: Any, *lines: dict[str, Any]) -> None:
    from statemachine.envelope import to_event

    for line in lines:
        runtime.apply(to_event(line))


@pytest.mark.parametrize("interpret", [False, True])
def test_a_submission_arms_the_deemed_approval_in_either_runtime(interpret: bool) -> None:
    """Submitted 2026-03-02T09:00:00Z (the order was created earlier, so this is not its
    first commit): deemed approved at 2026-03-16T09:00:00Z, the fee released then."""
    runtime = _runtime(interpret)
    _feed(runtime,
          ev("p1", T0, "project.created", "project/P1", kind="creator", currency="USD", deadline=DEADLINE),
          ev("a1", "2026-03-01T11:00:00Z", "order.agreed", "order/O1", project="P1", fee="100.00",
             review="manual"),
          ev("s1", "2026-03-02T09:00:00Z", "order.submitted", "order/O1"))
    assert runtime.advance_to(at("2026-03-16T08:59:59.999999Z")) == []
    [fired] = runtime.advance_to(at("2026-03-16T09:00:00Z"))
    assert (fired.timer, fired.cause, fired.steps[0].dest) == ("deemed_approval", "s1", "deemed_approved")
    assert fired.steps[0].effects == (PaymentReleased(
        cause="s1", time=at("2026-03-16T09:00:00Z"), order="order/O1", amount=Decimal("100.00"),
        currency="USD"),)


@pytest.mark.parametrize("interpret", [False, True])
def test_timers_due_at_the_same_instant_fire_in_subject_order_in_either_runtime(interpret: bool) -> None:
    """Two orders expire at the same deadline. order/O-B was agreed first (event "a1"),
    order/O-A second ("a2"): they fire in subject order, O-A first, not in the order of
    the events that armed them (nor of anything else the timers hold)."""
    runtime = _runtime(interpret)
    _feed(runtime,
          ev("p1", T0, "project.created", "project/P1", kind="creator", currency="USD", deadline=DEADLINE),
          ev("a1", "2026-03-01T11:00:00Z", "order.agreed", "order/O-B", project="P1", fee="20.00",
             review="manual"),
          ev("a2", "2026-03-01T12:00:00Z", "order.agreed", "order/O-A", project="P1", fee="10.00",
             review="manual"))
    fired = runtime.advance_to(at(DEADLINE))
    assert [(o.steps[0].subject, o.cause, o.timer) for o in fired] == [
        ("order/O-A", "a2", "content_deadline"), ("order/O-B", "a1", "content_deadline")]


# == timers of any lifecycle: no due time, no timer; a refused timer is dropped ===========
def _lamp() -> Lifecycle:
    """A lamp burns out at ``until`` (no ``until``: never); only a fragile one breaks."""

    def record(ctx: Context) -> Iterator[Any]:
        yield Assign({"until": ctx.params.get("until"), "fragile": ctx.params["fragile"]})

    from statemachine.engine import Guard, Timer

    return Lifecycle(
        name="lamp", kind="lamp", title="Lamp",
        states=(State("on"), State("broken", final=True)),
        transitions=(Transition("create", (INITIAL,), "on", actions=("record",)),
                     Transition("burn_out", ("on",), "broken", guards=("fragile",), internal=True),
                     Transition("touch", ("on",), "on")),
        guards=(Guard("fragile", lambda ctx: ctx.data["fragile"], "the lamp is not fragile"),),
        actions=(Action("record", record),),
        timers=(Timer("burn", "burn_out", ("on",), lambda data: data["until"], lambda data: "created"),),
        inputs=(Input("lamp.created", "create", (Field("fragile", f.boolean),
                                                  Field("until", f.instant, required=False))),
                Input("lamp.touched", "touch")),
        data=("until", "fragile"),
    )


def test_a_timer_without_a_due_time_is_not_armed() -> None:
    engine = Engine(Domain(lifecycles=(_lamp(),)))
    engine.apply(ev("c", T0, "lamp.created", "lamp/L", fragile=True))
    assert engine.get("lamp/L").timers == ()
    assert engine.runtime.next_due() is None
    assert engine.advance_to(at(T0, days=365)) == []
    assert engine.apply(ev("t", at(T0, days=366), "lamp.touched", "lamp/L")).state == "on"


@pytest.mark.parametrize("interpret", [False, True])
def test_neither_the_generated_steps_nor_the_interpreter_arm_a_timer_without_a_due_time(
        interpret: bool) -> None:
    """The runtime's reference interpreter (``interpret=True``) arms timers with its own
    code, not the generated steps': it too arms none without a due time, so the lamp
    never burns out and later events apply."""
    from statemachine.engine import Runtime
    from statemachine.envelope import to_event

    runtime = Runtime(Domain(lifecycles=(_lamp(),)), interpret=interpret)
    runtime.apply(to_event(ev("c", T0, "lamp.created", "lamp/L", fragile=True)))
    assert runtime.get("lamp/L").timers == ()  # type: ignore[union-attr]
    assert runtime.next_due() is None
    assert runtime.advance_to(at(T0, days=365)) == []
    assert runtime.apply(to_event(ev("t", at(T0, days=366), "lamp.touched", "lamp/L"))).steps[0].dest == "on"


@pytest.mark.parametrize(("fragile", "state"), [(True, "broken"), (False, "on")])
def test_a_timer_whose_transition_is_refused_is_dropped_and_time_goes_on(fragile: bool, state: str) -> None:
    engine = Engine(Domain(lifecycles=(_lamp(),)))
    engine.apply(ev("c", T0, "lamp.created", "lamp/L", fragile=fragile, until="2026-03-02T00:00:00Z"))
    fired = engine.advance_to(at("2026-03-03T00:00:00Z"))
    assert [(o.timer, o.state) for o in fired] == ([("burn", "broken")] if fragile else [])
    assert engine.get("lamp/L").state == state
    assert engine.clock == at("2026-03-03T00:00:00Z")
    if not fragile:  # the refused timer is gone: later events apply, nothing fires again
        assert engine.apply(ev("t", at("2026-03-04T00:00:00Z"), "lamp.touched", "lamp/L")).state == "on"
        assert engine.advance_to(at("2026-04-01T00:00:00Z")) == []
