"""Store failures: distinct from :class:`~statemachine.engine.EventRejected`.

A rejected event is wrong and stays wrong; a stale write is a race that a retry can
win. Callers (the service) need to tell the two apart, so they are separate families.
"""

from __future__ import annotations

__all__ = ["StaleWrite", "StoreError"]


class StoreError(Exception):
    """The store cannot do what was asked (an unknown schema, a closed store, …)."""


class StaleWrite(StoreError):
    """Another writer got there first: an entity version or an event id this write
    needed was already taken. Nothing of the write was stored, and the engine's memory
    was reloaded from the store, so applying the event again decides on fresh state.

    ``subject`` and ``version`` name the contested entity version when there is one.
    """

    def __init__(self, reason: str, *, subject: str | None = None, version: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subject = subject
        self.version = version
