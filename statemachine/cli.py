"""The command line: a thin face over the library. No rule lives here.

``python -m statemachine replay LOG [--format text|json] [--as-of TIME] [--sort] [--html FILE]``
``python -m statemachine diagrams [--format svg|png|dot|mermaid] [--out DIR] [--check]``
``python -m statemachine diagram LOG SUBJECT [--format svg|png|dot|mermaid] [--out FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

import structlog

from .streams import STDERR
from .timeutil import format_instant, parse_instant

__all__ = ["main"]


def _configure_logging(verbose: bool) -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(STDERR),
        cache_logger_on_first_use=True,
    )


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the number of processes cannot be negative")
    return count  # 0: one per CPU (replay_parallel)


def _cpus() -> int:
    return os.cpu_count() or 1


def _capped_workers(requested: int) -> int:
    """More processes than CPUs only adds forks and merging (--workers 1000 on 2 cores:
    16 s instead of 1 s): cap at the CPU count, and say so."""
    if requested > _cpus():
        print(f"note: --workers {requested} capped at {_cpus()}, the number of CPUs", file=sys.stderr)
        return _cpus()
    return requested


def _instant(value: str):
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m statemachine",
        description="Lifecycle engine for creator collaborations and promotions.",
    )
    # -v works before or after the subcommand: a parent parser shared by all of them.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log every transition (structlog, on stderr)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every transition (structlog, on stderr)")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser(
        "replay", parents=[verbose], help="rebuild every entity from an event log (JSON Lines)",
        description="Rebuild every entity from an event log and report what happened to the money.",
        epilog="exit status: 0 every line applied or was a duplicate; 1 some lines were rejected "
               "(the report is still complete); 2 the log could not be read or the report not written",
    )
    rp.add_argument("log", nargs="+", metavar="LOG",
                    help="the event log, one JSON event per line: one or more files, directories or "
                         "quoted glob patterns, replayed as one log in the order of their sorted "
                         "paths; - reads standard input")
    rp.add_argument("--format", choices=("text", "json"), default="text",
                    help="text: tables for people (default); json: the report of event-log.md")
    rp.add_argument("--as-of", type=_instant, metavar="TIME",
                    help="fire the timers due up to TIME (RFC 3339) after the last event")
    rp.add_argument("--sort", action="store_true",
                    help="order the events by time first (reads the whole log)")
    rp.add_argument("--spill-ids", action="store_true",
                    help="keep the applied event ids in a temporary file, not in memory: for "
                         "logs of millions of events (memory then grows with the entities "
                         "only; 20-40 %% slower)")
    rp.add_argument("--workers", type=_workers, default=1, metavar="N",
                    help="an alias of --cluster local:N: replay on N local Dask processes, each "
                         "owning some families of entities (a project and its orders): the same "
                         "report, sooner with cores to spare; 0: one per CPU (default: 1); never "
                         f"more than the CPUs ({_cpus()} here): a larger N is capped, with a note")
    dg = sub.add_parser("diagrams", parents=[verbose],
                        help="draw every lifecycle (default: SVG, DOT and Mermaid)",
                        description="Draw every lifecycle from the declaration the engine runs.")
    dg.add_argument("--format", action="append", choices=("svg", "png", "dot", "mermaid"),
                    help="a format to write (repeatable)")
    dg.add_argument("--out", default="diagrams", metavar="DIR", help="where (default: diagrams)")
    dg.add_argument("--check", action="store_true",
                    help="exit 1 if the DOT/Mermaid files in DIR differ from the code")
    de = sub.add_parser("diagram", parents=[verbose],
                        help="draw one entity's lifecycle with its path through a log",
                        description="Replay a log and draw one entity's lifecycle, its path "
                                    "numbered with event ids and its current state filled.")
    de.add_argument("log", help="the event log, one JSON event per line")
    de.add_argument("subject", help="the entity, e.g. order/O-404")
    de.add_argument("--format", choices=("svg", "png", "dot", "mermaid"), default="svg",
                    help="default: svg")
    de.add_argument("--out", metavar="FILE",
                    help="where (default: dot/mermaid to stdout; svg/png to the subject with / "
                         "as _, e.g. order_O-404.svg)")
    de.add_argument("--as-of", type=_instant, metavar="TIME",
                    help="fire the timers due up to TIME (RFC 3339) after the last event")
    de.add_argument("--sort", action="store_true", help="order the events by time first")
    # --domain (issue 18): every face runs any declared domain, not only ours.
    for name in ("replay", "diagrams", "diagram"):
        sub.choices[name].add_argument(
            "--domain", metavar="MODULE:ATTRIBUTE",
            help="the lifecycles to run: a Domain or a Lifecycle, e.g. "
                 "examples.support_request:DOMAIN (default: ours)")
    # Policy versions, audit and what-if (policy-versions.md): their own block and module.
    from .replay.commands import add_policy_arguments

    add_policy_arguments(rp, dg)
    # The HTML report (issue 19): its own flag and module.
    from .replay.html.command import add_html_argument

    add_html_argument(rp)
    # Many log files and Dask (issue 13): their own flag and module.
    from .replay.scale import add_scale_arguments

    add_scale_arguments(rp)
    return parser


def _replay(args: argparse.Namespace) -> int:
    from .replay import render_text
    from .replay.cluster import ClusterError
    from .replay.commands import run_policy_replay, uses_policies
    from .replay.progress import terminal_progress
    from .replay.report import write_json
    from .replay.scale import prepare_logs, replay_logs, write_outputs  # many logs, Dask (issue 13)

    refused = prepare_logs(args, _capped_workers(args.workers))
    if refused is not None:
        return refused
    if uses_policies(args):  # --policy, --verify, --what-if
        return run_policy_replay(args)

    if getattr(args, "html", None) is not None:  # --html FILE (issue 19)
        from .replay.html.command import run_html_replay

        return run_html_replay(args)

    try:
        with terminal_progress() as progress:
            options = dict(as_of=args.as_of, sort=args.sort, spill_ids=args.spill_ids, domain=args.domain,
                           progress=None if args.format == "json" else progress)
            if args.log == "-":  # standard input, as Unix tools read it: one process
                from .replay import replay

                report = replay(sys.stdin.buffer, **options)  # type: ignore[arg-type]
            else:
                report = replay_logs(args, **options)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {args.log}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    refused = write_outputs(args, report)  # --out DIR: Parquet (issue 13)
    if refused is not None:
        return refused
    if args.as_of is not None and report.as_of is not None and args.as_of < report.as_of:
        print(f"note: --as-of {format_instant(args.as_of)} is before the last event; the report "
              f"is as of {format_instant(report.as_of)} (time never goes back)", file=sys.stderr)
    try:
        if args.format == "json":
            write_json(report, sys.stdout.buffer.write)  # in pieces: no second copy of the report
        else:
            sys.stdout.write(render_text(report))
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter flushes it at exit
        print(f"error: cannot write the report: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return report.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    from .limits import ENV_ERROR

    if ENV_ERROR is not None:  # a limit set in the environment that cannot be used
        print(f"error: {ENV_ERROR}", file=sys.stderr)
        return 2
    if getattr(args, "domain", None) is not None:  # --domain: loaded and compiled up front
        from .loading import DomainError, load_domain

        try:
            args.domain = load_domain(args.domain)
        except DomainError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "replay":
        return _replay(args)
    if args.command in ("diagrams", "diagram"):
        from .diagrams.commands import run_diagram, run_diagrams

        return run_diagrams(args) if args.command == "diagrams" else run_diagram(args)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
