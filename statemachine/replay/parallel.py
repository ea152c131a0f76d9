"""Replay on several processes: entity families split across tasks, one report.

Why: a replay runs one Python thread, and a long log keeps one core busy for minutes.
Entities only meet within a *family*: an entity, the children its lifecycle's
:class:`~statemachine.engine.declaration.Parent` link gives it, and theirs (a project
and its orders; a promotion alone). Families never touch, so each task replays the
families of its group, and the report is merged in the order one process would have
made it: byte for byte the report of :func:`~.replayer.replay`.

The tasks are ordinary **Dask** tasks (issue 13) on a ``distributed.Client`` (a local
cluster, or a running scheduler's), in three passes; nothing is shuffled (no event
travels between workers):

1. **Scan** (:mod:`.scan`): one task per byte range of the files reads its lines once,
   partially (msgspec, no digest), and the caller combines the ranges with numpy: each
   line's place in the one log, the clock before and at it (a prefix maximum of the
   well-formed times), its group (the CRC-32 of its family root modulo the groups: a
   child's parent is the one its creating event names), and the facts that make
   families meet (below).
2. **Replay** (:func:`_work`): one task per group reads only its own lines (byte
   offsets from the scan) and feeds them to a :class:`~.replayer.Replayer`, the very
   code path of one process (the compiled fast path, the ledger booked from the effect
   sink). It is handed the global clock: before each of its lines the runtime's clock
   is set to the clock one process has there, and a timer of its families fires at the
   line where one process fires it (the first line whose clock reaches its due time),
   with the clock one process has then. The ledger comes back tagged by line position
   (an event's lines, and the timers it armed already due, belong to its line; a timer
   fired before a line carries its heap key: due time, subject, name).
3. **Merge** (:func:`_merge`): the ledger in line order, and within the timers fired
   before one line, by always taking the smallest next timer of any task, which is what
   one heap over all timers would have popped; rejections by line, entities by the line
   that created them.

Any sign that families are not independent makes the replay **fall back** to one
process, so the report never depends on the number of tasks:

* a lookup of an entity of another group (an undeclared send or read), seen by the
  runtime's fence;
* an id that lines of two groups use (one process would call the second a conflict,
  or a duplicate of the first, knowing both);
* a child whose creating events name two different parents, or a lifecycle whose
  creating event does not require its parent at all (such a child could change family);
* a line the scan's partial view read as an event that the full parse refuses (its
  time was counted in the clock).

The fall back is logged (a structlog warning, ``replay.one_process``, with the reason):
the report is right either way, only slower.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import time
import zlib  # noqa: F401 - the routing hash (scan.key's low bits); tests find two groups with it
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import msgspec
import structlog

from ..engine.declaration import Domain
from ..engine.errors import EventRejected
from ..envelope import loads, to_event
from .campaigns import CampaignSummary, ordered
from .files import replay_files
from .replayer import Replayer, book, campaigns_of, replay_path
from .report import LedgerLine, Rejection, Report

__all__ = ["Fallback", "replay_distributed", "replay_parallel"]

_log = structlog.get_logger("statemachine.replay")

#: A ledger segment: (line position, phase, due µs, subject, timer name, ledger lines).
#: Phase 0 is a timer fired before the line's event (keyed by the heap's order), 1 the
#: event itself with the timers it armed already due.
_Segment = tuple[int, int, int, str, str, int]
_BEFORE, _EVENT = 0, 1
_NEVER = 1 << 62  # µs: later than any instant


class _Shard(msgspec.Struct, array_like=True):
    """What one replay task sends back, as MessagePack (a tenth of pickle's time)."""

    ledger: list[LedgerLine]
    segments: list[_Segment]
    rejected: list[tuple[int, int, int, str | None, str]]  # (position, file, line, id, reason)
    states: list[tuple[int, str, str]]  # (position of the creation, subject, state)
    applied: int
    duplicates: int
    clock: datetime | None
    fenced: list[str]  # subjects a step looked for and did not find
    campaigns: list[CampaignSummary] = []  # Ads Manager: the text report's section


_decode = msgspec.msgpack.Decoder(_Shard).decode


class Fallback(Exception):
    """The families of this log are not independent: replay it in one process."""


_Fallback = Fallback


class _Lines:
    """A task's own lines, read again by offset (``os.pread``): a lazy digest's reader."""

    BLOCK = 8 << 20

    def __init__(self, names: Sequence[str], file: Any, offset: Any, length: Any) -> None:
        self.fds = [os.open(name, os.O_RDONLY) for name in names]
        self.file, self.offset, self.length = file, offset, length  # numpy: read rarely

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def __call__(self, token: int) -> bytes:
        """The line ``token`` (the task's own line number), stripped (a lazy digest's reader)."""
        return os.pread(self.fds[int(self.file[token])], int(self.length[token]),
                        int(self.offset[token])).strip()


def _rows(*columns: Any) -> Iterator[tuple[int, ...]]:
    """``(k, *values)`` of the task's k-th line, made into Python ints a few thousand at a
    time (all at once, seven lists of a task's lines would be a tenth of its memory)."""
    count = len(columns[0])
    for start in range(0, count, 4096):
        end = min(count, start + 4096)
        yield from zip(range(start, end), *(c[start:end].tolist() for c in columns), strict=True)


def _work(names: list[str], me: int, domain: Domain | None, as_of: datetime | None,
          spill_ids: bool, sort: bool, total: int, mine: tuple[Any, ...], clock: tuple[Any, Any],
          progress: Any) -> bytes:
    """Replay task ``me``: its own lines, against the global clock (see the module)."""
    from .scan import NO_TIME, from_us, to_us

    file, number, offset, length, position, before, at = mine
    changes, values = clock  # numpy arrays: no list of a million ints in each task
    reader = _Lines(names, file, offset, length)
    replayer = Replayer(domain, spill_ids=spill_ids)
    try:
        runtime = replayer.runtime
        fenced: set[str] = set()
        runtime.fence = fenced.add  # a miss is checked by the caller: another group's?
        replayer.lazy(reader)
        ledger, rejected, entities = replayer.ledger, replayer.rejected, runtime.entities
        sink = runtime.effect_sink
        segments: list[_Segment] = []
        instants: dict[int, datetime] = {}  # a change point's clock, as a datetime

        def instant(step: int) -> datetime:
            moment = instants.get(step)
            if moment is None:
                if len(instants) > 64:
                    instants.clear()
                moment = instants[step] = from_us(int(values[step]))
            return moment

        def catch_up(limit: int, due: datetime | None, moment: int) -> int:
            """Fire the timers due by the clock ``limit``, each at the line where one
            process fires it, tagged with its heap key; the next due time (µs) after.
            ``due`` is the next timer's due time (``moment`` in µs)."""
            while True:
                if due is None:
                    return _NEVER
                if moment > limit:
                    return moment
                step = int(values.searchsorted(moment))  # the first line whose clock reaches it
                runtime.clock = instant(step - 1) if step else None
                runtime.effect_sink = None  # booked below, outcome by outcome
                try:
                    fired = runtime.advance_to(instant(step))
                finally:
                    runtime.effect_sink = sink
                where = int(changes[step])
                for outcome in fired:
                    count = len(ledger)
                    book(outcome, ledger.append)
                    segments.append((where, _BEFORE, moment if outcome.due is due else to_us(outcome.due),  # type: ignore[arg-type]
                                     outcome.steps[0].subject, outcome.timer, len(ledger) - count))  # type: ignore[arg-type]
                due = runtime.next_due()
                if due is not None:
                    moment = to_us(due)

        where_rejected: list[tuple[int, int]] = []
        created: list[int] = []
        feed, next_due_of, fds, pread = replayer.feed_at, runtime.next_due, reader.fds, os.pread
        many = len(names) > 1
        clock_set: int | None = None  # what the runtime's clock is known to hold (µs)
        next_due, seen_due = _NEVER, None  # the next timer's due time (µs), and as a datetime
        block, block_fd, block_start, fd, current = b"", -1, 0, -1, -1
        rows = _rows(file, number, offset, length, position, before, at)
        for k, f, line_number, where, size, place, clock_before, clock_at in rows:
            if k & 4095 == 0:
                progress[2 * me], progress[2 * me + 1] = k, len(rejected)
            if next_due <= clock_at:
                next_due = catch_up(clock_at, seen_due, next_due)
                clock_set = seen_due = None
            if clock_at == clock_before and clock_before != clock_set:
                # The clock stays here (an event older than the clock, a duplicate, a
                # malformed line): the runtime must hold the clock one process holds,
                # to refuse what is out of order. A line that moves the clock moves the
                # runtime's to its own time, from any earlier one: nothing to set.
                clock_set = clock_before
                runtime.clock = None if clock_before == NO_TIME else from_us(clock_before)
            if f != current:
                current, fd = f, fds[f]
                if many:
                    replayer.file = names[f]
            if sort:  # the lines come in time order: each read where it is
                raw = pread(fd, size, where).strip()
            else:  # in file order: a block of the file read at once, sliced
                at_ = where - block_start
                if fd != block_fd or at_ < 0 or at_ + size > len(block):
                    block = pread(fd, max(_Lines.BLOCK, size), where)
                    block_fd, block_start, at_ = fd, where, 0
                raw = block[at_:at_ + size].strip()
            ledgered, refused, known = len(ledger), len(rejected), len(entities)
            feed(line_number, raw, k)
            if len(ledger) != ledgered:
                segments.append((place, _EVENT, 0, "", "", len(ledger) - ledgered))
            if len(rejected) != refused:
                try:
                    to_event(loads(raw), fingerprint=False)
                except EventRejected:
                    raise _Fallback(f"line {line_number} of {names[f]} reads as an event "
                                    "partially and as malformed in full") from None
                where_rejected.append((place, f))
            if len(entities) != known:
                created.append(place)
            if clock_at != clock_before:
                clock_set = clock_at  # the runtime's clock is now this line's time
            due = next_due_of()
            if due is not seen_due:  # (the same timer on top: no conversion)
                seen_due = due
                next_due = _NEVER if due is None else to_us(due)
        replayer.release_ids()
        last = int(values[-1]) if len(values) else NO_TIME
        if seen_due is not None:
            catch_up(last, seen_due, next_due)
        runtime.clock = None if last == NO_TIME else from_us(last)
        if as_of is not None:
            runtime.effect_sink = None
            for outcome in runtime.advance_to(as_of):
                count = len(ledger)
                book(outcome, ledger.append)
                segments.append((total, _BEFORE, to_us(outcome.due), outcome.steps[0].subject,  # type: ignore[arg-type]
                                 outcome.timer, len(ledger) - count))  # type: ignore[arg-type]
            runtime.effect_sink = sink
        progress[2 * me], progress[2 * me + 1] = len(position), len(rejected)
        states = [(c, s, e.state) for c, (s, e) in zip(created, entities.items(), strict=True)]
        shard = _Shard(ledger, segments,
                       [(w, f, r.line, r.id, r.error)
                        for (w, f), r in zip(where_rejected, rejected, strict=True)],
                       states, replayer.applied, replayer.duplicates, runtime.clock,
                       sorted(fenced), campaigns_of(runtime))
        return msgspec.msgpack.encode(shard)
    finally:
        replayer.close()
        reader.close()


def replay_parallel(path: str | Path | Sequence[str | Path], workers: int, *,
                    as_of: datetime | None = None, sort: bool = False, domain: Domain | None = None,
                    spill_ids: bool = False, progress: Callable[[Any], None] | None = None) -> Report:
    """Replay the log at ``path`` with ``workers`` processes (0: one per CPU); the same
    report as :func:`~.replayer.replay_path`, whatever ``workers`` is (see the module's doc).
    ``path`` may be several files, replayed as one log in this order (:mod:`.files`).

    The processes are a local Dask cluster (:func:`.cluster.local_client`: started on first
    use, kept for the next replay of this process, closed at its exit), and the replay is
    :func:`replay_distributed` on it: one parallel path, not two (issue 13). One worker,
    or a log that is not a regular file (a pipe can be read once), is replayed in one
    process, here. ``progress`` is called about four times a second while the tasks run.
    Needs the ``dask`` extra (:class:`~.cluster.MissingDask` otherwise).
    """
    if workers < 0:
        raise ValueError(f"workers must be 0 (one per CPU) or more, not {workers}")
    workers = workers or os.cpu_count() or 1
    paths = [os.fspath(path)] if isinstance(path, str | Path) else [os.fspath(p) for p in path]
    options: dict[str, Any] = {"as_of": as_of, "sort": sort, "domain": domain, "spill_ids": spill_ids,
                               "progress": progress}
    if workers <= 1 or not all(os.path.isfile(p) for p in paths):
        return _one_process(paths, options)  # (OSError there if unreadable)
    from .cluster import local_client

    return replay_distributed(paths, local_client(workers), **options)


def _one_process(paths: list[str], options: dict[str, Any]) -> Report:
    if len(paths) == 1:
        return replay_path(Path(paths[0]), **options)
    return replay_files(paths, **options)


def _fall_back(reason: str, one_process: Callable[[], Report]) -> Report:
    if structlog.is_configured():
        _log.warning("replay.one_process", reason=reason)
    return one_process()


def _range_bytes(paths: Sequence[str], workers: int) -> int:
    """A few ranges per worker, each 1 to 32 MB: balanced tasks, bounded memory."""
    total = sum(os.path.getsize(p) for p in paths)
    return max(1 << 20, min(32 << 20, total // (3 * workers) + 1))


def replay_distributed(paths: Sequence[str | Path], client: Any, *, groups: int | None = None,
                       as_of: datetime | None = None, sort: bool = False,
                       domain: Domain | None = None, spill_ids: bool = False,
                       progress: Callable[[Any], None] | None = None) -> Report:
    """:func:`replay_parallel` on a Dask cluster (``client``: a ``distributed.Client``):
    a scan task per byte range, then a replay task per group of families (``groups``,
    default: one per worker thread of the cluster, or as many more on every worker as
    keep a task to :data:`GROUP_LINES` lines), each reading only its own lines
    (the files must be readable at the same paths on every worker: a shared file
    system); the results are merged here. Nothing is shuffled: no event travels
    between workers.

    The same report as one process, or, for a log whose families meet, a fall back to
    one process (here), logged with the reason, as :func:`replay_parallel` does.
    ``progress`` is called with ``phase`` ``"scanning"`` then ``"replaying"``, ``lines``
    done and ``rejected``, about four times a second.
    """
    from .scan import combine, links_of, plan_ranges

    names = [os.fspath(p) for p in paths]
    options: dict[str, Any] = {"as_of": as_of, "sort": sort, "domain": domain, "spill_ids": spill_ids,
                               "progress": progress}

    def one_process() -> Report:
        return _one_process(names, options)

    if not all(os.path.isfile(p) for p in names):
        return one_process()  # a pipe is read once, here (OSError there if unreadable)
    for name in names:
        with open(name, "rb"):
            pass  # unreadable: OSError here, in the caller, as replay_path would raise it
    threads = sum(client.nthreads().values()) or 1
    if domain is None:
        from ..lifecycles import DOMAIN

        domain = DOMAIN
    try:
        links = links_of(domain)
    except Fallback as exc:
        return _fall_back(str(exc), one_process)
    timings = _TIMINGS
    tick = time.perf_counter()
    ranges = plan_ranges(names, _range_bytes(names, threads))
    futures = [client.submit(_scan_task, names[f], start, end, links, pure=False)
               for f, start, end in ranges]
    parts = _gather(client, futures, progress, "scanning")
    timings["scan"] = time.perf_counter() - tick
    tick = time.perf_counter()
    if groups is None:  # one per worker thread, more for a long log: bounded memory per task
        lines = sum(len(part.number) // 4 for part in parts)
        groups = threads * max(1, -(-lines // (GROUP_LINES * threads)))  # as many on every worker
    try:
        plan = combine([(f, part) for (f, _, _), part in zip(ranges, parts, strict=True)], groups,
                       sort, _reader(names))
    except Fallback as exc:
        return _fall_back(str(exc), one_process)
    del parts
    timings["combine"], timings["groups"] = time.perf_counter() - tick, groups
    tick = time.perf_counter()
    import numpy as np

    places = [address for address, count in sorted(client.nthreads().items()) for _ in range(count)]
    # hash=False: a key of its own for every scatter. Dask's default names scattered data by
    # its content, so two groups with the same arrays (two empty ones), or a replay
    # right after another of the same log, shared one key, and the release of one
    # cancelled the other's task ("lost dependencies").
    [clock] = client.scatter([(plan.changes, plan.clock_at[plan.changes])], broadcast=True,
                             hash=False)
    work = _work  # looked up now: a stand-in (a test's) travels by value
    token = os.urandom(8).hex()  # names this replay's progress in the workers
    futures = []
    for me in range(groups):
        own = np.nonzero(plan.group == me)[0]
        mine = (plan.file[own], plan.number[own], plan.offset[own], plan.length[own], own,
                plan.clock_before[own], plan.clock_at[own])
        [shipped] = client.scatter([mine], workers=[places[me % len(places)]], hash=False)  # balanced
        futures.append(client.submit(_task, work, token, names, me, domain, as_of, spill_ids, sort,
                                     plan.lines, shipped, clock, pure=False))
    answers = _wait(client, futures, progress, token)
    timings["replay"] = time.perf_counter() - tick
    tick = time.perf_counter()
    try:
        return _finish(answers, names, one_process, plan, groups)
    finally:
        timings["merge"] = time.perf_counter() - tick


#: The most lines a replay task gets by default: a task's memory grows with its
#: families' entities and ids (about 1 KB a line), and a worker's must stay far below
#: what a cluster's workers are given (the issue asks under 300 MB).
GROUP_LINES = 100_000

#: Where the last replay's time went, in seconds (scan, combine, replay, merge): read by
#: ``benchmarks/scale.py``.
_TIMINGS: dict[str, float] = {}


def _scan_task(path: str, start: int, end: int, links: Any) -> Any:
    from .scan import scan_range

    started = time.thread_time()
    try:
        return scan_range(path, start, end, links)
    finally:
        _CPU["scan"] = _CPU.get("scan", 0.0) + time.thread_time() - started


#: In a worker process: the CPU time its scan and replay tasks took, in seconds (for
#: ``benchmarks/scale.py``, which reads it with ``Client.run``: wall times on a loaded
#: machine tell the load, CPU times the work).
_CPU: dict[str, float] = {}


def _reader(names: Sequence[str]) -> Callable[[int, int, int], bytes]:
    def read_line(file: int, offset: int, length: int) -> bytes:
        with open(names[file], "rb") as stream:
            stream.seek(offset)
            return stream.read(length).strip()

    return read_line


def _gather(client: Any, futures: list[Any], progress: Callable[[Any], None] | None,
            phase: str) -> list[Any]:
    """The scan's results, in order; progress as ranges complete (lines scanned)."""
    from distributed import wait

    if progress is None:
        return list(client.gather(futures))
    waiting = set(range(len(futures)))
    lines = rejected = 0
    while waiting:
        with contextlib.suppress(TimeoutError):
            wait([futures[i] for i in waiting], timeout=0.25, return_when="FIRST_COMPLETED")
        for i in [i for i in waiting if futures[i].done()]:
            waiting.discard(i)
            part = futures[i].result()
            lines += len(part.number) // 4
            rejected += len(part.rejected)
        progress(_Snapshot(phase, lines, rejected))
    return list(client.gather(futures))


def _wait(client: Any, futures: list[Any], progress: Callable[[Any], None] | None,
          token: str) -> list[Any]:
    """Every replay task's answer, a shard decoded as soon as it comes, or the bytes of a
    fall back or a failure (a fall back stops the others: their work is moot)."""
    from distributed import wait

    answers: dict[int, Any] = {}
    waiting = dict(enumerate(futures))
    seen: dict[int, tuple[int, int]] = {}
    try:
        while waiting:
            with contextlib.suppress(TimeoutError):  # (no answer yet: progress, then wait on)
                wait(list(waiting.values()), timeout=0.25, return_when="FIRST_COMPLETED")
            for me, future in list(waiting.items()):
                if not future.done():
                    continue
                del waiting[me]
                try:
                    answer = future.result()
                except Exception as exc:  # a lost worker (KilledWorker): reported as a failure
                    answer = _FAILED + f"{type(exc).__name__}: {exc}".encode()
                if answer[:1] == _DONE:  # decoded now, while the other tasks run
                    answers[me] = _decode(memoryview(answer)[1:])
                    continue
                answers[me] = answer
                if answer[:1] == _FALLBACK:
                    waiting.clear()
                    break
            if progress is not None and waiting:
                progress(_progress(client, token, seen))
    finally:
        client.cancel(futures)
    return [answers.get(me, _FAILED + b"stopped: another task fell back") for me in range(len(futures))]


def _finish(answers: list[Any], paths: list[str], one_process: Callable[[], Report],
            plan: Any, groups: int) -> Report:
    """The report from every task's answer (a shard, or bytes): merged, or replayed in one
    process when one of them fell back, or a ``RuntimeError`` with a failed task's
    traceback."""
    told = [a for a in answers if isinstance(a, bytes)]
    for answer in told:
        if answer[:1] == _FALLBACK:  # the others were stopped
            return _fall_back(answer[1:].decode(errors="replace"), one_process)
    for answer in told:
        if answer[:1] != _DONE:
            raise RuntimeError(f"a replay worker failed:\n{answer[1:].decode(errors='replace')}")
    shards = []
    while answers:  # each message is let go once decoded: the merge's peak holds none
        answer = answers.pop(0)
        shards.append(_decode(memoryview(answer)[1:]) if isinstance(answer, bytes) else answer)
    for me, shard in enumerate(shards):
        for subject in shard.fenced:
            if plan.group_of(subject, groups) != me:
                return _fall_back(f"a step looked up {subject}, of another family", one_process)
    return _merge(shards, paths, plan)


def _task(work: Callable[..., bytes], token: str, *args: Any) -> bytes:
    """A Dask task: the shard of one group of families, or why not, as bytes (a fall
    back or a bug is an answer, not an exception: Dask would retry or log it)."""
    started = time.thread_time()
    try:
        return _DONE + work(*args, _Counters(token))
    except _Fallback as exc:
        return _FALLBACK + str(exc).encode()
    except Exception:  # a bug: its traceback goes to the caller, which raises
        import traceback

        return _FAILED + traceback.format_exc().encode()
    finally:
        _CPU["replay"] = _CPU.get("replay", 0.0) + time.thread_time() - started
        for key in [k for k in _PROGRESS if k[0] == token]:
            del _PROGRESS[key]


#: In a worker process: (replay token, group) -> (lines done, rejected so far), written
#: by the running tasks, read by :func:`_progress_of` (``Client.run``, on the worker's
#: event loop, while the task runs in its thread).
_PROGRESS: dict[tuple[str, int], tuple[int, int]] = {}


class _Counters(dict[int, int]):
    """Where :func:`_work` writes its progress on a cluster: ``[2g]`` lines, ``[2g+1]``
    rejected (written in this order), published to :data:`_PROGRESS`."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def __setitem__(self, key: int, value: int) -> None:
        super().__setitem__(key, value)
        if key & 1:
            _PROGRESS[(self.token, key >> 1)] = (self[key - 1], value)


def _progress_of(token: str) -> list[tuple[int, int, int]]:
    return [(group, lines, rejected) for (t, group), (lines, rejected) in list(_PROGRESS.items())
            if t == token]


def _progress(client: Any, token: str, seen: dict[int, tuple[int, int]]) -> _Snapshot:
    """Lines done by every group so far (``seen``: each group's last counts, kept)."""
    try:
        for answer in client.run(_progress_of, token).values():
            for group, lines, rejected in answer:
                seen[group] = (lines, rejected)
    except Exception:  # a worker gone: the replay's own wait will tell; no figures now
        pass
    return _Snapshot("replaying", sum(lines for lines, _ in seen.values()),
                     sum(rejected for _, rejected in seen.values()))


_DONE, _FALLBACK, _FAILED = b"d", b"f", b"x"


class _Snapshot:
    """What a progress callback reads of a replay running on several processes."""

    def __init__(self, phase: str, lines: int, rejected: int) -> None:
        self.phase = phase
        self.lines = lines
        self.rejected = range(rejected)  # only its length is read


def _merge(shards: list[_Shard], paths: Sequence[str], plan: Any) -> Report:
    """One report from the tasks' shards and the scan's rejections, in the order one
    process makes it.

    Decoding makes a string object of every string; ``share`` makes the states one
    object each again, as in a one-process report. The ledger lines are the decoded
    ones: rebuilt, they would all exist twice at the peak.
    """
    strings: dict[str, str] = {}
    share = strings.setdefault
    states = sorted(s for shard in shards for s in shard.states)
    entities = {subject: share(state, state) for _, subject, state in states}
    del states
    ledger: list[LedgerLine] = []
    extend = ledger.extend
    cursors = [0] * len(shards)
    books = [shard.ledger for shard in shards]
    for segment, me in heapq.merge(*(zip(shard.segments, repeat(me)) for me, shard in enumerate(shards))):
        count = segment[5]
        if count:
            at = cursors[me]
            extend(books[me][at:at + count])
            cursors[me] = at + count
    many = len(paths) > 1  # a rejection names its file only then (issue 13)
    scanned = [(position, int(plan.file[position]), int(plan.number[position]), ident, reason)
               for position, ident, reason in plan.rejected]
    rejected = [Rejection(line, ident, reason, paths[source] if many else None)
                for _, source, line, ident, reason in
                sorted([*scanned, *(r for shard in shards for r in shard.rejected)])]
    clocks = {shard.clock for shard in shards}
    return Report(
        as_of=max((c for c in clocks if c is not None), default=None),
        lines=plan.lines,
        applied=sum(shard.applied for shard in shards),
        duplicates=sum(shard.duplicates for shard in shards),
        entities=entities,
        ledger=tuple(ledger),
        rejected=tuple(rejected),
        campaigns=ordered((c for shard in shards for c in shard.campaigns), entities),
    )
