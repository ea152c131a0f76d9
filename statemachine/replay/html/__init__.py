"""The replay report as one self-contained HTML file, for people who would rather look.

``python -m statemachine replay LOG --html FILE``, or in the library::

    from statemachine.replay.html import replay_traced_path, write_html

    traced = replay_traced_path("log.jsonl")            # the report, and every entity's path
    write_html("report.html", traced.report, traced.paths, source="log.jsonl")

A caller with something else to do meanwhile (the command line writes the usual report)
starts the page first and finishes it after: ``with start_html(report, paths) as draft:
...; draft.write("report.html")`` (the chart and diagrams are drawn meanwhile).

Extra parts (the findings of ``--verify``, the differences of ``--what-if``) go in as
``sections=[section_from("Verify", verification), ...]`` (see :mod:`.sections`); the
command line builds them with :mod:`.findings`.

Needs the ``html`` extra (``jinja2``, ``altair``, ``vl-convert-python``) and Graphviz's
``dot`` for the diagrams. This package sits above :mod:`statemachine.replay` and
:mod:`statemachine.diagrams`; neither imports it.
"""

from .page import Limits, MissingExtra, PageDraft, reason_of, render_html, require, start_html, write_html
from .paths import PathBook, Traced, replay_traced, replay_traced_path
from .sections import Section, Table, section_from

__all__ = [
    "Limits",
    "MissingExtra",
    "PageDraft",
    "PathBook",
    "Section",
    "Table",
    "Traced",
    "reason_of",
    "render_html",
    "replay_traced",
    "replay_traced_path",
    "require",
    "section_from",
    "start_html",
    "write_html",
]
