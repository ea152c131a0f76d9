"""Extra sections of the HTML report: what other passes over the log found.

The page builder draws the replay itself; other passes (``--verify`` comparing a
recorded ledger, ``--what-if`` replaying under a draft policy, or anything later) hand
it :class:`Section` objects: a title, a few sentences and tables of text. They need not
know HTML. :func:`section_from` turns any plain result object (an ``attrs`` class, a
dataclass, a ``msgspec`` struct, a mapping) into a section, field by field: scalar
fields make a summary table, sequences of records a table each (nested records become
dotted columns), mappings a key/value table.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs
import msgspec

from ...timeutil import format_instant

__all__ = ["Section", "Table", "section_from"]


@attrs.frozen
class Table:
    """A table of text: ``columns`` head it, every row has one cell per column.

    ``total`` is the number of rows there were when more than ``rows`` holds (the page
    then says how many are shown)."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total: int | None = None

    def __attrs_post_init__(self) -> None:
        for number, row in enumerate(self.rows, start=1):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.caption!r}: row {number} has {len(row)} cells "
                                 f"for {len(self.columns)} columns")


@attrs.frozen
class Section:
    """One more part of the page, after the rejected lines: ``title`` (a heading),
    ``paragraphs`` (plain text) and ``tables``. ``anchor`` is its id in the page
    (default: made from the title)."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    anchor: str = ""

    @property
    def ident(self) -> str:
        return self.anchor or "section-" + (re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "x")


_SCALARS = (str, int, float, Decimal, datetime, date, bool, Enum, type(None))


def text(value: object) -> str:
    """A cell's text: instants in RFC 3339 UTC, amounts exactly, ``None`` as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _fields(value: object) -> dict[str, Any] | None:
    """The fields of a record, in declaration order; ``None`` for anything else."""
    if attrs.has(type(value)):
        return {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}  # type: ignore[arg-type]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, msgspec.Struct):
        return {name: getattr(value, name) for name in value.__struct_fields__}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return None


def _flat(value: object, prefix: str = "") -> dict[str, str]:
    fields = _fields(value)
    if fields is None or isinstance(value, _SCALARS):
        return {prefix or "value": text(value)}
    cells: dict[str, str] = {}
    for name, item in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if _fields(item) is not None and not isinstance(item, _SCALARS):
            cells.update(_flat(item, key))
        elif isinstance(item, _SCALARS):
            cells[key] = text(item)
        else:
            cells[key] = ", ".join(text(i) for i in item) if isinstance(item, Iterable) else text(item)
    return cells


def _records_table(caption: str, items: Sequence[object], limit: int) -> Table:
    flats = [_flat(item) for item in items[:limit]]
    columns: dict[str, None] = {}
    for flat in flats:
        columns.update(dict.fromkeys(flat))
    return Table(caption, tuple(columns), tuple(tuple(f.get(c, "") for c in columns) for f in flats),
                 total=len(items) if len(items) > limit else None)


def _human(name: str) -> str:
    return name.replace("_", " ")


def section_from(title: str, result: object, *, summary: str = "", row_limit: int = 2000) -> Section:
    """A :class:`Section` showing ``result``'s fields (see the module's docstring);
    at most ``row_limit`` rows per table, the page saying how many there were."""
    fields = _fields(result)
    if fields is None:
        raise TypeError(f"cannot show a {type(result).__name__} as a section: expected an attrs "
                        "class, a dataclass, a msgspec struct or a mapping")
    paragraphs = (summary,) if summary else ()
    scalars: list[tuple[str, str]] = []
    tables: list[Table] = []
    for name, value in fields.items():
        if isinstance(value, _SCALARS):
            scalars.append((_human(name), text(value)))
        elif isinstance(value, Mapping):
            flats = {str(k): _flat(v) for k, v in value.items()}
            columns: dict[str, None] = {}
            for flat in flats.values():
                columns.update(dict.fromkeys(flat))
            tables.append(Table(_human(name), ("key", *columns),
                                tuple((k, *(f.get(c, "") for c in columns)) for k, f in flats.items())))
        elif _fields(value) is not None:
            tables.append(Table(_human(name), ("field", "value"), tuple(_flat(value).items())))
        elif isinstance(value, Iterable):
            items = list(value)
            if items:
                tables.append(_records_table(_human(name), items, row_limit))
            else:
                scalars.append((_human(name), "none"))
        else:
            scalars.append((_human(name), text(value)))
    if scalars:
        tables.insert(0, Table("summary", ("field", "value"), tuple(scalars)))
    return Section(title, paragraphs, tuple(tables))
