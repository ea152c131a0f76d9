"""Entities' lifecycle diagrams with their paths overlaid, as SVG to inline in a page.

The drawing is the one of ``python -m statemachine diagram LOG SUBJECT``
(:func:`~statemachine.diagrams.overlay` and :func:`~statemachine.diagrams.to_dot`);
only the rendering differs, because a report draws a hundred diagrams or more:

* one ``dot`` process per diagram, a few at a time. One process for them all would be
  faster still, but Graphviz 2.43 (Debian 12's) lays out every graph after the first of
  its input differently from run to run: the same log would not give the same page;
* where it can (:func:`lean_environment`), ``dot`` loads only its core SVG renderer and
  the dot layout, not the pango text layout: that cuts a run from ~20 ms to ~4 ms (most
  of it was fontconfig starting up), for label widths estimated from built-in font
  metrics instead of measured;
* the SVGs lose their XML prologue and comments (they go inside an HTML page) and say
  what they show (``role="img"`` and an ``aria-label``).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from html import escape
from pathlib import Path

import attrs

from ...diagrams.dot import GraphvizMissing, RenderError, to_dot
from ...diagrams.model import Diagram, build_diagram
from ...diagrams.overlay import overlay
from ...diagrams.trace import Trace
from ...engine.declaration import Domain

__all__ = ["Drawing", "draw_overlays", "lean_environment", "overlay_sources", "overlay_svgs", "render_svgs"]

_PROLOGUE = re.compile(r"<\?xml[^>]*\?>\s*(?:<!DOCTYPE[^>]*>\s*)?")
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)
_SVG_OPEN = re.compile(r"<svg\b")
_LIBDIR = re.compile(r'libdir = "([^"]+)"')
_LEAN_PLUGINS = ("libgvplugin_core", "libgvplugin_dot_layout")


@cache
def lean_environment(binary: str) -> Mapping[str, str] | None:
    """An environment in which ``binary`` (Graphviz's ``dot``) loads only the core
    renderer and the dot layout: a private plugin directory (``GVBINDIR``) holding links
    to those two and the configuration ``dot -c`` writes for them. ``None`` when that
    cannot be set up (another layout of the installation, no temporary directory):
    ``dot`` then runs as installed."""
    try:
        probe = subprocess.run([binary, "-v"], input=b"", capture_output=True, timeout=30, check=False)
        found = _LIBDIR.search(probe.stderr.decode(errors="replace"))
        if found is None:
            return None
        libdir = Path(found.group(1))
        plugins = [next(iter(sorted(libdir.glob(f"{name}.*"))), None) for name in _LEAN_PLUGINS]
        if not all(plugins):
            return None
        private = Path(tempfile.mkdtemp(prefix="statemachine-graphviz-"))
        atexit.register(shutil.rmtree, private, True)
        for plugin in plugins:
            assert plugin is not None
            (private / plugin.name).symlink_to(plugin)
        env = {**os.environ, "GVBINDIR": str(private)}
        subprocess.run([binary, "-c"], env=env, capture_output=True, timeout=30, check=True)
        check = subprocess.run([binary, "-Tsvg"], input=b"digraph { a -> b }", env=env,
                               capture_output=True, timeout=30, check=False)
        if check.returncode != 0 or b"<svg" not in check.stdout:
            return None
        return env
    except (OSError, subprocess.SubprocessError):
        return None


def _render_one(binary: str, env: Mapping[str, str] | None, source: str) -> str:
    result = subprocess.run([binary, "-Tsvg"], input=source.encode("utf-8"), env=env,
                            capture_output=True, check=False)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip()
        raise RenderError(f"dot failed ({result.returncode}): {reason}")
    svg = _PROLOGUE.sub("", result.stdout.decode("utf-8"), count=1)
    return _COMMENT.sub("", svg).strip()


def render_svgs(sources: Sequence[str], *, workers: int | None = None) -> list[str]:
    """Render DOT ``sources`` to inline SVG, in order: one ``dot`` per source, up to
    ``workers`` at a time (default: one per CPU, at most 4)."""
    if not sources:
        return []
    binary = shutil.which("dot")
    if binary is None:
        raise GraphvizMissing("the report's diagrams")
    env = lean_environment(binary)
    count = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(count) as pool:  # each thread waits on its own process
        return list(pool.map(lambda source: _render_one(binary, env, source), sources))


def _label(svg: str, text: str) -> str:
    return _SVG_OPEN.sub(f'<svg role="img" aria-label="{escape(text)}"', svg, count=1)


@attrs.frozen
class Drawing:
    """The DOT source of one entity's path on its lifecycle, and what it shows."""

    subject: str
    description: str
    source: str


def overlay_sources(traces: Sequence[Trace], domain: Domain) -> list[Drawing]:
    """The DOT drawing of each trace over its lifecycle. A trace the diagram cannot
    place (a lifecycle it does not know, a step with no arrow) gets none rather than a
    wrong one; the page says so."""
    diagrams: dict[str, Diagram | None] = {}
    drawings: list[Drawing] = []
    for trace in traces:
        if trace.lifecycle not in diagrams:
            try:
                diagrams[trace.lifecycle] = build_diagram(domain.lifecycle(trace.lifecycle))
            except (KeyError, LookupError, ValueError):
                diagrams[trace.lifecycle] = None
        diagram = diagrams[trace.lifecycle]
        if diagram is None:
            continue
        try:
            view = overlay(diagram, trace)
        except (KeyError, ValueError):
            continue
        description = (f"{trace.lifecycle} lifecycle of {trace.subject}: its path of {len(trace.steps)} "
                       f"steps drawn in blue and numbered, its current state {trace.state} filled")
        drawings.append(Drawing(trace.subject, description, to_dot(diagram, view)))
    return drawings


def overlay_svgs(drawings: Sequence[Drawing]) -> dict[str, str]:
    """``subject -> inline SVG`` of each drawing (:func:`render_svgs`)."""
    svgs = render_svgs([d.source for d in drawings])
    return {d.subject: _label(svg, d.description) for d, svg in zip(drawings, svgs, strict=True)}


def draw_overlays(drawings: Sequence[Drawing]) -> tuple[dict[str, str], str | None]:
    """:func:`overlay_svgs`, or no SVG and the reason when Graphviz is missing: a plain
    result, for the painter's process to hand back (see :class:`.chart.Painter`)."""
    try:
        return overlay_svgs(drawings), None
    except GraphvizMissing as exc:
        return {}, str(exc)
