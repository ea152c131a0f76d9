"""Replay on several processes: entity families split across workers, one report.

Why: a replay runs one Python thread, and a long log keeps one core busy for minutes.
Entities only meet within a *family*: an entity, the children its lifecycle's
:class:`~statemachine.engine.declaration.Parent` link gives it, and theirs (a project
and its orders; a promotion alone). Families never touch, so each worker replays the
families it owns, and the report is merged in the order one process would have made
it: byte for byte the report of :func:`~.replayer.replay`.

The workers are **Dask** tasks (issue 13): :func:`replay_distributed` submits one ordinary
task per group of families to a ``distributed.Client`` (a local cluster, or a running
scheduler's), each returns its shard as MessagePack, and the shards are merged here. No
event travels between workers (no shuffle): each task reads the files itself. The
library's ``workers=N`` (:func:`replay_parallel`) is the same path on a local cluster of
N processes; the home-made process pool it replaced is gone.

How each of ``n`` workers reads the log (every worker reads every line, of every file,
as one log: :func:`~.files.iter_lines`):

* The **clock** is global: every worker advances it for every well-formed event,
  its own or not, so its timers fire exactly where one process would fire them. For a
  line it does not own, "advance to the event's time if it is later" is exactly what
  :meth:`Runtime.apply <statemachine.engine.runtime.Runtime.apply>` does to the clock:
  a duplicate has its original's time, which the clock has already reached, and an
  event older than the clock moves nothing either way.
* **Routing**: a line belongs to the worker of its subject's family root. A child's
  parent is the one its first creating event names (``order.agreed`` ->
  ``data.project``), known to every worker alike.
* A line it owns goes through ``Runtime.apply`` as in one process: dedupe, guards,
  actions, timers. Its outcomes are tagged with where one process would have made
  them: (line, before / the event / after, and for a timer its heap key).
* The parent merges the tagged outcomes: in line order, and within the timers fired
  before one line, by always taking the smallest next timer of any worker, which is
  what one heap over all timers would have popped.

Any sign that families are not independent makes the replay **fall back** to one
process, so the report never depends on the number of workers:

* a lookup of an entity of another family (an undeclared send or read);
* an id that lines of two families use (one process would call the second a conflict,
  or a duplicate of the first, knowing both);
* a child whose creating events name two different parents, or a lifecycle whose
  creating event does not require its parent at all (such a child could change family).

The fall back is logged (a structlog warning, ``replay.one_process``, with the reason):
the report is right either way, only slower.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from ..engine.applied import SpilledIds
from ..engine.declaration import INITIAL, Domain
from ..engine.errors import EventRejected
from ..engine.runtime import Event, Outcome, Runtime
from ..envelope import digest, loads, to_event
from .campaigns import CampaignSummary, ordered
from .files import iter_lines, replay_files
from .replayer import book, campaigns_of, replay_path
from .report import LedgerLine, Rejection, Report

__all__ = ["replay_parallel"]

_log = structlog.get_logger("statemachine.replay")

#: Merge keys: (line index, phase, due, subject, timer name). Phase 0 holds the timers
#: fired before the line's event, 1 the event itself, 2 timers it armed already due.
_Key = tuple[int, int, datetime | None, str, str]
_BEFORE, _EVENT, _AFTER = 0, 1, 2


class _Fallback(Exception):
    """The families of this log are not independent: replay it in one process."""


class _Shard(msgspec.Struct, array_like=True):
    """What one worker sends back, as MessagePack (a tenth of pickle's time)."""

    outcomes: list[tuple[_Key, list[LedgerLine]]]
    rejected: list[tuple[int, int, int, str | None, str]]  # (line index, file, line, id, reason)
    states: list[tuple[int, str, str]]  # (line index of the creation, subject, state)
    lines: int
    applied: int
    duplicates: int
    clock: datetime | None
    campaigns: list[CampaignSummary] = []  # Ads Manager: the text report's section


_decode = msgspec.msgpack.Decoder(_Shard).decode


class _Families:
    """Which worker owns a subject: the hash of its family root, the same in every worker."""

    def __init__(self, runtime: Runtime, workers: int) -> None:
        self.workers = workers
        links: dict[str, tuple[str, str]] = {}  # child kind -> (parent kind, field)
        for lifecycle in runtime.domain.lifecycles:
            if lifecycle.parent is not None:
                link = (lifecycle.parent.kind, lifecycle.parent.field)
                if links.setdefault(lifecycle.kind, link) != link:
                    raise _Fallback(f"the variants of {lifecycle.kind} name different parents")
        # creating event type -> (parent kind, field), for the kinds that have a parent
        self.creating = {kind_type: links[kind] for kind_type, (kind, _, _, creates)
                         in runtime._inputs.items() if creates and kind in links}
        for kind_type, (kind, inp, _, _) in runtime._inputs.items():
            if kind_type in self.creating and not any(
                    f.name == links[kind][1] and f.required for f in inp.fields):
                # A child created without naming its parent would change family later.
                raise _Fallback(f"{kind_type} does not require its parent's {links[kind][1]}")
        self.linked = frozenset(links)  # the kinds whose entities have a parent
        self.parent: dict[str, str] = {}  # child subject -> parent subject
        self._roots: dict[str, int] = {}  # family root -> its worker (a few per family)

    def route(self, event: Event) -> int:
        link = self.creating.get(event.type)
        if link is not None:
            ident = event.data.get(link[1])
            if isinstance(ident, str):
                parent = f"{link[0]}/{ident}"
                if self.parent.setdefault(event.subject, parent) != parent:
                    raise _Fallback(f"{event.subject} is created under two parents")
        return self.owner(event.subject)

    def owner(self, subject: str) -> int:
        root = subject
        if subject[:subject.find("/")] in self.linked:  # else a root: no lookup at all
            parent = self.parent
            for _ in range(64):  # a family is a few levels deep; a loop in the data is not
                up = parent.get(root)
                if up is None:
                    break
                root = up
            else:
                raise _Fallback(f"{subject}: its parents form a loop")
        worker = self._roots.get(root)
        if worker is None:
            worker = zlib.crc32(root.encode("utf-8", "surrogatepass")) % self.workers
            if len(self._roots) < 65536:  # bounded: a cache, not a second index
                self._roots[root] = worker
        return worker


class _Tagger:
    """Subscribed to the worker's runtime: tags every outcome with its merge key."""

    def __init__(self) -> None:
        self.line = 0
        self.phase = _BEFORE
        self.outcomes: list[tuple[_Key, list[LedgerLine]]] = []
        self.created: dict[str, int] = {}

    def __call__(self, outcome: Outcome) -> None:
        if outcome.timer is None:
            self.phase = _EVENT
            key: _Key = (self.line, _EVENT, None, "", "")
        else:
            if self.phase == _EVENT:
                self.phase = _AFTER
            key = (self.line, self.phase, outcome.due, outcome.steps[0].subject, outcome.timer)
        for step in outcome.steps:
            if step.source == INITIAL:
                self.created[step.subject] = self.line
        money: list[LedgerLine] = []
        book(outcome, money.append)
        # Every timer's outcome is kept, money or not: the merge takes the smallest next
        # timer of any worker, and a worker's next one may be one armed by the last.
        if money or outcome.timer is not None:
            self.outcomes.append((key, money))


def _work(paths: list[str], me: int, workers: int, domain: Domain | None, sort: bool,
          as_of: datetime | None, spill_ids: bool, progress: Any) -> bytes:
    if domain is None:
        from ..lifecycles import DOMAIN

        domain = DOMAIN
    ids = SpilledIds() if spill_ids else None
    runtime = Runtime(domain, applied=ids)
    families = _Families(runtime, workers)

    def fence(subject: str) -> None:  # a missing entity: absent, or another worker's?
        if families.owner(subject) != me:
            raise _Fallback(f"a step looked up {subject}, of another family")

    runtime.fence = fence
    tagger = _Tagger()
    runtime.subscribe(tagger)
    foreign: set[int] = set()  # hash() of the ids of other families' lines
    rejected: list[tuple[int, int, int, str | None, str]] = []
    applied = duplicates = 0
    lines: Iterable[tuple[int, int, bytes]] = iter_lines(paths, sort=sort)
    index = -1
    for index, (source, number, raw) in enumerate(lines):
        if index & 4095 == 0:
            progress[2 * me], progress[2 * me + 1] = index, len(rejected)
        tagger.line, tagger.phase = index, _BEFORE
        envelope = None
        try:
            envelope = loads(raw)
            event = to_event(envelope, fingerprint=False)
        except EventRejected as exc:  # malformed: no subject, no clock; worker 0 tells
            if me == 0:
                ident = envelope.get("id") if type(envelope) is dict else None
                rejected.append((index, source, number,
                                 ident if isinstance(ident, str) else None, exc.reason))
            continue
        if families.route(event) != me:
            foreign.add(hash(event.id))
            clock = runtime.clock
            if clock is None or event.time > clock:
                runtime.advance_to(event.time)
            continue
        if hash(event.id) in foreign:
            raise _Fallback(f"id {event.id!r} is used by lines of two families")
        event = Event(event.id, event.time, event.type, event.subject, event.data,
                      digest(envelope))
        try:
            outcome = runtime.apply(event)
        except EventRejected as exc:
            rejected.append((index, source, number, event.id, exc.reason))
            continue
        if outcome.duplicate:
            duplicates += 1
        else:
            applied += 1
    if ids is not None:
        ids.close()
    runtime.applied = {}
    tagger.line, tagger.phase = index + 1, _BEFORE
    if as_of is not None:
        runtime.advance_to(as_of)
    created = tagger.created
    states = [(created[s], s, e.state) for s, e in runtime.entities.items()]
    shard = _Shard(tagger.outcomes, rejected, states, index + 1, applied, duplicates, runtime.clock,
                   campaigns_of(runtime))
    return msgspec.msgpack.encode(shard)


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

    return replay_distributed(paths, local_client(workers), groups=workers, **options)


def _one_process(paths: list[str], options: dict[str, Any]) -> Report:
    if len(paths) == 1:
        return replay_path(Path(paths[0]), **options)
    return replay_files(paths, **options)


def _finish(answers: list[bytes], paths: list[str], one_process: Callable[[], Report]) -> Report:
    """The report from every worker's answer: merged, or replayed in one process when one
    of them fell back, or a ``RuntimeError`` with a failed worker's traceback."""
    for answer in answers:
        if answer[:1] == _FALLBACK:  # the others were stopped
            if structlog.is_configured():
                _log.warning("replay.one_process", reason=answer[1:].decode(errors="replace"))
            return one_process()
    for answer in answers:
        if answer[:1] != _DONE:
            raise RuntimeError(f"a replay worker failed:\n{answer[1:].decode(errors='replace')}")
    shards = []
    while answers:  # each message is let go once decoded: the merge's peak holds none
        shards.append(_decode(memoryview(answers.pop(0))[1:]))
    return _merge(shards, paths)


def replay_distributed(paths: Sequence[str | Path], client: Any, *, groups: int | None = None,
                       as_of: datetime | None = None, sort: bool = False,
                       domain: Domain | None = None, spill_ids: bool = False,
                       progress: Callable[[Any], None] | None = None) -> Report:
    """:func:`replay_parallel` on a Dask cluster (``client``: a ``distributed.Client``):
    one task per group of families (``groups``, default: one per worker thread of the
    cluster), each an ordinary task that reads the files itself (they must be readable
    at the same paths on every worker: a shared file system) and returns its shard; the
    shards are merged here. Nothing is shuffled: no event travels between workers.

    The same report as one process, or, for a log whose families meet, a fall back to
    one process (here), logged with the reason, as :func:`replay_parallel` does.
    """
    from distributed import wait

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
    if groups is None:
        groups = sum(client.nthreads().values()) or 1
    work = _work  # looked up now: a stand-in (a test's) travels by value
    token = os.urandom(8).hex()  # names this replay's progress in the workers
    futures = [client.submit(_task, work, token, names, me, groups, domain, sort, as_of, spill_ids,
                             pure=False) for me in range(groups)]
    answers: dict[int, bytes] = {}
    waiting = dict(enumerate(futures))
    try:
        while waiting:
            with contextlib.suppress(TimeoutError):  # (no answer yet: progress, then wait on)
                wait(list(waiting.values()), timeout=0.25, return_when="FIRST_COMPLETED")
            for me, future in list(waiting.items()):
                if not future.done():
                    continue
                del waiting[me]
                try:
                    answers[me] = future.result()
                except Exception as exc:  # a lost worker (KilledWorker): reported as a failure
                    answers[me] = _FAILED + f"{type(exc).__name__}: {exc}".encode()
                if answers[me][:1] == _FALLBACK:  # the others' work is moot
                    waiting.clear()
                    break
            if progress is not None and waiting:
                progress(_progress(client, token, waiting))
    finally:
        client.cancel(futures)
    listed = [answers.get(me, _FAILED + b"stopped: another worker fell back") for me in range(groups)]
    return _finish(listed, names, one_process)


def _task(work: Callable[..., bytes], token: str, *args: Any) -> bytes:
    """A Dask task: the shard of one group of families, or why not, as bytes (a fall
    back or a bug is an answer, not an exception: Dask would retry or log it)."""
    try:
        return _DONE + work(*args, _Counters(token))
    except _Fallback as exc:
        return _FALLBACK + str(exc).encode()
    except Exception:  # a bug: its traceback goes to the caller, which raises
        import traceback

        return _FAILED + traceback.format_exc().encode()
    finally:
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


def _progress(client: Any, token: str, waiting: dict[int, Any]) -> _Snapshot:
    """Lines done by the slowest running group, rejected so far by the running ones."""
    try:
        seen = {group: (lines, rejected) for answer in client.run(_progress_of, token).values()
                for group, lines, rejected in answer}
    except Exception:  # a worker gone: the replay's own wait will tell; no figures now
        seen = {}
    running = [seen.get(group, (0, 0)) for group in waiting]
    return _Snapshot(min(lines for lines, _ in running), sum(rejected for _, rejected in running))


_DONE, _FALLBACK, _FAILED = b"d", b"f", b"x"


class _Snapshot:
    """What a progress callback reads of a replay running on several processes."""

    def __init__(self, lines: int, rejected: int) -> None:
        self.lines = lines
        self.rejected = range(rejected)  # only its length is read


def _merge(shards: list[_Shard], paths: Sequence[str] = ("",)) -> Report:
    """One report from the workers' shards, in the order one process makes it.

    Decoding makes a string object of every string; ``share`` makes the states one
    object each again, as in a one-process report. The ledger lines are the decoded
    ones: rebuilt, they would all exist twice at the peak.
    """
    strings: dict[str, str] = {}
    share = strings.setdefault
    states = sorted(s for shard in shards for s in shard.states)
    entities = {subject: share(state, state) for _, subject, state in states}
    del states
    ledger = [line for _, lines in heapq.merge(*(shard.outcomes for shard in shards), key=_order)
              for line in lines]
    many = len(paths) > 1  # a rejection names its file only then (issue 13)
    rejected = [Rejection(line, ident, reason, paths[source] if many else None)
                for _, source, line, ident, reason in sorted(r for shard in shards for r in shard.rejected)]
    clocks = {shard.clock for shard in shards}
    return Report(
        as_of=max((c for c in clocks if c is not None), default=None),
        lines=shards[0].lines,
        applied=sum(shard.applied for shard in shards),
        duplicates=sum(shard.duplicates for shard in shards),
        entities=entities,
        ledger=tuple(ledger),
        rejected=tuple(rejected),
        campaigns=ordered((c for shard in shards for c in shard.campaigns), entities),
    )


def _order(item: tuple[_Key, list[LedgerLine]]) -> tuple[Any, ...]:
    line, phase, due, subject, name = item[0]
    return (line, phase) if due is None else (line, phase, due, subject, name)

