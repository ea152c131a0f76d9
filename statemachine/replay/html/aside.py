"""The usual report written by a forked child while this process builds the HTML page.

``replay LOG --html FILE`` has two things to write once the log has replayed: the usual
output (the JSON or text report: for a million events, 117 MB of JSON and a few
seconds) and the page (a second or two: samples, sums, diagrams). Neither needs the
other, and both only read the finished report. So the report is written by a child
forked from this process (it shares the finished report, copy on write, and needs
nothing else), while this process builds the page on the other core: the page then
costs next to nothing on the wall clock of a machine with a core to spare. The child
writes exactly the bytes this process would have written, to the same standard
output, and exits with ``os._exit`` (no interpreter shutdown, no ``atexit``: nothing
of this process' helpers is touched).

Where there is no ``fork`` (Windows), or standard output is not a file descriptor (a
test capturing it in memory), the report is written here first, as before.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable

__all__ = ["write_aside"]

#: Waits for the writer and gives its result: ``None`` when it wrote, else an exit status.
Wait = Callable[[], "int | None"]


def _forkable() -> bool:
    if not hasattr(os, "fork"):
        return False
    try:
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


def write_aside(write: Callable[[], int | None]) -> Wait:
    """Run ``write`` (the usual output: ``None`` when written, else an exit status,
    having said why on stderr) in a forked child; returns the function that waits for
    it. Without a fork, ``write`` runs now and the returned function gives its result."""
    if not _forkable():
        result = write()
        return lambda: result
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        # Python 3.12 warns on forking a process with threads (this one has the chart
        # painter's pool thread): the child only writes the report to a descriptor no
        # other thread uses and leaves by os._exit, taking no lock another thread holds.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its output is what the tests check)
        status = 2
        try:
            status = write() or 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)

    def wait() -> int | None:
        _, code = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(code)
        return status or None

    return wait
