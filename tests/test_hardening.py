"""Issue 17: no input crashes a replay. One test per numbered item, each reproducing
what once failed; then the calendar property and the hostile-log corpus.

Every hostile line must end as one rejected line with a one-line reason (or, for a
command's arguments, a one-line ``error:`` and exit 2): never a traceback, never an
exit status that means something else.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import ev
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from statemachine.diagrams import build_diagram, overlay, to_dot
from statemachine.diagrams.mermaid import to_mermaid
from statemachine.diagrams.trace import PathStep, Trace
from statemachine.envelope import loads, to_event
from statemachine.lifecycles import ORDER
from statemachine.limits import DEFAULT, LIMITS, Limits, LimitsError, from_environment
from statemachine.replay import Report, replay
from statemachine.timeutil import LAST, parse_instant

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).resolve().parent / "hostile"
T0 = "2026-03-01T10:00:00Z"


def cli(*args: str | Path, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, input=stdin, check=False, timeout=120,
                          env={**os.environ, **(env or {})})


def lines(*events: dict[str, Any] | bytes) -> bytes:
    return b"\n".join(e if isinstance(e, bytes) else json.dumps(e).encode() for e in events) + b"\n"


def run(*events: dict[str, Any] | bytes, as_of: str | None = None) -> Report:
    return replay(io.BytesIO(lines(*events)), as_of=parse_instant(as_of) if as_of else None)


def errors(report: Report) -> list[str]:
    return [r.error for r in report.rejected]


def project(ident: str = "p", subject: str = "project/P", time: str = T0, *, currency: str = "USD",
            deadline: str = "2026-04-01T00:00:00Z", kind: str = "creator") -> dict[str, Any]:
    return ev(ident, time, "project.created", subject, kind=kind, currency=currency, deadline=deadline)


def order(ident: str, subject: str, time: str = T0, *, fee: Any = "100.00", review: str = "manual",
          project: str = "P") -> dict[str, Any]:
    return ev(ident, time, "order.agreed", subject, project=project, fee=fee, review=review)


# -- 1. dates at the edge of the calendar -------------------------------------------------
EDGES = ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00")


@pytest.mark.parametrize("when", EDGES)
def test_an_event_time_past_the_calendar_is_one_rejected_line(when: str) -> None:
    report = run(project("a", time=when), project("b", "project/Q"))
    assert errors(report) == [f"time: '{when}' lies outside the instants this engine can hold "
                              f"(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z)"]
    assert report.entities == {"project/Q": "active"}  # the replay went on


@pytest.mark.parametrize("when", EDGES)
def test_a_deadline_or_end_past_the_calendar_is_a_rejected_field(when: str) -> None:
    report = run(project(deadline=when),
                 ev("m", T0, "promotion.created", "promotion/M", budget="10.00", currency="USD", end=when))
    assert [e.split(":")[0] for e in errors(report)] == ["data.deadline", "data.end"]
    assert all("lies outside the instants" in e for e in errors(report))


@pytest.mark.parametrize("when", EDGES)
def test_as_of_past_the_calendar_is_a_usage_error_not_a_traceback(tmp_path: Path, when: str) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(lines(project()))
    result = cli("replay", log, "--as-of", when)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert b"lies outside the instants" in result.stderr


def test_a_manual_review_submitted_days_before_the_calendar_ends_is_never_deemed_approved() -> None:
    # Its 14-day timer would be due in the year 10000: no event can reach it.
    near = "9999-12-20T00:00:00Z"
    report = run(project(time=near, deadline="9999-12-31T00:00:00Z"),
                 order("o", "order/O", near), ev("s", "9999-12-20T01:00:00Z", "order.submitted", "order/O"),
                 as_of="9999-12-31T23:59:59.999999Z")
    assert report.rejected == ()
    assert report.entities["order/O"] == "submitted"
    assert report.as_of == LAST


# -- 3. size limits -----------------------------------------------------------------------
def test_a_line_over_the_limit_is_one_rejected_line_and_the_replay_goes_on() -> None:
    huge = json.dumps(project("x", subject="project/" + "X" * LIMITS.line_bytes)).encode()
    report = run(huge, project())
    assert errors(report) == [f"the line is longer than {LIMITS.line_bytes:,} bytes, the limit "
                              f"(STATEMACHINE_MAX_LINE_BYTES)"]
    assert report.entities == {"project/P": "active"}


def test_an_over_long_line_is_never_held_whole(tmp_path: Path) -> None:
    import tracemalloc

    from statemachine.replay import read_lines

    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"id": "' + b"x" * (40 * 2**20) + b'"}\n' + lines(project()))
    tracemalloc.start()
    try:
        with open(path, "rb") as stream:
            read = [(number, len(raw)) for number, raw in read_lines(stream)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read[0] == (1, LIMITS.line_bytes + 1)  # the head only, refused by the envelope
    assert read[1][0] == 2
    assert peak < 8 * LIMITS.line_bytes  # a few MB, not the 40 MB line


@pytest.mark.parametrize(("field", "most"), [("id", LIMITS.id_chars), ("type", LIMITS.id_chars),
                                              ("subject", LIMITS.subject_chars)])
def test_ids_types_and_subjects_are_bounded(field: str, most: int) -> None:
    event = project()
    at_limit = {**event, field: event[field] + "x" * (most - len(event[field]))}
    over = {**at_limit, field: at_limit[field] + "x"}
    to_event(at_limit)  # the limit itself is allowed
    report = run(over)
    assert errors(report) == [f"{field} is {most + 1:,} characters long; at most {most:,}"]


def test_free_text_is_bounded() -> None:
    request = ev("r", T0, "project.cancellation_requested", "project/P", by="advertiser",
                 reason="r" * (LIMITS.text_chars + 1))
    report = run(project(), request, {**request, "id": "r2", "data": {**request["data"], "reason": "ok"}})
    assert errors(report) == [f"data.reason: is {LIMITS.text_chars + 1:,} characters long; at most "
                              f"{LIMITS.text_chars:,} (STATEMACHINE_MAX_TEXT_CHARS)"]
    assert report.applied == 2


def test_an_id_inside_data_is_bounded_and_printable() -> None:
    report = run(project(), order("o1", "order/O1", project="P" * 300),
                 order("o2", "order/O2", project="P\x00"))
    assert [e.split(" is not an id")[0] for e in errors(report)] == [
        "data.project: 'PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP… (300 characters)",
        "data.project: 'P\\x00'"]


def test_limits_come_from_the_environment_and_are_checked() -> None:
    assert from_environment({"STATEMACHINE_MAX_ID_CHARS": "12"}) == Limits(id_chars=12)
    assert from_environment({}) == DEFAULT
    for bad in ("0", "-1", "x", "1e3"):
        with pytest.raises(LimitsError, match="STATEMACHINE_MAX_LINE_BYTES"):
            from_environment({"STATEMACHINE_MAX_LINE_BYTES": bad})
    with pytest.raises(LimitsError, match="only tighten"):
        DEFAULT.tightened(id_chars=DEFAULT.id_chars + 1)
    assert DEFAULT.tightened(id_chars=8).id_chars == 8


def test_the_command_line_reads_the_limits_from_the_environment(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(lines(project("p-1234")))
    tight = cli("replay", log, "--format", "json", env={"STATEMACHINE_MAX_ID_CHARS": "4"})
    assert tight.returncode == 1
    assert json.loads(tight.stdout)["rejected"][0]["error"] == "id is 6 characters long; at most 4"
    bad = cli("replay", log, env={"STATEMACHINE_MAX_ID_CHARS": "none"})
    assert bad.returncode == 2
    assert b"error: STATEMACHINE_MAX_ID_CHARS must be a whole number > 0, not 'none'" in bad.stderr
    assert b"Traceback" not in bad.stderr


# -- 4. printable ids and subjects; diagrams escape what reaches them -------------------
@pytest.mark.parametrize(("field", "value", "char"), [
    ("subject", "project/P\x00", "U+0000"), ("subject", "project/P\n1", "U+000A"),
    ("id", "e\u2028", "U+2028"), ("type", "project.created\t", "U+0009"),
])
def test_ids_types_and_subjects_must_be_printable(field: str, value: str, char: str) -> None:
    report = run({**project(), field: value})
    assert len(errors(report)) == 1
    assert errors(report)[0].startswith(f"{field} ")
    assert errors(report)[0].endswith(f"holds the unprintable character {char}")
    assert report.as_of is None  # malformed: no clock moved


def test_dot_and_mermaid_escape_control_characters_in_a_subject_and_event_ids() -> None:
    diagram = build_diagram(ORDER)
    trace = Trace("order/O\x00\n1", "order", "agreed", (PathStep(
        number=1, trigger="create", source="__initial__", dest="agreed", event="e\x00\n1",
        time=parse_instant(T0), timer=None, via=None),))
    view = overlay(diagram, trace)
    dot, mermaid = to_dot(diagram, view), to_mermaid(diagram, view)
    for text in (dot, mermaid):
        assert "\x00" not in text
        assert "e\\x00\\n1" in text  # the event id, in the path's label
    assert "O\\x00\\n1" in dot
    # Every Mermaid statement is still one line: the newline did not end a label.
    assert all(line.count('"') % 2 == 0 for line in mermaid.splitlines())
    from statemachine.diagrams import GraphvizMissing, render

    try:
        svg = render(dot, "svg")
    except GraphvizMissing:
        pytest.skip("Graphviz's dot is not installed")
    assert b"O\\x00\\n1" in svg


# -- 5. diagrams --out ------------------------------------------------------------------
def test_diagrams_out_on_an_existing_file_is_error_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    for out in (target, target / "below"):
        result = cli("diagrams", "--format", "dot", "--out", out)
        assert result.returncode == 2, result.stderr
        assert result.stderr.decode().startswith(f"error: cannot write {target}")
        assert b"Traceback" not in result.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_diagrams_out_on_a_read_only_folder_is_error_exit_2(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        result = cli("diagrams", "--format", "dot", "--out", tmp_path / "d")
    finally:
        tmp_path.chmod(0o755)
    assert result.returncode == 2
    assert result.stderr.startswith(b"error: cannot write")


# -- 6. read exactly, or refuse clearly ---------------------------------------------------
def test_a_5000_digit_fee_is_too_large_not_infinity() -> None:
    line = json.dumps(order("o", "order/O", fee=0)).encode().replace(b'"fee": 0', b'"fee": ' + b"9" * 5000)
    [error] = errors(run(project(), line))
    assert error == ("data.fee: " + "9" * 60 + "… (5,000 characters) is too large: at most 18 digits "
                     "before the point")


@pytest.mark.parametrize("raw", [
    b'{"id": "a", "id": "b", "time": "2026-03-01T10:00:00Z", "type": "project.created", '
    b'"subject": "project/P"}',
    b'{"id": "a", "time": "2026-03-01T10:00:00Z", "type": "project.created", "subject": "project/P", '
    b'"data": {"kind": "creator", "kind": "partner"}}',
    b'{"id" : "a", "time": "2026-03-01T10:00:00Z", "type": "project.created", "subject": "project/P", '
    b'"data": {"x": {"k": 1, "k": 2}}}',
    b'{"id":"a","time":"2026-03-01T10:00:00Z","type":"project.created","subject":"project/P",'
    b'"data":{"fee":1.5,"fee":2.5}}',
])
def test_a_repeated_key_is_refused(raw: bytes) -> None:
    [error] = errors(run(raw))
    assert "appears twice in one object (readers would disagree on its value)" in error


def test_keys_that_look_repeated_inside_strings_are_read_as_written() -> None:
    raw = (b'{"id":"a","time":"2026-03-01T10:00:00Z","type":"project.cancellation_requested",'
           b'"subject":"project/P","data":{"by":"advertiser","reason":"said \\"id\\": x \\" y"}}')
    assert loads(raw)["data"]["reason"] == 'said "id": x " y'
    assert run(lines(project()) + raw).rejected == ()


def test_invalid_utf8_names_the_byte() -> None:
    raw = b'{"id":"a","time":"2026-03-01T10:00:00Z","type":"x","subject":"p\xc3"}'
    where = raw.index(b"\xc3") + 1
    assert errors(run(raw)) == [f"malformed JSON: invalid UTF-8 at byte {where} (0xc3)"]


def test_an_offset_of_24_hours_says_so_in_our_words() -> None:
    assert errors(run(project(time="2026-03-01T10:00:00+24:00"))) == [
        "time: '2026-03-01T10:00:00+24:00' is not an RFC 3339 timestamp with an offset "
        "(the offset must lie between -23:59 and +23:59)"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    raw = json.dumps(order("o", "order/O", fee=0)).encode().replace(
        b'"fee": 0', f'"fee": {constant}'.encode())
    assert errors(run(project(), raw)) == [
        f'malformed JSON: {constant} is not a JSON number (an amount is a decimal string, like "199.99")']


@pytest.mark.parametrize("fee", ["100.0", "100.00"])
def test_a_jpy_fee_written_with_decimals_is_refused(fee: str) -> None:
    report = run(project(currency="JPY"), order("o", "order/O", fee=fee), order("o2", "order/O2", fee="100"))
    assert errors(report) == [f"order/O: cannot create: the fee {fee} has more decimals than JPY allows"]
    assert report.entities["order/O2"] == "agreed"


def test_a_lone_surrogate_is_refused_not_a_report_that_cannot_be_written() -> None:
    raw = b'{"id":"\\ud800","time":"2026-03-01T10:00:00Z","type":"project.created","subject":"project/P"}'
    report = run(raw)
    assert errors(report) == ["malformed JSON: a \\u escape names a lone surrogate (U+D800 to U+DFFF), "
                              "not a character"]
    from statemachine.replay import render_text, to_json

    to_json(report), render_text(report)  # both write


def test_a_byte_order_mark_reads_the_same_with_or_without_a_float() -> None:
    bom = b"\xef\xbb\xbf"
    plain = json.dumps(order("o", "order/O", fee="1.50")).encode()
    number = plain.replace(b'"1.50"', b"1.50")
    assert loads(bom + plain) == loads(plain)
    assert loads(bom + number) == loads(number)


# -- 7. the order diagram says what the guard checks ------------------------------------
def test_submitting_a_started_order_carries_no_winding_down_guard() -> None:
    edges = {(e.source, e.dest, e.trigger): e for e in build_diagram(ORDER).edges}
    started = [f for f in build_diagram(ORDER).forks if f.sources == ("in_progress",)]
    assert [f.guards for f in started] == [("before deadline",)]
    assert all("winding" not in e.label for (src, _, _), e in edges.items() if src == "in_progress")


# -- 8. --workers is capped; replay - reads standard input ------------------------------
def test_workers_beyond_the_cpus_are_capped_with_a_note() -> None:
    example = ROOT / "examples" / "collaborations.jsonl"
    result = cli("replay", example, "--format", "json", "--workers", "1000")
    assert result.returncode == 1
    assert result.stdout == (ROOT / "examples" / "collaborations.expected.json").read_bytes()
    assert f"note: --workers 1000 capped at {os.cpu_count()}".encode() in result.stderr


def test_replay_dash_reads_standard_input() -> None:
    example = ROOT / "examples" / "collaborations.jsonl"
    result = cli("replay", "-", "--format", "json", stdin=example.read_bytes())
    assert result.returncode == 1
    assert result.stdout == (ROOT / "examples" / "collaborations.expected.json").read_bytes()


# -- the calendar property --------------------------------------------------------------
@st.composite
def instants(draw: st.DrawFn) -> str:
    """RFC 3339 text over the whole ``datetime`` range and every offset, valid or not:
    years 0001-9999 (and 0000), days past the month's end, hours 24, seconds 60,
    fractions, ``Z`` and offsets from -99:99 to +99:99."""
    year = draw(st.integers(0, 9999) | st.sampled_from([1, 9999]))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 31))
    hour, minute, second = draw(st.integers(0, 24)), draw(st.integers(0, 59)), draw(st.integers(0, 60))
    fraction = draw(st.sampled_from(["", ".5", ".999999", ".1234567"]))
    offset = draw(st.just("Z") | st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"),
        st.integers(0, 23) | st.integers(0, 99), st.integers(0, 59) | st.integers(0, 99)))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


def _edges_of_the_calendar() -> list[str]:
    """Every whole-hour offset at both ends of the calendar: the instants just inside
    and just outside what a UTC datetime holds."""
    out = []
    for minutes in range(-23 * 60 - 59, 24 * 60, 30):
        tz = timezone(timedelta(minutes=minutes))
        for moment in (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)):
            try:
                local = moment.astimezone(tz)
            except OverflowError:
                local = moment.replace(tzinfo=tz)  # the same wall time: just outside
            out.append(local.isoformat())
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(instants() | st.sampled_from(_edges_of_the_calendar()), min_size=4, max_size=4),
       st.booleans())
@example(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "9999-12-20T00:00:00Z",
          "9999-12-31T23:59:59.999999Z"], True)
def test_no_instant_in_any_time_field_raises_anything_but_a_rejection(times: list[str], as_of: bool) -> None:
    """Each drawn instant goes through every field that holds a time: an event's
    ``time`` (a project, an order submitted for manual review, whose 14-day timer is
    computed from it), ``data.deadline``, ``data.end``, and ``--as-of``."""
    when, deadline, end, last = times
    events = [
        project("p", "project/P", when, deadline=deadline),
        order("o", "order/O", when, project="P"),
        ev("s", when, "order.submitted", "order/O"),
        ev("m", when, "promotion.created", "promotion/M", budget="10.00", currency="USD", end=end),
        ev("m2", T0, "promotion.created", "promotion/M2", budget="10.00", currency="USD", end=end),
        project("q", "project/Q", T0, deadline=deadline),
    ]
    try:
        moment = parse_instant(last) if as_of else None
    except ValueError:
        moment = None  # the command line refuses it (exit 2), as tested above
    report = replay(io.BytesIO(lines(*events)), as_of=moment)
    assert report.lines == len(events)
    assert report.applied + len(report.rejected) == len(events)
    from statemachine.replay import to_json

    to_json(report)  # the report is written, whatever the instants


# -- the hostile-log corpus ---------------------------------------------------------------
def _corpus() -> tuple[bytes, list[str]]:
    """``tests/hostile/hostile.jsonl`` (one case a line; the fragment each reason must
    hold is on the same line of ``hostile.expected``), plus a line over the line limit,
    made here rather than committed."""
    log = (HOSTILE / "hostile.jsonl").read_bytes().rstrip(b"\n") + b"\n"
    expected = (HOSTILE / "hostile.expected").read_text(encoding="utf-8").splitlines()
    log += b'{"id": "' + b"x" * LIMITS.line_bytes + b'"}\n'
    expected.append("the line is longer than")
    return log, expected


def test_the_hostile_corpus_is_refused_line_by_line_exit_1_never_a_traceback(tmp_path: Path) -> None:
    log, expected = _corpus()
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(log)
    for fmt in ("json", "text"):
        result = cli("replay", path, "--format", fmt)
        assert result.returncode == 1, result.stderr
        assert b"Traceback" not in result.stderr
        assert result.stderr == b""
    report = json.loads(cli("replay", path, "--format", "json").stdout)
    assert report["stats"] == {"lines": len(expected), "applied": 0, "duplicates": 0,
                               "rejected": len(expected)}
    assert [r["line"] for r in report["rejected"]] == list(range(1, len(expected) + 1))
    for rejection, fragment in zip(report["rejected"], expected, strict=True):
        assert fragment in rejection["error"], (rejection, fragment)
        assert rejection["error"].isprintable()  # one line, nothing a terminal would act on
    # The replay goes on: a good event after the corpus is applied.
    path.write_bytes(log + lines(project()))
    after = json.loads(cli("replay", path, "--format", "json").stdout)
    assert after["entities"] == {"project/P": "active"}
