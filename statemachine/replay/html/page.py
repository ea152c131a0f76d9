"""The replay report as one self-contained HTML file.

:func:`render_html` builds the page from a :class:`~statemachine.replay.Report` and,
when the replay recorded them (:func:`~.paths.replay_traced`), the entities' paths. Every
style, script and picture is inside the file: the money chart and the lifecycle
diagrams are SVG drawn here (:mod:`.chart`, :mod:`.graphs`), the script (search,
filters) is inline, and nothing is fetched when the page is viewed, so it opens from an
e-mail attachment or a ticket. Without scripts the page still shows everything but the
entity search.

It stays small on big logs. Whatever is counted or summed covers the whole replay
(stats, states, totals, the chart, the rejections per reason); what is listed one by
one is bounded (:class:`Limits`): the rejected lines, the searchable entities, and the
entities shown in full (diagram, steps, ledger lines). Past a bound the page says how
many it shows of how many, and how they were chosen (:mod:`.sample`).

The page is built with Jinja2 (autoescaping: every subject, id and reason comes from
the log and is text, never markup). The same report gives the same bytes.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from decimal import Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ...diagrams.trace import PathStep
from ...engine.declaration import INITIAL, Domain
from ...money import format_amount
from ...timeutil import format_instant
from ..report import LEDGER_KINDS, LedgerLine, Report
from .chart import Painter, chart_svg, daily_sums, money_over_time, totals_of
from .paths import PathBook
from .sample import group_by_kind_and_state, sample_groups
from .sections import Section

if TYPE_CHECKING:
    from .graphs import Drawing

__all__ = ["Limits", "MissingExtra", "PageDraft", "reason_of", "render_html", "require", "start_html",
           "write_html"]

_EXTRA_HINT = "pip install 'collab-lifecycles[html]'"


class MissingExtra(RuntimeError):
    """A package the HTML report needs is not installed (one line, with the fix)."""


def require() -> None:
    """Raise :class:`MissingExtra` unless the report's packages are installed: call it
    before a long replay rather than fail after it. (Looked up, not imported: altair
    takes a good part of a second to import, and the chart is drawn in a helper.)"""
    from importlib.util import find_spec

    missing = [package for module, package in (("jinja2", "jinja2"), ("altair", "altair"),
                                                ("vl_convert", "vl-convert-python"))
               if find_spec(module) is None]
    if missing:
        raise MissingExtra(f"the HTML report needs {', '.join(missing)}: {_EXTRA_HINT}")


@attrs.frozen
class Limits:
    """How much a report lists one by one (everything counted is always complete).

    ``details``: entities shown in full (diagram, steps, ledger), about 20 KB each
    and a run of Graphviz (a few milliseconds) each;
    ``listed``: entities in the search (kind, id, state), about 12 bytes each;
    ``rejected``: rejected lines listed, about 200 bytes each. With the defaults a
    report of a million events stays well under 20 MB.
    """

    details: int = 100
    listed: int = 200_000
    rejected: int = 5_000


_SUBJECT_PREFIX = re.compile(r"^[a-z_]+/[^\s:]+: ")
_QUOTED = re.compile(r"'[^']*'")


def reason_of(error: str) -> str:
    """The kind of a rejection, to filter by: its message without the subject it names
    and without the details after the first colon, quoted values elided
    (``order/O-2: cannot approve in state agreed`` -> ``cannot approve in state agreed``;
    ``malformed JSON: unexpected end of data ...`` -> ``malformed JSON``)."""
    text = _SUBJECT_PREFIX.sub("", error, count=1)
    text = text.split(": ", 1)[0]
    return _QUOTED.sub("'…'", text).strip() or error


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("statemachine.replay.html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _asset(name: str) -> str:
    return (files("statemachine.replay.html") / "templates" / name).read_text("utf-8")


def _version() -> str:
    try:
        return importlib.metadata.version("collab-lifecycles")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown"


def _script_json(value: object) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>``)."""
    return orjson.dumps(value).decode().replace("<", "\\u003c")


def _money(amount: Decimal, currency: str) -> str:
    return format_amount(amount, currency)


def _cause(step: PathStep) -> str:
    if step.timer is not None and step.via is not None:
        return f"timer {step.timer} of {step.via}"
    if step.timer is not None:
        return f"timer {step.timer}"
    if step.via is not None:
        return f"cascade from {step.via}"
    return "event"


class PageDraft:
    """A page being built: made by :func:`start_html`, finished by :meth:`render`.

    Starting does the passes over the whole report (the grouping and samples of the
    entities, the daily sums of the ledger, the picked steps) and hands the drawing to
    helpers: the chart to the painter's process, the diagrams to Graphviz processes
    (from a thread here). They draw on another core while the caller does something
    else: the command line writes the usual report meanwhile, so the drawing costs
    nothing on its wall clock. :meth:`render` then counts the rest, takes the drawings
    and fills the template. ``with start_html(...) as draft:`` (or :meth:`close`) ends
    the helper thread whether the page was rendered or not.
    """

    def __init__(self, report: Report, paths: PathBook | None, *, title: str, source: str | None,
                 domain: Domain, limits: Limits, sections: Sequence[Section],
                 painter: Painter | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from .graphs import draw_overlays, overlay_sources

        self._report = report
        self._limits = limits
        self._fixed = {"title": title, "source": source, "traced": paths is not None, "limits": limits,
                       "sections": list(sections)}
        entities = report.entities
        # One grouping of every entity by kind and state: the tables count it, and the
        # two samples (the searchable list, the entities shown in full) are cut from it.
        self._groups = groups = group_by_kind_and_state(entities)
        self._listed = listed = (groups if len(entities) <= limits.listed
                                 else sample_groups(groups, limits.listed))
        self._listed_count = (len(entities) if listed is groups
                              else sum(len(m) for m in listed.values()))
        self._detailed = detailed = _detailed(entities, listed, self._listed_count, limits.details)
        # One pass over the ledger: the daily sums (chart and totals) and the lines of
        # the entities shown in full. The chart goes to the painter at once.
        self._sums, self._ledgers = daily_sums(report.ledger, detailed)
        self._series = money_over_time(self._sums)
        self._chart = _submit(painter, self._series)
        self._traces = traces = paths.traces(detailed, entities) if paths is not None else {}
        self._drawings = drawings = overlay_sources([traces[s] for s in detailed if s in traces], domain)
        self._threads: ThreadPoolExecutor | None = None
        pending = _submit_diagrams(painter, drawings)
        if pending is None:  # no painter (or a broken one): Graphviz from a thread here
            self._threads = ThreadPoolExecutor(1)
            pending = self._threads.submit(draw_overlays, drawings)
        self._diagrams = pending

    def render(self) -> str:
        """The page (waits for the chart and the diagrams)."""
        report = self._report
        context = _tallies(report, self._groups, self._detailed, self._traces, self._ledgers, self._listed,
                           self._listed_count, self._limits)
        context["totals"] = [(currency, {k: _money(v, currency) for k, v in per.items()})
                             for currency, per in totals_of(self._sums).items()]
        chart = _drawn(self._chart, self._series)
        diagrams, no_diagrams = _drawn_diagrams(self._diagrams, self._drawings)
        for detail in context["details"]:
            detail["svg"] = diagrams.get(detail["subject"])
        context.update(self._fixed)
        context.update({
            "version": _version(),
            "series": self._series,
            "chart": chart,
            "no_diagrams": no_diagrams,
            "style": _asset("report.css"),
            "script": _asset("report.js"),
        })
        html: str = _environment().get_template("report.html.j2").render(context)
        return html

    def write(self, path: str | Path) -> int:
        """Write :meth:`render` to ``path`` (UTF-8); returns the bytes written.
        ``OSError`` when it cannot be written."""
        data = self.render().encode("utf-8")
        Path(path).write_bytes(data)
        return len(data)

    def close(self) -> None:
        """End the helper thread, if any (after the diagrams it is drawing)."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)

    def __enter__(self) -> PageDraft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _submit(painter: Painter | None, series: Sequence[Any]) -> Future[str] | None:
    if painter is None or not series:
        return None
    try:
        return painter.submit(series)
    except (BrokenProcessPool, RuntimeError):  # died before, or shut down: draw it here
        return None


def _drawn(pending: Future[str] | None, series: Sequence[Any]) -> str | None:
    """The chart: the painter's, or drawn here if there is none or it broke."""
    if pending is not None:
        try:
            return pending.result()
        except (BrokenProcessPool, OSError):
            pass  # the helper died (killed, out of memory): draw it here after all
    return chart_svg(series) if series else None


def _submit_diagrams(painter: Painter | None,
                     drawings: Sequence[Drawing]) -> Future[tuple[dict[str, str], str | None]] | None:
    if painter is None or not drawings:
        return None
    try:
        return painter.submit_diagrams(drawings)
    except (BrokenProcessPool, RuntimeError):  # died before, or shut down: draw them here
        return None


def _drawn_diagrams(pending: Future[tuple[dict[str, str], str | None]],
                    drawings: Sequence[Drawing]) -> tuple[dict[str, str], str | None]:
    """``subject -> SVG``, and why there are none when Graphviz is missing (the page is
    still worth having: steps, ledger, states). Drawn here if the painter broke."""
    try:
        return pending.result()
    except (BrokenProcessPool, OSError):
        from .graphs import draw_overlays

        return draw_overlays(drawings)


def _detailed(entities: Mapping[str, str], listed: dict[tuple[str, str], list[str]], listed_count: int,
              limit: int) -> list[str]:
    """The entities shown in full: :func:`.sample.stratified` of the listed ones, in
    the report's order."""
    if listed_count <= limit:
        chosen = {s: None for members in listed.values() for s in members}
    else:
        chosen = {s: None for members in sample_groups(listed, limit).values() for s in members}
    if len(chosen) == len(entities):
        return list(entities)
    return [subject for subject in entities if subject in chosen]


def _ledger_row(line: LedgerLine) -> dict[str, str]:
    return {"time": format_instant(line.time), "kind": line.kind,
            "amount": _money(line.amount, line.currency), "currency": line.currency, "cause": line.cause}


def _tallies(report: Report, groups: dict[tuple[str, str], list[str]], detailed: Sequence[str],
             traces: dict[str, Any], ledgers: dict[str, list[LedgerLine]],
             listed: dict[tuple[str, str], list[str]], listed_count: int, limits: Limits) -> dict[str, Any]:
    """Everything counted, summed or listed: the page's tables and the entity list."""
    entities = report.entities
    kinds: dict[str, int] = {}
    for (kind, _), members in groups.items():
        kinds[kind] = kinds.get(kind, 0) + len(members)
    reasons: dict[str, int] = {}
    for rejection in report.rejected:
        reason = reason_of(rejection.error)
        reasons[reason] = reasons.get(reason, 0) + 1
    details = []
    for number, subject in enumerate(detailed):
        trace = traces.get(subject)
        details.append({
            "ident": f"entity-{number}",
            "subject": subject,
            "kind": subject.partition("/")[0],
            "state": entities[subject],
            "lifecycle": trace.lifecycle if trace else None,
            "steps": [{"number": s.number, "trigger": s.trigger,
                       "source": "(created)" if s.source == INITIAL else s.source, "dest": s.dest,
                       "event": s.event, "time": format_instant(s.time), "cause": _cause(s)}
                      for s in (trace.steps if trace else ())],
            "ledger": [_ledger_row(line) for line in ledgers[subject]],
        })
    listing = {
        "groups": [[kind, state, [s[len(kind) + 1:] for s in members]]
                   for (kind, state), members in listed.items()],
        "details": {d["subject"]: d["ident"] for d in details},
    }
    return {
        "as_of": format_instant(report.as_of) if report.as_of else None,
        "stats": {"lines": report.lines, "applied": report.applied, "duplicates": report.duplicates,
                  "rejected": len(report.rejected)},
        "kinds": sorted(kinds.items()),
        "states": sorted((kind, state, len(members)) for (kind, state), members in groups.items()),
        "entity_count": len(entities),
        "ledger_kinds": LEDGER_KINDS,
        "ledger_lines": len(report.ledger),
        "reasons": sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        "rejected": [(r, reason_of(r.error)) for r in report.rejected[:limits.rejected]],
        "rejected_total": len(report.rejected),
        "listed": listed_count,
        "details": details,
        "listing": _script_json(listing),
    }


def render_html(report: Report, paths: PathBook | None = None, *, title: str = "Replay report",
                source: str | None = None, domain: Domain | None = None, limits: Limits | None = None,
                sections: Sequence[Section] = (), painter: Painter | None = None) -> str:
    """The report as one self-contained HTML document.

    ``paths`` (from :func:`~.paths.replay_traced`) gives the entities' steps and
    diagrams; without it the page lists entities and states only. ``source`` names the
    log in the page. ``sections`` are extra parts (``--verify``, ``--what-if``: see
    :mod:`.sections`), drawn after the rejected lines in the order given. ``painter``
    draws the chart in a helper process started before the replay (:class:`.chart.Painter`);
    without one it is drawn here. Raises
    :class:`MissingExtra` without the ``html`` extra's packages; without Graphviz's
    ``dot`` the page has no diagrams and says why.
    """
    with start_html(report, paths, title=title, source=source, domain=domain, limits=limits,
                    sections=sections, painter=painter) as draft:
        return draft.render()


def start_html(report: Report, paths: PathBook | None = None, *, title: str = "Replay report",
               source: str | None = None, domain: Domain | None = None, limits: Limits | None = None,
               sections: Sequence[Section] = (), painter: Painter | None = None) -> PageDraft:
    """:func:`render_html` in two halves: the passes over the report now, the drawing
    handed to helpers; :meth:`PageDraft.render` when the page is wanted (see
    :class:`PageDraft`). Same arguments, same page."""
    require()
    if domain is None:
        from ...lifecycles import DOMAIN

        domain = DOMAIN
    return PageDraft(report, paths, title=title, source=source, domain=domain, limits=limits or Limits(),
                     sections=sections, painter=painter)


def write_html(path: str | Path, report: Report, paths: PathBook | None = None, **options: Any) -> int:
    """Write :func:`render_html` to ``path`` (UTF-8); returns the bytes written.
    ``OSError`` when it cannot be written."""
    data = render_html(report, paths, **options).encode("utf-8")
    Path(path).write_bytes(data)
    return len(data)
