"""The stores under test: one suite, every backend (SQLite on a file, PostgreSQL).

A :class:`Backend` names one database (a file, or a database of the test run's own
cluster, :mod:`pgcluster`) and opens stores on it, as separate processes would; it is
plain data, so it crosses into spawned processes. ``rows`` reads the database with a
connection of its own (SQL written with ``?`` placeholders for both), for the claims
about what is stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from statemachine.store import SQLiteStore
from statemachine.store.sqlite import Writer

BACKENDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class Backend:
    kind: str
    target: str

    def __str__(self) -> str:
        return self.target

    def open(self, **options: Any) -> Any:
        if self.kind == "sqlite":
            return SQLiteStore(self.target, **options)
        from statemachine.store.postgres import PostgresStore

        options.pop("synchronous", None)  # SQLite's durability knob; PostgreSQL commits durably
        return PostgresStore(self.target, **options)

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as conn:
                rows = conn.execute(sql, params).fetchall()
            conn.close()
            return rows
        import psycopg

        with psycopg.connect(self.target, autocommit=True) as conn:
            cursor = conn.execute(sql.replace("?", "%s") if params else sql,  # type: ignore[arg-type]
                                  params or None)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []

    def execute(self, sql: str, *params: Any) -> None:
        self.rows(sql, *params)

    @property
    def store_class(self) -> type:
        if self.kind == "sqlite":
            return SQLiteStore
        from statemachine.store.postgres import PostgresStore

        return PostgresStore

    @property
    def writer_class(self) -> type:
        if self.kind == "sqlite":
            return Writer
        from statemachine.store.postgres import PostgresWriter

        return PostgresWriter

    def disk_full(self) -> Exception:
        """What the database raises when it cannot write."""
        if self.kind == "sqlite":
            return sqlite3.OperationalError("database or disk is full")
        import psycopg

        return psycopg.errors.DiskFull("could not extend file: No space left on device")


def new_backend(request: pytest.FixtureRequest, kind: str, base: Path) -> Callable[[], Backend]:
    """A factory of fresh, empty databases of ``kind``."""
    if kind == "sqlite":
        counter = iter(range(1, 1_000_000))
        return lambda: Backend("sqlite", str(base / f"store{next(counter)}.db"))
    cluster = request.getfixturevalue("pg_cluster")
    return lambda: Backend("postgres", cluster.new_database())


@pytest.fixture(params=BACKENDS)
def fresh(request, tmp_path) -> Callable[[], Backend]:
    """A factory of empty databases, once per backend."""
    return new_backend(request, request.param, tmp_path)


@pytest.fixture
def db(fresh) -> Backend:
    """One empty database, once per backend."""
    return fresh()
