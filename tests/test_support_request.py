"""The guide's lifecycle (examples/support_request.py): each rule, each refusal, the
timer, the faces with ``--domain``, and a property over generated histories.

This file alone takes every declared transition of the example's domain (the guide
shows ``pytest --lifecycle-coverage-domain examples.support_request:DOMAIN`` on it).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine import Engine
from statemachine.cli import main
from statemachine.testing import given as story
from statemachine.testing import histories

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # examples/ is not installed: import it from the checkout
    sys.path.insert(0, str(ROOT))

from examples.support_request import (  # noqa: E402
    DOMAIN,
    CancellationCharged,
    InfluencerNotified,
    RequestEscalated,
)

LOG = ROOT / "examples" / "support_request.jsonl"
DOMAIN_SPEC = "examples.support_request:DOMAIN"


def signed(fee: str = "150.00", penalty: str | None = "400.00", influencers=("ana", "ben"),
           subject: str = "agreement/A-1") -> dict:
    data = {"currency": "EUR", "cancellation_fee": fee, "influencers": list(influencers)}
    if penalty is not None:
        data["penalty"] = penalty
    return {"type": "agreement.signed", "subject": subject, "data": data}


def opened(agreement: str = "A-1", subject: str = "support_request/R-1", **extra) -> dict:
    return {"type": "support_request.opened", "subject": subject,
            "data": {"agreement": agreement, "reason": "the campaign moved"}, **extra}


def on(kind: str, subject: str = "support_request/R-1", time: str | None = None, **data) -> dict:
    event: dict = {"type": f"support_request.{kind}", "subject": subject}
    if time is not None:
        event["time"] = time
    if data:
        event["data"] = data
    return event


# -- the rules, given/when/then ---------------------------------------------------------
def test_an_approval_charges_the_fee_the_agreement_sets_cancels_it_and_tells_each_influencer() -> None:
    when = story(signed(), opened(), domain=DOMAIN).when(on("approved", charge="cancellation_fee"))
    outcome = when.then(state="approved", effects=[CancellationCharged, InfluencerNotified,
                                                    InfluencerNotified],
                        data={"decision": "cancellation_fee"})
    charge = outcome.effects[0]
    assert (charge.amount, charge.currency, charge.charge) == (Decimal("150.00"), "EUR",
                                                               "cancellation_fee")
    assert [e.influencer for e in outcome.effects[1:]] == ["ana", "ben"]
    assert when.engine.get("agreement/A-1").state == "cancelled"


def test_the_penalty_instead_when_support_chooses_it() -> None:
    outcome = story(signed(), opened(), domain=DOMAIN).when(on("approved", charge="penalty")).then(
        state="approved")
    assert outcome.effects[0].amount == Decimal("400.00")


def test_approving_without_a_charge_charges_nothing_and_still_notifies() -> None:
    story(signed(), opened(), domain=DOMAIN).when(on("approved", charge="none")).then(
        state="approved", effects=["InfluencerNotified", "InfluencerNotified"])


def test_a_penalty_the_agreement_does_not_set_is_refused_with_the_reason() -> None:
    story(signed(penalty=None), opened(), domain=DOMAIN).when(on("approved", charge="penalty")).refused(
        "agreement/A-1 sets no penalty", guard="charge_in_agreement")


def test_a_decline_notifies_and_keeps_the_agreement() -> None:
    when = story(signed(), opened(), domain=DOMAIN).when(on("declined", reason="delivered already"))
    when.then(state="declined", effects=[InfluencerNotified, InfluencerNotified],
              data={"decision": "declined: delivered already"})
    assert when.engine.get("agreement/A-1").state == "active"


def test_a_decline_needs_a_reason() -> None:
    story(signed(), opened(), domain=DOMAIN).when(on("declined")).refused("data.reason is required")


def test_support_asks_the_requester_answers_and_the_clock_restarts() -> None:
    scenario = story(signed(), opened(time="2026-05-01T10:00:00Z"),
                     on("information_requested", time="2026-05-02T10:00:00Z"), domain=DOMAIN)
    scenario.when(on("answered", time="2026-05-03T10:00:00Z")).then(state="awaiting_support")
    engine = scenario.engine
    assert engine.advance_to("2026-05-06T09:59:59Z") == []  # 3 days after the answer, not the opening
    fired = engine.advance_to("2026-05-06T10:00:00Z")
    assert [o.state for o in fired] == ["escalated"]
    assert [type(e) for e in fired[0].effects] == [RequestEscalated]


def test_an_unanswered_request_escalates_after_three_days_follow_ups_do_not_reset_it() -> None:
    scenario = story(signed(), opened(time="2026-05-01T10:00:00Z"), domain=DOMAIN)
    scenario.when(on("followed_up", time="2026-05-03T10:00:00Z")).then(state="awaiting_support",
                                                                         data={"follow_ups": 1})
    scenario.engine.advance_to("2026-05-04T10:00:00Z")
    assert scenario.engine.get("support_request/R-1").state == "escalated"


def test_an_escalated_request_is_still_reviewed_but_takes_no_follow_up() -> None:
    base = (signed(), opened(time="2026-05-01T10:00:00Z"))
    late = "2026-05-05T10:00:00Z"
    story(*base, domain=DOMAIN).when(on("approved", time=late, charge="penalty")).then(state="approved")
    story(*base, domain=DOMAIN).when(on("declined", time=late, reason="no")).then(state="declined")
    story(*base, domain=DOMAIN).when(on("information_requested", time=late)).then(
        state="awaiting_requester")
    story(*base, domain=DOMAIN).when(on("followed_up", time=late)).refused(
        "cannot follow_up in state escalated")


def test_a_request_on_a_missing_or_cancelled_agreement_is_refused() -> None:
    story(signed(), domain=DOMAIN).when(opened(agreement="A-9")).refused(
        "agreement/A-9 does not exist", guard="agreement_active")
    story(signed(), opened(), on("approved", charge="none"), domain=DOMAIN).when(
        opened(subject="support_request/R-2")).refused("agreement/A-1 is cancelled, not active")


def test_a_second_approval_on_one_agreement_is_refused_whole() -> None:
    """Two requests opened while the agreement was active: the second approval would
    cancel it again; the cascade refuses, so nothing of it commits (no second charge)."""
    story(signed(), opened(), opened(subject="support_request/R-2"),
          on("approved", charge="cancellation_fee"), domain=DOMAIN).when(
        on("approved", subject="support_request/R-2", charge="cancellation_fee")).refused(
        "agreement/A-1: cannot cancel in state cancelled")


@pytest.mark.parametrize(("data", "reason"), [
    ({"cancellation_fee": "-1"}, "the cancellation_fee must be >= 0"),
    ({"cancellation_fee": "1.005"}, "the cancellation_fee"),
    ({"influencers": []}, "data.influencers: must be a non-empty list"),
    ({"influencers": ["ana", "ana"]}, "data.influencers: lists an influencer twice"),
    ({"influencers": ["a/b"]}, "data.influencers: 'a/b' is not an id"),
    ({"currency": "XXY"}, "data.currency"),
])
def test_bad_terms_are_refused_naming_the_field(data: dict, reason: str) -> None:
    event = signed()
    event["data"] = {**event["data"], **data}
    story(domain=DOMAIN).when(event).refused(reason)


# -- the faces, with --domain -------------------------------------------------------------
def test_replay_with_the_domain_reports_the_charge_and_the_two_refusals(capsys) -> None:
    assert main(["replay", str(LOG), "--domain", DOMAIN_SPEC, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["entities"] == {"agreement/A-1": "cancelled", "agreement/A-2": "active",
                                  "support_request/R-1": "approved",
                                  "support_request/R-2": "declined"}
    assert report["totals"] == {"EUR": {"charge": "150.00"}}
    assert [r["id"] for r in report["rejected"]] == ["s9", "s11"]


def test_the_same_report_on_two_workers(capsys) -> None:
    assert main(["replay", str(LOG), "--domain", DOMAIN_SPEC, "--format", "json"]) == 1
    one = capsys.readouterr().out
    assert main(["replay", str(LOG), "--domain", DOMAIN_SPEC, "--format", "json", "--workers", "2"]) == 1
    assert capsys.readouterr().out == one


def test_diagrams_with_the_domain_and_with_one_lifecycle(tmp_path: Path, capsys) -> None:
    assert main(["diagrams", "--domain", DOMAIN_SPEC, "--out", str(tmp_path / "all"),
                 "--format", "mermaid", "--format", "dot"]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "agreement.dot", "agreement.mmd", "support_request.dot", "support_request.mmd"]
    assert main(["diagrams", "--domain", DOMAIN_SPEC, "--out", str(tmp_path / "all"), "--check"]) == 0
    assert main(["diagrams", "--domain", "examples.support_request:AGREEMENT",
                 "--out", str(tmp_path / "one"), "--format", "mermaid"]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["agreement.mmd"]
    mermaid = (tmp_path / "all" / "support_request.mmd").read_text()
    assert "escalate (after 3 days)" in mermaid and "[charge set by the agreement]" in mermaid


def test_diagram_of_one_request_with_the_domain(capsys) -> None:
    assert main(["diagram", str(LOG), "support_request/R-2", "--domain", DOMAIN_SPEC,
                 "--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert "support_request/R-2, now declined" in out
    assert "3: escalate (timer escalation, armed by s7)" in out


def test_the_default_domain_is_still_ours(capsys) -> None:
    assert main(["diagram", str(ROOT / "examples" / "collaborations.jsonl"), "order/O-404",
                 "--format", "mermaid"]) == 0
    assert "Order" in capsys.readouterr().out


# -- a domain that cannot be used: one line, exit 2 --------------------------------------
BROKEN = '''
from statemachine.engine import INITIAL, Domain, Lifecycle, State, Transition
LOST = Lifecycle(name="lost", states=(State("here"),),
                 transitions=(Transition("go", INITIAL, "nowhere"),))
NOT_A_DOMAIN = 42
'''


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"broken_domain_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(BROKEN)
    (tmp_path / f"{name}_raises.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize(("attribute", "message"), [
    ("{m}:LOST", "--domain {m}:LOST: lifecycle 'lost': transition 'go' ['__initial__'] -> "
                 "'nowhere': unknown destination state 'nowhere'"),
    ("{m}:NOT_A_DOMAIN", "--domain {m}:NOT_A_DOMAIN: NOT_A_DOMAIN is a int, not a Domain or a Lifecycle"),
    ("{m}:MISSING", "--domain {m}:MISSING: {m} has no attribute MISSING"),
    ("{m}_raises:X", "--domain {m}_raises:X: cannot import {m}_raises: RuntimeError: boom at import"),
    ("{m}", "--domain '{m}': expected module:ATTRIBUTE, e.g. examples.support_request:DOMAIN"),
])
@pytest.mark.parametrize("command", [["replay", str(LOG)], ["diagrams", "--check"],
                                     ["diagram", str(LOG), "agreement/A-1"]])
def test_a_domain_that_does_not_import_or_compile_is_one_line_and_exit_2(
        broken: str, attribute: str, message: str, command: list[str], capsys) -> None:
    assert main([*command, "--domain", attribute.format(m=broken)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {message.format(m=broken)}\n"


def test_the_service_refuses_a_broken_domain_in_one_line(broken: str, tmp_path: Path, capsys) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import service  # examples/service.py
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert service.main(["--db", str(tmp_path / "x.db"), "--domain", f"{broken}:LOST"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown destination state 'nowhere'" in err
    assert not (tmp_path / "x.db").exists()


# -- a property over generated histories ----------------------------------------------
STORIES = histories(DOMAIN, values={
    "influencers": st.lists(st.sampled_from(["ana", "ben", "cleo"]), min_size=1, max_size=3,
                            unique=True)})


@settings(max_examples=60, database=None, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(STORIES)
def test_one_charge_per_agreement_every_influencer_told_once_and_escalations_on_time(events) -> None:
    engine = Engine(DOMAIN)
    outcomes = []
    engine.subscribe(outcomes.append)
    for event in events:
        engine.apply(event)  # valid by construction: never raises
    effects = [e for o in outcomes for e in o.effects]
    charged = Counter(engine.get(e.request).data["agreement"] for e in effects
                      if isinstance(e, CancellationCharged))
    assert all(count == 1 for count in charged.values())
    told = Counter(e.request for e in effects if isinstance(e, InfluencerNotified))
    for request, count in told.items():
        entity = engine.get(request)
        assert entity.state in ("approved", "declined")
        assert count == len(engine.get("agreement/" + entity.data["agreement"]).data["influencers"])
    for outcome in outcomes:
        if outcome.timer == "escalation":
            assert outcome.due is not None and outcome.time >= outcome.due


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_create_app_serves_the_domain_it_is_given(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from live import STORY_SKEW

    from statemachine.service import create_app

    app = create_app(tmp_path / "support.db", domain=DOMAIN, drain_interval=None, clock_skew=STORY_SKEW)
    with TestClient(app) as client:
        for raw in LOG.read_text().splitlines()[:6]:
            assert client.post("/events", content=raw,
                               headers={"content-type": "application/json"}).status_code == 200
        assert client.get("/entities/support_request/R-1").json()["state"] == "approved"
        assert client.post("/events", json={"id": "o1", "time": "2026-05-04T00:00:00Z",
                                            "type": "order.agreed", "subject": "order/O-1",
                                            "data": {}}).status_code == 422  # not this domain's


def test_a_ledger_kind_of_ones_own_is_totalled_after_the_specs() -> None:
    import io

    import attrs as _attrs

    from statemachine.engine import INITIAL, Effect, Field, Input, Lifecycle, State, Transition, action
    from statemachine.engine import fields as f
    from statemachine.engine.declaration import Domain as _Domain
    from statemachine.replay import render_text, replay, to_json

    @_attrs.frozen(kw_only=True)
    class Tipped(Effect):
        ledger_kind = "tip"
        jar: str
        amount: Decimal
        currency: str

        def ledger_subject(self) -> str:
            return self.jar

    @action(label="tip")
    def tip(ctx):
        yield Tipped(cause=ctx.event_id, time=ctx.time, jar=ctx.subject, amount=ctx.params["amount"],
                     currency="EUR")

    jar = Lifecycle(name="jar", states=(State("open"),),
                    transitions=(Transition("open", INITIAL, "open", actions=[tip]),),
                    inputs=(Input("jar.opened", "open", (Field("amount", f.decimal),)),))
    log = b"\n".join([
        b'{"id": "j1", "time": "2026-01-01T00:00:00Z", "type": "jar.opened", "subject": "jar/J-1", '
        b'"data": {"amount": "2.50"}}',
        b'{"id": "j2", "time": "2026-01-01T00:01:00Z", "type": "jar.opened", "subject": "jar/J-2", '
        b'"data": {"amount": "1.00"}}'])
    report = replay(io.BytesIO(log), domain=_Domain(jar))
    assert json.loads(to_json(report))["totals"] == {"EUR": {"tip": "3.50"}}
    assert "tip" in render_text(report) and "3.50" in render_text(report)
