"""How fast could any engine replay our lifecycles? The declared rules, timed alone.

``python benchmarks/floor.py --orders 20000`` replays the generated log once with every
declared function wrapped: the field parsers, the guards, the actions and the timer
functions record each call and its argument, exactly as the engine made it. Then, in
the same process, it times:

* **rules**: those recorded calls again, by themselves (an action's items iterated);
* **envelope**: reading each line as a file replay does (``typed_event``, else ``loads``
  and ``to_event``: parse, validate; the content digest is lazy);
* **engine**: the whole replay through the library API (``replay``), as ``run.py``'s
  ``ours-api`` measures it, but in this process and without start-up;
* the peers ``run.py`` compares with: the hand-written dict table and the shared
  ``transitions`` Machine, on the same log.

rules + envelope is a floor: what a replay would cost with an engine that took no time
at all (no dedupe, clock, timers, records, ledger). It prints each figure in
microseconds per event, and issue 5's and issue 12's throughput targets next to that floor: a
target above it cannot be met by any engine running these rules on this interpreter
and machine.

Each figure is the best of ``--repeat`` runs. Before each run the objects that exist
(the recorded calls) are frozen out of the cyclic collector, so every variant pays the
collector for its own objects only, as in a process of its own. The figures compare
with each other; they are a little faster than ``run.py``'s, which include start-up. The recorded calls
hold their contexts: at 100,000 orders it takes about 1 GB and 2 minutes; the default
is 20,000 orders.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):  # run.py and peers.py, and the checkout's statemachine
    if _path not in sys.path:
        sys.path.insert(0, _path)

from run import log_for  # noqa: E402

__all__ = ["Recorder", "floor", "main"]

Call = tuple[str, Callable[[Any], Any], Any]


class Recorder:
    """A copy of a domain whose declared functions record their calls in ``calls``."""

    def __init__(self, domain: Any) -> None:
        self.calls: list[Call] = []
        # One wrapped copy per declared object: variants share inputs, and the runtime
        # checks that they still do.
        copies: dict[int, Any] = {}

        def copy(item: Any, **changes: Any) -> Any:
            if id(item) not in copies:
                copies[id(item)] = attrs.evolve(item, **changes)
            return copies[id(item)]

        wrap = self._wrap
        self.domain = attrs.evolve(domain, lifecycles=tuple(
            attrs.evolve(
                lc,
                guards=tuple(copy(g, test=wrap("guard", g.test)) for g in lc.guards),
                actions=tuple(copy(a, run=wrap("action", a.run)) for a in lc.actions),
                timers=tuple(copy(t, due=wrap("timer", t.due), cause=wrap("timer", t.cause))
                             for t in lc.timers),
                inputs=tuple(copy(i, fields=tuple(copy(f, parse=wrap("field", f.parse))
                                                  for f in i.fields)) for i in lc.inputs),
            )
            for lc in domain.lifecycles))

    def _wrap(self, kind: str, function: Callable[[Any], Any]) -> Callable[[Any], Any]:
        append = self.calls.append

        if kind == "action":  # the engine iterates an action's items: record them as made
            def action(ctx: Any) -> list[Any]:
                append((kind, function, ctx))
                return list(function(ctx))
            return action

        def recorded(argument: Any) -> Any:
            append((kind, function, argument))
            return function(argument)
        return recorded


def _rules(calls: list[Call]) -> None:
    for kind, function, argument in calls:
        result = function(argument)
        if kind == "action":
            for _ in result:
                pass


def _each(function: Callable[[bytes], object], lines: list[bytes]) -> None:
    for line in lines:  # as a replay does: each result let go before the next line
        function(line)


def _best(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.freeze()  # what exists now (the recorded calls) is not the run's to collect
        try:
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
        finally:
            gc.unfreeze()
    return best


def floor(log: Path, repeat: int = 3, peers: bool = True) -> dict[str, Any]:
    """The figures (seconds for the whole log) and counts; see the module's doc."""
    import orjson

    from statemachine.envelope import loads, to_event, typed_event
    from statemachine.lifecycles import DOMAIN
    from statemachine.replay import replay
    from statemachine.replay.replayer import read_lines

    raw = log.read_bytes()
    lines = [line for _, line in read_lines(io.BytesIO(raw))]
    recorder = Recorder(DOMAIN)
    report = replay(io.BytesIO(raw), domain=recorder.domain)
    calls = recorder.calls
    counts = Counter(kind for kind, _, _ in calls)
    seconds = {
        "rules": _best(repeat, lambda: _rules(calls)),
        # As a file replay reads each line since issue 12: no content digest (it is
        # computed lazily, only for an id that repeats), the typed decode first and the
        # general path for a line it declines.
        "envelope": _best(repeat, lambda: _each(
            lambda line: typed_event(line, 0) or to_event(loads(line), token=0), lines)),
        "orjson": _best(repeat, lambda: _each(orjson.loads, lines)),
        "engine": _best(repeat, lambda: replay(io.BytesIO(raw))),
    }
    if peers:
        from peers import BACKENDS, Replay

        for variant in ("dict-table", "transitions-shared"):
            seconds[variant] = _best(repeat, lambda v=variant: Replay(BACKENDS[v]()).run(log))
    return {"events": len(lines), "rejected": len(report.rejected), "calls": counts,
            "seconds": seconds}


def _lines(result: dict[str, Any]) -> Iterator[str]:
    events, s = result["events"], result["seconds"]
    bottom = s["rules"] + s["envelope"]
    engine = s["engine"] - bottom
    rows = [
        ("rules (fields, guards, actions, timer functions)", s["rules"], False),
        ("envelope (typed decode, checks; digest lazy)", s["envelope"], False),
        ("  of which orjson parsing alone", s["orjson"], False),
        ("floor: rules + envelope, no engine at all", bottom, True),
        ("our engine: the whole replay", s["engine"], True),
        ("  the engine itself (replay - floor)", engine, False),
    ]
    if "dict-table" in s:
        rows += [("hand-written dict table, no validation", s["dict-table"], True),
                 ("transitions, shared Machine(model=None)", s["transitions-shared"], True)]
    calls = ", ".join(f"{n:,} {kind}" for kind, n in sorted(result["calls"].items()))
    yield f"{events:,} events; the declared functions were called {calls}"
    yield f"{'':50} {'us/event':>8} {'events/s':>9}"
    for label, seconds, rate in rows:
        yield f"{label:50} {seconds / events * 1e6:8.2f}" + (f" {events / seconds:9,.0f}" if rate else "")
    if "dict-table" not in s:
        return
    for label, needed in (("2.5x the shared Machine (issue 5)", s["transitions-shared"] / 2.5),
                          ("0.5x the dict table (issue 5)", s["dict-table"] / 0.5),
                          ("1.5x the shared Machine (issue 12)", s["transitions-shared"] / 1.5),
                          ("0.4x the dict table (issue 12)", s["dict-table"] / 0.4)):
        if needed < bottom:
            verdict = "above the floor: no engine running these rules here can meet it"
        else:
            verdict = (f"leaves the engine {(needed - bottom) / events * 1e6:.2f} us/event "
                       f"(it takes {engine / events * 1e6:.2f})")
        yield f"target {label}: {events / needed:,.0f} events/s; {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--log", type=Path, help="this log instead of a generated one")
    parser.add_argument("--no-peers", action="store_true", help="skip the dict table and Machine")
    args = parser.parse_args(argv)
    log = args.log or log_for(args.orders, args.seed)
    result = floor(log, args.repeat, peers=not args.no_peers)
    if result["rejected"]:
        print(f"{log}: {result['rejected']} lines rejected; the figures still stand", file=sys.stderr)
    print("\n".join(_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
