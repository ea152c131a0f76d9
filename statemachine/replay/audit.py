"""Audit: hold a recorded ledger against the one the rules compute (``replay --verify``).

``policy-versions.md``, "Audit". Another system (billing) wrote a ledger, as JSON Lines
or CSV with the report's ledger fields; the replay computes its own, and the two are
compared line by line keyed by ``(cause, subject, kind)``. Every recorded line ends
as one finding: ``matched``, ``differs``, ``unexpected``, ``duplicate`` or
``malformed``; every computed line the recorded file lacks is ``missing``.

Streaming: a recorded ledger of millions of lines is read once, line by line, into a
temporary SQLite file (an index on disk), never held as Python objects; the
comparison is two ordered queries over it. Memory grows with the findings (the
output), not with the matched lines. The computed ledger is the replay report's own.

Reading of the spec: a key the rules produce ``n`` times (none of our lifecycles does
so for ``n > 1``, but nothing forbids it) is compared occurrence by occurrence, in
order; recorded occurrences beyond ``n`` are duplicates (the first of them
``unexpected`` when ``n`` is 0). With ``n`` = 1 this is the spec's rule: the first
recorded line is compared and each later one is a duplicate. A CSV header with an
unknown or repeated column is refused like one that lacks a column (exit 2): a
header mistake is one problem, not one per line.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import msgspec
import orjson

from ..money import MoneyError, format_amount, minor_units, parse_decimal, validate_amount
from ..timeutil import format_instant, parse_instant
from .report import LEDGER_KINDS, LedgerLine

__all__ = [
    "FIELDS",
    "Differs",
    "Duplicate",
    "Malformed",
    "Money",
    "RecordedLedger",
    "RecordedLine",
    "TotalsRow",
    "Verification",
    "VerifyError",
    "render_verify_text",
    "verify",
]

#: The recorded ledger's fields: the report's ledger fields, in the report's order.
FIELDS = ("time", "kind", "subject", "amount", "currency", "cause")
JSON_LINES = (".jsonl", ".ndjson")
CSV = (".csv",)
#: Rows of the text table of findings (the JSON lists them all).
TABLE_ROWS = 50


class VerifyError(Exception):
    """The recorded ledger cannot be read at all (exit 2): one line saying why."""


# -- findings: plain typed data ----------------------------------------------------------
class Money(msgspec.Struct, frozen=True, gc=False):
    """One side of a ``differs`` finding: amount, currency and time as that side says."""

    amount: str
    currency: str
    time: str

    def to_dict(self) -> dict[str, str]:
        return {"amount": self.amount, "currency": self.currency, "time": self.time}


class Differs(msgspec.Struct, frozen=True, gc=False):
    """Same key, another amount, currency or time: both values."""

    line: int
    cause: str
    subject: str
    kind: str
    recorded: Money
    recomputed: Money

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "cause": self.cause, "subject": self.subject, "kind": self.kind,
                "recorded": self.recorded.to_dict(), "recomputed": self.recomputed.to_dict()}


class RecordedLine(msgspec.Struct, frozen=True, gc=False):
    """A recorded line the rules produce no such line for (``unexpected``), as written."""

    line: int
    time: str
    kind: str
    subject: str
    amount: str
    currency: str
    cause: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "time": self.time, "kind": self.kind, "subject": self.subject,
                "amount": self.amount, "currency": self.currency, "cause": self.cause}


class Duplicate(msgspec.Struct, frozen=True, gc=False):
    """A later recorded line of a key already recorded at ``first_line``."""

    line: int
    first_line: int
    time: str
    kind: str
    subject: str
    amount: str
    currency: str
    cause: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "first_line": self.first_line, "time": self.time, "kind": self.kind,
                "subject": self.subject, "amount": self.amount, "currency": self.currency,
                "cause": self.cause}


class Malformed(msgspec.Struct, frozen=True, gc=False):
    """A recorded line that cannot be read: its physical line number and why."""

    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@attrs.frozen
class TotalsRow:
    """Per currency and kind: the recorded total (duplicates counted, malformed lines
    not) and the recomputed one."""

    currency: str
    kind: str
    recorded: Decimal
    recomputed: Decimal

    @property
    def difference(self) -> Decimal:
        """recorded − recomputed."""
        return self.recorded - self.recomputed


@attrs.frozen
class Verification:
    """The audit's result: how many lines matched, every other finding, and the totals.

    Each list is in the recorded file's order (``missing``: the computed ledger's).
    """

    source: str
    matched: int
    differs: Sequence[Differs]
    missing: Sequence[LedgerLine]
    unexpected: Sequence[RecordedLine]
    duplicate: Sequence[Duplicate]
    malformed: Sequence[Malformed]
    totals: Sequence[TotalsRow]

    @property
    def clean(self) -> bool:
        """Did every line match (and nothing else turn up)?"""
        return not (self.differs or self.missing or self.unexpected or self.duplicate or self.malformed)

    def counts(self) -> dict[str, int]:
        return {"matched": self.matched, "differs": len(self.differs), "missing": len(self.missing),
                "unexpected": len(self.unexpected), "duplicate": len(self.duplicate),
                "malformed": len(self.malformed)}

    def to_dict(self) -> dict[str, Any]:
        """The ``verify`` object of the JSON report."""
        totals: dict[str, dict[str, dict[str, str]]] = {}
        for row in self.totals:
            totals.setdefault(row.currency, {})[row.kind] = {
                "recorded": _amount(row.recorded, row.currency),
                "recomputed": _amount(row.recomputed, row.currency),
                "difference": _amount(row.difference, row.currency),
            }
        return {
            "matched": self.matched,
            "differs": [f.to_dict() for f in self.differs],
            "missing": [line.to_dict() for line in self.missing],
            "unexpected": [f.to_dict() for f in self.unexpected],
            "duplicate": [f.to_dict() for f in self.duplicate],
            "malformed": [f.to_dict() for f in self.malformed],
            "totals": totals,
        }


def _amount(value: Decimal, currency: str) -> str:
    try:
        return format_amount(value, currency)
    except MoneyError:  # pragma: no cover - recorded currencies are checked on reading
        return str(value)


# -- reading the recorded file -------------------------------------------------------------
#: line, cause, subject, kind, amount, currency, time, time_key
_Row = tuple[int, str, str, str, str, str, str, str]


def _check(values: Mapping[str, Any]) -> tuple[str, str, str, Decimal, str, str, str] | str:
    """The fields of one recorded line, checked: ``(time, time_key, kind, amount, amount
    text, currency, …)``, or the reason it is malformed."""
    for name in ("time", "kind", "subject", "currency", "cause"):
        if not isinstance(values[name], str):
            return f"{name} must be a string, not {type(values[name]).__name__}"
    currency = values["currency"]
    try:
        minor_units(currency)
    except MoneyError as exc:
        return f"currency: {exc}"
    raw = values["amount"]
    if isinstance(raw, float):  # pragma: no cover - floats are re-read as Decimals
        return "amount: a binary float cannot be an exact amount"
    try:
        amount = validate_amount(parse_decimal(raw), currency)
    except MoneyError as exc:
        return f"amount: {exc}"
    try:
        moment = parse_instant(values["time"])
    except ValueError as exc:
        return f"time: {exc}"
    text = raw if isinstance(raw, str) else str(raw)
    return values["time"], format_instant(moment), values["kind"], amount, text, currency, values["cause"]


def _fields(keys: Iterable[str]) -> str | None:
    """Why a line's fields are not the six of a ledger line, or ``None`` if they are."""
    seen = list(keys)
    for name in FIELDS:
        if name not in seen:
            return f"lacks the field {name}"
    for name in seen:
        if name not in FIELDS:
            return f"has an unknown field {name!r}"
    return None


def _json_lines(stream: io.BufferedReader) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    for number, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
            if type(value) is dict and type(value.get("amount")) is float:
                value = json.loads(line, parse_float=Decimal)  # read the amount exactly
        except orjson.JSONDecodeError as exc:
            try:  # integers beyond 64 bits are valid JSON; orjson refuses them
                value = json.loads(line, parse_float=Decimal)
                json.dumps(value, default=str, ensure_ascii=False).encode()  # a lone surrogate: no text
            except (ValueError, RecursionError):  # UnicodeError is a ValueError
                yield number, f"not JSON: {str(exc).replace('line 1 column', 'column')}"
                continue
        if type(value) is not dict:
            yield number, "not a JSON object"
            continue
        problem = _fields(value)
        yield number, problem if problem is not None else value


def _csv_lines(stream: io.TextIOWrapper, source: str) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    reader = csv.reader(stream, strict=True)
    header: list[str] | None = None
    end = 0  # the last physical line read
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if reader.line_num <= end:  # pragma: no cover - the reader always moves on
                raise VerifyError(f"{source}: line {start}: {exc}") from None
            end = reader.line_num
            yield start, f"not a CSV row: {exc}"
            continue
        end = reader.line_num
        if not row:
            continue  # a blank line: counted, never a finding
        if header is None:
            header = [row[0].removeprefix("\ufeff"), *row[1:]]
            for name in FIELDS:
                if name not in header:
                    raise VerifyError(f"{source}: the CSV header (line {start}) lacks the column {name}")
            for name in header:
                if name not in FIELDS:
                    raise VerifyError(f"{source}: the CSV header (line {start}) has an unknown "
                                      f"column {name!r}")
            if len(set(header)) != len(header):
                raise VerifyError(f"{source}: the CSV header (line {start}) repeats a column")
            continue
        if len(row) != len(header):
            yield start, f"has {len(row)} columns, the header has {len(header)}"
            continue
        if any("\udc80" <= ch <= "\udcff" for cell in row for ch in cell):
            yield start, "not UTF-8"
            continue
        yield start, dict(zip(header, row, strict=True))
    if header is None:
        raise VerifyError(f"{source}: the CSV file has no header row")


# rec: the recorded lines that could be read (``line`` is the rowid: reading them in
# the file's order needs no sort); bad: the others; calc: the computed ledger. ``occ``
# is a line's occurrence among the lines of its key (0 but for repeated keys, which are
# numbered after loading: the only window the queries sort), ``first`` the line of its
# key's first occurrence.
_SCHEMA = """
CREATE TABLE rec (line INTEGER PRIMARY KEY, cause TEXT, subject TEXT, kind TEXT, amount TEXT,
                  currency TEXT, time TEXT, time_key TEXT, occ INTEGER NOT NULL DEFAULT 0,
                  first INTEGER);
CREATE TABLE bad (line INTEGER PRIMARY KEY, reason TEXT);
CREATE TABLE calc (pos INTEGER PRIMARY KEY, cause TEXT, subject TEXT, kind TEXT,
                   amount TEXT, currency TEXT, time TEXT, occ INTEGER NOT NULL DEFAULT 0);
"""


def _number_repeats(table: str, order: str) -> str:
    """SQL numbering the occurrences of every key ``table`` holds more than once."""
    return f"""
        UPDATE {table} SET occ = n.occ{", first = n.first" if table == "rec" else ""} FROM (
            SELECT {order}, ROW_NUMBER() OVER w - 1 AS occ, MIN({order}) OVER w AS first FROM {table}
            WHERE (cause, subject, kind) IN (
                SELECT cause, subject, kind FROM {table} GROUP BY cause, subject, kind HAVING COUNT(*) > 1)
            WINDOW w AS (PARTITION BY cause, subject, kind ORDER BY {order})) AS n
        WHERE {table}.{order} = n.{order}"""


def _give_back_memory() -> None:
    """Return the heap SQLite freed to the system (glibc's ``malloc_trim``).

    Why: SQLite's page cache and sorters are allocated with ``malloc`` from glibc's heap;
    freed, they stay in the process, and Python's object arenas (mapped separately)
    never reuse them. Measured on a ledger of a million lines, the report written after
    the audit then peaked 300 MB higher than without it; trimmed, a few MB. Elsewhere
    (another libc, another system) this does nothing.
    """
    with contextlib.suppress(AttributeError, OSError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


_INSERT_REC = ("INSERT INTO rec (line, cause, subject, kind, amount, currency, time, time_key) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


class RecordedLedger:
    """A recorded ledger read once into an on-disk index; :meth:`compare` audits it.

    Opening reads the whole file (so a file that cannot be read at all is refused
    before anything is replayed); :meth:`close` (or ``with``) removes the index.
    """

    BATCH = 10_000
    #: SQLite's page cache (KiB): what memory the audit takes, whatever the file's length.
    CACHE_KB = 65_536

    def __init__(self, path: str | Path) -> None:
        self.source = str(path)
        suffix = Path(path).suffix.lower()
        if suffix not in JSON_LINES + CSV:
            raise VerifyError(f"{self.source}: cannot tell the format from the extension "
                              f"{suffix or '(none)'}: use .jsonl, .ndjson or .csv")
        fd, self._db_path = tempfile.mkstemp(prefix="collab-verify-", suffix=".sqlite")
        os.close(fd)
        self._db: sqlite3.Connection | None = self._connect()
        try:
            self._db.executescript(_SCHEMA)
            self.recorded_totals: dict[tuple[str, str], Decimal] = {}
            self._load(path, suffix)
        except BaseException:
            self.close()
            raise
        # Closed until compare(): its page cache is not held while the replay runs.
        self._db.close()
        self._db = None
        _give_back_memory()

    def _connect(self) -> sqlite3.Connection:
        """The index file: a scratch file (no journal, no syncs), a bounded page cache."""
        db = sqlite3.connect(self._db_path, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{self.CACHE_KB}",
                       "temp_store = FILE"):
            db.execute(f"PRAGMA {pragma}")
        return db

    def _load(self, path: str | Path, suffix: str) -> None:
        try:
            if suffix in CSV:
                with open(path, encoding="utf-8", errors="surrogateescape", newline="") as text:
                    self._store(_csv_lines(text, self.source))
            else:
                with open(path, "rb") as binary:
                    self._store(_json_lines(binary))  # type: ignore[arg-type]
        except OSError as exc:
            raise VerifyError(f"cannot read {self.source}: {exc.strerror or exc}") from None

    def _store(self, lines: Iterator[tuple[int, Mapping[str, Any] | str]]) -> None:
        totals = self.recorded_totals
        good: list[_Row] = []
        bad: list[tuple[int, str]] = []
        db = self._db
        assert db is not None
        db.execute("BEGIN")
        for number, value in lines:
            checked = value if isinstance(value, str) else _check(value)
            if isinstance(checked, str):
                bad.append((number, checked))
            else:
                time, time_key, kind, amount, text, currency, cause = checked
                key = (currency, kind)
                totals[key] = totals.get(key, Decimal(0)) + amount
                good.append((number, cause, value["subject"], kind, text, currency, time,  # type: ignore[index]
                             time_key))
            if len(good) >= self.BATCH:
                db.executemany(_INSERT_REC, good)
                good.clear()
            if len(bad) >= self.BATCH:
                db.executemany("INSERT INTO bad VALUES (?, ?)", bad)
                bad.clear()
        db.executemany(_INSERT_REC, good)
        db.executemany("INSERT INTO bad VALUES (?, ?)", bad)
        db.execute("CREATE INDEX rec_key ON rec (cause, subject, kind, line)")
        db.execute(_number_repeats("rec", "line"))
        db.execute("COMMIT")

    def close(self) -> None:
        """Remove the on-disk index."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None
            _give_back_memory()
        with contextlib.suppress(OSError):
            os.unlink(self._db_path)

    def __enter__(self) -> RecordedLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the comparison -------------------------------------------------------------
    def compare(self, ledger: Iterable[LedgerLine]) -> Verification:
        """Hold ``ledger`` (the replay's, in its order) against the recorded lines (once)."""
        if self._db is not None or not os.path.exists(self._db_path):
            raise ValueError("compare() runs once, on an open RecordedLedger")
        db = self._db = self._connect()
        computed: dict[tuple[str, str], Decimal] = {}

        def rows() -> Iterator[tuple[int, str, str, str, str, str, str]]:
            for pos, line in enumerate(ledger):
                key = (line.currency, line.kind)
                computed[key] = computed.get(key, Decimal(0)) + line.amount
                yield (pos, line.cause, line.subject, line.kind, str(line.amount), line.currency,
                       format_instant(line.time))

        db.execute("BEGIN")
        db.executemany("INSERT INTO calc (pos, cause, subject, kind, amount, currency, time) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
        db.execute("CREATE INDEX calc_key ON calc (cause, subject, kind, occ)")
        db.execute(_number_repeats("calc", "pos"))
        db.execute("COMMIT")
        matched = 0
        differs: list[Differs] = []
        unexpected: list[RecordedLine] = []
        duplicate: list[Duplicate] = []
        # Every recorded line in the file's order, with the computed line of its key and
        # occurrence, if any (an index lookup per line; no sort).
        recorded = db.execute("""
            SELECT r.line, r.cause, r.subject, r.kind, r.amount, r.currency, r.time, r.time_key, r.occ,
                   r.first, c.amount, c.currency, c.time
            FROM rec AS r LEFT JOIN calc AS c
              ON c.cause = r.cause AND c.subject = r.subject AND c.kind = r.kind AND c.occ = r.occ
            ORDER BY r.line""")
        for (line, cause, subject, kind, amount, currency, time, time_key, occ, first,
             c_amount, c_currency, c_time) in recorded:
            if c_amount is not None:
                if currency == c_currency and time_key == c_time and Decimal(amount) == Decimal(c_amount):
                    matched += 1
                else:
                    differs.append(Differs(line, cause, subject, kind, Money(amount, currency, time),
                                           Money(format_amount(Decimal(c_amount), c_currency), c_currency,
                                                 c_time)))
            elif occ == 0:
                unexpected.append(RecordedLine(line, time, kind, subject, amount, currency, cause))
            else:
                duplicate.append(Duplicate(line, first, time, kind, subject, amount, currency, cause))
        missing = [
            LedgerLine(parse_instant(time), kind, subject, Decimal(amount), currency, cause)
            for cause, subject, kind, amount, currency, time in db.execute("""
                SELECT c.cause, c.subject, c.kind, c.amount, c.currency, c.time FROM calc AS c
                WHERE NOT EXISTS (SELECT 1 FROM rec AS r WHERE r.cause = c.cause AND r.subject = c.subject
                                  AND r.kind = c.kind AND r.occ = c.occ)
                ORDER BY c.pos""")
        ]
        malformed = [Malformed(line, reason) for line, reason in db.execute(
            "SELECT line, reason FROM bad ORDER BY line")]
        return Verification(self.source, matched, tuple(differs), tuple(missing), tuple(unexpected),
                            tuple(duplicate), tuple(malformed),
                            _totals(self.recorded_totals, computed))


def _totals(recorded: Mapping[tuple[str, str], Decimal],
            computed: Mapping[tuple[str, str], Decimal]) -> tuple[TotalsRow, ...]:
    """Per currency (sorted) and kind (the report's order, then any other, sorted)."""
    keys = set(recorded) | set(computed)
    order = {kind: i for i, kind in enumerate(LEDGER_KINDS)}
    ordered = sorted(keys, key=lambda k: (k[0], order.get(k[1], len(order)), k[1]))
    zero = Decimal(0)
    return tuple(TotalsRow(c, k, recorded.get((c, k), zero), computed.get((c, k), zero)) for c, k in ordered)


def verify(ledger: Iterable[LedgerLine], recorded: str | Path) -> Verification:
    """Audit ``ledger`` (a replay's) against the recorded ledger file ``recorded``;
    :class:`VerifyError` when that file cannot be read at all."""
    with RecordedLedger(recorded) as index:
        return index.compare(ledger)


# -- text ----------------------------------------------------------------------------------
def render_verify_text(result: Verification, *, width: int = 110) -> str:
    """The audit for people: counts, a table of findings (at most :data:`TABLE_ROWS`
    rows, then how many more) and the totals recorded vs recomputed."""
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    counts = ", ".join(f"{n} {name}" for name, n in result.counts().items())
    console.print(f"Verify against {result.source}: {counts}", soft_wrap=True)
    rows = _finding_rows(result)
    if rows:
        table = Table(title="Findings", title_justify="left")
        for column in ("finding", "line", "cause", "subject", "kind"):
            table.add_column(column, justify="right" if column == "line" else "left", no_wrap=True)
        table.add_column("recorded", overflow="fold")
        table.add_column("recomputed", overflow="fold")
        for cells in rows[:TABLE_ROWS]:
            table.add_row(*cells)
        console.print(table)
        if len(rows) > TABLE_ROWS:
            console.print(f"… and {len(rows) - TABLE_ROWS} more findings (--format json lists them all)")
    else:
        console.print("Every line matched.")
    totals = Table(title="Totals, recorded vs recomputed", title_justify="left")
    for column, justify in (("currency", "left"), ("kind", "left"), ("recorded", "right"),
                            ("recomputed", "right"), ("difference", "right")):
        totals.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in result.totals:
        totals.add_row(row.currency, row.kind, _amount(row.recorded, row.currency),
                       _amount(row.recomputed, row.currency), _amount(row.difference, row.currency))
    console.print(totals)
    return out.getvalue()


def _side(money: Money, other: Money | None = None) -> str:
    """Amount and currency; the time too when it is what differs (or no other side)."""
    text = f"{money.amount} {money.currency}"
    return text if other is not None and other.time == money.time else f"{text} at {money.time}"


def _finding_rows(result: Verification) -> list[tuple[str, ...]]:
    """Findings with a recorded line, in its order; then the missing ones."""
    keyed: list[tuple[int, tuple[str, ...]]] = []
    for d in result.differs:
        same_time = d.recorded.time == d.recomputed.time or \
            parse_instant(d.recorded.time) == parse_instant(d.recomputed.time)
        keyed.append((d.line, ("differs", str(d.line), d.cause, d.subject, d.kind,
                               _side(d.recorded, d.recorded if same_time else None),
                               _side(d.recomputed, d.recomputed if same_time else None))))
    for u in result.unexpected:
        keyed.append((u.line, ("unexpected", str(u.line), u.cause, u.subject, u.kind,
                               f"{u.amount} {u.currency}", "-")))
    for p in result.duplicate:
        keyed.append((p.line, ("duplicate", str(p.line), p.cause, p.subject, p.kind,
                               f"{p.amount} {p.currency}", f"(first: line {p.first_line})")))
    for m in result.malformed:
        keyed.append((m.line, ("malformed", str(m.line), "", "", "", m.reason, "")))
    keyed.sort(key=lambda item: item[0])
    rows = [row for _, row in keyed]
    for line in result.missing:
        rows.append(("missing", "-", line.cause, line.subject, line.kind, "-",
                     f"{format_amount(line.amount, line.currency)} {line.currency}"))
    return rows
