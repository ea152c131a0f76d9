"""Progress of a long replay on stderr, for people watching a terminal.

Shown only when stderr is a terminal: piped or redirected output, and the JSON report,
stay byte for byte what the replay produced.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from .replayer import Replayer

__all__ = ["terminal_progress"]


@contextmanager
def terminal_progress(stream: TextIO | None = None) -> Iterator[Callable[[Replayer], None] | None]:
    """Yield a ``progress`` callback for :func:`~.replayer.replay`, or ``None`` when
    ``stream`` (default stderr) is not a terminal. Lines done, lines/s, rejected so far."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # Refreshed by the updates, not by rich's refresh thread: a parallel replay forks its
    # workers while the bar is up, and a fork must not copy a thread holding a lock.
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(file=stream), transient=True, auto_refresh=False) as bar:
        # One bar per phase: a replay on a cluster (issue 13) reports ``phase``
        # "scanning" then "replaying"; one process only replays.
        tasks: dict[str, tuple[Any, float]] = {}

        def update(replayer: Replayer) -> None:
            phase = getattr(replayer, "phase", "replaying")
            if phase not in tasks:
                tasks[phase] = (bar.add_task(phase, total=None), time.perf_counter())
            task, started = tasks[phase]
            rate = replayer.lines / max(time.perf_counter() - started, 1e-9)
            bar.update(task, description=(f"{phase}: {replayer.lines:,} lines, {rate:,.0f}/s, "
                                          f"{len(replayer.rejected):,} rejected"), refresh=True)

        yield update
