"""Many log files replayed as one log (issue 13).

A platform writes its events into daily or hourly JSON Lines files; an audit replays
months of them. :func:`replay_paths` takes files, directories and glob patterns, and
replays the files as **one log, in the order of their sorted paths**: the clock, the
timers, the ids (a duplicate or a conflict across two files) are those of the
concatenated log. Line numbers stay per file, and when there is more than one file
every rejection names its file (its path as given, or as found in a directory or by a
pattern). With one file the report is byte for byte that of :func:`~.replayer.replay_path`.

Readings of the issue (documented here and in the README):

* A **directory** gives the regular files directly inside it (not its subdirectories),
  hidden ones (``.name``) left out. A **pattern** (``*``, ``?``, ``[``; ``**`` recurses)
  gives the regular files it matches. A path that exists is never read as a pattern.
* Every file is counted once (the same path given twice, or found twice, is one file),
  and all of them are sorted together by their path strings, whatever the order given.
* A pattern that matches no file, or a directory that holds none, cannot be read:
  ``FileNotFoundError`` (the command exits 2), as for a missing file.
"""

from __future__ import annotations

import errno
import glob
import os
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .replayer import Replayer, _lines_at, _priced, read_lines, replay_path, sort_lines
from .report import Report

if TYPE_CHECKING:
    from distributed import Client

    from ..engine.declaration import Domain
    from ..lifecycles.versions import Policies

__all__ = ["expand_logs", "iter_lines", "replay_files", "replay_paths"]

Logs = str | Path | Sequence[str | Path]


def expand_logs(logs: Logs) -> list[str]:
    """The files that ``logs`` (files, directories, glob patterns) name: each once,
    sorted by path. A missing plain path is kept (opening it gives the OS's reason)."""
    given = [logs] if isinstance(logs, str | Path) else list(logs)
    if not given:
        raise ValueError("no log given")
    found: list[str] = []
    for log in given:
        text = os.fspath(log)
        if os.path.isdir(text):
            files = [os.path.join(text, name) for name in os.listdir(text) if not name.startswith(".")]
            files = [f for f in files if os.path.isfile(f)]
            if not files:
                raise FileNotFoundError(errno.ENOENT, "no log file in this directory", text)
            found.extend(files)
        elif not os.path.exists(text) and glob.has_magic(text):  # type: ignore[attr-defined]
            files = [f for f in glob.glob(text, recursive=True) if os.path.isfile(f)]
            if not files:
                raise FileNotFoundError(errno.ENOENT, "no file matches this pattern", text)
            found.extend(files)
        else:
            found.append(text)
    return sorted(dict.fromkeys(found))


def iter_lines(paths: Sequence[str], *, sort: bool = False) -> Iterator[tuple[int, int, bytes]]:
    """``(file index, line number, bytes)`` of every non-blank line of the files, as one
    log; with ``sort``, stably ordered by time as :func:`~.replayer.sort_lines` orders
    one log (ties keep their place in the concatenated log)."""
    if not sort:
        for index, path in enumerate(paths):
            with open(path, "rb") as stream:
                for number, raw in read_lines(stream):
                    yield index, number, raw
        return
    where: list[tuple[int, int]] = []
    raws: list[tuple[int, bytes]] = []
    for index, number, raw in iter_lines(paths):
        raws.append((len(where), raw))
        where.append((index, number))
    for position, raw in sort_lines(raws):  # (sort_lines breaks ties by the first item)
        yield (*where[position], raw)


def replay_files(paths: Sequence[str], *, as_of: datetime | None = None, sort: bool = False,
                 domain: Domain | None = None, spill_ids: bool = False,
                 progress: Callable[[Replayer], None] | None = None, interpret: bool = False,
                 policies: Policies | None = None) -> Report:
    """Replay ``paths`` (files, in this order) as one log in one process; every rejection
    names its file. ``OSError`` when one cannot be read, before anything is replayed."""
    for path in paths:  # the tenth file missing must not cost the replay of nine
        if os.path.isfile(path):
            open(path, "rb").close()
        else:  # a pipe is opened once, when its turn comes (opening it is reading it)
            os.stat(path)
    domain = _priced(domain, policies)
    with Replayer(domain, spill_ids=spill_ids, interpret=interpret) as replayer:
        feed = replayer.feed_at
        lines: Iterable[tuple[int, int, bytes, int]]
        if sort:
            ordered = list(iter_lines(paths, sort=True))
            replayer.lazy(lambda token: ordered[token][2])
            lines = ((f, n, raw, token) for token, (f, n, raw) in enumerate(ordered))
        elif all(os.path.isfile(path) for path in paths):
            bases: list[int] = []  # where each file starts in the one log's byte offsets
            replayer.lazy(lambda token: _line_at(paths, bases, token))
            lines = _offsets(paths, bases)
        else:  # a pipe among them: read once, digested eagerly
            lines = ((f, n, raw, 0) for f, n, raw in iter_lines(paths))
        current = -1
        for index, number, raw, token in lines:
            if index != current:
                current, replayer.file = index, paths[index]
            feed(number, raw, token)
            if progress is not None and replayer.lines % 16384 == 0:
                progress(replayer)
        replayer.release_ids()
        return replayer.finish(as_of)


def _offsets(paths: Sequence[str], bases: list[int]) -> Iterator[tuple[int, int, bytes, int]]:
    """Every line with its offset in the concatenated files; fills ``bases`` as it goes."""
    base = 0
    for index, path in enumerate(paths):
        bases.append(base)
        with open(path, "rb") as stream:
            for number, raw, offset, _ in _lines_at(stream):
                yield index, number, raw, base + offset
            base += stream.tell()


def _line_at(paths: Sequence[str], bases: list[int], token: int) -> bytes:
    """The line at ``token`` (an offset in the concatenated files): read again from its
    file, only ever for an id that comes again (see :meth:`Replayer.lazy`)."""
    index = bisect_right(bases, token) - 1  # (an empty file shares its base with the next)
    with open(paths[index], "rb") as stream:
        stream.seek(token - bases[index])
        return stream.readline().strip()


def replay_paths(logs: Logs, *, workers: int = 1, client: Client | None = None,
                 **options: Any) -> Report:
    """Replay the files ``logs`` names (see :func:`expand_logs`) as one log.

    ``client``: a :class:`distributed.Client` to replay on (see :mod:`.cluster`);
    ``workers`` other than 1: that many processes (see :mod:`.parallel`). Otherwise one
    process. Options as :func:`~.replayer.replay`. One file: :func:`replay_path`'s report.
    """
    paths = expand_logs(logs)
    if client is not None:
        from .cluster import replay_on_dask

        return replay_on_dask(paths, client, **options)
    if len(paths) == 1:
        return replay_path(paths[0], workers=workers, **options)
    if workers != 1:
        from .parallel import replay_parallel

        policies = options.pop("policies", None)
        if policies is not None:
            options["domain"] = _priced(options.get("domain"), policies)
        return replay_parallel(paths, workers, **options)
    return replay_files(paths, **options)
