"""The typed envelope decode of a lazy file replay (``envelope.typed_event``).

It must never read a line differently from the general path (``loads`` then
``to_event``): for any line, it either gives exactly the event the general path gives
(the same values, of the same types: ``Decimal("1.50")`` is not ``Decimal("1.5")``), or
it declines and the general path decides (accepting, or rejecting with its own reason).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.engine.errors import EventRejected
from statemachine.envelope import loads, to_event, typed_event

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _general(raw: bytes) -> object:
    try:
        return to_event(loads(raw), token=7)
    except EventRejected as exc:
        return exc


def _same_reading(raw: bytes) -> object:
    """Assert the typed decode agrees with the general path; return what it gave."""
    typed = typed_event(raw, 7)
    if typed is not None:
        general = _general(raw)
        assert not isinstance(general, EventRejected), (raw, general)
        assert repr(typed) == repr(general), raw
        assert [type(v) for v in typed.data.values()] == [type(v) for v in general.data.values()]
    return typed


def test_the_example_logs_take_the_typed_path():
    """Machine-written lines (the examples, the generator's) are read by the typed decode
    itself: the fast path is the common one, not a rarity."""
    for name in ("collaborations.jsonl", "ads_manager.jsonl"):
        lines = [line.strip() for line in (EXAMPLES / name).read_bytes().splitlines() if line.strip()]
        typed = [_same_reading(line) for line in lines]
        accepted = [line for line in lines if not isinstance(_general(line), EventRejected)]
        assert sum(t is not None for t in typed) >= len(accepted) * 9 // 10, name


BASE = {"specversion": "1.0", "id": "e1", "source": "svc", "time": "2026-03-01T10:00:00Z",
        "type": "order.agreed", "subject": "order/O-1",
        "data": {"project": "P-1", "fee": "250.00", "review": "manual"}}


def _line(obj: dict, sep: tuple[str, str] = (",", ":")) -> bytes:
    return json.dumps(obj, separators=sep, ensure_ascii=False).encode()


def test_declines_what_it_cannot_vouch_for():
    """Each case the general path reads its own way goes to the general path."""
    cases = [
        _line(BASE)[:-1] + b',"id":"e2"}',  # a repeated key: readers disagree
        _line(BASE).replace(b'"data":{', b'"data":{"fee":"1.00",'),  # repeated in data
        _line({**BASE, "extension": "x"}),  # a field it does not declare
        _line({**BASE, "data": {"list": [1.5]}}),  # a float inside a list stays a float
        _line({**BASE, "data": {"big": 1 << 70}}),  # past 64 bits
        _line({**BASE, "specversion": "2.0"}),
        _line({**BASE, "id": ""}),
        _line({**BASE, "time": "2026-03-01T10:00:00"}),  # no offset
        _line({**BASE, "subject": "order/\u0000"}),
        _line({**BASE, "source": {"a": 1}}),
        _line({**BASE, "data": [1]}),
        b"\xef\xbb\xbf" + _line(BASE),  # a byte order mark
        b'{"id": "e1"',
        b"[]",
    ]
    for raw in cases:
        assert typed_event(raw, 7) is None, raw
    assert _same_reading(_line(BASE)) is not None
    assert _same_reading(_line(BASE, (", ", ": "))) is not None  # keys still end in '":'
    assert typed_event(_line(BASE, (",", " : ")), 7) is None  # a quote then white space


def test_floats_are_read_exactly():
    raw = b'{"id":"e1","time":"2026-03-01T10:00:00Z","type":"order.agreed","subject":"order/O-1",' \
          b'"data":{"fee":250.50,"n":3}}'
    event = _same_reading(raw)
    assert event is not None
    assert event.data["fee"] == Decimal("250.50") and str(event.data["fee"]) == "250.50"


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(1 << 80), max_value=1 << 80),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(['":', '\\"', "\u2028", "\ud7ff", " :", "€"]),
)
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)
_names = st.sampled_from(["specversion", "id", "source", "time", "type", "subject", "data",
                          "extra"])


@settings(max_examples=400, deadline=None)
@given(
    fields=st.dictionaries(_names, st.one_of(
        st.sampled_from(["1.0", "e1", "order.agreed", "order/O-1", "2026-03-01T10:00:00Z",
                         "", "x/y/z", "2026-03-01T10:00:00+02:00"]),
        _value), max_size=8),
    data=st.dictionaries(st.sampled_from(["fee", "project", "review", "a\":", "n"]), _value,
                         max_size=4),
    base=st.booleans(),
    order=st.randoms(use_true_random=False),
    compact=st.booleans(),
    repeat=st.sampled_from([None, "id", "fee", "type"]),
)
def test_never_reads_a_line_differently(fields, data, base, order, compact, repeat):
    obj = dict(BASE) if base else {}
    obj.update(fields)
    if data or base:
        obj["data"] = data if data else obj.get("data", {})
    items = list(obj.items())
    order.shuffle(items)
    raw = _line(dict(items), (",", ":") if compact else (", ", ": "))
    if repeat == "id":
        raw = raw[:-1] + b',"id":"other"}' if raw.endswith(b"}") and len(raw) > 2 else raw
    elif repeat == "fee" and b'"data":{' in raw:
        raw = raw.replace(b'"data":{', b'"data":{"fee":"9.99",', 1)
    elif repeat == "type":
        raw = raw.replace(b"{", b'{"type":"order.approved",', 1)
    _same_reading(raw)
