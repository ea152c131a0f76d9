"""What actions return: data changes, triggers for other entities, and effects.

An action never *does* anything: it returns values. The runtime applies
:class:`Assign` to the new entity record, applies :class:`Send` to other entities in
the same atomic step, and hands every :class:`Effect` to subscribers only after the
whole step has committed. A refused event therefore emits nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

__all__ = ["Assign", "Effect", "Send"]


@attrs.frozen(kw_only=True)
class Effect:
    """A domain event emitted by a committed transition.

    ``cause`` is the id of the input event that caused it and ``time`` the moment it
    happened (for a timer: when it fired), so every ledger line traces back to a cause.
    ``ledger_kind`` names the ledger column a money effect books into (``None`` for
    effects that move no money).
    """

    ledger_kind: ClassVar[str | None] = None

    cause: str
    time: datetime

    @property
    def name(self) -> str:
        return type(self).__name__

    def ledger_subject(self) -> str | None:
        """The entity whose money moved, for ledger effects."""
        return None


# Assign and Send never leave the runtime: slotted, not frozen (cheaper to build).


@attrs.define(slots=True)
class Assign:
    """Set fields of the entity's data (XState's ``assign``)."""

    changes: Mapping[str, Any]


@attrs.define(slots=True)
class Send:
    """Fire ``trigger`` on ``subject`` within the same atomic step.

    With ``optional`` the send is dropped when the target has no transition that
    allows it (used for "tell the project an order closed; it may be done now").
    """

    subject: str
    trigger: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    optional: bool = False
