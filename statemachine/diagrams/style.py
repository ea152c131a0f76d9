"""The look shared by the Graphviz and Mermaid renderings: colours and label wrapping.

Kept in one place so both renderings read alike: timers amber and dashed, transitions
fired by another entity purple and dotted, money green, the replayed path blue.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..limits import printable
from .model import Diagram, EdgeKind

__all__ = ["COLORS", "KIND_COLOR", "legend", "printable", "senders", "wrap"]

COLORS = {
    "text": "#1a202c",
    "muted": "#718096",
    "faded": "#a0aec0",
    "state": "#f7fafc",
    "border": "#4a5568",
    "final": "#e2e8f0",
    "cluster": "#a0aec0",
    "money": "#276749",
    "guard": "#4a5568",
    "path": "#2b6cb0",
    "visited": "#ebf8ff",
    "current": "#2b6cb0",
}

KIND_COLOR = {
    EdgeKind.EVENT: "#2d3748",
    EdgeKind.TIMER: "#b7791f",
    EdgeKind.INTERNAL: "#6b46c1",
}


def wrap(items: Iterable[str], width: int = 30, sep: str = ", ") -> list[str]:
    """Join ``items`` with ``sep`` into lines of about ``width`` characters, breaking
    only between items (a guard label such as "fee > 0" is never split)."""
    lines: list[str] = []
    current = ""
    for item in items:
        if current and len(current) + len(sep) + len(item) > width:
            lines.append(current + sep.rstrip())
            current = item
        else:
            current = f"{current}{sep}{item}" if current else item
    if current:
        lines.append(current)
    return lines


def legend(diagram: Diagram, *, final: str = "double border") -> str:
    """The drawing conventions this diagram uses, in one line."""
    kinds = {fork.kind for fork in diagram.forks}
    keys = [f"{final}: final"]
    if EdgeKind.TIMER in kinds:
        keys.append("dashed: timer")
    if EdgeKind.INTERNAL in kinds:
        keys.append("dotted: fired by another entity")
    if any(fork.choice for fork in diagram.forks):
        keys.append("diamond: first branch whose guards hold")
    keys.append("label: trigger [guards] / money")
    return " · ".join(keys)


def senders(diagram: Diagram) -> str:
    """Who may send which trigger, in one line (empty when the lifecycle does not say):
    ``sent by advertiser or platform: create · provider: start, submit``."""
    if not diagram.senders:
        return ""
    return "sent by " + " · ".join(f"{' or '.join(who)}: {', '.join(triggers)}"
                                   for who, triggers in diagram.senders)
