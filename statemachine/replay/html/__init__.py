"""The replay report as one self-contained HTML file, for people who would rather look.

``python -m statemachine replay LOG --html FILE``, or in the library::

    from statemachine.replay.html import replay_traced_path, write_html

    traced = replay_traced_path("log.jsonl")            # the report, and every entity's path
    write_html("report.html", traced.report, traced.paths, source="log.jsonl")

Extra parts (the findings of ``--verify``, the differences of ``--what-if``) go in as
``sections=[section_from("Verify", verification), ...]`` (see :mod:`.sections`); the
command line builds them with :mod:`.findings`.

Needs the ``html`` extra (``jinja2``, ``altair``, ``vl-convert-python``) and Graphviz's
``dot`` for the diagrams. This package sits above :mod:`statemachine.replay` and
:mod:`statemachine.diagrams`; neither imports it.
"""

from .page import Limits, MissingExtra, reason_of, render_html, require, write_html
from .paths import PathBook, Traced, replay_traced, replay_traced_path
from .sections import Section, Table, section_from

__all__ = [
    "Limits",
    "MissingExtra",
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
    "write_html",
]
