"""Replay: rebuild every entity from an event log and account for the money.

Streaming: lines are read, applied and forgotten one at a time, so memory grows with
the live entities (and the remembered event ids), not with the log. With ``sort`` the
log is read whole first and stably ordered by time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from ..engine.applied import Digest, SpilledIds
from ..engine.declaration import Domain
from ..engine.errors import EventRejected
from ..engine.runtime import Outcome, Runtime
from ..envelope import MalformedEvent, loads, to_event
from .report import LedgerLine, Rejection, Report

if TYPE_CHECKING:
    from ..lifecycles.versions import Policies

__all__ = ["Replayer", "book", "read_lines", "replay", "replay_path", "sort_lines"]


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of every non-blank line; numbers count blank lines too."""
    for number, raw in enumerate(stream, start=1):
        line = raw.strip()
        if line:
            yield number, line


class _Released(dict[str, Digest]):
    """The applied ids after :meth:`Replayer.release_ids`: any use raises."""

    def _released(self, *args: object) -> NoReturn:
        raise ValueError("the replay is finished: its applied ids were released")

    get = __getitem__ = __setitem__ = __contains__ = setdefault = update = _released  # type: ignore[assignment]


class Replayer:
    """Feed lines one by one, then :meth:`finish` for the report.

    ``spill_ids`` keeps the applied event ids (needed to tell duplicates and conflicts)
    in a temporary file with bloom filters in front (:class:`SpilledIds`) instead of a
    dict: memory then grows with the live entities only, not with the log's length.
    :meth:`close` (or ``with``) releases that file.
    """

    def __init__(self, domain: Domain | None = None, *, spill_ids: bool = False) -> None:
        if domain is None:
            from ..lifecycles import DOMAIN

            domain = DOMAIN
        self._ids = SpilledIds() if spill_ids else None
        self.runtime = Runtime(domain, applied=self._ids)
        self.lines = 0
        self.applied = 0
        self.duplicates = 0
        self.ledger: list[LedgerLine] = []
        self.rejected: list[Rejection] = []
        self._unsubscribe: Callable[[], None] | None = self.runtime.subscribe(self._book)

    def close(self) -> None:
        """Release the spilled id index, if any, and stop booking; the report stays valid.

        The runtime's subscription to :meth:`_book` is a reference cycle (runtime ->
        replayer -> runtime): ended here, the whole runtime is freed as soon as the
        last reference goes, not at the cyclic collector's next full pass.
        """
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._ids is not None:
            self._ids.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _book(self, outcome: Outcome) -> None:
        book(outcome, self.ledger.append)

    def release_ids(self) -> None:
        """The log is over: forget the applied ids (the largest structure of a long
        replay), so the report is built in their memory. Feeding more lines after this
        raises: idempotency would be lost."""
        if self._ids is not None:
            self._ids.close()
        self.runtime.applied = _Released()

    def feed(self, number: int, raw: bytes) -> None:
        """Apply one non-blank line; a rejection is recorded, never raised."""
        self.lines += 1
        envelope = None
        try:
            envelope = loads(raw)
            outcome = self.runtime.apply(to_event(envelope))
        except EventRejected as exc:
            ident = envelope.get("id") if type(envelope) is dict else None
            self.rejected.append(Rejection(number, ident if isinstance(ident, str) else None,
                                           exc.reason))
            return
        if outcome.duplicate:
            self.duplicates += 1
        else:
            self.applied += 1

    def finish(self, as_of: datetime | None = None) -> Report:
        """Fire the timers due up to ``as_of`` (if later than the clock); the report."""
        if as_of is not None:
            self.runtime.advance_to(as_of)
        return Report(
            as_of=self.runtime.clock,
            lines=self.lines,
            applied=self.applied,
            duplicates=self.duplicates,
            entities={e.subject: e.state for e in self.runtime.entities.values()},
            ledger=tuple(self.ledger),
            rejected=tuple(self.rejected),
        )


def book(outcome: Outcome, append: Callable[[LedgerLine], object]) -> None:
    """The ledger lines of an outcome's money effects, in order (non-zero amounts only)."""
    for step in outcome.steps:
        for effect in step.effects:
            kind = effect.ledger_kind
            if kind is not None:
                amount = effect.amount  # type: ignore[attr-defined]
                if amount:
                    append(LedgerLine(effect.time, kind, effect.ledger_subject() or step.subject,
                                      amount, effect.currency, effect.cause))  # type: ignore[attr-defined]


def sort_lines(lines: Iterable[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Stable sort by event time; a line without a readable time keeps the time of the
    line before it, so it is reported where it stood."""
    keyed: list[tuple[datetime | None, int, bytes]] = []
    last: datetime | None = None
    moment: datetime | None
    for number, raw in lines:
        try:
            moment = to_event(loads(raw)).time
        except (MalformedEvent, EventRejected):
            moment = last
        last = moment
        keyed.append((moment, number, raw))
    floor = min((k[0] for k in keyed if k[0] is not None), default=None)
    keyed.sort(key=lambda k: (k[0] if k[0] is not None else floor, k[1]))
    return [(number, raw) for _, number, raw in keyed]


def replay(stream: BinaryIO, *, as_of: datetime | None = None, sort: bool = False,
           domain: Domain | None = None, spill_ids: bool = False,
           progress: Callable[[Replayer], None] | None = None,
           policies: Policies | None = None) -> Report:
    """Replay a JSON Lines log from a binary stream and return the report.

    ``spill_ids``: see :class:`Replayer`; the report is the same either way.
    ``policies``: the policy versions orders are priced by (``policy-versions.md``;
    default: the built-in version alone), for the project's own lifecycles.
    """
    domain = _priced(domain, policies)
    with Replayer(domain, spill_ids=spill_ids) as replayer:
        lines: Iterable[tuple[int, bytes]] = read_lines(stream)
        if sort:
            lines = sort_lines(lines)
        for number, raw in lines:
            replayer.feed(number, raw)
            if progress is not None and replayer.lines % 16384 == 0:
                progress(replayer)
        replayer.release_ids()  # no later line can repeat an id
        return replayer.finish(as_of)


def replay_path(path: str | Path, *, workers: int = 1, **options: object) -> Report:
    """Replay the log at ``path``; ``OSError`` when it cannot be read at all.

    ``workers`` other than 1 replays it on that many processes (0: one per CPU; see
    :mod:`.parallel`): the same report, sooner on a machine with cores to spare.
    ``policies`` as in :func:`replay`.
    """
    policies = options.pop("policies", None)
    if policies is not None:
        options["domain"] = _priced(options.get("domain"), policies)  # type: ignore[arg-type]
    if workers != 1:
        from .parallel import replay_parallel

        return replay_parallel(path, workers, **options)  # type: ignore[arg-type]
    with open(path, "rb") as stream:
        return replay(stream, **options)  # type: ignore[arg-type]


def _priced(domain: Domain | None, policies: Policies | None) -> Domain | None:
    """The domain a replay runs: the project's lifecycles priced by ``policies``."""
    if policies is None:
        return domain
    if domain is not None:
        raise ValueError("give either a domain or policies (the project's lifecycles priced by them)")
    from ..lifecycles import domain_for

    return domain_for(policies)
