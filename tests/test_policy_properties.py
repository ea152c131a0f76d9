"""Invariants of policy versions over random logs and random valid versions (hypothesis).

Whatever the versions, the money rules hold for every order (``refunded + released ==
fee`` once settled, an expiry refunds its version's percent), each order is governed by
the version in force at its agreement, and ``--verify`` of a replay against its own
ledger finds nothing but ``matched``.
"""

from __future__ import annotations

import io
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import BASE, SETTLED, _encode, as_of, event_logs

from statemachine.lifecycles import Policies, PolicyVersion, domain_for
from statemachine.lifecycles.versions import REQUESTERS, STAGES, load_version
from statemachine.money import percent_of
from statemachine.replay import Replayer, read_lines
from statemachine.replay.audit import verify
from statemachine.timeutil import format_instant

_PERCENT = st.one_of(st.integers(0, 100), st.sampled_from([0, 33, 50, 67, 100]))


@st.composite
def versions(draw: st.DrawFn) -> Policies:
    """One to three valid version files besides the built-in one, taking effect while
    the random logs run (they start at BASE and last a few weeks)."""
    count = draw(st.integers(1, 3))
    starts = draw(st.lists(st.integers(0, 20 * 24), min_size=count, max_size=count, unique=True))
    made = []
    with tempfile.TemporaryDirectory() as folder:
        for number, hours in enumerate(starts):
            rows = "\n".join(
                f"{stage} = {{ " + ", ".join(f"{by} = {draw(_PERCENT)}" for by in REQUESTERS) + " }"
                for stage in STAGES)
            text = (f'id = "v{number}"\neffective_from = "{format_instant(BASE + timedelta(hours=hours))}"\n'
                    f'title = "random version {number}"\n'
                    f"deemed_approval_days = {draw(st.integers(1, 20))}\n"
                    f"[creator.refund_percent]\n{rows}\n"
                    f"[expiry]\nrefund_percent = {draw(_PERCENT)}\n")
            path = Path(folder) / f"v{number}.toml"
            path.write_text(text)
            made.append(load_version(path))
    return Policies.of(*made)


def _governing(policies: Policies, agreed: datetime) -> PolicyVersion:
    return max((v for v in policies.versions if v.effective_from <= agreed), key=lambda v: v.effective_from)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(), as_of(), versions())
def test_random_versions_keep_the_money_rules_and_the_ledger_verifies_against_itself(
        lines: list[str], until: datetime | None, policies: Policies) -> None:
    data = _encode(lines)
    agreed_at: dict[str, datetime] = {}
    with Replayer(domain_for(policies)) as replayer:
        runtime = replayer.runtime
        runtime.subscribe(lambda outcome: agreed_at.update(
            {s.subject: outcome.time for s in outcome.steps
             if s.trigger == "create" and s.lifecycle == "order"}))
        for number, raw in read_lines(io.BytesIO(data)):
            replayer.feed(number, raw)
        report = replayer.finish(until)
        entities = dict(runtime.entities)
    money: dict[tuple[str, str], Decimal] = {}
    for line in report.ledger:
        money[(line.subject, line.kind)] = money.get((line.subject, line.kind), Decimal(0)) + line.amount
    for subject, entity in entities.items():
        if entity.kind != "order":
            continue
        version = policies.get(entity.data["policy"])
        assert version == _governing(policies, agreed_at[subject]), subject
        fee, currency = entity.data["fee"], entity.data["currency"]
        refund = money.get((subject, "refund"), Decimal(0))
        released = money.get((subject, "payment_released"), Decimal(0))
        assert 0 <= refund <= fee
        if entity.state in SETTLED:
            assert refund + released == fee, (subject, entity.state, refund, released, fee)
        else:
            assert refund == released == 0
        if entity.state == "expired":
            assert refund == percent_of(fee, version.expiry_refund_percent, currency)
        if entity.state in ("approved", "deemed_approved"):
            assert released == fee
    with tempfile.TemporaryDirectory() as folder:
        own = Path(folder) / "own.jsonl"
        own.write_bytes(b"".join(orjson.dumps(line.to_dict()) + b"\n" for line in report.ledger))
        result = verify(report.ledger, own)
    assert result.clean, result
    assert result.matched == len(report.ledger)
