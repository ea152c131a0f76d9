"""``python -m statemachine replay LOG --html FILE``: the usual report, and the HTML file.

The CLI hands the parsed arguments here when ``--html`` is given. The replay records
every entity's path as it goes (:func:`~.paths.replay_traced_path`), then writes the
usual output (text or JSON, byte for byte what it would be without ``--html``) and the
HTML file. Exit statuses are the replay's (0 or 1), and 2 when the log cannot be read,
the file cannot be written, or the ``html`` extra is missing, with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from ...timeutil import format_instant

if TYPE_CHECKING:
    from ..report import Report
    from .chart import Painter

__all__ = ["add_html_argument", "note_one_process", "run_html_replay"]


def add_html_argument(replay: argparse.ArgumentParser) -> None:
    """``--html FILE`` on the ``replay`` subcommand."""
    replay.add_argument("--html", metavar="FILE",
                        help="also write the report as one self-contained HTML file (summary, "
                             "money chart, rejected lines, every entity's path on its diagram); "
                             "replays in one process")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def note_one_process(args: argparse.Namespace) -> None:
    """Say so when ``--workers`` asked for more than the one process ``--html`` replays in
    (``replay --verify/--what-if --html`` too: see :mod:`..commands`)."""
    if getattr(args, "workers", 1) != 1:
        print("note: --html replays in one process (it records every entity's path as it "
              "goes); --workers is ignored", file=sys.stderr)


def run_html_replay(args: argparse.Namespace) -> int:
    from .chart import Painter
    from .page import MissingExtra, require

    try:
        require()  # before the replay, not after it
    except MissingExtra as exc:
        return _error(str(exc))
    note_one_process(args)
    with Painter() as painter:  # warms up on another core while the log replays
        return _replay_and_write(args, painter)


def _replay_and_write(args: argparse.Namespace, painter: Painter) -> int:
    from ..progress import terminal_progress
    from .page import start_html
    from .paths import replay_traced_path

    try:
        with terminal_progress() as progress:
            traced = replay_traced_path(args.log, as_of=args.as_of, sort=args.sort,
                                        spill_ids=args.spill_ids, domain=getattr(args, "domain", None),
                                        progress=None if args.format == "json" else progress)
    except OSError as exc:
        return _error(f"cannot read {args.log}: {exc.strerror or exc}")
    report = traced.report
    if args.as_of is not None and report.as_of is not None and args.as_of < report.as_of:
        print(f"note: --as-of {format_instant(args.as_of)} is before the last event; the report "
              f"is as of {format_instant(report.as_of)} (time never goes back)", file=sys.stderr)
    # The page is started first: its passes over the report, then the chart and the
    # diagrams handed to helpers, which draw on another core while the usual output
    # is written here; then the page is finished.
    with start_html(report, traced.paths, source=str(args.log), painter=painter,
                    domain=getattr(args, "domain", None)) as draft:
        failed = _write_report(args, report)
        if failed is not None:
            return failed
        try:
            draft.write(args.html)
        except OSError as exc:
            return _error(f"cannot write {args.html}: {exc.strerror or exc}")
    return report.exit_status


def _write_report(args: argparse.Namespace, report: Report) -> int | None:
    """The usual output on standard output, byte for byte what ``replay`` without
    ``--html`` writes; 2 (with one line on stderr) when it cannot be written."""
    from .. import render_text
    from ..report import write_json

    try:
        if args.format == "json":
            write_json(report, sys.stdout.buffer.write)  # in pieces, as plain replay writes it
        else:
            sys.stdout.write(render_text(report))
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter flushes it at exit
        return _error(f"cannot write the report: {exc.strerror or exc}")
    return None
