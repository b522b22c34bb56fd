"""Opening the store: one writing connection per writer, read-only ones for insights."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ._schema import (
    SCHEMA_VERSION,
    StoreError,
    check_not_newer,
    has_foreign_tables,
    migrate,
    read_version,
)

#: How long one statement waits for another process's write lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 10_000
PAGE_SIZE = 16384
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


class StoreNotFoundError(StoreError, FileNotFoundError):
    """There is no store at the given path (nothing has been recorded there yet)."""


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked/busy": retrying will succeed."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return (code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_write_connection(path: Path, *, attempts: int = 50) -> sqlite3.Connection:
    """Open ``path`` for writing (creating it and its directory), in WAL mode, migrated.

    Busy errors while another process creates or converts the same file are retried.
    Raises :class:`SchemaVersionError` for a store written by a newer dexcost and
    :class:`StoreError` for a file that is not a dexcost store (left untouched).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    delay = 0.01
    for attempt in range(attempts):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = read_version(conn)
            check_not_newer(version, path)
            if version == 0:
                # Tables and the version commit together: if tables are visible now but
                # the version read above was 0, another process has just created the
                # store, so read the version again before calling the file foreign.
                if has_foreign_tables(conn) and read_version(conn) == 0:
                    raise StoreError(
                        f"{path} is an SQLite database that dexcost did not create; point "
                        f"dexcost at a new file (DEXCOST_BUFFER_PATH or buffer_path=)"
                    )
                # Only takes effect on a new file. Appends and range scans gain from large
                # pages: about 6% more events/s than 4 KiB, and slightly smaller files.
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, path)
        except sqlite3.OperationalError as exc:
            conn.close()
            if not is_busy(exc) or attempt == attempts - 1:
                raise StoreError(f"cannot open the dexcost store at {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            continue
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot open the dexcost store at {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn
    raise AssertionError("unreachable")  # pragma: no cover


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open an existing store for reading; rows come back as :class:`sqlite3.Row`.

    A store written by an older dexcost is upgraded first (through a short write
    connection). Raises :class:`StoreNotFoundError` when there is no file,
    :class:`SchemaVersionError` when a newer dexcost wrote it and :class:`StoreError`
    when the file is not a dexcost store.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise StoreNotFoundError(f"no dexcost store at {p}")
    conn: sqlite3.Connection | None = None
    try:
        conn = _open_ro(p)
        version = read_version(conn)
        if version < SCHEMA_VERSION:
            conn.close()
            conn = None
            open_write_connection(p).close()
            conn = _open_ro(p)
            version = read_version(conn)
        check_not_newer(version, p)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(f"cannot read the dexcost store at {p}: {exc}") from exc
        raise
    conn.row_factory = sqlite3.Row
    return conn


def _open_ro(p: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn
