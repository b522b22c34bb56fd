"""Cost intelligence: customers ranked by spend (Pareto), their margins, one customer's detail."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from dexcost._models import Task

from ._facts import SPEND, TASKS, groups, spend_where, sum_of
from ._period import Period
from ._revenue import RevenueView, revenue_for
from ._sql import average, money, percent, query, tidy
from ._statements import service_label
from ._tasks import list_tasks
from ._unknown import UnknownCostSummary, unknown_summary

_TG = "temp.dexcost_customer_tasks"
_NO_REVENUE = "no revenue imported: run `dexcost revenue import FILE.csv` to see margins"


@dataclass(frozen=True)
class CustomerCost:
    """One customer's AI cost in a period, and its margin when revenue is known.

    ``share_pct`` is of the total spend; ``cumulative_pct`` runs down the ranking
    (None for the unattributed row). ``revenue_usd``/``margin_usd`` are None when no
    revenue is known for the customer: unknown, not zero.
    """

    customer_id: str | None
    rank: int | None
    total_usd: Decimal
    llm_usd: Decimal
    non_llm_usd: Decimal
    retry_usd: Decimal
    retry_pct: Decimal | None
    event_count: int
    task_count: int
    avg_cost_per_task_usd: Decimal | None
    share_pct: Decimal | None
    cumulative_pct: Decimal | None
    revenue_usd: Decimal | None
    margin_usd: Decimal | None
    margin_pct: Decimal | None
    unprofitable: bool | None


@dataclass(frozen=True)
class CustomerReport:
    """Which customers drive the cost, how concentrated it is, and who loses money."""

    period: Period
    total_spend_usd: Decimal
    unattributed_usd: Decimal
    task_count: int
    customer_count: int
    top_customer: str | None
    top_customer_share_pct: Decimal | None
    avg_cost_per_customer_usd: Decimal | None
    avg_cost_per_task_usd: Decimal | None
    customers_for_80pct: int
    customers_for_80pct_pct: Decimal | None
    has_revenue: bool
    revenue_note: str | None
    unprofitable_count: int
    customers: tuple[CustomerCost, ...]
    unknown_cost: UnknownCostSummary


def customer_report(conn: sqlite3.Connection, period: Period | None = None) -> CustomerReport:
    """The :class:`CustomerReport` of ``period`` (default: all time).

    The average cost per customer divides the attributed spend by the customers with
    spend or tasks; the unattributed spend is shown apart.
    """
    period = period or Period.all_time()
    with groups(conn, period) as g:
        rows = _customer_rows(conn, g)
        unknown = unknown_summary(conn, g)
    tasks = _task_counts(conn, period)
    revenue = revenue_for(conn, period)
    total = tidy(sum((money(r, "spend") for r in rows), Decimal(0)))
    costs = _rank(rows, tasks, total, revenue)
    named = [c for c in costs if c.customer_id is not None]
    attributed = tidy(sum((c.total_usd for c in named), Decimal(0)))
    top = named[0] if named and named[0].total_usd else None
    needed = _pareto_count(named, attributed)
    note = None if revenue.has_revenue else _NO_REVENUE
    if revenue.other_currencies:
        note = "revenue in other currencies than USD is not converted: " + ", ".join(
            f"{c} ({'/'.join(v)})" for c, v in sorted(revenue.other_currencies.items())
        )
    return CustomerReport(
        period=period,
        total_spend_usd=total,
        unattributed_usd=tidy(total - attributed),
        task_count=sum(tasks.values()),
        customer_count=len(named),
        top_customer=top.customer_id if top else None,
        top_customer_share_pct=top.share_pct if top else None,
        avg_cost_per_customer_usd=average(attributed, len(named)),
        avg_cost_per_task_usd=average(total, sum(tasks.values())),
        customers_for_80pct=needed,
        customers_for_80pct_pct=percent(Decimal(needed), Decimal(len(named))),
        has_revenue=revenue.has_revenue,
        revenue_note=note,
        unprofitable_count=sum(1 for c in costs if c.unprofitable),
        customers=tuple(costs),
        unknown_cost=unknown,
    )


def _customer_rows(conn: sqlite3.Connection, g: str) -> list[sqlite3.Row]:
    retry = spend_where("is_retry", "retry")
    llm = spend_where("event_type = 'llm_call'", "llm")
    return query(
        conn, f"SELECT customer_id, SUM(n) AS n, {SPEND}, {retry}, {llm} FROM {g} GROUP BY 1"
    )


def _task_counts(
    conn: sqlite3.Connection, period: Period, customer_id: str | None = None
) -> dict[str | None, int]:
    with groups(conn, period, source=TASKS, customer_id=customer_id, table=_TG) as tg:
        return {
            r["customer_id"]: r["n"]
            for r in query(
                conn, f"SELECT customer_id, SUM(n) AS n FROM {tg} WHERE is_root GROUP BY 1"
            )
        }


def _rank(
    rows: list[sqlite3.Row], tasks: dict[str | None, int], total: Decimal, revenue: RevenueView
) -> list[CustomerCost]:
    raw = {r["customer_id"]: r for r in rows}
    names = set(raw) | set(tasks)
    zero = Decimal(0)

    def spend(name: str | None) -> Decimal:
        return money(raw[name], "spend") if name in raw else zero

    order: list[str | None] = sorted(
        (n for n in names if n is not None), key=lambda n: (-spend(n), n)
    )
    if None in names:
        order.append(None)
    out, running = [], zero
    for rank, name in enumerate(order, start=1):
        row = raw.get(name)
        cost = spend(name)
        retry = money(row, "retry") if row else zero
        llm = money(row, "llm") if row else zero
        share = percent(cost, total)
        if name is not None and share is not None:
            running += share
        paid = revenue.by_customer.get(name) if name is not None else None
        margin = tidy(paid - cost) if paid is not None else None
        count = tasks.get(name, 0)
        out.append(
            CustomerCost(
                customer_id=name,
                rank=rank if name is not None else None,
                total_usd=cost,
                llm_usd=llm,
                non_llm_usd=tidy(cost - llm),
                retry_usd=retry,
                retry_pct=percent(retry, cost),
                event_count=row["n"] if row else 0,
                task_count=count,
                avg_cost_per_task_usd=average(cost, count),
                share_pct=share,
                cumulative_pct=running if name is not None and share is not None else None,
                revenue_usd=paid,
                margin_usd=margin,
                margin_pct=percent(margin, paid) if margin is not None and paid else None,
                unprofitable=None if margin is None else margin < 0,
            )
        )
    return out


def _pareto_count(named: list[CustomerCost], attributed: Decimal) -> int:
    """How many of the top customers make up 80% of the attributed spend."""
    if attributed <= 0:
        return 0
    running = Decimal(0)
    for i, c in enumerate(named, start=1):
        running += c.total_usd
        if running * 100 >= attributed * 80:
            return i
    return len(named)


@dataclass(frozen=True)
class CustomerTaskType:
    """One customer's cost for one task type: events' spend and its runs."""

    task_type: str | None
    spend_usd: Decimal
    event_count: int
    runs: int
    avg_cost_per_run_usd: Decimal | None
    retry_cost_usd: Decimal


@dataclass(frozen=True)
class ServiceCost:
    """Spend on one provider (LLM calls) or paid service."""

    name: str
    kind: str
    spend_usd: Decimal
    event_count: int


@dataclass(frozen=True)
class CustomerDetail:
    """One customer: its figures, cost by task type and by service, recent tasks."""

    period: Period
    customer: CustomerCost
    by_task_type: tuple[CustomerTaskType, ...]
    by_service: tuple[ServiceCost, ...]
    recent_tasks: tuple[Task, ...]
    unknown_cost: UnknownCostSummary


def customer_detail(
    conn: sqlite3.Connection, customer_id: str, period: Period | None = None, *, recent: int = 10
) -> CustomerDetail:
    """The :class:`CustomerDetail` of ``customer_id`` in ``period`` (default: all time)."""
    period = period or Period.all_time()
    report = customer_report(conn, period)
    match = [c for c in report.customers if c.customer_id == customer_id]
    zero = Decimal(0)
    customer = (
        match[0]
        if match
        else CustomerCost(
            customer_id,
            None,
            zero,
            zero,
            zero,
            zero,
            None,
            0,
            0,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    )
    with groups(conn, period, customer_id=customer_id) as g:
        types = {
            r["task_type"]: r
            for r in query(
                conn,
                f"SELECT task_type, SUM(n) AS n, {SPEND}, {spend_where('is_retry', 'retry')}"
                f" FROM {g} GROUP BY 1",
            )
        }
        services = query(
            conn,
            "SELECT CASE WHEN event_type = 'llm_call' THEN COALESCE(provider, model, '(unknown)')"
            " ELSE COALESCE(service_name, provider, event_type) END AS name,"
            f" event_type = 'llm_call' AS llm, SUM(n) AS n, {SPEND} FROM {g} GROUP BY 1, 2",
        )
        unknown = unknown_summary(conn, g)
    with groups(conn, period, source=TASKS, customer_id=customer_id, table=_TG) as tg:
        runs = {
            r["task_type"]: r
            for r in query(
                conn, f"SELECT task_type, SUM(n) AS runs, {sum_of('cost')} FROM {tg} GROUP BY 1"
            )
        }
    by_type = [
        CustomerTaskType(
            task_type=name,
            spend_usd=money(types[name], "spend") if name in types else zero,
            event_count=types[name]["n"] if name in types else 0,
            runs=runs[name]["runs"] if name in runs else 0,
            avg_cost_per_run_usd=average(money(runs[name], "cost"), runs[name]["runs"])
            if name in runs
            else None,
            retry_cost_usd=money(types[name], "retry") if name in types else zero,
        )
        for name in set(types) | set(runs)
    ]
    by_service = [
        ServiceCost(
            service_label(r["name"]), "llm" if r["llm"] else "service", money(r, "spend"), r["n"]
        )
        for r in services
    ]
    return CustomerDetail(
        period=period,
        customer=customer,
        by_task_type=tuple(sorted(by_type, key=lambda t: (-t.spend_usd, t.task_type or ""))),
        by_service=tuple(sorted(by_service, key=lambda s: (-s.spend_usd, s.name))),
        recent_tasks=tuple(
            list_tasks(conn, period=period, customer_id=customer_id, root_only=True, limit=recent)
        ),
        unknown_cost=unknown,
    )
