"""Replay: rebuild every entity from an event log and account for the money.

Streaming: lines are read, applied and forgotten one at a time, so memory grows with
the live entities (and the remembered event ids), not with the log. With ``sort`` the
log is read whole first and stably ordered by time.

A file replay digests content lazily: an event id repeats rarely, so for each applied id
the index keeps where its line is (a byte offset, or its place in a sorted log) rather
than a digest of its content, and the canonical digest of both lines is computed only
when an id comes again (duplicate or conflict, decided exactly as before). A line fed
by hand (:meth:`Replayer.feed`) and a service keep the eager digest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from ..engine.applied import Digest, SpilledIds
from ..engine.declaration import Domain
from ..engine.effects import Effect
from ..engine.errors import EventRejected
from ..engine.runtime import Event, Outcome, Runtime
from ..envelope import MalformedEvent, digest, loads, to_event, typed_event
from ..limits import LIMITS
from .campaigns import CampaignSummary, summarize
from .report import LedgerLine, Rejection, Report

if TYPE_CHECKING:
    from ..lifecycles.versions import Policies

__all__ = ["Replayer", "book", "read_lines", "replay", "replay_path", "sort_lines"]


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of every non-blank line; numbers count blank lines too.

    A line longer than the line limit is read no further than the limit (the rest is
    skipped, never held): its head is yielded, and the envelope refuses it as too long.
    """
    limit = LIMITS.line_bytes + 1
    for number, raw in enumerate(iter(partial(stream.readline, limit), b""), start=1):
        if len(raw) == limit and not raw.endswith(b"\n"):
            _skip_rest_of_line(stream)
        line = raw.strip()
        if line:
            yield number, line


def _skip_rest_of_line(stream: BinaryIO) -> None:
    """Read past the end of an over-long line in bounded chunks (issue 17: a 5 GB line
    must be one rejected line, not an exhausted memory)."""
    while True:
        chunk = stream.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


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

    def __init__(self, domain: Domain | None = None, *, spill_ids: bool = False,
                 interpret: bool = False) -> None:
        if domain is None:
            from ..lifecycles import DOMAIN

            domain = DOMAIN
        self._ids = SpilledIds() if spill_ids else None
        self.runtime = Runtime(domain, applied=self._ids, interpret=interpret)
        self.lines = 0
        self.applied = 0
        self.duplicates = 0
        self.ledger: list[LedgerLine] = []
        self.rejected: list[Rejection] = []
        # The ledger is booked from the committed effects directly: no outcome objects.
        self.runtime.effect_sink = self._book_effect
        #: Set by :meth:`lazy`: reads the line an applied id's token points at.
        self._line_at: Callable[[int], bytes] | None = None
        #: The line being fed (lazy replays), for :meth:`_same_content`.
        self._raw = b""
        #: The file the lines come from, named in each rejection, when a replay reads
        #: several (issue 13, :mod:`.files`); None for one log.
        self.file: str | None = None

    def close(self) -> None:
        """Release the spilled id index, if any, and stop booking; the report stays valid.

        The runtime's effect sink (:meth:`_book_effect`) is a reference cycle (runtime ->
        replayer -> runtime): ended here, the whole runtime is freed as soon as the
        last reference goes, not at the cyclic collector's next full pass.
        """
        self.runtime.effect_sink = None
        self.runtime.same_content = None
        self._line_at = None
        self._raw = b""
        if self._ids is not None:
            self._ids.close()

    def lazy(self, line_at: Callable[[int], bytes]) -> None:
        """Digest content only when an id repeats: :meth:`feed_at` then records each
        applied id with a token (where its line is) and ``line_at(token)`` gives that
        line back. Call before the first line; every line must then come through
        :meth:`feed_at`."""
        self._line_at = line_at
        self.runtime.same_content = self._same_content

    def _same_content(self, token: Digest, event: Event) -> bool:
        """Is this event the same JSON value as the applied line at ``token``? The
        canonical digests of both, computed now (only ever for a repeated id)."""
        assert self._line_at is not None
        return digest(loads(self._line_at(token))) == digest(loads(self._raw))  # type: ignore[arg-type]

    def _book_effect(self, effect: Effect, subject: str) -> None:
        kind = effect.ledger_kind
        if kind is not None:
            amount = effect.amount  # type: ignore[attr-defined]
            if amount:
                self.ledger.append(LedgerLine(effect.time, kind, effect.ledger_subject() or subject,
                                              amount, effect.currency, effect.cause))  # type: ignore[attr-defined]

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def release_ids(self) -> None:
        """The log is over: forget the applied ids (the largest structure of a long
        replay), so the report is built in their memory. Feeding more lines after this
        raises: idempotency would be lost."""
        if self._ids is not None:
            self._ids.close()
        self.runtime.applied = _Released()

    def feed(self, number: int, raw: bytes) -> None:
        """Apply one non-blank line; a rejection is recorded, never raised."""
        if self._line_at is not None:
            raise ValueError("this replayer digests lazily: feed it with feed_at")
        self.feed_at(number, raw, 0)

    def feed_at(self, number: int, raw: bytes, token: int) -> None:
        """:meth:`feed`, with the line's token for a lazy replayer (see :meth:`lazy`)."""
        self.lines += 1
        envelope: Any = None
        try:
            if self._line_at is None:
                envelope = loads(raw)
                event = to_event(envelope)
            else:
                # Read by _same_content during this feed only (a repeated id); replaced by
                # the next line's, so it never holds more than one line.
                self._raw = raw
                # The typed decode (no dict, no key check by a second encode), else the
                # general path for a line it cannot vouch for.
                event = typed_event(raw, token)  # type: ignore[assignment]
                if event is None:
                    envelope = loads(raw)
                    event = to_event(envelope, token=token)
                else:
                    envelope = event
            applied = self.runtime.feed(event)
        except EventRejected as exc:
            ident: Any
            if type(envelope) is Event:
                ident = envelope.id
            else:
                ident = envelope.get("id") if type(envelope) is dict else None
            self.rejected.append(Rejection(number, ident if isinstance(ident, str) else None,
                                           exc.reason, self.file))
            return
        if applied:
            self.applied += 1
        else:
            self.duplicates += 1

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
            campaigns=campaigns_of(self.runtime),
        )


def campaigns_of(runtime: Runtime) -> list[CampaignSummary]:
    """The Ads Manager section of the report (:mod:`.campaigns`)."""
    return summarize(runtime.entities, runtime.children,
                     lambda e: runtime.derive(e, runtime.entities.get))


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
            moment = to_event(loads(raw), fingerprint=False).time
        except (MalformedEvent, EventRejected):
            moment = last
        last = moment
        keyed.append((moment, number, raw))
    floor = min((k[0] for k in keyed if k[0] is not None), default=None)
    keyed.sort(key=lambda k: (k[0] if k[0] is not None else floor, k[1]))
    return [(number, raw) for _, number, raw in keyed]


def replay(stream: BinaryIO, *, as_of: datetime | None = None, sort: bool = False,
           domain: Domain | None = None, spill_ids: bool = False,
           progress: Callable[[Replayer], None] | None = None, interpret: bool = False,
           policies: Policies | None = None,
           subscriber: Callable[[Outcome], None] | None = None) -> Report:
    """Replay a JSON Lines log from a binary stream and return the report.

    ``spill_ids``: see :class:`Replayer`; the report is the same either way.
    ``interpret``: run the reference interpreter instead of the generated step functions
    (the same report, slower: for differential tests and debugging).
    ``policies``: the policy versions orders are priced by (``policy-versions.md``;
    default: the built-in version alone), for the project's own lifecycles.
    ``subscriber``: called with every committed outcome (``Runtime.subscribe``; the HTML
    report records paths so, issue 19). Without one no outcome object is built.
    """
    domain = _priced(domain, policies)
    with Replayer(domain, spill_ids=spill_ids, interpret=interpret) as replayer:
        if subscriber is not None:
            replayer.runtime.subscribe(subscriber)
        lines: Iterable[tuple[int, bytes, int, int]]
        if sort:
            ordered = sort_lines(read_lines(stream))
            replayer.lazy(lambda index: ordered[index][1])
            lines = ((number, raw, index, 0) for index, (number, raw) in enumerate(ordered))
        else:
            line_at = _line_reader(stream)
            if line_at is not None:
                replayer.lazy(line_at)
                lines = _lines_at(stream)
            else:
                lines = ((number, raw, 0, 0) for number, raw in read_lines(stream))
        feed = replayer.feed_at
        for number, raw, token, _ in lines:
            feed(number, raw, token)
            if progress is not None and replayer.lines % 16384 == 0:
                progress(replayer)
        replayer.release_ids()  # no later line can repeat an id
        return replayer.finish(as_of)


#: Bytes read at a time by :func:`_lines_at`.
_READ = 1 << 16


def split_lines(chunks: Iterable[bytes], start: int = 0) -> Iterator[tuple[int, bytes, int, int]]:
    """``(number, line, offset, length)`` of every non-blank line in ``chunks`` (a file
    read in pieces), numbered and stripped exactly as :func:`read_lines` does; ``offset``
    is where the line starts (``start`` + the bytes before it), ``length`` how many of its
    bytes are kept (the line limit at most).

    Splitting whole chunks in C is what makes it fast: iterating a file line by line cost
    a fifteenth of a replay. The bound is :func:`read_lines`' too: a line longer than the
    line limit yields its head (which the envelope refuses as too long) and the rest of
    it is read past, never held. One reader for the replay (:func:`_lines_at`) and the
    scan of a byte range (:mod:`.scan`), so that both number lines alike."""
    limit = LIMITS.line_bytes + 1
    number = 0
    tail = b""
    skipping = False  # inside an over-long line whose head was yielded
    for chunk in chunks:
        if skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                start += len(chunk)
                continue
            start += cut + 1
            chunk = chunk[cut + 1:]
            skipping = False
        parts = (tail + chunk if tail else chunk).split(b"\n")
        tail = parts.pop()  # the start of a line that goes on in the next chunk
        for raw in parts:
            number += 1
            if len(raw) < limit:
                line = raw.strip()
                if line:
                    yield number, line, start, len(raw)
            else:
                line = raw[:limit].strip()
                if line:
                    yield number, line, start, limit
            start += len(raw) + 1
        if len(tail) >= limit:
            number += 1
            head = tail[:limit].strip()
            if head:
                yield number, head, start, limit
            start += len(tail)
            tail = b""
            skipping = True
    if tail:
        line = tail.strip()  # (shorter than the limit: longer tails were cut above)
        if line:
            yield number + 1, line, start, len(tail)


def _lines_at(stream: BinaryIO) -> Iterator[tuple[int, bytes, int, int]]:
    """:func:`split_lines` of ``stream`` from where it stands, read 64 KiB at a time:
    :func:`read_lines` with each line's byte offset (and kept length)."""
    return split_lines(iter(partial(stream.read, _READ), b""), stream.tell())


def _line_reader(stream: BinaryIO) -> Callable[[int], bytes] | None:
    """``line_at(offset)``: the line that starts at ``offset`` in ``stream``, read without
    moving the stream's position (``os.pread`` on a file, else seek and seek back); None
    for a stream that cannot be read twice (a pipe): its replay digests eagerly."""
    try:
        if not stream.seekable():
            return None
        stream.tell()
    except (AttributeError, OSError, ValueError):
        return None
    try:
        fd = stream.fileno()
        os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        fd = -1

    def line_at(offset: int) -> bytes:
        if fd >= 0:
            chunks = []
            while True:
                chunk = os.pread(fd, 65536, offset)
                cut = chunk.find(b"\n")
                if cut >= 0 or not chunk:
                    chunks.append(chunk if cut < 0 else chunk[:cut])
                    return b"".join(chunks).strip()
                chunks.append(chunk)
                offset += len(chunk)
        here = stream.tell()
        try:
            stream.seek(offset)
            return stream.readline().strip()
        finally:
            stream.seek(here)

    return line_at


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
