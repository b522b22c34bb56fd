"""Figures from the ``tasks`` table: top-level task counts and the cost of failed tasks.

A task's totals include its sub-tasks' (roll-up), so the cost of failures is the
total of each failed task that has no failed ancestor: nothing is counted twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ._facts import TASKS, groups
from ._period import Period
from ._sql import money, money_sum, query, split_amount, tidy

_SPLIT = 1_000_000


@dataclass(frozen=True)
class TaskCounts:
    """Top-level tasks started in a period, and how many of them failed."""

    task_count: int
    failed_count: int


@dataclass(frozen=True)
class FailureCost:
    """Failed tasks (without a failed ancestor) started in a period, and their cost."""

    task_count: int
    cost_usd: Decimal
    retry_cost_usd: Decimal


def root_counts(
    conn: sqlite3.Connection, period: Period, customer_id: str | None = None
) -> TaskCounts:
    """Count the top-level tasks started in ``period`` (optionally one customer's)."""
    with groups(
        conn, period, source=TASKS, customer_id=customer_id, table="temp.dexcost_root_counts"
    ) as tg:
        (row,) = query(
            conn,
            "SELECT COALESCE(SUM(n), 0) AS n,"
            f" COALESCE(SUM(CASE WHEN status = 'failed' THEN n END), 0) AS failed FROM {tg}"
            " WHERE is_root",
        )
    return TaskCounts(row["n"], row["failed"])


def failure_cost(
    conn: sqlite3.Connection, period: Period, customer_id: str | None = None
) -> FailureCost:
    """The rolled-up cost of the failed tasks started in ``period``, each counted once."""
    where, params = period.clause("started_at")
    if customer_id is not None:
        where += " AND customer_id = ?"
        params.append(customer_id)
    cte = (
        "WITH RECURSIVE failed AS (SELECT task_id, parent_task_id, total_cost_pico,"
        " total_cost_usd, retry_cost_pico, retry_cost_usd FROM tasks INDEXED BY tasks_failed"
        f" WHERE status = 'failed' AND {where}),"
        " up(task_id, ancestor) AS (SELECT task_id, parent_task_id FROM failed"
        " WHERE parent_task_id IS NOT NULL UNION SELECT up.task_id, t.parent_task_id"
        " FROM up JOIN tasks AS t ON t.task_id = up.ancestor"
        " WHERE t.parent_task_id IS NOT NULL),"
        " counted AS (SELECT * FROM failed AS f WHERE NOT EXISTS (SELECT 1 FROM up"
        " WHERE up.task_id = f.task_id AND up.ancestor IN (SELECT task_id FROM failed)))"
    )
    (row,) = query(
        conn,
        f"{cte} SELECT count(*) AS n, {money_sum('total_cost_pico', 'cost')},"
        f" {money_sum('retry_cost_pico', 'retry')} FROM counted",
        params,
    )
    cost, retry = money(row, "cost"), money(row, "retry")
    if row["cost_big"] or row["retry_big"]:
        extra = query(
            conn,
            f"{cte} SELECT total_cost_pico, total_cost_usd, retry_cost_pico, retry_cost_usd"
            " FROM counted WHERE total_cost_pico IS NULL OR retry_cost_pico IS NULL",
            params,
        )
        cost += _big(extra, "total_cost")
        retry += _big(extra, "retry_cost")
    return FailureCost(row["n"], tidy(cost), tidy(retry))


def _big(rows: Sequence[sqlite3.Row], column: str) -> Decimal:
    """The exact sum of the amounts too large for int64 picodollars among ``rows``."""
    total = 0
    for row in rows:
        if row[f"{column}_pico"] is None:
            parts = split_amount(row[f"{column}_usd"])
            if parts is not None:
                total += parts[0] * _SPLIT + parts[1]
    return Decimal(total).scaleb(-12)
