"""The index of applied event ids, kept on disk so that a long replay's memory stays flat.

Idempotency (event-log spec: a repeated id with identical content is a duplicate, the
same id with different content a conflict) needs every applied id and its content
digest. In a plain ``dict`` those ~70 bytes per event are the one thing in the runtime
that grows with the length of the log rather than with the live entities.
:class:`SpilledIds` is an exact ``MutableMapping[str, Digest]`` whose memory does not grow
with the number of ids, tuned for the runtime's two hot calls:

* ``get(id)``, once per event and almost always a miss: a small dict of pending rows,
  then in-memory bloom filters (``rbloom``) that answer a miss without touching the
  disk. Only a hit or a false positive (at most ``false_positive_rate`` of the misses)
  costs a ``SELECT``; correctness never depends on the filters.
* ``ids[id] = digest``, once per applied event: the row joins the pending dict, and every
  ``batch`` rows are written with one ``executemany`` in one transaction.

Rows live in a private temporary SQLite database (``sqlite3.connect("")``): SQLite
creates its file lazily, once the page cache (``cache_kib``) is full, unlinks it as soon
as it is opened and so nothing is left behind, not even after a crash. Until then the
database sits in the page cache. Only a SQLite built to keep temporary databases in
memory (``SQLITE_TEMP_STORE`` 2 or 3) would not spill; there, and whenever ``directory``
is given, the rows go to a named file in that directory instead, removed on ``close()``
or when the object is collected.

Costs, stated once: the filters keep about 1.8 bytes per id, up to 3.7 just after a new
filter of twice the capacity joined (each is allocated whole); SQLite keeps at most
``cache_kib`` of pages, the pending dict at most ``batch`` rows. ``len`` and iteration
read the table (``len`` counts it, O(n)); iteration yields ids in code-point order, not
insertion order. ``dict(ids)`` looks every id up once: ``dict(ids.items())`` reads in bulk.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import tempfile
import weakref
from collections.abc import ItemsView, Iterable, Iterator, Mapping, MutableMapping, ValuesView
from types import TracebackType
from typing import Any, Final, NoReturn, TypeAlias, TypeVar, overload

from rbloom import Bloom

__all__ = ["Digest", "SpilledIds"]

_T = TypeVar("_T")

#: A content digest as the index keeps it: the engine's are ints below 2**60
#: (:func:`statemachine.envelope.digest`); bytes are kept as well, exactly.
Digest: TypeAlias = int | bytes
_INT64: Final = 2**63

#: Each new filter holds twice the ids of the one before and gets a tighter false
#: positive rate (times ``_TIGHTENING``): the rates form a geometric series, so a miss
#: asked of every filter is a false positive with probability at most the configured
#: rate however many filters there are (Almeida et al., "Scalable Bloom Filters", 2007).
_GROWTH: Final = 2
_TIGHTENING: Final = 0.8

_SCHEMA: Final = "CREATE TABLE applied(id TEXT PRIMARY KEY, digest NOT NULL) WITHOUT ROWID"
_UPSERT: Final = "INSERT OR REPLACE INTO applied(id, digest) VALUES (?, ?)"
_SELECT: Final = "SELECT digest FROM applied WHERE id = ?"
_DELETE: Final = "DELETE FROM applied WHERE id = ?"
_FIRST_ROWS: Final = "SELECT id, digest FROM applied ORDER BY id LIMIT ?"
_NEXT_ROWS: Final = "SELECT id, digest FROM applied WHERE id > ? ORDER BY id LIMIT ?"

_MISSING: Final = object()


@functools.cache
def _temp_db_in_memory() -> bool:
    """Whether this SQLite keeps a ``""`` database in memory whatever its size.

    ``SQLITE_TEMP_STORE`` 2 (memory unless ``PRAGMA temp_store=FILE``, too late for the
    main database, which is opened by ``connect``) and 3 (always memory) do.
    """
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        options = [row[0] for row in conn.execute("PRAGMA compile_options")]
    return any(option in ("TEMP_STORE=2", "TEMP_STORE=3") for option in options)


def _release(conn: sqlite3.Connection, path: str | None) -> None:
    """Close the database and delete its named file (a ``""`` database SQLite deletes)."""
    conn.close()
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class _Closed:
    """Stands in for the pending rows of a closed index: the hot paths go through the
    pending dict first, so they raise here without an extra check per call."""

    def _closed(self, *args: object) -> NoReturn:
        raise ValueError("operation on a closed SpilledIds")

    get = pop = __contains__ = __setitem__ = __len__ = __iter__ = items = clear = _closed


class SpilledIds(MutableMapping[str, Digest]):
    """Event id -> content digest, exact, with rows on disk and bloom filters in memory.

    Behaves like a ``dict[str, Digest]`` with the same content (``==``, ``in``, ``len``,
    ``get``, ``items``, ``update``, ``dict(x)``, ``set(x)``), except that iteration is
    in code-point order of the ids. Keys must be ``str`` (encodable as UTF-8) and values
    ``bytes`` or 64-bit ``int``: anything else raises ``TypeError`` (or
    ``UnicodeEncodeError``, ``OverflowError``) at once, not at the next flush.

    Not thread-safe: like the runtime that owns it, one caller at a time.

    :param items: initial content, as for ``dict``.
    :param batch: pending rows written together; also the rows read per query when
        iterating.
    :param capacity: ids the first bloom filter is sized for; more filters join as needed.
    :param false_positive_rate: bound on the share of misses that reach SQLite.
    :param cache_kib: SQLite's page cache, the most the table keeps in memory.
    :param directory: put the rows in a named file there rather than in SQLite's own
        temporary file (which follows ``SQLITE_TMPDIR`` or ``TMPDIR``, else ``/var/tmp``).
    """

    def __init__(
        self,
        items: Mapping[str, Digest] | Iterable[tuple[str, Digest]] = (),
        /,
        *,
        batch: int = 4096,
        capacity: int = 65536,
        false_positive_rate: float = 0.01,
        cache_kib: int = 2048,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if not 0.0 < false_positive_rate < 1.0:
            raise ValueError(f"false_positive_rate must be between 0 and 1, got {false_positive_rate}")
        if cache_kib < 1:
            raise ValueError(f"cache_kib must be at least 1, got {cache_kib}")
        self._batch = batch
        self._capacity = capacity
        self._rate = false_positive_rate
        self._pending: dict[str, Digest] = {}
        self._filters: list[Bloom] = []
        self._room = 0
        self._grow()
        path: str | None = None
        if directory is None and not _temp_db_in_memory():
            conn = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        else:
            fd, path = tempfile.mkstemp(prefix="applied-ids-", suffix=".sqlite3", dir=directory)
            os.close(fd)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn = conn
        self._path = path
        self._finalizer = weakref.finalize(self, _release, conn, path)
        try:
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                           f"cache_size=-{cache_kib}"):
                conn.execute(f"PRAGMA {pragma}").fetchall()
            conn.execute(_SCHEMA)
        except BaseException:
            self.close()
            raise
        if items:
            self.update(items)

    # -- the hot paths ------------------------------------------------------------------
    @overload
    def get(self, key: str, /) -> Digest | None: ...
    @overload
    def get(self, key: str, /, default: Digest | _T) -> Digest | _T: ...

    def get(self, key: str, /, default: Any = None) -> Any:
        """The digest of ``key``; a miss is almost always answered by the filters alone."""
        value = self._pending.get(key)
        if value is not None:
            return value
        for bloom in self._filters:
            if key in bloom:
                return self._select(key, default)
        return default

    def __setitem__(self, key: str, value: Digest) -> None:
        """Remember ``key``; written to disk with the next batch."""
        if not isinstance(key, str):
            raise TypeError(f"an event id must be a str, not {type(key).__name__}")
        if type(value) is int:
            if not -_INT64 <= value < _INT64:
                raise OverflowError(f"a digest int must fit in 64 bits, not {value}")
        elif not isinstance(value, bytes):
            raise TypeError(f"a digest must be bytes or an int, not {type(value).__name__}")
        if not key.isascii():
            key.encode()  # a lone surrogate fails here, not in the batch that holds it
        pending = self._pending
        if key not in pending:
            filters = self._filters
            for bloom in filters:
                if key in bloom:
                    # Its bits are set already (an overwrite, or a false positive): they
                    # never turn off, so only new keys count and the filters fit the ids.
                    break
            else:
                filters[-1].add(key)
                self._room -= 1
                if not self._room:
                    self._grow()
        pending[key] = value
        if len(pending) >= self._batch:
            self.flush()

    def __getitem__(self, key: str) -> Digest:
        value = self.get(key)  # a digest is never None
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        if key in self._pending:
            return True
        return self._maybe(key) and self._select(key, None) is not None

    # -- the slow paths -----------------------------------------------------------------
    def __delitem__(self, key: str) -> None:
        """Forget ``key``: one ``DELETE``. The filters keep its bits (a later miss on it
        costs a ``SELECT``, nothing worse); ``clear()`` resets them."""
        found = self._pending.pop(key, _MISSING) is not _MISSING
        if isinstance(key, str) and (found or self._maybe(key)):
            with contextlib.suppress(UnicodeEncodeError):  # such a key was never stored
                found = self._conn.execute(_DELETE, (key,)).rowcount > 0 or found
        if not found:
            raise KeyError(key)

    def clear(self) -> None:
        """Forget every id and reset the filters (``Runtime.restore(reset=True)``)."""
        self._pending.clear()
        self._conn.execute("DELETE FROM applied")
        self._filters.clear()
        self._grow()

    def __len__(self) -> int:
        """Counts the table: O(n), for reports and tests, not for every event."""
        self.flush()
        (count,) = self._conn.execute("SELECT count(*) FROM applied").fetchone()
        return int(count)

    def __iter__(self) -> Iterator[str]:
        for key, _ in self._rows():
            yield key

    def items(self) -> ItemsView[str, Digest]:
        return _Items(self)

    def values(self) -> ValuesView[Digest]:
        return _Values(self)

    def flush(self) -> None:
        """Write the pending rows, in one transaction, in key order (fewer page visits).

        Each bytes digest is bound as a ``bytearray``: Python 3.11's ``sqlite3`` binds
        ``bytes`` only after a failed look-up for an adapter, which costs more than the
        insert (an int binds directly).
        With the journal off a failed write cannot be rolled back, so a failure (a full
        disk) closes the index rather than leave a table that might be damaged.
        """
        pending = self._pending
        if not pending:
            return
        conn = self._conn
        try:
            conn.execute("BEGIN")
            conn.executemany(_UPSERT, [(key, bytearray(value) if type(value) is not int else value)
                                       for key, value in sorted(pending.items())])
            conn.execute("COMMIT")
        except BaseException:
            self.close()
            raise
        pending.clear()

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Release the database (and its file). Idempotent; any later use raises."""
        self._pending = _Closed()  # type: ignore[assignment]
        self._filters = []
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> SpilledIds:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def filter_bytes(self) -> int:
        """Memory the bloom filters hold: the part of the index that grows with the ids."""
        return sum(bloom.size_in_bits for bloom in self._filters) // 8

    def __repr__(self) -> str:
        if self.closed:
            return "<SpilledIds closed>"
        return (f"<SpilledIds pending={len(self._pending)} filters={len(self._filters)} "
                f"filter_bytes={self.filter_bytes}>")

    # -- internals ----------------------------------------------------------------------
    def _grow(self) -> None:
        """Add a filter for twice the ids of the last one, at a tighter rate."""
        stage = len(self._filters)
        capacity = self._capacity * _GROWTH**stage
        rate = self._rate * (1 - _TIGHTENING) * _TIGHTENING**stage
        self._filters.append(Bloom(capacity, rate))
        self._room = capacity

    def _maybe(self, key: object) -> bool:
        """Whether ``key`` may have been stored: False is certain, True may be a false positive."""
        for bloom in self._filters:  # noqa: SIM110 (a plain loop: any() and its generator cost more)
            if key in bloom:
                return True
        return False

    def _select(self, key: object, default: Any) -> Any:
        if not isinstance(key, str):  # SQLite would compare 5 equal to '5'; a dict does not
            return default
        try:
            row = self._conn.execute(_SELECT, (key,)).fetchone()
        except UnicodeEncodeError:  # never stored: it could not have been encoded
            return default
        return default if row is None else row[0]

    def _rows(self) -> Iterator[tuple[str, Digest]]:
        """Every row in key order, ``batch`` rows per query. Each query starts after the last
        key seen, so no cursor stays open across a ``yield``: rows set meanwhile are seen
        if their key comes later, and no key is yielded twice."""
        conn, size = self._conn, self._batch
        self.flush()
        chunk = conn.execute(_FIRST_ROWS, (size,)).fetchall()
        while True:
            yield from chunk
            if len(chunk) < size:
                return
            self.flush()
            chunk = conn.execute(_NEXT_ROWS, (chunk[-1][0], size)).fetchall()


class _Items(ItemsView[str, Digest]):
    """Reads the rows in bulk rather than one ``SELECT`` per key."""

    _mapping: SpilledIds

    def __iter__(self) -> Iterator[tuple[str, Digest]]:
        return self._mapping._rows()


class _Values(ValuesView[Digest]):
    _mapping: SpilledIds

    def __iter__(self) -> Iterator[Digest]:
        for _, value in self._mapping._rows():
            yield value

