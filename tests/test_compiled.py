"""The generated step functions against the reference interpreter (issue 12).

The runtime runs code generated from each declaration (:mod:`statemachine.engine.codegen`);
``Runtime(..., interpret=True)`` runs the plain interpreter of the same declaration. A
differential test replays random logs (the property tests' generator: sorted, and
shuffled so that out-of-order events, refusals and cascades all happen) through both and
asks for the same report byte for byte, and the same outcomes event by event. The rest
checks the generated code itself (names, linecache, tracebacks, shared guards, a
declaration unlike ours) and the lazy content digest of file replays.
"""

from __future__ import annotations

import inspect
import io
import linecache
import random
import traceback
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import BASE, _encode, event_logs

from statemachine.engine import (
    INITIAL,
    Action,
    Assign,
    Domain,
    Effect,
    EventRejected,
    Guard,
    Input,
    Lifecycle,
    Parent,
    Runtime,
    Send,
    State,
    Timer,
    Transition,
    TransitionRefused,
    compile_lifecycle,
)
from statemachine.engine.codegen import step_name
from statemachine.envelope import loads, to_event
from statemachine.lifecycles import DOMAIN, ORDER
from statemachine.replay import read_lines, replay, replay_path, to_json
from statemachine.timeutil import parse_instant

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
T0 = "2026-03-01T10:00:00Z"


def _both(data: bytes, **options: Any) -> tuple[bytes, bytes]:
    compiled = to_json(replay(io.BytesIO(data), **options))
    interpreted = to_json(replay(io.BytesIO(data), interpret=True, **options))
    return compiled, interpreted


def _outcomes(lines: list[str], interpret: bool, until: Any) -> Iterator[Any]:
    """Every line through ``Runtime.apply`` (outcomes and timers seen by a subscriber),
    what each line did or why it was refused, then the entities and the clock."""
    runtime = Runtime(DOMAIN, interpret=interpret)
    heard: list[Any] = []
    runtime.subscribe(heard.append)
    for raw in _encode(lines).split(b"\n"):
        if not raw.strip():
            continue
        try:
            yield runtime.apply(to_event(loads(raw.strip())))
        except EventRejected as exc:
            yield (type(exc).__name__, exc.reason, getattr(exc, "guard", None))
        yield list(heard)
        heard.clear()
    if until is not None:
        yield runtime.advance_to(until)
    yield dict(runtime.entities), {k: list(v) for k, v in runtime.children.items()}, runtime.clock
    yield sorted((due, subject, armed) for due, subject, armed in runtime._timers
                 if runtime._live(subject, armed))


# -- the differential tests ------------------------------------------------------------
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_events=40), st.booleans(), st.booleans())
def test_random_logs_give_the_same_report_compiled_and_interpreted(lines, sort, advance):
    until = BASE + timedelta(days=400) if advance else None
    compiled, interpreted = _both(_encode(lines), sort=sort, as_of=until)
    assert compiled == interpreted


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_events=30).flatmap(st.permutations), st.booleans())
def test_shuffled_logs_give_the_same_report_compiled_and_interpreted(lines, sort):
    compiled, interpreted = _both(_encode(lines), sort=sort)
    assert compiled == interpreted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(event_logs(max_events=30), event_logs(max_events=30).flatmap(st.permutations)),
       st.booleans())
def test_random_logs_give_the_same_outcomes_event_by_event(lines, advance):
    until = BASE + timedelta(days=400) if advance else None
    for compiled, interpreted in zip(_outcomes(lines, False, until), _outcomes(lines, True, until),
                                     strict=True):
        assert compiled == interpreted


def test_the_example_and_a_generated_log_give_the_same_report(tmp_path):
    import subprocess
    import sys

    assert _both(EXAMPLE.read_bytes())[0] == (ROOT / "examples" / "collaborations.expected.json").read_bytes()
    log = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--orders", "1500",
                    "--seed", "3", "--out", str(log)], check=True, capture_output=True)
    compiled = to_json(replay_path(log))
    assert compiled == to_json(replay_path(log, interpret=True))
    assert b"deemed_approved" in compiled and b'"refund"' in compiled


# -- the generated code ----------------------------------------------------------------
def test_each_state_and_trigger_has_a_named_function_registered_in_linecache():
    compiled = compile_lifecycle(ORDER)
    assert set(compiled.steps) == set(compiled.table)
    approve = compiled.steps[("submitted", "approve")]
    assert approve.__name__ == step_name("order", "submitted", "approve") == "step__order__submitted__approve"
    filename = approve.__code__.co_filename
    assert filename == "<statemachine generated order>"
    assert "".join(linecache.getlines(filename)) == compiled.source
    text = inspect.getsource(approve)
    assert text.startswith("def step__order__submitted__approve(")
    assert "__action_release_fee(ctx)" in text and "'approved'" in text
    # the guards shared by both submit candidates are tested once, nested
    submit = inspect.getsource(compiled.steps[("agreed", "submit")])
    assert submit.count("__guard_before_deadline(ctx)") == 1
    assert submit.count("__guard_may_deliver(ctx)") == 1
    # compiling again reuses the registration (same script, same name)
    assert compile_lifecycle(ORDER).steps[("submitted", "approve")].__code__.co_filename == filename


def _odd(calls: list[str], *, raise_in: str | None = None) -> Lifecycle:
    """A declaration unlike ours: names that are no identifiers, a guard shared by
    non-adjacent candidates, a parent, a cascade, a timer, an action that raises."""

    def guard(name: str, result: Any) -> Guard:
        def test(ctx: Any) -> bool:
            calls.append(name)
            if raise_in == name:
                raise RuntimeError(f"{name} broke")
            return bool(result(ctx))
        return Guard(name, test, f"{name} said no")

    def note(ctx: Any) -> Iterator[Any]:
        yield Assign({"n": ctx.data.get("n", 0) + ctx.params.get("step", 1)})

    def tell(ctx: Any) -> Iterator[Any]:
        yield Effect(cause=ctx.event_id, time=ctx.time)
        yield Send(ctx.subject, "bump", optional=True)

    return Lifecycle(
        name="odd-one", kind="odd", title="Odd",
        states=(State("first state"), State("2nd"), State("3-rd", on_enter=("tell",)),
                State("done", final=True)),
        guards=(guard("big?", lambda ctx: ctx.params.get("step", 1) > 5),
                guard("even", lambda ctx: ctx.params.get("step", 1) % 2 == 0),
                guard("not-3", lambda ctx: ctx.params.get("step", 1) != 3)),
        actions=(Action("note", note), Action("tell", tell)),
        transitions=(
            Transition("make", (INITIAL,), "first state", actions=("note",)),
            Transition("go", ("first state",), "done", guards=("big?", "even")),
            Transition("go", ("first state",), "2nd", guards=("not-3",), actions=("note",)),
            Transition("go", ("first state",), "3-rd", guards=("big?",)),
            Transition("go", ("first state",), "2nd", guards=("even", "big?")),
            Transition("bump", ("3-rd",), "2nd", actions=("note",)),
            Transition("lapse", ("2nd",), "done", internal=True),
        ),
        timers=(Timer("lapse", "lapse", ("2nd",), lambda data: parse_instant(T0) + timedelta(days=data["n"]),
                      lambda data: "made"),),
        inputs=(Input("odd.made", "make"), Input("odd.went", "go")),
        data=("n",),
        parent=Parent("odd", "n"),  # odd/1: a parent that never exists
    )


@pytest.mark.parametrize("step", [1, 2, 3, 4, 6, 7])
def test_a_declaration_unlike_ours_runs_the_same_compiled_and_interpreted(step):
    results = []
    for interpret in (False, True):
        calls: list[str] = []
        runtime = Runtime(Domain((_odd(calls),)), interpret=interpret)
        outcomes: list[Any] = []
        runtime.subscribe(outcomes.append)
        runtime.apply(to_event(ev("e1", T0, "odd.made", "odd/X")))
        try:
            runtime.apply(to_event(ev("e2", T0, "odd.went", "odd/X", step=step)))
            refused = None
        except TransitionRefused as exc:
            refused = (exc.reason, exc.guard)
        runtime.advance_to(parse_instant(T0) + timedelta(days=30))
        results.append((outcomes, refused, runtime.get("odd/X"), calls if refused is None else None))
    assert results[0] == results[1]


def test_a_guard_that_raises_shows_the_generated_line_in_the_traceback():
    runtime = Runtime(Domain((_odd([], raise_in="not-3"),)))
    runtime.apply(to_event(ev("e1", T0, "odd.made", "odd/X")))
    with pytest.raises(RuntimeError, match="not-3 broke") as info:
        runtime.apply(to_event(ev("e2", T0, "odd.went", "odd/X", step=3)))
    frames = traceback.extract_tb(info.tb)
    generated = [f for f in frames if f.filename.startswith("<statemachine generated odd-one")]
    assert generated and generated[0].name == "step__odd_one__first_state__go"
    assert "__guard_not_3(ctx)" in (generated[0].line or "")
    assert runtime.get("odd/X").state == "first state"  # nothing changed


# -- the lazy content digest of file replays -------------------------------------------
def _line(eid: str, time: str, subject: str, **data: Any) -> dict[str, Any]:
    return {"id": eid, "time": time, "type": "project.created", "subject": subject,
            "data": {"kind": "creator", "currency": "USD", "deadline": "2026-04-01T00:00:00Z", **data}}


@pytest.mark.parametrize("sort", [False, True])
def test_a_file_replay_tells_duplicates_from_conflicts_only_when_an_id_repeats(tmp_path, sort):
    first = _line("e1", T0, "project/P-1")
    same_reordered = dict(reversed(list(first.items())))  # other key order, same value
    other = {**first, "data": {**first["data"], "currency": "EUR"}}
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join([
        orjson.dumps(first), b"", orjson.dumps(_line("e2", T0, "project/P-2")),
        b"   " + orjson.dumps(same_reordered, option=orjson.OPT_INDENT_2).replace(b"\n", b" "),
        orjson.dumps(other),
        orjson.dumps(_line("e4", T0, "project/P-4", note="y" * 70000)),  # longer than one read
        orjson.dumps(_line("e4", T0, "project/P-4", note="y" * 70000)),
        orjson.dumps(_line("e3", T0, "project/P-3")),
        orjson.dumps(_line("e3", T0, "project/P-3")),
    ]) + b"\n")
    report = replay_path(log, sort=sort)
    assert (report.applied, report.duplicates) == (4, 3)
    assert [r.error for r in report.rejected] == ["id 'e1' was applied before with different content"]
    with open(log, "rb") as stream:  # what a pipe gives: eager digests, the same report
        eager = replay(io.BytesIO(stream.read()), sort=sort)
    assert to_json(eager) == to_json(report)


def test_lines_fed_by_hand_keep_the_eager_digest():
    from statemachine.replay import Replayer

    replayer = Replayer()
    line = orjson.dumps(_line("e1", T0, "project/P-1"))
    replayer.feed(1, line)
    replayer.feed(2, line)
    assert (replayer.applied, replayer.duplicates) == (1, 1)
    lazy = Replayer()
    lazy.lazy(lambda token: line)
    with pytest.raises(ValueError, match="feed_at"):
        lazy.feed(1, line)


def test_read_lines_and_the_offsets_agree_on_a_shuffled_log(tmp_path):
    rng = random.Random(5)
    lines = EXAMPLE.read_bytes().splitlines()
    rng.shuffle(lines)
    log = tmp_path / "shuffled.jsonl"
    log.write_bytes(b"\n\n".join(lines))
    with open(log, "rb") as stream:
        plain = list(read_lines(stream))
    assert to_json(replay_path(log)) == to_json(replay(io.BytesIO(log.read_bytes())))
    assert len(plain) == len([x for x in lines if x.strip()])


# -- field parsers without a regex -----------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789+-.e_ \u0661", max_size=24),
                 st.decimals(allow_nan=False, allow_infinity=False).map(str),
                 st.integers().map(str)))
def test_the_decimal_field_reads_exactly_what_parse_decimal_reads(text):
    from statemachine.engine.fields import decimal
    from statemachine.money import MoneyError, parse_decimal

    def outcome(parse: Any) -> tuple[str, str]:
        try:
            value = parse(text)
        except (ValueError, MoneyError) as exc:
            return "refused", str(exc)
        return "read", repr(value)

    assert outcome(decimal) == outcome(parse_decimal)


# -- the report written in pieces --------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_events=30), st.integers(1, 4))
def test_the_report_written_in_pieces_is_the_whole_dump(lines, chunk):
    from statemachine.replay import report as module

    report = replay(io.BytesIO(_encode(lines)), as_of=BASE + timedelta(days=400))
    whole = orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    saved = module._CHUNK
    module._CHUNK = chunk  # a few entities and ledger lines per piece: many joins
    try:
        pieces: list[bytes] = []
        module.write_json(report, pieces.append)
    finally:
        module._CHUNK = saved
    assert b"".join(pieces) == whole == to_json(report)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"", b"  ", b"abc", b'{"x": 1}', b"\t z \r", b"\x0c", b"yy" * 20])),
       st.sampled_from([b"", b"\n", b"\n\n", b" "]), st.sampled_from([1, 2, 5, 64]))
def test_lines_read_in_chunks_are_read_lines_with_their_offsets(pieces, end, size):
    from statemachine.replay import replayer as module

    data = b"\n".join(pieces) + end
    saved = module._READ
    module._READ = size  # lines cut across reads
    try:
        found = list(module._lines_at(io.BytesIO(data)))
    finally:
        module._READ = saved
    assert [(number, line) for number, line, _, _ in found] == list(read_lines(io.BytesIO(data)))
    assert all(data[offset:].split(b"\n", 1)[0].strip() == line for _, line, offset, _ in found)


# -- feed and the effect sink: what a replay uses instead of outcomes ---------------------
@pytest.mark.parametrize("interpret", [False, True])
def test_feed_says_applied_or_duplicate_and_the_sink_gets_every_effect_in_order(interpret):
    runtime = Runtime(DOMAIN, interpret=interpret)
    sunk: list[tuple[Any, str]] = []
    runtime.effect_sink = lambda effect, subject: sunk.append((effect, subject))
    heard: list[Any] = []
    runtime.subscribe(heard.append)
    reference = Runtime(DOMAIN, interpret=True)  # what apply's outcomes say
    outcomes: list[Any] = []
    reference.subscribe(outcomes.append)
    answers = []
    for raw in EXAMPLE.read_bytes().splitlines():
        try:
            event = to_event(loads(raw))
        except EventRejected:
            continue
        seen = event.id in runtime.applied
        try:
            applied = runtime.feed(event)
        except EventRejected:
            continue
        answers.append(applied)
        assert applied is not seen
        reference.apply(event)
    assert answers.count(False) == 1  # the example's one duplicate
    assert sunk == [(e, step.subject) for o in outcomes for step in o.steps for e in step.effects]
    assert heard == outcomes  # a subscriber still hears every outcome, timers included
