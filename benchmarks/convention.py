"""Would another calling convention for the rules reach issue 12's targets? A prototype.

``python benchmarks/convention.py --orders 20000`` answers with figures, not argument.

Today a rule is called with a context object: ``fee_valid(ctx)`` reads
``ctx.params["fee"]`` and ``ctx.parent().data["currency"]`` (a Python-level
``__getitem__`` per read of a record, a method call per parent), and an action is a
generator of ``attrs`` effect objects (``yield Assign({...})``, ``yield
PaymentReleased(...)``) that the engine sorts item by item. ``floor.py`` shows that
those rules, called that way, cost more than 1.5x the shared ``transitions`` Machine
allows for the whole replay: no engine can meet that target with them.

Here the Order lifecycle's rules are written once more in the cheapest readable
convention found: **positional values named by the declaration** and **plain data
back**. The declaration says which values each rule takes (``"time"``,
``"params.fee"``, ``"data.deadline"``, ``"parent"``) and what an action sets or pays:

    Guard(before_deadline, "time", "data.deadline")      # def before_deadline(time, deadline)
    Action(record_submission, "time", "event_id", sets=("submitted_at", "submitted_event"))
    Action(release_fee, "data.fee", pays=True)           # returns (("payment_released", fee),)

and the step functions are generated from the *same* declaration the engine compiles
(``ORDER``'s table: states, triggers, candidates in declared order, guard and action
names, the destination's timers), with each value resolved at generation time into a
local read (``rec.deadline``, ``params["fee"]``). An entity is a mutable slotted
record; a step computes every new value into locals and writes them only after the
last thing that can raise, so a refusal leaves the record as it was (a cascade would
need the undo log the issue describes; the order-only log has none that does
anything). The semantics are the engine's: Decimal money (``validate_written``,
``split_fee``), RFC 3339 times, the same envelope (``typed_event``, else ``loads`` and
``to_event``), field parsers, guards and refusals, dedupe by id with the lazy digest,
the clock, timers due by ``(due, subject, name)``, the policy version governing each
order.

The log is the generated one restricted to its order part: the orders of the projects
that only ever get ``project.created`` (four fifths of the events), and those projects' creation
lines. The script asserts that the prototype reaches the **same state for every entity,
the same ledger line for line, the same applied, duplicate and rejected lines** as the
engine's report on that log, then prints, each in microseconds per event on that log,
best of ``--repeat``:

* the rules in each convention, called alone (as ``floor.py`` times them: recorded
  calls replayed), the envelope, and so each convention's floor;
* the prototype's whole replay, the engine's, the dict table's and the shared Machine's;
* whether 1.5x the Machine and 0.4x the dict table are above or below each floor.
"""

from __future__ import annotations

import argparse
import heapq
import io
import linecache
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from floor import _best  # noqa: E402
from floor import floor as current_floor  # noqa: E402
from run import OUT, log_for  # noqa: E402

from statemachine.engine import INITIAL  # noqa: E402
from statemachine.engine.compiler import compile_lifecycle  # noqa: E402
from statemachine.engine.errors import EventRejected  # noqa: E402
from statemachine.envelope import digest, loads, to_event, typed_event  # noqa: E402
from statemachine.lifecycles import policy  # noqa: E402
from statemachine.lifecycles.order import ORDER  # noqa: E402
from statemachine.lifecycles.versions import BUILTIN_POLICIES  # noqa: E402
from statemachine.money import MoneyError, validate_written  # noqa: E402
from statemachine.replay import replay  # noqa: E402
from statemachine.replay.replayer import read_lines  # noqa: E402
from statemachine.timeutil import later  # noqa: E402

__all__ = ["Prototype", "check", "main", "measure", "order_part"]

POLICIES = BUILTIN_POLICIES


# -- the Order rules, positional values in, plain data out ------------------------------
# The same rules as statemachine/lifecycles/order.py, read side by side.
def project_active(project: Any) -> bool:
    return project is not None and project.state == "active"


def fee_valid(fee: Decimal, project: Any) -> bool:
    if project is None or fee <= 0:
        return False
    try:
        validate_written(fee, project.currency)
    except MoneyError:
        return False
    return True


def agreed_before_deadline(time: datetime, project: Any) -> bool:
    return project is not None and time < project.deadline


def before_deadline(time: datetime, deadline: datetime) -> bool:
    return time < deadline


def may_deliver(project: Any) -> bool:
    return project is None or project.state != "winding_down"


def auto_review(review: str) -> bool:
    return review == "auto"


def record_agreement(time: datetime, event_id: str, project_id: str, fee: Decimal, review: str,
                     project: Any) -> tuple[Any, ...]:
    # policy, project, fee, currency, review, deadline, agreed_event
    return (POLICIES.governing(time).id, project_id, validate_written(fee, project.currency),
            project.currency, review, project.deadline, event_id)


def record_submission(time: datetime, event_id: str) -> tuple[Any, ...]:
    return time, event_id  # submitted_at, submitted_event


def release_fee(fee: Decimal) -> tuple[tuple[str, Decimal], ...]:
    return (("payment_released", fee),)


def refund_expired(fee: Decimal, currency: str, version: str | None) -> tuple[tuple[str, Decimal], ...]:
    rule = policy.expiry_refund(POLICIES.get(version), named=POLICIES.named)
    refund, released = policy.split_fee(fee, rule.percent, currency)
    return (("refund", refund), ("payment_released", released))


def refund_cancelled(fee: Decimal, currency: str, percent: int, rule: str,
                     ) -> tuple[tuple[str, Decimal], ...]:
    refund, released = policy.split_fee(fee, percent, currency)  # (the rule names the row)
    return (("refund", refund), ("payment_released", released))


def deemed_due(review: str, submitted_at: datetime, version: str | None) -> datetime | None:
    if review != "manual":
        return None
    return later(submitted_at, POLICIES.get(version).deemed_approval_after)


def content_deadline_due(deadline: datetime) -> datetime:
    return deadline


class Guard:
    def __init__(self, test: Callable[..., bool], *args: str) -> None:
        self.test, self.args = test, args


class Action:
    def __init__(self, run: Callable[..., Any] | None, *args: str, sets: tuple[str, ...] = (),
                 pays: bool = False, send: tuple[str, str] | None = None) -> None:
        self.run, self.args, self.sets, self.pays, self.send = run, args, sets, pays, send


class TimerRule:
    def __init__(self, due: Callable[..., Any], due_args: tuple[str, ...], cause: str) -> None:
        self.due, self.due_args, self.cause = due, due_args, cause


GUARDS = {
    "project_active": Guard(project_active, "parent"),
    "fee_valid": Guard(fee_valid, "params.fee", "parent"),
    "agreed_before_deadline": Guard(agreed_before_deadline, "time", "parent"),
    "before_deadline": Guard(before_deadline, "time", "data.deadline"),
    "may_deliver": Guard(may_deliver, "parent"),
    "auto_review": Guard(auto_review, "data.review"),
}
ACTIONS = {
    "record_agreement": Action(record_agreement, "time", "event_id", "params.project", "params.fee",
                               "params.review", "parent",
                               sets=("policy", "project", "fee", "currency", "review", "deadline",
                                     "agreed_event")),
    "record_submission": Action(record_submission, "time", "event_id",
                                sets=("submitted_at", "submitted_event")),
    "release_fee": Action(release_fee, "data.fee", pays=True),
    "refund_expired": Action(refund_expired, "data.fee", "data.currency", "data.policy", pays=True),
    "refund_cancelled": Action(refund_cancelled, "data.fee", "data.currency", "params.percent",
                               "params.rule", pays=True),
    "tell_project": Action(None, send=("project", "order_closed")),  # an optional send
}
TIMERS = {
    "deemed_approval": TimerRule(deemed_due, ("data.review", "data.submitted_at", "data.policy"),
                                 "data.submitted_event"),
    "content_deadline": TimerRule(content_deadline_due, ("data.deadline",), "data.agreed_event"),
}


def _closes() -> frozenset[str]:
    """Project states with a transition for ``order_closed`` (where the optional send
    would do something), read from the project lifecycles' declarations."""
    from statemachine.lifecycles import DOMAIN

    return frozenset(state for lc in DOMAIN.lifecycles if lc.kind == "project"
                     for (state, trigger) in compile_lifecycle(lc).table if trigger == "order_closed")


# -- the records ---------------------------------------------------------------------------
class OrderRec:
    """A mutable order record: written only once a step can no longer fail."""

    __slots__ = ("agreed_event", "currency", "deadline", "fee", "policy", "project", "review",
                 "state", "subject", "submitted_at", "submitted_event", "timers", "version")

    def __init__(self, subject: str) -> None:
        # The data fields stay unset until a step sets them (the create step sets all
        # but the submission's): a read before that is a bug, and raises.
        self.subject, self.state, self.version, self.timers = subject, INITIAL, 0, ()


class ProjectRec:
    __slots__ = ("currency", "deadline", "state", "subject")

    def __init__(self, subject: str, currency: str, deadline: datetime) -> None:
        self.subject, self.state, self.currency, self.deadline = subject, "active", currency, deadline


class Refused(Exception):
    pass


# -- the generated steps ---------------------------------------------------------------------
def _value(name: str, new: dict[str, str]) -> str:
    """The Python expression a declared value name reads (``new``: data set so far)."""
    if name == "time":
        return "time"
    if name == "event_id":
        return "cause"
    if name == "parent":
        return "parent"
    if name.startswith("params."):
        return f"params[{name[7:]!r}]"
    if name.startswith("data."):
        return f"rec.{name[5:]}"
    raise ValueError(name)


def _timer_value(name: str, new: dict[str, str]) -> str:
    if name.startswith("data.") and name[5:] in new:
        return new[name[5:]]  # timers read the data after the step
    return _value(name, new)


def generate() -> dict[tuple[str, str], Callable[..., Any]]:
    """One function per ``(state, trigger)`` of the engine's own compiled Order table."""
    compiled = compile_lifecycle(ORDER)
    ns: dict[str, Any] = {"__Refused": Refused, "__push": heapq.heappush}
    lines: list[str] = []
    steps: dict[tuple[str, str], str] = {}
    for (state, trigger), candidates in compiled.table.items():
        fname = f"step__order__{state.strip('_')}__{trigger}"
        steps[(state, trigger)] = fname
        lines.append(f"def {fname}(rec, params, cause, time, projects, ledger, heap):")
        uses_parent = any("parent" in GUARDS[g].args for c in candidates for g in c.declaration.guards) \
            or any("parent" in ACTIONS[a.name].args for c in candidates for a in c.actions)
        if uses_parent:
            ref = "params['project']" if state == INITIAL else "rec.project"
            lines.append(f"    parent = projects.get('project/' + {ref})")
        for c in candidates:
            cond = " and ".join(
                f"__g_{g}({', '.join(_value(a, {}) for a in GUARDS[g].args)})"
                for g in c.declaration.guards) or "True"
            ns.update({f"__g_{g}": GUARDS[g].test for g in c.declaration.guards})
            lines.append(f"    if {cond}:")
            new: dict[str, str] = {}
            pays: list[str] = []
            sends = False
            for a in c.actions:
                action = ACTIONS[a.name]
                if action.send is not None:
                    sends = True
                    continue
                ns[f"__a_{a.name}"] = action.run
                call = f"__a_{a.name}({', '.join(_value(x, new) for x in action.args)})"
                if action.pays:
                    lines.append(f"        money_{a.name} = {call}")
                    pays.append(f"money_{a.name}")
                else:
                    names = [f"new_{s}" for s in action.sets]
                    lines.append(f"        ({', '.join(names)},) = {call}")
                    new.update({s: f"new_{s}" for s in action.sets})
            specs = compiled.timers_by_state.get(c.dest, ())
            if specs:
                lines.append("        armed = []")
            for spec in specs:
                rule = TIMERS[spec.name]
                ns[f"__due_{spec.name}"] = rule.due
                lines.append(f"        due = __due_{spec.name}("
                             f"{', '.join(_timer_value(x, new) for x in rule.due_args)})")
                lines.append("        if due is not None:")
                lines.append(f"            armed.append(({spec.name!r}, {spec.trigger!r}, due, "
                             f"{_timer_value(rule.cause, new)}))")
            if sends:  # optional: dropped unless the project could take it
                project = _timer_value("data.project", new)
                lines.append(f"        target = projects.get('project/' + {project})")
                lines.append("        if target is not None and target.state in __CLOSES:")
                lines.append("            raise NotImplementedError('a cascade: outside this prototype')")
            # Nothing below can fail: write the record.
            for field, local in new.items():
                lines.append(f"        rec.{field} = {local}")
            lines.append(f"        rec.state = {c.dest!r}")
            lines.append("        rec.version += 1")
            if specs:
                lines.append("        timers = tuple(armed)")
                lines.append("        if timers != rec.timers:")
                lines.append("            rec.timers = timers")
                lines.append("            for t in timers:")
                lines.append("                __push(heap, (t[2], rec.subject, t[0], t))")
            else:
                lines.append("        rec.timers = ()")
            for money in pays:
                lines.append(f"        for kind, amount in {money}:")
                lines.append("            if amount:")
                lines.append("                ledger.append((time, kind, rec.subject, amount, "
                             "rec.currency, cause))")
            lines.append("        return")
        lines.append(f"    raise __Refused({state!r}, {trigger!r})")
        lines.append("")
    ns["__CLOSES"] = _closes()
    source = "\n".join(lines)
    filename = "<convention generated order>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), ns)  # our own generated source
    return {key: ns[name] for key, name in steps.items()}


# -- the driver: dedupe, clock, timers, the envelope, as the engine does --------------------
class Prototype:
    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.steps = generate()
        self.records: dict[str, Any] = {}
        self.projects: dict[str, ProjectRec] = {}
        self.applied: dict[str, int] = {}
        self.ledger: list[tuple[Any, ...]] = []
        self.heap: list[tuple[Any, ...]] = []
        self.rejected: list[int] = []
        self.clock: datetime | None = None
        self.count = self.duplicates = 0
        self.inputs = {i.type: (i.trigger, tuple((f.name, f.parse, f.required) for f in i.fields))
                       for i in ORDER.inputs}
        project_inputs = {"project.created": ("kind", "currency", "deadline")}
        from statemachine.lifecycles.project import PROJECT_CREATOR

        fields = {f.name: f for i in PROJECT_CREATOR.inputs if i.type in project_inputs for f in i.fields}
        self.project_fields = tuple((n, fields[n].parse) for n in project_inputs["project.created"])

    def _fire(self, moment: datetime) -> None:
        heap, records, steps, ledger = self.heap, self.records, self.steps, self.ledger
        while heap and heap[0][0] <= moment:
            due, subject, _, armed = heapq.heappop(heap)
            rec = records.get(subject)
            if rec is None:
                continue
            for held in rec.timers:
                if held is armed:
                    break
            else:
                continue
            if self.clock is None or due > self.clock:
                self.clock = due
            step = steps.get((rec.state, armed[1]))
            if step is not None:
                try:
                    step(rec, {}, armed[3], self.clock, self.projects, ledger, heap)
                except Refused:  # a refused timer is dropped, as the engine drops it
                    continue
        if self.clock is None or moment > self.clock:
            self.clock = moment

    def feed(self, number: int, raw: bytes, token: int) -> None:
        self.count += 1
        event = typed_event(raw, token)
        if event is None:
            try:
                event = to_event(loads(raw), token=token)
            except EventRejected:
                self.rejected.append(number)
                return
        event_id = event.id
        seen = self.applied.get(event_id)
        if seen is not None and digest(loads(self.lines[seen])) == digest(loads(raw)):
            self.duplicates += 1
            return
        moment = event.time
        clock = self.clock
        if clock is not None and moment < clock and seen is None:
            self.rejected.append(number)
            return
        heap = self.heap
        if heap and heap[0][0] <= moment:
            self._fire(moment)
        elif clock is None or moment > clock:
            self.clock = moment
        if seen is not None:
            self.rejected.append(number)  # a conflict
            return
        found = self.inputs.get(event.type)
        subject = event.subject
        kind, _, rest = subject.partition("/")
        try:
            if found is None or kind != "order" or not rest or "/" in rest:
                self._other(event, moment)
            else:
                trigger, fields = found
                data = event.data
                params: dict[str, Any] = {}
                for name, parse, required in fields:
                    value = data.get(name)
                    if value is None:
                        if required:
                            raise Refused(name)
                        continue
                    params[name] = parse(value)
                records = self.records
                rec = records.get(subject)
                if trigger == "create":
                    if rec is not None:
                        raise Refused("exists")
                    rec = OrderRec(subject)
                elif rec is None:
                    raise Refused("unknown")
                step = self.steps.get((rec.state, trigger))
                if step is None:
                    raise Refused(rec.state)
                step(rec, params, event_id, moment, self.projects, self.ledger, heap)
                if trigger == "create":
                    records[subject] = rec
        except (EventRejected, Refused, ValueError, KeyError):
            self.rejected.append(number)
            return
        self.applied[event_id] = token
        if heap and heap[0][0] <= moment:
            self._fire(moment)

    def _other(self, event: Any, moment: datetime) -> None:
        """A project's creation (read as the orders' parent data), else a refusal."""
        subject = event.subject
        kind, _, ident = subject.partition("/")
        if (event.type != "project.created" or kind != "project" or not ident or "/" in ident
                or subject in self.projects):
            raise Refused(event.type)
        _, currency, deadline = (parse(event.data[name]) for name, parse in self.project_fields)
        if not deadline > moment:  # the project's create guard (deadline_after_creation)
            raise Refused("deadline")
        self.projects[subject] = ProjectRec(subject, currency, deadline)

    def run(self) -> Prototype:
        feed = self.feed
        for index, line in enumerate(self.lines):
            feed(index + 1, line, index)
        return self


# -- the rules alone, as floor.py times them -----------------------------------------------
class _Recording:
    """Wrap every rule the generated steps call, recording ``(function, args)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _Recording:
        append = self.calls.append

        def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
            def recorded(*args: Any) -> Any:
                append((function, args))
                return function(*args)
            return recorded

        for table, attr in ((GUARDS, "test"), (ACTIONS, "run"), (TIMERS, "due")):
            for rule in table.values():  # type: ignore[attr-defined]
                function = getattr(rule, attr)
                if function is not None:
                    self.saved.append((rule, attr, function))
                    setattr(rule, attr, wrap(function))
        return self

    def __exit__(self, *exc: object) -> None:
        for rule, attr, function in self.saved:
            setattr(rule, attr, function)


def _field_calls(lines: list[bytes]) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """The field parsers' calls (the same in both conventions)."""
    calls = []
    inputs = {i.type: i for i in ORDER.inputs}
    for line in lines:
        envelope = orjson.loads(line)
        inp = inputs.get(envelope["type"])
        if inp is not None:
            for field in inp.fields:
                value = envelope.get("data", {}).get(field.name)
                if value is not None:
                    calls.append((field.parse, (value,)))
    return calls


def _call_all(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    for function, args in calls:
        function(*args)


# -- the order part of the log --------------------------------------------------------------
def order_part(log: Path, out: Path | None = None) -> Path:
    """The orders of the projects that only get ``project.created``, with those lines."""
    if out is None:
        out = OUT / (log.stem + "-orders.jsonl")
    if out.exists() and out.stat().st_mtime >= log.stat().st_mtime:
        return out
    events = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    busy = {e["subject"] for e in events
            if e["type"].startswith("project.") and e["type"] != "project.created"}
    project_of = {e["subject"]: "project/" + e["data"]["project"] for e in events
                  if e["type"] == "order.agreed"}

    def kept(e: dict[str, Any]) -> bool:
        if e["type"] == "project.created":
            return e["subject"] not in busy
        return e["type"].startswith("order.") and project_of.get(e["subject"], "busy") not in busy

    lines = (x for x in log.read_bytes().splitlines() if x.strip())
    keep = [line for line, e in zip(lines, events, strict=True) if kept(e)]
    out.write_bytes(b"\n".join(keep) + b"\n")
    return out


def check(log: Path, proto: Prototype) -> str:
    """The prototype's results must be the engine's report on the same log: the state of
    every entity, the ledger line for line (Decimal amounts), the lines applied, repeated
    and rejected. Raises ``AssertionError`` naming what differs."""
    report = replay(io.BytesIO(log.read_bytes()))
    ours = {r.subject: r.state for r in proto.records.values()}
    ours.update({p.subject: "active" for p in proto.projects.values()})
    ledger = [(line.time, line.kind, line.subject, line.amount, line.currency, line.cause)
              for line in report.ledger]
    differences = [
        what for what, same in (
            ("states", ours == dict(report.entities)),
            ("ledger", proto.ledger == ledger and all(type(x[3]) is Decimal for x in proto.ledger)),
            ("rejected lines", sorted(proto.rejected) == sorted(r.line for r in report.rejected)),
            ("lines and duplicates", (proto.count, proto.duplicates) == (report.lines, report.duplicates)),
        ) if not same]
    if differences:
        raise AssertionError(f"the prototype differs from the engine in: {', '.join(differences)}")
    return (f"same as the engine: {len(ours):,} entities' states, {len(ledger):,} ledger lines, "
            f"{report.applied:,} applied, {report.duplicates:,} duplicates, "
            f"{len(report.rejected):,} rejected")


def measure(log: Path, repeat: int = 3) -> dict[str, Any]:
    """Check the prototype against the engine on ``log``, then time everything (seconds
    for the whole log, best of ``repeat``)."""
    lines = [line for _, line in read_lines(io.BytesIO(log.read_bytes()))]
    checked = check(log, Prototype(lines).run())
    with _Recording() as recording:
        Prototype(lines).run()
    new_rules = recording.calls + _field_calls(lines)
    s = current_floor(log, repeat, peers=True)["seconds"]
    s["new rules"] = _best(repeat, lambda: _call_all(new_rules))
    s["prototype"] = _best(repeat, lambda: Prototype(lines).run())
    s["engine"] = min(s["engine"], _best(repeat, lambda: replay(io.BytesIO(log.read_bytes()))))
    return {"events": len(lines), "checked": checked, "seconds": s}


def report_lines(result: dict[str, Any]) -> list[str]:
    events, s = result["events"], result["seconds"]
    old_floor = s["rules"] + s["envelope"]
    new_floor = s["new rules"] + s["envelope"]
    rows = [
        ("rules as called today (context, generators)", s["rules"], False),
        ("rules, positional values and plain data", s["new rules"], False),
        ("envelope (typed decode, checks)", s["envelope"], False),
        ("floor today: rules + envelope", old_floor, True),
        ("floor, new convention", new_floor, True),
        ("our engine: the whole replay", s["engine"], True),
        ("prototype: the whole replay, new convention", s["prototype"], True),
        ("hand-written dict table, no validation", s["dict-table"], True),
        ("transitions, shared Machine(model=None)", s["transitions-shared"], True),
    ]
    out = [result["checked"], f"{'':50} {'us/event':>8} {'events/s':>9}"]
    for label, seconds, rate in rows:
        out.append(f"{label:50} {seconds / events * 1e6:8.2f}"
                   + (f" {events / seconds:9,.0f}" if rate else ""))
    for label, peer, factor in (("1.5x the shared Machine", "transitions-shared", 1.5),
                                ("0.4x the dict table", "dict-table", 0.4)):
        needed = s[peer] / factor
        verdicts = []
        for name, bottom in (("today's floor", old_floor), ("the new floor", new_floor)):
            if needed < bottom:
                verdicts.append(f"above {name}")
            else:
                verdicts.append(f"{name} leaves the engine {(needed - bottom) / events * 1e6:.2f} us")
        met = "met" if s["prototype"] <= needed else "not met"
        out.append(f"target {label}: {events / needed:,.0f} events/s; {'; '.join(verdicts)}; "
                   f"prototype {s[peer] / s['prototype']:.2f}x: {met}")
    out.append(f"prototype / engine: {s['engine'] / s['prototype']:.2f}x faster")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    log = order_part(log_for(args.orders, args.seed))
    result = measure(log, args.repeat)
    print(f"{log.name}: {result['events']:,} events (the order part of the generated log)")
    print("\n".join(report_lines(result)))
    with open("/proc/loadavg") as stream:
        print("load average:", " ".join(stream.read().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
