"""Policy versions (``shared/spec/policy-versions.md``): the files, their refusals, and
which version governs an order, each rule at its boundary."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import MICROSECOND, T0, at, ev, of

from statemachine import Engine
from statemachine.lifecycles import BUILTIN_POLICIES, DOMAIN, Policies, PolicyError, domain_for, policy
from statemachine.lifecycles.effects import PaymentReleased, RefundIssued
from statemachine.lifecycles.versions import BUILTIN, load_policies, load_version
from statemachine.replay import replay, to_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"

#: A later version: from 2026-03-10, 80 % / 40 % for the advertiser, 7 days, 90 % on expiry.
EFFECTIVE = "2026-03-10T00:00:00Z"
V2607 = f"""\
id = "2026-07"
effective_from = "{EFFECTIVE}"
title = "Cancellation policy, July 2026"
deemed_approval_days = 7

[creator.refund_percent]
agreed    = {{ advertiser = 80, provider = 100 }}
submitted = {{ advertiser = 40, provider = 100 }}
delivered = {{ advertiser = 0,  provider = 0 }}

[expiry]
refund_percent = 90
"""


def version_file(tmp_path: Path, text: str = V2607, name: str = "v.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def policies(tmp_path: Path) -> Policies:
    return load_policies([version_file(tmp_path)])


# -- the built-in version ---------------------------------------------------------------
def test_the_builtin_version_is_todays_policy_read_from_the_package_file() -> None:
    assert BUILTIN.id == "2026-02"
    assert BUILTIN.effective_from == datetime(1, 1, 1, tzinfo=UTC)
    assert BUILTIN.deemed_approval_days == 14
    assert {s: dict(r) for s, r in BUILTIN.creator_refund_percent.items()} == {
        "agreed": {"advertiser": 90, "provider": 100},
        "submitted": {"advertiser": 50, "provider": 100},
        "delivered": {"advertiser": 0, "provider": 0},
    }
    assert BUILTIN.expiry_refund_percent == 100
    # policy.py's constants are the file's numbers, not numbers of their own
    assert policy.DEEMED_APPROVAL_AFTER == timedelta(days=14) == BUILTIN.deemed_approval_after
    assert BUILTIN.expiry_refund_percent == policy.EXPIRY_REFUND
    assert domain_for(None) is DOMAIN and domain_for(BUILTIN_POLICIES) is DOMAIN


def test_policy_functions_keep_their_names_and_take_a_version(policies: Policies) -> None:
    later = policies.versions[-1]
    assert policy.creator_cancellation_refund("agreed", "advertiser") == policy.RefundRule(
        90, "creator/advertiser/not-submitted: 90 %")
    assert policy.creator_cancellation_refund("rejected", "advertiser", later) == policy.RefundRule(
        40, "creator/advertiser/submitted: 40 % (policy 2026-07)")
    assert policy.creator_cancellation_refund("in_progress", "advertiser", BUILTIN, named=True) == \
        policy.RefundRule(90, "creator/advertiser/agreed: 90 % (policy 2026-02)")
    assert policy.partner_cancellation_refund("submitted", later).rule == \
        "partner/undelivered: 100 % (policy 2026-07)"
    assert policy.expiry_refund(later) == policy.RefundRule(90, "order/expired: 90 % (policy 2026-07)")


def test_effective_from_may_be_a_toml_offset_datetime(tmp_path: Path) -> None:
    text = V2607.replace(f'"{EFFECTIVE}"', "2026-07-01T02:00:00+02:00")
    assert load_version(version_file(tmp_path, text)).effective_from == datetime(2026, 7, 1, tzinfo=UTC)


def test_get_policies_lists_the_versions_in_force(policies: Policies) -> None:
    assert [v.id for v in policies.versions] == ["2026-02", "2026-07"]
    assert policies.versions[-1].to_dict()["effective_from"] == EFFECTIVE


# -- refusals: one line naming the file, the key and the problem -------------------------
def _without(key: str) -> str:
    return "\n".join(line for line in V2607.splitlines() if not line.startswith(f"{key} ")) + "\n"


REFUSALS = [
    # (the file's text, the key named, words of the problem)
    ("id = ", "(file)", "not valid TOML"),
    (_without("id"), "id", "is missing"),
    (_without("title"), "title", "is missing"),
    (_without("effective_from"), "effective_from", "is missing"),
    (_without("deemed_approval_days"), "deemed_approval_days", "is missing"),
    (V2607.replace("[expiry]\nrefund_percent = 90\n", ""), "expiry", "is missing"),
    (V2607.replace("delivered = { advertiser = 0,  provider = 0 }\n", ""), "creator.refund_percent.delivered",
     "is missing"),
    (V2607.replace("submitted = { advertiser = 40, provider = 100 }",
                   "submitted = { advertiser = 40 }"), "creator.refund_percent.submitted.provider",
     "is missing"),
    ('owner = "finance"\n' + V2607, "owner", "is not a known key"),
    (V2607.replace("refund_percent = 90", "refund_percent = 90\nrounding = 1"), "expiry.rounding",
     "is not a known key"),
    (V2607.replace("advertiser = 80", "advertiser = 80, platform = 0"),
     "creator.refund_percent.agreed.platform", "is not a known key"),
    (V2607.replace("advertiser = 80", "advertiser = 101"), "creator.refund_percent.agreed.advertiser",
     "101 is outside 0..100"),
    (V2607.replace("advertiser = 80", "advertiser = -1"), "creator.refund_percent.agreed.advertiser",
     "-1 is outside 0..100"),
    (V2607.replace("advertiser = 80", "advertiser = 80.0"), "creator.refund_percent.agreed.advertiser",
     "must be an integer percent, not 80.0"),
    (V2607.replace("advertiser = 80", 'advertiser = "80"'), "creator.refund_percent.agreed.advertiser",
     "must be an integer percent, not '80'"),
    (V2607.replace("advertiser = 80", "advertiser = true"), "creator.refund_percent.agreed.advertiser",
     "must be an integer percent, not true"),
    (V2607.replace("refund_percent = 90", "refund_percent = 200"), "expiry.refund_percent",
     "200 is outside 0..100"),
    (V2607.replace("deemed_approval_days = 7", "deemed_approval_days = 7.5"), "deemed_approval_days",
     "must be an integer number of days, not 7.5"),
    (V2607.replace("deemed_approval_days = 7", "deemed_approval_days = 0"), "deemed_approval_days",
     "0 is outside 1..36500"),
    (V2607.replace(f'"{EFFECTIVE}"', '"2026-07-01T00:00:00"'), "effective_from", "not an RFC 3339"),
    (V2607.replace(f'"{EFFECTIVE}"', '"July 2026"'), "effective_from", "not an RFC 3339"),
    (V2607.replace(f'"{EFFECTIVE}"', "2026-07-01T00:00:00"), "effective_from", "has no offset"),
    (V2607.replace(f'"{EFFECTIVE}"', "2026-07-01"), "effective_from", "is not an instant"),
    (V2607.replace(f'"{EFFECTIVE}"', "20260701"), "effective_from", "must be an RFC 3339 instant"),
    (V2607.replace('"2026-07"', '""'), "id", "is not an id"),
    (V2607.replace('"2026-07"', "7"), "id", "is not an id"),
    (V2607.replace('title = "Cancellation policy, July 2026"', "title = 1"), "title", "must be a non-empty"),
    (V2607[:V2607.index("[creator")] + "creator = { refund_percent = 5 }\n[expiry]\nrefund_percent = 90\n",
     "creator.refund_percent", "must be a table, not 5"),
    # a duplicate of the built-in version: its id, or its instant
    (V2607.replace('"2026-07"', '"2026-02"'), "id", "is already the id of <built-in 2026-02>"),
    (V2607.replace(f'"{EFFECTIVE}"', '"0001-01-01T00:00:00Z"'), "effective_from",
     "0001-01-01T00:00:00Z is already when 2026-02"),
]


@pytest.mark.parametrize(("text", "key", "problem"), REFUSALS)
def test_a_bad_policy_file_is_refused_naming_file_key_and_problem(tmp_path: Path, text: str, key: str,
                                                                  problem: str) -> None:
    path = version_file(tmp_path, text)
    with pytest.raises(PolicyError) as refused:
        load_policies([path])
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message, message


def test_two_versions_with_the_same_id_or_the_same_instant_are_refused(tmp_path: Path) -> None:
    first = version_file(tmp_path, name="a.toml")
    same_id = version_file(tmp_path, V2607.replace(EFFECTIVE, "2027-01-01T00:00:00Z"), "b.toml")
    with pytest.raises(PolicyError, match=rf"^{same_id}: id: '2026-07' is already the id of {first}$"):
        load_policies([first, same_id])
    same_instant = version_file(tmp_path, V2607.replace('"2026-07"', '"2026-08"'), "c.toml")
    with pytest.raises(PolicyError, match=rf"^{same_instant}: effective_from: {EFFECTIVE} is already when "
                                          rf"2026-07 \({first}\) takes effect$"):
        load_policies([first, same_instant])


def test_an_unreadable_policy_file_is_refused_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope.toml: \(file\): cannot be read"):
        load_policies([tmp_path / "nope.toml"])
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b'title = "caf\xe9"\n')
    with pytest.raises(PolicyError, match=r"latin.toml: \(file\): not UTF-8"):
        load_policies([bad])


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", [
    ["replay", EXAMPLE],
    ["replay", EXAMPLE, "--format", "json"],
    ["replay", EXAMPLE, "--verify", ROOT / "examples" / "recorded-ledger.csv"],
    ["diagrams", "--check"],
])
def test_the_cli_refuses_a_bad_policy_file_up_front_with_exit_2_and_one_line(tmp_path: Path,
                                                                             command: list) -> None:
    path = version_file(tmp_path, V2607.replace("advertiser = 80", "advertiser = 80.0"))
    done = cli(*command, "--policy", path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"error: {path}: creator.refund_percent.agreed.advertiser: must be an integer "
                           "percent, not 80.0\n")


def test_the_what_if_file_is_checked_too_but_may_repeat_an_id_or_date(tmp_path: Path) -> None:
    bad = version_file(tmp_path, V2607.replace("deemed_approval_days = 7", ""), "bad.toml")
    done = cli("replay", EXAMPLE, "--what-if", bad)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {bad}: deemed_approval_days: is missing\n"
    builtin_again = version_file(tmp_path, V2607.replace('"2026-07"', '"2026-02"').replace(
        EFFECTIVE, "0001-01-01T00:00:00Z"), "again.toml")
    given = version_file(tmp_path, name="given.toml")
    done = cli("replay", EXAMPLE, "--policy", given, "--what-if", builtin_again)
    assert done.returncode == 1, done.stderr  # the example's rejected lines: the baseline's status


def test_verify_and_what_if_together_are_a_usage_error(tmp_path: Path) -> None:
    done = cli("replay", EXAMPLE, "--verify", "x.jsonl", "--what-if", version_file(tmp_path))
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


# -- which version governs an order ------------------------------------------------------
def creator_project(engine: Engine, deadline: str = "2026-04-30T00:00:00Z", kind: str = "creator") -> None:
    engine.apply(ev("p", T0, "project.created", "project/P", kind=kind, currency="USD", deadline=deadline))


def agree(engine: Engine, order: str, time: str | datetime, fee: str = "100.00",
          review: str = "manual") -> None:
    engine.apply(ev(f"agree-{order}", time, "order.agreed", f"order/{order}", project="P", fee=fee,
                    review=review))


def test_an_order_agreed_one_second_before_effective_from_keeps_the_older_version(
        policies: Policies) -> None:
    engine = Engine(policies=policies)
    creator_project(engine)
    agree(engine, "BEFORE", at(EFFECTIVE, seconds=-1))
    agree(engine, "AT", EFFECTIVE)
    assert engine.get("order/BEFORE").data["policy"] == "2026-02"  # type: ignore[union-attr]
    assert engine.get("order/AT").data["policy"] == "2026-07"  # type: ignore[union-attr]


def test_a_cancellation_requested_after_a_new_version_is_priced_by_the_agreements_version(
        policies: Policies) -> None:
    engine = Engine(policies=policies)
    creator_project(engine)
    agree(engine, "OLD", at(EFFECTIVE, seconds=-1))
    agree(engine, "NEW", EFFECTIVE)
    engine.apply(ev("req", at(EFFECTIVE, days=1), "project.cancellation_requested", "project/P",
                    by="advertiser"))
    accepted = engine.apply(ev("acc", at(EFFECTIVE, days=2), "project.cancellation_accepted", "project/P",
                               by="provider"))
    refunds = {e.order: (e.amount, e.percent, e.rule) for e in of(accepted, RefundIssued)}
    assert refunds == {
        "order/OLD": (Decimal("90.00"), 90, "creator/advertiser/agreed: 90 % (policy 2026-02)"),
        "order/NEW": (Decimal("80.00"), 80, "creator/advertiser/agreed: 80 % (policy 2026-07)"),
    }
    released = {e.order: e.amount for e in of(accepted, PaymentReleased)}
    assert released == {"order/OLD": Decimal("10.00"), "order/NEW": Decimal("20.00")}


def test_a_seven_day_version_deems_approval_on_day_7_not_14(policies: Policies) -> None:
    engine = Engine(policies=policies)
    creator_project(engine)
    agree(engine, "FOURTEEN", at(EFFECTIVE, seconds=-1))
    agree(engine, "SEVEN", EFFECTIVE)
    submitted = at(EFFECTIVE, hours=1)
    engine.apply(ev("s7", submitted, "order.submitted", "order/SEVEN"))
    engine.apply(ev("s14", submitted, "order.submitted", "order/FOURTEEN"))
    engine.advance_to(submitted + timedelta(days=7) - MICROSECOND)
    assert engine.get("order/SEVEN").state == "submitted"  # type: ignore[union-attr]
    engine.advance_to(submitted + timedelta(days=7))
    assert engine.get("order/SEVEN").state == "deemed_approved"  # type: ignore[union-attr]
    assert engine.get("order/FOURTEEN").state == "submitted"  # type: ignore[union-attr]
    engine.advance_to(submitted + timedelta(days=14))
    assert engine.get("order/FOURTEEN").state == "deemed_approved"  # type: ignore[union-attr]


def test_the_expiry_refund_is_the_agreements_versions(policies: Policies) -> None:
    engine = Engine(policies=policies)
    creator_project(engine, deadline="2026-03-20T00:00:00Z")
    agree(engine, "OLD", at(EFFECTIVE, seconds=-1))
    agree(engine, "NEW", EFFECTIVE)
    fired = engine.advance_to("2026-03-20T00:00:00Z")
    effects = [e for outcome in fired for e in outcome.effects]
    refunds = {e.order: (e.amount, e.rule) for e in of(effects, RefundIssued)}
    assert refunds == {"order/OLD": (Decimal("100.00"), "order/expired: 100 % (policy 2026-02)"),
                       "order/NEW": (Decimal("90.00"), "order/expired: 90 % (policy 2026-07)")}
    assert {e.order: e.amount for e in of(effects, PaymentReleased)} == {"order/NEW": Decimal("10.00")}


def test_partner_projects_keep_their_rule_and_name_the_version(policies: Policies) -> None:
    engine = Engine(policies=policies)
    creator_project(engine, kind="partner")
    agree(engine, "NEW", EFFECTIVE)
    engine.apply(ev("req", at(EFFECTIVE, days=1), "project.cancellation_requested", "project/P",
                    by="advertiser"))
    engine.apply(ev("rev", at(EFFECTIVE, days=1, hours=1), "project.cancellation_reviewed", "project/P",
                    approved=True))
    accepted = engine.apply(ev("acc", at(EFFECTIVE, days=2), "project.cancellation_accepted", "project/P",
                               by="provider"))
    assert [(e.percent, e.rule) for e in of(accepted, RefundIssued)] == [
        (100, "partner/undelivered: 100 % (policy 2026-07)")]


def test_the_library_replay_takes_the_versions_and_defaults_to_the_builtin_alone(policies: Policies) -> None:
    data = EXAMPLE.read_bytes()
    plain = to_json(replay(io.BytesIO(data)))
    assert plain == (ROOT / "examples" / "collaborations.expected.json").read_bytes()
    assert to_json(replay(io.BytesIO(data), policies=BUILTIN_POLICIES)) == plain
    priced = json.loads(to_json(replay(io.BytesIO(data), policies=policies)))
    assert priced["stats"] == json.loads(plain)["stats"]


def test_a_parallel_replay_prices_by_the_same_versions() -> None:
    from statemachine.replay import replay_path

    policies = load_policies([ROOT / "examples" / "policy-2026-03.toml"])
    one = to_json(replay_path(EXAMPLE, policies=policies))
    assert to_json(replay_path(EXAMPLE, policies=policies, workers=2)) == one
    assert one != to_json(replay_path(EXAMPLE))


def test_an_engine_reopened_without_a_version_its_orders_need_says_so(policies: Policies,
                                                                       tmp_path: Path) -> None:
    from statemachine.store import SQLiteStore

    with Engine(store=SQLiteStore(tmp_path / "db.sqlite"), policies=policies) as engine:
        creator_project(engine)
        agree(engine, "NEW", EFFECTIVE)
    with pytest.raises(PolicyError, match="policy '2026-07' governs an order but is not among"):
        Engine(store=SQLiteStore(tmp_path / "db.sqlite"), policies=BUILTIN_POLICIES)
    with Engine(store=SQLiteStore(tmp_path / "db.sqlite"), policies=policies) as engine:
        assert engine.get("order/NEW").data["policy"] == "2026-07"  # type: ignore[union-attr]


def test_diagrams_label_refund_edges_with_the_versions_numbers(tmp_path: Path) -> None:
    from statemachine.diagrams.files import text_files

    labelled = text_files(domain_for(load_policies([version_file(tmp_path)])))["order.mmd"]
    assert "refund 80 / 40 / 100 % by policy" in labelled
    assert "refund 90 %" in labelled and "after 7 days" in labelled
    assert "refund 90 / 50 / 100 % by policy" in text_files()["order.mmd"]
    done = cli("diagrams", "--format", "mermaid", "--out", tmp_path / "d", "--policy", version_file(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d" / "order.mmd").read_text() == labelled
