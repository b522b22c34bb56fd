"""Writing one batch of rows: one transaction, multi-row statements, upserts, retries.

A batch is never lost because one of its records is malformed: when the fast path
fails on a row, the batch is rolled back and written row by row, the bad row retried
once in a sanitised form and, failing that, logged and skipped.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from dexcost._deferred import Record, build
from dexcost._models import Event

from ._connect import is_busy
from ._multirow import write_rows
from ._rollup import add_new, existing_ids, split_new
from ._rows import TaskSnapshot, lenient_event_row, task_row
from ._rows import event_rows as _convert_events
from ._schema import EVENT_COLUMNS, TASK_COLUMNS
from ._schema_v3 import ADD_STORED_EVENT
from ._values import Row, sanitize_row

log = logging.getLogger("dexcost.store")

#: Most rows written in one transaction. Under a backlog, larger batches spread the
#: roll-up upserts and the commit over more events (5,000 costs about 4% fewer
#: instructions per event than 2,000); the write lock is then held for about 40 ms.
BATCH_SIZE = 5000
#: Non-busy operational errors (disk full, read-only file) are retried this often.
_OTHER_ERROR_ATTEMPTS = 5
_MAX_LOGGED_BAD_ROWS = 10


def _upsert(table: str, columns: Sequence[str], key: str) -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    # A changed row must be pushed again by the sync worker: clear its synced_at.
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}, synced_at = NULL"
    )


EVENT_UPSERT = _upsert("events", EVENT_COLUMNS, "event_id")
# Inserts of events known to be new: an upsert costs three times more, the events
# table having an update trigger.
EVENT_INSERT = EVENT_UPSERT[: EVENT_UPSERT.index(" ON CONFLICT")]
EVENT_INSERT_NEW = EVENT_INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
TASK_UPSERT = _upsert("tasks", TASK_COLUMNS, "task_id")


def event_rows(events: Sequence[Event | Record]) -> list[Row]:
    """Convert events to rows; a record the fast conversion rejects goes the lenient way."""
    rows, slow = _convert_events(events)
    for item in slow:
        if type(item) is list:  # a deferred record: the lenient way takes its Event
            try:
                e = build(item)
            except Exception:
                log.exception(
                    "dexcost could not convert a deferred event (%d values); it was not stored",
                    len(item),
                )
                continue
        else:
            e = item  # type: ignore[assignment]
        try:
            rows.append(lenient_event_row(e))
        except Exception:
            log.exception("dexcost could not convert event %r; it was not stored", e)
    return rows


def latest_snapshots(snapshots: Sequence[TaskSnapshot]) -> Sequence[TaskSnapshot]:
    """Each task's last snapshot among ``snapshots`` (put in order): a task that began
    and ended within one batch is written once, as it ended."""
    if len(snapshots) < 2:
        return snapshots
    latest: dict[Any, TaskSnapshot] = {}
    odd: list[TaskSnapshot] = []
    for snapshot in snapshots:
        try:
            latest[snapshot.values[0]] = snapshot  # by task_id
        except (TypeError, IndexError):  # no usable id: written as it is
            odd.append(snapshot)
    if len(latest) + len(odd) == len(snapshots):
        return snapshots
    return [*latest.values(), *odd]


def task_rows(snapshots: Sequence[TaskSnapshot]) -> list[Row]:
    """Convert task snapshots to rows (each task's last only), leniently where needed."""
    rows: list[Row] = []
    for snapshot in latest_snapshots(snapshots):
        try:
            rows.append(task_row(snapshot))
        except Exception:
            try:
                rows.append(task_row(snapshot, lenient=True))
            except Exception:
                log.exception("dexcost could not convert a task %r", snapshot.values)
    return rows


class BatchWriter:
    """Writes batches through one connection; owned by one thread at a time."""

    def __init__(self, conn: sqlite3.Connection, path: object) -> None:
        self.conn = conn
        self.path = path

    def write(
        self,
        events: Sequence[Event | Record],
        tasks: Sequence[TaskSnapshot],
        give_up: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Write ``events`` and ``tasks`` in one transaction; True once committed.

        Busy errors (another process holds the write lock) are retried until
        ``give_up()`` says so; other operational errors a few times. What cannot be
        written is logged with its size, never dropped silently.
        """
        rows = event_rows(events)
        converted = task_rows(tasks)
        delay = 0.05
        other_errors = 0
        warned = False
        while True:
            try:
                self._transaction(rows, converted)
                if warned:
                    log.warning("dexcost store %s is writable again", self.path)
                return True
            except sqlite3.OperationalError as exc:
                self._rollback()
                busy = is_busy(exc)
                if not busy:
                    other_errors += 1
                if give_up() or other_errors >= _OTHER_ERROR_ATTEMPTS:
                    log.error(
                        "dexcost could not write %d events and %d tasks to %s: %s",
                        len(rows),
                        len(converted),
                        self.path,
                        exc,
                    )
                    return False
                if not warned:
                    log.warning("dexcost store %s: %s; retrying", self.path, exc)
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _transaction(self, rows: Sequence[Row], task_rows: Sequence[Row]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                self._events(rows)
            if task_rows:
                write_rows(conn, TASK_UPSERT, task_rows)
        except sqlite3.OperationalError:
            raise
        except Exception:
            # A malformed row: start again, one row at a time.
            self._rollback()
            conn.execute("BEGIN IMMEDIATE")
            bad = self._one_by_one(EVENT_UPSERT, rows, "event", rollup=True)
            bad += self._one_by_one(TASK_UPSERT, task_rows, "task")
            if bad > _MAX_LOGGED_BAD_ROWS:
                log.error("dexcost skipped %d malformed records in one batch", bad)
        conn.execute("COMMIT")

    def _events(self, rows: Sequence[Row]) -> None:
        """Insert the events and add the new ones to the roll-up, in Python.

        Usually every event is new: one ``INSERT OR IGNORE`` inserts them all. When it
        skipped some (an event put again, here or before), it is undone and the batch
        split: first versions are inserted, then the rest upserted, so each replacing
        upsert's update trigger moves its event in the roll-up.
        """
        conn = self.conn
        conn.execute("SAVEPOINT dexcost_events")
        if write_rows(conn, EVENT_INSERT_NEW, rows) == len(rows):
            add_new(conn, rows)
        else:
            conn.execute("ROLLBACK TO dexcost_events")
            inserts, upserts = split_new(rows, existing_ids(conn, rows))
            if inserts:
                write_rows(conn, EVENT_INSERT, inserts)
                add_new(conn, inserts)
            if upserts:
                write_rows(conn, EVENT_UPSERT, upserts)
        conn.execute("RELEASE dexcost_events")

    def _one_by_one(self, sql: str, rows: Sequence[Row], kind: str, rollup: bool = False) -> int:
        bad = 0
        for row in rows:
            try:
                self._one(sql, row, rollup)
                continue
            except sqlite3.OperationalError:
                raise
            except Exception:
                pass
            try:
                self._one(sql, sanitize_row(row), rollup)
            except sqlite3.OperationalError:
                raise
            except Exception as exc:
                bad += 1
                if bad <= _MAX_LOGGED_BAD_ROWS:
                    log.error("dexcost could not store %s %s: %s", kind, _key(row), exc)
        return bad

    def _one(self, sql: str, row: Row, rollup: bool) -> None:
        """Write one row; with ``rollup``, add it to ``event_days`` if it is a new event."""
        execute = self.conn.execute
        if not rollup:
            execute(sql, row)
            return
        key = (row[0],)
        new = execute("SELECT 1 FROM events WHERE event_id = ?", key).fetchone() is None
        execute(sql, row)
        if new:
            execute(ADD_STORED_EVENT, key)

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _key(row: Row) -> Any:
    return row[0] if row else None
