"""The hierarchy diagram: lifecycles linked by :class:`~..engine.declaration.Parent`
whose status is derived (``Lifecycle.status``), drawn as one tree.

Generated from the declaration like the lifecycle diagrams: one box per level with
its own states, one arrow per parent link labelled with what the parent's steps do to
its children (the actions a parent runs on entering a final state, and those of its
switches), and the derived-status rules as a legend (``status_rules``, first match
wins). For the Ads Manager it is ``diagrams/ads_manager.svg``: campaign → ad group →
ad, the delete and end cascades, the owners' reconciles.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import graphviz

from ..engine.declaration import INITIAL, Domain, Lifecycle
from .style import COLORS

__all__ = ["HIERARCHY_NAME", "hierarchy_dot", "hierarchy_lifecycles"]

#: The file name (without extension) the Ads Manager hierarchy is written to.
HIERARCHY_NAME = "ads_manager"
FONT = "Helvetica"


def hierarchy_lifecycles(domain: Domain) -> list[Lifecycle]:
    """The lifecycles with a derived status, parents before children."""
    chosen = [lc for lc in domain.lifecycles if lc.status is not None]
    depth = {}
    by_kind = {lc.kind: lc for lc in chosen}

    def level(lc: Lifecycle) -> int:
        if lc.name not in depth:
            parent = by_kind.get(lc.parent.kind) if lc.parent is not None else None
            depth[lc.name] = 0 if parent is None else level(parent) + 1
        return depth[lc.name]

    return sorted(chosen, key=lambda lc: (level(lc), lc.name))


def _html(lines: Sequence[str]) -> str:
    return "<" + "<br/>".join(lines) + ">"


def _cascades(parent: Lifecycle) -> list[str]:
    """What the parent's steps do to its children: its entry actions and its switches'."""
    labels = {a.name: a.label or a.name for a in parent.actions}
    lines = []
    for state in parent.states:
        for action in state.on_enter:
            lines.append(f"{state.name}: {labels[action]}")
    seen = set()
    for t in parent.transitions:
        if INITIAL in t.sources or t.internal:
            continue
        for action in t.actions:
            if (t.trigger, action) not in seen:
                seen.add((t.trigger, action))
                lines.append(f"{t.trigger}: {labels[action]}")
    return lines


def hierarchy_dot(domain: Domain, rules: Sequence[tuple[str, str]], title: str) -> str:
    """The DOT source of the hierarchy of ``domain``'s derived-status lifecycles."""
    levels = hierarchy_lifecycles(domain)
    graph = graphviz.Digraph(
        name=HIERARCHY_NAME,
        graph_attr={"label": _html([f'<font point-size="18"><b>{escape(title)}</b></font>',
                                    f'<font point-size="11" color="{COLORS["muted"]}">'
                                    "every level stores only its own state; the effective status"
                                    " is derived</font>"]),
                    "labelloc": "t", "fontname": FONT, "rankdir": "TB", "pad": "0.3",
                    "bgcolor": "white", "ranksep": "0.6"},
        node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": COLORS["state"],
                   "color": COLORS["border"], "fontname": FONT, "fontsize": "12",
                   "fontcolor": COLORS["text"], "margin": "0.2,0.1"},
        edge_attr={"fontname": FONT, "fontsize": "10", "color": "#6b46c1"},
    )
    for lc in levels:
        states = ", ".join(s.name + (" (final)" if s.final else "") for s in lc.states)
        timers = [f"timer: {t.trigger} at {t.delay or t.name}" for t in lc.timers]
        lines = [f"<b>{escape(lc.title)}</b>", f'<font color="{COLORS["muted"]}">{escape(states)}</font>',
                 *(f'<font color="#b7791f">{escape(t)}</font>' for t in timers)]
        graph.node(lc.name, label=_html(lines), tooltip=lc.description or lc.title)
    names = {lc.kind: lc for lc in levels}
    for lc in levels:
        if lc.parent is None or lc.parent.kind not in names:
            continue
        parent = names[lc.parent.kind]
        lines = [f"<b>1 → n</b> (data.{escape(lc.parent.field)})",
                 *(f'<font color="#6b46c1">{escape(x)}</font>' for x in _cascades(parent))]
        graph.edge(parent.name, lc.name, label=_html(lines), style="solid", penwidth="1.6")
    rows = "".join(f'<tr><td align="left"><b>{n}. {escape(name)}</b></td>'
                   f'<td align="left">{escape(why)}</td></tr>'
                   for n, (name, why) in enumerate(rules, 1))
    graph.node("legend", shape="plaintext", style="", label=(
        '<<table border="1" cellborder="0" cellspacing="2" color="#a0aec0">'
        '<tr><td colspan="2" align="left"><b>effective status (first match wins)</b></td></tr>'
        f"{rows}</table>>"))
    if levels:
        graph.edge(levels[-1].name, "legend", style="invis")
    return graph.source
