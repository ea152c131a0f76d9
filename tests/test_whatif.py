"""What-if (``policy-versions.md``, "What-if: replay LOG --what-if FILE"): the log priced
twice, the draft version governing every order."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from statemachine.lifecycles.versions import BUILTIN, Policies, load_version
from statemachine.replay import replay
from statemachine.replay.whatif import Change, render_what_if_text, what_if

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
BUILTIN_FILE = ROOT / "statemachine" / "lifecycles" / "policies" / "2026-02.toml"
MARCH = ROOT / "examples" / "policy-2026-03.toml"


def cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=120, check=False)


def run_on(data: bytes):
    return lambda policies: replay(io.BytesIO(data), policies=policies)


def test_the_builtin_version_as_the_draft_changes_nothing() -> None:
    result = what_if(run_on(EXAMPLE.read_bytes()), load_version(BUILTIN_FILE))
    assert result.changes == ()
    assert result.baseline.totals() == result.what_if.totals()
    assert all(before == after for _, _, before, after in result.totals())
    done = cli("replay", EXAMPLE, "--what-if", BUILTIN_FILE, "--format", "json")
    assert done.returncode == 1  # the baseline's: the example has rejected lines
    whole = orjson.loads(done.stdout)
    assert list(whole) == ["baseline", "what_if", "difference", "changes"]
    assert whole["changes"] == []
    assert whole["baseline"] == whole["what_if"]
    assert b"No order changes." in cli("replay", EXAMPLE, "--what-if", BUILTIN_FILE).stdout


def test_a_draft_reprices_every_order_whenever_agreed_largest_change_first() -> None:
    draft = load_version(MARCH)
    result = what_if(run_on(EXAMPLE.read_bytes()), draft)
    assert [c.to_dict() for c in result.changes] == [
        {"subject": "order/O-501", "kind": "refund", "before": "50000", "after": "45000",
         "state_before": "expired", "state_after": "expired"},
        {"subject": "order/O-501", "kind": "payment_released", "before": "0", "after": "5000",
         "state_before": "expired", "state_after": "expired"},
        {"subject": "order/O-201", "kind": "refund", "before": "270.00", "after": "240.00",
         "state_before": "cancelled", "state_after": "cancelled"},
        {"subject": "order/O-201", "kind": "payment_released", "before": "30.00", "after": "60.00",
         "state_before": "cancelled", "state_after": "cancelled"},
        {"subject": "order/O-203", "kind": "refund", "before": "225.00", "after": "200.00",
         "state_before": "cancelled", "state_after": "cancelled"},
        {"subject": "order/O-203", "kind": "payment_released", "before": "25.00", "after": "50.00",
         "state_before": "cancelled", "state_after": "cancelled"},
    ]
    # the draft governs orders agreed before its effective_from too (O-501 would anyway; the
    # baseline here is the built-in version alone)
    done = orjson.loads(cli("replay", EXAMPLE, "--what-if", MARCH, "--format", "json").stdout)
    assert done["difference"]["EUR"] == {"refund": "-55.00", "payment_released": "55.00",
                                         "hold_placed": "0.00", "hold_released": "0.00"}
    assert done["what_if"]["totals"]["JPY"] == {"refund": "45000", "payment_released": "5000"}


def test_the_baseline_uses_the_policy_versions_given() -> None:
    baseline = Policies.of(load_version(MARCH))
    result = what_if(run_on(EXAMPLE.read_bytes()), load_version(MARCH), baseline)
    # O-201 and O-203 were agreed after 2 March: already priced by 2026-03 in the baseline;
    # O-501 too; the orders agreed on 1 March had nothing to reprice (none was refunded)
    assert result.changes == ()


def _events(*lines: tuple[str, str, str, str, dict]) -> bytes:
    return "".join(json.dumps({"id": i, "time": t, "type": ty, "subject": s, "data": d}) + "\n"
                   for i, t, ty, s, d in lines).encode()


def test_a_shorter_deemed_approval_changes_a_state_and_refuses_the_late_rejection(tmp_path: Path) -> None:
    draft = load_version(MARCH)  # 7 days
    log = _events(
        ("p", "2026-03-01T10:00:00Z", "project.created", "project/P",
         {"kind": "creator", "currency": "USD", "deadline": "2026-03-20T00:00:00Z"}),
        ("a", "2026-03-01T11:00:00Z", "order.agreed", "order/O", {"project": "P", "fee": "100.00",
                                                                   "review": "manual"}),
        ("s", "2026-03-02T09:00:00Z", "order.submitted", "order/O", {}),
        ("r", "2026-03-10T09:00:00Z", "order.rejected", "order/O", {}),  # day 8
        ("q", "2026-03-21T00:00:00Z", "project.created", "project/Q",
         {"kind": "creator", "currency": "USD", "deadline": "2026-04-20T00:00:00Z"}),
    )
    result = what_if(run_on(log), draft)
    assert result.baseline.entities["order/O"] == "expired"  # rejected, then the deadline passed
    assert result.what_if.entities["order/O"] == "deemed_approved"  # day 7
    assert len(result.what_if.rejected) == 1 and "cannot reject in state deemed_approved" in \
        result.what_if.rejected[0].error
    assert result.exit_status == 0  # the baseline's
    assert result.changes == (
        Change("order/O", "refund", "USD", Decimal("100.00"), Decimal(0), "expired", "deemed_approved"),
        Change("order/O", "payment_released", "USD", Decimal(0), Decimal("100.00"), "expired",
               "deemed_approved"),
    )
    text = render_what_if_text(result)
    assert "what-if:  5 lines, 4 applied, 0 duplicates, 1 rejected" in text
    assert "order/O" in text and "deemed_approved" in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_cli_what_if_exit_status_is_the_baselines(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(_events(("p", "2026-03-01T10:00:00Z", "project.created", "project/P",
                             {"kind": "creator", "currency": "USD", "deadline": "2026-03-20T00:00:00Z"})))
    done = cli("replay", log, "--what-if", MARCH, "--format", fmt)
    assert done.returncode == 0, done.stderr


def test_the_builtin_file_in_the_package_is_the_builtin_version() -> None:
    assert load_version(BUILTIN_FILE) == BUILTIN
