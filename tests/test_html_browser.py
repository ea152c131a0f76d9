"""The HTML replay report of the example log, opened in a real headless Chromium.

Debian's Chromium (``scripts/install-system-deps.sh`` installs it) driven by Playwright's
Python package (never ``playwright install``: no browser is downloaded), with a fresh
profile, every background service off, and every request but the file itself blocked:
the report must work from an e-mail attachment, with no network at all. The page is
checked as a person would use it: the summary agrees with the JSON report, searching an
entity shows its diagram, steps and ledger lines, the chart draws one line per ledger
kind, the rejected lines filter by reason, and dark mode is readable.

Without Chromium or Playwright the module is skipped on a developer's machine and fails
in CI (``CI`` set), where ``make test`` installs both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from statemachine.diagrams import trace_log
from statemachine.replay.html import reason_of

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
EXPECTED = orjson.loads((ROOT / "examples" / "collaborations.expected.json").read_bytes())
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: What the issue asks of the browser: headless, no sandbox (root in CI), no network of its own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (make install provides it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    """The example's report, written by the command line as a user writes it."""
    out = tmp_path_factory.mktemp("html") / "report.html"
    done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE), "--format",
                           "json", "--html", str(out)], cwd=ROOT, capture_output=True, timeout=300,
                          check=False)
    assert done.returncode == 1, done.stderr  # the example has rejected lines on purpose
    assert orjson.loads(done.stdout) == EXPECTED
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright's Python package is not installed (pip install -e '.[test-html]')")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900}, offline=True)
        yield context
        context.close()


class Visit:
    """A page of the report, with what it logged and what it tried to fetch."""

    def __init__(self, context, report: Path, *, scheme: str = "light", fragment: str = "") -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page = context.new_page()
        self.page.emulate_media(color_scheme=scheme)
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        url = report.as_uri()

        def gate(route) -> None:
            if route.request.url.split("#")[0] == url:
                route.continue_()
            else:
                self.blocked.append(route.request.url)
                route.abort()

        self.page.route("**/*", gate)
        self.page.goto(url + fragment, wait_until="load")

    def close(self) -> None:
        self.page.close()


@pytest.fixture()
def visit(browser, report_file) -> Iterator[Visit]:
    seen = Visit(browser, report_file)
    yield seen
    assert seen.errors == []
    assert seen.blocked == []  # self-contained: it asked for nothing but itself
    seen.close()


def _values(page, selector: str, *keys: str) -> dict:
    cells = page.locator(selector)
    return {tuple(cells.nth(i).get_attribute(k) for k in keys) if len(keys) > 1
            else cells.nth(i).get_attribute(keys[0]): cells.nth(i).get_attribute("data-value")
            for i in range(cells.count())}


def test_summary_numbers_equal_the_json_report(visit: Visit) -> None:
    page = visit.page
    stats = {k: int(v) for k, v in _values(page, "td[data-stat]", "data-stat").items()}
    assert stats == EXPECTED["stats"]
    states = Counter((s.partition("/")[0], state) for s, state in EXPECTED["entities"].items())
    shown = _values(page, "#states td[data-state]", "data-kind", "data-state")
    assert {k: int(v) for k, v in shown.items()} == dict(states)
    totals = page.locator("#totals td[data-currency]")
    found = {}
    for i in range(totals.count()):
        cell = totals.nth(i)
        if cell.inner_text() != "–":
            found.setdefault(cell.get_attribute("data-currency"), {})[
                cell.get_attribute("data-ledger-kind")] = cell.inner_text()
    assert found == EXPECTED["totals"]
    assert page.locator("h1").count() == 1
    assert page.locator("h2").all_inner_texts()[:3] == ["Summary", "Money", "Rejected lines"]


def test_searching_an_entity_shows_its_diagram_steps_and_ledger(visit: Visit) -> None:
    page = visit.page
    subject = "order/O-404"
    page.fill("#entity-search", subject)
    results = page.locator("#entity-results button")
    assert results.count() == 1
    assert "approved" in results.first.inner_text()
    results.first.click()
    detail = page.locator("#entity-detail")
    assert detail.locator("h3").inner_text().startswith(subject)
    diagram = detail.locator("figure.diagram svg[role=img]")
    assert diagram.count() == 1 and diagram.is_visible()
    assert subject in (diagram.get_attribute("aria-label") or "")
    # The overlay numbers the path with the event ids, as `diagram LOG SUBJECT` draws it.
    trace = trace_log(EXAMPLE, subject)
    drawn = diagram.locator("text").all_text_contents()
    for step in trace.steps:
        assert step.label in drawn
    rows = detail.locator("table.steps tbody tr")
    assert [rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count())] == [
        s.event for s in trace.steps]
    assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())] == [
        s.trigger for s in trace.steps]
    ledger = detail.locator("table.ledger tbody tr")
    expected = [line for line in EXPECTED["ledger"] if line["subject"] == subject]
    assert ledger.count() == len(expected) > 0
    assert [ledger.nth(i).locator("td").nth(2).inner_text() for i in range(ledger.count())] == [
        line["amount"] for line in expected]
    assert results.first.get_attribute("aria-pressed") == "true"
    assert page.evaluate("location.hash") == "#entity=order%2FO-404"


def test_search_by_words_narrows_to_kind_and_state(visit: Visit) -> None:
    page = visit.page
    page.fill("#entity-search", "order cancelled")
    names = page.locator("#entity-results button > span:first-child").all_inner_texts()
    assert sorted(names) == sorted(s for s, state in EXPECTED["entities"].items()
                                   if s.startswith("order/") and state == "cancelled")
    assert page.locator("#entity-count").inner_text().startswith(f"{len(names)} entities match")


def test_the_chart_has_one_series_per_ledger_kind(visit: Visit) -> None:
    chart = visit.page.locator("#money-chart svg")
    assert chart.count() == 1
    lines = chart.locator("g.mark-line path[aria-roledescription='line mark']")
    series = []
    for i in range(lines.count()):
        label = lines.nth(i).get_attribute("aria-label") or ""
        currency = re.search(r"\b([A-Z]{3}) per (?:day|week|month)\b", label)
        kind = re.search(r"kind: (\w+)", label)
        assert currency and kind, label
        series.append((currency.group(1), kind.group(1)))
    expected = [(currency, kind) for currency, kinds in EXPECTED["totals"].items() for kind in kinds]
    assert sorted(series) == sorted(expected)  # one line each, none twice
    legend = chart.locator("g.role-legend-label text").all_text_contents()
    assert sorted(set(legend)) == sorted({kind for _, kind in expected})


def test_rejected_lines_filter_by_reason(visit: Visit) -> None:
    page = visit.page
    rows = page.locator("#rejected-lines tbody tr")
    assert rows.count() == len(EXPECTED["rejected"])
    reasons = Counter(reason_of(r["error"]) for r in EXPECTED["rejected"])
    for reason, count in reasons.items():
        page.select_option("#reason-select", value=reason)
        visible = [i for i in range(rows.count()) if rows.nth(i).is_visible()]
        assert len(visible) == count
        assert all(rows.nth(i).get_attribute("data-reason") == reason for i in visible)
    page.select_option("#reason-select", value="")
    page.fill("#rejected-text", "evt-043")
    assert [i for i in range(rows.count()) if rows.nth(i).is_visible()] == [2]
    assert page.locator("#rejected-count").inner_text() == f"showing 1 of {rows.count()} lines"


def _luminance(css: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", css)[:3])
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_readable_in_light_and_dark_mode(browser, report_file, scheme: str) -> None:
    seen = Visit(browser, report_file, scheme=scheme, fragment="#entity=project/P-300")
    try:
        colours = seen.page.evaluate("""() => { const s = getComputedStyle(document.body);
            return [s.color, s.backgroundColor]; }""")
        fg, bg = (_luminance(c) for c in colours)
        contrast = (max(fg, bg) + 0.05) / (min(fg, bg) + 0.05)
        assert contrast >= 7, colours  # WCAG AAA for body text
        assert (bg < 0.1) == (scheme == "dark")
        # Pictures keep their light card in both modes; the fragment chose an entity.
        assert seen.page.locator("#entity-detail figure.diagram svg").count() == 1
        assert seen.errors == [] and seen.blocked == []
    finally:
        seen.close()


def test_every_table_has_a_caption_and_column_headers(visit: Visit) -> None:
    tables = visit.page.locator("table")
    assert tables.count() >= 6
    for i in range(tables.count()):
        table = tables.nth(i)
        assert table.locator("caption").count() == 1
        assert table.locator("thead th[scope=col]").count() >= 2


@pytest.fixture(scope="module")
def verify_report_file(tmp_path_factory) -> Path:
    """``replay --verify RECORDED --html FILE`` of the example: the audit's findings in the page."""
    out = tmp_path_factory.mktemp("html") / "verify.html"
    done = subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE), "--verify",
                           "examples/recorded-ledger.csv", "--format", "json", "--html", str(out)],
                          cwd=ROOT, capture_output=True, timeout=300, check=False)
    assert done.returncode == 1, done.stderr  # findings other than matched
    return out


def test_the_verify_findings_render_as_tables_with_headers(browser, verify_report_file) -> None:
    seen = Visit(browser, verify_report_file)
    try:
        page = seen.page
        section = page.locator("section.extra")
        assert section.count() == 1
        assert section.locator("h2").inner_text() == "Verify against examples/recorded-ledger.csv"
        assert page.locator("nav a[href='#section-verify-against-examples-recorded-ledger-csv']").count() == 1
        tables = section.locator("table")
        captions = [tables.nth(i).locator("caption").inner_text() for i in range(tables.count())]
        assert captions == ["summary", "differs", "missing", "unexpected", "duplicate", "malformed", "totals"]
        headers = {caption: tables.nth(i).locator("thead th[scope=col]").all_inner_texts()
                   for i, caption in enumerate(captions)}
        assert headers["differs"][:5] == ["line", "cause", "subject", "kind", "recorded.amount"]
        assert headers["totals"] == ["currency", "kind", "recorded", "recomputed", "difference"]
        differs = tables.nth(1).locator("tbody tr")
        assert differs.count() == 1 and differs.first.is_visible()
        assert differs.first.locator("td").nth(2).inner_text() == "order/O-101"
        assert seen.errors == [] and seen.blocked == []
    finally:
        seen.close()
