"""A standard error that is looked up when written to, not when logging is configured.

structlog's ``PrintLoggerFactory(sys.stderr)`` keeps the stream object it was given. A
program that configures logging once and later swaps ``sys.stderr`` (a test harness that
captures output, a runner that redirects it) would then write to a stream that may be
closed. :data:`STDERR` always writes to whatever ``sys.stderr`` is at that moment.
"""

from __future__ import annotations

import sys
from typing import TextIO, cast

__all__ = ["STDERR"]


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


#: Pass as ``structlog.PrintLoggerFactory(STDERR)``.
STDERR: TextIO = cast(TextIO, _CurrentStderr())
