"""Monthly statements: what one customer (or the whole workspace) cost in a month.

Total, a breakdown by service (OpenAI, Pinecone, ...) and model, task count and
average cost per task, and the credits or adjustments recorded for the month. The
CSV form keeps exact amounts; the PDF form (see :mod:`._statement_pdf`) rounds to the
cent for reading.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from dexcost.store._values import format_ts, money_pair, parse_ts

from ._facts import SPEND, TASKS, groups, spend_where
from ._period import Period
from ._sql import average, money, query, tidy
from ._unknown import UnknownCostSummary, unknown_summary

UTC = timezone.utc
_LABELS = {
    "openai": "OpenAI",
    "azure": "Azure OpenAI",
    "anthropic": "Anthropic",
    "bedrock": "Amazon Bedrock",
    "gemini": "Google Gemini",
    "google": "Google Gemini",
    "vertex_ai": "Google Vertex AI",
    "cohere": "Cohere",
    "mistral": "Mistral AI",
    "openrouter": "OpenRouter",
    "litellm": "LiteLLM",
    "pinecone": "Pinecone",
    "google_maps_api": "Google Maps API",
    "aws_lambda": "AWS Lambda",
}


def service_label(name: str | None) -> str:
    """A readable name for a provider or service (``openai`` → ``OpenAI``)."""
    if not name:
        return "(unknown)"
    if name in _LABELS:
        return _LABELS[name]
    return " ".join(w if w.isupper() else w.capitalize() for w in name.replace("_", " ").split())


@dataclass(frozen=True)
class StatementLine:
    """Spend on one service (and model, for LLM calls) in the month."""

    service: str
    model: str | None
    kind: str
    calls: int
    input_tokens: int
    output_tokens: int
    amount_usd: Decimal


@dataclass(frozen=True)
class Adjustment:
    """A credit (negative) or charge added to a month's statement by hand."""

    adjustment_id: str
    month: str
    customer_id: str | None
    amount_usd: Decimal
    description: str
    created_at: datetime


@dataclass(frozen=True)
class TaskTypeLine:
    """Tasks of one type started in the month (at any depth) and the spend recorded in them."""

    task_type: str | None
    runs: int
    amount_usd: Decimal


@dataclass(frozen=True)
class Statement:
    """A month's statement for ``customer_id`` (None: the whole workspace)."""

    month: str
    period: Period
    customer_id: str | None
    generated_at: datetime
    lines: tuple[StatementLine, ...]
    usage_usd: Decimal
    adjustments: tuple[Adjustment, ...]
    adjustments_usd: Decimal
    total_usd: Decimal
    task_count: int
    avg_cost_per_task_usd: Decimal | None
    retry_cost_usd: Decimal
    by_task_type: tuple[TaskTypeLine, ...]
    unknown_cost: UnknownCostSummary


def monthly_statement(
    conn: sqlite3.Connection,
    month: str,
    *,
    customer_id: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> Statement:
    """The :class:`Statement` of ``month`` (``YYYY-MM``, calendar month in ``tz``)."""
    period = Period.month(month, tz=tz)
    with groups(conn, period, customer_id=customer_id) as g:
        rows = query(
            conn,
            "SELECT event_type, CASE WHEN event_type = 'llm_call' THEN provider"
            " ELSE COALESCE(service_name, provider) END AS service,"
            " CASE WHEN event_type = 'llm_call' THEN model END AS model, SUM(n) AS n,"
            f" COALESCE(SUM(tin), 0) AS tin, COALESCE(SUM(tout), 0) AS tout, {SPEND}"
            f" FROM {g} WHERE NOT unknown GROUP BY 1, 2, 3",
        )
        (totals,) = query(conn, f"SELECT {SPEND}, {spend_where('is_retry', 'retry')} FROM {g}")
        spend_by_type = {
            r["task_type"]: money(r, "spend")
            for r in query(conn, f"SELECT task_type, {SPEND} FROM {g} GROUP BY 1")
        }
        unknown = unknown_summary(conn, g)
    with groups(
        conn, period, source=TASKS, customer_id=customer_id, table="temp.dexcost_stmt_tasks"
    ) as tg:
        runs = {
            r["task_type"]: (r["n"], r["roots"])
            for r in query(
                conn,
                "SELECT task_type, SUM(n) AS n, SUM(CASE WHEN is_root THEN n ELSE 0 END) AS roots"
                f" FROM {tg} GROUP BY 1",
            )
        }
    lines = sorted(
        (
            StatementLine(
                service=service_label(r["service"]),
                model=r["model"],
                kind={"llm_call": "llm", "compute_cost": "compute"}.get(r["event_type"], "service"),
                calls=r["n"],
                input_tokens=r["tin"],
                output_tokens=r["tout"],
                amount_usd=money(r, "spend"),
            )
            for r in rows
        ),
        key=lambda line: (line.kind != "llm", line.service, -line.amount_usd, line.model or ""),
    )
    usage = money(totals, "spend")
    adjustments = list_adjustments(conn, month, customer_id)
    adjusted = tidy(sum((a.amount_usd for a in adjustments), Decimal(0)))
    count = sum(roots for _, roots in runs.values())
    types = [
        TaskTypeLine(name, runs.get(name, (0, 0))[0], spend_by_type.get(name, Decimal(0)))
        for name in set(runs) | set(spend_by_type)
    ]
    return Statement(
        month=month,
        period=period,
        customer_id=customer_id,
        generated_at=now or datetime.now(UTC),
        lines=tuple(lines),
        usage_usd=usage,
        adjustments=tuple(adjustments),
        adjustments_usd=adjusted,
        total_usd=tidy(usage + adjusted),
        task_count=count,
        avg_cost_per_task_usd=average(usage, count),
        retry_cost_usd=money(totals, "retry"),
        by_task_type=tuple(sorted(types, key=lambda t: (-t.amount_usd, t.task_type or ""))),
        unknown_cost=unknown,
    )


def list_adjustments(
    conn: sqlite3.Connection, month: str, customer_id: str | None = None
) -> list[Adjustment]:
    """The adjustments of ``month``: one customer's, or every one for the workspace."""
    sql = "SELECT * FROM adjustments WHERE month = ?"
    params: list[object] = [month]
    if customer_id is not None:
        sql += " AND customer_id = ?"
        params.append(customer_id)
    return [
        Adjustment(
            r["adjustment_id"],
            r["month"],
            r["customer_id"],
            Decimal(r["amount_usd"]),
            r["description"],
            parse_ts(r["created_at"]),
        )
        for r in query(conn, sql + " ORDER BY created_at, adjustment_id", params)
    ]


def add_adjustment(
    conn: sqlite3.Connection,
    month: str,
    amount_usd: Decimal,
    description: str,
    *,
    customer_id: str | None = None,
) -> Adjustment:
    """Record a credit (negative) or charge for ``month`` through a write connection."""
    Period.month(month)  # validates the month
    if not description.strip():
        raise ValueError("an adjustment needs a description, e.g. 'Credit for the outage'")
    text, _ = money_pair(amount_usd)
    made = Adjustment(
        str(uuid.uuid4()), month, customer_id, Decimal(text), description.strip(), datetime.now(UTC)
    )
    conn.execute(
        "INSERT INTO adjustments (adjustment_id, month, customer_id, amount_usd, description,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            made.adjustment_id,
            month,
            customer_id,
            text,
            made.description,
            format_ts(made.created_at),
        ),
    )
    return made


#: Columns of the statement CSV.
CSV_COLUMNS = ("month", "customer", "section", "item", "detail", "quantity", "unit", "amount_usd")


def statement_csv(statement: Statement) -> str:
    """The statement as CSV: one row per line, adjustment and total; exact amounts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    who = statement.customer_id or "(workspace)"

    def row(section: str, item: str, detail: str, qty: object, unit: str, amount: object) -> None:
        text = "" if amount is None else format(amount, "f")
        writer.writerow([statement.month, who, section, item, detail, qty, unit, text])

    for line in statement.lines:
        row("usage", line.service, line.model or "", line.calls, "calls", line.amount_usd)
    row("subtotal", "Usage", "", "", "", statement.usage_usd)
    for adj in statement.adjustments:
        row("adjustment", adj.description, adj.customer_id or "", "", "", adj.amount_usd)
    row("total", "Total", "", "", "", statement.total_usd)
    row("summary", "Tasks", "", statement.task_count, "tasks", None)
    row("summary", "Average cost per task", "", "", "", statement.avg_cost_per_task_usd)
    row("summary", "Retry cost (included above)", "", "", "", statement.retry_cost_usd)
    for t in statement.by_task_type:
        row("task_type", t.task_type or "(none)", "", t.runs, "runs", t.amount_usd)
    unknown = statement.unknown_cost
    if unknown.event_count:
        for m in unknown.models:
            name = m.model or m.service_name or ""
            row("unpriced", service_label(m.provider), name, m.event_count, "calls", None)
    return out.getvalue()
