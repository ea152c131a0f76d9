"""Generated *valid* event histories for any declared domain (a ``hypothesis`` strategy).

``histories(domain)`` walks the domain's own declaration: at each step it picks an
input the current state of some entity accepts (or an input that creates one), draws
its ``data`` from the declared fields (every value is checked by the field's own
parser), lets time pass by a drawn gap (so timers fire), and keeps the event only if
the engine applies it. A history is therefore a list of envelopes that a fresh engine
applies in order without one rejection, however hypothesis shrinks it. A team
property-tests its invariants in a few lines::

    @given(histories(DOMAIN))
    def test_money_is_conserved(events):
        engine = Engine(DOMAIN)
        for event in events:
            engine.apply(event)
        ...

Values are drawn per field parser: the ones of :mod:`statemachine.engine.fields` are
known (``text``, ``identifier``, ``decimal``, ``currency``, ``instant`` (after the
event's time), ``boolean``, ``choice``); an identifier that is the lifecycle's
:class:`~statemachine.engine.Parent` field names an existing parent. For a parser of
your own, pass ``values={"field": strategy}`` (or ``{"type.field": …}`` for one input
only; a callable of the event time for values that depend on it), or
:func:`register` the parser once.

Hypothesis shrinks a failing history by shrinking these draws; as each draw depends on
the model's state, a shrunk draw may take the walk elsewhere, so shrinking usually takes
seconds but for some histories minutes. ``settings(phases=...)`` without
``Phase.shrink`` reports the history as found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ..engine import INITIAL, Domain, EventRejected, Field, Input, Runtime
from ..engine import fields as f
from ..envelope import to_event
from ..timeutil import format_instant, parse_instant

__all__ = ["GAPS", "histories", "register"]

#: The time between two drawn events, from none at all to past a 14-day timer; short
#: gaps weigh more (a long one lets every timer fire and ends the story).
GAPS = (timedelta(0), timedelta(minutes=5), timedelta(minutes=5), timedelta(hours=3),
        timedelta(hours=3), timedelta(days=1), timedelta(days=4), timedelta(days=15))

#: Drawn values per parser: a strategy, or a function of the event's time giving one.
ValueSource = st.SearchStrategy[Any] | Callable[[datetime], st.SearchStrategy[Any]]

_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=20)
_KNOWN: dict[Callable[[Any], Any], ValueSource] = {
    f.text: _TEXT,
    f.identifier: st.sampled_from(["X-1", "X-2", "X-3"]),
    f.decimal: st.one_of(st.integers(1, 1000).map(str),
                         st.decimals(Decimal("0.01"), Decimal("1000"), places=2).map(str)),
    f.currency: st.sampled_from(["USD", "EUR", "JPY"]),
    f.boolean: st.booleans(),
    f.instant: lambda now: st.sampled_from((timedelta(hours=1), timedelta(days=2), timedelta(days=10),
                                            timedelta(days=30), timedelta(days=60)))
    .map(lambda gap: format_instant(now + gap)),
}


def register(parser: Callable[[Any], Any], values: ValueSource) -> None:
    """Draw the JSON values of every field parsed by ``parser`` from ``values``."""
    _KNOWN[parser] = values


def _source(inp: Input, field: Field, values: Mapping[str, ValueSource]) -> ValueSource:
    for key in (f"{inp.type}.{field.name}", field.name):
        if key in values:
            return values[key]
    known = _KNOWN.get(field.parse)
    if known is not None:
        return known
    options = getattr(field.parse, "options", None)
    if options:
        return st.sampled_from(options)
    raise ValueError(
        f"histories: no values for data.{field.name} of {inp.type} (parser "
        f"{getattr(field.parse, '__name__', field.parse)!r}): pass values={{{field.name!r}: "
        "a strategy}} or register(parser, strategy)")


def _parses(field: Field) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        try:
            field.parse(value)
        except (ValueError, TypeError):
            return False
        return True

    return ok


def histories(domain: Domain | None = None, *, min_events: int = 1, max_events: int = 30,
              start: str = "2026-01-01T00:00:00Z",
              values: Mapping[str, ValueSource] | None = None) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A strategy of valid histories: lists of envelopes a fresh ``Engine(domain)``
    applies in order without a rejection (``domain`` defaults to ours).

    Up to ``max_events`` attempts are drawn; those the engine refuses (a guard said
    no) are left out, so a history may be shorter, never longer. ``values`` supplies
    the data of fields whose parser is not known (see the module docstring).
    """
    if domain is None:
        from ..lifecycles import DOMAIN

        domain = DOMAIN
    chosen = domain
    extra = dict(values or {})
    Runtime(chosen)  # compile once up front: a bad declaration fails here, not in a draw
    for lc in chosen.lifecycles:  # and every field has a source before any example runs
        for inp in lc.inputs:
            for field in inp.fields:
                parent = lc.parent
                if not (parent and field.name == parent.field):
                    _source(inp, field, extra)

    @st.composite
    def draw_history(draw: st.DrawFn) -> list[dict[str, Any]]:
        runtime = Runtime(chosen)
        creating = [(lc, inp) for lc in chosen.lifecycles for inp in lc.inputs
                    if (INITIAL, inp.trigger) in runtime.compiled[lc.name].table]
        creating = list({inp.type: (lc, inp) for lc, inp in creating}.values())  # variants: once
        finals = {s.name for lc in chosen.lifecycles for s in lc.states if s.final}
        clock = parse_instant(start)
        events: list[dict[str, Any]] = []
        seen: dict[Callable[[Any], Any], list[Any]] = {}
        created = 0
        for attempt in range(draw(st.integers(min_events, max_events))):
            clock = clock + draw(st.sampled_from(GAPS))
            movable: dict[str, list[Input]] = {}
            for entity in runtime.entities.values():
                compiled = runtime.compiled[entity.lifecycle]
                for inp in compiled.declaration.inputs:
                    candidates = compiled.table.get((entity.state, inp.trigger))
                    if candidates and not candidates[0].declaration.internal:
                        movable.setdefault(entity.subject, []).append(inp)
            # Mostly move an existing entity on (deep states need several steps; the
            # entity first, so one with many inputs is not favoured), now and then
            # create one.
            subject: str | None
            if not movable or draw(st.integers(0, 2)) == 0:
                subject, inp = None, draw(st.sampled_from(creating))[1]
            else:
                subject = draw(st.sampled_from(sorted(movable)))
                inp = draw(st.sampled_from(movable[subject]))
            lifecycle = next(lc for lc in chosen.lifecycles if inp in lc.inputs)
            if subject is None:
                created += 1
                subject = f"{lifecycle.kind}/{lifecycle.kind[:1].upper()}-{created}"
            data: dict[str, Any] = {}
            for field in inp.fields:
                if not field.required and not draw(st.booleans()):
                    continue
                parent = lifecycle.parent
                if parent is not None and field.name == parent.field:
                    # A live parent (not in a final state), since a finished one takes no child.
                    ids = sorted(s.partition("/")[2] for s, e in runtime.entities.items()
                                 if s.startswith(parent.kind + "/") and e.state not in finals)
                    source: Any = st.sampled_from(ids) if ids else st.just(f"{parent.kind}-none")
                else:
                    source = _source(inp, field, extra)
                    if not isinstance(source, st.SearchStrategy):
                        source = source(clock)
                    if seen.get(field.parse):  # a value seen before: a spend equal to a budget
                        source = st.one_of(source, st.sampled_from(seen[field.parse]))
                data[field.name] = value = draw(source.filter(_parses(field)))
                if field.parse is f.decimal:
                    seen.setdefault(field.parse, []).append(value)
            envelope: dict[str, Any] = {"specversion": "1.0", "id": f"h{attempt + 1}",
                                        "time": format_instant(clock), "type": inp.type,
                                        "subject": subject}
            if data:
                envelope["data"] = data
            try:
                runtime.apply(to_event(envelope))
            except EventRejected:
                continue
            events.append(envelope)
        return events

    return draw_history()
