"""Schema creation, migrations, and refusal of what this version cannot safely use."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dexcost.store import (
    SCHEMA_VERSION,
    LocalStore,
    SchemaVersionError,
    StoreError,
    StoreNotFoundError,
    connect_readonly,
)
from dexcost.store._schema import EVENT_COLUMNS, MIGRATIONS, TASK_COLUMNS, migrate, read_version


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_a_new_file_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "new.db"
    LocalStore(path).close()
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "page_size") == 16384
    assert columns(path, "events") == [*EVENT_COLUMNS, "synced_at"]
    assert columns(path, "tasks") == [*TASK_COLUMNS, "synced_at"]


def test_an_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    conn = connect_readonly(path)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    finally:
        conn.close()
    assert pragma(path, "user_version") == SCHEMA_VERSION


def open_autocommit(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_migrations_apply_in_order_and_only_the_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    LocalStore(path).close()  # at the current version
    later = (
        *MIGRATIONS,
        ["ALTER TABLE events ADD COLUMN region TEXT"],
        ["CREATE INDEX events_region ON events (region)", "UPDATE events SET region = 'eu'"],
    )
    conn = open_autocommit(path)
    try:
        assert migrate(conn, path, later) == SCHEMA_VERSION
        assert read_version(conn) == SCHEMA_VERSION + 2
        assert migrate(conn, path, later) == SCHEMA_VERSION + 2  # nothing left to do
        # This code, which knows fewer steps, now refuses the file.
        with pytest.raises(SchemaVersionError):
            migrate(conn, path)
    finally:
        conn.close()
    assert "region" in columns(path, "events")


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    LocalStore(path).close()
    broken = (*MIGRATIONS, ["ALTER TABLE events ADD COLUMN region TEXT", "NOT SQL AT ALL"])
    conn = open_autocommit(path)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, path, broken)
        assert read_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()
    assert "region" not in columns(path, "events")


@pytest.mark.parametrize("opener", [LocalStore, connect_readonly])
def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path, opener: object) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match=r"upgrade dexcost"):
        opener(path)  # type: ignore[operator]  # raises before returning a connection
    assert pragma(path, "user_version") == SCHEMA_VERSION + 1


def test_a_database_that_is_not_ours_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="did not create"):
        LocalStore(path)
    with pytest.raises(StoreError, match="did not create"):
        connect_readonly(path)
    assert pragma(path, "journal_mode") == "delete"
    assert columns(path, "events") == []


def test_a_file_that_is_not_sqlite_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello, this is not a database" * 100)
    with pytest.raises(StoreError):
        LocalStore(path)
    with pytest.raises(StoreError):
        connect_readonly(path)


def test_reading_a_missing_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no dexcost store"):
        connect_readonly(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_readonly_connection_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    LocalStore(path).close()
    conn = connect_readonly(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM events")
    finally:
        conn.close()
