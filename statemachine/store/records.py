"""What the store hands back: outbox items, recorded outcomes, changes to catch up on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ..engine.runtime import Entity
from ..replay.report import LedgerLine

__all__ = ["Changes", "HistoryStep", "LedgerPage", "LedgerPosition", "OutboxItem", "Recorded", "RecordedStep"]


#: Where a ledger line stands in the outbox: ``(seq, n)``, its event's sequence number
#: and the effect's index in that event's outcome. Lines are only ever appended, in
#: order of position.
LedgerPosition = tuple[int, int]


@attrs.frozen
class LedgerPage:
    """Ledger lines in commit order, after a position (see ``SQLiteStore.ledger_page``).

    ``last`` is where to go on from: the position of the last line, or the one asked
    from when the page is empty. Asking again from it later shows each line committed
    since exactly once, so a reader can follow a growing ledger. ``more`` tells whether
    lines were left after this page when it was read.
    """

    lines: tuple[LedgerLine, ...]
    last: LedgerPosition | None
    more: bool


@attrs.frozen
class OutboxItem:
    """One emitted effect waiting for (or past) delivery.

    ``effect_id`` is deterministic (``"<event id>#<n>"``, n counting the outcome's
    effects from 1; a timer's outcome uses its timer id) and is the idempotency key a
    receiver must use: delivery is at-least-once.
    """

    effect_id: str
    seq: int
    cause: str
    subject: str
    kind: str
    time: datetime
    body: Mapping[str, Any]
    delivered: bool = False


@attrs.frozen
class RecordedStep:
    subject: str
    lifecycle: str
    trigger: str
    source: str
    state: str
    version: int


@attrs.frozen
class Recorded:
    """An applied input event as the store keeps it: what a repeat of its id is told."""

    id: str
    seq: int
    type: str
    subject: str
    time: datetime
    steps: tuple[RecordedStep, ...]
    effects: tuple[OutboxItem, ...]

    @property
    def state(self) -> str | None:
        return self.steps[0].state if self.steps else None


@attrs.frozen
class HistoryStep:
    """One version of an entity and what made it: the input event ``cause`` (for a
    timer: the event that armed it, and ``timer`` names it), and ``via`` the entity
    whose step sent this one when it was a cascade."""

    version: int
    trigger: str
    source: str
    state: str
    cause: str
    time: datetime
    timer: str | None = None
    via: str | None = None


@attrs.frozen
class Changes:
    """Everything committed after ``since``: the latest record of each changed entity
    (in order of creation), the ids applied, the clock, and where that leaves us."""

    entities: tuple[Entity, ...]
    applied: Mapping[str, int]  # event id -> content digest (statemachine.envelope.digest)
    clock: datetime | None
    seq: int
    generation: int
