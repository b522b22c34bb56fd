"""Recent tasks, newest first, filtered in SQL."""

from __future__ import annotations

import sqlite3

from dexcost._models import Task
from dexcost._types import TASK_STATUSES
from dexcost.store import task_from_row

from ._period import Period
from ._sql import query


def list_tasks(
    conn: sqlite3.Connection,
    *,
    period: Period | None = None,
    customer_id: str | None = None,
    task_type: str | None = None,
    status: str | None = None,
    root_only: bool = False,
    limit: int | None = 20,
) -> list[Task]:
    """Tasks started in ``period``, newest first, as stored (totals include sub-tasks).

    Raises :class:`ValueError` for an unknown ``status`` or a negative ``limit``.
    """
    if status is not None and status not in TASK_STATUSES:
        raise ValueError(f"status must be one of {', '.join(sorted(TASK_STATUSES))}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    where, params = (period or Period.all_time()).clause("started_at")
    conditions: list[str] = [where]
    args: list[object] = list(params)
    for column, value in (
        ("customer_id", customer_id),
        ("task_type", task_type),
        ("status", status),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            args.append(value)
    if root_only:
        conditions.append("parent_task_id IS NULL")
    sql = (
        f"SELECT * FROM tasks WHERE {' AND '.join(conditions)}"
        " ORDER BY started_at DESC, task_id DESC"
    )
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [task_from_row(row) for row in query(conn, sql, args)]
