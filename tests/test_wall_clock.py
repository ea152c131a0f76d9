"""Timers on the wall clock (issue 16): the real uvicorn server, on SQLite and on
PostgreSQL, with an injected clock moved by 14 days, never a sleep of 14 days.

An order goes to submission; the clock moves 14 days; the fee is released with no
further request. Two app instances on one database fire the timer once. The ledger the
service wrote is what ``export()`` + ``replay --as-of`` reproduce.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from live import STORY_SKEW, FakeClock, Live, wait_until

from statemachine.replay import replay_path
from statemachine.service import create_app
from statemachine.timeutil import format_instant

T0 = datetime(2031, 3, 1, 10, tzinfo=UTC)


def at(**delta: float) -> str:
    return format_instant(T0 + timedelta(**delta))


def story(client, order: str = "O-1") -> None:
    """A project, an order agreed for manual review, and its submission."""
    events = [
        {"id": "p1", "time": at(), "type": "project.created", "subject": "project/P-1",
         "data": {"kind": "creator", "currency": "USD", "deadline": "2031-06-01T00:00:00Z"}},
        {"id": "a1", "time": at(hours=1), "type": "order.agreed", "subject": f"order/{order}",
         "data": {"project": "P-1", "fee": "250.00", "review": "manual"}},
        {"id": "s1", "time": at(hours=2), "type": "order.submitted", "subject": f"order/{order}"},
    ]
    for event in events:
        response = client.post("/events", json=event)
        assert response.status_code == 200, response.text


def state(client, subject: str) -> str:
    return client.get(f"/entities/{subject}").json()["state"]


def test_the_fee_is_released_on_day_14_with_no_further_request(db, tmp_path):
    clock = FakeClock(T0)
    app = create_app(db.target, clock=clock, drain_interval=None, timer_interval=0.02,
                     clock_skew=STORY_SKEW)
    with Live(app) as client:
        story(client)
        clock.move(hours=2, minutes=1)
        ticks = app.state.timers.ticks
        wait_until(lambda: app.state.timers.ticks > ticks + 2, "a few ticks")
        assert state(client, "order/O-1") == "submitted"  # not due yet: nothing fired
        assert client.get("/ledger").json()["ledger"] == []
        clock.move(days=14)  # now past the deemed approval, due at submission + 14 days
        wait_until(lambda: state(client, "order/O-1") == "deemed_approved", "the timer to fire")
        ledger = client.get("/ledger").json()["ledger"]
        assert ledger == [{"time": at(days=14, hours=2), "kind": "payment_released",
                           "subject": "order/O-1", "amount": "250.00", "currency": "USD",
                           "cause": "s1"}]
        # The recorded clock entry: what the service fired, a replay of its export fires too.
        exported = app.state.engine.export(tmp_path / "export.jsonl")
        assert exported == T0 + timedelta(days=14, hours=2)  # the clock went to the due time
        # An event stamped after the timer but before the wall clock is still in order.
        assert client.post("/events", json={"id": "p2", "time": at(days=14, hours=3),
                                            "type": "project.completed", "subject": "project/P-1"}
                           ).status_code == 200
        assert client.get("/health").json()["clock"] == at(days=14, hours=3)
        report = replay_path(tmp_path / "export.jsonl", as_of=exported)
        assert [line.to_dict() for line in report.ledger] == ledger
        assert report.entities["order/O-1"] == "deemed_approved"
        # An event older than the clock is refused, and the problem says the clock.
        late = client.post("/events", json={"id": "late", "time": at(days=3), "type": "order.approved",
                                            "subject": "order/O-1"})
        assert late.status_code == 409
        assert late.json()["clock"] == at(days=14, hours=3)
        assert late.json()["type"].endswith("out-of-order")


def test_two_instances_on_one_database_fire_a_timer_once(db):
    clock = FakeClock(T0)
    apps = [create_app(db.target, clock=clock, drain_interval=None, timer_interval=0.02,
                     clock_skew=STORY_SKEW)
            for _ in range(2)]
    with Live(apps[0]) as first, Live(apps[1]) as second:
        story(first)
        assert state(second, "order/O-1") == "submitted"  # one database
        clock.move(days=14, hours=3)
        wait_until(lambda: state(second, "order/O-1") == "deemed_approved", "the timer to fire")
        ticks = [app.state.timers.ticks for app in apps]
        wait_until(lambda: all(app.state.timers.ticks > n + 3 for app, n in zip(apps, ticks, strict=True)),
                   "both instances to tick again")
        assert db.rows("SELECT kind, cause, type FROM events WHERE kind = 'timer'") == [
            ("timer", "s1", "timer.deemed_approval")]
        for client in (first, second):
            lines = client.get("/ledger").json()["ledger"]
            assert [(x["kind"], x["amount"]) for x in lines] == [("payment_released", "250.00")]


def test_a_naive_clock_is_refused_loudly():
    from statemachine.service.clock import read_clock

    with pytest.raises(TypeError, match="aware datetime"):
        read_clock(lambda: datetime(2031, 1, 1))
    assert read_clock(lambda: datetime(2031, 1, 1, tzinfo=UTC)) == datetime(2031, 1, 1, tzinfo=UTC)
