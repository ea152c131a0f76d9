"""``replay LOG... [--cluster local[:N] | tcp://HOST:PORT]``: the command-line face of
issue 13 (many log files, Dask). No rule lives here.

Everything that can be refused is, before anything is replayed, with one line on
stderr and exit 2: a pattern or directory without files, ``-`` given with other logs,
``--cluster`` without the ``dask`` extra, ``--workers`` with ``--cluster``, several
files with a face that reads one (``--policy``, ``--verify``, ``--what-if``, ``--html``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .cluster import ClusterSpec, MissingDask, parse_cluster, require

if TYPE_CHECKING:
    from .report import Report

__all__ = ["add_scale_arguments", "note_dashboard", "prepare_logs", "replay_logs", "write_outputs"]


def _cluster(text: str) -> ClusterSpec:
    try:
        return parse_cluster(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_scale_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument("--cluster", type=_cluster, metavar="local[:N]|tcp://HOST:PORT",
                        help="replay on a Dask cluster: local:N starts N worker processes here "
                             "(local: one per CPU); tcp://HOST:PORT uses a running scheduler "
                             "(the log files must be readable at the same paths on its "
                             "workers). The same report as one process. Needs the extra "
                             "collab-lifecycles[dask]")
    replay.add_argument("--out", metavar="DIR",
                        help="also write the ledger (partitioned by currency) and the final entities "
                             "as Parquet under DIR, for DuckDB, pandas or Spark (needs pyarrow: the "
                             "dask extra)")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def prepare_logs(args: argparse.Namespace, workers: int) -> int | None:
    """Expand ``args.log`` (one or more LOG arguments) into ``args.logs``, the files to
    replay; ``args.log`` becomes the one file when there is one (the faces that read one
    log use it). ``--workers N`` (``workers``, already capped) becomes ``--cluster
    local:N``. None, or the exit status of a refusal."""
    from .commands import uses_policies
    from .files import expand_logs

    logs: list[str] = args.log
    if workers != 1 and args.cluster is not None:
        return _error("--workers N is an alias of --cluster local:N: give one of them")
    one_log_faces = uses_policies(args) or getattr(args, "html", None) is not None
    if args.out is not None:
        from .parquet import MissingPyarrow, _pyarrow

        if one_log_faces:
            return _error("--out is written by the plain replay, not with --policy, --verify, "
                          "--what-if or --html")
        try:
            _pyarrow()
        except MissingPyarrow as exc:
            return _error(str(exc))
    if "-" in logs:
        if len(logs) > 1:
            return _error("- (standard input) cannot be replayed together with other logs")
        if args.cluster is not None:
            print("note: standard input is replayed in one process; --cluster is ignored",
                  file=sys.stderr)
        args.log, args.logs, args.cluster = "-", ["-"], None
        return None
    try:
        args.logs = expand_logs(logs)
    except OSError as exc:
        return _error(f"cannot read {exc.filename}: {exc.strerror or exc}")
    if len(args.logs) > 1 and one_log_faces:
        return _error(f"--policy, --verify, --what-if and --html read one log file; "
                      f"{len(args.logs)} were given")
    args.log = args.logs[0] if len(args.logs) == 1 else " ".join(logs)
    if args.cluster is not None and one_log_faces:
        return _error("--cluster is not used with --policy, --verify, --what-if or --html "
                      "(--workers N is, but for --html)")
    if workers != 1 and not one_log_faces:
        args.cluster = ClusterSpec(workers=workers or None)
    if args.cluster is not None or (workers != 1 and uses_policies(args)):
        try:
            require()
        except MissingDask as exc:
            return _error(str(exc))
    return None


def replay_logs(args: argparse.Namespace, **options: Any) -> Report:
    """The replay of ``args.logs``: on ``args.cluster`` if given, else in one process.
    ``OSError`` when a file cannot be read; :class:`~.cluster.ClusterError` when the
    scheduler cannot be reached."""
    from .files import replay_paths

    if args.cluster is None:
        return replay_paths(args.logs, **options)
    from .cluster import connect

    with connect(args.cluster) as client:
        if args.cluster.address is None:
            note_dashboard(client)
        return replay_paths(args.logs, client=client, **options)


def note_dashboard(client: Any, stream: Any = None) -> None:
    """On a terminal, one line on stderr with the local cluster's Dask dashboard (task
    stream, workers' memory), next to the progress bars; nothing when piped."""
    stream = sys.stderr if stream is None else stream
    link = getattr(client, "dashboard_link", None)
    if link and stream.isatty():
        print(f"Dask dashboard: {link}", file=stream, flush=True)


def write_outputs(args: argparse.Namespace, report: Report) -> int | None:
    """``--out DIR``: the Parquet files of :mod:`.parquet`; None, or 2 with one line."""
    if getattr(args, "out", None) is None:
        return None
    from .parquet import write_parquet

    try:
        write_parquet(report, args.out)
    except (OSError, ValueError) as exc:
        return _error(f"cannot write {args.out}: {getattr(exc, 'strerror', None) or exc}")
    return None
