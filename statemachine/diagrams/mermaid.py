"""Mermaid: the same picture as the Graphviz one, as text GitHub renders in Markdown.

A ``flowchart`` rather than a ``stateDiagram``: only flowcharts let each arrow have
its own line style, and the conventions need that (timers dashed amber, transitions
another entity fires dotted purple, the replayed path thick blue). Everything else
follows the Graphviz rendering: rounded states, final states with a thick border,
groups as subgraphs, junction dots and choice diamonds from the same
:class:`~.model.Fork` s, labels ``trigger [guards] / money``.

Labels are quoted, with Mermaid's entity codes for the characters it would read as
syntax, so a guard such as "fee > 0" stays text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .model import INITIAL, Diagram, EdgeKind, Fork
from .overlay import Overlay
from .style import COLORS, KIND_COLOR, legend, printable, senders
from .trace import PathStep

__all__ = ["to_mermaid"]

_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", ";": "#59;"}
_RESERVED = {"end", "graph", "subgraph", "flowchart", "class", "classDef", "click", "style",
             "linkStyle", "direction"}
_INITIAL_ID = "initial_state"


def _text(value: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in printable(value))


def _id(name: str) -> str:
    """A node id Mermaid accepts: state names are identifiers; a reserved word gets a
    suffix (the label still shows the name)."""
    if name == INITIAL:
        return _INITIAL_ID
    return f"{name}_" if name in _RESERVED else name


def _label(*, trigger: str = "", when: str = "", description: str = "",
           guards: Sequence[str] = (), effects: Sequence[str] = (),
           steps: Sequence[PathStep] = ()) -> str:
    lines = [s.label for s in steps]
    if trigger:
        lines.append(f"{trigger} ({when})" if when else trigger)
    if description:
        lines.append(f"({description})")
    if guards:
        lines.append(f"[{', '.join(guards)}]")
    if effects:
        lines.append("/ " + ", ".join(effects))
    return "<br>".join(_text(line) for line in lines)


class _Writer:
    """Collects lines and numbers the links, for ``linkStyle``."""

    def __init__(self, overlay: Overlay | None) -> None:
        self.overlay = overlay
        self.lines: list[str] = []
        self.links = 0
        self.styles: dict[str, list[int]] = {}
        self.shapes: dict[str, list[str]] = {"junction": [], "choice": []}

    def link(self, source: str, target: str, kind: EdgeKind, label: str = "", *,
             arrow: bool = True, taken: bool = False) -> None:
        line = "-.-" if kind is not EdgeKind.EVENT else "---"
        if arrow:
            line = "-.->" if kind is not EdgeKind.EVENT else "-->"
        text = f'|"{label}"|' if label else ""
        self.lines.append(f"    {_id(source)} {line}{text} {_id(target)}")
        style = kind.value if self.overlay is None else "path" if taken else "faded"
        self.styles.setdefault(style, []).append(self.links)
        self.links += 1


_LINK_STYLES = {
    "event": f"stroke:{KIND_COLOR[EdgeKind.EVENT]}",
    "timer": f"stroke:{KIND_COLOR[EdgeKind.TIMER]},stroke-dasharray:6 4",
    "internal": f"stroke:{KIND_COLOR[EdgeKind.INTERNAL]},stroke-width:2px,stroke-dasharray:2 3",
    "path": f"stroke:{COLORS['path']},stroke-width:3px",
    "faded": f"stroke:{COLORS['faded']}",
}


def to_mermaid(diagram: Diagram, overlay: Overlay | None = None) -> str:
    """The Mermaid flowchart of ``diagram``; with ``overlay``, an entity's path on it."""
    if overlay is None:
        title, note = diagram.title, diagram.description
    else:
        title = f"{diagram.title}: {overlay.subject}, now {overlay.state}"
        note = "the path it took, numbered in order"
    out = _Writer(overlay)
    # The title is YAML front matter: a JSON string is a valid YAML scalar, colons and all.
    out.lines += ["---", f"title: {json.dumps(printable(title), ensure_ascii=False)}", "---", "flowchart TB",
                  f"    %% {printable(note)}", f"    %% {printable(legend(diagram, final='thick border'))}",
                  *([f"    %% {printable(senders(diagram))}"] if diagram.senders else []),
                  f'    {_INITIAL_ID}((" "))']
    for node in diagram.nodes:
        if node.group is None:
            out.lines.append(f"    {_node(node.name)}")
    for group, nodes in diagram.groups:
        out.lines.append(f'    subgraph group_{group} ["{_text(group)}"]')
        out.lines += [f"        {_node(node.name)}" for node in nodes]
        out.lines.append("    end")
        out.lines.append(f"    style group_{group} fill:#fff,stroke:{COLORS['cluster']},stroke-dasharray:5 4")
    for fork in diagram.forks:
        _fork(out, fork)
    out.lines += _classes(diagram, overlay, out.shapes)
    for style, indexes in sorted(out.styles.items()):
        out.lines.append(f"    linkStyle {','.join(map(str, indexes))} {_LINK_STYLES[style]}")
    if overlay is not None and overlay.descendants:  # Ads Manager: the children's states now
        rows = "<br>".join(f"{_text(subject)}: {_text(state)} ({_text(status)})"
                           for subject, state, status in overlay.descendants)
        out.lines.append(f'    descendants["<b>its children now</b><br>{rows}"]')
    return "\n".join(out.lines) + "\n"


def _node(name: str) -> str:
    return f'{_id(name)}("{_text(name)}")'


def _fork(out: _Writer, fork: Fork) -> None:
    steps = out.overlay.steps_in(fork) if out.overlay is not None else ()
    taken = [s for s in fork.sources if any(step.source == s for step in steps)]
    plain = [s for s in fork.sources if s not in taken]
    head = {"trigger": fork.trigger, "when": fork.when,
            "description": fork.description if fork.kind is EdgeKind.INTERNAL else "",
            "guards": fork.guards, "effects": fork.effects}
    if fork.choice:
        target = f"{fork.ident}_choice"
        out.lines.append(f'    {target}{{" "}}')
        out.shapes["choice"].append(target)
        _in_links(out, fork, target, taken, plain, head, steps, to_choice=True)
        for branch in fork.branches:
            on = [s for s in steps if s.dest == branch.dest]
            label = _label(guards=branch.guards, effects=branch.effects, steps=on)
            out.link(target, branch.dest, fork.kind, label, taken=bool(on))
        return
    branch = fork.branches[0]
    whole = {**head, "guards": fork.guards + branch.guards, "effects": fork.effects + branch.effects}
    _in_links(out, fork, branch.dest, taken, plain, whole, steps, to_choice=False)


def _in_links(out: _Writer, fork: Fork, target: str, taken: Sequence[str], plain: Sequence[str],
              label: dict, steps: Sequence[PathStep], *, to_choice: bool) -> None:
    for number, source in enumerate(taken):
        on = () if to_choice else [s for s in steps if s.source == source]
        text = _label(**label, steps=on) if not plain and number == 0 else _label(steps=on)
        out.link(source, target, fork.kind, text, taken=True)
    if not plain:
        return
    if len(plain) == 1:
        out.link(plain[0], target, fork.kind, _label(**label))
        return
    junction = f"{fork.ident}_junction"
    out.lines.append(f'    {junction}((" "))')
    out.shapes["junction"].append(junction)
    for source in plain:
        out.link(source, junction, fork.kind, arrow=False)
    out.link(junction, target, fork.kind, _label(**label))


def _classes(diagram: Diagram, overlay: Overlay | None, shapes: dict[str, list[str]]) -> list[str]:
    lines = [
        f"    classDef state fill:{COLORS['state']},stroke:{COLORS['border']},color:{COLORS['text']}",
        f"    classDef final fill:{COLORS['final']},stroke:{COLORS['border']},color:{COLORS['text']},"
        "stroke-width:3px",
        "    classDef initial fill:#000,stroke:#000",
        f"    classDef junction fill:{COLORS['border']},stroke:{COLORS['border']}",
        f"    classDef choice fill:#fff,stroke:{COLORS['border']}",
    ]
    states = [n for n in diagram.nodes if not n.final]
    finals = [n for n in diagram.nodes if n.final]
    members = {
        "state": [_id(n.name) for n in states],
        "final": [_id(n.name) for n in finals],
        "initial": [_INITIAL_ID],
        **shapes,
    }
    if overlay is not None:
        lines += [
            f"    classDef visited fill:{COLORS['visited']},stroke:{COLORS['path']},stroke-width:2px",
            f"    classDef current fill:{COLORS['current']},stroke:{COLORS['current']},color:#fff,"
            "stroke-width:3px",
        ]
        members["visited"] = [_id(n) for n in sorted(overlay.visited - {INITIAL, overlay.state})]
        members["current"] = [_id(overlay.state)]
    for name, ids in members.items():
        if ids:
            lines.append(f"    class {','.join(ids)} {name}")
    return lines
