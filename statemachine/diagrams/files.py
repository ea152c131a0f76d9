"""The committed ``diagrams/`` folder: one file per lifecycle and format, and its check.

DOT and Mermaid are text made without Graphviz, so they are what the drift check
compares; SVG and PNG are rendered from the DOT text by ``dot``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..engine.declaration import Domain
from .dot import RENDER_FORMATS, render, to_dot
from .hierarchy import HIERARCHY_NAME, hierarchy_dot, hierarchy_lifecycles
from .mermaid import to_mermaid
from .model import Diagram, build_diagram

__all__ = ["DEFAULT_FORMATS", "EXTENSIONS", "FORMATS", "TEXT_FORMATS", "check", "lifecycle_diagrams",
           "text_files", "write"]

EXTENSIONS = {"svg": "svg", "png": "png", "dot": "dot", "mermaid": "mmd"}
FORMATS = tuple(EXTENSIONS)
TEXT_FORMATS = ("dot", "mermaid")
DEFAULT_FORMATS = ("svg", "dot", "mermaid")


def lifecycle_diagrams(domain: Domain | None = None) -> list[Diagram]:
    """Every lifecycle's diagram, sorted by name (file order never depends on the domain's)."""
    if domain is None:
        from ..lifecycles import DOMAIN

        domain = DOMAIN
    return sorted((build_diagram(lc) for lc in domain.lifecycles), key=lambda d: d.name)


def _text(diagram: Diagram, fmt: str) -> str:
    return to_dot(diagram) if fmt == "dot" else to_mermaid(diagram)


def text_files(domain: Domain | None = None) -> dict[str, str]:
    """``{file name: text}`` of the DOT and Mermaid files, as the committed ones must be."""
    files = {
        f"{d.name}.{EXTENSIONS[fmt]}": _text(d, fmt)
        for d in lifecycle_diagrams(domain)
        for fmt in TEXT_FORMATS
    }
    files.update(_hierarchy_files(domain))
    return files


def _hierarchy_files(domain: Domain | None) -> dict[str, str]:
    """The hierarchy diagram (DOT only), when the domain has derived-status lifecycles."""
    if domain is None:
        from ..lifecycles import DOMAIN

        domain = DOMAIN
    if not hierarchy_lifecycles(domain):
        return {}
    from ..lifecycles.ads import STATUS_RULES

    return {f"{HIERARCHY_NAME}.dot": hierarchy_dot(domain, STATUS_RULES, "Ads Manager")}


def write(out: Path, formats: Sequence[str], domain: Domain | None = None) -> list[Path]:
    """Write every lifecycle in ``formats`` into ``out``; the paths written, in order.

    Text formats are written first, so a missing ``dot`` (which raises
    :class:`~.dot.GraphvizMissing`) still leaves the DOT and Mermaid files.
    """
    out.mkdir(parents=True, exist_ok=True)
    diagrams = lifecycle_diagrams(domain)
    written: list[Path] = []
    for fmt in sorted(formats, key=lambda f: f in RENDER_FORMATS):
        for diagram in diagrams:
            path = out / f"{diagram.name}.{EXTENSIONS[fmt]}"
            if fmt in TEXT_FORMATS:
                path.write_bytes(_text(diagram, fmt).encode("utf-8"))
            else:
                path.write_bytes(render(to_dot(diagram), fmt))
            written.append(path)
    for name, text in _hierarchy_files(domain).items():  # the hierarchy: DOT, and rendered
        if "dot" in formats:
            (out / name).write_bytes(text.encode("utf-8"))
            written.append(out / name)
        for fmt in (f for f in formats if f in RENDER_FORMATS):
            path = out / f"{HIERARCHY_NAME}.{EXTENSIONS[fmt]}"
            path.write_bytes(render(text, fmt))
            written.append(path)
    return written


def check(out: Path, domain: Domain | None = None) -> list[tuple[str, str]]:
    """``(file name, problem)`` for every DOT or Mermaid file in ``out`` that is
    missing, differs from what the code makes, or is made by no lifecycle."""
    expected = text_files(domain)
    problems: list[tuple[str, str]] = []
    for name, text in expected.items():
        path = out / name
        if not path.is_file():
            problems.append((name, "missing"))
        elif path.read_bytes() != text.encode("utf-8"):
            problems.append((name, "differs"))
    for path in sorted(out.glob("*")):
        if path.suffix in (".dot", ".mmd") and path.name not in expected:
            problems.append((path.name, "made by no lifecycle"))
    return problems
