"""Tracked costs in the FinOps FOCUS 1.2 format, one row per UTC day and cost line.

A row is a day's events of one provider or service and model, for one customer and
task type. The cost columns (BilledCost, EffectiveCost, ListCost, ContractedCost) all
hold dexcost's **tracked** cost, not a provider's bill; the customer, task type and
cost confidence are in ``Tags`` and in ``x_`` columns, as FOCUS allows. Unpriced calls
are kept, at 0 with ``x_CostConfidence`` ``unknown``, so they are not taken as free.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from typing import TextIO

from ._facts import SPEND, groups
from ._period import Period
from ._sql import money, query
from ._statements import service_label

#: Mandatory FOCUS 1.2 columns, the recommended ones dexcost fills, and its own.
FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "Tags",
    "x_CustomerId",
    "x_TaskType",
    "x_EventType",
    "x_CostConfidence",
    "x_RetryCalls",
)


def _z(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _month(day: date) -> tuple[str, str]:
    first = day.replace(day=1)
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _z(first), _z(after)


def write_focus(
    out: TextIO,
    conn: sqlite3.Connection,
    period: Period | None = None,
    *,
    account: str = "dexcost",
) -> int:
    """Write the tracked costs of ``period`` as FOCUS 1.2 CSV to ``out``; return the rows."""
    period = period or Period.all_time()
    keys = "customer_id, task_type, event_type, provider, model, service_name, unknown"
    sums = f"SUM(n) AS n, {SPEND}, COALESCE(SUM(tin), 0) + COALESCE(SUM(tout), 0) AS tokens"
    retry = "SUM(CASE WHEN is_retry THEN n ELSE 0 END) AS retries"
    if period.start is None and period.end is None:
        sql = (
            "SELECT day AS slot, NULLIF(customer_id, '') AS customer_id,"
            " NULLIF(task_type, '') AS task_type, event_type, NULLIF(provider, '') AS provider,"
            " NULLIF(model, '') AS model, NULLIF(service_name, '') AS service_name, unknown,"
            " SUM(n) AS n, SUM(cost_hi) AS spend_hi, SUM(cost_lo) AS spend_lo,"
            " SUM(input_tokens) + SUM(output_tokens) AS tokens,"
            " SUM(CASE WHEN is_retry THEN n ELSE 0 END) AS retries FROM event_days"
            " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING SUM(n) != 0 ORDER BY 1"
        )
        return _write(out, query(conn, sql), account)
    start = period.start.date() if period.start else _first_day(conn)
    end = period.resolved().end or datetime.now(timezone.utc)
    slots, day = [], start
    while day <= end.date():
        lo = max(_midnight(day), period.start) if period.start else _midnight(day)
        hi = min(_midnight(day + timedelta(days=1)), end)
        if lo < hi:
            slots.append((day.isoformat(), Period(lo, hi)))
        day += timedelta(days=1)
    if not slots:
        return _write(out, [], account)
    with groups(conn, slots=slots, table="temp.dexcost_focus") as g:
        rows = query(
            conn, f"SELECT slot, {keys}, {sums}, {retry} FROM {g} GROUP BY 1, {keys} ORDER BY 1"
        )
    return _write(out, rows, account)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _first_day(conn: sqlite3.Connection) -> date:
    row = conn.execute("SELECT min(day) FROM event_days").fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else date.today()


def _write(out: TextIO, rows: list[sqlite3.Row], account: str) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)
    for r in rows:
        day = date.fromisoformat(r["slot"])
        month_start, month_end = _month(day)
        llm = r["event_type"] == "llm_call"
        name = r["provider"] if llm else (r["service_name"] or r["provider"])
        label = service_label(name)
        cost = format(money(r, "spend"), "f")
        confidence = "unknown" if r["unknown"] else "known"
        what = r["model"] if llm and r["model"] else label
        tags = {
            "dexcost/customer_id": r["customer_id"],
            "dexcost/task_type": r["task_type"],
            "dexcost/cost_confidence": confidence,
        }
        writer.writerow(
            [
                cost,
                account,
                f"{account} (tracked by dexcost)",
                "USD",
                month_end,
                month_start,
                "Usage",
                "",
                f"{what} for {r['customer_id'] or 'no customer'} "
                f"({r['task_type'] or 'no task type'})",
                "Usage-Based",
                _z(day + timedelta(days=1)),
                _z(day),
                r["tokens"] if llm else r["n"],
                "Tokens" if llm else "Requests",
                cost,
                cost,
                label,
                cost,
                r["n"],
                "Requests",
                label,
                label,
                "AI and Machine Learning" if llm else "Other",
                label,
                "Generative AI" if llm else "Other (Other)",
                r["model"] or name or "",
                json.dumps(tags, separators=(",", ":")),
                r["customer_id"] or "",
                r["task_type"] or "",
                r["event_type"],
                confidence,
                r["retries"],
            ]
        )
    return len(rows)
