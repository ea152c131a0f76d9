"""``replay LOG --verify RECORDED --html FILE`` and ``--what-if FILE --html FILE``: the
HTML report shows the audit's findings and the what-if's differences (issue 19), and
the usual output and exit status stay what they are without ``--html``.

The page is read back with the standard library's HTML parser (its extra sections'
headings and tables); tests/test_html_browser.py opens one in Chromium.
"""

from __future__ import annotations

import io
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from statemachine.lifecycles.versions import load_version
from statemachine.replay import replay
from statemachine.replay.html.findings import what_if_section
from statemachine.replay.whatif import what_if

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
RECORDED = ROOT / "examples" / "recorded-ledger.csv"
MARCH = ROOT / "examples" / "policy-2026-03.toml"
BUILTIN_FILE = ROOT / "statemachine" / "lifecycles" / "policies" / "2026-02.toml"


def cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=300, check=False)


class Extras(HTMLParser):
    """The page's extra sections: ``{heading: {"paragraphs": [...], "tables": {caption:
    (columns, rows)}}}``, every cell as the page shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._section: dict | None = None
        self._depth = 0  # <section> nesting inside an extra one
        self._text: list[str] | None = None
        self._table: dict | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            if self._section is not None:
                self._depth += 1
            elif ("class", "extra") in attrs:
                self._section = {"paragraphs": [], "tables": {}}
        if self._section is None:
            return
        if tag in ("h2", "p", "caption", "th", "td"):
            self._text = []
        elif tag == "table":
            self._table = {"columns": [], "rows": []}
        elif tag == "tr":
            self._row = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._section is None:
            return
        text = "".join(self._text or [])
        if tag == "section":
            if self._depth:
                self._depth -= 1
            else:
                self.sections[self._section.pop("title")] = self._section
                self._section = None
        elif tag == "h2":
            self._section["title"] = text
        elif tag == "p" and self._table is None:
            self._section["paragraphs"].append(text)
        elif tag == "caption" and self._table is not None:
            self._table["caption"] = text
        elif tag == "th" and self._table is not None:
            self._table["columns"].append(text)
        elif tag == "td" and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._table is not None and self._row:
            self._table["rows"].append(tuple(self._row))
            self._row = None
        elif tag == "table" and self._table is not None:
            table = self._table
            self._section["tables"][table["caption"]] = (tuple(table["columns"]), table["rows"])
            self._table = None
        if tag in ("h2", "p", "caption", "th", "td"):
            self._text = None


def extras(path: Path) -> dict[str, dict]:
    parser = Extras()
    parser.feed(path.read_text("utf-8"))
    return parser.sections


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_verify_with_html_shows_every_finding_and_keeps_the_output(tmp_path: Path, fmt: str) -> None:
    plain = cli("replay", EXAMPLE, "--verify", RECORDED, "--format", fmt)
    out = tmp_path / "verify.html"
    done = cli("replay", EXAMPLE, "--verify", RECORDED, "--format", fmt, "--html", out)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert done.returncode == 1  # findings other than matched (and the log's rejected lines)
    sections = extras(out)
    assert list(sections) == [f"Verify against {RECORDED}"]
    (verify,) = sections.values()
    assert verify["paragraphs"] == ["22 matched, 1 differs, 1 missing, 1 unexpected, 1 duplicate, "
                                    "2 malformed. Not every recorded line matched."]
    tables = verify["tables"]
    assert list(tables) == ["summary", "differs", "missing", "unexpected", "duplicate", "malformed",
                            "totals"]
    assert tables["summary"][1] == [("source", str(RECORDED)), ("matched", "22")]
    columns, rows = tables["differs"]
    assert [dict(zip(columns, row, strict=True)) for row in rows] == [{
        "line": "8", "cause": "evt-037", "subject": "order/O-101", "kind": "payment_released",
        "recorded.amount": "1250.00", "recorded.currency": "USD", "recorded.time": "2026-03-07T09:00:00Z",
        "recomputed.amount": "1200.00", "recomputed.currency": "USD",
        "recomputed.time": "2026-03-07T09:00:00Z"}]
    columns, rows = tables["missing"]
    assert [(r[columns.index("subject")], r[columns.index("kind")]) for r in rows] == [
        ("order/O-403", "refund")]
    columns, rows = tables["unexpected"]
    assert [(r[columns.index("line")], r[columns.index("subject")], r[columns.index("amount")])
            for r in rows] == [("28", "order/O-102", "80.00")]
    columns, rows = tables["duplicate"]
    assert [(r[columns.index("line")], r[columns.index("first_line")]) for r in rows] == [("21", "20")]
    columns, rows = tables["malformed"]
    assert [(r[columns.index("line")], r[columns.index("reason")]) for r in rows] == [
        ("10", "amount: 12.345 has more decimals than USD allows (2)"),
        ("12", "has 5 columns, the header has 6")]
    columns, rows = tables["totals"]
    assert columns == ("currency", "kind", "recorded", "recomputed", "difference")
    assert ("USD", "refund", "1079.99", "1399.99", "-320.00") in rows
    assert ("USD", "charge", "156.00", "105.50", "50.50") in rows
    assert ("JPY", "refund", "50000", "50000", "0") in rows


def test_what_if_with_html_shows_the_money_and_the_orders_that_change(tmp_path: Path) -> None:
    plain = cli("replay", EXAMPLE, "--what-if", MARCH, "--format", "json")
    out = tmp_path / "what-if.html"
    done = cli("replay", EXAMPLE, "--what-if", MARCH, "--format", "json", "--html", out, "--workers", "2")
    assert (done.returncode, done.stdout) == (plain.returncode, plain.stdout)
    assert done.returncode == 1  # the baseline's: the example has rejected lines
    assert done.stderr.decode().splitlines() == [
        "note: --html replays in one process (it records every entity's path as it goes); "
        "--workers is ignored"]
    (title, section), = extras(out).items()
    assert title == "What if policy 2026-03 had governed every order"
    assert section["paragraphs"][1:] == ["Baseline: 68 lines, 61 applied, 1 duplicate, 6 rejected.",
                                         "What if: 68 lines, 61 applied, 1 duplicate, 6 rejected."]
    money = section["tables"]["money per currency and kind"]
    assert money[0] == ("currency", "kind", "baseline", "what if", "difference")
    assert ("EUR", "refund", "495.00", "440.00", "-55.00") in money[1]
    assert ("JPY", "refund", "50000", "45000", "-5000") in money[1]
    columns, rows = section["tables"]["orders that change (largest change first)"]
    assert columns == ("order", "kind", "before", "after", "state before", "state after")
    assert rows[0] == ("order/O-501", "refund", "50000", "45000", "expired", "expired")  # largest first
    assert ("order/O-203", "payment_released", "25.00", "50.00", "cancelled", "cancelled") in rows
    assert len(rows) == 6
    # The page above the section is the log as it stands: its summary is the baseline's.
    html = out.read_text("utf-8")
    assert 'data-stat="applied" data-value="61"' in html


def test_policy_with_html_writes_the_page_without_extra_sections(tmp_path: Path) -> None:
    plain = cli("replay", EXAMPLE, "--policy", MARCH)
    out = tmp_path / "policy.html"
    done = cli("replay", EXAMPLE, "--policy", MARCH, "--html", out)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")
    assert extras(out) == {}


def test_html_that_cannot_be_written_is_one_line_and_exit_2_after_the_output(tmp_path: Path) -> None:
    plain = cli("replay", EXAMPLE, "--what-if", BUILTIN_FILE)
    done = cli("replay", EXAMPLE, "--what-if", BUILTIN_FILE, "--html", tmp_path / "no" / "dir.html")
    assert done.returncode == 2
    assert done.stdout == plain.stdout
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("error: cannot write ") and "dir.html" in line


def test_the_what_if_section_lists_a_bounded_number_of_changes_and_says_so() -> None:
    data = EXAMPLE.read_bytes()
    result = what_if(lambda policies: replay(io.BytesIO(data), policies=policies), load_version(MARCH))
    section = what_if_section(result, rows=2)
    changes = section.tables[1]
    assert (len(changes.rows), changes.total) == (2, len(result.changes)) and len(result.changes) > 2
    assert changes.rows[0][0] == result.changes[0].subject
    same = what_if(lambda policies: replay(io.BytesIO(data), policies=policies), load_version(BUILTIN_FILE))
    section = what_if_section(same)
    assert section.paragraphs[-1] == "No order changes." and len(section.tables) == 1


def test_without_the_html_extra_the_command_stops_before_replaying(tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    import importlib.util

    from statemachine.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "altair" else real(name, *rest))
    out = tmp_path / "r.html"
    assert main(["replay", str(EXAMPLE), "--what-if", str(MARCH), "--html", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: the HTML report needs altair: pip install 'collab-lifecycles[html]'"]
    assert not out.exists()
