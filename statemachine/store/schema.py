"""The SQLite schema: one place, versioned.

* ``events``: append-only, in commit order (``seq``). Input events keep their
  envelope and content digest; ``kind`` = ``timer`` rows record timer firings (their
  ``cause`` is the arming event), so every entity version and effect has a row that
  explains it. ``(kind, id)`` is unique: an input id is applied at most once.
* ``versions``: every entity version, ``(subject, version)`` unique: optimistic
  concurrency. ``snapshot`` is the committed record (``NULL`` only for a version that
  the same event superseded at once, e.g. an entity stepped twice by one cascade).
* ``heads``: the latest version of each entity and the event that created it, so
  loading is one snapshot per entity, in order of creation.
* ``outbox``: the effects, written in the same transaction as their event;
  ``delivered_at`` stays ``NULL`` until a delivery loop marks it.
* ``meta``: schema version, the engine clock, and a generation bumped by every write
  so other connections notice cheaply that they must catch up.
"""

from __future__ import annotations

__all__ = ["DDL", "SCHEMA_VERSION"]

SCHEMA_VERSION = "1"

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL CHECK (kind IN ('input', 'timer')),
    id      TEXT NOT NULL,
    cause   TEXT NOT NULL,
    subject TEXT NOT NULL,
    time    TEXT NOT NULL,
    type    TEXT NOT NULL,
    body    TEXT NOT NULL,
    digest  BLOB,
    UNIQUE (kind, id)
);

CREATE TABLE IF NOT EXISTS versions (
    subject   TEXT NOT NULL,
    version   INTEGER NOT NULL CHECK (version >= 1),
    seq       INTEGER NOT NULL REFERENCES events (seq),
    step      INTEGER NOT NULL,
    lifecycle TEXT NOT NULL,
    trigger   TEXT NOT NULL,
    source    TEXT NOT NULL,
    state     TEXT NOT NULL,
    snapshot  TEXT,
    PRIMARY KEY (subject, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_by_seq ON versions (seq, step);

CREATE TABLE IF NOT EXISTS heads (
    subject     TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    created_seq INTEGER NOT NULL REFERENCES events (seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS heads_by_creation ON heads (created_seq);

CREATE TABLE IF NOT EXISTS outbox (
    effect_id      TEXT PRIMARY KEY,
    seq            INTEGER NOT NULL REFERENCES events (seq),
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
CREATE INDEX IF NOT EXISTS outbox_ledger ON outbox (ledger_subject) WHERE ledger_kind IS NOT NULL;
"""
