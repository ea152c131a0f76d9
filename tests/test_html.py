"""The HTML replay report, without a browser: what goes into the page and how it is bounded.

The browser test (``test_html_browser.py``) checks the page as people use it; these check
its parts: the recorded paths against ``diagram``'s tracer, the sample, the money per
period against the report's totals, the bounds on big logs, escaping of what the log
says, extra sections, and the command line.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import attrs
import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.diagrams import trace_log
from statemachine.replay import LedgerLine, Report, render_text, replay_path
from statemachine.replay.html import (
    Limits,
    Section,
    Table,
    reason_of,
    render_html,
    replay_traced_path,
    section_from,
    write_html,
)
from statemachine.replay.html.chart import add_line, daily_sums, money_over_time, period_unit, totals_of
from statemachine.replay.html.graphs import render_svgs
from statemachine.replay.html.sample import group_by_kind_and_state, quotas, sample_groups, stratified

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
EXPECTED_BYTES = (ROOT / "examples" / "collaborations.expected.json").read_bytes()
EXPECTED = orjson.loads(EXPECTED_BYTES)


@pytest.fixture(scope="module")
def traced():
    return replay_traced_path(EXAMPLE)


@pytest.fixture(scope="module")
def page(traced) -> str:
    return render_html(traced.report, traced.paths, source="examples/collaborations.jsonl")


# -- the paths ---------------------------------------------------------------------------
def test_traced_replay_gives_the_same_report(traced) -> None:
    assert traced.report == replay_path(EXAMPLE)


def test_recorded_paths_equal_what_the_diagram_command_traces(traced) -> None:
    subjects = list(traced.report.entities)
    traces = traced.paths.traces(subjects, traced.report.entities)
    assert set(traces) == set(subjects)
    for subject in subjects:
        assert traces[subject] == trace_log(EXAMPLE, subject), subject


def test_recorded_paths_of_a_generated_log_with_timers_and_cascades(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    log = tmp_path / "log.jsonl"
    generate.write_log(log, orders=120, seed=6)
    done = replay_traced_path(log)
    sample = stratified(done.report.entities, 40)
    traces = done.paths.traces(sample, done.report.entities)
    assert any(s.timer for t in traces.values() for s in t.steps)  # deemed approvals, expiries
    for subject in sample:
        assert traces[subject] == trace_log(log, subject), subject


# -- the sample -----------------------------------------------------------------------------
@given(st.lists(st.integers(0, 50), max_size=12), st.integers(0, 300))
def test_quotas_fill_the_bound_evenly(sizes: list[int], limit: int) -> None:
    taken = quotas(sizes, limit)
    assert sum(taken) == min(limit, sum(sizes))
    assert all(0 <= t <= s for t, s in zip(taken, sizes, strict=True))
    short = [t for t, s in zip(taken, sizes, strict=True) if t < s]
    # a group that did not get all it has got as much as any other, give or take one
    assert all(t >= max(taken) - 1 for t in short)
    if limit >= sum(1 for s in sizes if s):
        assert all(t > 0 for t, s in zip(taken, sizes, strict=True) if s)


def test_a_negative_bound_is_an_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        quotas([3], -1)


@given(st.dictionaries(st.from_regex(r"(order|project|promotion)/[A-Z]-[0-9]{1,4}", fullmatch=True),
                       st.sampled_from(["agreed", "approved", "expired", "cancelled"]), max_size=80),
       st.integers(0, 100))
def test_stratified_sample_keeps_order_and_every_kind_and_state(entities: dict[str, str], limit: int) -> None:
    chosen = stratified(entities, limit)
    assert len(chosen) == min(limit, len(entities))
    assert chosen == [s for s in entities if s in set(chosen)]  # the report's order
    assert chosen == stratified(dict(entities), limit)  # deterministic
    groups = {(s.partition("/")[0], state) for s, state in entities.items()}
    if limit >= len(groups):
        assert {(s.partition("/")[0], entities[s]) for s in chosen} == groups


@given(st.dictionaries(st.from_regex(r"(order|project|p)/[A-Z]-[0-9]{1,3}", fullmatch=True),
                       st.sampled_from(["agreed", "approved", "cancelled"]), max_size=60),
       st.integers(0, 70))
def test_the_grouping_and_its_samples_are_the_plain_ones(entities: dict[str, str], limit: int) -> None:
    # The plain definitions the page's faster ones must equal: groups in the order their
    # first member was created (a state shared by kinds too), and a sample of the groups
    # that is the grouping of the stratified sample, so the page cuts both from one pass.
    plain: dict[tuple[str, str], list[str]] = {}
    for subject, state in entities.items():
        plain.setdefault((subject.partition("/")[0], state), []).append(subject)
    groups = group_by_kind_and_state(entities)
    assert list(groups.items()) == list(plain.items())
    chosen = stratified(entities, limit)
    assert stratified(entities, limit, groups) == chosen
    if len(entities) > limit:
        sampled = sample_groups(groups, limit)
        regrouped = group_by_kind_and_state({s: entities[s] for s in chosen})
        assert list(sampled.items()) == list(regrouped.items())


# -- rejections -------------------------------------------------------------------------------
@pytest.mark.parametrize(("error", "reason"), [
    ("order/O-201: cannot approve in state agreed", "cannot approve in state agreed"),
    ("malformed JSON: unexpected end of data: column 71 (char 70)", "malformed JSON"),
    ("promotion/PR-1: cannot spend in state running: spending 80.00 would exceed the budget",
     "cannot spend in state running"),
    ("id 'evt-059' was applied before with different content",
     "id '…' was applied before with different content"),
])
def test_reason_drops_the_subject_and_the_details(error: str, reason: str) -> None:
    assert reason_of(error) == reason


# -- money over time -------------------------------------------------------------------------
@pytest.mark.parametrize(("days", "unit"), [(0, "day"), (92, "day"), (93, "week"), (3 * 366, "week"),
                                            (3 * 366 + 1, "month")])
def test_the_period_grows_with_the_span(days: int, unit: str) -> None:
    assert period_unit(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=days)) == unit


def _line(day: datetime, kind: str, amount: str, currency: str = "USD") -> LedgerLine:
    return LedgerLine(day, kind, "order/O-1", Decimal(amount), currency, "e")


def test_weeks_start_on_monday_and_empty_periods_count_zero() -> None:
    start = datetime(2026, 1, 7, 12, tzinfo=UTC)  # a Wednesday
    lines = [_line(start, "refund", "1.00"), _line(start + timedelta(days=120), "refund", "2.00"),
             _line(start + timedelta(days=1), "charge", "0.50")]
    (usd,) = money_over_time(lines)
    assert usd.unit == "week"
    assert usd.periods[0] == date(2026, 1, 5) and all(p.weekday() == 0 for p in usd.periods)
    assert all(b - a == timedelta(days=7) for a, b in zip(usd.periods, usd.periods[1:], strict=False))
    assert usd.kinds == ("refund", "charge")
    rows = dict(usd.rows())
    assert rows["2026-01-05"] == ["1.00", "0.50"]
    assert rows["2026-01-12"] == ["0.00", "0.00"]


ledger_lines = st.builds(
    _line,
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(["refund", "payment_released", "hold_placed", "hold_released", "charge"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2).map(str),
    st.sampled_from(["USD", "EUR", "JPY"]),
)


@settings(max_examples=60)
@given(st.lists(ledger_lines, max_size=40))
def test_the_chart_and_the_totals_add_up_to_the_report(lines: list[LedgerLine]) -> None:
    report = Report(None, 0, 0, 0, {}, tuple(lines), ())
    sums: dict = {}
    for line in lines:
        add_line(sums, line)
    assert totals_of(sums) == report.totals()  # same figures, same order
    charted: dict[tuple[str, str], Decimal] = {}
    for series in money_over_time(lines):
        for (_, kind), amount in series.amounts.items():
            charted[series.currency, kind] = charted.get((series.currency, kind), Decimal(0)) + amount
    assert charted == {(c, k): v for c, per in report.totals().items() for k, v in per.items()}


@settings(max_examples=60)
@given(st.lists(ledger_lines, max_size=40), st.booleans(),
       st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]))
def test_daily_sums_in_one_pass_equal_the_line_by_line_sums(lines: list[LedgerLine], ordered: bool,
                                                            zone: timezone) -> None:
    # In time order as a replay books them, or in any order; at any UTC offset (the
    # day is always the UTC day).
    lines = sorted(lines, key=lambda line: line.time) if ordered else lines
    lines = [msgspec.structs.replace(line, time=line.time.astimezone(zone),
                                     subject=f"order/O-{i % 3}") for i, line in enumerate(lines)]
    expected: dict = {}
    for line in lines:
        add_line(expected, line)
    sums, kept = daily_sums(lines, ["order/O-1", "order/O-9"])
    assert sums == expected and list(sums) == list(expected)
    assert kept == {"order/O-1": [line for line in lines if line.subject == "order/O-1"], "order/O-9": []}


# -- the page ----------------------------------------------------------------------------------
class _Refs(HTMLParser):
    """Every tag, and every attribute that would make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.fetches: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "data", "poster", "action") and value \
                    and not value.startswith("#"):
                self.fetches.append((tag, name, value))


def test_the_page_is_self_contained(page: str) -> None:
    refs = _Refs()
    refs.feed(page)
    assert refs.fetches == []
    assert refs.tags["link"] == refs.tags["iframe"] == refs.tags["img"] == 0
    assert "url(" not in page and "@import" not in page
    assert refs.tags["script"] == 2  # the entity list (JSON) and the inline script


def test_the_page_shows_the_summary_and_every_entity_in_full(page: str) -> None:
    for key, value in EXPECTED["stats"].items():
        assert f'data-stat="{key}" data-value="{value}"' in page
    assert page.count("<template id=\"entity-") == len(EXPECTED["entities"])
    assert page.count('role="img" aria-label=') == len(EXPECTED["entities"])
    assert "Sampled" not in page and "sampled" not in page


def test_the_same_report_gives_the_same_bytes(traced, page: str) -> None:
    assert render_html(traced.report, traced.paths, source="examples/collaborations.jsonl") == page


def test_bounds_sample_the_entities_and_cut_the_rejected_lines_saying_so(traced) -> None:
    html = render_html(traced.report, traced.paths, limits=Limits(details=4, listed=12, rejected=2))
    listing = json.loads(re.search(r'<script type="application/json" id="entity-list">(.*?)</script>',
                                   html, re.DOTALL).group(1))
    listed = [f"{kind}/{i}" for kind, _, ids in listing["groups"] for i in ids]
    assert len(listed) == 12 and set(listed) <= set(EXPECTED["entities"])
    assert len(listing["details"]) == 4 and set(listing["details"]) <= set(listed)
    assert html.count('<template id="entity-') == 4
    assert "<strong>Sampled:</strong> the search holds 12 of the 21 entities" in html
    assert "4 of them are shown in full" in html
    assert len(re.findall(r"<tr data-reason=", html)) == 2
    assert "This file lists the first 2 of them" in html
    # counted things stay complete
    assert re.search(r"<caption>Rejections per reason</caption>.*?</table>", html, re.DOTALL).group(0) \
        .count("<tr><th scope=\"row\">") == len({reason_of(r["error"]) for r in EXPECTED["rejected"]})


def test_what_the_log_says_is_text_never_markup(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps({"id": "p1", "time": "2026-03-01T10:00:00Z", "type": "project.created",
                    "subject": "project/P<b>1", "data": {"kind": "creator", "currency": "USD",
                                                        "deadline": "2026-04-01T00:00:00Z"}}) + "\n"
        + json.dumps({"id": hostile, "time": "2026-03-01T10:01:00Z", "type": "order.approved",
                      "subject": "order/</script><img src=x>"}) + "\n")
    done = replay_traced_path(log)
    assert done.report.rejected and done.report.entities == {"project/P<b>1": "active"}
    html = render_html(done.report, done.paths)
    assert hostile not in html and "<img src=x>" not in html and "P<b>1" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "project/P\\u003cb>1" in html  # in the JSON entity list
    refs = _Refs()
    refs.feed(html)
    assert refs.tags["img"] == 0 and refs.tags["b"] == 0 and refs.tags["script"] == 2


def test_without_graphviz_the_page_says_so_and_keeps_the_rest(traced, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    html = render_html(traced.report, traced.paths)
    assert "<strong>No diagrams:</strong> Graphviz &#39;dot&#39; was not found on PATH" in html
    assert 'role="img" aria-label=' not in html
    assert html.count('<table class="steps">') == len(EXPECTED["entities"])


def test_without_graphviz_the_painter_says_so_too(traced, tmp_path: Path, monkeypatch) -> None:
    # The diagrams are drawn in the painter's process when there is one: the same page,
    # the same one-line reason (and the same page as drawn here).
    from statemachine.replay.html.chart import Painter

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with Painter() as painter:  # spawned with this PATH
        html = render_html(traced.report, traced.paths, painter=painter)
    assert html == render_html(traced.report, traced.paths)
    assert html.count("Graphviz &#39;dot&#39; was not found on PATH") == 1


def test_without_paths_the_page_lists_states_only(traced) -> None:
    html = render_html(traced.report)
    assert "written without the entities' paths" in html
    assert '<table class="steps">' not in html


def test_diagrams_render_the_same_every_time(traced) -> None:
    from statemachine.diagrams import build_diagram, overlay, to_dot
    from statemachine.lifecycles import DOMAIN

    traces = traced.paths.traces(list(traced.report.entities), traced.report.entities)
    sources = [to_dot(build_diagram(DOMAIN.lifecycle(t.lifecycle)), overlay(build_diagram(
        DOMAIN.lifecycle(t.lifecycle)), t)) for t in traces.values()]
    first = render_svgs(sources)
    assert render_svgs(sources, workers=1) == first
    assert all(svg.startswith("<svg") and svg.endswith("</svg>") and "<!--" not in svg for svg in first)


# -- extra sections ---------------------------------------------------------------------------
class Money(msgspec.Struct, frozen=True):
    amount: str
    currency: str


class Differs(msgspec.Struct, frozen=True):
    line: int
    subject: str
    recorded: Money
    recomputed: Money


@attrs.frozen
class Verification:
    source: str
    matched: int
    differs: tuple[Differs, ...]
    missing: tuple[LedgerLine, ...]
    totals: dict[str, dict[str, Decimal]]


@dataclasses.dataclass(frozen=True)
class WhatIf:
    version: str
    changed: list[dict[str, str]]


def test_a_result_object_becomes_a_section_field_by_field() -> None:
    result = Verification(
        "ledger.csv", 20,
        (Differs(7, "order/O-1", Money("90.00", "USD"), Money("100.00", "USD")),),
        (), {"USD": {"refund": Decimal("1.50")}})
    section = section_from("Verify: ledger.csv", result, summary="1 line differs.")
    assert section.paragraphs == ("1 line differs.",)
    by_caption = {t.caption: t for t in section.tables}
    assert by_caption["summary"].rows == (("source", "ledger.csv"), ("matched", "20"), ("missing", "none"))
    assert by_caption["differs"].columns == ("line", "subject", "recorded.amount", "recorded.currency",
                                             "recomputed.amount", "recomputed.currency")
    assert by_caption["differs"].rows == (("7", "order/O-1", "90.00", "USD", "100.00", "USD"),)
    assert by_caption["totals"].rows == (("USD", "1.50"),)
    assert section.ident == "section-verify-ledger-csv"
    whatif = section_from("What if", WhatIf("v2", [{"subject": "order/O-1", "state": "expired"}] * 3),
                          row_limit=2)
    (_, changed) = whatif.tables
    assert changed.total == 3 and len(changed.rows) == 2
    with pytest.raises(TypeError, match="cannot show a int"):
        section_from("x", 3)
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        Table("t", ("a", "b"), (("only",),))


def test_sections_are_drawn_after_the_rejected_lines_and_in_the_contents(traced) -> None:
    sections = [Section("Verify <ledger>", ("All lines match.",), (Table("t", ("a",), (("<i>x</i>",),)),)),
                section_from("What if", WhatIf("v2", []))]
    html = render_html(traced.report, traced.paths, sections=sections)
    ids = [m.group(1) for m in re.finditer(r'<section id="([^"]+)"', html)]
    assert ids[:5] == ["summary", "money", "rejected", "section-verify-ledger", "section-what-if"]
    assert '<a href="#section-verify-ledger">Verify &lt;ledger&gt;</a>' in html
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td>" in html


# -- the command line ---------------------------------------------------------------------------
def cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=300, check=False)


def test_cli_writes_the_file_beside_the_usual_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = cli("replay", EXAMPLE, "--format", "json", "--html", out, "--workers", "2")
    assert done.returncode == 1  # the example's rejected lines
    assert done.stdout == EXPECTED_BYTES  # byte for byte what it is without --html
    assert done.stderr.decode().splitlines() == [
        "note: --html replays in one process (it records every entity's path as it goes); "
        "--workers is ignored"]
    html = out.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Log <code>" in html
    text = cli("replay", EXAMPLE, "--html", tmp_path / "again.html")
    assert text.stdout.decode() == render_text(replay_path(EXAMPLE))
    assert (tmp_path / "again.html").read_bytes().replace(b"again.html", b"") == \
        out.read_bytes().replace(b"report.html", b"")


def test_cli_cannot_write_the_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = cli("replay", EXAMPLE, "--format", "json", "--html", tmp_path / "no" / "such" / "dir.html")
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write ") and "dir.html" in lines[0]
    assert cli("replay", tmp_path / "missing.jsonl", "--html", tmp_path / "x.html").returncode == 2
    assert not (tmp_path / "x.html").exists()


def test_cli_an_unwritable_report_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # The page is started before the report is written (its drawing goes on meanwhile):
    # the failure is still one line, and no page is written after it.
    out = tmp_path / "report.html"
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE), "--format",
                               "json", "--html", str(out)], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                              timeout=300, check=False)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == ["error: cannot write the report: No space left on device"]
    assert not out.exists()


def test_cli_writes_the_same_report_to_a_pipe_and_to_a_file(tmp_path: Path) -> None:
    # Standard output a file, as well as the pipe of the test above.
    with open(tmp_path / "out.json", "wb") as stdout:
        done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE), "--format",
                               "json", "--html", str(tmp_path / "r.html")], cwd=ROOT, stdout=stdout,
                              stderr=subprocess.PIPE, timeout=300, check=False)
    assert done.returncode == 1 and done.stderr == b""
    assert (tmp_path / "out.json").read_bytes() == EXPECTED_BYTES


def test_library_write_html_returns_the_size(traced, tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    assert write_html(path, traced.report, traced.paths) == path.stat().st_size > 100_000


def test_readme_example_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "write_html" in b]
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "collaborations.jsonl").write_bytes(EXAMPLE.read_bytes())
    done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 True"]
    html = (tmp_path / "report.html").read_text("utf-8")
    assert '<h2 id="section-verify-h">Verify</h2>' in html and "<td>100.00</td>" in html


def test_a_painter_whose_helper_died_is_replaced_by_drawing_here(traced) -> None:
    import os
    import signal

    from statemachine.replay.html.chart import Painter

    alone = render_html(traced.report, traced.paths)
    with Painter() as painter:
        assert render_html(traced.report, traced.paths, painter=painter) == alone
        for pid in list(painter._pool._processes):  # the helper, killed as the OOM killer would
            os.kill(pid, signal.SIGKILL)
        assert render_html(traced.report, traced.paths, painter=painter) == alone
