"""The spend report: totals, customers, task types, retries and unpriced calls.

Spend comes from ``events`` (each event counted once); the per-run cost of a task type
from ``tasks`` (a task's total already includes its sub-tasks). The events of the
period are grouped once into a temporary table; every breakdown is a small SQL
aggregation over it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from ._facts import TASKS, groups, sum_of
from ._period import Period
from ._sql import average, money, percent, query
from ._unknown import UnknownCostSummary, unknown_summary


@dataclass(frozen=True)
class CustomerSpend:
    """What one customer cost in the period (``customer_id`` None: unattributed)."""

    customer_id: str | None
    spend_usd: Decimal
    share_pct: Decimal | None
    event_count: int
    task_count: int
    retry_cost_usd: Decimal
    retry_pct: Decimal | None


@dataclass(frozen=True)
class TaskTypeSpend:
    """What one kind of task cost: its events' spend and the cost of a typical run.

    ``spend_usd`` counts the events recorded directly in tasks of this type;
    ``avg_cost_per_run_usd`` averages the runs' totals, which include sub-tasks.
    """

    task_type: str | None
    spend_usd: Decimal
    event_count: int
    runs: int
    failed_runs: int
    avg_cost_per_run_usd: Decimal | None
    retry_cost_usd: Decimal


@dataclass(frozen=True)
class RetryReason:
    """Retried calls for one reason (``reason`` None: not given)."""

    reason: str | None
    event_count: int
    cost_usd: Decimal


@dataclass(frozen=True)
class RetrySummary:
    """Money spent on retries: events flagged ``is_retry``."""

    event_count: int
    cost_usd: Decimal
    pct_of_spend: Decimal | None
    by_reason: tuple[RetryReason, ...]


@dataclass(frozen=True)
class SpendReport:
    """The answer to "what did AI cost us, for whom, on what, and how much was waste"."""

    period: Period
    total_spend_usd: Decimal
    event_count: int
    task_count: int
    failed_task_count: int
    avg_cost_per_task_usd: Decimal | None
    by_customer: tuple[CustomerSpend, ...]
    by_task_type: tuple[TaskTypeSpend, ...]
    retries: RetrySummary
    unknown_cost: UnknownCostSummary


def spend_report(conn: sqlite3.Connection, period: Period | None = None) -> SpendReport:
    """Compute the :class:`SpendReport` of ``period`` (default: all time).

    ``task_count`` counts top-level tasks started in the period and
    ``avg_cost_per_task_usd`` is the total spend divided by it. Money is exact Decimal;
    averages are rounded to the picodollar and percentages to 0.01.
    """
    period = period or Period.all_time()
    with (
        groups(conn, period) as g,
        groups(conn, period, source=TASKS, table="temp.dexcost_task_groups") as tg,
    ):
        return _report(conn, period, g, tg)


def _report(conn: sqlite3.Connection, period: Period, g: str, tg: str) -> SpendReport:
    # The groups already hold sums: re-summing their _hi/_lo parts stays exact.
    spend = "SUM(spend_hi) AS spend_hi, SUM(spend_lo) AS spend_lo"
    retry = (
        "SUM(CASE WHEN is_retry THEN spend_hi END) AS retry_hi,"
        " SUM(CASE WHEN is_retry THEN spend_lo END) AS retry_lo"
    )
    (totals,) = query(
        conn,
        f"SELECT COALESCE(SUM(n), 0) AS n, {spend}, {retry},"
        f" COALESCE(SUM(CASE WHEN is_retry THEN n END), 0) AS retry_n FROM {g}",
    )
    total = money(totals, "spend")
    retry_total = money(totals, "retry")

    (roots,) = query(
        conn,
        "SELECT COALESCE(SUM(n), 0) AS n,"
        f" COALESCE(SUM(CASE WHEN status = 'failed' THEN n END), 0) AS failed FROM {tg}"
        " WHERE is_root",
    )

    customer_tasks: dict[str | None, int] = {
        row["customer_id"]: row["n"]
        for row in query(
            conn, f"SELECT customer_id, SUM(n) AS n FROM {tg} WHERE is_root GROUP BY customer_id"
        )
    }
    customers = []
    for row in query(
        conn, f"SELECT customer_id, SUM(n) AS n, {spend}, {retry} FROM {g} GROUP BY customer_id"
    ):
        spent, retried = money(row, "spend"), money(row, "retry")
        customers.append(
            CustomerSpend(
                customer_id=row["customer_id"],
                spend_usd=spent,
                share_pct=percent(spent, total),
                event_count=row["n"],
                task_count=customer_tasks.pop(row["customer_id"], 0),
                retry_cost_usd=retried,
                retry_pct=percent(retried, spent),
            )
        )
    # Customers whose tasks recorded no cost in the period still show, at $0.
    zero = Decimal(0)
    customers.extend(
        CustomerSpend(name, zero, percent(zero, total), 0, count, zero, None)
        for name, count in customer_tasks.items()
    )

    runs: dict[str | None, sqlite3.Row] = {
        row["task_type"]: row
        for row in query(
            conn,
            "SELECT task_type, SUM(n) AS runs,"
            " COALESCE(SUM(CASE WHEN status = 'failed' THEN n END), 0) AS failed,"
            f" {sum_of('cost')} FROM {tg} GROUP BY task_type",
        )
    }
    types = []
    seen = set()
    for row in query(
        conn, f"SELECT task_type, SUM(n) AS n, {spend}, {retry} FROM {g} GROUP BY task_type"
    ):
        seen.add(row["task_type"])
        types.append(_task_type(row["task_type"], row, runs.get(row["task_type"])))
    types.extend(_task_type(name, None, runs[name]) for name in runs if name not in seen)

    reasons = tuple(
        RetryReason(row["retry_reason"], row["n"], money(row, "spend"))
        for row in query(
            conn,
            f"SELECT retry_reason, SUM(n) AS n, {spend} FROM {g} WHERE is_retry"
            " GROUP BY retry_reason",
        )
    )
    return SpendReport(
        period=period,
        total_spend_usd=total,
        event_count=totals["n"],
        task_count=roots["n"],
        failed_task_count=roots["failed"],
        avg_cost_per_task_usd=average(total, roots["n"]),
        by_customer=tuple(sorted(customers, key=lambda c: (-c.spend_usd, c.customer_id or ""))),
        by_task_type=tuple(sorted(types, key=lambda t: (-t.spend_usd, t.task_type or ""))),
        retries=RetrySummary(
            event_count=totals["retry_n"],
            cost_usd=retry_total,
            pct_of_spend=percent(retry_total, total),
            by_reason=tuple(sorted(reasons, key=lambda r: (-r.cost_usd, r.reason or ""))),
        ),
        unknown_cost=unknown_summary(conn, g),
    )


def _task_type(
    name: str | None, events: sqlite3.Row | None, runs: sqlite3.Row | None
) -> TaskTypeSpend:
    run_count = runs["runs"] if runs is not None else 0
    return TaskTypeSpend(
        task_type=name,
        spend_usd=money(events, "spend") if events is not None else Decimal(0),
        event_count=events["n"] if events is not None else 0,
        runs=run_count,
        failed_runs=runs["failed"] if runs is not None else 0,
        avg_cost_per_run_usd=average(money(runs, "cost"), run_count) if runs else None,
        retry_cost_usd=money(events, "retry") if events is not None else Decimal(0),
    )
