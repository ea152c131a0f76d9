"""Open a store from one string, as a command line gives it: a URL or a path."""

from __future__ import annotations

import re
from pathlib import Path

from .contract import Store

__all__ = ["describe", "is_postgres", "open_store"]

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: str) -> bool:
    """``postgresql://…`` (or ``postgres://…``) names a PostgreSQL database."""
    return target.startswith(_SCHEMES)


def describe(target: str) -> str:
    """``target`` as it may be printed or logged: a URL's password is masked."""
    if not is_postgres(target):
        return target
    return re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1***@", re.sub(r"(password=)[^&\s]*", r"\1***", target))


def open_store(target: str, *, pool_size: int = 4) -> Store:
    """A :class:`~.postgres.PostgresStore` for a ``postgresql://`` URL, else a
    :class:`~.sqlite.SQLiteStore` on the file at ``target`` (created if missing).

    psycopg is imported only for PostgreSQL, so SQLite users need not install it."""
    if is_postgres(target):
        from .postgres import PostgresStore

        return PostgresStore(target, pool_size=pool_size)
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(target))
