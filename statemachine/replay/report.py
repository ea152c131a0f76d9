"""The replay report: the JSON of ``event-log.md`` (byte for byte stable) and a text
view for people."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import msgspec
import orjson

from ..limits import printable
from ..money import format_amount
from ..timeutil import format_instant
from .campaigns import CampaignSummary, render_campaigns

__all__ = ["LEDGER_KINDS", "LedgerLine", "Rejection", "Report", "render_text", "to_json",
           "write_json"]

#: The ledger kinds of the spec, in the order totals list them.
LEDGER_KINDS = ("refund", "payment_released", "hold_placed", "hold_released", "charge")


class LedgerLine(msgspec.Struct, frozen=True, gc=False):
    """One money movement. A replay keeps one per movement: a C-built struct, untracked
    by the cyclic collector (see :class:`~statemachine.engine.runtime.Entity`)."""

    time: datetime
    kind: str
    subject: str
    amount: Decimal
    currency: str
    cause: str

    def to_dict(self) -> dict[str, str]:
        return {"time": format_instant(self.time), "kind": self.kind, "subject": self.subject,
                "amount": format_amount(self.amount, self.currency),
                "currency": self.currency, "cause": self.cause}


@attrs.frozen
class Rejection:
    line: int
    id: str | None
    error: str
    #: The log file, as given, when a replay reads more than one (issue 13); its lines
    #: are numbered per file. None for one log: the report is then what it always was.
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.file is not None:
            return {"file": self.file, "line": self.line, "id": self.id, "error": self.error}
        return {"line": self.line, "id": self.id, "error": self.error}


@attrs.frozen
class Report:
    as_of: datetime | None
    lines: int
    applied: int
    duplicates: int
    entities: Mapping[str, str]
    ledger: Sequence[LedgerLine]
    rejected: Sequence[Rejection]
    #: Ads Manager: each campaign's budget owners at the end (text report only; the
    #: spec's JSON has no such section). See :mod:`.campaigns`.
    campaigns: Sequence[CampaignSummary] = ()

    @property
    def exit_status(self) -> int:
        """0 when every line applied or was a duplicate, 1 when any was rejected."""
        return 1 if self.rejected else 0

    def totals(self) -> dict[str, dict[str, Decimal]]:
        sums: dict[str, dict[str, Decimal]] = {}
        for line in self.ledger:
            per = sums.setdefault(line.currency, {})
            per[line.kind] = per.get(line.kind, Decimal(0)) + line.amount
        # The spec's kinds in its order; a domain of one's own may book others: after them, sorted.
        return {
            currency: {kind: sums[currency][kind] for kind in _kinds(sums[currency])}
            for currency in sorted(sums)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": format_instant(self.as_of) if self.as_of else None,
            "stats": {"lines": self.lines, "applied": self.applied,
                      "duplicates": self.duplicates, "rejected": len(self.rejected)},
            "entities": dict(self.entities),
            "ledger": [line.to_dict() for line in self.ledger],
            "totals": {
                currency: {kind: format_amount(v, currency) for kind, v in kinds.items()}
                for currency, kinds in self.totals().items()
            },
            "rejected": [r.to_dict() for r in self.rejected],
        }


def _kinds(present: Mapping[str, object]) -> list[str]:
    """The ledger kinds of ``present``: the spec's in its order, then any others, sorted."""
    return [k for k in LEDGER_KINDS if k in present] + sorted(set(present) - set(LEDGER_KINDS))


def to_json(report: Report) -> bytes:
    """The report as JSON: two-space indented, keys in the spec's order, newline-ended."""
    pieces: list[bytes] = []
    write_json(report, pieces.append)
    return b"".join(pieces)


#: Entities or ledger lines rendered per piece by :func:`write_json`.
_CHUNK = 2048
_INDENT = orjson.OPT_INDENT_2


def _member(key: str, value: Any) -> bytes:
    """``  "key": value`` exactly as inside the whole report's indented dump."""
    return orjson.dumps({key: value}, option=_INDENT)[2:-2]


def _items(key: str, chunks: Iterator[Any], empty: bytes) -> Iterator[bytes]:
    """A large member in pieces: each chunk (a dict or list of part of the items) dumped
    at the same depth as in the whole report, so the pieces join to the same bytes."""
    opening = None
    first = True
    for chunk in chunks:
        text = _member(key, chunk)
        head, _, body = text.partition(b"\n")  # '  "key": {' / '  "key": ['
        if opening is None:
            opening = head
            yield head + b"\n"
        yield (b"" if first else b",\n") + body[:body.rindex(b"\n")]
        first = False
    if opening is None:
        yield b"  " + orjson.dumps(key) + b": " + empty
    else:
        yield b"\n  " + empty[-1:]


def write_json(report: Report, write: Callable[[bytes], object]) -> None:
    """:func:`to_json`'s bytes, written in pieces: the entities and the ledger are
    rendered a few thousand at a time, so a command printing the report of a long
    replay never holds a dict per ledger line, nor the whole text, at once."""
    entities = report.entities
    ledger = report.ledger

    def entity_chunks() -> Iterator[dict[str, str]]:
        chunk: dict[str, str] = {}
        for subject, state in entities.items():
            chunk[subject] = state
            if len(chunk) == _CHUNK:
                yield chunk
                chunk = {}
        if chunk:
            yield chunk

    def ledger_chunks() -> Iterator[list[dict[str, str]]]:
        for start in range(0, len(ledger), _CHUNK):
            yield [line.to_dict() for line in ledger[start:start + _CHUNK]]

    write(b"{\n")
    write(_member("as_of", format_instant(report.as_of) if report.as_of else None) + b",\n")
    write(_member("stats", {"lines": report.lines, "applied": report.applied,
                            "duplicates": report.duplicates, "rejected": len(report.rejected)})
          + b",\n")
    for piece in _items("entities", entity_chunks(), b"{}"):
        write(piece)
    write(b",\n")
    for piece in _items("ledger", ledger_chunks(), b"[]"):
        write(piece)
    write(b",\n")
    totals = {currency: {kind: format_amount(v, currency) for kind, v in kinds.items()}
              for currency, kinds in report.totals().items()}
    write(_member("totals", totals) + b",\n")
    write(_member("rejected", [r.to_dict() for r in report.rejected]) + b"\n}\n")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_text(report: Report, *, width: int = 100) -> str:
    """A people's summary: entities per lifecycle and state, money per currency, and
    the rejected lines. Rendered with ``rich`` at a fixed width, so it is stable."""
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    as_of = format_instant(report.as_of) if report.as_of else "-"
    console.print(f"Replay as of {as_of}: {_count(report.lines, 'line')}, {report.applied} applied, "
                  f"{_count(report.duplicates, 'duplicate')}, {len(report.rejected)} rejected")
    counts: dict[tuple[str, str], int] = {}
    for subject, state in report.entities.items():
        key = (subject.partition("/")[0], state)
        counts[key] = counts.get(key, 0) + 1
    states = Table(title="Entities by state", title_justify="left")
    states.add_column("kind")
    states.add_column("state")
    states.add_column("count", justify="right")
    for (kind, state), n in sorted(counts.items()):
        states.add_row(kind, state, str(n))
    console.print(states)
    money = Table(title="Money by currency", title_justify="left")
    money.add_column("currency")
    totals = report.totals()
    columns = [*LEDGER_KINDS, *sorted({k for t in totals.values() for k in t} - set(LEDGER_KINDS))]
    for kind in columns:
        money.add_column(kind, justify="right")
    for currency, kinds in totals.items():
        money.add_row(currency, *(format_amount(kinds[k], currency) if k in kinds else "-"
                                  for k in columns))
    console.print(money)
    render_campaigns(report.campaigns, console)
    if report.rejected:
        rejected = Table(title="Rejected lines", title_justify="left")
        files = any(r.file is not None for r in report.rejected)  # many logs (issue 13)
        if files:
            rejected.add_column("file", overflow="fold")
        rejected.add_column("line", justify="right")
        rejected.add_column("id")
        rejected.add_column("error", overflow="fold")
        for r in report.rejected:
            row = (str(r.line), printable(r.id) if r.id else "-", printable(r.error))
            rejected.add_row(*((printable(r.file or "-"), *row) if files else row))
        console.print(rejected)
    else:
        console.print("No rejected lines.")
    return out.getvalue()
