"""The Promotion lifecycle, rule by rule (``shared/spec/lifecycles.md``, "Promotion").

The whole budget is held at creation; spend accumulates up to the budget; turning off,
the end time or spend reaching the budget charge what was spent and release the rest.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from helpers import MICROSECOND, T0, at, ev, of, rejected
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.api import Engine
from statemachine.engine import EventRejected, InvalidEvent
from statemachine.lifecycles import Charged, HoldPlaced, HoldReleased

pytest_plugins = ["helpers"]

PROMO = "promotion/X1"
END = at("2026-03-10T00:00:00Z")
LATER = at(T0, hours=1)


def create(engine, budget="100.00", currency="USD", end=END, eid="c"):
    end = end.isoformat() if not isinstance(end, str) else end
    return engine.apply(ev(eid, T0, "promotion.created", PROMO, budget=budget, currency=currency, end=end))


def do(engine, what, time=LATER, eid=None, **data):
    return engine.apply(ev(eid or what, time, f"promotion.{what}", PROMO, **data))


def spend(engine, amount, time, eid):
    return do(engine, "spent", time, eid, amount=amount)


def held(amount, cause="c", time=T0, currency="USD"):
    return HoldPlaced(cause=cause, time=at(time), promotion=PROMO, amount=Decimal(amount), currency=currency)


def freed(amount, cause, time, currency="USD"):
    return HoldReleased(cause=cause, time=at(time), promotion=PROMO, amount=Decimal(amount),
                        currency=currency)


def charged(amount, cause, time, currency="USD"):
    return Charged(cause=cause, time=at(time), promotion=PROMO, amount=Decimal(amount), currency=currency)


@pytest.fixture
def running(engine):
    """Promotion X1: budget 100.00 USD, ends 2026-03-10, approved an hour after creation."""
    create(engine)
    do(engine, "approved")
    return engine


# -- create ----------------------------------------------------------------------------
def test_create_holds_the_whole_budget_and_arms_the_end(engine):
    outcome = create(engine)
    assert outcome.state == "in_review"
    assert outcome.effects == (held("100.00"),)
    promo = engine.get(PROMO)
    assert (promo.data["budget"], promo.data["spent"], promo.data["currency"]) == (
        Decimal("100.00"), Decimal(0), "USD")
    assert [(t.name, t.due, t.cause) for t in promo.timers] == [("promotion_end", END, "c")]


def test_create_in_jpy(engine):
    assert create(engine, "5000", "JPY").effects == (held("5000", currency="JPY"),)


@pytest.mark.parametrize(
    ("budget", "currency", "guard", "reason"),
    [
        ("0", "USD", "budget_valid", "the budget must be > 0, not 0"),
        ("-10.00", "USD", "budget_valid", "the budget must be > 0, not -10.00"),
        ("100.001", "USD", "budget_valid", "the budget 100.001 has more decimals than USD allows"),
        ("10.5", "JPY", "budget_valid", "the budget 10.5 has more decimals than JPY allows"),
    ],
)
def test_create_refuses_a_bad_budget(engine, budget, currency, guard, reason):
    exc = rejected(engine, ev("c", T0, "promotion.created", PROMO, budget=budget, currency=currency,
                              end=END.isoformat()), reason)
    assert exc.guard == guard
    assert engine.get(PROMO) is None


@pytest.mark.parametrize("end", [T0, "2026-03-01T09:59:59.999999Z", "2026-02-01T00:00:00Z"])
def test_create_refuses_an_end_not_after_the_creation(engine, end):
    exc = rejected(engine, ev("c", T0, "promotion.created", PROMO, budget="1.00", currency="USD", end=end),
                   "does not lie after the creation 2026-03-01T10:00:00Z")
    assert exc.guard == "end_after_creation"


def test_create_accepts_an_end_one_microsecond_after_the_creation(engine):
    assert create(engine, end=at(T0) + MICROSECOND).state == "in_review"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"budget": "1.00", "currency": "usd", "end": "2026-03-10T00:00:00Z"}, "data.currency"),
        ({"budget": "one", "currency": "USD", "end": "2026-03-10T00:00:00Z"}, "data.budget"),
        ({"currency": "USD", "end": "2026-03-10T00:00:00Z"}, "data.budget"),
        ({"budget": "1.00", "currency": "USD", "end": "tomorrow"}, "data.end"),
    ],
)
def test_create_refuses_bad_data_naming_the_field(engine, data, field):
    exc = rejected(engine, ev("c", T0, "promotion.created", PROMO, **data), field)
    assert isinstance(exc, InvalidEvent) and exc.field == field


# -- review ----------------------------------------------------------------------------
def test_approve_starts_running_and_moves_no_money(engine):
    create(engine)
    outcome = do(engine, "approved")
    assert (outcome.state, outcome.effects) == ("running", ())
    assert [t.name for t in engine.get(PROMO).timers] == ["promotion_end"]


def test_approve_just_before_the_end_is_accepted(engine):
    create(engine)
    assert do(engine, "approved", END - MICROSECOND).state == "running"


@pytest.mark.parametrize("offset", [0, 1])
def test_approve_at_or_after_the_end_finds_it_completed_by_the_timer(engine, recorder, offset):
    create(engine)
    recorder.clear()
    rejected(engine, ev("ok", at(END, seconds=offset), "promotion.approved", PROMO),
             "promotion/X1: cannot approve in state completed")
    [fired] = recorder.outcomes
    assert (fired.timer, fired.cause, fired.time, fired.state) == ("promotion_end", "c", END, "completed")
    assert fired.effects == (freed("100.00", "c", END),)


def test_may_approve_once_the_end_has_passed_names_the_guard(engine):
    create(engine)
    decision = engine.may(PROMO, "approve", time=END)
    assert (decision.allowed, decision.guard) == (False, "end_not_passed")
    assert decision.reason.endswith("its end 2026-03-10T00:00:00Z has passed")
    assert engine.get(PROMO).state == "in_review"


def test_not_approve_releases_the_whole_hold(engine, recorder):
    create(engine)
    outcome = do(engine, "not_approved", eid="na")
    assert outcome.state == "not_approved"
    assert outcome.effects == (freed("100.00", "na", LATER),)
    assert engine.get(PROMO).timers == ()
    recorder.clear()
    assert engine.advance_to(at(END, days=1)) == []


def test_not_approve_while_running_is_refused(running):
    rejected(running, ev("na", LATER, "promotion.not_approved", PROMO),
             "promotion/X1: cannot not_approve in state running")


# -- spend -----------------------------------------------------------------------------
def test_spend_accumulates_and_moves_no_money_yet(running):
    first = spend(running, "30.00", at(LATER, hours=1), "s1")
    second = spend(running, "20.50", at(LATER, hours=2), "s2")
    assert (first.state, first.effects, second.state, second.effects) == ("running", (), "running", ())
    assert running.get(PROMO).data["spent"] == Decimal("50.50")


def test_spend_of_exactly_the_remaining_budget_completes_it(running):
    spend(running, "60.00", at(LATER, hours=1), "s1")
    when = at(LATER, hours=2)
    outcome = spend(running, "40.00", when, "s2")
    assert outcome.state == "completed"
    assert outcome.effects == (charged("100.00", "s2", when),)  # nothing left to release
    assert running.get(PROMO).data["spent"] == Decimal("100.00")
    assert running.get(PROMO).timers == ()
    assert running.advance_to(at(END, days=1)) == []


def test_spend_of_the_whole_budget_at_once_completes_it(running):
    outcome = spend(running, "100", at(LATER, hours=1), "s1")
    assert outcome.state == "completed"
    assert outcome.effects == (charged("100.00", "s1", at(LATER, hours=1)),)


@pytest.mark.parametrize(("before", "amount"), [(None, "100.01"), ("50.00", "60.00"), ("99.99", "0.02")])
def test_spend_over_the_budget_is_refused_and_changes_nothing(running, before, amount):
    if before:
        spend(running, before, at(LATER, hours=1), "s1")
    spent = running.get(PROMO).data["spent"]
    exc = rejected(running, ev("s2", at(LATER, hours=2), "promotion.spent", PROMO, amount=amount),
                   f"promotion/X1: cannot spend in state running: spending {amount} would exceed the "
                   f"budget: {before or '0.00'} of 100.00 USD spent")
    assert exc.guard == "within_budget"
    assert running.get(PROMO).data["spent"] == spent


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("0", "the amount must be > 0, not 0"),
        ("-5.00", "the amount must be > 0, not -5.00"),
        ("1.001", "the amount 1.001 has more decimals than USD allows"),
    ],
)
def test_spend_of_a_bad_amount_is_refused(running, amount, reason):
    exc = rejected(running, ev("s", at(LATER, hours=1), "promotion.spent", PROMO, amount=amount), reason)
    assert exc.guard == "spend_valid"


def test_spend_without_an_amount_names_the_field(running):
    exc = rejected(running, ev("s", at(LATER, hours=1), "promotion.spent", PROMO), "data.amount is required")
    assert isinstance(exc, InvalidEvent) and exc.field == "data.amount"


def test_spend_in_review_is_refused(engine):
    create(engine)
    rejected(engine, ev("s", LATER, "promotion.spent", PROMO, amount="1.00"),
             "promotion/X1: cannot spend in state in_review")


# -- turn off --------------------------------------------------------------------------
def test_turn_off_in_review_charges_nothing_and_releases_all(engine):
    create(engine)
    outcome = do(engine, "turned_off", eid="off")
    assert outcome.state == "turned_off"
    assert outcome.effects == (freed("100.00", "off", LATER),)
    assert engine.get(PROMO).timers == ()


def test_turn_off_while_running_charges_the_spend_and_releases_the_rest(running):
    spend(running, "30.25", at(LATER, hours=1), "s1")
    when = at(LATER, hours=2)
    outcome = do(running, "turned_off", when, eid="off")
    assert outcome.state == "turned_off"
    assert outcome.effects == (charged("30.25", "off", when), freed("69.75", "off", when))


def test_turn_off_while_running_without_spend_releases_all(running):
    outcome = do(running, "turned_off", at(LATER, hours=1), eid="off")
    assert outcome.effects == (freed("100.00", "off", at(LATER, hours=1)),)


def test_turn_off_in_jpy(engine):
    create(engine, "5000", "JPY")
    do(engine, "approved")
    spend(engine, "1234", at(LATER, hours=1), "s1")
    outcome = do(engine, "turned_off", at(LATER, hours=2), eid="off")
    assert [(type(e).__name__, str(e.amount), e.currency) for e in outcome.effects] == [
        ("Charged", "1234", "JPY"), ("HoldReleased", "3766", "JPY")]


@pytest.mark.parametrize("what", ["approved", "not_approved", "turned_off", "spent"])
def test_a_turned_off_promotion_accepts_nothing(running, what):
    do(running, "turned_off", at(LATER, hours=1), eid="off")
    rejected(running, ev("x", at(LATER, hours=2), f"promotion.{what}", PROMO, amount="1.00"),
             "in state turned_off")


# -- end (timer) -----------------------------------------------------------------------
def test_end_in_review_completes_and_releases_the_hold(engine):
    create(engine)
    assert engine.advance_to(END - MICROSECOND) == []
    [fired] = engine.advance_to(END)
    assert (fired.timer, fired.cause, fired.time, fired.state) == ("promotion_end", "c", END, "completed")
    assert fired.effects == (freed("100.00", "c", END),)


def test_end_while_running_charges_the_spend_and_releases_the_rest(running):
    spend(running, "40.00", at(LATER, hours=1), "s1")
    assert running.advance_to(END - MICROSECOND) == []
    [fired] = running.advance_to(END)
    assert (fired.cause, fired.time, fired.state) == ("c", END, "completed")
    assert fired.effects == (charged("40.00", "c", END), freed("60.00", "c", END))
    assert running.get(PROMO).timers == ()


def test_spend_at_the_end_finds_it_completed(running, recorder):
    spend(running, "10.00", at(LATER, hours=1), "s1")
    recorder.clear()
    rejected(running, ev("s2", END, "promotion.spent", PROMO, amount="5.00"),
             "promotion/X1: cannot spend in state completed")
    [fired] = recorder.outcomes
    assert fired.effects == (charged("10.00", "c", END), freed("90.00", "c", END))


def test_turn_off_just_before_the_end_wins(running):
    outcome = do(running, "turned_off", END - MICROSECOND, eid="off")
    assert outcome.state == "turned_off"
    assert running.advance_to(at(END, days=1)) == []


# -- may() and invariants --------------------------------------------------------------
def test_may_spend_is_pure_and_explains_the_refusal(running, recorder):
    spend(running, "50.00", at(LATER, hours=1), "s1")
    before, clock = running.get(PROMO), running.clock
    recorder.clear()
    for amount in (Decimal("60.00"), "60.00"):
        decision = running.may(PROMO, "spend", {"amount": amount})
        assert (decision.allowed, decision.guard) == (False, "within_budget")
        assert decision.reason.endswith("spending 60.00 would exceed the budget: 50.00 of 100.00 USD spent")
    exact = running.may(PROMO, "spend", {"amount": "50.00"})
    assert (exact.allowed, exact.dest) == (True, "completed")
    assert running.may(PROMO, "spend", {"amount": "49.99"}).dest == "running"
    bad = running.may(PROMO, "spend", {"amount": "0"})
    assert (bad.allowed, bad.guard) == (False, "spend_valid")
    missing = running.may(PROMO, "spend")
    assert not missing.allowed and "data.amount is required" in missing.reason
    assert running.get(PROMO) is before and running.clock == clock
    assert recorder.outcomes == []


@settings(max_examples=80, deadline=None)
@given(
    budget=st.integers(1, 10**7),
    spends=st.lists(st.integers(-2, 4 * 10**6), max_size=8),
    finish=st.sampled_from(["turned_off", "end"]),
)
def test_promotion_money_invariants(budget, spends, finish):
    """Whatever is spent: never more than the budget; charged + released == held."""
    engine = Engine()
    effects = []
    engine.subscribe(lambda outcome: effects.extend(outcome.effects))
    create(engine, str(Decimal(budget).scaleb(-2)))
    do(engine, "approved")
    spent = Decimal(0)
    for n, cents in enumerate(spends):
        amount = Decimal(cents).scaleb(-2)
        state = engine.get(PROMO).state
        try:
            spend(engine, str(amount), at(LATER, minutes=n + 1), f"s{n}")
        except EventRejected:
            assert state != "running" or amount <= 0 or spent + amount > Decimal(budget).scaleb(-2)
        else:
            spent += amount
        assert engine.get(PROMO).data["spent"] == spent <= Decimal(budget).scaleb(-2)
    if engine.get(PROMO).state == "running":
        if finish == "turned_off":
            do(engine, "turned_off", at(LATER, hours=1), eid="off")
        else:
            engine.advance_to(END)
    hold = sum(e.amount for e in of(effects, HoldPlaced))
    assert hold == Decimal(budget).scaleb(-2)
    assert sum(e.amount for e in of(effects, Charged)) == spent
    released = sum(e.amount for e in of(effects, HoldReleased))
    assert sum(e.amount for e in of(effects, Charged)) + released == hold
    assert all(e.amount > 0 for e in effects if hasattr(e, "amount"))
