"""SQLite: the embedded default store (stdlib ``sqlite3``, WAL), and its in-memory twin.

Why SQLite: one file, transactions that survive a killed process, and one writer at
a time, which is exactly the serialisation the engine's clock needs (events apply in
one order). Every write is one ``BEGIN IMMEDIATE`` transaction: the event row, the
new entity versions and the outbox effects commit together or not at all.

:class:`MemoryStore` is the same code on an in-memory database rather than a second
implementation: the transactional behaviour tested on one is the behaviour of the
other.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import structlog

from ..engine.runtime import Entity, Event, Outcome
from ..envelope import digest_of
from ..replay.report import LedgerLine
from ..timeutil import format_instant, parse_instant
from .codec import decode_entity, encode_entity, outbox_rows
from .errors import StaleWrite, StoreError
from .records import (
    Changes,
    HistoryStep,
    LedgerPage,
    LedgerPosition,
    OutboxItem,
    Recorded,
    RecordedStep,
)
from .schema import DDL, SCHEMA_VERSION

__all__ = ["MemoryStore", "SQLiteStore", "Writer"]

_log = structlog.get_logger("statemachine.store")

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_OUTBOX_COLUMNS = "effect_id, seq, cause, subject, kind, time, body, delivered_at IS NOT NULL"


def _item(row: tuple) -> OutboxItem:
    effect_id, seq, cause, subject, kind, time, body, delivered = row
    return OutboxItem(effect_id, seq, cause, subject, kind, parse_instant(time), orjson.loads(body),
                      bool(delivered))



def _digest(stored: int | bytes | None) -> int:
    """A stored content digest as the engine compares it: an int, or the BLAKE2b-128
    bytes an earlier version stored (the same number once converted)."""
    if isinstance(stored, int):
        return stored
    return digest_of(stored) if stored else 0

class Writer:
    """Appends outcomes inside one write transaction (see :meth:`SQLiteStore.writing`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.last_seq: int | None = None

    def append(self, outcome: Outcome, records: Mapping[str, Entity], *,
               event: Event | None = None, envelope: str | None = None) -> int:
        """Store one committed outcome: its event row, every entity version it made,
        and its effects in the outbox. ``records`` holds each touched entity's record
        as the outcome left it. Raises :class:`StaleWrite` if another writer already
        took an entity version or the event id."""
        conn = self._conn
        if outcome.timer is None:
            if event is None or envelope is None:
                raise ValueError("an input event's outcome needs its event and envelope")
            key = event.id
            row: tuple[str, str, str, str, str, str, str, int | None]
            row = ("input", key, key, event.subject, format_instant(event.time), event.type,
                   envelope, event.digest)
        else:
            first = outcome.steps[0].subject
            due = format_instant(outcome.time)
            key = f"timer:{outcome.timer}:{first}@{due}"
            body = orjson.dumps({"timer": outcome.timer, "subject": first, "due": due,
                                 "cause": outcome.cause}).decode()
            row = ("timer", key, outcome.cause, first, due, f"timer.{outcome.timer}", body, None)
        try:
            seq = conn.execute(
                "INSERT INTO events (kind, id, cause, subject, time, type, body, digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row).lastrowid
        except sqlite3.IntegrityError:
            raise StaleWrite(f"event {key!r} was already stored by another writer") from None
        assert seq is not None
        for index, step in enumerate(outcome.steps):
            self._version(seq, index, step.subject, step.lifecycle, step.trigger, step.source,
                          step.dest, step.version, records[step.subject])
        conn.executemany(
            "INSERT INTO outbox (effect_id, seq, n, subject, kind, cause, time, ledger_kind,"
            " ledger_subject, amount, currency, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            outbox_rows(key, seq, outcome))
        self.last_seq = seq
        return seq

    def _version(self, seq: int, index: int, subject: str, lifecycle: str, trigger: str,
                 source: str, state: str, version: int, record: Entity) -> None:
        conn = self._conn
        stale = StaleWrite(
            f"{subject}: version {version} was already written by another writer; nothing "
            "of this event was stored, apply it again to decide on the current state",
            subject=subject, version=version)
        snapshot = encode_entity(record) if record.version == version else None
        try:
            conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (subject, version, seq, index, lifecycle, trigger, source, state, snapshot))
            if version == 1:
                conn.execute("INSERT INTO heads (subject, version, created_seq) VALUES (?, 1, ?)",
                             (subject, seq))
            elif conn.execute("UPDATE heads SET version = ? WHERE subject = ? AND version = ?",
                              (version, subject, version - 1)).rowcount != 1:
                raise stale
        except sqlite3.IntegrityError:
            raise stale from None

    def finish(self, clock: datetime | None) -> int:
        """Record the clock and bump the generation; returns the new generation."""
        conn = self._conn
        if clock is not None:
            conn.execute("INSERT INTO meta VALUES ('clock', ?) ON CONFLICT (key) DO UPDATE"
                         " SET value = excluded.value", (clock.isoformat(),))
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


_LEDGER = ("SELECT time, ledger_kind, ledger_subject, amount, currency, cause, seq, n FROM outbox"
           " WHERE ledger_kind IS NOT NULL")


def _ledger_lines(rows: Iterable[tuple]) -> Iterator[tuple[LedgerPosition, LedgerLine]]:
    """The ledger lines of ``_LEDGER`` rows, with their positions; zero amounts are
    skipped, as the replay report books non-zero amounts only."""
    for time, kind, subject, amount, currency, cause, seq, n in rows:
        value = Decimal(amount)
        if value:
            yield (seq, n), LedgerLine(parse_instant(time), kind, subject, value, currency, cause)


class SQLiteStore:
    """A durable store in one SQLite file (WAL mode), shareable by threads and processes.

    ``timeout`` is how long a writer waits for another's write lock (seconds);
    ``synchronous`` is SQLite's durability level: ``FULL`` (default) survives power
    loss, ``NORMAL`` survives a killed process but may lose the last commits on power
    loss. One store object belongs to one :class:`~statemachine.api.Engine`; several
    engines (threads, processes) may open the same file.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0,
                 synchronous: str = "FULL") -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = os.fspath(path)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        self._closed = False
        if not self._in_memory:
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot use WAL mode (got {mode})")
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        with self.writing():
            for statement in DDL.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            schema = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        if schema != SCHEMA_VERSION:
            self.close()
            raise StoreError(f"{self.path}: store schema {schema}, this version reads {SCHEMA_VERSION}")
        if structlog.is_configured():
            _log.debug("store.opened", path=self.path)

    @property
    def _in_memory(self) -> bool:
        return self.path == ":memory:" or self.path.startswith("file::memory:")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # -- transactions ---------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    @contextmanager
    def writing(self) -> Iterator[Writer]:
        """One write transaction (``BEGIN IMMEDIATE``: the file's write lock, waiting up
        to ``timeout`` for another writer). Commits on leaving, rolls back on an error."""
        with self.lock:
            self._check_open()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Writer(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent read snapshot (or the surrounding write transaction)."""
        with self.lock:
            self._check_open()
            conn = self._conn
            if conn.in_transaction:
                yield
                return
            conn.execute("BEGIN")
            try:
                yield
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # -- loading and catching up ----------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def generation(self) -> int:
        """Bumped by every write of any connection: unchanged means nothing to catch up."""
        with self.reading():
            return int(self._meta("generation") or 0)

    def clock(self) -> datetime | None:
        with self.reading():
            value = self._meta("clock")
        return None if value is None else datetime.fromisoformat(value)

    def changes_since(self, seq: int) -> Changes:
        """What was committed after event row ``seq`` (0: everything, i.e. rehydration):
        the latest snapshot of every entity changed since, in order of creation."""
        with self.reading():
            conn = self._conn
            last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            query = ("SELECT v.snapshot FROM heads h JOIN versions v"
                     " ON v.subject = h.subject AND v.version = h.version")
            if seq:
                query += " WHERE h.subject IN (SELECT subject FROM versions WHERE seq > ?)"
            rows = conn.execute(query + " ORDER BY h.created_seq", (seq,) if seq else ())
            entities = tuple(decode_entity(snapshot) for snapshot, in rows)
            applied = {ident: _digest(digest) for ident, digest in conn.execute(
                "SELECT id, digest FROM events WHERE kind = 'input' AND seq > ?", (seq,))}
            clock = self._meta("clock")
            generation = int(self._meta("generation") or 0)
        return Changes(entities, applied, None if clock is None else datetime.fromisoformat(clock),
                       last, generation)

    # -- reading what happened ------------------------------------------------------
    def recorded(self, event_id: str) -> Recorded | None:
        """The stored outcome of an applied input event, or ``None``."""
        with self.reading():
            conn = self._conn
            row = conn.execute("SELECT seq, type, subject, time FROM events"
                               " WHERE kind = 'input' AND id = ?", (event_id,)).fetchone()
            if row is None:
                return None
            seq, kind, subject, time = row
            steps = tuple(RecordedStep(*r) for r in conn.execute(
                "SELECT subject, lifecycle, trigger, source, state, version FROM versions"
                " WHERE seq = ? ORDER BY step", (seq,)))
            effects = tuple(_item(r) for r in conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE seq = ? ORDER BY n", (seq,)))
        return Recorded(event_id, seq, kind, subject, parse_instant(time), steps, effects)

    def history(self, subject: str) -> list[HistoryStep]:
        """Every version of ``subject`` in order, with its cause: the entity's path."""
        with self.reading():
            rows = self._conn.execute(
                "SELECT v.version, v.trigger, v.source, v.state, v.step, e.kind, e.cause, e.time,"
                " e.type, e.subject FROM versions v JOIN events e ON e.seq = v.seq"
                " WHERE v.subject = ? ORDER BY v.version", (subject,)).fetchall()
        return [HistoryStep(version, trigger, source, state, cause, parse_instant(time),
                            timer=kind_type.removeprefix("timer.") if kind == "timer" and step == 0 else None,
                            via=first if step > 0 else None)
                for version, trigger, source, state, step, kind, cause, time, kind_type, first in rows]

    def ledger(self, subjects: Iterable[str] | None = None) -> list[LedgerLine]:
        """The money lines of the outbox (delivered or not), in the order they were
        committed: the replay report's ``ledger``. ``subjects`` narrows it."""
        query = _LEDGER
        params: tuple = ()
        if subjects is not None:
            query += " AND ledger_subject IN (SELECT value FROM json_each(?))"
            params = (orjson.dumps(list(subjects)).decode(),)
        with self.reading():
            rows = self._conn.execute(query + " ORDER BY seq, n", params).fetchall()
        return [line for _, line in _ledger_lines(rows)]

    def ledger_page(self, *, after: LedgerPosition | None = None, limit: int = 100) -> LedgerPage:
        """:meth:`ledger` in pages: up to ``limit`` lines after the position ``after``
        (from the start when ``None``). See :class:`LedgerPage` for going on."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = _LEDGER
        params: tuple = ()
        if after is not None:
            query += " AND (seq, n) > (?, ?)"
            params = tuple(after)
        lines: list[LedgerLine] = []
        last = after
        with self.reading():
            cursor = self._conn.execute(query + " ORDER BY seq, n", params)
            # Zero amounts are skipped, as in the report, so rows are read until one line
            # more than the page is found: it tells whether more are left.
            while rows := cursor.fetchmany(limit + 1):
                for position, line in _ledger_lines(rows):
                    if len(lines) == limit:
                        return LedgerPage(tuple(lines), last, more=True)
                    lines.append(line)
                    last = position
        return LedgerPage(tuple(lines), last, more=False)

    def stats(self) -> dict[str, int]:
        """Row counts, for operators and tests."""
        with self.reading():
            conn = self._conn

            def count(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            return {
                "inputs": count("SELECT COUNT(*) FROM events WHERE kind = 'input'"),
                "timers": count("SELECT COUNT(*) FROM events WHERE kind = 'timer'"),
                "versions": count("SELECT COUNT(*) FROM versions"),
                "entities": count("SELECT COUNT(*) FROM heads"),
                "effects": count("SELECT COUNT(*) FROM outbox"),
                "pending": count("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL"),
            }

    # -- the outbox -----------------------------------------------------------------
    def pending(self, limit: int = 100) -> list[OutboxItem]:
        """Undelivered effects, oldest first."""
        with self.reading():
            rows = self._conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL"
                " ORDER BY seq, n LIMIT ?", (limit,)).fetchall()
        return [_item(r) for r in rows]

    def mark_delivered(self, effect_ids: Iterable[str]) -> int:
        """Mark effects delivered; returns how many were still pending.

        ``delivered_at`` is operational metadata for people (when did it go out), never
        read by the engine, so it is the only wall-clock time the store writes.
        """
        now = format_instant(datetime.now(UTC))
        with self.writing():
            return sum(self._conn.execute(
                "UPDATE outbox SET delivered_at = ? WHERE effect_id = ? AND delivered_at IS NULL",
                (now, effect_id)).rowcount for effect_id in effect_ids)

    def drain(self, deliver: Callable[[OutboxItem], None], limit: int = 100) -> int:
        """Deliver up to ``limit`` pending effects, oldest first, marking each delivered
        after ``deliver`` returns; returns how many were delivered.

        At-least-once: a crash (or an exception from ``deliver``) after delivering and
        before marking leaves the effect pending, so it is delivered again; receivers
        deduplicate on ``item.effect_id``. An exception stops the drain and propagates;
        what was marked stays marked. No lock is held while ``deliver`` runs.
        """
        done = 0
        for item in self.pending(limit):
            deliver(item)
            self.mark_delivered((item.effect_id,))
            done += 1
        if done and structlog.is_configured():
            _log.debug("outbox.drained", delivered=done)
        return done

    # -- export ---------------------------------------------------------------------
    def input_envelopes(self) -> Iterator[str]:
        """The applied input events' envelopes (JSON text), in the order applied."""
        with self.reading():
            rows = self._conn.execute(
                "SELECT body FROM events WHERE kind = 'input' ORDER BY seq").fetchall()
        for (body,) in rows:
            yield body

    def export(self, path: str | os.PathLike[str]) -> datetime | None:
        """Write the applied input events as a JSON Lines log (``event-log.md``).

        Returns the store's clock. Timers are not written: the replay derives them from
        the events. Timers that fired because time passed *after* the last applied event
        (``advance_to``, or a refused later event) need the replay's ``--as-of`` set to
        this clock to fire there too.
        """
        with self.reading():
            clock = self.clock()
            target = Path(path)
            tmp = target.with_name(target.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="\n") as out:
                for body in self.input_envelopes():
                    out.write(body)
                    out.write("\n")
            os.replace(tmp, target)
        return clock


class MemoryStore(SQLiteStore):
    """The same store on a private in-memory database: for tests and short jobs.

    Nothing survives :meth:`close` or the process; everything else (transactions,
    conflicts, the outbox, export) behaves exactly as on a file.
    """

    def __init__(self) -> None:
        super().__init__(":memory:", synchronous="OFF")
