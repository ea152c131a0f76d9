"""``python -m statemachine diagrams`` and ``diagram``: the command-line faces.

Exit statuses: 0 done; 1 ``--check`` found drift; 2 the command could not do its
job (no ``dot`` for SVG/PNG, an unreadable log, an unknown subject), always with one
line on stderr and never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .dot import RENDER_FORMATS, GraphvizMissing, RenderError, render, to_dot
from .files import DEFAULT_FORMATS, EXTENSIONS, TEXT_FORMATS, check, write
from .mermaid import to_mermaid
from .model import build_diagram
from .overlay import overlay
from .trace import UnknownSubject, trace_log

__all__ = ["run_diagram", "run_diagrams"]

REGENERATE = "python -m statemachine diagrams"


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_diagrams(args: argparse.Namespace) -> int:
    from ..lifecycles.versions import PolicyError
    from ..replay.commands import policy_domain

    out = Path(args.out)
    domain = getattr(args, "domain", None)  # --domain: another domain (None: ours)
    if domain is not None and getattr(args, "policy", None):
        return _error("--policy prices this project's own lifecycles; it does not apply to --domain")
    if domain is None:
        try:
            domain = policy_domain(args)  # diagrams --policy FILE: that version's numbers
        except PolicyError as exc:
            return _error(str(exc))
    if args.check:
        problems = check(out, domain)
        for name, problem in problems:
            print(f"{out / name}: {problem}", file=sys.stderr)
        if problems:
            print(f"the diagrams are out of date: run `{REGENERATE}` and commit {out}/",
                  file=sys.stderr)
            return 1
        print(f"{out}/ is up to date")
        return 0
    formats = list(dict.fromkeys(args.format or DEFAULT_FORMATS))
    # Text first: DOT and Mermaid never need Graphviz, so they are written even
    # when `dot` is missing for the rendered formats.
    try:
        for group in ([f for f in formats if f in TEXT_FORMATS], [f for f in formats if f in RENDER_FORMATS]):
            for path in write(out, group, domain):
                print(path)
    except (GraphvizMissing, RenderError) as exc:
        return _error(str(exc))
    except OSError as exc:  # a read-only folder, a file where the folder should be: 2, not 1
        return _error(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
    return 0


def run_diagram(args: argparse.Namespace) -> int:
    from ..lifecycles import DOMAIN

    domain = getattr(args, "domain", None) or DOMAIN
    try:
        trace = trace_log(args.log, args.subject, as_of=args.as_of, sort=args.sort, domain=domain)
    except OSError as exc:
        return _error(f"cannot read {args.log}: {exc.strerror or exc}")
    except UnknownSubject as exc:
        return _error(str(exc))
    diagram = build_diagram(domain.lifecycle(trace.lifecycle))
    view = overlay(diagram, trace)
    fmt = args.format
    if fmt in TEXT_FORMATS:
        text = to_dot(diagram, view) if fmt == "dot" else to_mermaid(diagram, view)
        if args.out is None:
            sys.stdout.write(text)
            return 0
        data = text.encode("utf-8")
    else:
        try:
            data = render(to_dot(diagram, view), fmt)
        except (GraphvizMissing, RenderError) as exc:
            return _error(str(exc))
    path = Path(args.out or f"{trace.subject.replace('/', '_')}.{EXTENSIONS[fmt]}")
    try:
        path.write_bytes(data)
    except OSError as exc:
        return _error(f"cannot write {path}: {exc.strerror or exc}")
    print(path)
    return 0
