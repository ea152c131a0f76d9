"""Lifecycle diagrams, drawn from the one declaration the engine runs.

:func:`build_diagram` extracts the graph (:mod:`.model`); :func:`to_dot` and
:func:`to_mermaid` write it as Graphviz and Mermaid text; :func:`render` turns DOT
into SVG/PNG with Graphviz's ``dot``. :func:`trace_log` replays an event log for one
entity and :func:`overlay` lays its path over its lifecycle's diagram.
"""

from .dot import GraphvizMissing, RenderError, render, to_dot
from .files import check, lifecycle_diagrams, text_files, write
from .mermaid import to_mermaid
from .model import Branch, Diagram, Edge, EdgeKind, Fork, Node, build_diagram
from .overlay import Overlay, overlay
from .trace import PathStep, Trace, UnknownSubject, trace_log

__all__ = [
    "Branch",
    "Diagram",
    "Edge",
    "EdgeKind",
    "Fork",
    "GraphvizMissing",
    "Node",
    "Overlay",
    "PathStep",
    "RenderError",
    "Trace",
    "UnknownSubject",
    "build_diagram",
    "check",
    "lifecycle_diagrams",
    "overlay",
    "render",
    "text_files",
    "to_dot",
    "to_mermaid",
    "trace_log",
    "write",
]
