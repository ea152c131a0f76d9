"""The Order lifecycle, rule by rule (``shared/spec/lifecycles.md``, "Order").

Every row of the order table and every boundary of its two timers: states, the
effects (amount, currency, percent, rule, cause, time) and that a refused event
changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from helpers import MICROSECOND, T0, at, ev, of, rejected

from statemachine.engine import InvalidEvent, TransitionRefused
from statemachine.lifecycles import PaymentReleased, RefundIssued

pytest_plugins = ["helpers"]

DEADLINE = "2026-04-01T00:00:00Z"
AGREED_AT = at(T0, hours=1)  # 2026-03-01T11:00:00Z
SUBMITTED_AT = at("2026-03-05T10:00:00Z")
DEEMED_AT = at("2026-03-19T10:00:00Z")  # exactly 14 days after SUBMITTED_AT
ORDER = "order/O1"


def create_project(engine, *, currency="USD", kind="creator", deadline=DEADLINE, pid="P1", eid="p1"):
    return engine.apply(ev(eid, T0, "project.created", f"project/{pid}", kind=kind,
                           currency=currency, deadline=deadline))


def agree(engine, *, eid="a1", time=AGREED_AT, oid="O1", project="P1", fee="100.00", review="manual"):
    return engine.apply(ev(eid, time, "order.agreed", f"order/{oid}", project=project, fee=fee,
                           review=review))


def do(engine, eid, time, what, subject=ORDER):
    """Apply ``order.<what>`` (started, submitted, approved, rejected, resubmitted)."""
    return engine.apply(ev(eid, time, f"order.{what}", subject))


def refund(cause, time, amount, percent=100, rule="order/expired: 100 %", order=ORDER, currency="USD"):
    return RefundIssued(cause=cause, time=at(time), order=order, amount=Decimal(amount),
                        currency=currency, percent=percent, rule=rule)


def released(cause, time, amount, order=ORDER, currency="USD"):
    return PaymentReleased(cause=cause, time=at(time), order=order, amount=Decimal(amount),
                           currency=currency)


@pytest.fixture
def agreed(engine):
    """A creator project (USD, deadline 2026-04-01) with order O1 agreed, manual review."""
    create_project(engine)
    agree(engine)
    return engine


def reach(engine, state):
    """Drive O1 (already agreed) to ``state`` with submissions on SUBMITTED_AT."""
    if state == "in_progress":
        do(engine, "st", at(SUBMITTED_AT, hours=-1), "started")
    elif state == "submitted":
        do(engine, "s1", SUBMITTED_AT, "submitted")
    elif state == "rejected":
        do(engine, "s1", SUBMITTED_AT, "submitted")
        do(engine, "rj", at(SUBMITTED_AT, hours=1), "rejected")
    else:
        assert state == "agreed"


# -- agree -------------------------------------------------------------------------------
def test_agree_records_fee_currency_review_and_arms_the_deadline(agreed):
    order = agreed.get(ORDER)
    assert order.state == "agreed"
    assert order.data["fee"] == Decimal("100.00") and str(order.data["fee"]) == "100.00"
    assert order.data["currency"] == "USD"
    assert order.data["review"] == "manual"
    assert [(t.name, t.due, t.cause) for t in order.timers] == [("content_deadline", at(DEADLINE), "a1")]


def test_agree_emits_nothing(engine):
    create_project(engine)
    outcome = agree(engine)
    assert outcome.state == "agreed"
    assert outcome.effects == ()


@pytest.mark.parametrize(
    ("currency", "fee", "guard", "reason"),
    [
        ("USD", "0", "fee_valid", "the fee must be > 0, not 0"),
        ("USD", "0.00", "fee_valid", "the fee must be > 0"),
        ("USD", "-5.00", "fee_valid", "the fee must be > 0, not -5.00"),
        ("USD", "10.001", "fee_valid", "the fee 10.001 has more decimals than USD allows"),
        ("EUR", "0.005", "fee_valid", "has more decimals than EUR allows"),
        ("JPY", "1000.5", "fee_valid", "the fee 1000.5 has more decimals than JPY allows"),
        ("JPY", "0.1", "fee_valid", "has more decimals than JPY allows"),
    ],
)
def test_agree_refuses_a_bad_fee(engine, currency, fee, guard, reason):
    create_project(engine, currency=currency)
    exc = rejected(engine, ev("a1", AGREED_AT, "order.agreed", ORDER, project="P1", fee=fee,
                              review="manual"), reason)
    assert isinstance(exc, TransitionRefused) and exc.guard == guard
    assert engine.get(ORDER) is None


@pytest.mark.parametrize(("currency", "fee"), [("USD", "0.01"), ("USD", "10.5"), ("JPY", "1"),
                                               ("JPY", "1000"), ("KRW", "50000")])
def test_agree_accepts_a_fee_in_minor_units(engine, currency, fee):
    create_project(engine, currency=currency)
    agree(engine, fee=fee)
    assert engine.get(ORDER).data["fee"] == Decimal(fee)
    assert engine.get(ORDER).data["currency"] == currency


def test_agree_refuses_an_unknown_project(engine):
    create_project(engine)
    exc = rejected(engine, ev("a1", AGREED_AT, "order.agreed", ORDER, project="P9", fee="1.00",
                              review="manual"), "project/P9 does not exist")
    assert exc.guard == "project_active"


@pytest.mark.parametrize("events", [
    [("project.cancellation_requested", {"by": "advertiser"})],
    [("project.completed", {})],
])
def test_agree_requires_an_active_project(engine, events):
    create_project(engine)
    for n, (kind, data) in enumerate(events):
        engine.apply(ev(f"x{n}", T0, kind, "project/P1", **data))
    state = engine.get("project/P1").state
    exc = rejected(engine, ev("a1", AGREED_AT, "order.agreed", ORDER, project="P1", fee="1.00",
                              review="manual"), f"project/P1 is {state}, not active")
    assert exc.guard == "project_active"


def test_agree_just_before_the_deadline_is_accepted(engine):
    create_project(engine)
    agree(engine, time=at(DEADLINE) - MICROSECOND)
    assert engine.get(ORDER).state == "agreed"


@pytest.mark.parametrize("offset", [0, 1])
def test_agree_at_or_after_the_deadline_is_refused(engine, offset):
    create_project(engine)
    exc = rejected(engine, ev("a1", at(DEADLINE, seconds=offset), "order.agreed", ORDER, project="P1",
                              fee="1.00", review="manual"),
                   "the project's content deadline 2026-04-01T00:00:00Z has passed")
    assert exc.guard == "agreed_before_deadline"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"project": "P1", "fee": "1.00", "review": "maybe"}, "data.review"),
        ({"project": "P1", "review": "manual"}, "data.fee"),
        ({"project": "P1", "fee": "ten", "review": "manual"}, "data.fee"),
        ({"fee": "1.00", "review": "manual"}, "data.project"),
    ],
)
def test_agree_refuses_bad_data_naming_the_field(engine, data, field):
    create_project(engine)
    exc = rejected(engine, ev("a1", AGREED_AT, "order.agreed", ORDER, **data), field)
    assert isinstance(exc, InvalidEvent) and exc.field == field


def test_agree_twice_is_refused(agreed):
    rejected(agreed, ev("a2", at(AGREED_AT, hours=1), "order.agreed", ORDER, project="P1", fee="5.00",
                        review="auto"), "order/O1: already exists (in state agreed)")
    assert agreed.get(ORDER).data["fee"] == Decimal("100.00")


# -- start ------------------------------------------------------------------------------
def test_start_moves_agreed_to_in_progress_and_keeps_the_deadline(agreed):
    outcome = do(agreed, "st", SUBMITTED_AT, "started")
    assert (outcome.state, outcome.effects) == ("in_progress", ())
    assert [t.name for t in agreed.get(ORDER).timers] == ["content_deadline"]


def test_start_twice_is_refused(agreed):
    do(agreed, "st", SUBMITTED_AT, "started")
    exc = rejected(agreed, ev("st2", SUBMITTED_AT, "order.started", ORDER),
                   "order/O1: cannot start in state in_progress")
    assert exc.guard is None


# -- submit -----------------------------------------------------------------------------
@pytest.mark.parametrize("start", ["agreed", "in_progress"])
def test_submit_manual_waits_for_review_and_arms_the_14_day_clock(agreed, start):
    reach(agreed, start)
    outcome = do(agreed, "s1", SUBMITTED_AT, "submitted")
    assert (outcome.state, outcome.effects) == ("submitted", ())
    order = agreed.get(ORDER)
    assert [(t.name, t.due, t.cause) for t in order.timers] == [("deemed_approval", DEEMED_AT, "s1")]


@pytest.mark.parametrize("start", ["agreed", "in_progress"])
def test_submit_auto_goes_straight_to_approved_and_releases_the_fee(engine, start):
    create_project(engine)
    agree(engine, review="auto", fee="250.50")
    reach(engine, start)
    outcome = do(engine, "s1", SUBMITTED_AT, "submitted")
    assert outcome.state == "approved"
    assert outcome.effects == (released("s1", SUBMITTED_AT, "250.50"),)
    assert engine.get(ORDER).timers == ()


def test_submit_just_before_the_deadline_is_accepted(agreed):
    outcome = do(agreed, "s1", at(DEADLINE) - MICROSECOND, "submitted")
    assert outcome.state == "submitted"


@pytest.mark.parametrize("start", ["agreed", "in_progress"])
def test_submit_at_the_deadline_finds_the_order_already_expired(agreed, recorder, start):
    reach(agreed, start)
    recorder.clear()
    # apply itself fires the deadline timer before it judges the event.
    rejected(agreed, ev("s1", DEADLINE, "order.submitted", ORDER),
             "order/O1: cannot submit in state expired")
    assert agreed.get(ORDER).state == "expired"
    [fired] = recorder.outcomes
    assert (fired.timer, fired.cause, fired.time) == ("content_deadline", "a1", at(DEADLINE))
    assert fired.effects == (refund("a1", DEADLINE, "100.00"),)


# -- approve / reject / resubmit ---------------------------------------------------------
def test_approve_releases_the_fee(agreed):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    outcome = do(agreed, "ok", at(SUBMITTED_AT, days=1), "approved")
    assert outcome.state == "approved"
    assert outcome.effects == (released("ok", at(SUBMITTED_AT, days=1), "100.00"),)
    assert agreed.get(ORDER).timers == ()


def test_reject_emits_nothing_and_rearms_the_deadline(agreed):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    outcome = do(agreed, "rj", at(SUBMITTED_AT, days=1), "rejected")
    assert (outcome.state, outcome.effects) == ("rejected", ())
    assert [(t.name, t.due, t.cause) for t in agreed.get(ORDER).timers] == [
        ("content_deadline", at(DEADLINE), "a1")]


@pytest.mark.parametrize(
    ("state", "what", "trigger"),
    [
        ("agreed", "approved", "approve"),
        ("agreed", "rejected", "reject"),
        ("agreed", "resubmitted", "resubmit"),
        ("in_progress", "approved", "approve"),
        ("in_progress", "started", "start"),
        ("submitted", "submitted", "submit"),
        ("submitted", "resubmitted", "resubmit"),
        ("submitted", "started", "start"),
        ("rejected", "approved", "approve"),
        ("rejected", "rejected", "reject"),
        ("rejected", "submitted", "submit"),
    ],
)
def test_a_trigger_not_allowed_in_the_state_is_refused(agreed, state, what, trigger):
    reach(agreed, state)
    exc = rejected(agreed, ev("x", at(SUBMITTED_AT, days=2), f"order.{what}", ORDER),
                   f"order/O1: cannot {trigger} in state {state}")
    assert exc.guard is None


def test_resubmit_restarts_the_14_day_clock(agreed):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    do(agreed, "rj", at(SUBMITTED_AT, days=1), "rejected")
    resubmitted_at = at(SUBMITTED_AT, days=3)
    outcome = do(agreed, "s2", resubmitted_at, "resubmitted")
    assert (outcome.state, outcome.effects) == ("submitted", ())
    assert [(t.name, t.due, t.cause) for t in agreed.get(ORDER).timers] == [
        ("deemed_approval", at(resubmitted_at, days=14), "s2")]
    # The first submission's clock no longer runs.
    assert agreed.advance_to(DEEMED_AT) == []
    assert agreed.get(ORDER).state == "submitted"


def test_resubmit_just_before_the_deadline_is_accepted(agreed):
    reach(agreed, "rejected")
    assert do(agreed, "s2", at(DEADLINE) - MICROSECOND, "resubmitted").state == "submitted"


def test_resubmit_at_the_deadline_finds_the_order_already_expired(agreed, recorder):
    reach(agreed, "rejected")
    recorder.clear()
    rejected(agreed, ev("s2", DEADLINE, "order.resubmitted", ORDER),
             "order/O1: cannot resubmit in state expired")
    [fired] = recorder.outcomes
    assert fired.effects == (refund("a1", DEADLINE, "100.00"),)


# -- deemed approval (timer) -------------------------------------------------------------
def test_deemed_approval_fires_exactly_14_days_after_the_submission(agreed):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    assert agreed.advance_to(DEEMED_AT - MICROSECOND) == []
    assert agreed.get(ORDER).state == "submitted"
    [fired] = agreed.advance_to(DEEMED_AT)
    assert (fired.timer, fired.cause, fired.time, fired.state) == (
        "deemed_approval", "s1", DEEMED_AT, "deemed_approved")
    assert fired.effects == (released("s1", DEEMED_AT, "100.00"),)
    assert agreed.get(ORDER).timers == ()


def test_approve_at_exactly_14_days_is_refused_because_the_timer_fired_first(agreed, recorder):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    recorder.clear()
    rejected(agreed, ev("ok", DEEMED_AT, "order.approved", ORDER),
             "order/O1: cannot approve in state deemed_approved")
    [fired] = recorder.outcomes
    assert fired.effects == (released("s1", DEEMED_AT, "100.00"),)


def test_reject_at_exactly_14_days_is_refused_because_the_timer_fired_first(agreed):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    rejected(agreed, ev("rj", DEEMED_AT, "order.rejected", ORDER),
             "order/O1: cannot reject in state deemed_approved")


def test_approve_one_microsecond_before_14_days_is_accepted(agreed, recorder):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    outcome = do(agreed, "ok", DEEMED_AT - MICROSECOND, "approved")
    assert outcome.state == "approved"
    assert outcome.effects == (released("ok", DEEMED_AT - MICROSECOND, "100.00"),)
    recorder.clear()
    assert agreed.advance_to(at(DEEMED_AT, days=30)) == []
    assert recorder.outcomes == []


def test_deemed_approval_is_caused_by_the_latest_submission(agreed):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    do(agreed, "rj", at(SUBMITTED_AT, days=1), "rejected")
    do(agreed, "s2", at(SUBMITTED_AT, days=2), "resubmitted")
    due = at(SUBMITTED_AT, days=16)
    assert agreed.advance_to(due - MICROSECOND) == []
    [fired] = agreed.advance_to(due)
    assert (fired.cause, fired.time, fired.state) == ("s2", due, "deemed_approved")
    assert fired.effects == (released("s2", due, "100.00"),)


def test_auto_review_never_deems(engine, recorder):
    create_project(engine)
    agree(engine, review="auto")
    do(engine, "s1", SUBMITTED_AT, "submitted")
    recorder.clear()
    assert engine.advance_to(at(DEADLINE, days=60)) == []
    assert engine.get(ORDER).state == "approved"
    assert recorder.outcomes == []


# -- content deadline (timer) ------------------------------------------------------------
@pytest.mark.parametrize("state", ["agreed", "in_progress", "rejected"])
def test_expiry_at_the_deadline_refunds_100_percent(agreed, state):
    reach(agreed, state)
    assert agreed.advance_to(at(DEADLINE) - MICROSECOND) == []
    assert agreed.get(ORDER).state == state
    [fired] = agreed.advance_to(DEADLINE)
    assert (fired.timer, fired.cause, fired.time, fired.state) == (
        "content_deadline", "a1", at(DEADLINE), "expired")
    assert fired.effects == (refund("a1", DEADLINE, "100.00"),)
    assert of(fired, PaymentReleased) == []
    assert agreed.get(ORDER).timers == ()


def test_expiry_refund_is_the_whole_fee_in_jpy(engine):
    create_project(engine, currency="JPY")
    agree(engine, fee="12345")
    [fired] = engine.advance_to(DEADLINE)
    assert fired.effects == (refund("a1", DEADLINE, "12345", currency="JPY"),)


def test_a_submitted_order_does_not_expire(agreed):
    late = at(DEADLINE, days=-1)  # submitted the day before the deadline
    do(agreed, "s1", late, "submitted")
    assert agreed.advance_to(at(DEADLINE, days=1)) == []
    assert agreed.get(ORDER).state == "submitted"
    # It is still reviewed after the deadline: the advertiser may approve …
    assert do(agreed, "ok", at(DEADLINE, days=2), "approved").state == "approved"


def test_a_submitted_order_is_deemed_approved_after_the_deadline(agreed):
    late = at(DEADLINE, days=-1)
    do(agreed, "s1", late, "submitted")
    [fired] = agreed.advance_to(at(late, days=14))
    assert (fired.state, fired.cause) == ("deemed_approved", "s1")


@pytest.mark.parametrize("what", ["started", "submitted", "approved", "rejected", "resubmitted"])
def test_an_expired_order_accepts_nothing(agreed, what):
    agreed.advance_to(DEADLINE)
    rejected(agreed, ev("x", at(DEADLINE, days=1), f"order.{what}", ORDER), "in state expired")


@pytest.mark.parametrize("what", ["started", "submitted", "approved", "rejected", "resubmitted"])
def test_an_approved_order_accepts_nothing(agreed, what):
    do(agreed, "s1", SUBMITTED_AT, "submitted")
    do(agreed, "ok", at(SUBMITTED_AT, days=1), "approved")
    rejected(agreed, ev("x", at(SUBMITTED_AT, days=2), f"order.{what}", ORDER), "in state approved")


def test_orders_of_one_project_expire_independently_in_subject_order(engine):
    create_project(engine)
    agree(engine, eid="a2", oid="O2", fee="2.00")
    agree(engine, eid="a1", oid="O1", fee="1.00")
    fired = engine.advance_to(DEADLINE)
    assert [(o.steps[0].subject, o.cause) for o in fired] == [("order/O1", "a1"), ("order/O2", "a2")]


# -- may(): pure ------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "trigger"), [("agreed", "submit"), ("in_progress", "submit"),
                                                ("rejected", "resubmit")])
def test_may_deliver_at_the_deadline_names_the_deadline_guard_and_changes_nothing(agreed, recorder, state,
                                                                                   trigger):
    reach(agreed, state)
    before, clock = agreed.get(ORDER), agreed.clock
    recorder.clear()
    # may() fires no timer: the guard itself answers at the deadline instant.
    refused = agreed.may(ORDER, trigger, time=DEADLINE)
    assert (refused.allowed, refused.guard) == (False, "before_deadline")
    assert refused.reason.endswith("the project's content deadline 2026-04-01T00:00:00Z has passed")
    allowed = agreed.may(ORDER, trigger, time=at(DEADLINE) - MICROSECOND)
    assert (allowed.allowed, allowed.dest) == (True, "submitted")
    assert agreed.get(ORDER) is before and agreed.clock == clock
    assert recorder.outcomes == []


def test_may_submit_with_auto_review_answers_approved(engine):
    create_project(engine)
    agree(engine, review="auto")
    assert engine.may(ORDER, "submit").dest == "approved"
    assert engine.get(ORDER).state == "agreed"


def test_a_refused_fee_names_its_field_and_no_pseudo_state(engine) -> None:
    from statemachine import TransitionRefused

    engine.apply(ev("p", T0, "project.created", "project/P", kind="creator", currency="USD",
                    deadline="2026-04-01T00:00:00Z"))
    with pytest.raises(TransitionRefused) as refused:
        engine.apply(ev("o", T0, "order.agreed", "order/O", project="P", fee="1.234", review="auto"))
    assert (refused.value.guard, refused.value.field) == ("fee_valid", "data.fee")
    assert str(refused.value) == "order/O: cannot create: the fee 1.234 has more decimals than USD allows"
