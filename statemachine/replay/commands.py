"""``replay --policy/--verify/--what-if`` and ``diagrams --policy``: the command-line faces
of ``policy-versions.md``. No rule lives here.

Exit statuses: a bad policy file, a recorded ledger that cannot be read at all, or
``--verify`` with ``--what-if``: 2, with one line on stderr, before anything is
replayed. Otherwise the replay's status; with ``--verify``, 1 as well when any
recorded line did not match.

With ``--html FILE`` (issue 19) the HTML report is written too, after the usual output
(which stays byte for byte what it is without it): the replay of the log as it stands,
and the verify findings or the what-if differences as sections of their own. The
``html`` extra missing: 2 before anything is replayed; the file not written: 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from ..engine.declaration import Domain
    from ..lifecycles.versions import Policies, PolicyVersion
    from .audit import RecordedLedger
    from .html.chart import Painter
    from .html.paths import PathBook
    from .html.sections import Section
    from .report import Report

__all__ = ["add_policy_arguments", "policy_domain", "run_policy_replay", "uses_policies"]


def add_policy_arguments(replay: argparse.ArgumentParser, diagrams: argparse.ArgumentParser) -> None:
    """The options of ``policy-versions.md`` on the ``replay`` and ``diagrams`` commands."""
    replay.add_argument("--policy", action="append", default=[], metavar="FILE",
                        help="a policy version (TOML) besides the built-in one (repeatable): the "
                             "version in force when an order was agreed prices it")
    audit = replay.add_mutually_exclusive_group()
    audit.add_argument("--verify", metavar="RECORDED",
                       help="compare the recomputed ledger with a recorded one (.jsonl, .ndjson or "
                            ".csv); exit 1 on any finding other than matched")
    audit.add_argument("--what-if", metavar="FILE",
                       help="replay again with the policy version in FILE governing every order, and "
                            "show what changes")
    diagrams.add_argument("--policy", action="append", default=[], metavar="FILE",
                          help="label the refund edges with this policy version's numbers")


def uses_policies(args: argparse.Namespace) -> bool:
    """Does this replay need the faces of this module?"""
    return bool(getattr(args, "policy", None) or getattr(args, "verify", None)
                or getattr(args, "what_if", None))


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def policy_domain(args: argparse.Namespace) -> Domain | None:
    """The domain ``diagrams --policy FILE`` draws (labels from the latest version);
    raises :class:`~..lifecycles.versions.PolicyError` for a bad file."""
    if not getattr(args, "policy", None):
        return None
    from ..lifecycles import domain_for, load_policies

    return domain_for(load_policies(args.policy))


def _write(data: str | bytes) -> int | None:
    try:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter flushes it at exit
        return _error(f"cannot write the report: {exc.strerror or exc}")
    return None


def _note_as_of(args: argparse.Namespace, report: Report) -> None:
    """As the plain replay does: say so when --as-of lies before the log's last event."""
    if args.as_of is not None and report.as_of is not None and args.as_of < report.as_of:
        from ..timeutil import format_instant

        print(f"note: --as-of {format_instant(args.as_of)} is before the last event; the report "
              f"is as of {format_instant(report.as_of)} (time never goes back)", file=sys.stderr)


def run_policy_replay(args: argparse.Namespace) -> int:
    """``replay LOG [--policy FILE]... [--verify RECORDED | --what-if FILE] [--html FILE]``."""
    from ..lifecycles.versions import PolicyError, load_policies, load_version
    from .audit import RecordedLedger, VerifyError

    # Everything that can be refused is, before anything is replayed.
    if getattr(args, "domain", None) is not None:
        return _error("--policy, --verify and --what-if price this project's own lifecycles; "
                      "they do not apply to --domain")
    try:
        policies = load_policies(args.policy) if args.policy else None
        draft = load_version(args.what_if) if args.what_if else None
    except PolicyError as exc:
        return _error(str(exc))
    if not Path(args.log).is_file():
        try:
            open(args.log, "rb").close()  # the OS's own reason: missing, a directory, no access
        except OSError as exc:
            return _error(f"cannot read {args.log}: {exc.strerror or exc}")
    if getattr(args, "html", None) is not None:  # --html FILE (issue 19): the extra, up front
        from .html.command import note_one_process
        from .html.page import MissingExtra, require

        try:
            require()
        except MissingExtra as exc:
            return _error(str(exc))
        note_one_process(args)
    recorded = None
    if args.verify:
        try:
            recorded = RecordedLedger(args.verify)
        except VerifyError as exc:
            return _error(str(exc))
    with contextlib.ExitStack() as stack:
        painter = None
        if getattr(args, "html", None) is not None:
            from .html.chart import Painter

            painter = stack.enter_context(Painter())  # warms up on another core while the log replays
        return _replay_and_write(args, policies, draft, recorded, painter)


def _replay_and_write(args: argparse.Namespace, policies: Policies | None, draft: PolicyVersion | None,
                      recorded: RecordedLedger | None, painter: Painter | None) -> int:
    """Replay (twice for --what-if), write the usual output, then the HTML file if asked.

    With ``--html`` every replay runs in one process, and the first (the log as it stands,
    priced by ``policies``) records every entity's path: the page shows that run, and the
    verify findings or the what-if differences as sections of their own."""
    from .audit import render_verify_text
    from .progress import terminal_progress
    from .replayer import _priced, replay_path
    from .report import render_text, to_json
    from .whatif import render_what_if_text, what_if

    text = args.format != "json"
    html = getattr(args, "html", None)
    first: list[tuple[PathBook, Domain | None]] = []  # --html: the first run's paths and domain

    def run(chosen: Policies | None) -> Report:
        with terminal_progress() as progress:
            if html is not None and not first:
                from .html.paths import replay_traced_path

                domain = _priced(None, chosen)
                traced = replay_traced_path(args.log, as_of=args.as_of, sort=args.sort,
                                            spill_ids=args.spill_ids, domain=domain,
                                            progress=progress if text else None)
                first.append((traced.paths, domain))
                return traced.report
            return replay_path(args.log, as_of=args.as_of, sort=args.sort, spill_ids=args.spill_ids,
                               workers=1 if html is not None else args.workers, policies=chosen,
                               progress=progress if text else None)

    sections: list[Section] = []
    try:
        if draft is not None:
            result = what_if(run, draft, policies)
            report = result.baseline
            _note_as_of(args, report)
            output: str | bytes = (render_what_if_text(result) if text else
                                   orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
            status = result.exit_status
            if html is not None:
                from .html.findings import what_if_section

                sections.append(what_if_section(result))
        else:
            report = run(policies)
            _note_as_of(args, report)
            status = report.exit_status
            if recorded is None:
                output = render_text(report) if text else to_json(report)
            else:
                verification = recorded.compare(report.ledger)
    except OSError as exc:
        return _error(f"cannot read {args.log}: {exc.strerror or exc}")
    finally:
        if recorded is not None:
            recorded.close()
    if recorded is not None:
        if text:
            output = render_text(report) + render_verify_text(verification)
        else:
            whole = {**report.to_dict(), "verify": verification.to_dict()}
            output = orjson.dumps(whole, option=orjson.OPT_INDENT_2) + b"\n"
        status = 0 if verification.clean and report.exit_status == 0 else 1
        if html is not None:
            from .html.findings import verify_section

            sections.append(verify_section(verification, args.verify))
    failed = _write(output)
    if failed is not None:
        return failed
    if html is not None:
        from .html.page import write_html

        try:
            paths, domain = first[0]
            write_html(html, report, paths, source=str(args.log), domain=domain, painter=painter,
                       sections=sections)
        except OSError as exc:
            return _error(f"cannot write {html}: {exc.strerror or exc}")
    return status
