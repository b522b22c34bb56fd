"""The store's tables, and the migrations that create and upgrade them.

The schema version lives in ``PRAGMA user_version``. Each migration is a list of SQL
statements that takes the schema from version ``i`` to ``i + 1``; they run in order,
inside one write transaction, so concurrent processes opening a new file agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._schema_v2 import V2 as _V2
from ._schema_v3 import V3 as _V3
from ._schema_v4 import V4 as _V4

#: Column names of ``events``, in the order rows are written.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "task_id",
    "event_type",
    "cost_usd",
    "cost_pico",
    "cost_confidence",
    "pricing_source",
    "pricing_version",
    "occurred_at",
    "service_name",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "latency_ms",
    "is_retry",
    "retry_reason",
    "retry_of",
    "error_type",
    "customer_id",
    "project_id",
    "task_type",
    "details",
)

#: Column names of ``tasks``, in the order rows are written.
TASK_COLUMNS: tuple[str, ...] = (
    "task_id",
    "task_type",
    "customer_id",
    "project_id",
    "parent_task_id",
    "status",
    "started_at",
    "ended_at",
    "total_cost_usd",
    "total_cost_pico",
    "llm_cost_usd",
    "llm_cost_pico",
    "external_cost_usd",
    "external_cost_pico",
    "compute_cost_usd",
    "compute_cost_pico",
    "total_input_tokens",
    "total_output_tokens",
    "total_cached_tokens",
    "total_cache_creation_tokens",
    "retry_count",
    "retry_cost_usd",
    "retry_cost_pico",
    "event_count",
    "error_type",
    "metadata",
    "updated_at",
)

_V1 = [
    """
    CREATE TABLE events (
        event_id              TEXT PRIMARY KEY NOT NULL,
        task_id               TEXT NOT NULL,
        event_type            TEXT NOT NULL,
        cost_usd              TEXT NOT NULL,
        cost_pico             INTEGER,
        cost_confidence       TEXT NOT NULL,
        pricing_source        TEXT NOT NULL,
        pricing_version       TEXT,
        occurred_at           TEXT NOT NULL,
        service_name          TEXT,
        provider              TEXT,
        model                 TEXT,
        input_tokens          INTEGER,
        output_tokens         INTEGER,
        cached_tokens         INTEGER,
        cache_creation_tokens INTEGER,
        reasoning_tokens      INTEGER,
        latency_ms            INTEGER,
        is_retry              INTEGER NOT NULL DEFAULT 0,
        retry_reason          TEXT,
        retry_of              TEXT,
        error_type            TEXT,
        customer_id           TEXT,
        project_id            TEXT,
        task_type             TEXT,
        details               TEXT NOT NULL DEFAULT '{}',
        synced_at             TEXT
    )
    """,
    "CREATE INDEX events_occurred_at ON events (occurred_at)",
    """
    CREATE TABLE tasks (
        task_id                     TEXT PRIMARY KEY NOT NULL,
        task_type                   TEXT NOT NULL,
        customer_id                 TEXT,
        project_id                  TEXT,
        parent_task_id              TEXT,
        status                      TEXT NOT NULL,
        started_at                  TEXT NOT NULL,
        ended_at                    TEXT,
        total_cost_usd              TEXT NOT NULL,
        total_cost_pico             INTEGER,
        llm_cost_usd                TEXT NOT NULL,
        llm_cost_pico               INTEGER,
        external_cost_usd           TEXT NOT NULL,
        external_cost_pico          INTEGER,
        compute_cost_usd            TEXT NOT NULL,
        compute_cost_pico           INTEGER,
        total_input_tokens          INTEGER NOT NULL DEFAULT 0,
        total_output_tokens         INTEGER NOT NULL DEFAULT 0,
        total_cached_tokens         INTEGER NOT NULL DEFAULT 0,
        total_cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
        retry_count                 INTEGER NOT NULL DEFAULT 0,
        retry_cost_usd              TEXT NOT NULL,
        retry_cost_pico             INTEGER,
        event_count                 INTEGER NOT NULL DEFAULT 0,
        error_type                  TEXT,
        metadata                    TEXT NOT NULL DEFAULT '{}',
        updated_at                  TEXT NOT NULL,
        synced_at                   TEXT
    )
    """,
    "CREATE INDEX tasks_started_at ON tasks (started_at)",
    "CREATE INDEX tasks_customer ON tasks (customer_id, started_at)",
    "CREATE INDEX tasks_type ON tasks (task_type, started_at)",
    "CREATE INDEX tasks_parent ON tasks (parent_task_id)",
]

#: ``MIGRATIONS[i]`` upgrades a store from schema version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Sequence[str], ...] = (_V1, _V2, _V3, _V4)

#: The schema version this code writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The local store cannot be used: missing, not a dexcost store, or unreadable."""


class SchemaVersionError(StoreError):
    """The store was written by a newer dexcost whose schema this version does not know."""


def read_version(conn: sqlite3.Connection) -> int:
    """Return the schema version recorded in the database file."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_not_newer(version: int, path: object, known: int = SCHEMA_VERSION) -> None:
    """Raise :class:`SchemaVersionError` when ``version`` is newer than this code knows."""
    if version > known:
        raise SchemaVersionError(
            f"the dexcost store at {path} has schema version {version}, but this dexcost "
            f"only knows versions up to {known}: upgrade dexcost "
            f"(pip install -U dexcost) or point it at another file"
        )


def migrate(
    conn: sqlite3.Connection,
    path: object,
    migrations: Sequence[Sequence[str]] = MIGRATIONS,
) -> int:
    """Apply the ``migrations`` the file lacks; return the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``). The version is read
    again under the write lock, so two processes creating the same file at once apply
    each step exactly once; a failing step leaves the file as it was.
    """
    target = len(migrations)
    version = read_version(conn)
    check_not_newer(version, path, target)
    if version == target:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = read_version(conn)
        check_not_newer(version, path, target)
        found = version
        for step in migrations[version:]:
            for statement in step:
                conn.execute(statement)
            version += 1
        # PRAGMA does not take parameters; version is an int we computed.
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def has_foreign_tables(conn: sqlite3.Connection) -> bool:
    """Whether a version-0 file already holds tables (so it is not ours to migrate)."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchone()
    return bool(row[0])
