"""PostgreSQL: the store for services that run more than one replica (psycopg 3, a pool).

The same contract as :class:`~.sqlite.SQLiteStore` (:mod:`.contract`), the same tables
(:mod:`.schema`, spelt for PostgreSQL here), the same records, so an engine cannot tell
the two apart:

* **one transaction per event**: the event row, the new entity versions and the outbox
  effects commit together or not at all;
* **one writer at a time**: every write transaction starts by locking the ``meta`` row
  ``generation`` (``SELECT … FOR UPDATE``), which is what ``BEGIN IMMEDIATE`` is to
  SQLite: writers of every process and host queue there, so each decides on the state
  the previous one committed (the durable runtime catches up inside the lock) and the
  engine's single clock keeps one order;
* **idempotency by event id** (``UNIQUE (kind, id)``) and **no lost update**
  (``(subject, version)`` is the primary key): a writer that got past the lock with a
  stale view gets :class:`~.errors.StaleWrite`, never a silent overwrite;
* **drain** takes pending effects ``FOR UPDATE SKIP LOCKED`` and marks them in the same
  transaction, so several drainers (replicas) deliver each effect once in the normal
  case; a drainer that dies mid-batch leaves its rows pending (at-least-once).

Connections come from a ``psycopg_pool.ConnectionPool``. A thread inside a transaction
keeps its connection for every nested read (the runtime reads while it writes); reads
outside a write take a pooled connection of their own in a ``REPEATABLE READ`` snapshot,
so readers never wait for the writer lock.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from ..engine.errors import InvalidEvent
from ..engine.runtime import Entity, Event, Outcome
from ..replay.report import LedgerLine
from ..timeutil import format_instant, parse_instant
from .codec import decode_entity, encode_entity, outbox_rows
from .errors import StaleWrite, StoreError
from .records import Changes, HistoryStep, LedgerPage, LedgerPosition, OutboxItem, Recorded, RecordedStep
from .schema import SCHEMA_VERSION
from .sqlite import _digest, _item, _ledger_lines

__all__ = ["DDL", "PostgresStore", "PostgresWriter"]

_log = structlog.get_logger("statemachine.store")

_OUTBOX_COLUMNS = "effect_id, seq, cause, subject, kind, time, body, delivered_at IS NOT NULL"
_LEDGER = ("SELECT time, ledger_kind, ledger_subject, amount, currency, cause, seq, n FROM outbox"
           " WHERE ledger_kind IS NOT NULL")
#: Serialises schema creation by several processes opening a fresh database at once
#: (``CREATE TABLE IF NOT EXISTS`` is not safe against itself in PostgreSQL).
_DDL_LOCK = 0x636F6C6C6162  # "collab"

#: :mod:`.schema`'s tables in PostgreSQL's words: an identity column for ``seq`` (assigned
#: under the writer lock, so in commit order), ``BIGINT`` digests (60 bits).
DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('input', 'timer')),
    id      TEXT NOT NULL,
    cause   TEXT NOT NULL,
    subject TEXT NOT NULL,
    time    TEXT NOT NULL,
    type    TEXT NOT NULL,
    body    TEXT NOT NULL,
    digest  BIGINT,
    UNIQUE (kind, id)
);
CREATE TABLE IF NOT EXISTS versions (
    subject   TEXT NOT NULL,
    version   INTEGER NOT NULL CHECK (version >= 1),
    seq       BIGINT NOT NULL REFERENCES events (seq),
    step      INTEGER NOT NULL,
    lifecycle TEXT NOT NULL,
    trigger   TEXT NOT NULL,
    source    TEXT NOT NULL,
    state     TEXT NOT NULL,
    snapshot  TEXT,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS versions_by_seq ON versions (seq, step);
CREATE TABLE IF NOT EXISTS heads (
    subject     TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    created_seq BIGINT NOT NULL REFERENCES events (seq)
);
CREATE INDEX IF NOT EXISTS heads_by_creation ON heads (created_seq);
CREATE TABLE IF NOT EXISTS outbox (
    effect_id      TEXT PRIMARY KEY,
    seq            BIGINT NOT NULL REFERENCES events (seq),
    n              INTEGER NOT NULL,
    subject        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    cause          TEXT NOT NULL,
    time           TEXT NOT NULL,
    ledger_kind    TEXT,
    ledger_subject TEXT,
    amount         TEXT,
    currency       TEXT,
    body           TEXT NOT NULL,
    delivered_at   TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_seq ON outbox (seq, n);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq, n) WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_ledger ON outbox (ledger_subject) WHERE ledger_kind IS NOT NULL
"""


class PostgresWriter:
    """Appends outcomes inside one write transaction (see :meth:`PostgresStore.writing`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.last_seq: int | None = None

    def append(self, outcome: Outcome, records: Mapping[str, Entity], *,
               event: Event | None = None, envelope: str | None = None) -> int:
        """Store one committed outcome (as :meth:`.sqlite.Writer.append`)."""
        conn = self._conn
        if outcome.timer is None:
            if event is None or envelope is None:
                raise ValueError("an input event's outcome needs its event and envelope")
            for name, value in (("id", event.id), ("subject", event.subject), ("type", event.type)):
                if "\x00" in value:  # PostgreSQL's text cannot hold it; SQLite's can
                    raise InvalidEvent(f"{name} contains a NUL character, which this store "
                                       "(PostgreSQL) cannot keep", field=name)
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
            with conn.transaction():  # a savepoint: the error is ours to name, not the server's
                fetched = conn.execute(
                    "INSERT INTO events (kind, id, cause, subject, time, type, body, digest)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq", row).fetchone()
        except pg_errors.UniqueViolation:
            raise StaleWrite(f"event {key!r} was already stored by another writer") from None
        assert fetched is not None
        seq = int(fetched[0])
        for index, step in enumerate(outcome.steps):
            self._version(seq, index, step.subject, step.lifecycle, step.trigger, step.source,
                          step.dest, step.version, records[step.subject])
        rows = list(outbox_rows(key, seq, outcome))
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO outbox (effect_id, seq, n, subject, kind, cause, time, ledger_kind,"
                    " ledger_subject, amount, currency, body)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
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
            with conn.transaction():
                conn.execute("INSERT INTO versions VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             (subject, version, seq, index, lifecycle, trigger, source, state, snapshot))
                if version == 1:
                    conn.execute("INSERT INTO heads (subject, version, created_seq) VALUES (%s, 1, %s)",
                                 (subject, seq))
                elif conn.execute("UPDATE heads SET version = %s WHERE subject = %s AND version = %s",
                                  (version, subject, version - 1)).rowcount != 1:
                    raise stale
        except pg_errors.UniqueViolation:
            raise stale from None

    def finish(self, clock: datetime | None) -> int:
        """Record the clock and bump the generation; returns the new generation."""
        conn = self._conn
        if clock is not None:
            conn.execute("INSERT INTO meta VALUES ('clock', %s) ON CONFLICT (key) DO UPDATE"
                         " SET value = excluded.value", (clock.isoformat(),))
        row = conn.execute("UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'generation'"
                           " RETURNING value").fetchone()
        assert row is not None
        return int(row[0])


class PostgresStore:
    """A durable store in one PostgreSQL database, shared by threads, processes and hosts.

    ``conninfo`` is a libpq connection string or ``postgresql://`` URL. ``pool_size``
    bounds the connections this store opens; ``timeout`` is how long opening, or
    waiting for a pooled connection, may take (seconds) before :class:`StoreError`.
    """

    def __init__(self, conninfo: str, *, pool_size: int = 4, timeout: float = 10.0) -> None:
        self.conninfo = conninfo
        self.lock = threading.RLock()
        self._local = threading.local()
        self._closed = False
        self._timeout = timeout
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo, min_size=1, max_size=max(1, pool_size), kwargs={"autocommit": True},
            timeout=timeout, open=False, name="collab-lifecycles")
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"{self!r}: cannot connect to PostgreSQL within {timeout:g} s: {exc}") from None
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                for statement in DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)  # type: ignore[call-overload]
                conn.execute("INSERT INTO meta VALUES ('schema', %s) ON CONFLICT DO NOTHING",
                             (SCHEMA_VERSION,))
                conn.execute("INSERT INTO meta VALUES ('generation', '0') ON CONFLICT DO NOTHING")
                schema = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except BaseException:
            self._pool.close()
            raise
        if schema is None or schema[0] != SCHEMA_VERSION:
            self.close()
            raise StoreError(f"{self!r}: store schema {schema and schema[0]}, this version reads "
                             f"{SCHEMA_VERSION}")
        if structlog.is_configured():
            _log.debug("store.opened", store=repr(self))

    def __repr__(self) -> str:
        # Never the password: only what names the database.
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.conninfo)
        except psycopg.ProgrammingError:
            return f"{type(self).__name__}(<unreadable conninfo>)"
        where = info.get("host") or "localhost"
        return f"{type(self).__name__}(host={where!s} dbname={info.get('dbname', '')!s})"

    # -- transactions ---------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    @property
    def _conn(self) -> psycopg.Connection[Any]:
        """The connection of this thread's open transaction."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None:
            raise StoreError("no transaction is open on this thread")
        return conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[psycopg.Connection[Any]]:
        outer: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if outer is not None:  # nested in this thread's transaction: the same snapshot
            yield outer
            return
        self._check_open()
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                conn.execute(begin)  # type: ignore[call-overload]
                self._local.conn = conn
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        # a broken connection cannot roll back: the pool replaces it
                        with contextlib.suppress(psycopg.Error):
                            conn.execute("ROLLBACK")
                    raise
                finally:
                    self._local.conn = None
        except PoolTimeout as exc:
            raise StoreError(f"{self!r}: no database connection within {self._timeout:g} s") from exc

    @contextmanager
    def writing(self) -> Iterator[PostgresWriter]:
        """One write transaction, holding the writer lock (the ``generation`` row) of
        every process on this database. Commits on leaving, rolls back on an error."""
        with self.lock, self._transaction("BEGIN") as conn:
            conn.execute("SELECT value FROM meta WHERE key = 'generation' FOR UPDATE")
            yield PostgresWriter(conn)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent read snapshot (or the surrounding transaction of this thread)."""
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"):
            yield

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self._pool.close()

    # -- loading and catching up ----------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def generation(self) -> int:
        with self.reading():
            return int(self._meta("generation") or 0)

    def clock(self) -> datetime | None:
        with self.reading():
            value = self._meta("clock")
        return None if value is None else datetime.fromisoformat(value)

    def changes_since(self, seq: int) -> Changes:
        """As :meth:`.sqlite.SQLiteStore.changes_since`."""
        with self.reading():
            conn = self._conn
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            last = int(row[0]) if row else 0
            query = ("SELECT v.snapshot FROM heads h JOIN versions v"
                     " ON v.subject = h.subject AND v.version = h.version")
            params: tuple[Any, ...] = ()
            if seq:
                query += " WHERE h.subject IN (SELECT subject FROM versions WHERE seq > %s)"
                params = (seq,)
            rows = conn.execute(query + " ORDER BY h.created_seq", params).fetchall()  # type: ignore[call-overload]
            entities = tuple(decode_entity(snapshot) for snapshot, in rows)
            applied = {ident: _digest(digest) for ident, digest in conn.execute(
                "SELECT id, digest FROM events WHERE kind = 'input' AND seq > %s", (seq,))}
            clock = self._meta("clock")
            generation = int(self._meta("generation") or 0)
        return Changes(entities, applied, None if clock is None else datetime.fromisoformat(clock),
                       last, generation)

    # -- reading what happened ------------------------------------------------------
    def recorded(self, event_id: str) -> Recorded | None:
        with self.reading():
            conn = self._conn
            row = conn.execute("SELECT seq, type, subject, time FROM events"
                               " WHERE kind = 'input' AND id = %s", (event_id,)).fetchone()
            if row is None:
                return None
            seq, kind, subject, time = row
            steps = tuple(RecordedStep(*r) for r in conn.execute(
                "SELECT subject, lifecycle, trigger, source, state, version FROM versions"
                " WHERE seq = %s ORDER BY step", (seq,)))
            effects = tuple(_item(r) for r in conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE seq = %s ORDER BY n", (seq,)))  # type: ignore[call-overload]
        return Recorded(event_id, int(seq), kind, subject, parse_instant(time), steps, effects)

    def history(self, subject: str) -> list[HistoryStep]:
        with self.reading():
            rows = self._conn.execute(
                "SELECT v.version, v.trigger, v.source, v.state, v.step, e.kind, e.cause, e.time,"
                " e.type, e.subject FROM versions v JOIN events e ON e.seq = v.seq"
                " WHERE v.subject = %s ORDER BY v.version", (subject,)).fetchall()
        return [HistoryStep(version, trigger, source, state, cause, parse_instant(time),
                            timer=kind_type.removeprefix("timer.") if kind == "timer" and step == 0 else None,
                            via=first if step > 0 else None)
                for version, trigger, source, state, step, kind, cause, time, kind_type, first in rows]

    def ledger(self, subjects: Iterable[str] | None = None) -> list[LedgerLine]:
        query = _LEDGER
        params: tuple[Any, ...] = ()
        if subjects is not None:
            query += " AND ledger_subject = ANY(%s)"
            params = (list(subjects),)
        with self.reading():
            rows = self._conn.execute(query + " ORDER BY seq, n", params).fetchall()  # type: ignore[call-overload]
        return [line for _, line in _ledger_lines(rows)]

    def ledger_page(self, *, after: LedgerPosition | None = None, limit: int = 100) -> LedgerPage:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = _LEDGER
        params: tuple[Any, ...] = ()
        if after is not None:
            query += " AND (seq, n) > (%s, %s)"
            params = tuple(after)
        lines: list[LedgerLine] = []
        last = after
        with self.reading(), self._conn.cursor() as cursor:
            cursor.execute(query + " ORDER BY seq, n", params)  # type: ignore[call-overload]
            while rows := cursor.fetchmany(limit + 1):
                for position, line in _ledger_lines(rows):
                    if len(lines) == limit:
                        return LedgerPage(tuple(lines), last, more=True)
                    lines.append(line)
                    last = position
        return LedgerPage(tuple(lines), last, more=False)

    def stats(self) -> dict[str, int]:
        with self.reading():
            row = self._conn.execute(
                "SELECT (SELECT COUNT(*) FROM events WHERE kind = 'input'),"
                " (SELECT COUNT(*) FROM events WHERE kind = 'timer'), (SELECT COUNT(*) FROM versions),"
                " (SELECT COUNT(*) FROM heads), (SELECT COUNT(*) FROM outbox),"
                " (SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL)").fetchone()
        assert row is not None
        return dict(zip(("inputs", "timers", "versions", "entities", "effects", "pending"),
                        (int(n) for n in row), strict=True))

    # -- the outbox -----------------------------------------------------------------
    def pending(self, limit: int = 100) -> list[OutboxItem]:
        with self.reading():
            rows = self._conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL"  # type: ignore[call-overload]
                " ORDER BY seq, n LIMIT %s", (limit,)).fetchall()
        return [_item(r) for r in rows]

    def _mark(self, conn: psycopg.Connection[Any], effect_ids: Iterable[str]) -> int:
        now = format_instant(datetime.now(UTC))  # for people only, as in SQLite
        return sum(conn.execute(
            "UPDATE outbox SET delivered_at = %s WHERE effect_id = %s AND delivered_at IS NULL",
            (now, effect_id)).rowcount for effect_id in effect_ids)

    def mark_delivered(self, effect_ids: Iterable[str]) -> int:
        """Mark effects delivered; returns how many were still pending."""
        with self._transaction("BEGIN") as conn:
            return self._mark(conn, effect_ids)

    def drain(self, deliver: Callable[[OutboxItem], None], limit: int = 100) -> int:
        """Deliver up to ``limit`` pending effects, oldest first; returns how many.

        The batch is locked ``FOR UPDATE SKIP LOCKED`` for the drain's transaction, so a
        drainer in another replica skips it rather than delivering it again; each effect
        is marked right after ``deliver`` returns. An exception from ``deliver`` stops the
        drain: what was marked is committed, the rest stays pending (and is redelivered,
        with the same ``effect_id``, by the next drain). A crash before the commit leaves
        the whole batch pending: at-least-once, receivers deduplicate on the id.
        """
        done = 0
        failure: Exception | None = None
        with self._transaction("BEGIN") as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL"  # type: ignore[call-overload]
                " ORDER BY seq, n LIMIT %s FOR UPDATE SKIP LOCKED", (limit,)).fetchall()
            for item in map(_item, rows):
                try:
                    deliver(item)
                except Exception as exc:
                    failure = exc
                    break
                self._mark(conn, (item.effect_id,))
                done += 1
        if done and structlog.is_configured():
            _log.debug("outbox.drained", delivered=done)
        if failure is not None:
            raise failure
        return done

    # -- export ---------------------------------------------------------------------
    def input_envelopes(self) -> Iterator[str]:
        with self.reading():
            rows = self._conn.execute("SELECT body FROM events WHERE kind = 'input' ORDER BY seq").fetchall()
        for (body,) in rows:
            yield body

    def export(self, path: str | os.PathLike[str]) -> datetime | None:
        """As :meth:`.sqlite.SQLiteStore.export`: the applied input events, and the clock."""
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
