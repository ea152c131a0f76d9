"""Pass 1 of the replay at scale (issue 13): a cheap scan of byte ranges settling the
global facts, so that each replay task reads and parses only its own lines.

Why: a replay task that parsed every line of every file (to keep the one clock and to
route every line) did the parse, about a third of a replay, once per task. The scan
parses each line once, in parallel, and only the few fields the global facts need:

* :func:`plan_ranges` cuts every file into byte ranges of a few MB to tens of MB, at
  line boundaries (the parent reads a few bytes around each cut, nothing more);
* :func:`scan_range` (one Dask task per range) reads its range and, for every non-blank
  line, settles its place (line number within the range, byte offset and length), its
  time (the clock's input: a well-formed event's time, else nothing), its subject and
  id (as 64-bit keys: routing and shared ids) and, for an event that creates a child,
  the parent it names. It decodes a typed partial view of the line with msgspec (a
  struct of five fields, the ``data`` field of the parent link only) and no digest.
  A line the partial view cannot read is parsed in full there
  (:func:`~statemachine.envelope.loads`, :func:`~statemachine.envelope.to_event`): a
  malformed line is rejected by the scan, with the envelope's own reason, and belongs
  to no family;
* :func:`combine` (in the caller, on numpy arrays: no Python loop per line) computes
  each line's place in the one log (file order, or the stable time order of ``--sort``),
  the clock before and at every line (a prefix maximum of the well-formed times), each
  line's family root and group, and refuses (:class:`Fallback`) what makes families meet:
  a child created under two parents, parents forming a loop, an id used by lines of two
  groups.

The partial view may be more lenient than the full parse (a repeated key, say): a line
it reads as well-formed is parsed in full by the task that owns it, and a task that
finds such a line malformed makes the whole replay fall back to one process (its time
was counted in the clock). More strict only costs a full parse here. Keys are CRC-32
(the low 32 bits: the group is the CRC-32 of the family root modulo the groups, as the
replay has always routed) and Adler-32 (the high bits); two strings sharing a key only
ever put two families in one group, or make a replay fall back: never a wrong report.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import attrs
import msgspec
import numpy as np

from ..engine.declaration import Domain
from ..engine.errors import EventRejected
from ..engine.runtime import Runtime
from ..envelope import _instant, loads, to_event
from ..limits import LIMITS
from .parallel import Fallback
from .replayer import split_lines

__all__ = ["Fallback", "Links", "Plan", "ScanPart", "combine", "from_us", "key", "links_of",
           "plan_ranges", "scan_range", "to_us"]

#: No time: a malformed line (it moves no clock) or no well-formed line yet.
NO_TIME = np.iinfo(np.int64).min
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
#: The target size of a range: a few per worker keeps the scan's tasks balanced, and
#: a range read whole stays far below a worker's memory.
RANGE_BYTES = 16 << 20
_READ = 1 << 20


def to_us(moment: datetime) -> int:
    """Microseconds since 1970 (UTC): an instant as an int64 the arrays can hold."""
    since = moment - EPOCH
    return (since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds


def from_us(value: int) -> datetime:
    """The instant :func:`to_us` made ``value`` of (aware, UTC: what events carry)."""
    return EPOCH + timedelta(0, 0, int(value))


def key(text: str) -> int:
    """A 64-bit key of a subject or an id: CRC-32 low, Adler-32 high (see the module)."""
    raw = text.encode("utf-8", "surrogatepass")
    return zlib.crc32(raw) | zlib.adler32(raw) << 32


@attrs.frozen
class Links:
    """The parent links of a domain: for each creating event type of a child kind, the
    parent's kind and the data field naming it (as :class:`_Families` routed before)."""

    creating: Mapping[str, tuple[str, str]]
    linked: frozenset[str]  # the kinds whose entities have a parent


def links_of(domain: Domain) -> Links:
    """The domain's parent links; :class:`Fallback` when a child could change family."""
    runtime = Runtime(domain)
    links: dict[str, tuple[str, str]] = {}  # child kind -> (parent kind, field)
    for lifecycle in domain.lifecycles:
        if lifecycle.parent is not None:
            link = (lifecycle.parent.kind, lifecycle.parent.field)
            if links.setdefault(lifecycle.kind, link) != link:
                raise Fallback(f"the variants of {lifecycle.kind} name different parents")
    inputs = runtime._inputs  # event type -> (kind, input, variants, creates?)
    creating = {kind_type: links[kind] for kind_type, (kind, _, _, creates) in inputs.items()
                if creates and kind in links}
    for kind_type, (kind, inp, _, _) in inputs.items():
        if kind_type in creating and not any(f.name == links[kind][1] and f.required
                                             for f in inp.fields):
            # A child created without naming its parent would change family later.
            raise Fallback(f"{kind_type} does not require its parent's {links[kind][1]}")
    return Links(creating, frozenset(links))


def plan_ranges(paths: Sequence[str], size: int = RANGE_BYTES) -> list[tuple[int, int, int]]:
    """``(file index, start, end)`` byte ranges covering every file, cut at line starts
    (a cut inside a line moves to the start of the next one); every file has at least
    one range, so that each file's line numbers start from its first range."""
    ranges: list[tuple[int, int, int]] = []
    for index, path in enumerate(paths):
        total = os.path.getsize(path)
        cuts = [0]
        with open(path, "rb") as stream:
            for tentative in range(size, total, size):
                if tentative <= cuts[-1]:
                    continue
                cut = _line_start(stream, tentative, total)
                if cuts[-1] < cut < total:
                    cuts.append(cut)
        cuts.append(total)
        ranges.extend((index, start, end) for start, end in pairwise(cuts))
    return ranges


def _line_start(stream: Any, at: int, total: int) -> int:
    """The first line start at or after ``at``: just past the first ``\\n`` from ``at - 1``."""
    stream.seek(at - 1)
    where = at - 1
    while chunk := stream.read(1 << 16):
        cut = chunk.find(b"\n")
        if cut >= 0:
            return where + cut + 1
        where += len(chunk)
    return total


class ScanPart(msgspec.Struct, array_like=True):
    """What the scan of one range returns: one entry per non-blank line, in file order."""

    number: bytes  # int32: line numbers, from 1 at the range's start (blank lines count)
    offset: bytes  # int64: where each line starts in its file
    length: bytes  # int32: its length (at most the line limit: what the envelope reads)
    time: bytes  # int64: µs since 1970 of a well-formed event; NO_TIME for a malformed line
    subject: bytes  # uint64: key of the subject (0: malformed)
    ident: bytes  # uint64: key of the id
    parent: bytes  # uint64: key of the parent a creating event names (0: none)
    newlines: int  # the line ends in the range: the next range's first number - 1
    rejected: list[tuple[int, str | None, str]]  # (entry, id, reason): malformed lines


_HEADS: dict[tuple[str, ...], Any] = {}


def _decoder(fields: tuple[str, ...]) -> Any:
    """A decoder of the envelope's fields a scan needs, ``data`` holding only ``fields``."""
    decoder = _HEADS.get(fields)
    if decoder is None:
        data = msgspec.defstruct("_Data", [(name, object, None) for name in fields])
        head = msgspec.defstruct("_Head", [("id", str), ("time", str), ("type", str), ("subject", str),
                                           ("data", data | None, None),  # type: ignore[operator]
                                           ("specversion", str, "1.0")])
        decoder = _HEADS[fields] = msgspec.json.Decoder(head).decode
    return decoder


def scan_range(path: str, start: int, end: int, links: Links) -> ScanPart:
    """Scan the lines that start in ``[start, end)`` of ``path`` (see the module)."""
    creating = links.creating
    decode = _decoder(tuple(sorted({field for _, field in creating.values()})))
    most_id, most_subject, most_line = LIMITS.id_chars, LIMITS.subject_chars, LIMITS.line_bytes
    numbers: list[int] = []
    offsets: list[int] = []
    lengths: list[int] = []
    times: list[int] = []
    subjects: list[int] = []
    idents: list[int] = []
    parents: list[int] = []
    rejected: list[tuple[int, str | None, str]] = []
    crc, adler = zlib.crc32, zlib.adler32
    with open(path, "rb") as stream:
        stream.seek(start)
        lines = _range_lines(stream, end - start)
        for number, line, offset, length in lines:
            numbers.append(number)
            offsets.append(start + offset)
            lengths.append(length)
            parent = 0
            try:
                head = decode(line)
                ident, when, kind, subject = head.id, head.time, head.type, head.subject
                if not (ident and kind and subject and len(line) <= most_line and len(ident) <= most_id
                        and len(kind) <= most_id and len(subject) <= most_subject
                        and ident.isprintable() and kind.isprintable() and subject.isprintable()
                        and head.specversion == "1.0"):
                    raise ValueError
                moment = _instant(when)
                link = creating.get(kind)
                if link is not None and head.data is not None:
                    named = getattr(head.data, link[1])
                    if type(named) is str:
                        parent = key(f"{link[0]}/{named}")
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
                envelope = None
                try:  # the partial view could not read it: the envelope's own verdict
                    envelope = loads(line)
                    event = to_event(envelope, fingerprint=False)
                except EventRejected as exc:
                    given = envelope.get("id") if type(envelope) is dict else None
                    rejected.append((len(times), given if isinstance(given, str) else None, exc.reason))
                    times.append(NO_TIME)
                    subjects.append(0)
                    idents.append(0)
                    parents.append(0)
                    continue
                ident, moment, kind, subject = event.id, event.time, event.type, event.subject
                link = creating.get(kind)
                named = event.data.get(link[1]) if link is not None else None
                if link is not None and type(named) is str:
                    parent = key(f"{link[0]}/{named}")
            times.append((moment - EPOCH) // _US)
            raw = subject.encode("utf-8", "surrogatepass")
            subjects.append(crc(raw) | adler(raw) << 32)
            raw = ident.encode("utf-8", "surrogatepass")
            idents.append(crc(raw) | adler(raw) << 32)
            parents.append(parent)
        newlines = lines.newlines  # type: ignore[attr-defined]
    return ScanPart(np.array(numbers, np.int32).tobytes(), np.array(offsets, np.int64).tobytes(),
                    np.array(lengths, np.int32).tobytes(), np.array(times, np.int64).tobytes(),
                    np.array(subjects, np.uint64).tobytes(), np.array(idents, np.uint64).tobytes(),
                    np.array(parents, np.uint64).tobytes(), newlines, rejected)


class _range_lines:  # (named as the generator it wraps)
    """``(number, line, offset, length)`` of every non-blank line in the next ``size``
    bytes of ``stream``, as :func:`~.replayer.read_lines` splits and numbers them (at
    ``\\n`` only; a line longer than the limit is cut to the limit, which the envelope
    refuses, and the rest of it is read past in bounded chunks); ``newlines`` counts
    the line ends read. ``offset`` is from the range's start; ``line`` is
    ``chunk[offset:offset + length].strip()``."""

    def __init__(self, stream: Any, size: int) -> None:
        self.newlines = 0
        self._lines = split_lines(self._chunks(stream, size))

    def __iter__(self) -> Iterator[tuple[int, bytes, int, int]]:
        return self._lines

    def _chunks(self, stream: Any, size: int) -> Iterator[bytes]:
        left = size
        while left > 0 and (chunk := stream.read(min(_READ, left))):
            left -= len(chunk)
            self.newlines += chunk.count(b"\n")
            yield chunk


@attrs.frozen
class Plan:
    """The global facts of a scanned log: every line in the one log's order (``--sort``'s
    time order when sorting), its file, number, place in its file, the clock before
    and at it, and its group (-1: a malformed line, rejected by the scan)."""

    file: np.ndarray
    number: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    group: np.ndarray
    clock_before: np.ndarray  # int64 µs; NO_TIME: no well-formed line yet
    clock_at: np.ndarray
    changes: np.ndarray  # the positions where the clock moves on
    clock: np.ndarray  # the clock from each of these positions
    rejected: list[tuple[int, str | None, str]]  # (position, id, reason), by position
    child: np.ndarray  # sorted keys of the children ...
    parent: np.ndarray  # ... and of the parents they were created under

    @property
    def lines(self) -> int:
        return len(self.file)

    def group_of(self, subject: str, groups: int) -> int:
        """The group a subject's family goes to (for a subject a task looked up)."""
        root = key(subject)
        for _ in range(64):
            at = int(np.searchsorted(self.child, np.uint64(root)))
            if at >= len(self.child) or int(self.child[at]) != root:
                break
            root = int(self.parent[at])
        return (root & 0xFFFFFFFF) % groups


def combine(parts: Sequence[tuple[int, ScanPart]], groups: int, sort: bool,
            read_line: Any) -> Plan:
    """The global facts from the scanned ranges (``(file index, part)`` in file and
    offset order); :class:`Fallback` with the reason for a log whose families meet.
    ``read_line(file, offset, length)`` reads a line again, only to name an id or a
    subject in a reason."""
    files: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    rejected: list[tuple[int, str | None, str]] = []
    count = 0
    previous, base = -1, 0
    for index, part in parts:
        if index != previous:
            previous, base = index, 0
        entries = np.frombuffer(part.number, np.int32)
        files.append(np.full(len(entries), index, np.int32))
        numbers.append(entries.astype(np.int64) + base)
        rejected.extend((count + entry, ident, reason) for entry, ident, reason in part.rejected)
        count += len(entries)
        base += part.newlines

    def joined(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([np.frombuffer(getattr(p, name), dtype) for _, p in parts]
                              or [np.empty(0, dtype)])

    file = np.concatenate(files or [np.empty(0, np.int32)])
    number = np.concatenate(numbers or [np.empty(0, np.int64)])
    offset, length = joined("offset", np.int64), joined("length", np.int32)
    time, subject = joined("time", np.int64), joined("subject", np.uint64)
    ident, parent = joined("ident", np.uint64), joined("parent", np.uint64)
    if sort and count:
        # sort_lines: a line without a time keeps the time of the line before it (the
        # first ones, the earliest time); ties keep their place (a stable sort).
        timed = time != NO_TIME
        last = np.maximum.accumulate(np.where(timed, np.arange(count), -1))
        keys = np.where(last >= 0, time[np.maximum(last, 0)], time[timed].min() if timed.any() else 0)
        order = np.argsort(keys, kind="stable")
        where = np.empty(count, np.int64)
        where[order] = np.arange(count)
        rejected = [(int(where[entry]), ident_, reason) for entry, ident_, reason in rejected]
        file, number, offset, length = file[order], number[order], offset[order], length[order]
        time, subject, ident, parent = time[order], subject[order], ident[order], parent[order]
    rejected.sort(key=lambda r: r[0])
    clock_at = np.maximum.accumulate(time) if count else time
    clock_before = np.concatenate([[NO_TIME], clock_at[:-1]]) if count else clock_at
    changes = np.nonzero(clock_at != clock_before)[0]
    child, parent_of = _parents(subject, parent, file, offset, length, read_line)
    group = _groups(subject, child, parent_of, groups, file, offset, length, read_line)
    group[time == NO_TIME] = -1
    _shared_ids(ident, group, file, offset, length, read_line)
    return Plan(file, number, offset, length, group, clock_before, clock_at, changes,
                clock_at[changes], rejected, child, parent_of)


def _parents(subject: np.ndarray, parent: np.ndarray, file: np.ndarray, offset: np.ndarray,
             length: np.ndarray, read_line: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted child keys and their parents; :class:`Fallback` for a child created under two."""
    linked = np.nonzero(parent)[0]
    children, parents = subject[linked], parent[linked]
    order = np.lexsort((parents, children))
    children, parents = children[order], parents[order]
    fresh = np.ones(len(children), bool)  # the first of each (child, parent) pair
    fresh[1:] = (children[1:] != children[:-1]) | (parents[1:] != parents[:-1])
    child, parent_of = children[fresh], parents[fresh]
    twice = np.nonzero(child[1:] == child[:-1])[0]
    if len(twice):
        line = linked[np.nonzero(subject[linked] == child[twice[0]])[0][0]]
        named = _field(read_line(int(file[line]), int(offset[line]), int(length[line])), "subject")
        raise Fallback(f"{named} is created under two parents")
    return child, parent_of


def _groups(subject: np.ndarray, child: np.ndarray, parent_of: np.ndarray, groups: int,
            file: np.ndarray, offset: np.ndarray, length: np.ndarray, read_line: Any) -> np.ndarray:
    """Each line's group: the CRC-32 of its family root, modulo the groups."""
    root = subject.copy()
    for _ in range(64):
        if not len(child):
            break
        at = np.minimum(np.searchsorted(child, root), len(child) - 1)
        up = child[at] == root
        if not up.any():
            break
        root[up] = parent_of[at[up]]
    else:
        line = int(np.nonzero(up)[0][0])
        named = _field(read_line(int(file[line]), int(offset[line]), int(length[line])), "subject")
        raise Fallback(f"{named}: its parents form a loop")
    return ((root & np.uint64(0xFFFFFFFF)) % np.uint64(groups)).astype(np.int32)


def _shared_ids(ident: np.ndarray, group: np.ndarray, file: np.ndarray, offset: np.ndarray,
                length: np.ndarray, read_line: Any) -> None:
    """:class:`Fallback` when lines of two groups use one id: one process would call the
    later one a conflict (or a duplicate) knowing the earlier, two tasks would not. The
    keys only point at candidates: the ids are read again and compared."""
    lines = np.nonzero(group >= 0)[0]
    # By id, in log order within an id: lines of two groups under one id always have
    # two neighbours of different groups.
    order = lines[np.argsort(ident[lines], kind="stable")]
    keys, owners = ident[order], group[order]
    suspect = np.nonzero((keys[1:] == keys[:-1]) & (owners[1:] != owners[:-1]))[0]
    if not len(suspect):
        return
    found: list[tuple[int, str]] = []
    for at in suspect.tolist():
        same_key = order[np.nonzero(keys == keys[at])[0]]
        seen: dict[str, int] = {}
        for line in sorted(same_key.tolist()):
            name = _field(read_line(int(file[line]), int(offset[line]), int(length[line])), "id")
            first = seen.setdefault(name, int(group[line]))
            if first != group[line]:
                found.append((line, name))
                break
    if found:
        raise Fallback(f"id {min(found)[1]!r} is used by lines of two families")


def _field(raw: bytes, name: str) -> str:
    value = loads(raw).get(name)
    return value if isinstance(value, str) else "?"
