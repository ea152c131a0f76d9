"""Declared entity data (``Lifecycle.data``): compact records that read like the dicts they
replace, refuse undeclared names, and keep a rejected event from changing anything."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ev
from hypothesis import given
from hypothesis import strategies as st

from statemachine.engine import (
    INITIAL,
    Action,
    Assign,
    Domain,
    Entity,
    Input,
    Lifecycle,
    Runtime,
    State,
    Transition,
    compile_lifecycle,
)
from statemachine.engine.errors import DeclarationError
from statemachine.engine.record import Record, record_type
from statemachine.envelope import to_event
from statemachine.lifecycles import DOMAIN

FIELDS = ("project", "fee", "currency", "review", "deadline", "agreed_event", "submitted_at",
          "submitted_event")
OrderData = record_type("order", FIELDS)


def test_a_record_reads_like_a_dict() -> None:
    data = OrderData.empty.evolve({"fee": 5, "project": "P-1", "review": None})
    assert isinstance(data, Record)
    assert data["fee"] == 5 and data["review"] is None
    assert data.get("fee") == 5 and data.get("currency") is None and data.get("currency", 0) == 0
    assert "review" in data and "currency" not in data and "nonsense" not in data
    assert list(data) == ["project", "fee", "review"]  # set fields, in declared order
    assert len(data) == 3
    assert dict(data) == {"project": "P-1", "fee": 5, "review": None}
    assert data == {"fee": 5, "project": "P-1", "review": None}
    assert {"fee": 5, "project": "P-1", "review": None} == data  # noqa: SIM300 - dict.__eq__ first
    assert data != {"fee": 5, "project": "P-1"}
    assert repr(data) == "OrderData({'project': 'P-1', 'fee': 5, 'review': None})"


@pytest.mark.parametrize("key", ["currency", "nonsense", "get", "evolve", "_names", 3])
def test_an_absent_or_undeclared_key_is_a_key_error(key: Any) -> None:
    with pytest.raises(KeyError):
        OrderData.empty.evolve({"fee": 5})[key]


def test_a_record_cannot_be_changed_in_place() -> None:
    data = OrderData.empty.evolve({"fee": 5})
    with pytest.raises(TypeError):
        data["fee"] = 6  # type: ignore[index]
    with pytest.raises(AttributeError):
        data.nonsense = 6  # type: ignore[attr-defined]  # slots: no attribute outside them


def test_evolve_returns_a_new_record_and_leaves_the_old_one() -> None:
    first = OrderData.empty.evolve({"fee": 5})
    second = first.evolve({"fee": 6, "currency": "EUR"})
    assert first == {"fee": 5} and second == {"fee": 6, "currency": "EUR"}
    assert OrderData.empty == {}
    assert OrderData.of(second) is second
    assert OrderData.of({"fee": 6, "currency": "EUR"}) == second


def test_evolve_refuses_an_undeclared_name_and_says_which() -> None:
    with pytest.raises(TypeError, match=r"order data has no field 'colour': declare it"):
        OrderData.empty.evolve({"fee": 5, "colour": "red"})


def test_a_record_is_much_smaller_than_the_dict_it_replaces() -> None:
    values = dict.fromkeys(FIELDS, "x")
    assert sys.getsizeof(OrderData.of(values)) * 2 < sys.getsizeof(values)


_VALUES = st.one_of(st.none(), st.integers(), st.text(alphabet="ab€", max_size=3))  # no charmap
_CHANGES = st.dictionaries(st.sampled_from(FIELDS), _VALUES, max_size=4)


@given(st.lists(_CHANGES, max_size=6))
def test_a_record_evolves_exactly_as_dict_merges_do(steps: list[dict[str, Any]]) -> None:
    record: Record = OrderData.empty
    merged: dict[str, Any] = {}
    for changes in steps:
        record, merged = record.evolve(changes), {**merged, **changes}
        assert record == merged and merged == record
        assert set(record) == set(merged) and len(record) == len(merged)
        assert all(record[k] == v and record.get(k, "-") == v and k in record
                   for k, v in merged.items())


# -- declarations ------------------------------------------------------------------------
def _door(data: tuple[str, ...], assigns: dict[str, Any]) -> Lifecycle:
    def paint(ctx: Any) -> Iterator[Any]:
        yield Assign(assigns)

    return Lifecycle(
        name="door", kind="door", title="Door", data=data,
        states=(State("closed"), State("open")),
        transitions=(Transition("create", (INITIAL,), "closed", actions=("paint",)),
                     Transition("open", ("closed",), "open", actions=("paint",))),
        actions=(Action("paint", paint),),
        inputs=(Input("door.created", "create"), Input("door.opened", "open")),
    )


@pytest.mark.parametrize(("data", "message"), [
    (("colour", "colour"), "data field 'colour' is declared twice"),
    (("colour", "two words"), "data field 'two words' is not an identifier"),
    (("class",), "data field 'class' is not an identifier"),
    (("_hidden",), "data field '_hidden' is reserved"),
    (("items",), "data field 'items' is reserved"),
    (("evolve",), "data field 'evolve' is reserved"),
])
def test_a_data_field_that_cannot_be_a_record_field_is_a_declaration_error(
        data: tuple[str, ...], message: str) -> None:
    with pytest.raises(DeclarationError, match=f"lifecycle 'door': {message}"):
        compile_lifecycle(_door(data, {}))


def test_declared_lifecycles_keep_records_and_undeclared_ones_dicts() -> None:
    declared = Runtime(Domain((_door(("colour",), {"colour": "red"}),)))
    declared.apply(to_event(ev("e1", "2026-03-01T10:00:00Z", "door.created", "door/D")))
    assert isinstance(declared.get("door/D").data, Record)  # type: ignore[union-attr]
    assert declared.get("door/D").data == {"colour": "red"}  # type: ignore[union-attr]
    undeclared = Runtime(Domain((_door((), {"colour": "red"}),)))
    undeclared.apply(to_event(ev("e1", "2026-03-01T10:00:00Z", "door.created", "door/D")))
    assert type(undeclared.get("door/D").data) is dict  # type: ignore[union-attr]


def test_an_action_assigning_an_undeclared_name_changes_nothing() -> None:
    runtime = Runtime(Domain((_door(("colour",), {"colour": "red", "size": 2}),)))
    with pytest.raises(TypeError, match=r"action paint: door data has no field 'size'"):
        runtime.apply(to_event(ev("e1", "2026-03-01T10:00:00Z", "door.created", "door/D")))
    assert runtime.get("door/D") is None and "e1" not in runtime.applied


def test_every_business_lifecycle_declares_its_data() -> None:
    runtime = Runtime(DOMAIN)
    assert all(c.record is not None for c in runtime.compiled.values())


def test_restored_dicts_become_records_equal_to_them() -> None:
    runtime = Runtime(Domain((_door(("colour",), {}),)))
    runtime.restore([Entity("door/D", "door", "closed", {"colour": "red"}, 1)])
    entity = runtime.get("door/D")
    assert entity is not None and isinstance(entity.data, Record)
    assert entity.data == {"colour": "red"} and entity.version == 1
    with pytest.raises(TypeError, match="door data has no field 'size'"):
        runtime.restore([Entity("door/E", "door", "closed", {"size": 2}, 1)])


def test_what_a_replay_keeps_per_entity_is_immutable_and_outside_the_cyclic_collector() -> None:
    # A replay keeps an entity record, its data and ledger lines per entity: untracked,
    # the collector's passes do not grow with the entities (they were a fifth of a
    # long replay's time). None of them can be part of a reference cycle.
    import gc
    import json

    import msgspec

    from statemachine.replay import Replayer

    replayer = Replayer()
    for number, line in enumerate((
        ev("p", "2026-03-01T10:00:00Z", "project.created", "project/P", kind="creator",
           currency="USD", deadline="2026-04-01T00:00:00Z"),
        ev("o", "2026-03-01T10:05:00Z", "order.agreed", "order/O", project="P", fee="100.00",
           review="auto"),
        ev("s", "2026-03-01T10:06:00Z", "order.submitted", "order/O"),
    ), start=1):
        replayer.feed(number, json.dumps(line).encode())
    entity = replayer.runtime.get("order/O")
    assert entity is not None and entity.state == "approved"
    (line,) = replayer.ledger
    for kept in (entity, entity.data, line):
        assert not gc.is_tracked(kept), kept
    with pytest.raises(AttributeError):
        entity.state = "agreed"  # type: ignore[misc]
    assert msgspec.structs.replace(entity, state="agreed").state == "agreed"


def test_one_record_class_per_lifecycle_and_records_survive_pickling() -> None:
    import pickle

    from statemachine.engine import Entity

    assert record_type("order", FIELDS) is OrderData  # however many runtimes compile it
    data = OrderData.of({"fee": 5, "review": None})
    entity = Entity("order/O", "order", "agreed", data, 1)
    copy = pickle.loads(pickle.dumps(entity))
    assert copy == entity and type(copy.data) is OrderData and copy.data == {"fee": 5, "review": None}
    assert "review" in copy.data and "currency" not in copy.data
