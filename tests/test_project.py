"""The Project lifecycles, rule by rule (``shared/spec/lifecycles.md``, "Project").

Creator projects: every cell of the refund table, priced by the order's stage when
the cancellation was *requested*, half-up rounding, and the effects of a cancellation
taking effect. Partner projects: the platform review, winding down while open orders
finish, and the automatic cancellation when the last open order is delivered.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from helpers import MICROSECOND, T0, at, ev, of, rejected
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.api import Engine
from statemachine.engine import InvalidEvent, TransitionRefused
from statemachine.lifecycles import (
    AccountCredited,
    CancellationEffective,
    NotificationRequested,
    PaymentReleased,
    RefundIssued,
)

pytest_plugins = ["helpers"]

DEADLINE = "2026-04-01T00:00:00Z"
PROJECT = "project/P1"
AGREED_AT = at(T0, hours=1)
DRIVEN_AT = at("2026-03-02T10:00:00Z")  # orders reach their stage
REQUESTED_AT = at("2026-03-03T10:00:00Z")
MOVED_AT = at("2026-03-04T10:00:00Z")  # orders move while the cancellation is pending
EFFECTIVE_AT = at("2026-03-05T10:00:00Z")
OTHER = {"advertiser": "provider", "provider": "advertiser"}

#: The order events that lead from agreed to a state.
PATH = {
    "agreed": (),
    "in_progress": ("started",),
    "submitted": ("submitted",),
    "rejected": ("submitted", "rejected"),
    "approved": ("submitted", "approved"),
}


def create(engine, kind="creator", *, currency="USD", deadline=DEADLINE, eid="p1"):
    return engine.apply(ev(eid, T0, "project.created", PROJECT, kind=kind, currency=currency,
                           deadline=deadline))


def agree(engine, oid, fee="200.00", *, review="manual"):
    return engine.apply(ev(f"{oid}-agreed", AGREED_AT, "order.agreed", f"order/{oid}", project="P1",
                           fee=fee, review=review))


def order(engine, oid, what, time, eid=None):
    return engine.apply(ev(eid or f"{oid}-{what}", time, f"order.{what}", f"order/{oid}"))


def drive(engine, oid, state, time=DRIVEN_AT):
    """Move an agreed order along ``PATH[state]``, one minute per step, from ``time``
    or from the clock if that is later (several orders driven one after another)."""
    start = max(at(time), engine.clock)
    for n, what in enumerate(PATH[state]):
        order(engine, oid, what, at(start, minutes=n))


def project(engine, what, time, eid=None, **data):
    return engine.apply(ev(eid or f"p-{what}", time, f"project.{what}", PROJECT, **data))


def request(engine, by="advertiser", time=REQUESTED_AT, eid=None, **data):
    return project(engine, "cancellation_requested", time, eid=eid, by=by, **data)


def accept(engine, by, time=EFFECTIVE_AT, eid="acc"):
    return project(engine, "cancellation_accepted", time, eid=eid, by=by)


def refund(oid, amount, percent, rule, *, cause="acc", time=EFFECTIVE_AT, currency="USD"):
    return RefundIssued(cause=cause, time=at(time), order=f"order/{oid}", amount=Decimal(amount),
                        currency=currency, percent=percent, rule=rule)


def released(oid, amount, *, cause="acc", time=EFFECTIVE_AT, currency="USD"):
    return PaymentReleased(cause=cause, time=at(time), order=f"order/{oid}", amount=Decimal(amount),
                           currency=currency)


def notices(channel, *, cause="acc", time=EFFECTIVE_AT):
    return [NotificationRequested(cause=cause, time=at(time), party=party, channel=channel,
                                  subject=f"the cancellation of {PROJECT} took effect")
            for party in ("advertiser", "provider")]


def credited(amount, *, cause="acc", time=EFFECTIVE_AT, currency="USD"):
    return AccountCredited(cause=cause, time=at(time), advertiser=f"{PROJECT}/advertiser",
                           amount=Decimal(amount), currency=currency)


def money(effects, oid):
    """(refunded, released) for one order over ``effects``."""
    refunded = sum((e.amount for e in of(effects, RefundIssued) if e.order == f"order/{oid}"), Decimal(0))
    paid = sum((e.amount for e in of(effects, PaymentReleased) if e.order == f"order/{oid}"), Decimal(0))
    return refunded, paid


# == creation ===========================================================================
@pytest.mark.parametrize("kind", ["creator", "partner"])
def test_create_starts_active_and_keeps_kind_currency_deadline(engine, kind):
    outcome = create(engine, kind, currency="EUR")
    assert (outcome.state, outcome.effects) == ("active", ())
    data = engine.get(PROJECT).data
    assert (data["kind"], data["currency"], data["deadline"]) == (kind, "EUR", at(DEADLINE))
    assert engine.get(PROJECT).lifecycle == f"project_{kind}"


@pytest.mark.parametrize("deadline", [T0, at(T0) - MICROSECOND, "2026-02-01T00:00:00Z"])
def test_create_refuses_a_deadline_not_after_the_creation(engine, deadline):
    exc = rejected(engine, ev("p1", T0, "project.created", PROJECT, kind="creator", currency="USD",
                              deadline=deadline if isinstance(deadline, str) else deadline.isoformat()),
                   "does not lie after the creation 2026-03-01T10:00:00Z")
    assert exc.guard == "deadline_after_creation"
    assert engine.get(PROJECT) is None


def test_create_accepts_a_deadline_one_microsecond_after_the_creation(engine):
    assert create(engine, deadline=(at(T0) + MICROSECOND).isoformat()).state == "active"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "agency", "currency": "USD", "deadline": DEADLINE}, "data.kind"),
        ({"kind": "creator", "currency": "usd", "deadline": DEADLINE}, "data.currency"),
        ({"kind": "creator", "currency": "XYZ", "deadline": DEADLINE}, "data.currency"),
        ({"kind": "creator", "currency": "USD", "deadline": "2026-04-01T00:00:00"}, "data.deadline"),
        ({"kind": "creator", "currency": "USD"}, "data.deadline"),
    ],
)
def test_create_refuses_bad_data_naming_the_field(engine, data, field):
    exc = rejected(engine, ev("p1", T0, "project.created", PROJECT, **data), field)
    assert isinstance(exc, InvalidEvent) and exc.field == field


def test_create_twice_is_refused(engine):
    create(engine)
    rejected(engine, ev("p2", T0, "project.created", PROJECT, kind="partner", currency="USD",
                        deadline=DEADLINE), "project/P1: already exists (in state active)")


# == creator: request, accept, decline, withdraw ========================================
@pytest.mark.parametrize("by", ["advertiser", "provider"])
def test_creator_request_waits_for_the_other_party_and_keeps_the_reason(engine, by):
    create(engine)
    agree(engine, "O1")
    outcome = request(engine, by, reason="budget cut")
    assert (outcome.state, outcome.effects) == ("cancellation_pending", ())
    data = engine.get(PROJECT).data
    assert (data["requested_by"], data["reason"]) == (by, "budget cut")


def test_request_refuses_an_unknown_party(engine):
    create(engine)
    exc = rejected(engine, ev("r", REQUESTED_AT, "project.cancellation_requested", PROJECT, by="platform"),
                   "data.by")
    assert isinstance(exc, InvalidEvent)


@pytest.mark.parametrize("kind", ["creator", "partner"])
def test_request_twice_is_refused(engine, kind):
    create(engine, kind)
    request(engine)
    state = engine.get(PROJECT).state
    rejected(engine, ev("r2", MOVED_AT, "project.cancellation_requested", PROJECT, by="provider"),
             f"cannot request_cancellation in state {state}")


@pytest.mark.parametrize(("what", "verb"), [("cancellation_accepted", "accept"),
                                            ("cancellation_declined", "decline")])
@pytest.mark.parametrize("by", ["advertiser", "provider"])
def test_the_requester_cannot_accept_or_decline_its_own_request(engine, what, verb, by):
    create(engine)
    request(engine, by)
    exc = rejected(engine, ev("x", EFFECTIVE_AT, f"project.{what}", PROJECT, by=by),
                   f"the {by} requested the cancellation and cannot {verb} its own request; "
                   f"the {OTHER[by]} must")
    assert exc.guard == "by_other_party"


@pytest.mark.parametrize("by", ["advertiser", "provider"])
def test_the_other_party_cannot_withdraw_the_request(engine, by):
    create(engine)
    request(engine, by)
    exc = rejected(engine, ev("x", EFFECTIVE_AT, "project.cancellation_withdrawn", PROJECT, by=OTHER[by]),
                   f"only the requester ({by}) can withdraw the request, not the {OTHER[by]}")
    assert exc.guard == "by_requester"


@pytest.mark.parametrize(("what", "who"), [("cancellation_declined", "other"),
                                           ("cancellation_withdrawn", "requester")])
def test_creator_decline_and_withdraw_return_to_active(engine, what, who):
    create(engine)
    agree(engine, "O1")
    request(engine, "advertiser", reason="budget cut")
    by = "provider" if who == "other" else "advertiser"
    outcome = project(engine, what, EFFECTIVE_AT, by=by)
    assert (outcome.state, outcome.effects) == ("active", ())
    data = engine.get(PROJECT).data
    assert (data["requested_by"], data["reason"], data["stages"]) == (None, None, None)
    assert engine.get("order/O1").state == "agreed"
    # The project goes on: new orders may be agreed, a new request priced afresh.
    engine.apply(ev("O2-agreed", at(EFFECTIVE_AT, hours=1), "order.agreed", "order/O2", project="P1",
                    fee="10.00", review="manual"))
    drive(engine, "O1", "submitted", at(EFFECTIVE_AT, hours=2))
    request(engine, "advertiser", at(EFFECTIVE_AT, hours=3), eid="req2")
    outcome = accept(engine, "provider", at(EFFECTIVE_AT, hours=4), eid="acc2")
    refunds = {e.order: e.percent for e in of(outcome, RefundIssued)}
    assert refunds == {"order/O1": 50, "order/O2": 90}


@pytest.mark.parametrize(("what", "trigger"), [("cancellation_accepted", "accept_cancellation"),
                                               ("cancellation_declined", "decline_cancellation"),
                                               ("cancellation_withdrawn", "withdraw_cancellation")])
def test_answers_without_a_request_are_refused(engine, what, trigger):
    create(engine)
    exc = rejected(engine, ev("x", EFFECTIVE_AT, f"project.{what}", PROJECT, by="provider"),
                   f"project/P1: cannot {trigger} in state active")
    assert exc.guard is None


def test_orders_cannot_be_agreed_while_a_cancellation_is_pending(engine):
    create(engine)
    request(engine)
    rejected(engine, ev("a", MOVED_AT, "order.agreed", "order/O9", project="P1", fee="1.00",
                        review="manual"), "project/P1 is cancellation_pending, not active")


# == creator: the refund table ==========================================================
CREATOR_TABLE = [
    # stage at request, requested by, percent, rule
    ("agreed", "advertiser", 90, "creator/advertiser/not-submitted: 90 %"),
    ("agreed", "provider", 100, "creator/provider/not-submitted: 100 %"),
    ("in_progress", "advertiser", 90, "creator/advertiser/not-submitted: 90 %"),
    ("in_progress", "provider", 100, "creator/provider/not-submitted: 100 %"),
    ("submitted", "advertiser", 50, "creator/advertiser/submitted: 50 %"),
    ("submitted", "provider", 100, "creator/provider/submitted: 100 %"),
    ("rejected", "advertiser", 50, "creator/advertiser/submitted: 50 %"),
    ("rejected", "provider", 100, "creator/provider/submitted: 100 %"),
]


@pytest.mark.parametrize(("stage", "by", "percent", "rule"), CREATOR_TABLE)
def test_creator_refund_table(engine, stage, by, percent, rule):
    create(engine)
    agree(engine, "O1", "200.00")
    drive(engine, "O1", stage)
    request(engine, by)
    outcome = accept(engine, OTHER[by])
    assert outcome.state == "cancelled"
    assert engine.get("order/O1").state == "cancelled"
    amount = Decimal("200.00") * percent / 100
    rest = Decimal("200.00") - amount
    expected = [refund("O1", amount, percent, rule)] + ([released("O1", rest)] if rest else [])
    assert [*of(outcome, RefundIssued), *of(outcome, PaymentReleased)] == expected
    assert of(outcome, AccountCredited) == [credited(amount)]
    assert sum(money(outcome.effects, "O1")) == Decimal("200.00")


@pytest.mark.parametrize("by", ["advertiser", "provider"])
@pytest.mark.parametrize("settled", ["approved", "deemed_approved"])
def test_creator_order_finally_approved_at_request_is_paid_in_full(engine, by, settled):
    create(engine)
    agree(engine, "O1", "200.00")
    if settled == "approved":
        drive(engine, "O1", "approved")
    else:
        order(engine, "O1", "submitted", at(T0, hours=2))
        engine.advance_to(at(T0, days=14, hours=2))
    assert engine.get("order/O1").state == settled
    request(engine, by, at("2026-03-16T10:00:00Z"))
    outcome = accept(engine, OTHER[by], at("2026-03-17T10:00:00Z"))
    assert outcome.state == "cancelled"
    assert engine.get("order/O1").state == settled  # keeps its state
    assert [s.subject for s in outcome.steps] == [PROJECT]
    assert of(outcome, RefundIssued) == of(outcome, PaymentReleased) == of(outcome, AccountCredited) == []


def test_creator_cancellation_emits_effective_notifications_and_credit(engine):
    create(engine)
    agree(engine, "O1", "100.00")
    agree(engine, "O2", "40.00")
    drive(engine, "O2", "submitted")
    request(engine, "advertiser")
    outcome = accept(engine, "provider")
    assert [(s.subject, s.source, s.dest) for s in outcome.steps] == [
        (PROJECT, "cancellation_pending", "cancelled"),
        ("order/O1", "agreed", "cancelled"),
        ("order/O2", "submitted", "cancelled"),
    ]
    assert outcome.effects == (
        CancellationEffective(cause="acc", time=EFFECTIVE_AT, project=PROJECT),
        *notices("platform"),
        credited("110.00"),  # 90.00 + 20.00
        refund("O1", "90.00", 90, "creator/advertiser/not-submitted: 90 %"),
        released("O1", "10.00"),
        refund("O2", "20.00", 50, "creator/advertiser/submitted: 50 %"),
        released("O2", "20.00"),
    )
    assert engine.get("order/O1").timers == engine.get("order/O2").timers == ()


def test_creator_cancellation_without_orders(engine):
    create(engine)
    request(engine, "provider")
    outcome = accept(engine, "advertiser")
    assert outcome.state == "cancelled"
    assert outcome.effects == (CancellationEffective(cause="acc", time=EFFECTIVE_AT, project=PROJECT),
                               *notices("platform"))


@pytest.mark.parametrize(
    ("at_request", "moves", "percent"),
    [
        ("agreed", ("submitted",), 90),
        ("agreed", ("started", "submitted", "rejected"), 90),
        ("in_progress", ("submitted",), 90),
        ("submitted", ("rejected",), 50),
        ("rejected", ("resubmitted",), 50),
    ],
)
def test_creator_refund_is_priced_by_the_stage_at_request(engine, at_request, moves, percent):
    create(engine)
    agree(engine, "O1", "200.00")
    drive(engine, "O1", at_request)
    request(engine, "advertiser")
    for n, what in enumerate(moves):
        order(engine, "O1", what, at(MOVED_AT, minutes=n), eid=f"move-{n}")
    outcome = accept(engine, "provider")
    [issued] = of(outcome, RefundIssued)
    assert (issued.percent, issued.amount) == (percent, Decimal("200.00") * percent / 100)


@pytest.mark.parametrize("at_request", ["agreed", "in_progress", "submitted"])
def test_creator_order_approved_while_pending_is_paid_in_full(engine, at_request):
    create(engine)
    agree(engine, "O1", "200.00")
    drive(engine, "O1", at_request)
    request(engine, "advertiser")
    if at_request != "submitted":
        order(engine, "O1", "submitted", MOVED_AT, eid="move-s")
    paid = order(engine, "O1", "approved", at(MOVED_AT, minutes=1), eid="move-ok")
    assert paid.effects == (released("O1", "200.00", cause="move-ok", time=at(MOVED_AT, minutes=1)),)
    outcome = accept(engine, "provider")
    assert engine.get("order/O1").state == "approved"
    assert of(outcome, RefundIssued) == of(outcome, PaymentReleased) == []


def test_creator_order_deemed_approved_while_pending_is_paid_in_full(engine):
    create(engine)
    agree(engine, "O1", "200.00")
    drive(engine, "O1", "submitted")  # 2026-03-02T10:00 → deemed 2026-03-16T10:00
    request(engine, "advertiser")
    outcome = accept(engine, "provider", at("2026-03-16T10:00:00Z"))  # the timer fires first
    assert engine.get("order/O1").state == "deemed_approved"
    assert outcome.state == "cancelled"
    assert of(outcome, RefundIssued) == of(outcome, PaymentReleased) == []


def test_creator_expired_orders_keep_their_state(engine):
    create(engine)
    agree(engine, "O1", "100.00")  # expires at the deadline
    agree(engine, "O2", "100.00")
    order(engine, "O2", "submitted", at(DEADLINE, days=-1))  # submitted orders do not expire
    engine.advance_to(DEADLINE)
    assert engine.get("order/O1").state == "expired"
    request(engine, "advertiser", at(DEADLINE, hours=1))
    outcome = accept(engine, "provider", at(DEADLINE, hours=2))
    assert engine.get("order/O1").state == "expired"
    assert engine.get("order/O2").state == "cancelled"
    assert [e.order for e in of(outcome, RefundIssued)] == ["order/O2"]


def test_creator_order_expiring_while_pending_keeps_its_100_percent(engine):
    create(engine)
    agree(engine, "O1", "100.00")
    request(engine, "advertiser", at(DEADLINE, hours=-1))
    outcome = accept(engine, "provider", DEADLINE)  # the deadline timer fires first
    assert engine.get("order/O1").state == "expired"
    assert of(outcome, RefundIssued) == []


@pytest.mark.parametrize(
    ("currency", "fee", "stage", "by", "refunded", "paid"),
    [
        ("USD", "0.05", "agreed", "advertiser", "0.05", None),  # 90 % of 0.05 = 0.045 → 0.05
        ("USD", "0.15", "agreed", "advertiser", "0.14", "0.01"),  # 0.135 → 0.14
        ("USD", "0.01", "submitted", "advertiser", "0.01", None),  # 50 % of 0.01 = 0.005 → 0.01
        ("USD", "0.05", "submitted", "advertiser", "0.03", "0.02"),  # 0.025 → 0.03 (not 0.02)
        ("USD", "999.99", "rejected", "advertiser", "500.00", "499.99"),  # 499.995 → 500.00
        ("EUR", "0.01", "submitted", "provider", "0.01", None),
        ("JPY", "1005", "agreed", "advertiser", "905", "100"),  # 904.5 → 905
        ("JPY", "1", "submitted", "advertiser", "1", None),  # 0.5 → 1
        ("JPY", "3", "rejected", "advertiser", "2", "1"),  # 1.5 → 2
        ("KRW", "12345", "in_progress", "advertiser", "11111", "1234"),  # 11110.5 → 11111
    ],
)
def test_creator_refund_rounds_half_up_to_minor_units(engine, currency, fee, stage, by, refunded, paid):
    create(engine, currency=currency)
    agree(engine, "O1", fee)
    drive(engine, "O1", stage)
    request(engine, by)
    outcome = accept(engine, OTHER[by])
    [issued] = of(outcome, RefundIssued)
    assert (str(issued.amount), issued.currency) == (refunded, currency)
    assert [str(e.amount) for e in of(outcome, PaymentReleased)] == ([paid] if paid else [])
    assert sum(money(outcome.effects, "O1")) == Decimal(fee)
    [credit] = of(outcome, AccountCredited)
    assert (str(credit.amount), credit.currency) == (refunded, currency)


def test_creator_credit_is_the_sum_of_refunds_and_every_fee_is_split_exactly(engine, recorder):
    create(engine)
    fees = {"O1": "100.00", "O2": "33.33", "O3": "0.05", "O4": "250.00", "O5": "10.01"}
    stages = {"O1": "agreed", "O2": "in_progress", "O3": "submitted", "O4": "approved",
              "O5": "rejected"}
    for oid, fee in fees.items():
        agree(engine, oid, fee)
    for oid, stage in stages.items():
        drive(engine, oid, stage)
    request(engine, "advertiser")
    outcome = accept(engine, "provider")
    [credit] = of(outcome, AccountCredited)
    assert credit.amount == sum(e.amount for e in of(outcome, RefundIssued))
    assert credit.amount == Decimal("90.00") + Decimal("30.00") + Decimal("0.03") + Decimal("5.01")
    for oid, fee in fees.items():
        assert sum(money(recorder.effects, oid)) == Decimal(fee), oid


STAGES = ("agreed", "in_progress", "submitted", "rejected", "approved")


@settings(max_examples=60, deadline=None)
@given(
    orders=st.lists(st.tuples(st.integers(1, 10**9), st.sampled_from(STAGES)), min_size=0, max_size=6),
    by=st.sampled_from(["advertiser", "provider"]),
    currency=st.sampled_from(["USD", "JPY", "BHD"]),
)
def test_creator_cancellation_money_invariants(orders, by, currency):
    """For any orders: refund + released == fee, 0 <= refund <= fee, amounts in minor
    units, and the credit is the sum of the refunds."""
    engine = Engine()
    effects = []
    engine.subscribe(lambda outcome: effects.extend(outcome.effects))
    create(engine, currency=currency)
    exponent = {"USD": -2, "JPY": 0, "BHD": -3}[currency]
    fees = {f"O{n}": Decimal(minor).scaleb(exponent) for n, (minor, _) in enumerate(orders)}
    for oid, fee in fees.items():
        agree(engine, oid, str(fee))
    for n, (_, stage) in enumerate(orders):
        drive(engine, f"O{n}", stage)
    request(engine, by)
    outcome = accept(engine, OTHER[by])
    for oid, fee in fees.items():
        refunded, paid = money(effects, oid)
        assert refunded + paid == fee
        assert 0 <= refunded <= fee
    for e in [*of(effects, RefundIssued), *of(effects, PaymentReleased)]:
        assert e.amount > 0 and e.amount.as_tuple().exponent == exponent
    credits = of(outcome, AccountCredited)
    total = sum((e.amount for e in of(outcome, RefundIssued)), Decimal(0))
    assert [c.amount for c in credits] == ([total] if total else [])


# == complete ===========================================================================
@pytest.mark.parametrize("kind", ["creator", "partner"])
def test_complete_with_zero_orders(engine, kind):
    create(engine, kind)
    outcome = project(engine, "completed", MOVED_AT)
    assert (outcome.state, outcome.effects) == ("completed", ())


def test_complete_when_every_order_is_settled(engine):
    create(engine)
    agree(engine, "O1")
    agree(engine, "O2")
    agree(engine, "O3")
    drive(engine, "O1", "approved")
    order(engine, "O2", "submitted", at(DEADLINE, days=-1))
    engine.advance_to(at(DEADLINE, days=13))  # O3 expired at the deadline, O2 deemed approved
    states = [engine.get(f"order/O{n}").state for n in (1, 2, 3)]
    assert states == ["approved", "deemed_approved", "expired"]
    outcome = project(engine, "completed", at(DEADLINE, days=14))
    assert (outcome.state, outcome.effects) == ("completed", ())


@pytest.mark.parametrize("state", ["agreed", "in_progress", "submitted", "rejected"])
def test_complete_refused_while_an_order_is_not_settled(engine, state):
    create(engine)
    agree(engine, "O1")
    agree(engine, "O2")
    drive(engine, "O1", "approved")
    drive(engine, "O2", state)
    exc = rejected(engine, ev("c", MOVED_AT, "project.completed", PROJECT),
                   f"orders not settled: order/O2 ({state})")
    assert exc.guard == "all_orders_settled"


def test_complete_refused_while_a_cancellation_is_pending(engine):
    create(engine)
    request(engine)
    rejected(engine, ev("c", MOVED_AT, "project.completed", PROJECT),
             "cannot complete in state cancellation_pending")


@pytest.mark.parametrize("what", ["completed", "cancellation_requested"])
def test_a_completed_project_accepts_nothing(engine, what):
    create(engine)
    project(engine, "completed", MOVED_AT)
    rejected(engine, ev("x", EFFECTIVE_AT, f"project.{what}", PROJECT, by="advertiser"),
             "in state completed")


@pytest.mark.parametrize("what", ["completed", "cancellation_requested", "cancellation_withdrawn"])
def test_a_cancelled_project_accepts_nothing(engine, what):
    create(engine)
    request(engine)
    accept(engine, "provider")
    rejected(engine, ev("x", at(EFFECTIVE_AT, hours=1), f"project.{what}", PROJECT, by="advertiser"),
             "in state cancelled")


# == partner: review, accept, wind down =================================================
def partner_pending(engine, by="advertiser", time=REQUESTED_AT):
    """Partner project: ``by`` requests at ``time``; the platform approves an hour later."""
    request(engine, by, time)
    project(engine, "cancellation_reviewed", at(time, hours=1), approved=True)


def test_partner_request_goes_to_the_platform_review(engine):
    create(engine, "partner")
    outcome = request(engine, "provider", reason="creator unavailable")
    assert (outcome.state, outcome.effects) == ("cancellation_review", ())
    assert engine.get(PROJECT).data["requested_by"] == "provider"


@pytest.mark.parametrize(("approved", "state"), [(True, "cancellation_pending"), (False, "active")])
def test_partner_review(engine, approved, state):
    create(engine, "partner")
    request(engine)
    outcome = project(engine, "cancellation_reviewed", MOVED_AT, approved=approved)
    assert (outcome.state, outcome.effects) == (state, ())
    if not approved:
        assert engine.get(PROJECT).data["requested_by"] is None


def test_partner_review_needs_a_boolean(engine):
    create(engine, "partner")
    request(engine)
    exc = rejected(engine, ev("v", MOVED_AT, "project.cancellation_reviewed", PROJECT, approved="yes"),
                   "data.approved")
    assert isinstance(exc, InvalidEvent)


def test_partner_cannot_accept_before_the_review(engine):
    create(engine, "partner")
    request(engine)
    rejected(engine, ev("x", MOVED_AT, "project.cancellation_accepted", PROJECT, by="provider"),
             "cannot accept_cancellation in state cancellation_review")


def test_partner_review_twice_is_refused(engine):
    create(engine, "partner")
    partner_pending(engine)
    rejected(engine, ev("v2", MOVED_AT, "project.cancellation_reviewed", PROJECT, approved=False),
             "cannot review_cancellation in state cancellation_pending")


def test_review_on_a_creator_project_is_refused(engine):
    create(engine, "creator")
    request(engine)
    exc = rejected(engine, ev("v", MOVED_AT, "project.cancellation_reviewed", PROJECT, approved=True),
                   "project/P1: cannot review_cancellation in state cancellation_pending")
    assert isinstance(exc, TransitionRefused)


@pytest.mark.parametrize("pending", [False, True])
def test_partner_withdraw_from_review_and_from_pending(engine, pending):
    create(engine, "partner")
    if pending:
        partner_pending(engine)
    else:
        request(engine)
    rejected(engine, ev("w", MOVED_AT, "project.cancellation_withdrawn", PROJECT, by="provider"),
             "only the requester (advertiser) can withdraw the request, not the provider")
    outcome = project(engine, "cancellation_withdrawn", MOVED_AT, by="advertiser")
    assert (outcome.state, outcome.effects) == ("active", ())


def test_partner_decline_returns_to_active(engine):
    create(engine, "partner")
    partner_pending(engine)
    rejected(engine, ev("d", MOVED_AT, "project.cancellation_declined", PROJECT, by="advertiser"),
             "cannot decline its own request")
    assert project(engine, "cancellation_declined", MOVED_AT, by="provider").state == "active"


def test_partner_requester_cannot_accept(engine):
    create(engine, "partner")
    partner_pending(engine)
    exc = rejected(engine, ev("x", MOVED_AT, "project.cancellation_accepted", PROJECT, by="advertiser"),
                   "the advertiser requested the cancellation and cannot accept its own request")
    assert exc.guard == "by_other_party"


@pytest.mark.parametrize("states", [(), ("agreed",), ("agreed", "approved"), ("approved", "approved")])
def test_partner_accept_without_open_orders_cancels_at_once(engine, states):
    create(engine, "partner")
    for n in range(len(states)):
        agree(engine, f"O{n}", "100.00")
    for n, state in enumerate(states):
        drive(engine, f"O{n}", state)
    partner_pending(engine)
    outcome = accept(engine, "provider")
    assert outcome.state == "cancelled"
    undelivered = [f"O{n}" for n, s in enumerate(states) if s == "agreed"]
    assert of(outcome, RefundIssued) == [refund(o, "100.00", 100, "partner/undelivered: 100 %")
                                         for o in undelivered]
    assert of(outcome, PaymentReleased) == []
    assert of(outcome, NotificationRequested) == notices("email")
    assert of(outcome, AccountCredited) == ([credited(100 * len(undelivered))] if undelivered else [])
    for n, state in enumerate(states):
        assert engine.get(f"order/O{n}").state == ("cancelled" if state == "agreed" else state)


@pytest.mark.parametrize("state", ["in_progress", "submitted", "rejected"])
def test_partner_accept_with_open_orders_winds_down(engine, state):
    create(engine, "partner")
    agree(engine, "O1")
    drive(engine, "O1", state)
    partner_pending(engine)
    outcome = accept(engine, "provider")
    assert (outcome.state, outcome.effects) == ("winding_down", ())
    assert [s.subject for s in outcome.steps] == [PROJECT]
    assert engine.get("order/O1").state == state


@pytest.mark.parametrize("pending", [False, True])
def test_partner_orders_keep_moving_during_review_and_pending(engine, pending):
    create(engine, "partner")
    agree(engine, "O1")
    if pending:
        partner_pending(engine)
    else:
        request(engine)
    t = at(EFFECTIVE_AT, hours=1)
    assert order(engine, "O1", "started", t).state == "in_progress"
    assert order(engine, "O1", "submitted", at(t, minutes=1)).state == "submitted"
    assert order(engine, "O1", "approved", at(t, minutes=2)).state == "approved"
    assert engine.get(PROJECT).state == ("cancellation_pending" if pending else "cancellation_review")


@pytest.fixture
def winding(engine):
    """Partner project winding down: O1 agreed (100.00), O2 in progress (300.00)."""
    create(engine, "partner")
    agree(engine, "O1", "100.00")
    agree(engine, "O2", "300.00")
    drive(engine, "O2", "in_progress")
    partner_pending(engine)
    accept(engine, "provider")
    assert engine.get(PROJECT).state == "winding_down"
    return engine


@pytest.mark.parametrize(("what", "reason"), [
    ("started", "cannot start in state agreed: the partner project is winding down: merely "
                "agreed orders cannot start"),
    # Issue 17: a refused submit says submit, not start.
    ("submitted", "cannot submit in state agreed: the partner project is winding down: merely "
                  "agreed orders cannot submit (it would start delivery)"),
])
def test_while_winding_down_a_merely_agreed_order_cannot_start(winding, what, reason):
    exc = rejected(winding, ev("x", at(EFFECTIVE_AT, hours=1), f"order.{what}", "order/O1"),
                   f"order/O1: {reason}")
    assert exc.guard == "may_deliver"


def test_while_winding_down_open_orders_keep_moving(winding):
    t = at(EFFECTIVE_AT, hours=1)
    assert order(winding, "O2", "submitted", t).state == "submitted"
    assert order(winding, "O2", "rejected", at(t, minutes=1)).state == "rejected"
    assert order(winding, "O2", "resubmitted", at(t, minutes=2)).state == "submitted"
    assert winding.get(PROJECT).state == "winding_down"


def test_winding_down_ends_when_the_last_open_order_is_approved(winding):
    t = at(EFFECTIVE_AT, hours=1)
    order(winding, "O2", "submitted", t)
    outcome = order(winding, "O2", "approved", at(t, hours=1), eid="ok")
    when = at(t, hours=1)
    assert [(s.subject, s.dest) for s in outcome.steps] == [
        ("order/O2", "approved"), (PROJECT, "cancelled"), ("order/O1", "cancelled")]
    assert outcome.effects == (
        released("O2", "300.00", cause="ok", time=when),
        CancellationEffective(cause="ok", time=when, project=PROJECT),
        *notices("email", cause="ok", time=when),
        credited("100.00", cause="ok", time=when),
        refund("O1", "100.00", 100, "partner/undelivered: 100 %", cause="ok", time=when),
    )


def test_winding_down_ends_when_the_last_open_order_is_deemed_approved(winding):
    submitted = at(EFFECTIVE_AT, hours=1)
    order(winding, "O2", "submitted", submitted, eid="s")
    due = at(submitted, days=14)
    assert winding.advance_to(due - MICROSECOND) == []
    [fired] = winding.advance_to(due)
    assert (fired.timer, fired.cause, fired.time) == ("deemed_approval", "s", due)
    assert [(s.subject, s.dest) for s in fired.steps] == [
        ("order/O2", "deemed_approved"), (PROJECT, "cancelled"), ("order/O1", "cancelled")]
    assert of(fired, RefundIssued) == [refund("O1", "100.00", 100, "partner/undelivered: 100 %",
                                              cause="s", time=due)]
    assert of(fired, PaymentReleased) == [released("O2", "300.00", cause="s", time=due)]
    assert of(fired, AccountCredited) == [credited("100.00", cause="s", time=due)]


def test_winding_down_ends_when_the_last_open_order_expires(engine):
    create(engine, "partner")
    agree(engine, "O1", "100.00")
    agree(engine, "O2", "300.00")
    drive(engine, "O1", "approved")
    drive(engine, "O2", "rejected")
    partner_pending(engine)
    accept(engine, "provider")
    assert engine.get(PROJECT).state == "winding_down"
    [fired] = engine.advance_to(DEADLINE)
    assert (fired.timer, fired.cause, fired.time) == ("content_deadline", "O2-agreed", at(DEADLINE))
    assert [(s.subject, s.dest) for s in fired.steps] == [("order/O2", "expired"), (PROJECT, "cancelled")]
    assert fired.effects == (
        refund("O2", "300.00", 100, "order/expired: 100 %", cause="O2-agreed", time=DEADLINE),
        CancellationEffective(cause="O2-agreed", time=at(DEADLINE), project=PROJECT),
        *notices("email", cause="O2-agreed", time=DEADLINE),
    )
    assert engine.get("order/O1").state == "approved"


def test_winding_down_waits_for_every_open_order(engine):
    create(engine, "partner")
    for oid in ("O1", "O2", "O3"):
        agree(engine, oid, "100.00")
    drive(engine, "O1", "submitted")
    drive(engine, "O2", "submitted")
    partner_pending(engine)
    accept(engine, "provider")
    first = order(engine, "O1", "approved", at(EFFECTIVE_AT, days=1))
    assert [s.subject for s in first.steps] == ["order/O1"]
    assert engine.get(PROJECT).state == "winding_down"
    last = order(engine, "O2", "approved", at(EFFECTIVE_AT, days=2))
    assert engine.get(PROJECT).state == "cancelled"
    assert [(e.order, e.percent) for e in of(last, RefundIssued)] == [("order/O3", 100)]


def test_an_agreed_order_expiring_while_winding_down_does_not_end_it(engine):
    create(engine, "partner")
    agree(engine, "O1", "100.00")
    agree(engine, "O2", "100.00")
    order(engine, "O2", "submitted", at(DEADLINE, days=-3))  # open, and never expires
    partner_pending(engine, time=at(DEADLINE, days=-2))
    accept(engine, "provider", at(DEADLINE, days=-1))
    [fired] = engine.advance_to(DEADLINE)
    assert [s.subject for s in fired.steps] == ["order/O1"]
    assert engine.get(PROJECT).state == "winding_down"
    last = order(engine, "O2", "approved", at(DEADLINE, hours=1), eid="ok")
    assert engine.get(PROJECT).state == "cancelled"
    assert engine.get("order/O1").state == "expired"  # keeps its state and its own 100 %
    assert of(last, RefundIssued) == of(last, AccountCredited) == []


@pytest.mark.parametrize(
    ("fees", "delivered", "refunded"),
    [
        # equal fees: half the orders delivered → half the total refunded
        (("100.00", "100.00", "100.00", "100.00"), (0, 1), "200.00"),
        # unequal fees: the refund is the outstanding balance, not a share of orders
        (("100.00", "250.00", "650.00"), (0, 1), "650.00"),
        (("100.00", "250.00", "650.00"), (2,), "350.00"),
        (("0.01", "999999.99"), (1,), "0.01"),
    ],
)
def test_partner_refund_is_the_outstanding_balance(engine, fees, delivered, refunded):
    create(engine, "partner")
    for n, fee in enumerate(fees):
        agree(engine, f"O{n}", fee)
    for n in delivered:
        drive(engine, f"O{n}", "approved")
    partner_pending(engine)
    outcome = accept(engine, "provider")
    assert outcome.state == "cancelled"
    assert of(outcome, AccountCredited) == [credited(refunded)]
    assert sorted(e.order for e in of(outcome, RefundIssued)) == [
        f"order/O{n}" for n in range(len(fees)) if n not in delivered]
    assert all(e.percent == 100 and e.rule == "partner/undelivered: 100 %" for e in of(outcome, RefundIssued))
    assert of(outcome, PaymentReleased) == []  # delivered orders were paid on approval


# == may(): pure ========================================================================
def test_may_names_the_refusing_guard_and_changes_nothing(engine, recorder):
    create(engine)
    agree(engine, "O1")
    request(engine, "advertiser")
    before = (engine.get(PROJECT), engine.get("order/O1"), engine.clock)
    recorder.clear()
    refused = engine.may(PROJECT, "accept_cancellation", {"by": "advertiser"})
    assert (refused.allowed, refused.guard) == (False, "by_other_party")
    assert "the advertiser requested the cancellation and cannot accept its own request" in refused.reason
    allowed = engine.may(PROJECT, "accept_cancellation", {"by": "provider"}, time=EFFECTIVE_AT)
    assert (allowed.allowed, allowed.dest, allowed.guard) == (True, "cancelled", None)
    assert (engine.get(PROJECT), engine.get("order/O1"), engine.clock) == before
    assert engine.get(PROJECT) is before[0] and engine.get("order/O1") is before[1]
    assert recorder.outcomes == []
    # The pending project can still be accepted for real, with its refunds.
    assert accept(engine, "provider").state == "cancelled"


def test_may_without_a_transition_names_no_guard(engine):
    create(engine)
    decision = engine.may(PROJECT, "accept_cancellation", {"by": "provider"})
    assert (decision.allowed, decision.guard) == (False, None)
    assert decision.reason == "project/P1: cannot accept_cancellation in state active"


def test_may_on_an_unknown_entity(engine):
    create(engine)
    decision = engine.may("project/P9", "complete")
    assert not decision.allowed and "project/P9: no such entity" in decision.reason


def test_may_complete_lists_the_unsettled_orders(engine):
    create(engine)
    agree(engine, "O1")
    decision = engine.may(PROJECT, "complete")
    assert (decision.allowed, decision.guard) == (False, "all_orders_settled")
    assert decision.reason.endswith("orders not settled: order/O1 (agreed)")
