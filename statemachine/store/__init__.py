"""Durable stores for the engine: SQLite (WAL) on a file, or the same in memory.

``Engine(store=SQLiteStore("app.db"))`` commits, per applied event and in one
transaction: the event (append-only, unique id), every new entity version (unique
``(subject, version)``: a stale writer gets :class:`StaleWrite`, never a lost update)
and the emitted effects in an outbox, drained at-least-once by ``Engine.drain``.
Reopening rebuilds the engine from the latest snapshot of each entity; ``export``
writes the applied events as a log the replay turns back into the same states and
ledger. How memory and catching up work: :mod:`.durable`.

PostgreSQL, for several replicas on one database, is
:class:`statemachine.store.postgres.PostgresStore` (the same contract, :mod:`.contract`;
psycopg is imported only there); :func:`.opening.open_store` picks one from a path or a
``postgresql://`` URL.
"""

from .errors import StaleWrite, StoreError
from .records import Changes, HistoryStep, LedgerPage, LedgerPosition, OutboxItem, Recorded, RecordedStep
from .sqlite import MemoryStore, SQLiteStore

__all__ = [
    "Changes",
    "HistoryStep",
    "LedgerPage",
    "LedgerPosition",
    "MemoryStore",
    "OutboxItem",
    "Recorded",
    "RecordedStep",
    "SQLiteStore",
    "StaleWrite",
    "StoreError",
]
