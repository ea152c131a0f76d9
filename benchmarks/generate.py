"""A seeded generator of a realistic event log in the format of ``event-log.md``.

Why a generator and not a file: the benchmark needs logs of any size, identical for
every variant and every run, that our engine replays without a single rejection, and
whose outcome the peers can reach with a few money rules. So the log is built from
plans that keep to those rules:

* projects (creator and partner; USD, EUR, JPY, GBP) with 1-23 orders each;
* orders are agreed, sometimes started, mostly submitted; a manual review is answered
  (approve / reject, then resubmit) or, most often, left to the 14-day deemed approval
  timer; orders never submitted, or rejected and never resubmitted, expire at the
  project's content deadline (100 % refund);
* some creator projects get a cancellation request: accepted (refunds by the stage of
  each order at the request), declined or withdrawn; partner projects are never
  cancelled (the peers need not implement winding down);
* some projects whose orders all settled are completed;
* promotions (one per ~150 orders): approved and spent, then turned off, spent up to the
  budget, or run to their end timer; a few are refused or never reviewed.

Times never go back; within one entity they strictly increase, and no event lands on
a moment where one of its own timers is due, so the outcome never hangs on a tie.

``--stretch K`` keeps the very same entities (same plans) and makes the log about K
times longer with events that move no money: extra reject/resubmit rounds on manually
reviewed orders, and promotion spends split into many smaller spends of the same sum.
It is the "10x longer log over the same entities" of issue 5.

``python benchmarks/generate.py --orders 100000 --out benchmarks/out/log.jsonl``
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["generate", "main", "write_log"]

MINUTE = 60
HOUR = 3600
DAY = 86400
DEEMED_AFTER = 14 * DAY
#: 2026-01-01T00:00:00Z: every time is a whole number of seconds after this.
EPOCH = 1767225600

CURRENCIES = ("USD", "EUR", "JPY", "GBP")
CURRENCY_WEIGHTS = (50, 30, 15, 5)
MINOR_UNITS = {"USD": 2, "EUR": 2, "JPY": 0, "GBP": 2}
#: Gap between two events of one promotion, at least: room for split spends.
PROMOTION_GAP = 2 * HOUR
#: Split spends of a stretched log are this many seconds apart.
SPLIT_STEP = 4
#: Reject/resubmit rounds of a stretched log fit in this window after a submission.
ROUNDS_WINDOW = 20 * HOUR


# -- plans: every random choice is drawn here, once, whatever the stretch ----------------
@dataclass(slots=True)
class OrderPlan:
    oid: str
    agree: int
    fee: int  # minor units
    review: str
    start: int | None = None
    submit: int | None = None
    #: explicit answers after the first submission: ("approve"|"reject"|"resubmit", t)
    answers: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class ProjectPlan:
    pid: str
    kind: str
    currency: str
    created: int
    deadline: int
    orders: list[OrderPlan] = field(default_factory=list)
    #: (requested at, by, "accepted"|"declined"|"withdrawn", answered at)
    cancellation: tuple[int, str, str, int] | None = None
    complete_gap: int | None = None  # completed this long after every order settled


@dataclass(slots=True)
class PromotionPlan:
    prid: str
    created: int
    currency: str
    budget: int  # minor units
    end: int
    review: tuple[str, int] | None = None  # ("approve"|"not_approve", t)
    spends: list[tuple[int, int]] = field(default_factory=list)  # (t, amount)
    final: tuple[str, int, int] | None = None  # ("turn_off"|"spend_all", t, amount)


def _money(units: int, currency: str) -> str:
    decimals = MINOR_UNITS[currency]
    if not decimals:
        return str(units)
    text = str(units).rjust(decimals + 1, "0")
    return f"{text[:-decimals]}.{text[-decimals:]}"


def _stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + seconds))


def _plan_order(rng: random.Random, oid: str, project: ProjectPlan) -> OrderPlan:
    currency, deadline = project.currency, project.deadline
    agree = project.created + rng.randint(10 * MINUTE, 5 * DAY)
    fee = rng.randint(5_000, 500_000) if currency == "JPY" else rng.randint(5_000, 300_000)
    order = OrderPlan(oid, agree, fee, "auto" if rng.random() < 0.12 else "manual")
    last_submission = deadline - 2 * DAY
    if rng.random() < 0.08:  # never submitted: expires at the content deadline
        if rng.random() < 0.15:
            order.start = rng.randint(agree + HOUR, last_submission)
        return order
    submit = min(agree + rng.randint(DAY, 25 * DAY), last_submission)
    if rng.random() < 0.02:
        order.start = rng.randint(agree + MINUTE, submit - MINUTE)
    order.submit = submit
    if order.review == "auto":
        return order
    pick = rng.random()
    if pick < 0.15:
        order.answers.append(("approve", submit + rng.randint(HOUR, 13 * DAY)))
    elif pick < 0.25:  # rejected; mostly resubmitted before the deadline
        rejected = submit + rng.randint(HOUR, 7 * DAY)
        order.answers.append(("reject", rejected))
        resubmitted = rejected + rng.randint(HOUR, 5 * DAY)
        if rng.random() < 0.75 and resubmitted < deadline - DAY:
            order.answers.append(("resubmit", resubmitted))
            if rng.random() < 0.3:
                order.answers.append(("approve", resubmitted + rng.randint(HOUR, 13 * DAY)))
    # else: no answer, deemed approved 14 days after the (latest) submission
    return order


def _plan_project(rng: random.Random, number: int, created: int, n_orders: int,
                  next_order: int) -> ProjectPlan:
    kind = "creator" if rng.random() < 0.7 else "partner"
    currency = rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0]
    deadline = created + rng.randint(35 * DAY, 60 * DAY)
    project = ProjectPlan(f"P-{number:06d}", kind, currency, created, deadline)
    project.orders = [_plan_order(rng, f"O-{next_order + i:07d}", project) for i in range(n_orders)]
    if kind == "creator" and rng.random() < 0.08:
        requested = max(o.agree for o in project.orders) + rng.randint(HOUR, 20 * DAY)
        by = "advertiser" if rng.random() < 0.6 else "provider"
        pick = rng.random()
        outcome = "accepted" if pick < 0.75 else "declined" if pick < 0.9 else "withdrawn"
        project.cancellation = (requested, by, outcome, requested + rng.randint(HOUR, 5 * DAY))
    elif rng.random() < 0.15:
        project.complete_gap = rng.randint(HOUR, 3 * DAY)
    return project


def _plan_promotion(rng: random.Random, number: int, created: int) -> PromotionPlan:
    currency = rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0]
    budget = rng.randint(50, 1500) * 100 if currency == "JPY" else rng.randint(5_000, 100_000)
    end = created + rng.randint(5 * DAY, 30 * DAY)
    promo = PromotionPlan(f"PR-{number:05d}", created, currency, budget, end)
    pick = rng.random()
    if pick < 0.05:  # never reviewed: the end timer completes it, nothing charged
        return promo
    reviewed = created + rng.randint(30 * MINUTE, 2 * DAY)
    if pick < 0.15:
        promo.review = ("not_approve", reviewed)
        return promo
    promo.review = ("approve", reviewed)
    moment, spent = reviewed, 0
    for _ in range(rng.randint(1, 6)):
        moment += rng.randint(PROMOTION_GAP, 2 * DAY)
        amount = max(1, int(budget * rng.uniform(0.02, 0.15)))
        if moment >= end - 2 * PROMOTION_GAP or spent + amount >= budget:
            break
        promo.spends.append((moment, amount))
        spent += amount
    moment += rng.randint(PROMOTION_GAP, DAY)
    if moment < end - PROMOTION_GAP:
        pick = rng.random()
        if pick < 0.4:
            promo.final = ("turn_off", moment, 0)
        elif pick < 0.65:
            promo.final = ("spend_all", moment, budget - spent)
    return promo


def plan(orders: int, seed: int) -> list[ProjectPlan | PromotionPlan]:
    """Every entity's plan, in order of creation time. Deterministic for a seed."""
    rng = random.Random(seed)
    plans: list[ProjectPlan | PromotionPlan] = []
    moment, number, promotions, made = 0, 0, 0, 0
    while made < orders:
        moment += rng.randint(1, 30 * MINUTE)
        if rng.random() < 0.06:
            promotions += 1
            plans.append(_plan_promotion(rng, promotions, moment))
            continue
        number += 1
        n = min(rng.randint(1, 23), orders - made)
        plans.append(_plan_project(rng, number, moment, n, made + 1))
        made += n
    return plans


# -- rendering: plans (and a stretch) to timed events ------------------------------------
Timed = tuple[int, str, str, dict | None]  # (t, type, subject, data)


_ANSWER_TYPES = {"approve": "order.approved", "reject": "order.rejected",
                 "resubmit": "order.resubmitted"}


def _order_events(order: OrderPlan, project: ProjectPlan, rounds: int) -> tuple[list[Timed], int]:
    """The order's events and the moment its money is settled (no cancellation)."""
    subject = f"order/{order.oid}"
    events: list[Timed] = [(order.agree, "order.agreed", subject,
                            {"project": project.pid, "fee": _money(order.fee, project.currency),
                             "review": order.review})]
    if order.start is not None:
        events.append((order.start, "order.started", subject, None))
    if order.submit is None:
        return events, project.deadline
    events.append((order.submit, "order.submitted", subject, None))
    if order.review == "auto":
        return events, order.submit
    shift = 0
    if rounds:
        step = max(1, ROUNDS_WINDOW // (2 * rounds))
        for i in range(rounds):
            events.append((order.submit + (2 * i + 1) * step, "order.rejected", subject, None))
            events.append((order.submit + (2 * i + 2) * step, "order.resubmitted", subject, None))
        shift = 2 * rounds * step
    last_submission, last = order.submit + shift, "submit"
    for what, moment in order.answers:
        events.append((moment + shift, _ANSWER_TYPES[what], subject, None))
        last = what
        if what == "resubmit":
            last_submission = moment + shift
    moment = events[-1][0]
    if last == "approve":
        return events, moment
    if last == "reject":  # never resubmitted: expires at the deadline (or at once if later)
        return events, max(project.deadline, moment)
    return events, last_submission + DEEMED_AFTER


def _project_events(project: ProjectPlan, rounds_of: dict[str, int]) -> list[Timed]:
    subject = f"project/{project.pid}"
    events: list[Timed] = [(project.created, "project.created", subject,
                            {"kind": project.kind, "currency": project.currency,
                             "deadline": _stamp(project.deadline)})]
    settled = project.created
    cutoff = None
    if project.cancellation is not None:
        requested, by, outcome, answered = project.cancellation
        other = "provider" if by == "advertiser" else "advertiser"
        events.append((requested, "project.cancellation_requested", subject,
                       {"by": by, "reason": "the campaign was called off"}))
        if outcome == "accepted":
            events.append((answered, "project.cancellation_accepted", subject, {"by": other}))
            cutoff = answered
        elif outcome == "declined":
            events.append((answered, "project.cancellation_declined", subject, {"by": other}))
        else:
            events.append((answered, "project.cancellation_withdrawn", subject, {"by": by}))
    for order in project.orders:
        order_events, done = _order_events(order, project, rounds_of.get(order.oid, 0))
        if cutoff is not None:  # nothing happens to an order once its project is cancelled
            order_events = [e for e in order_events if e[0] < cutoff]
        events.extend(order_events)
        settled = max(settled, done)
    if project.complete_gap is not None:
        events.append((settled + project.complete_gap, "project.completed", subject, None))
    events.sort(key=lambda e: e[0])  # stable: an entity's own events keep their order
    return events


def _promotion_events(promo: PromotionPlan, split: int) -> list[Timed]:
    subject = f"promotion/{promo.prid}"
    cur = promo.currency
    events: list[Timed] = [(promo.created, "promotion.created", subject,
                            {"budget": _money(promo.budget, cur), "currency": cur,
                             "end": _stamp(promo.end)})]
    if promo.review is not None:
        what, moment = promo.review
        events.append((moment, "promotion.approved" if what == "approve" else "promotion.not_approved",
                       subject, None))
    for moment, amount in promo.spends:
        parts = max(1, min(split, amount, (PROMOTION_GAP - SPLIT_STEP) // SPLIT_STEP))
        base, extra = divmod(amount, parts)
        for i in range(parts):
            events.append((moment + i * SPLIT_STEP, "promotion.spent", subject,
                           {"amount": _money(base + (1 if i < extra else 0), cur)}))
    if promo.final is not None:
        what, moment, amount = promo.final
        if what == "turn_off":
            events.append((moment, "promotion.turned_off", subject, None))
        else:
            events.append((moment, "promotion.spent", subject, {"amount": _money(amount, cur)}))
    return events


def _stretch(plans: list[ProjectPlan | PromotionPlan], factor: float) -> tuple[dict[str, int], int]:
    """Extra reject/resubmit rounds per eligible order and the spend split factor that
    make the log about ``factor`` times longer: half the extra events each way."""
    if factor <= 1:
        return {}, 1
    base = sum(len(_project_events(p, {})) if isinstance(p, ProjectPlan) else len(_promotion_events(p, 1))
               for p in plans)
    extra = (factor - 1) * base
    eligible = [o.oid for p in plans if isinstance(p, ProjectPlan) for o in p.orders
                if o.review == "manual" and o.submit is not None]
    spends = sum(len(p.spends) for p in plans if isinstance(p, PromotionPlan))
    # Half the extra events each way; all of them as rounds when nothing is spent.
    rounds = round(extra * (0.5 if spends else 1.0) / 2 / max(1, len(eligible)))
    split = 1 + round((extra - 2 * rounds * len(eligible)) / spends) if spends else 1
    return dict.fromkeys(eligible, rounds), split


def generate(orders: int, seed: int = 7, stretch: float = 1.0) -> Iterator[bytes]:
    """The log's lines (without newline), in time order; a stable tie order by plan."""
    plans = plan(orders, seed)
    rounds_of, split = _stretch(plans, stretch)
    ids = random.Random(seed * 7919 + 1)
    pending: list[tuple[int, int, str, str, dict | None]] = []
    seq = 0

    def line(moment: int, kind: str, subject: str, data: dict | None) -> bytes:
        envelope = {"specversion": "1.0",
                    "id": str(uuid.UUID(int=ids.getrandbits(128), version=4)),
                    "source": "collab-service", "time": _stamp(moment), "type": kind,
                    "subject": subject}
        if data is not None:
            envelope["data"] = data
        return json.dumps(envelope, separators=(",", ":")).encode()

    for entity in plans:
        # Every event still pending before this entity's creation can go out: later
        # entities only add events at or after their own creation.
        while pending and pending[0][0] < entity.created:
            moment, _, kind, subject, data = heapq.heappop(pending)
            yield line(moment, kind, subject, data)
        timed = (_project_events(entity, rounds_of) if isinstance(entity, ProjectPlan)
                 else _promotion_events(entity, split))
        for moment, kind, subject, data in timed:
            seq += 1
            heapq.heappush(pending, (moment, seq, kind, subject, data))
    while pending:
        moment, _, kind, subject, data = heapq.heappop(pending)
        yield line(moment, kind, subject, data)


def write_log(path: str | Path, orders: int, seed: int = 7, stretch: float = 1.0) -> int:
    """Write the log to ``path`` (atomically: a partial file never has the name);
    return the number of events."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    with open(partial, "wb") as out:
        for raw in generate(orders, seed, stretch):
            out.write(raw + b"\n")
            count += 1
    partial.replace(path)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stretch", type=float, default=1.0,
                        help="make the log about this many times longer over the same entities")
    parser.add_argument("--out", help="the log file (default: standard output)")
    parser.add_argument("--ads", type=int, default=0, metavar="N",
                        help="merge in N Ads Manager campaigns (benchmarks/ads_share.py; "
                             "default 0: the log as before; our engine only, the peers know none)")
    args = parser.parse_args(argv)
    if args.ads:  # issue 14: an Ads Manager share, seeded apart
        from ads_share import mixed

        out = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115
        for raw in mixed(generate(args.orders, args.seed, args.stretch), args.ads, args.seed):
            out.write(raw + b"\n")
        out.flush()
        return 0
    if args.out:
        count = write_log(args.out, args.orders, args.seed, args.stretch)
        print(f"{count} events -> {args.out}", file=sys.stderr)
    else:
        for raw in generate(args.orders, args.seed, args.stretch):
            sys.stdout.buffer.write(raw + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
