"""What operators expect to scrape: ``GET /metrics`` in the Prometheus text format.

One registry per app (two apps in one process, as in the tests, count apart):

* ``collab_events_applied_total{type}``, ``collab_events_duplicate_total{type}``,
  ``collab_events_rejected_total{type, reason}`` (``reason``: the problem's slug, e.g.
  ``transition-refused``, ``forbidden``); a type the lifecycles do not declare is counted
  as ``unknown``, so a caller cannot grow the label set;
* ``collab_timers_fired_total{timer}``: timers the wall clock fired in this instance;
* ``collab_apply_seconds``: how long ``POST /events`` took to decide and commit;
* ``collab_outbox_pending``: effects waiting for delivery, read from the store at scrape.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..engine import Outcome

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The service's counters, in a registry of their own."""

    def __init__(self, types: Iterable[str]) -> None:
        self.types = frozenset(types)
        self.registry = CollectorRegistry(auto_describe=True)
        self.applied = Counter("collab_events_applied", "Events applied", ["type"], registry=self.registry)
        self.duplicate = Counter("collab_events_duplicate", "Events that repeated an applied id",
                                 ["type"], registry=self.registry)
        self.rejected = Counter("collab_events_rejected", "Events refused, by the problem's reason",
                                ["type", "reason"], registry=self.registry)
        self.timers = Counter("collab_timers_fired", "Timers fired by the wall clock", ["timer"],
                              registry=self.registry)
        self.latency = Histogram("collab_apply_seconds", "Time to decide and commit one POST /events",
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.pending = Gauge("collab_outbox_pending", "Effects waiting for delivery (read at scrape)",
                             registry=self.registry)

    def type_label(self, type_: object) -> str:
        return type_ if isinstance(type_, str) and type_ in self.types else "unknown"

    def event(self, type_: object, *, duplicate: bool = False, rejected: str | None = None) -> None:
        label = self.type_label(type_)
        if rejected is not None:
            self.rejected.labels(label, rejected).inc()
        elif duplicate:
            self.duplicate.labels(label).inc()
        else:
            self.applied.labels(label).inc()

    def fired(self, outcome: Outcome) -> None:
        self.timers.labels(outcome.timer or "unknown").inc()

    def render(self, pending: int | None) -> bytes:
        if pending is not None:
            self.pending.set(pending)
        return generate_latest(self.registry)
