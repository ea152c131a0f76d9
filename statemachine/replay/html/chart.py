"""Money over time: the ledger summed per period, drawn as one static SVG per currency.

Why Vega-Lite (declared with ``altair``, rendered by ``vl-convert-python``): the chart
is rendered *here*, offline, to plain SVG that goes into the page as it is. The page
then needs no script to show it: it opens from an e-mail or a ticket with scripts
blocked, prints as drawn, and costs about 40 KB a currency. ``plotly`` offline would
inline its whole library (4.8 MB of JavaScript in plotly 7.1) into every report and
draw only once that script ran. The sums are exact (``Decimal``); the picture gets the
amounts as decimal strings, which Vega reads as numbers to place the points. The exact
figures stay in the tables beside it.

One series per ledger kind, each with its own colour (Okabe-Ito, safe for colour
blindness), dash pattern and point shape, named in the legend: colour is never the
only signal. The period is a day when the ledger spans at most :data:`DAILY_SPAN`
days, a week (from Monday) up to :data:`WEEKLY_SPAN` days, a month beyond, so a
chart never has more than a few hundred points per series.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .graphs import Drawing

from ...money import format_amount
from ..report import LEDGER_KINDS, LedgerLine

__all__ = ["DAILY_SPAN", "WEEKLY_SPAN", "DailySums", "MoneySeries", "Painter", "add_line", "chart_spec",
           "chart_svg", "daily_sums", "money_over_time", "period_unit", "totals_of"]

#: A ledger spanning at most this many days is charted per day...
DAILY_SPAN = 92
#: ... at most this many per week (three years), and per month beyond.
WEEKLY_SPAN = 3 * 366

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)

#: Okabe-Ito colours, a dash pattern and a point shape for each ledger kind.
KIND_STYLE: Mapping[str, tuple[str, tuple[int, ...], str]] = {
    "refund": ("#D55E00", (1, 0), "circle"),
    "payment_released": ("#009E73", (8, 4), "square"),
    "hold_placed": ("#0072B2", (2, 3), "triangle-up"),
    "hold_released": ("#56B4E9", (10, 3, 2, 3), "diamond"),
    "charge": ("#CC79A7", (4, 2), "cross"),
}


@attrs.frozen
class MoneySeries:
    """One currency's money per period and ledger kind (zero where nothing moved)."""

    currency: str
    unit: str
    periods: tuple[date, ...]
    kinds: tuple[str, ...]
    amounts: Mapping[tuple[date, str], Decimal]

    def rows(self) -> list[tuple[str, list[str]]]:
        """``(period, amounts in kind order)``, amounts as the currency writes them."""
        zero = Decimal(0)
        return [(p.isoformat(), [format_amount(self.amounts.get((p, k), zero), self.currency)
                                 for k in self.kinds]) for p in self.periods]


def period_unit(first: date, last: date) -> str:
    """``day``, ``week`` or ``month``: see :data:`DAILY_SPAN`."""
    span = (last - first).days
    return "day" if span <= DAILY_SPAN else "week" if span <= WEEKLY_SPAN else "month"


def _start(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _next(day: date, unit: str) -> date:
    if unit == "week":
        return day + timedelta(days=7)
    if unit == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


#: Money per ``(currency, UTC day, ledger kind)``: one pass over a ledger, from which
#: the charts and the totals are drawn.
DailySums = dict[tuple[str, date, str], Decimal]


def add_line(sums: DailySums, line: LedgerLine) -> None:
    """Count one ledger line into ``sums`` (exact: ``Decimal`` addition)."""
    moment = line.time
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    key = (line.currency, moment.date(), line.kind)
    sums[key] = sums.get(key, _ZERO) + line.amount


def daily_sums(ledger: Iterable[LedgerLine],
               keep: Iterable[str] = ()) -> tuple[DailySums, dict[str, list[LedgerLine]]]:
    """The :data:`DailySums` of a whole ledger (what :func:`add_line` adds up, line by
    line), and the lines of each subject in ``keep``, in order: one pass.

    Built for half a million lines: a replay's ledger is in time order, so a line's UTC
    day is worked out only when it leaves the day of the line before (any order is
    still right, only slower); and the amounts are gathered per key and summed at the
    end (``sum`` of ``Decimal``: exact, and in C)."""
    kept: dict[str, list[LedgerLine]] = {subject: [] for subject in keep}
    gathered: dict[tuple[str, date, str], list[Decimal]] = {}
    get = gathered.get
    kept_get = kept.get
    start = end = _EPOCH
    day = _EPOCH.date()
    for line in ledger:
        moment = line.time
        if not start <= moment < end:
            day = (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).date()
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + _DAY
        key = (line.currency, day, line.kind)
        amounts = get(key)
        if amounts is None:
            gathered[key] = [line.amount]
        else:
            amounts.append(line.amount)
        if kept:
            lines = kept_get(line.subject)
            if lines is not None:
                lines.append(line)
    return {key: sum(amounts, _ZERO) for key, amounts in gathered.items()}, kept


def totals_of(sums: DailySums) -> dict[str, dict[str, Decimal]]:
    """``Report.totals()`` from the daily sums: the same exact figures (sums of sums:
    ``Decimal`` adds money exactly far beyond any ledger's size), kinds in the report's
    order, currencies sorted."""
    per: dict[str, dict[str, Decimal]] = {}
    for (currency, _, kind), amount in sums.items():
        kinds = per.setdefault(currency, {})
        kinds[kind] = kinds.get(kind, _ZERO) + amount
    order = {kind: i for i, kind in enumerate(LEDGER_KINDS)}
    return {currency: dict(sorted(per[currency].items(), key=lambda item: (order.get(item[0], 99), item[0])))
            for currency in sorted(per)}


def money_over_time(ledger: Iterable[LedgerLine] | DailySums) -> list[MoneySeries]:
    """The ledger (or its :data:`DailySums`) per currency, period and kind: currencies
    sorted, kinds in the report's order, every period from a currency's first to its
    last present."""
    if isinstance(ledger, dict):
        per_day: DailySums = ledger
    else:
        per_day = {}
        for line in ledger:
            add_line(per_day, line)
    if not per_day:
        return []
    days = [day for _, day, _ in per_day]
    unit = period_unit(min(days), max(days))
    sums: dict[str, dict[tuple[date, str], Decimal]] = {}
    for (currency, day, kind), amount in per_day.items():
        per = sums.setdefault(currency, {})
        key = (_start(day, unit), kind)
        per[key] = per.get(key, _ZERO) + amount
    series = []
    for currency in sorted(sums):
        amounts = sums[currency]
        first = min(p for p, _ in amounts)
        last = max(p for p, _ in amounts)
        periods = []
        while first <= last:
            periods.append(first)
            first = _next(first, unit)
        kinds = tuple(k for k in LEDGER_KINDS if any(kind == k for _, kind in amounts))
        kinds += tuple(sorted({kind for _, kind in amounts} - set(kinds)))
        series.append(MoneySeries(currency, unit, tuple(periods), kinds, amounts))
    return series


def _chart(series: MoneySeries, name: str, kinds: list[str], *, width: int, height: int) -> Any:
    # ``kinds``: every kind of every currency, so a kind looks the same in every chart
    # and one legend (the scales are shared across the stack) names them all.
    import altair as alt

    styles = [KIND_STYLE.get(k, ("#555555", (1, 0), "circle")) for k in kinds]
    legend = alt.Legend(title="ledger kind", orient="top", direction="horizontal", symbolStrokeWidth=2,
                        symbolSize=90, labelLimit=200, columnPadding=14)
    x_title = {"day": "day (UTC)", "week": "week from Monday (UTC)", "month": "month (UTC)"}[series.unit]
    time_unit: Literal["utcyearmonth", "utcyearmonthdate"] = (
        "utcyearmonth" if series.unit == "month" else "utcyearmonthdate")
    return (
        alt.Chart(alt.NamedData(name=name, format=alt.DataFormat(parse={"amount": "number"})))
        .mark_line(point=alt.OverlayMarkDef(size=40, filled=True), strokeWidth=2)
        .encode(
            x=alt.X("period:T", timeUnit=time_unit, title=x_title),
            y=alt.Y("amount:Q", title=f"{series.currency} per {series.unit}"),
            color=alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[s[0] for s in styles]),
                            legend=legend),
            strokeDash=alt.StrokeDash("kind:N", scale=alt.Scale(domain=kinds,
                                                                range=[list(s[1]) for s in styles]),
                                      legend=legend),
            shape=alt.Shape("kind:N", scale=alt.Scale(domain=kinds, range=[s[2] for s in styles]),
                            legend=legend),
        )
        .properties(width=width, height=height,
                    title=f"{series.currency}: money moved per {series.unit}, by ledger kind")
    )


def chart_spec(series: Sequence[MoneySeries], *, width: int = 640, height: int = 200) -> dict[str, Any]:
    """The Vega-Lite spec: one chart per currency, stacked (one render for them all)."""
    import altair as alt

    names = [f"money_{i}" for i in range(len(series))]
    kinds = [k for k in LEDGER_KINDS if any(k in s.kinds for s in series)]
    kinds += sorted({k for s in series for k in s.kinds} - set(kinds))
    charts = [_chart(s, name, kinds, width=width, height=height)
              for s, name in zip(series, names, strict=True)]
    described = ", ".join(f"{s.currency} ({', '.join(s.kinds)})" for s in series)
    whole = (
        alt.vconcat(*charts, spacing=36)
        .properties(description=(f"Line charts of money moved per {series[0].unit}, one per currency, "
                                 f"one line per ledger kind: {described}. The tables below have "
                                 "the figures."))
        .configure(background="white", font="Helvetica, Arial, sans-serif")
        .configure_axis(labelFontSize=11, titleFontSize=12)
        .configure_title(fontSize=14, anchor="start")
    )
    spec: dict[str, Any] = whole.to_dict()
    # The data is added after altair has checked the spec: validating thousands of
    # rows would cost more than the drawing.
    spec["datasets"] = {
        name: [{"period": p.isoformat(), "kind": k, "amount": str(s.amounts.get((p, k), Decimal(0)))}
               for p in s.periods for k in s.kinds]
        for s, name in zip(series, names, strict=True)
    }
    return spec


def chart_svg(series: Sequence[MoneySeries], *, width: int = 640, height: int = 200) -> str:
    """Every currency's chart in one SVG document (``<svg ...>...</svg>``), rendered
    offline by ``vl-convert`` (Vega in an embedded JavaScript engine, no browser)."""
    import vl_convert

    svg: str = vl_convert.vegalite_to_svg(chart_spec(series, width=width, height=height))
    return svg


def _warm_up() -> None:
    """Import altair, boot vl-convert's JavaScript engine (its first drawing costs
    about a second; the next ones a tenth) and set Graphviz up for the diagrams."""
    import vl_convert

    vl_convert.vegalite_to_svg({"data": {"values": [{"a": 0}]}, "mark": "point",
                                "encoding": {"x": {"field": "a", "type": "quantitative"}}})
    chart_spec([MoneySeries("XXX", "day", (date(2026, 1, 1),), ("refund",), {})])
    import shutil

    from .graphs import lean_environment

    binary = shutil.which("dot")
    if binary is not None:  # its probe of Graphviz, made now rather than when the diagrams come
        lean_environment(binary)


def _leave() -> None:
    """The helper's last task: its exit functions run (the Graphviz set-up's temporary
    directory goes), then the process ends without the rest of an interpreter's
    shutdown. The pool sees its process gone, which is all :meth:`Painter.close`
    waits for."""
    import atexit

    atexit._run_exitfuncs()
    os._exit(0)


class Painter:
    """Draws the chart (and the diagrams) in a process of its own, started before the replay.

    Rendering holds the interpreter's lock, and its first call (importing altair,
    booting Vega's JavaScript engine) takes about a second: started early, that start-up
    runs on another core while the replay runs here, and the chart is ready in a tenth
    of a second once the ledger is. The helper is *spawned* (a fresh interpreter), never
    forked: a fork of a process that already drew a chart would copy vl-convert's
    engine without the threads that run it, and wait for them forever. (As with any
    spawned helper, a script using one keeps its top level under
    ``if __name__ == "__main__":``.) ``with Painter() as painter:``; then
    ``render_html(..., painter=painter)``.
    """

    def __init__(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._warm = self._pool.submit(_warm_up)
        self._futures: list[Future[Any]] = [self._warm]

    def submit(self, series: Sequence[MoneySeries]) -> Future[str]:
        """:func:`chart_svg` of ``series``, being drawn in the helper process."""
        future = self._pool.submit(chart_svg, list(series))
        self._futures.append(future)
        return future

    def submit_diagrams(self, drawings: Sequence[Drawing]) -> Future[tuple[dict[str, str], str | None]]:
        """:func:`.graphs.draw_overlays` of ``drawings``, in the helper process: its
        threads wait on Graphviz there, not here, where they would take turns with
        this process' own work for the interpreter's lock."""
        from .graphs import draw_overlays

        future = self._pool.submit(draw_overlays, list(drawings))
        self._futures.append(future)
        return future

    def svg(self, series: Sequence[MoneySeries]) -> str:
        """:func:`chart_svg` of ``series``, drawn in the helper process."""
        return self.submit(series).result()

    def close(self) -> None:
        """Drop what is not drawn yet, and end the helper: it leaves at once
        (:func:`_leave`) rather than shut its interpreter and JavaScript engine down,
        which took most of a second after every report."""
        for future in self._futures:
            future.cancel()  # only those not started
        with contextlib.suppress(BrokenProcessPool, RuntimeError):  # already gone or shut down
            self._pool.submit(_leave)
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Painter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

