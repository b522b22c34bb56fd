"""The overview: total spend, tasks, cost per task and cost efficiency, against the
previous period of the same length."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ._facts import SPEND, groups, spend_where
from ._period import Period
from ._sql import average, money, percent, query, tidy
from ._taskfacts import failure_cost, root_counts
from ._unknown import UnknownCostSummary, unknown_summary


@dataclass(frozen=True)
class PeriodTotals:
    """The top-line figures of one period.

    ``wasted_usd`` is retry cost plus the cost of failed tasks, less the retries inside
    those failed tasks (counted once); ``productive_usd`` is the rest of the spend and
    ``cost_efficiency_pct`` its share of the total.
    """

    period: Period
    total_spend_usd: Decimal
    event_count: int
    task_count: int
    failed_task_count: int
    avg_cost_per_task_usd: Decimal | None
    llm_cost_usd: Decimal
    non_llm_cost_usd: Decimal
    retry_cost_usd: Decimal
    failure_cost_usd: Decimal
    wasted_usd: Decimal
    productive_usd: Decimal
    cost_efficiency_pct: Decimal | None


@dataclass(frozen=True)
class Change:
    """Current against previous period: percentage changes and efficiency in points."""

    spend_pct: Decimal | None
    task_count_pct: Decimal | None
    avg_cost_per_task_pct: Decimal | None
    efficiency_points: Decimal | None


@dataclass(frozen=True)
class Overview:
    """Total AI picture of a period, compared with the period before it."""

    current: PeriodTotals
    previous: PeriodTotals | None
    change: Change | None
    unknown_cost: UnknownCostSummary


def overview(
    conn: sqlite3.Connection, period: Period | None = None, *, now: datetime | None = None
) -> Overview:
    """The :class:`Overview` of ``period`` (default: the last 30 days).

    An open-ended period ends ``now``; the previous period is the one of equal length
    just before it (none for a period without a start).
    """
    period = (period or Period.last(30, now=now)).resolved(now)
    current, unknown = _totals(conn, period)
    before = period.previous(now)
    previous = _totals(conn, before)[0] if before is not None else None
    change = None
    if previous is not None:
        change = Change(
            spend_pct=_change(current.total_spend_usd, previous.total_spend_usd),
            task_count_pct=_change(Decimal(current.task_count), Decimal(previous.task_count)),
            avg_cost_per_task_pct=_change(
                current.avg_cost_per_task_usd, previous.avg_cost_per_task_usd
            ),
            efficiency_points=None
            if current.cost_efficiency_pct is None or previous.cost_efficiency_pct is None
            else current.cost_efficiency_pct - previous.cost_efficiency_pct,
        )
    return Overview(current, previous, change, unknown)


def _change(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    if now is None or before is None:
        return None
    return percent(now - before, before)


def _totals(conn: sqlite3.Connection, period: Period) -> tuple[PeriodTotals, UnknownCostSummary]:
    retry_sum = spend_where("is_retry", "retry")
    llm_sum = spend_where("event_type = 'llm_call'", "llm")
    with groups(conn, period) as g:
        (row,) = query(
            conn, f"SELECT COALESCE(SUM(n), 0) AS n, {SPEND}, {retry_sum}, {llm_sum} FROM {g}"
        )
        unknown = unknown_summary(conn, g)
    total, retry, llm = money(row, "spend"), money(row, "retry"), money(row, "llm")
    counts = root_counts(conn, period)
    failed = failure_cost(conn, period)
    wasted = tidy(retry + failed.cost_usd - failed.retry_cost_usd)
    productive = tidy(total - wasted)
    return (
        PeriodTotals(
            period=period,
            total_spend_usd=total,
            event_count=row["n"],
            task_count=counts.task_count,
            failed_task_count=counts.failed_count,
            avg_cost_per_task_usd=average(total, counts.task_count),
            llm_cost_usd=llm,
            non_llm_cost_usd=tidy(total - llm),
            retry_cost_usd=retry,
            failure_cost_usd=failed.cost_usd,
            wasted_usd=wasted,
            productive_usd=productive,
            cost_efficiency_pct=percent(productive, total),
        ),
        unknown,
    )
