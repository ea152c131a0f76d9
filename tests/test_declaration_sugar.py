"""The declaration sugar (guard/action objects in transitions, one source as a string,
``kind`` and ``title`` left out) normalises into the canonical form: the compiler, the
runtime and the diagrams see exactly what the long spelling gives them."""

from __future__ import annotations

import attrs
import pytest

from statemachine import PROMOTION
from statemachine.diagrams import build_diagram
from statemachine.diagrams.mermaid import to_mermaid
from statemachine.engine import (
    INITIAL,
    Action,
    DeclarationError,
    Domain,
    Guard,
    Lifecycle,
    State,
    Transition,
    action,
    compile_lifecycle,
    guard,
)


def _named(items, name):
    return next(item for item in items if item.name == name)


def promotion_with_objects() -> Lifecycle:
    """PROMOTION spelled with its guard and action objects in place of their names."""
    g = {x.name: x for x in PROMOTION.guards}
    a = {x.name: x for x in PROMOTION.actions}
    states = tuple(attrs.evolve(s, on_enter=tuple(a[n] for n in s.on_enter)) for s in PROMOTION.states)
    transitions = tuple(
        Transition(t.trigger, t.sources[0] if len(t.sources) == 1 else t.sources, t.dest,
                   guards=[g[n] for n in t.guards], actions=[a[n] for n in t.actions],
                   internal=t.internal, description=t.description)
        for t in PROMOTION.transitions)
    return Lifecycle(name="promotion", title="Promotion", description=PROMOTION.description,
                     data=PROMOTION.data, states=states, transitions=transitions,
                     timers=PROMOTION.timers, inputs=PROMOTION.inputs)


def test_objects_in_transitions_compile_to_the_same_table_and_diagram() -> None:
    sugared = promotion_with_objects()
    assert sugared.kind == "promotion"  # from the name
    assert sugared.transitions == PROMOTION.transitions  # names again, plain strings
    assert all(type(n) is str for t in sugared.transitions for n in (*t.guards, *t.actions))
    assert sorted(x.name for x in sugared.guards) == sorted(x.name for x in PROMOTION.guards)
    assert set(sugared.actions) == set(PROMOTION.actions)
    assert compile_lifecycle(sugared).table == compile_lifecycle(PROMOTION).table
    assert to_mermaid(build_diagram(sugared)) == to_mermaid(build_diagram(PROMOTION))


def test_declared_guards_keep_their_place_and_inline_ones_follow_in_order_of_use() -> None:
    @guard("never", label="no")
    def _never(ctx) -> bool:
        return False

    @action(label="note")
    def note(ctx):
        return ()

    listed = Guard("listed", lambda ctx: True, "listed")
    lc = Lifecycle(name="thing", guards=(listed,),
                   states=(State("a", on_enter=[note]), State("b")),
                   transitions=(Transition("create", INITIAL, "a", guards=["listed"]),
                                Transition("go", "a", "b", guards=[_never, listed], actions=[note])))
    assert [g.name for g in lc.guards] == ["listed", "never"]  # the leading _ dropped
    assert [a.name for a in lc.actions] == ["note"]  # one object, used twice: once
    assert lc.transitions[1].guards == ("never", "listed")
    assert lc.states[0].on_enter == ("note",)
    assert lc.title == "Thing"
    assert lc.transitions[1].sources == ("a",)
    assert _named(lc.guards, "never").label == "no"
    compile_lifecycle(lc)


def test_two_different_guards_of_one_name_are_a_declaration_error() -> None:
    one = Guard("same", lambda ctx: True, "one")
    two = Guard("same", lambda ctx: False, "two")
    lc = Lifecycle(name="twice", states=(State("a"), State("b")),
                   transitions=(Transition("create", INITIAL, "a", guards=[one]),
                                Transition("go", "a", "b", guards=[two])))
    with pytest.raises(DeclarationError, match="duplicate guard or action names"):
        compile_lifecycle(lc)


def test_a_guard_where_an_action_belongs_is_refused_at_once() -> None:
    wrong = Guard("wrong", lambda ctx: True, "no")
    with pytest.raises(TypeError, match="'wrong' is a Guard, not a Action"):
        Transition("go", "a", "b", actions=[wrong])
    with pytest.raises(TypeError, match="given by its name or as a Guard"):
        Transition("go", "a", "b", guards=[42])


def test_the_long_spelling_is_unchanged() -> None:
    lc = Lifecycle("old", "thing", "Old", (State("a"),),
                   (Transition("create", (INITIAL,), "a", guards=("ok",)),),
                   guards=(Guard("ok", lambda ctx: True, "ok"),),
                   actions=(Action("unused", lambda ctx: ()),))
    assert (lc.name, lc.kind, lc.title) == ("old", "thing", "Old")
    assert lc.transitions[0].guards == ("ok",)
    with pytest.raises(DeclarationError, match=r"declared but never used: \['unused'\]"):
        compile_lifecycle(lc)


def test_a_domain_of_one_lifecycle() -> None:
    assert Domain(lifecycles=PROMOTION).lifecycles == (PROMOTION,)
    assert Domain(lifecycles=[PROMOTION]).lifecycles == (PROMOTION,)


def test_input_fields_as_a_mapping_of_parsers() -> None:
    from statemachine.engine import Field, Input
    from statemachine.engine import fields as f

    assert Input("x.y", "go", {"reason": f.text, "fee": f.decimal}).fields == (
        Field("reason", f.text), Field("fee", f.decimal))
    assert Input("x.y", "go", [Field("reason", f.text, required=False)]).fields == (
        Field("reason", f.text, required=False),)
