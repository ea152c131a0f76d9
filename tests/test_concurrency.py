"""Concurrency and faults, for real: threads, two processes on one database, SIGKILL.

Every test runs once per backend (:mod:`backends`: a SQLite file, a PostgreSQL database
of the test run's own cluster) and ends with the same audit of the database
(:func:`audit`): a SQLite file is sound, every acknowledged event is stored exactly
once, each entity's versions run 1..n without a gap, no event is stored without its
versions and effects (a replay of the exported log gives the same states, ledger and
number of effects), and every settled order's refund + release is its fee.

All hammering events carry the same time, so the engine's single clock never makes
one thread's event "out of order" against another's: what is contested is the
entities, which is the point.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from backends import Backend

from statemachine.api import Engine
from statemachine.engine import EventRejected, Runtime
from statemachine.envelope import loads, to_event
from statemachine.lifecycles import DOMAIN
from statemachine.replay import replay_path
from statemachine.store import StaleWrite
from statemachine.timeutil import format_instant

T0 = "2026-03-01T10:00:00Z"
T1 = "2026-03-02T10:00:00Z"  # every contested event happens "now"
DEADLINE = "2026-06-01T00:00:00Z"
START = datetime(2026, 3, 1, tzinfo=UTC)
SETTLED = {"approved", "deemed_approved", "expired", "cancelled"}
PROJECTS = [f"P{k}" for k in range(4)]
SHARED = [f"S{k}" for k in range(8)]  # orders every worker touches


def envelope(ident: str, time: str, type_: str, subject: str, **data: Any) -> dict[str, Any]:
    return {"id": ident, "time": time, "type": type_, "subject": subject, **({"data": data} if data else {})}


def setup_events(workers: int) -> list[dict[str, Any]]:
    """Projects, shared orders and each worker's own orders, all at T0."""
    events = [envelope(f"p-{p}", T0, "project.created", f"project/{p}", kind="creator", currency="USD",
                       deadline=DEADLINE) for p in PROJECTS]
    orders = SHARED + [f"W{w}-{k}" for w in range(workers) for k in range(3)]
    for n, order in enumerate(orders):
        events.append(envelope(f"a-{order}", T0, "order.agreed", f"order/{order}",
                               project=PROJECTS[n % len(PROJECTS)], fee=f"{100 + n}.{n % 100:02d}",
                               review="manual"))
    return events


COMMON = [  # the same ids with the same content, posted by every worker: one applies
    envelope(f"c-{k}", T1, "order.agreed", f"order/C{k}", project=PROJECTS[2 + k % 2], fee="10.00",
             review="auto") for k in range(8)
]


def worker_events(worker: int, count: int) -> list[dict[str, Any]]:
    """A seeded mix: deliveries on shared and own orders, the common events, and a
    cancellation (request + accept: refunds cascade to every order of the project)."""
    rng = random.Random(worker)
    events = list(COMMON)
    rng.shuffle(events)
    orders = SHARED + [f"W{worker}-{k}" for k in range(3)]
    whats = ["started", "submitted", "submitted", "approved", "rejected", "resubmitted"]
    for n in range(count):
        ident = f"w{worker}-{n}"
        roll = rng.random()
        if roll < 0.03:  # two of the four projects may be cancelled, the others go on
            events.append(envelope(ident, T1, "project.cancellation_requested",
                                   f"project/{rng.choice(PROJECTS[:2])}", by="advertiser"))
        elif roll < 0.06:
            events.append(envelope(ident, T1, "project.cancellation_accepted",
                                   f"project/{rng.choice(PROJECTS[:2])}", by="provider"))
        else:
            events.append(envelope(ident, T1, f"order.{rng.choice(whats)}", f"order/{rng.choice(orders)}"))
    rng.shuffle(events)
    return events


def apply_all(engine: Engine, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply ``events``; what was acknowledged (ids and steps), duplicates, refusals."""
    acked: list[str] = []
    steps: list[tuple[str, int, str]] = []
    effects = duplicates = refused = stale = 0
    for event in events:
        try:
            outcome = engine.apply(event)
        except EventRejected:
            refused += 1
            continue
        except StaleWrite:
            stale += 1
            continue
        if outcome.duplicate:
            duplicates += 1
            continue
        acked.append(event["id"])
        steps.extend((s.subject, s.version, s.dest) for s in outcome.steps)
        effects += len(outcome.effects)
    return {"acked": acked, "steps": steps, "effects": effects, "duplicates": duplicates,
            "refused": refused, "stale": stale}


def audit(db: Backend, acked: list[str], tmp: Path) -> dict[str, int]:
    """The checks every test here ends with (module docstring); returns row counts."""
    if db.kind == "sqlite":  # PostgreSQL checks its own pages and foreign keys as it writes
        assert db.rows("PRAGMA integrity_check") == [("ok",)]
        assert db.rows("PRAGMA foreign_key_check") == []
    stored = Counter(i for (i,) in db.rows("SELECT id FROM events WHERE kind = 'input'"))
    assert set(stored) == set(acked), (set(acked) - set(stored), set(stored) - set(acked))
    assert max(stored.values(), default=1) == 1 and len(acked) == len(set(acked))
    versions: dict[str, list[int]] = {}
    for subject, version in db.rows("SELECT subject, version FROM versions ORDER BY subject, version"):
        versions.setdefault(subject, []).append(version)
    heads = dict(db.rows("SELECT subject, version FROM heads"))
    for subject, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), (subject, seen)
        assert heads[subject] == len(seen), subject
    assert set(heads) == set(versions)
    assert db.rows("SELECT COUNT(*) FROM events e WHERE NOT EXISTS"
                   " (SELECT 1 FROM versions v WHERE v.seq = e.seq)") == [(0,)]
    effects = db.rows("SELECT COUNT(*) FROM outbox")[0][0]
    pending = db.rows("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")[0][0]
    engine = Engine(store=db.open())
    try:
        clock = engine.export(tmp / "audit.jsonl")
        report = replay_path(tmp / "audit.jsonl", as_of=clock)
        assert report.rejected == () and report.applied == len(acked)
        assert report.entities == {s: e.state for s, e in engine.runtime.entities.items()}
        assert [x.to_dict() for x in report.ledger] == [x.to_dict() for x in engine.ledger()]
        assert reference_effects(tmp / "audit.jsonl", clock) == effects
        money: dict[str, Decimal] = {}
        for line in engine.ledger():
            if line.kind in ("refund", "payment_released"):
                money[line.subject] = money.get(line.subject, Decimal(0)) + line.amount
        for subject, entity in engine.runtime.entities.items():
            if entity.kind == "order":
                expected = entity.data["fee"] if entity.state in SETTLED else Decimal(0)
                assert money.get(subject, Decimal(0)) == expected, (subject, entity.state)
    finally:
        engine.close()
    return {"effects": effects, "pending": pending, "entities": len(heads)}


def reference_effects(log: Path, as_of) -> int:
    """How many effects a plain in-memory runtime emits for the log (timers included)."""
    runtime = Runtime(DOMAIN)
    count = [0]
    runtime.subscribe(lambda outcome: count.__setitem__(0, count[0] + len(outcome.effects)))
    for raw in log.read_bytes().splitlines():
        runtime.apply(to_event(loads(raw)))
    if as_of is not None:
        runtime.advance_to(as_of)
    return count[0]


def prepared(db: Backend, workers: int) -> list[str]:
    with Engine(store=db.open(synchronous="NORMAL")) as engine:
        events = setup_events(workers)
        for event in events:
            engine.apply(event)
    return [e["id"] for e in events]


# -- threads ------------------------------------------------------------------------
@pytest.mark.parametrize("sharing", ["one engine", "an engine per thread"])
def test_eight_threads_hammering_shared_and_own_entities(db, tmp_path, sharing):
    workers = 8
    acked = prepared(db, workers)
    shared = Engine(store=db.open(synchronous="NORMAL")) if sharing == "one engine" else None
    results: list[dict[str, Any]] = [{} for _ in range(workers)]
    barrier = threading.Barrier(workers)

    def run(worker: int) -> None:
        engine = shared or Engine(store=db.open(synchronous="NORMAL"))
        events = worker_events(worker, 60)
        barrier.wait()
        try:
            results[worker] = apply_all(engine, events)
        finally:
            if shared is None:
                engine.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    if shared is not None:
        shared.close()
    hammered = [i for r in results for i in r["acked"]]
    for ident in (e["id"] for e in COMMON):  # one worker applied it, the others heard "duplicate"
        assert hammered.count(ident) == 1
    assert sum(r["duplicates"] for r in results) == (workers - 1) * len(COMMON)
    assert sum(r["stale"] for r in results) == 0  # serialised: nobody decided on stale state
    steps = [s for r in results for s in r["steps"]]
    assert len(steps) == len(set(steps))  # no entity version acknowledged twice
    stored = set(db.rows("SELECT v.subject, v.version, v.state FROM versions v JOIN events e"
                         " ON e.seq = v.seq WHERE e.id LIKE 'w%' OR e.id LIKE 'c-%'"))
    assert stored == set(steps)  # what each thread was told is exactly what is stored
    counts = audit(db, acked + hammered, tmp_path)
    assert counts["effects"] == sum(r["effects"] for r in results) > 0
    assert any(s[2] == "cancelled" for s in steps)  # the cascades really ran


# -- two processes ------------------------------------------------------------------
def _process_writer(db: Backend, worker: int, start, queue) -> None:
    engine = Engine(store=db.open(synchronous="NORMAL"))
    events = worker_events(worker, 60)
    start.wait()
    result = apply_all(engine, events)
    engine.close()
    queue.put(result)


def test_two_processes_writing_one_database(db, tmp_path):
    acked = prepared(db, 2)
    ctx = multiprocessing.get_context("spawn")
    start, queue = ctx.Barrier(2), ctx.Queue()  # both open the file, then both go
    processes = [ctx.Process(target=_process_writer, args=(db, w, start, queue)) for w in range(2)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    hammered = [i for r in results for i in r["acked"]]
    assert all(r["acked"] for r in results)  # both really wrote
    assert sum(r["stale"] for r in results) == 0  # serialised by the write lock + catch-up
    steps = [s for r in results for s in r["steps"]]
    assert len(steps) == len(set(steps))
    counts = audit(db, acked + hammered, tmp_path)
    assert counts["effects"] == sum(r["effects"] for r in results)


# -- SIGKILL mid-stream -------------------------------------------------------------
def crash_stream() -> Iterator[dict[str, Any]]:
    """Endless projects whose orders are delivered or refunded by a cancellation:
    plenty of effects (and a 14-day timer now and then); one minute between events."""
    minutes = (format_instant(START + timedelta(minutes=n)) for n in itertools.count())
    for k in itertools.count():
        p = f"project/K{k}"
        yield envelope(f"k{k}-p", next(minutes), "project.created", p, kind="creator", currency="USD",
                       deadline="2027-01-01T00:00:00Z")
        for o in range(3):
            yield envelope(f"k{k}-a{o}", next(minutes), "order.agreed", f"order/K{k}-{o}", project=f"K{k}",
                           fee=f"{10 + o}.50", review="auto" if o == 0 else "manual")
        yield envelope(f"k{k}-s0", next(minutes), "order.submitted", f"order/K{k}-0")
        yield envelope(f"k{k}-s1", next(minutes), "order.submitted", f"order/K{k}-1")
        if k % 2:
            yield envelope(f"k{k}-r", next(minutes), "project.cancellation_requested", p, by="advertiser")
            yield envelope(f"k{k}-c", next(minutes), "project.cancellation_accepted", p, by="provider")


def _crashing_writer(db: Backend, conn) -> None:
    engine = Engine(store=db.open())  # SQLite: synchronous=FULL, the default
    for n, event in enumerate(crash_stream()):
        engine.apply(event)
        conn.send(event["id"])  # acknowledged: the commit has returned
        if n % 7 == 6:  # delivers fewer effects than the stream makes: some always pending
            engine.drain(lambda item: None, limit=2)


def test_sigkill_mid_stream_loses_no_acknowledged_event_and_half_applies_none(db, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_crashing_writer, args=(db, sender))
    child.start()
    sender.close()
    acked: list[str] = []
    while len(acked) < 300:
        assert receiver.poll(60), "the child stopped acknowledging"
        acked.append(receiver.recv())
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    while receiver.poll(0):  # acknowledgements sent before it died
        try:
            acked.append(receiver.recv())
        except EOFError:
            break
    stored = [i for (i,) in db.rows("SELECT id FROM events WHERE kind = 'input' ORDER BY seq")]
    assert stored[: len(acked)] == acked  # in order, none lost
    assert len(stored) - len(acked) <= 1  # at most the one committed but not yet acknowledged
    counts = audit(db, stored, tmp_path)
    assert 0 < counts["pending"] < counts["effects"]  # some delivered before the kill, the rest kept
    engine = Engine(store=db.open())
    delivered: list[str] = []
    while engine.drain(lambda item: delivered.append(item.effect_id), limit=50):
        pass
    assert len(delivered) == len(set(delivered)) == counts["pending"]
    assert engine.store.stats()["pending"] == 0
    # and the engine goes on where the child stopped
    following = itertools.islice(crash_stream(), len(stored), len(stored) + 8)
    assert all(not engine.apply(e).duplicate for e in following)
    engine.close()
