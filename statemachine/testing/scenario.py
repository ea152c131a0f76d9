"""Example-based tests that read like the rule: given these events, when this one, then
this state and these effects, or refused with this reason.

    given(signed, opened).when(approved).then(state="approved",
                                              effects=[CancellationCharged, InfluencerNotified])
    given(signed, opened).when(approved_with_penalty).refused("sets no penalty")

Events are envelopes (dicts, as the log carries them); ``id`` and ``time`` may be left
out: ids are numbered (``g1``, ``g2``, … and ``w1`` for the ``when`` event) and each
missing time is one minute after the event before (the first: ``2026-01-01T00:00:00Z``).
A ``given`` event that is rejected fails the test at once, naming it: a story that
does not hold is a broken test, not a passing one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from ..api import Engine
from ..engine import Domain, Effect, EventRejected, Outcome
from ..timeutil import format_instant, parse_instant

__all__ = ["Scenario", "When", "given"]

_START = "2026-01-01T00:00:00Z"


def given(*events: Mapping[str, Any], domain: Domain | None = None) -> Scenario:
    """A fresh engine (``domain`` defaults to ours) with ``events`` applied in order."""
    return Scenario(events, domain)


class Scenario:
    """The engine after the ``given`` events; :meth:`when` applies one more."""

    def __init__(self, events: Sequence[Mapping[str, Any]], domain: Domain | None) -> None:
        self.engine = Engine(domain)
        self._time = parse_instant(_START) - timedelta(minutes=1)
        for number, event in enumerate(events, start=1):
            envelope = self._complete(event, f"g{number}")
            try:
                self.engine.apply(envelope)
            except EventRejected as exc:
                raise AssertionError(f"given event {number} ({envelope['type']} "
                                     f"{envelope['subject']}) was rejected: {exc.reason}") from None

    def _complete(self, event: Mapping[str, Any], ident: str) -> dict[str, Any]:
        envelope = dict(event)
        envelope.setdefault("id", ident)
        if "time" in envelope:
            self._time = parse_instant(envelope["time"])
        else:
            self._time += timedelta(minutes=1)
            envelope["time"] = format_instant(self._time)
        return envelope

    def when(self, event: Mapping[str, Any]) -> When:
        """Apply ``event`` now; :meth:`When.then` or :meth:`When.refused` judges it."""
        envelope = self._complete(event, "w1")
        runtime = self.engine.runtime
        before = [dict(runtime.entities)]

        def after_timer(outcome: Outcome) -> None:  # timers due first may change entities
            if outcome.timer is not None:
                before[0] = dict(runtime.entities)

        unsubscribe = self.engine.subscribe(after_timer)
        try:
            return When(self, envelope, self.engine.apply(envelope), None, before[0])
        except EventRejected as exc:
            return When(self, envelope, None, exc, before[0])
        finally:
            unsubscribe()


def _matches(expected: Any, effect: Effect) -> bool:
    if isinstance(expected, str):
        return effect.name == expected
    if isinstance(expected, type):
        return isinstance(effect, expected)
    return bool(expected == effect)


class When:
    """What the ``when`` event did: an outcome, or a rejection."""

    def __init__(self, scenario: Scenario, envelope: Mapping[str, Any], outcome: Outcome | None,
                 rejection: EventRejected | None, before: Mapping[str, Any]) -> None:
        self.scenario = scenario
        self.envelope = envelope
        self.outcome = outcome
        self.rejection = rejection
        self._before = before

    @property
    def engine(self) -> Engine:
        return self.scenario.engine

    def then(self, *, state: str | None = None, effects: Sequence[Any] | None = None,
             data: Mapping[str, Any] | None = None) -> Outcome:
        """Assert the event applied and left its subject in ``state``, emitted exactly
        ``effects`` in order (each an effect, an effect class or its name) and holds
        ``data`` (the listed fields only). Returns the outcome for further checks."""
        subject = self.envelope["subject"]
        if self.outcome is None:
            assert self.rejection is not None
            raise AssertionError(f"{self.envelope['type']} on {subject} was refused, not applied: "
                                 f"{self.rejection.reason}")
        entity = self.engine.get(subject)
        assert entity is not None
        if state is not None and entity.state != state:
            raise AssertionError(f"{subject} is {entity.state}, not {state} "
                                 f"(steps: {[(s.subject, s.source, s.dest) for s in self.outcome.steps]})")
        if effects is not None:
            got = self.outcome.effects
            if len(got) != len(effects) or not all(map(_matches, effects, got)):
                raise AssertionError(f"effects differ: expected {list(effects)!r}, got "
                                     f"{[e.name for e in got]!r}: {list(got)!r}")
        for name, value in (data or {}).items():
            if entity.data.get(name) != value:
                raise AssertionError(f"{subject}: data.{name} is {entity.data.get(name)!r}, "
                                     f"not {value!r}")
        return self.outcome

    def refused(self, reason: str | None = None, *, guard: str | None = None) -> EventRejected:
        """Assert the event was rejected (its reason containing ``reason``; refused by
        ``guard``) and changed nothing. Returns the rejection."""
        if self.rejection is None:
            assert self.outcome is not None
            raise AssertionError(f"{self.envelope['type']} on {self.envelope['subject']} applied "
                                 f"(now {self.outcome.state}), expected a refusal")
        if reason is not None and reason not in self.rejection.reason:
            raise AssertionError(f"refused for another reason: {self.rejection.reason!r} "
                                 f"does not contain {reason!r}")
        if guard is not None and getattr(self.rejection, "guard", None) != guard:
            raise AssertionError(f"refused by guard {getattr(self.rejection, 'guard', None)!r}, "
                                 f"not {guard!r}: {self.rejection.reason}")
        after = self.engine.runtime.entities
        changed = [s for s, e in self._before.items() if after.get(s) is not e]
        changed += sorted(after.keys() - self._before.keys())
        if changed:
            raise AssertionError(f"a refused event changed {changed}")
        return self.rejection
