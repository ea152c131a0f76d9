"""Audit (``policy-versions.md``, "Audit: replay LOG --verify RECORDED"): a recorded
ledger held against the replay's, every kind of finding planted on its own."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from statemachine.replay import Report, replay
from statemachine.replay.audit import TABLE_ROWS, VerifyError, render_verify_text, verify

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
RECORDED = ROOT / "examples" / "recorded-ledger.csv"


def envelope(ident: str, time: str, type_: str, subject: str, **data: Any) -> dict[str, Any]:
    return {"id": ident, "time": time, "type": type_, "subject": subject, **({"data": data} if data else {})}


#: A clean log (nothing rejected): a creator project, two orders, a cancellation, a promotion.
LOG = [
    envelope("p", "2026-03-01T10:00:00Z", "project.created", "project/P", kind="creator", currency="USD",
             deadline="2026-04-01T00:00:00Z"),
    envelope("a1", "2026-03-01T11:00:00Z", "order.agreed", "order/O1", project="P", fee="100.00",
             review="manual"),
    envelope("a2", "2026-03-01T11:01:00Z", "order.agreed", "order/O2", project="P", fee="250.00",
             review="auto"),
    envelope("s2", "2026-03-02T09:00:00Z", "order.submitted", "order/O2"),
    envelope("r", "2026-03-03T09:00:00Z", "project.cancellation_requested", "project/P", by="advertiser"),
    envelope("c", "2026-03-04T09:00:00Z", "project.cancellation_accepted", "project/P", by="provider"),
    envelope("pr", "2026-03-04T10:00:00Z", "promotion.created", "promotion/PR", budget="30.00",
             currency="EUR", end="2026-03-10T00:00:00Z"),
    envelope("pa", "2026-03-04T10:05:00Z", "promotion.approved", "promotion/PR"),
    envelope("ps", "2026-03-05T10:00:00Z", "promotion.spent", "promotion/PR", amount="12.50"),
    # later than the promotion's end: its timer fires before this event
    envelope("p2", "2026-03-11T00:00:00Z", "project.created", "project/P2", kind="creator", currency="USD",
             deadline="2026-04-01T00:00:00Z"),
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in LOG))
    return path


@pytest.fixture
def report(log: Path) -> Report:
    with open(log, "rb") as stream:
        return replay(stream, as_of=None)


def own_lines(report: Report) -> list[dict[str, str]]:
    return [line.to_dict() for line in report.ledger]


def jsonl(tmp_path: Path, *lines: dict[str, Any] | str, name: str = "recorded.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def as_csv(tmp_path: Path, rows: list[list[str]], name: str = "recorded.csv") -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = tmp_path / name
    path.write_text(out.getvalue())
    return path


FIELDS = ["time", "kind", "subject", "amount", "currency", "cause"]


def cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=120, check=False)


# -- a recorded ledger that is the replay's own --------------------------------------------
def test_the_replays_own_ledger_all_matched(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    assert [(x["kind"], x["subject"]) for x in lines] == [
        ("payment_released", "order/O2"), ("refund", "order/O1"), ("payment_released", "order/O1"),
        ("hold_placed", "promotion/PR"), ("charge", "promotion/PR"), ("hold_released", "promotion/PR")]
    for path in (jsonl(tmp_path, *lines),
                 as_csv(tmp_path, [FIELDS, *([x[f] for f in FIELDS] for x in lines)])):
        result = verify(report.ledger, path)
        assert result.clean and result.matched == len(lines) == 6
        assert all(row.difference == 0 for row in result.totals)
        assert "Every line matched." in render_verify_text(result)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".csv"])
def test_cli_verify_of_the_replays_own_ledger_exits_0(report: Report, log: Path, tmp_path: Path,
                                                       suffix: str) -> None:
    lines = own_lines(report)
    if suffix == ".csv":
        path = as_csv(tmp_path, [FIELDS, *([x[f] for f in FIELDS] for x in lines)])
    else:
        path = jsonl(tmp_path, *lines, name=f"recorded{suffix}")
    done = cli("replay", log, "--verify", path, "--format", "json")
    assert done.returncode == 0, done.stderr
    whole = orjson.loads(done.stdout)
    assert whole["verify"] == {
        "matched": 6, "differs": [], "missing": [], "unexpected": [], "duplicate": [], "malformed": [],
        "totals": {
            "EUR": {kind: {"recorded": v, "recomputed": v, "difference": "0.00"}
                    for kind, v in (("hold_placed", "30.00"), ("hold_released", "17.50"),
                                    ("charge", "12.50"))},
            "USD": {kind: {"recorded": v, "recomputed": v, "difference": "0.00"}
                    for kind, v in (("refund", "90.00"), ("payment_released", "260.00"))},
        },
    }
    # the rest is the report, byte for byte as without --verify
    plain = orjson.loads(cli("replay", log, "--format", "json").stdout)
    assert {k: v for k, v in whole.items() if k != "verify"} == plain
    text = cli("replay", log, "--verify", path)
    assert text.returncode == 0 and b"Every line matched." in text.stdout


def test_amounts_compare_as_numbers_and_times_as_instants(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    lines[1] = {**lines[1], "amount": "90", "time": "2026-03-04T10:00:00+01:00"}  # 90.00 at 09:00Z
    lines[4] = {**lines[4], "amount": 12.5}  # a JSON number, read exactly
    assert verify(report.ledger, jsonl(tmp_path, *lines)).clean


# -- each kind of finding, planted ------------------------------------------------------------
def test_differs_shows_both_values(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    lines[1] = {**lines[1], "amount": "95.00"}
    lines[3] = {**lines[3], "currency": "USD"}
    lines[5] = {**lines[5], "time": "2026-03-10T00:00:01Z"}
    result = verify(report.ledger, jsonl(tmp_path, *lines))
    assert result.matched == 3
    assert [d.to_dict() for d in result.differs] == [
        {"line": 2, "cause": "c", "subject": "order/O1", "kind": "refund",
         "recorded": {"amount": "95.00", "currency": "USD", "time": "2026-03-04T09:00:00Z"},
         "recomputed": {"amount": "90.00", "currency": "USD", "time": "2026-03-04T09:00:00Z"}},
        {"line": 4, "cause": "pr", "subject": "promotion/PR", "kind": "hold_placed",
         "recorded": {"amount": "30.00", "currency": "USD", "time": "2026-03-04T10:00:00Z"},
         "recomputed": {"amount": "30.00", "currency": "EUR", "time": "2026-03-04T10:00:00Z"}},
        {"line": 6, "cause": "pr", "subject": "promotion/PR", "kind": "hold_released",
         "recorded": {"amount": "17.50", "currency": "EUR", "time": "2026-03-10T00:00:01Z"},
         "recomputed": {"amount": "17.50", "currency": "EUR", "time": "2026-03-10T00:00:00Z"}},
    ]
    assert not (result.missing or result.unexpected or result.duplicate or result.malformed)


def test_missing_is_the_recomputed_line_itself(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    result = verify(report.ledger, jsonl(tmp_path, *lines[:2], *lines[3:]))
    assert result.matched == 5
    assert [m.to_dict() for m in result.missing] == [lines[2]]
    row = next(r for r in result.totals if (r.currency, r.kind) == ("USD", "payment_released"))
    assert (row.recorded, row.recomputed, row.difference) == (250, 260, -10)


def test_unexpected_is_the_recorded_line_and_its_number(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    extra = {**lines[1], "kind": "charge"}  # no charge on an order
    result = verify(report.ledger, jsonl(tmp_path, *lines[:3], "", extra, *lines[3:]))
    assert result.matched == 6
    assert [u.to_dict() for u in result.unexpected] == [{"line": 5, **extra}]  # the blank line counts


def test_a_key_recorded_twice_is_compared_once_and_then_a_duplicate(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    again = {**lines[0], "amount": "1.00"}
    result = verify(report.ledger, jsonl(tmp_path, *lines, again, lines[0]))
    assert result.matched == 6
    assert [d.to_dict() for d in result.duplicate] == [
        {"line": 7, "first_line": 1, **again}, {"line": 8, "first_line": 1, **lines[0]}]
    row = next(r for r in result.totals if (r.currency, r.kind) == ("USD", "payment_released"))
    assert row.recorded == 260 + 1 + 250  # duplicates count in the recorded totals


def test_an_unexpected_key_recorded_twice_is_unexpected_then_duplicate(report: Report,
                                                                       tmp_path: Path) -> None:
    lines = own_lines(report)
    stray = {**lines[0], "cause": "nope"}
    result = verify(report.ledger, jsonl(tmp_path, *lines, stray, stray))
    assert [u.line for u in result.unexpected] == [7]
    assert [(d.line, d.first_line) for d in result.duplicate] == [(8, 7)]


MALFORMED_JSON = [
    ("{not json", "not JSON"),
    ('{"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/\\udcff", "amount": "1.00", '
     '"currency": "USD", "cause": "x"}', "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"text"', "not a JSON object"),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/O1", "amount": "1.00",
      "currency": "USD"}, "lacks the field cause"),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/O1", "amount": "1.00",
      "currency": "USD", "cause": "x", "note": "hi"}, "has an unknown field 'note'"),
    ({"time": "2026-03-02 09:00", "kind": "refund", "subject": "order/O1", "amount": "1.00",
      "currency": "USD", "cause": "x"}, "time: "),
    ({"time": "2026-03-02T09:00:00", "kind": "refund", "subject": "order/O1", "amount": "1.00",
      "currency": "USD", "cause": "x"}, "time: "),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/O1", "amount": "1.00",
      "currency": "XXY", "cause": "x"}, "currency: "),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/O1", "amount": "ten",
      "currency": "USD", "cause": "x"}, "amount: "),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/O1", "amount": "1.001",
      "currency": "USD", "cause": "x"}, "amount: 1.001 has more decimals than USD allows (2)"),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": "order/O1", "amount": "1.5",
      "currency": "JPY", "cause": "x"}, "amount: 1.5 has more decimals than JPY allows (0)"),
    ({"time": "2026-03-02T09:00:00Z", "kind": "refund", "subject": 7, "amount": "1.00",
      "currency": "USD", "cause": "x"}, "subject must be a string"),
]


@pytest.mark.parametrize(("line", "reason"), MALFORMED_JSON)
def test_a_recorded_line_that_cannot_be_read_is_malformed(report: Report, tmp_path: Path,
                                                          line: dict[str, Any] | str, reason: str) -> None:
    lines = own_lines(report)
    result = verify(report.ledger, jsonl(tmp_path, "", *lines, line))
    assert result.matched == 6
    assert [(m.line, m.reason[:len(reason)]) for m in result.malformed] == [(8, reason)]
    # a malformed line counts in no total
    assert all(row.difference == 0 for row in result.totals)


def test_not_utf8_is_malformed(report: Report, tmp_path: Path) -> None:
    path = jsonl(tmp_path, *own_lines(report))
    path.write_bytes(path.read_bytes() + b'{"time": "\xff"}\n')
    assert [m.line for m in verify(report.ledger, path).malformed] == [7]
    rows = [FIELDS, *([x[f] for f in FIELDS] for x in own_lines(report))]
    csv_path = as_csv(tmp_path, rows)
    csv_path.write_bytes(csv_path.read_bytes() + b"2026-03-02T09:00:00Z,refund,order/\xff,1.00,USD,x\n")
    assert [(m.line, m.reason) for m in verify(report.ledger, csv_path).malformed] == [(8, "not UTF-8")]


def test_csv_lines_count_the_header_and_blank_lines_and_columns_must_match(report: Report,
                                                                          tmp_path: Path) -> None:
    lines = own_lines(report)
    # columns in another order than the report's are fine: the header names them
    order = ["cause", "subject", "kind", "amount", "currency", "time"]
    rows = [order, *([x[f] for f in order] for x in lines)]
    rows.insert(3, [])  # a blank line (line 4)
    rows.append(["x", "order/O1", "refund", "1.00", "USD"])  # five columns (line 9)
    rows.append(["x", "order/O1", "refund", "1.00", "USD", "2026-03-02T09:00:00Z", "extra"])  # line 10
    result = verify(report.ledger, as_csv(tmp_path, rows))
    assert result.matched == 6
    assert [(m.line, m.reason) for m in result.malformed] == [
        (9, "has 5 columns, the header has 6"), (10, "has 7 columns, the header has 6")]


@pytest.mark.parametrize(("header", "problem"), [
    (["time", "kind", "subject", "amount", "currency"], "lacks the column cause"),
    ([*FIELDS, "note"], "has an unknown column 'note'"),
    ([*FIELDS[:5], "time"], "lacks the column cause"),
    ([*FIELDS, "time"], "repeats a column"),
])
def test_a_csv_header_that_lacks_or_adds_a_column_cannot_be_read(report: Report, tmp_path: Path,
                                                                 header: list[str], problem: str) -> None:
    path = as_csv(tmp_path, [header])
    with pytest.raises(VerifyError, match=problem):
        verify(report.ledger, path)


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("recorded.txt", "", "cannot tell the format from the extension .txt: use .jsonl, .ndjson or .csv"),
    ("recorded", "", "cannot tell the format from the extension (none)"),
    ("recorded.csv", "", "the CSV file has no header row"),
    ("recorded.csv", "time,kind\n", "lacks the column subject"),
    ("missing.jsonl", None, "cannot read"),
])
def test_cli_exit_2_when_the_recorded_file_cannot_be_read_at_all(log: Path, tmp_path: Path, name: str,
                                                                content: str | None, problem: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    done = cli("replay", log, "--verify", path)
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().count("\n") == 1 and problem in done.stderr.decode(), done.stderr


def test_cli_exit_1_on_any_finding_and_on_a_rejected_log_line(report: Report, log: Path,
                                                              tmp_path: Path) -> None:
    lines = own_lines(report)
    done = cli("replay", log, "--verify", jsonl(tmp_path, *lines[1:]), "--format", "json")
    assert done.returncode == 1
    assert orjson.loads(done.stdout)["verify"]["missing"] == [lines[0]]
    with open(log, "a") as stream:
        stream.write('{"id": "bad", "time": "2026-03-06T00:00:00Z", "type": "order.approved", '
                     '"subject": "order/O1"}\n')
    done = cli("replay", log, "--verify", jsonl(tmp_path, *lines), "--format", "json")
    assert done.returncode == 1  # every line matched, but the log had a rejected line
    assert orjson.loads(done.stdout)["verify"]["matched"] == 6


def test_the_example_recorded_ledger_shows_each_finding(tmp_path: Path) -> None:
    done = cli("replay", EXAMPLE, "--verify", RECORDED, "--format", "json")
    assert done.returncode == 1
    found = orjson.loads(done.stdout)["verify"]
    assert found["matched"] == 22
    assert [d["line"] for d in found["differs"]] == [8]
    assert [(m["subject"], m["kind"]) for m in found["missing"]] == [("order/O-403", "refund")]
    assert [u["line"] for u in found["unexpected"]] == [28]
    assert [(d["line"], d["first_line"]) for d in found["duplicate"]] == [(21, 20)]
    assert [m["line"] for m in found["malformed"]] == [10, 12]
    assert found["totals"]["USD"]["refund"] == {"recorded": "1079.99", "recomputed": "1399.99",
                                                "difference": "-320.00"}


def test_the_text_table_is_capped_and_says_how_many_more(report: Report, tmp_path: Path) -> None:
    lines = own_lines(report)
    strays = [{**lines[0], "cause": f"stray-{n}"} for n in range(TABLE_ROWS + 7)]
    result = verify(report.ledger, jsonl(tmp_path, *lines, *strays))
    text = render_verify_text(result)
    assert len(result.unexpected) == TABLE_ROWS + 7
    assert "stray-49" in text and "stray-50 " not in text
    assert "… and 7 more findings (--format json lists them all)" in text


def test_a_key_the_rules_produce_twice_is_compared_occurrence_by_occurrence(tmp_path: Path) -> None:
    # None of our lifecycles makes two lines of one key, but the audit does not assume it.
    from statemachine.replay import LedgerLine
    from statemachine.timeutil import parse_instant

    first = LedgerLine(parse_instant("2026-03-02T09:00:00Z"), "charge", "promotion/X", Decimal("1.00"),
                       "USD", "e")
    second = LedgerLine(parse_instant("2026-03-03T09:00:00Z"), "charge", "promotion/X", Decimal("2.00"),
                        "USD", "e")
    one, two = first.to_dict(), second.to_dict()
    result = verify([first, second], jsonl(tmp_path, one, two, two))
    assert result.matched == 2
    assert [(d.line, d.first_line) for d in result.duplicate] == [(3, 1)]
    result = verify([first, second], jsonl(tmp_path, one, name="short.jsonl"))
    assert (result.matched, [m.to_dict() for m in result.missing]) == (1, [two])


def test_the_verify_benchmark_runs_and_finds_what_it_planted(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "verify.py"), "--orders", "200",
                           "--out", str(tmp_path), "--format", "jsonl", "--format", "csv"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" OK\n") == 2
