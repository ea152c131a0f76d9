"""One exception family: every refusal names what, where and why.

All derive from :class:`EventRejected`, so a caller (the replay, a service) catches a
single type; ``reason`` is the one-line text a report prints. A rejected event never
changes anything.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DeclarationError",
    "EntityExists",
    "EventRejected",
    "InvalidEvent",
    "OutOfOrder",
    "TransitionRefused",
    "UnknownEntity",
]


class DeclarationError(ValueError):
    """A lifecycle declaration is inconsistent (unknown state, unresolved guard, …)."""


class EventRejected(Exception):
    """An event was not applied; nothing of it changed any entity."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidEvent(EventRejected):
    """The event itself is wrong: a missing or ill-typed field, an unknown type.

    ``field`` names the offending field (``data.fee``, ``time``) when there is one.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


class UnknownEntity(EventRejected):
    """The subject was never created."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"{subject}: no such entity (it was never created)")
        self.subject = subject


class EntityExists(EventRejected):
    """A creation names a subject that already exists."""

    def __init__(self, subject: str, state: str) -> None:
        super().__init__(f"{subject}: already exists (in state {state})")
        self.subject = subject


class TransitionRefused(EventRejected):
    """The entity's lifecycle does not allow the trigger now.

    ``guard`` is the name of the guard that said no, or ``None`` when no transition
    for the trigger leaves the current state at all; ``field`` is the input field that
    guard judges, when it judges one.
    """

    def __init__(
        self, subject: str, state: str, trigger: str, detail: str | None = None,
        guard: str | None = None, field: str | None = None,
    ) -> None:
        # A creation has no state yet: say "cannot create", not "in state __initial__".
        where = "" if state == "__initial__" else f" in state {state}"
        text = f"{subject}: cannot {trigger}{where}"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.subject = subject
        self.state = state
        self.trigger = trigger
        self.guard = guard
        self.detail = detail
        self.field = field


class OutOfOrder(EventRejected):
    """The event is older than the engine's clock."""


class Conflict(EventRejected):
    """An event id was applied before with different content."""
