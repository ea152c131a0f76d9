"""The peer ways of replaying a generated log, for issue 5's comparison.

Each variant reads the same JSON Lines log, keeps a record per entity and reaches the
final state of every entity and the money totals per currency, which ``run.py``
compares with our engine's report. The variants differ only in how a state transition
is done, which is what the benchmark compares:

``transitions-per-entity``  a ``transitions.Machine`` built for every entity (what most
                           users write: ``Machine(model=self, ...)`` in the constructor);
``transitions-add-model``   one ``Machine`` per kind, ``add_model`` per entity (its model
                           list is scanned on every add: quadratic, so ``run.py`` runs it
                           on a smaller log and says so);
``python-statemachine``    one ``StateMachine`` instance per entity (the PyPI package
                           imports as ``statemachine`` like ours: run it with the
                           interpreter of ``benchmarks/.venv-peers``, never ours);
``transitions-shared``     one ``Machine(model=None)`` per kind and slotted records,
                           triggered through ``machine.events[name].trigger(record)``
                           (the library's fast path for many models);
``dict-table``             a hand-written ``(state, trigger) -> state`` dict, no
                           validation: the floor of a state machine in Python;
``orjson-parse``           parsing the lines and nothing else: the floor of any replay.

The money rules are the few the generated log needs (``generate.py``): orders (fee
released on approval, deemed approval 14 days after the latest submission, expiry at
the content deadline with a full refund), creator-project cancellations refunded by
the stage of each order at the request (90/50/100/0 %), and promotions (hold, spend,
charge, release). They are written once, in :class:`Replay`, for every variant; a
partner-project cancellation is refused loudly, since the generator never makes one.

``python benchmarks/peers.py VARIANT LOG [--dump FILE]`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import dump, summary  # a sibling module, found from any cwd

__all__ = ["VARIANTS", "Replay", "main"]

# -- the machines, as data: every backend is built from these -----------------------------
INITIAL = {"project": "active", "order": "agreed", "promotion": "in_review"}
STATES = {
    "project": ("active", "cancellation_pending", "cancelled", "completed"),
    "order": ("agreed", "in_progress", "submitted", "rejected", "approved", "deemed_approved",
              "expired", "cancelled"),
    "promotion": ("in_review", "running", "not_approved", "turned_off", "completed"),
}
FINAL = {
    "project": ("cancelled", "completed"),
    "order": ("approved", "deemed_approved", "expired", "cancelled"),
    "promotion": ("not_approved", "turned_off", "completed"),
}
TRANSITIONS: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    "project": (
        ("request_cancellation", ("active",), "cancellation_pending"),
        ("accept_cancellation", ("cancellation_pending",), "cancelled"),
        ("decline_cancellation", ("cancellation_pending",), "active"),
        ("withdraw_cancellation", ("cancellation_pending",), "active"),
        ("complete", ("active",), "completed"),
    ),
    "order": (
        ("start", ("agreed",), "in_progress"),
        ("submit", ("agreed", "in_progress"), "submitted"),
        ("auto_approve", ("agreed", "in_progress"), "approved"),
        ("approve", ("submitted",), "approved"),
        ("reject", ("submitted",), "rejected"),
        ("resubmit", ("rejected",), "submitted"),
        ("deem", ("submitted",), "deemed_approved"),
        ("expire", ("agreed", "in_progress", "rejected"), "expired"),
        ("cancel", ("agreed", "in_progress", "submitted", "rejected"), "cancelled"),
    ),
    "promotion": (
        ("approve", ("in_review",), "running"),
        ("not_approve", ("in_review",), "not_approved"),
        ("spend", ("running",), "running"),
        ("spend_all", ("running",), "completed"),
        ("turn_off", ("in_review", "running"), "turned_off"),
        ("end", ("in_review", "running"), "completed"),
    ),
}

# -- the money rules the generated log needs ------------------------------------------------
DEEMED_AFTER = timedelta(days=14)
QUANTUM = {"USD": Decimal("0.01"), "EUR": Decimal("0.01"), "GBP": Decimal("0.01"), "JPY": Decimal(1)}
HUNDRED = Decimal(100)
#: Order states a project cancellation leaves alone (their money is decided).
KEEPS = frozenset({"approved", "deemed_approved", "expired", "cancelled"})
EXPIRES = frozenset({"agreed", "in_progress", "rejected"})
#: Creator project: refund percent by (the order's state at the request, requested by).
CREATOR_REFUND = {
    **{(s, "advertiser"): 90 for s in ("agreed", "in_progress")},
    **{(s, "provider"): 100 for s in ("agreed", "in_progress")},
    **{(s, "advertiser"): 50 for s in ("submitted", "rejected")},
    **{(s, "provider"): 100 for s in ("submitted", "rejected")},
    **{(s, by): 0 for s in ("approved", "deemed_approved") for by in ("advertiser", "provider")},
}


# -- entity records (slotted: the shared-machine and dict variants keep state in them) ----
class ProjectRecord:
    __slots__ = ("currency", "deadline", "kind", "machine", "orders", "requested_by", "stages",
                 "state")

    def __init__(self, kind: str, currency: str, deadline: datetime) -> None:
        self.kind, self.currency, self.deadline = kind, currency, deadline
        self.orders: list[OrderRecord] = []
        self.requested_by: str | None = None
        self.stages: list[str] | None = None
        self.state = "active"
        self.machine: Any = None


class OrderRecord:
    __slots__ = ("fee", "machine", "project", "review", "state", "submitted_at")

    def __init__(self, project: ProjectRecord, fee: Decimal, review: str) -> None:
        self.project, self.fee, self.review = project, fee, review
        self.submitted_at: datetime | None = None
        self.state = "agreed"
        self.machine: Any = None


class PromotionRecord:
    __slots__ = ("budget", "currency", "machine", "spent", "state")

    def __init__(self, currency: str, budget: Decimal) -> None:
        self.currency, self.budget, self.spent = currency, budget, Decimal(0)
        self.state = "in_review"
        self.machine: Any = None


Record = ProjectRecord | OrderRecord | PromotionRecord


# -- backends: how a transition is done --------------------------------------------------
class Backend:
    """Creates an entity's machinery, fires a trigger on it, reads its state."""

    name = "?"

    def create(self, kind: str, record: Record) -> None:
        raise NotImplementedError

    def fire(self, kind: str, record: Record, trigger: str) -> None:
        raise NotImplementedError

    def state(self, record: Record) -> str:
        return record.state


def _transitions_spec(kind: str) -> dict[str, Any]:
    return {
        "states": list(STATES[kind]),
        "transitions": [{"trigger": t, "source": list(src), "dest": dst}
                        for t, src, dst in TRANSITIONS[kind]],
        "auto_transitions": False,
    }


class _Model:
    """A plain model object, as ``transitions`` users write them (it gets a ``__dict__``
    full of bound trigger methods)."""


class TransitionsPerEntity(Backend):
    name = "transitions-per-entity"

    def __init__(self) -> None:
        from transitions import Machine

        self.Machine = Machine
        self.specs = {kind: _transitions_spec(kind) for kind in STATES}

    def create(self, kind: str, record: Record) -> None:
        model = _Model()
        self.Machine(model=model, initial=INITIAL[kind], **self.specs[kind])
        record.machine = model

    def fire(self, kind: str, record: Record, trigger: str) -> None:
        getattr(record.machine, trigger)()

    def state(self, record: Record) -> str:
        return record.machine.state


class TransitionsAddModel(TransitionsPerEntity):
    name = "transitions-add-model"

    def __init__(self) -> None:
        super().__init__()
        self.machines = {kind: self.Machine(model=None, initial=INITIAL[kind], **self.specs[kind])
                         for kind in STATES}

    def create(self, kind: str, record: Record) -> None:
        model = _Model()
        self.machines[kind].add_model(model, initial=INITIAL[kind])
        record.machine = model


class TransitionsShared(Backend):
    name = "transitions-shared"

    def __init__(self) -> None:
        from transitions import Machine

        self.events = {
            kind: {name: event.trigger for name, event in
                   Machine(model=None, initial=INITIAL[kind], **_transitions_spec(kind)).events.items()}
            for kind in STATES
        }

    def create(self, kind: str, record: Record) -> None:
        pass  # the record's own ``state`` slot is the model attribute

    def fire(self, kind: str, record: Record, trigger: str) -> None:
        self.events[kind][trigger](record)


class DictTable(Backend):
    name = "dict-table"

    def __init__(self) -> None:
        self.table = {kind: {(src, trigger): dst for trigger, sources, dst in TRANSITIONS[kind]
                             for src in sources} for kind in STATES}

    def create(self, kind: str, record: Record) -> None:
        pass

    def fire(self, kind: str, record: Record, trigger: str) -> None:
        record.state = self.table[kind][(record.state, trigger)]


class PythonStatemachine(Backend):
    name = "python-statemachine"

    def __init__(self) -> None:
        import statemachine

        here = Path(__file__).resolve().parent.parent
        if Path(statemachine.__file__).resolve().is_relative_to(here / "statemachine"):
            raise SystemExit("python-statemachine: this interpreter imports OUR statemachine "
                             "package; run it with benchmarks/.venv-peers/bin/python")
        self.classes = {kind: _statechart_class(statemachine, kind) for kind in STATES}

    def create(self, kind: str, record: Record) -> None:
        record.machine = self.classes[kind]()

    def fire(self, kind: str, record: Record, trigger: str) -> None:
        record.machine.send(trigger)

    def state(self, record: Record) -> str:
        return record.machine.model.state


def _statechart_class(lib: Any, kind: str) -> type:
    """A ``python-statemachine`` class built from the same data as the other backends."""
    states = {name: lib.State(name=name, value=name, initial=name == INITIAL[kind],
                              final=name in FINAL[kind]) for name in STATES[kind]}
    namespace: dict[str, Any] = dict(states)
    for trigger, sources, dest in TRANSITIONS[kind]:
        transition = None
        for source in sources:
            step = states[source].to(states[dest]) if source != dest else states[source].to.itself()
            transition = step if transition is None else transition | step
        namespace[trigger] = transition
    return type(f"{kind.title()}Machine", (lib.StateMachine,), namespace)


BACKENDS: dict[str, Callable[[], Backend]] = {
    b.name: b for b in (TransitionsPerEntity, TransitionsAddModel, PythonStatemachine,
                        TransitionsShared, DictTable)
}
VARIANTS = (*BACKENDS, "orjson-parse")


# -- the replay: parse, fire due timers, apply, book the money -------------------------------
class Replay:
    """The same driver for every backend; only ``backend.fire`` differs."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.records: dict[str, Record] = {}
        self.kinds: dict[str, str] = {}
        self.timers: list[tuple[datetime, int, str, str, Any]] = []
        self.seq = 0
        self.money: dict[tuple[str, str], Decimal] = {}
        self.handlers: dict[str, Callable[[str, dict, datetime], None]] = {
            name.replace("_", ".", 1): getattr(self, name) for name in dir(self)
            if name.startswith(("project_", "order_", "promotion_"))
        }

    # bookkeeping
    def book(self, currency: str, kind: str, amount: Decimal) -> None:
        if amount:
            key = (currency, kind)
            self.money[key] = self.money.get(key, 0) + amount

    def arm(self, due: datetime, subject: str, what: str, stamp: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (due, self.seq, subject, what, stamp))

    def new(self, subject: str, kind: str, record: Record) -> None:
        self.backend.create(kind, record)
        self.records[subject] = record
        self.kinds[subject] = kind

    def fire(self, subject: str, trigger: str) -> Record:
        record = self.records[subject]
        self.backend.fire(self.kinds[subject], record, trigger)
        return record

    # timers
    def due(self, moment: datetime) -> None:
        timers, state = self.timers, self.backend.state
        while timers and timers[0][0] <= moment:
            _, _, subject, what, stamp = heapq.heappop(timers)
            record = self.records[subject]
            current = state(record)
            if what == "deem":
                if current == "submitted" and record.submitted_at == stamp:
                    self.fire(subject, "deem")
                    self.book(record.project.currency, "payment_released", record.fee)
            elif what == "expire":
                if current in EXPIRES:
                    self.fire(subject, "expire")
                    self.book(record.project.currency, "refund", record.fee)
            elif current in ("in_review", "running"):  # promotion end
                self.fire(subject, "end")
                self.settle(record)

    # projects
    def project_created(self, subject: str, data: dict, t: datetime) -> None:
        self.new(subject, "project", ProjectRecord(data["kind"], data["currency"],
                                                   datetime.fromisoformat(data["deadline"])))

    def project_cancellation_requested(self, subject: str, data: dict, t: datetime) -> None:
        record = self.fire(subject, "request_cancellation")
        if record.kind != "creator":
            raise SystemExit(f"{subject}: partner-project cancellations are not implemented by the peers")
        record.requested_by = data["by"]
        record.stages = [self.backend.state(o) for o in record.orders]

    def project_cancellation_accepted(self, subject: str, data: dict, t: datetime) -> None:
        record = self.fire(subject, "accept_cancellation")
        state, quantum = self.backend.state, QUANTUM[record.currency]
        for index, order in enumerate(record.orders):
            current = state(order)
            if current in KEEPS:
                continue
            stage = record.stages[index] if index < len(record.stages) else current
            percent = CREATOR_REFUND[(stage, record.requested_by)]
            refund = (order.fee * percent / HUNDRED).quantize(quantum, ROUND_HALF_UP)
            self.backend.fire("order", order, "cancel")
            self.book(record.currency, "refund", refund)
            self.book(record.currency, "payment_released", order.fee - refund)

    def project_cancellation_declined(self, subject: str, data: dict, t: datetime) -> None:
        record = self.fire(subject, "decline_cancellation")
        record.requested_by = record.stages = None

    def project_cancellation_withdrawn(self, subject: str, data: dict, t: datetime) -> None:
        record = self.fire(subject, "withdraw_cancellation")
        record.requested_by = record.stages = None

    def project_completed(self, subject: str, data: dict, t: datetime) -> None:
        self.fire(subject, "complete")

    # orders
    def order_agreed(self, subject: str, data: dict, t: datetime) -> None:
        project = self.records["project/" + data["project"]]
        order = OrderRecord(project, Decimal(data["fee"]), data["review"])
        self.new(subject, "order", order)
        project.orders.append(order)
        self.arm(project.deadline, subject, "expire")

    def order_started(self, subject: str, data: dict, t: datetime) -> None:
        self.fire(subject, "start")

    def order_submitted(self, subject: str, data: dict, t: datetime) -> None:
        order = self.records[subject]
        if order.review == "auto":
            self.fire(subject, "auto_approve")
            self.book(order.project.currency, "payment_released", order.fee)
            return
        self.fire(subject, "submit")
        order.submitted_at = t
        self.arm(t + DEEMED_AFTER, subject, "deem", t)

    def order_resubmitted(self, subject: str, data: dict, t: datetime) -> None:
        order = self.fire(subject, "resubmit")
        order.submitted_at = t
        self.arm(t + DEEMED_AFTER, subject, "deem", t)

    def order_approved(self, subject: str, data: dict, t: datetime) -> None:
        order = self.fire(subject, "approve")
        self.book(order.project.currency, "payment_released", order.fee)

    def order_rejected(self, subject: str, data: dict, t: datetime) -> None:
        order = self.fire(subject, "reject")
        self.arm(order.project.deadline, subject, "expire")

    # promotions
    def promotion_created(self, subject: str, data: dict, t: datetime) -> None:
        budget = Decimal(data["budget"])
        self.new(subject, "promotion", PromotionRecord(data["currency"], budget))
        self.book(data["currency"], "hold_placed", budget)
        self.arm(datetime.fromisoformat(data["end"]), subject, "end")

    def promotion_approved(self, subject: str, data: dict, t: datetime) -> None:
        self.fire(subject, "approve")

    def promotion_not_approved(self, subject: str, data: dict, t: datetime) -> None:
        promo = self.fire(subject, "not_approve")
        self.book(promo.currency, "hold_released", promo.budget)

    def promotion_spent(self, subject: str, data: dict, t: datetime) -> None:
        promo = self.records[subject]
        promo.spent += Decimal(data["amount"])
        if promo.spent == promo.budget:
            self.fire(subject, "spend_all")
            self.settle(promo)
        else:
            self.fire(subject, "spend")

    def promotion_turned_off(self, subject: str, data: dict, t: datetime) -> None:
        self.settle(self.fire(subject, "turn_off"))

    def settle(self, promo: PromotionRecord) -> None:
        self.book(promo.currency, "charge", promo.spent)
        self.book(promo.currency, "hold_released", promo.budget - promo.spent)

    # the loop
    def run(self, path: str | Path) -> int:
        loads, parse_time, handlers, due = orjson.loads, datetime.fromisoformat, self.handlers, self.due
        timers = self.timers
        count = 0
        with open(path, "rb") as stream:
            for raw in stream:
                if raw.isspace():
                    continue
                count += 1
                envelope = loads(raw)
                moment = parse_time(envelope["time"])
                if timers and timers[0][0] <= moment:
                    due(moment)
                handlers[envelope["type"]](envelope["subject"], envelope.get("data"), moment)
        return count

    def outcome(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        state = self.backend.state
        states = {subject: state(record) for subject, record in self.records.items()}
        totals: dict[str, dict[str, str]] = {}
        for (currency, kind), amount in self.money.items():
            totals.setdefault(currency, {})[kind] = str(amount.quantize(QUANTUM[currency]))
        return states, totals


def parse_only(path: str | Path) -> int:
    loads, count = orjson.loads, 0
    with open(path, "rb") as stream:
        for raw in stream:
            if raw.isspace():
                continue
            loads(raw)
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay a generated log the peer way.")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("log")
    parser.add_argument("--dump", help="also write every final state and the totals here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.variant == "orjson-parse":
        events = parse_only(args.log)
        seconds = time.perf_counter() - started
        states: dict[str, str] = {}
        totals: dict[str, dict[str, str]] = {}
    else:
        replay = Replay(BACKENDS[args.variant]())
        events = replay.run(args.log)
        states, totals = replay.outcome()
        seconds = time.perf_counter() - started
    if args.dump:
        dump(args.dump, states, totals)
    print(orjson.dumps(summary(args.variant, events, seconds, states, totals)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
