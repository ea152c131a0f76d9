"""The command line, run as users run it: ``python -m statemachine replay ...`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
EXPECTED = ROOT / "examples" / "collaborations.expected.json"

PROJECT = {"id": "p", "time": "2026-03-01T10:00:00Z", "type": "project.created",
           "subject": "project/P", "data": {"kind": "creator", "currency": "USD",
                                            "deadline": "2026-04-01T00:00:00Z"}}
ORDER = {"id": "o", "time": "2026-03-01T10:05:00Z", "type": "order.agreed", "subject": "order/O",
         "data": {"project": "P", "fee": "120.00", "review": "manual"}}
REFUSED = {"id": "x", "time": "2026-03-01T10:06:00Z", "type": "order.approved",
           "subject": "order/O"}


def cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=120, check=False)


def write(tmp_path: Path, *lines: dict | str) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_exit_0_when_every_line_applied_or_was_a_duplicate(tmp_path: Path) -> None:
    done = cli("replay", write(tmp_path, PROJECT, ORDER, ORDER), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["stats"] == {"lines": 3, "applied": 2, "duplicates": 1,
                                                  "rejected": 0}
    assert done.stderr == b""


def test_exit_1_when_any_line_was_rejected_and_the_report_is_still_complete(tmp_path: Path) -> None:
    done = cli("replay", write(tmp_path, PROJECT, ORDER, REFUSED, "{oops"), "--format", "json")
    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    assert report["stats"] == {"lines": 4, "applied": 2, "duplicates": 0, "rejected": 2}
    assert report["entities"] == {"project/P": "active", "order/O": "agreed"}
    assert [(r["line"], r["id"]) for r in report["rejected"]] == [(3, "x"), (4, None)]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exit_2_with_one_line_and_no_traceback_when_the_log_cannot_be_read(tmp_path: Path,
                                                                           fmt: str) -> None:
    missing = tmp_path / "nope.jsonl"
    done = cli("replay", missing, "--format", fmt)
    assert done.returncode == 2
    assert done.stdout == b""
    err = done.stderr.decode()
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith("error: cannot read ") and str(missing) in err
    assert "No such file" in err
    assert "Traceback" not in err


def test_a_directory_is_unreadable_too(tmp_path: Path) -> None:
    done = cli("replay", tmp_path)
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and b"Traceback" not in done.stderr


def test_bad_arguments_are_usage_errors_without_traceback(tmp_path: Path) -> None:
    done = cli("replay", write(tmp_path, PROJECT), "--as-of", "yesterday")
    assert done.returncode == 2
    assert b"--as-of" in done.stderr and b"Traceback" not in done.stderr


def test_the_json_report_is_byte_identical_across_runs() -> None:
    first = cli("replay", EXAMPLE, "--format", "json")
    second = cli("replay", EXAMPLE, "--format", "json")
    assert first.stdout == second.stdout
    assert first.stdout.endswith(b"\n")


def test_the_example_replays_to_exactly_the_expected_report() -> None:
    done = cli("replay", EXAMPLE, "--format", "json")
    assert done.returncode == 1  # the example has rejected lines on purpose
    assert done.stdout == EXPECTED.read_bytes()


def test_spilled_ids_give_the_same_report_duplicates_and_conflicts_included() -> None:
    # the example holds a duplicate and a conflict: both are told apart from disk
    done = cli("replay", EXAMPLE, "--format", "json", "--spill-ids")
    assert done.stdout == EXPECTED.read_bytes()
    report = json.loads(done.stdout)
    assert report["stats"]["duplicates"] == 1
    assert any("applied before with different content" in r["error"] for r in report["rejected"])


def test_the_example_replays_the_same_when_sorted() -> None:
    # the example is already in time order: --sort changes nothing
    assert cli("replay", EXAMPLE, "--format", "json", "--sort").stdout == EXPECTED.read_bytes()


def test_as_of_fires_timers_after_the_last_event(tmp_path: Path) -> None:
    submitted = {"id": "s", "time": "2026-03-02T00:00:00Z", "type": "order.submitted",
                 "subject": "order/O"}
    log = write(tmp_path, PROJECT, ORDER, submitted)
    before = orjson.loads(cli("replay", log, "--format", "json").stdout)
    after = orjson.loads(cli("replay", log, "--format", "json",
                             "--as-of", "2026-03-16T00:00:00Z").stdout)
    assert before["entities"]["order/O"] == "submitted"
    assert after["entities"]["order/O"] == "deemed_approved"
    assert after["as_of"] == "2026-03-16T00:00:00Z"
    assert after["ledger"] == [{"time": "2026-03-16T00:00:00Z", "kind": "payment_released",
                                "subject": "order/O", "amount": "120.00", "currency": "USD",
                                "cause": "s"}]


def test_the_text_format_shows_states_money_per_currency_and_rejected_lines() -> None:
    done = cli("replay", EXAMPLE)
    assert done.returncode == 1
    text = done.stdout.decode()
    assert text.startswith("Replay as of 2026-03-21T09:00:00Z: 68 lines, 61 applied, "
                           "1 duplicate, 6 rejected")
    lines = text.splitlines()

    def row(*cells: str) -> bool:
        return any([c for c in line.replace("│", " ").split() if c] == list(cells) for line in lines)

    # states, counted per kind
    assert "Entities by state" in text
    assert row("order", "approved", "6")
    assert row("order", "deemed_approved", "1")
    assert row("project", "cancelled", "3")
    assert row("promotion", "turned_off", "1")
    # money per currency: refund, payment_released, hold_placed, hold_released, charge
    assert "Money by currency" in text
    assert row("EUR", "495.00", "505.00", "75.00", "75.00", "-")
    assert row("JPY", "50000", "-", "-", "-", "-")
    assert row("USD", "1399.99", "3900.00", "170.00", "64.50", "105.50")
    # the rejected lines: number, id, reason
    assert "Rejected lines" in text
    assert any(line.split("│")[1:3] == ["   45 ", " evt-042 "] for line in lines if "│" in line)
    assert "order/O-201: cannot approve in state agreed" in text
    assert "malformed JSON" in text


def test_the_text_format_says_when_nothing_was_rejected(tmp_path: Path) -> None:
    done = cli("replay", write(tmp_path, PROJECT, ORDER))
    assert done.returncode == 0
    assert "No rejected lines." in done.stdout.decode()
    assert "Rejected lines" not in done.stdout.decode()


def test_progress_only_on_a_terminal() -> None:
    import io

    from statemachine.replay import Replayer
    from statemachine.replay.progress import terminal_progress

    with terminal_progress(io.StringIO()) as progress:
        assert progress is None  # piped: nothing at all

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with terminal_progress(out) as progress:
        assert progress is not None
        replayer = Replayer()
        replayer.feed(1, b"{not json")
        progress(replayer)
    assert "replaying" in out.getvalue()


def test_an_unwritable_report_is_one_line_and_exit_2() -> None:
    import subprocess
    import sys

    with open("/dev/full", "wb") as full:
        result = subprocess.run([sys.executable, "-m", "statemachine", "replay",
                                 "examples/collaborations.jsonl", "--format", "json"],
                                stdout=full, stderr=subprocess.PIPE, text=True, check=False,
                                cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: cannot write the report: No space left on device"


def test_as_of_before_the_clock_says_so_and_verbose_works_after_the_subcommand() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "statemachine", "replay",
                             "examples/collaborations.jsonl", "--format", "json", "-v",
                             "--as-of", "2026-03-01T00:00:00Z"],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 1
    assert "note: --as-of 2026-03-01T00:00:00Z is before the last event" in result.stderr
    assert "transition" in result.stderr  # -v after the subcommand logs every transition

