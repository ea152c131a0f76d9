"""Replay semantics (``event-log.md``), one test per rule.

Logs are built in memory: a line is an envelope (a dict, written as compact JSON) or
raw text (for blank lines, garbage, and JSON numbers that must not go through a float).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from helpers import ev

from statemachine.replay import Report, replay, to_json
from statemachine.timeutil import parse_instant

T0 = "2026-03-01T10:00:00Z"


def at(**delta: float) -> str:
    """``T0`` plus ``delta``, as RFC 3339 ``Z`` text."""
    return (parse_instant(T0) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(*lines: dict[str, Any] | str) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


def run(*lines: dict[str, Any] | str, **options: Any) -> Report:
    if "as_of" in options and isinstance(options["as_of"], str):
        options["as_of"] = parse_instant(options["as_of"])
    return replay(io.BytesIO(log(*lines)), **options)


def report(*lines: dict[str, Any] | str, **options: Any) -> dict[str, Any]:
    """The JSON report, parsed back (amounts are strings in it)."""
    return orjson.loads(to_json(run(*lines, **options)))


def project(id: str = "p", subject: str = "project/P", time: str = T0, *, kind: str = "creator",
            currency: str = "USD", deadline: str | None = None) -> dict[str, Any]:
    return ev(id, time, "project.created", subject, kind=kind, currency=currency,
              deadline=deadline or at(days=30))


def order(id: str, subject: str, time: str, *, fee: Any = "100.00", project: str = "P",
          review: str = "manual") -> dict[str, Any]:
    return ev(id, time, "order.agreed", subject, project=project, fee=fee, review=review)


def promotion(id: str, subject: str, time: str, *, budget: str = "100.00", currency: str = "USD",
              end: str | None = None) -> dict[str, Any]:
    return ev(id, time, "promotion.created", subject, budget=budget, currency=currency,
              end=end or at(days=10))


def errors(rep: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    return [(r["line"], r["id"], r["error"]) for r in rep["rejected"]]


def money(rep: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [(x["time"], x["kind"], x["subject"], x["amount"], x["cause"]) for x in rep["ledger"]]


# -- lines ------------------------------------------------------------------------------
def test_line_numbers_count_blank_lines_and_stats_count_non_blank_ones() -> None:
    rep = report(
        "",
        project(),
        "   ",
        "",
        ev("x", at(minutes=1), "order.approved", "order/O-1"),  # physical line 5
        "\t",
        "{not json",                                              # physical line 7
        "",
    )
    assert rep["stats"] == {"lines": 3, "applied": 1, "duplicates": 0, "rejected": 2}
    assert [r["line"] for r in rep["rejected"]] == [5, 7]
    assert rep["rejected"][0]["error"] == "order/O-1: no such entity (it was never created)"
    assert rep["rejected"][1]["id"] is None
    assert rep["rejected"][1]["error"].startswith("malformed JSON")


def test_crlf_line_ends_and_a_missing_final_newline_are_fine() -> None:
    data = (json.dumps(project()) + "\r\n\r\n" + json.dumps(order("o", "order/O", at(minutes=1)))).encode()
    rep = orjson.loads(to_json(replay(io.BytesIO(data))))
    assert rep["stats"] == {"lines": 2, "applied": 2, "duplicates": 0, "rejected": 0}


# -- idempotency --------------------------------------------------------------------------
def test_an_identical_repeat_is_skipped_and_counted() -> None:
    approve = ev("a", at(days=1), "order.approved", "order/O")
    rep = report(project(), order("o", "order/O", at(minutes=1)),
                 ev("s", at(hours=1), "order.submitted", "order/O"), approve, approve)
    assert rep["stats"] == {"lines": 5, "applied": 4, "duplicates": 1, "rejected": 0}
    assert money(rep) == [(at(days=1), "payment_released", "order/O", "100.00", "a")]  # once


def test_a_repeat_with_other_key_order_and_white_space_is_a_duplicate() -> None:
    first = order("o", "order/O", at(minutes=1))
    reordered = '{ "subject" : "order/O",\t"data": {"review": "manual", "fee": "100.00", "project": "P"},' \
                f' "type": "order.agreed", "time": "{at(minutes=1)}", "id": "o" }}'
    assert json.loads(reordered) == first
    rep = report(project(), first, reordered, json.dumps(first, indent=None, separators=(",", ":")))
    assert rep["stats"] == {"lines": 4, "applied": 2, "duplicates": 2, "rejected": 0}


def test_a_duplicate_older_than_the_clock_is_still_a_duplicate_not_out_of_order() -> None:
    first = order("o", "order/O", at(minutes=1))
    rep = report(project(), first, project("q", "project/Q", at(days=2)), first)
    assert rep["stats"]["duplicates"] == 1 and rep["rejected"] == []


def test_the_same_id_with_other_content_is_a_conflict() -> None:
    rep = report(project(), order("o", "order/O", at(minutes=1)),
                 order("o", "order/O", at(minutes=1), fee="200.00"),
                 order("o", "order/O2", at(minutes=2)))
    assert errors(rep) == [
        (3, "o", "id 'o' was applied before with different content"),
        (4, "o", "id 'o' was applied before with different content"),
    ]
    assert rep["entities"] == {"project/P": "active", "order/O": "agreed"}


def test_only_applied_ids_are_remembered_so_a_rejected_event_can_be_sent_again() -> None:
    too_early = order("o", "order/O", at(minutes=1))  # its project does not exist yet
    rep = report(too_early, project(time=at(minutes=2)), order("o", "order/O", at(minutes=3)),
                 order("o", "order/O", at(minutes=3)))
    assert errors(rep) == [(1, "o", "order/O: cannot create: "
                                    "project/P does not exist")]
    assert rep["entities"] == {"project/P": "active", "order/O": "agreed"}
    assert rep["stats"] == {"lines": 4, "applied": 2, "duplicates": 1, "rejected": 1}


# -- order and the clock --------------------------------------------------------------------
def test_an_event_older_than_the_clock_is_rejected_as_out_of_order() -> None:
    rep = report(project(), project("q", "project/Q", at(hours=2)),
                 order("o", "order/O", at(hours=1)),
                 order("o2", "order/O2", at(hours=2)))  # equal to the clock: fine
    assert errors(rep) == [(3, "o", "out of order: 2026-03-01T11:00:00Z is before the clock "
                                    "2026-03-01T12:00:00Z")]
    assert "order/O2" in rep["entities"]


def test_sort_orders_the_events_by_time_first() -> None:
    lines = (order("o", "order/O", at(hours=1)), project("q", "project/Q", at(hours=2)), project())
    assert [r["id"] for r in report(*lines)["rejected"]] == ["o", "p"]
    rep = report(*lines, sort=True)
    assert rep["rejected"] == []
    assert list(rep["entities"]) == ["project/P", "order/O", "project/Q"]
    assert rep["as_of"] == at(hours=2)


def test_sort_is_stable_and_keeps_line_numbers() -> None:
    same = at(hours=1)
    rep = report(project(time=same), "garbage", order("o", "order/O", same),
                 ev("x", T0, "order.started", "order/O"), sort=True)
    # "x" sorts first (earliest) and fails: the order does not exist yet; garbage keeps
    # the time of the line before it, so it stays between the two events at `same`
    assert [(r["line"], r["id"]) for r in rep["rejected"]] == [(4, "x"), (2, None)]
    assert list(rep["entities"]) == ["project/P", "order/O"]


def _submitted() -> list[dict[str, Any]]:
    """An order submitted at day 1: its deemed approval is due at day 15."""
    return [project(), order("o", "order/O", at(minutes=1)),
            ev("s", at(days=1), "order.submitted", "order/O")]


def test_a_rejected_but_well_formed_event_moves_the_clock_and_fires_due_timers() -> None:
    refused = ev("x", at(days=16), "order.approved", "order/O")  # refused: deemed approved by then
    rep = report(*_submitted(), refused)
    assert errors(rep) == [(4, "x", "order/O: cannot approve in state deemed_approved")]
    assert rep["entities"]["order/O"] == "deemed_approved"
    assert rep["as_of"] == at(days=16)
    assert money(rep) == [(at(days=15), "payment_released", "order/O", "100.00", "s")]


@pytest.mark.parametrize("event", [
    ev("x", at(days=16), "order.exploded", "order/O"),                   # unknown type
    ev("x", at(days=16), "project.completed", "order/O"),                # subject/type mismatch
    ev("x", at(days=16), "order.agreed", "order/N", project="P"),        # data.fee missing
    ev("s", at(days=16), "order.approved", "order/O"),                   # conflict: id of an applied event
])
def test_every_well_formed_rejection_moves_the_clock(event: dict[str, Any]) -> None:
    rep = report(*_submitted(), event)
    assert rep["stats"]["rejected"] == 1
    assert rep["as_of"] == at(days=16)
    assert rep["entities"]["order/O"] == "deemed_approved"


@pytest.mark.parametrize("line", [
    json.dumps({"id": "x", "time": at(days=16), "type": "order.approved"}),   # no subject
    json.dumps({"id": "x", "time": "tomorrow", "type": "order.approved", "subject": "order/O"}),
    json.dumps({"id": "x", "time": at(days=16), "type": "order.approved", "subject": "order/O",
                "specversion": "2.0"}),
    json.dumps({"id": "x", "time": at(days=16), "type": "order.approved", "subject": "order/O",
                "data": [1]}),
    '{"id": "x", "time": "' + at(days=16) + '", "type": "order.approved",',   # truncated
])
def test_a_malformed_event_moves_no_clock(line: str) -> None:
    rep = report(*_submitted(), line, ev("late", at(days=2), "order.approved", "order/O"))
    assert rep["as_of"] == at(days=2)
    assert [r["line"] for r in rep["rejected"]] == [4]
    # the next event (earlier than the malformed one) is not out of order and applies
    assert rep["entities"]["order/O"] == "approved"
    assert money(rep) == [(at(days=2), "payment_released", "order/O", "100.00", "late")]


# -- timers -----------------------------------------------------------------------------------
def test_a_timer_due_at_the_events_time_fires_before_the_event() -> None:
    rep = report(*_submitted(), ev("a", at(days=15), "order.approved", "order/O"))
    assert errors(rep) == [(4, "a", "order/O: cannot approve in state deemed_approved")]
    rep = report(*_submitted(), ev("a", at(days=15, seconds=-1), "order.approved", "order/O"))
    assert rep["rejected"] == [] and rep["entities"]["order/O"] == "approved"


def test_timers_fire_in_order_of_due_time_then_subject() -> None:
    rep = report(
        project(deadline=at(days=20)),
        project("q", "project/Q", deadline=at(days=10)),
        order("z", "order/Z", at(minutes=1)),              # P: due day 20
        order("b", "order/B", at(minutes=2), project="Q"),  # Q: due day 10
        order("a", "order/A", at(minutes=3), project="Q"),  # Q: due day 10
        order("y", "order/Y", at(minutes=4)),              # P: due day 20
        project("r", "project/R", at(days=25)),
    )
    assert money(rep) == [
        (at(days=10), "refund", "order/A", "100.00", "a"),
        (at(days=10), "refund", "order/B", "100.00", "b"),
        (at(days=20), "refund", "order/Y", "100.00", "y"),
        (at(days=20), "refund", "order/Z", "100.00", "z"),
    ]


def test_as_of_fires_the_timers_due_after_the_last_event() -> None:
    without = report(*_submitted())
    assert without["entities"]["order/O"] == "submitted" and without["as_of"] == at(days=1)
    early = report(*_submitted(), as_of=at(days=15, seconds=-1))
    assert early["entities"]["order/O"] == "submitted" and early["ledger"] == []
    assert early["as_of"] == at(days=15, seconds=-1)
    rep = report(*_submitted(), as_of=at(days=15))
    assert rep["entities"]["order/O"] == "deemed_approved"
    assert rep["as_of"] == at(days=15)


def test_an_order_rejected_after_its_deadline_expires_at_once() -> None:
    # submitted before the deadline, rejected after it: it can no longer be resubmitted,
    # so the content-deadline timer (armed in `rejected`) is overdue and fires right away
    rep = report(project(deadline=at(days=5)), order("o", "order/O", at(minutes=1)),
                 ev("s", at(days=4), "order.submitted", "order/O"),
                 ev("r", at(days=6), "order.rejected", "order/O"))
    assert rep["entities"]["order/O"] == "expired"
    assert money(rep) == [(at(days=6), "refund", "order/O", "100.00", "o")]


# -- the ledger ---------------------------------------------------------------------------------
def test_timer_ledger_lines_name_the_event_that_armed_the_timer() -> None:
    rep = report(
        project(deadline=at(days=30)),
        order("o1", "order/O1", at(minutes=1), fee="300.00"),
        order("o2", "order/O2", at(minutes=2), fee="50.00"),
        ev("s1", at(days=1), "order.submitted", "order/O1"),
        ev("r1", at(days=2), "order.rejected", "order/O1"),
        ev("s2", at(days=3), "order.resubmitted", "order/O1"),   # restarts the review clock
        promotion("pr", "promotion/PR", at(days=3, minutes=1), end=at(days=8)),
        ev("ap", at(days=4), "promotion.approved", "promotion/PR"),
        ev("sp", at(days=5), "promotion.spent", "promotion/PR", amount="12.34"),
        as_of=at(days=40),
    )
    assert money(rep) == [
        (at(days=3, minutes=1), "hold_placed", "promotion/PR", "100.00", "pr"),
        (at(days=8), "charge", "promotion/PR", "12.34", "pr"),            # promotion end
        (at(days=8), "hold_released", "promotion/PR", "87.66", "pr"),
        (at(days=17), "payment_released", "order/O1", "300.00", "s2"),   # latest submission
        (at(days=30), "refund", "order/O2", "50.00", "o2"),               # content deadline
    ]
    assert rep["entities"] == {"project/P": "active", "order/O1": "deemed_approved",
                               "order/O2": "expired", "promotion/PR": "completed"}


def test_ledger_lines_are_written_only_for_non_zero_amounts() -> None:
    rep = report(
        promotion("a", "promotion/A", T0, budget="50.00"),           # ends without running
        promotion("b", "promotion/B", T0, budget="20.00"),
        ev("b1", at(minutes=1), "promotion.approved", "promotion/B"),
        ev("b2", at(minutes=2), "promotion.spent", "promotion/B", amount="20.00"),  # all spent
        project(time=at(minutes=3)),
        order("o", "order/O", at(minutes=4), fee="80.00"),
        ev("c", at(hours=1), "project.cancellation_requested", "project/P", by="provider"),
        ev("d", at(hours=2), "project.cancellation_accepted", "project/P", by="advertiser"),
        as_of=at(days=11),
    )
    assert money(rep) == [
        (T0, "hold_placed", "promotion/A", "50.00", "a"),
        (T0, "hold_placed", "promotion/B", "20.00", "b"),
        (at(minutes=2), "charge", "promotion/B", "20.00", "b2"),   # no hold_released of 0
        (at(hours=2), "refund", "order/O", "80.00", "d"),          # 100 %: no release of 0
        (at(days=10), "hold_released", "promotion/A", "50.00", "a"),  # no charge of 0
    ]


def test_entities_are_listed_in_order_of_creation() -> None:
    rep = report(
        promotion("z", "promotion/Z", T0),
        project("p", "project/P", at(minutes=1)),
        ev("x", at(minutes=2), "order.agreed", "order/NEVER", project="NOPE", fee="1",
           review="auto"),
        order("o2", "order/O-2", at(minutes=3)),
        project("a", "project/A", at(minutes=4)),
        order("o1", "order/O-1", at(minutes=5), project="A"),
        ev("s", at(minutes=6), "order.started", "order/O-2"),  # a change keeps the position
    )
    assert list(rep["entities"]) == ["promotion/Z", "project/P", "order/O-2", "project/A",
                                     "order/O-1"]


def test_totals_are_per_currency_and_kind() -> None:
    rep = report(
        project("p", "project/P", currency="USD"),
        project("q", "project/Q", currency="JPY"),
        project("r", "project/R", currency="EUR"),
        order("o1", "order/O1", at(minutes=1), fee="100.00"),
        order("o2", "order/O2", at(minutes=2), fee="0.05"),
        order("o3", "order/O3", at(minutes=3), fee="5", project="Q"),
        order("o4", "order/O4", at(minutes=4), fee="10.00", project="R", review="auto"),
        ev("s4", at(minutes=5), "order.submitted", "order/O4"),
        *(ev(f"c{p}", at(hours=1), "project.cancellation_requested", f"project/{p}", by="advertiser")
          for p in "PQ"),
        ev("ap", at(hours=2), "project.cancellation_accepted", "project/P", by="provider"),
        ev("aq", at(hours=2), "project.cancellation_accepted", "project/Q", by="provider"),
    )
    # 90 %: 100.00 -> 90.00 / 10.00; 0.05 -> 0.045 -> 0.05 / 0.00; JPY 5 -> 4.5 -> 5 / 0
    assert rep["totals"] == {
        "EUR": {"payment_released": "10.00"},
        "JPY": {"refund": "5"},
        "USD": {"refund": "90.05", "payment_released": "10.00"},
    }
    assert list(rep["totals"]) == sorted(rep["totals"])


# -- amounts read exactly -----------------------------------------------------------------------
def _fee_line(fee_json: str, id: str = "o") -> str:
    return (f'{{"id": "{id}", "time": "{at(minutes=1)}", "type": "order.agreed", "subject": "order/{id}", '
            f'"data": {{"project": "P", "fee": {fee_json}, "review": "manual"}}}}')


@pytest.mark.parametrize(("fee_json", "refund", "released"), [
    ("199.99", "179.99", "20.00"),                          # 179.991
    ("0.35", "0.32", "0.03"),                               # 0.315: half-up
    ("1234567890123456.78", "1111111101111111.10", "123456789012345.68"),  # a float keeps ~16 digits
    ("100", "90.00", "10.00"),
    ("1E+2", "90.00", "10.00"),
    ('"199.99"', "179.99", "20.00"),
])
def test_json_numbers_are_read_exactly_never_through_a_float(fee_json: str, refund: str,
                                                             released: str) -> None:
    rep = report(
        project(),
        _fee_line(fee_json),
        ev("c", at(hours=1), "project.cancellation_requested", "project/P", by="advertiser"),
        ev("d", at(hours=2), "project.cancellation_accepted", "project/P", by="provider"),
    )
    assert rep["rejected"] == []
    assert [(x["kind"], x["amount"]) for x in rep["ledger"]] == [
        ("refund", refund), ("payment_released", released)]
    assert Decimal(refund) + Decimal(released) == Decimal(json.loads(fee_json, parse_float=Decimal))


def test_a_many_digit_number_is_paid_out_to_the_last_digit() -> None:
    rep = report(project(), _fee_line("98765432109876543.21"),
                 ev("s", at(hours=1), "order.submitted", "order/o"),
                 ev("a", at(hours=2), "order.approved", "order/o"))
    assert [x["amount"] for x in rep["ledger"]] == ["98765432109876543.21"]


@pytest.mark.parametrize(("fee_json", "error"), [
    ("199.999", "cannot create: the fee 199.999 has more decimals than USD allows"),
    ("1e400", "data.fee: 1E+400 is too large"),
    ("123456789012345678901234567890", "data.fee: 123456789012345678901234567890 is too large"),
    ("true", "data.fee: an amount must be a decimal string, not True"),
    ('"12,50"', "data.fee: '12,50' is not a decimal amount"),
])
def test_bad_amounts_are_rejected_with_a_reason(fee_json: str, error: str) -> None:
    rep = report(project(), _fee_line(fee_json))
    assert len(rep["rejected"]) == 1
    assert error in rep["rejected"][0]["error"]


# -- the envelope ---------------------------------------------------------------------------------
@pytest.mark.parametrize("specversion", ["1.0", None])
def test_specversion_1_0_or_none_is_accepted(specversion: str | None) -> None:
    line = project()
    if specversion:
        line["specversion"] = specversion
    assert report(line)["rejected"] == []


@pytest.mark.parametrize("specversion", ["0.3", "1", "2.0", 1.0, None])
def test_a_specversion_other_than_1_0_is_rejected(specversion: Any) -> None:
    rep = report({**project(), "specversion": specversion})
    assert errors(rep) == [(1, "p", f'specversion must be "1.0", not {specversion!r}')]
    assert rep["entities"] == {}


@pytest.mark.parametrize("missing", ["id", "time", "type", "subject"])
def test_a_missing_envelope_field_is_rejected_naming_it(missing: str) -> None:
    line = project()
    del line[missing]
    rep = report(line)
    assert rep["rejected"][0]["error"] == f"{missing} is required"
    assert rep["rejected"][0]["id"] == (None if missing == "id" else "p")


@pytest.mark.parametrize(("missing", "type_"), [
    ("kind", "project.created"), ("currency", "project.created"), ("deadline", "project.created"),
])
def test_a_missing_data_field_is_rejected_naming_it(missing: str, type_: str) -> None:
    line = project()
    del line["data"][missing]
    rep = report(line)
    assert errors(rep) == [(1, "p", f"data.{missing} is required for {type_}")]


def test_missing_data_fields_of_other_types_are_named_too() -> None:
    rep = report(project(), ev("o", at(minutes=1), "order.agreed", "order/O", project="P",
                               review="manual"),
                 promotion("pr", "promotion/PR", at(minutes=2)),
                 ev("a", at(minutes=3), "promotion.approved", "promotion/PR"),
                 ev("s", at(minutes=4), "promotion.spent", "promotion/PR"),
                 ev("c", at(minutes=5), "project.cancellation_requested", "project/P"))
    assert [r["error"] for r in rep["rejected"]] == [
        "data.fee is required for order.agreed",
        "data.amount is required for promotion.spent",
        "data.by is required for project.cancellation_requested",
    ]


def test_an_unknown_type_is_rejected() -> None:
    rep = report(project(), ev("x", at(minutes=1), "project.exploded", "project/P"))
    assert errors(rep) == [(2, "x", "unknown event type 'project.exploded'")]


@pytest.mark.parametrize(("type_", "subject", "error"), [
    ("order.started", "project/P", "event type order.started does not apply to subject project/P"),
    ("project.completed", "order/P", "event type project.completed does not apply to subject order/P"),
    ("project.completed", "P", "subject 'P' is not <kind>/<id>"),
    ("project.completed", "project/P/x", "subject 'project/P/x' is not <kind>/<id>"),
])
def test_a_subject_that_does_not_match_the_type_is_rejected(type_: str, subject: str,
                                                            error: str) -> None:
    rep = report(project(), ev("x", at(minutes=1), type_, subject))
    assert errors(rep) == [(2, "x", error)]
    assert rep["entities"] == {"project/P": "active"}


def test_times_with_an_offset_are_instants_and_times_without_one_are_malformed() -> None:
    rep = report(project(time="2026-03-01T12:00:00+02:00"),            # 10:00Z
                 order("o", "order/O", "2026-03-01T05:30:00-04:30"),   # 10:00Z: not out of order
                 order("n", "order/N", "2026-03-01T10:30:00"))         # no offset
    assert rep["as_of"] == "2026-03-01T10:00:00Z"
    assert rep["entities"] == {"project/P": "active", "order/O": "agreed"}
    [(line, ident, error)] = errors(rep)
    assert (line, ident) == (3, "n")
    assert error.startswith("time: '2026-03-01T10:30:00' is not an RFC 3339 timestamp with an offset")


def test_a_non_object_line_is_rejected() -> None:
    rep = report('["project.created"]', "42", '"text"')
    assert [r["error"] for r in rep["rejected"]] == ["an event must be a JSON object"] * 3


def test_the_report_has_the_spec_shape() -> None:
    rep = report(project(), ev("x", at(minutes=1), "order.approved", "order/O"))
    assert list(rep) == ["as_of", "stats", "entities", "ledger", "totals", "rejected"]
    assert list(rep["stats"]) == ["lines", "applied", "duplicates", "rejected"]
    assert list(rep["rejected"][0]) == ["line", "id", "error"]
    assert report()["as_of"] is None


def test_a_line_nested_too_deeply_is_rejected_not_a_crash(tmp_path) -> None:
    from statemachine.replay import replay_path

    log = tmp_path / "deep.jsonl"
    log.write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    report = replay_path(log)
    assert [(r.line, r.id) for r in report.rejected] == [(1, None)]
    assert "nested too deeply" in report.rejected[0].error


# -- resources -----------------------------------------------------------------------------
def test_a_closed_replayer_frees_its_runtime_without_the_cyclic_collector() -> None:
    import gc
    import weakref

    from statemachine.replay import Replayer

    gc.disable()
    try:
        replayer = Replayer()
        replayer.feed(1, json.dumps(project()).encode())
        runtime = weakref.ref(replayer.runtime)
        replayer.close()
        replayer.close()  # twice is fine
        del replayer
        assert runtime() is None  # subscribed, the runtime would wait for a gc pass
    finally:
        gc.enable()


def test_released_ids_end_the_replay_and_timers_still_fire() -> None:
    from statemachine.replay import Replayer

    with Replayer() as replayer:
        replayer.feed(1, json.dumps(project()).encode())
        replayer.feed(2, json.dumps(order("o", "order/O", at(minutes=1))).encode())
        replayer.feed(3, json.dumps(ev("s", at(hours=1), "order.submitted", "order/O")).encode())
        replayer.release_ids()
        with pytest.raises(ValueError, match="the replay is finished"):
            replayer.feed(4, json.dumps(project()).encode())  # a repeat: no longer told apart
        report = replayer.finish(parse_instant(at(days=20)))
    assert report.entities["order/O"] == "deemed_approved" and report.applied == 3
    assert [(line.kind, line.cause) for line in report.ledger] == [("payment_released", "s")]
