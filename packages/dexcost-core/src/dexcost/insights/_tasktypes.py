"""Task types: what each workflow costs per run (mean, p50, p95), and how often it retries."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from ._facts import SPEND, TASKS, groups, spend_where, sum_of
from ._period import Period
from ._report import RetryReason
from ._sql import average, money, percent, query, tidy
from ._unknown import UnknownCostSummary, unknown_summary


@dataclass(frozen=True)
class TaskTypeStats:
    """One task type in a period.

    ``spend_usd`` counts events recorded directly in tasks of this type; the per-run
    figures use each run's total, which includes its sub-tasks. Percentiles are
    nearest-rank: the cost of an actual run. ``runs_with_retries`` is how many runs
    had at least one retried call, and ``retry_reasons`` why.
    """

    task_type: str | None
    spend_usd: Decimal
    share_pct: Decimal | None
    event_count: int
    runs: int
    failed_runs: int
    total_run_cost_usd: Decimal
    avg_cost_per_run_usd: Decimal | None
    p50_cost_per_run_usd: Decimal | None
    p95_cost_per_run_usd: Decimal | None
    max_cost_per_run_usd: Decimal | None
    retry_cost_usd: Decimal
    runs_with_retries: int
    runs_with_retries_pct: Decimal | None
    retries_per_run: Decimal | None
    retry_reasons: tuple[RetryReason, ...]


@dataclass(frozen=True)
class TaskTypeReport:
    """Every task type of a period, most expensive first."""

    period: Period
    total_spend_usd: Decimal
    task_types: tuple[TaskTypeStats, ...]
    unknown_cost: UnknownCostSummary


_ORDER = "COALESCE(total_cost_pico, CAST(total_cost_usd AS REAL) * 1e12)"


def nearest_rank(count: int, pct: int) -> int:
    """The 1-based rank of the ``pct``-th percentile of ``count`` values (nearest rank)."""
    return max(1, (count * pct + 99) // 100)


def percentiles(conn: sqlite3.Connection, period: Period, task_type: str) -> dict[str, Decimal]:
    """The p50, p95 and max cost of one run of ``task_type`` started in ``period``.

    Walks the ``(task_type, total_cost_pico, started_at)`` index in cost order, so
    only the chosen runs are read; a type with amounts too large for picodollars is
    ordered by its text instead.
    """
    where, params = period.clause("started_at")
    base = f"FROM tasks INDEXED BY tasks_type_cost WHERE task_type = ? AND {where}"
    (row,) = query(
        conn,
        f"SELECT count(*) AS n, SUM(total_cost_pico IS NULL) AS big {base}",
        [task_type, *params],
    )
    count, marks = row["n"], {}
    if not count:
        return {}
    for name, pct in (("p50", 50), ("p95", 95), ("max", 100)):
        rank = nearest_rank(count, pct)
        if row["big"]:
            sql = (
                f"SELECT total_cost_usd FROM tasks WHERE task_type = ? AND {where}"
                f" ORDER BY {_ORDER} LIMIT 1 OFFSET ?"
            )
        else:
            sql = f"SELECT total_cost_usd {base} ORDER BY total_cost_pico LIMIT 1 OFFSET ?"
        (pick,) = query(conn, sql, [task_type, *params, rank - 1])
        marks[name] = tidy(Decimal(pick["total_cost_usd"]))
    return marks


def task_type_report(conn: sqlite3.Connection, period: Period | None = None) -> TaskTypeReport:
    """The :class:`TaskTypeReport` of ``period`` (default: all time); runs are the tasks
    of each type (at any depth) started in the period."""
    period = period or Period.all_time()
    with groups(conn, period) as g:
        spend = {
            r["task_type"]: r
            for r in query(
                conn,
                f"SELECT task_type, SUM(n) AS n, {SPEND}, {spend_where('is_retry', 'retry')}"
                f" FROM {g} GROUP BY 1",
            )
        }
        reasons: dict[str | None, list[RetryReason]] = {}
        for r in query(
            conn,
            f"SELECT task_type, retry_reason, SUM(n) AS n, {SPEND} FROM {g} WHERE is_retry"
            " GROUP BY 1, 2",
        ):
            reasons.setdefault(r["task_type"], []).append(
                RetryReason(r["retry_reason"], r["n"], money(r, "spend"))
            )
        unknown = unknown_summary(conn, g)
    with groups(conn, period, source=TASKS, table="temp.dexcost_type_runs") as tg:
        runs = {
            r["task_type"]: r
            for r in query(
                conn,
                "SELECT task_type, SUM(n) AS runs,"
                " COALESCE(SUM(CASE WHEN status = 'failed' THEN n END), 0) AS failed,"
                f" SUM(retried) AS retried, SUM(retries) AS retries, {sum_of('cost')}"
                f" FROM {tg} GROUP BY 1",
            )
        }
    ranks = {name: percentiles(conn, period, name) for name in runs}
    total = tidy(sum((money(r, "spend") for r in spend.values()), Decimal(0)))
    stats = [
        _stats(name, spend.get(name), runs.get(name), ranks.get(name, {}), reasons, total)
        for name in set(spend) | set(runs)
    ]
    stats.sort(key=lambda s: (-s.spend_usd, -s.total_run_cost_usd, s.task_type or ""))
    return TaskTypeReport(period, total, tuple(stats), unknown)


def _stats(
    name: str | None,
    events: sqlite3.Row | None,
    runs: sqlite3.Row | None,
    marks: dict[str, Decimal],
    reasons: dict[str | None, list[RetryReason]],
    total: Decimal,
) -> TaskTypeStats:
    zero = Decimal(0)
    count = runs["runs"] if runs else 0
    run_cost = money(runs, "cost") if runs else zero
    spend = money(events, "spend") if events else zero
    retried = runs["retried"] if runs else 0
    return TaskTypeStats(
        task_type=name,
        spend_usd=spend,
        share_pct=percent(spend, total),
        event_count=events["n"] if events else 0,
        runs=count,
        failed_runs=runs["failed"] if runs else 0,
        total_run_cost_usd=run_cost,
        avg_cost_per_run_usd=average(run_cost, count),
        p50_cost_per_run_usd=marks.get("p50"),
        p95_cost_per_run_usd=marks.get("p95"),
        max_cost_per_run_usd=marks.get("max"),
        retry_cost_usd=money(events, "retry") if events else zero,
        runs_with_retries=retried,
        runs_with_retries_pct=percent(Decimal(retried), Decimal(count)),
        retries_per_run=average(Decimal(runs["retries"]), count) if runs else None,
        retry_reasons=tuple(
            sorted(
                reasons.get(name, []), key=lambda r: (-r.cost_usd, -r.event_count, r.reason or "")
            )
        ),
    )
