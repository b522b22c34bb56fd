"""Revenue per customer, imported from CSV, for margins: revenue minus AI cost.

A row is ``customer, period, amount, currency``; ``period`` is a month (``2026-10``)
or an inclusive date range (``2026-10-01..2026-10-15``). Importing the same customer,
period and currency again replaces the amount, so re-importing a file never doubles
it. Revenue is spread evenly over its period: a report on part of a month gets the
matching part of that month's revenue.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from dexcost.store._values import format_ts, money_text

from ._period import Period, get_zone
from ._sql import query, tidy

UTC = timezone.utc
_PICO = Decimal("1e-12")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(?:\.\.|/| to )\s*(\d{4}-\d{2}-\d{2})$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_COLUMNS = {
    "customer": ("customer", "customer_id"),
    "period": ("period", "month"),
    "amount": ("amount", "revenue", "amount_usd"),
    "currency": ("currency",),
}


class RevenueImportError(ValueError):
    """A revenue file that cannot be imported; nothing from it was stored."""


@dataclass(frozen=True)
class RevenueRow:
    """What one customer paid for one period: ``[start, end)`` in calendar days."""

    customer_id: str
    start: date
    end: date
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class RevenueImport:
    """The outcome of an import: rows added and rows that replaced an earlier amount."""

    added: int
    replaced: int


def parse_revenue_csv(text: str) -> list[RevenueRow]:
    """Parse a revenue CSV (header ``customer,period,amount,currency``).

    ``customer_id``, ``month``, ``revenue`` are accepted as column names; without a
    currency column amounts are USD. Raises :class:`RevenueImportError` listing every
    bad line.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    found: dict[str, str] = {}
    for key, names in _COLUMNS.items():
        for name in names:
            if name in header:
                found[key] = header[name]
                break
    missing = [k for k in ("customer", "period", "amount") if k not in found]
    if missing:
        raise RevenueImportError(
            f"the revenue file needs the columns customer, period, amount (and currency); "
            f"missing: {', '.join(missing)}"
        )
    rows, errors = [], []
    for number, record in enumerate(reader, start=2):
        try:
            rows.append(_row(record, found))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise RevenueImportError(f"nothing was imported; fix these lines:\n  {shown}{more}")
    return rows


def _row(record: dict[str, str | None], cols: dict[str, str]) -> RevenueRow:
    customer = (record.get(cols["customer"]) or "").strip()
    if not customer:
        raise ValueError("the customer is empty")
    start, end = parse_revenue_period((record.get(cols["period"]) or "").strip())
    currency = (
        (record.get(cols["currency"]) or "USD").strip().upper() if "currency" in cols else "USD"
    )
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"{currency!r} is not a currency code like USD")
    text = (record.get(cols["amount"]) or "").strip().lstrip("$").strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"the amount {text!r} is not a number like 1234.50") from None
    if not amount.is_finite():
        raise ValueError(f"the amount {text!r} is not a number like 1234.50")
    return RevenueRow(customer, start, end, amount, currency)


def parse_revenue_period(text: str) -> tuple[date, date]:
    """``2026-10`` or ``2026-10-01..2026-10-31`` (inclusive) as ``[start, end)`` dates."""
    month = _MONTH.match(text)
    if month and 1 <= int(month.group(2)) <= 12:
        year, number = int(month.group(1)), int(month.group(2))
        return date(year, number, 1), date(year + number // 12, number % 12 + 1, 1)
    span = _RANGE.match(text)
    if span:
        try:
            first, last = date.fromisoformat(span.group(1)), date.fromisoformat(span.group(2))
        except ValueError:
            first = last = None  # type: ignore[assignment]
        if first is not None and last is not None and first <= last:
            return first, last + timedelta(days=1)
    raise ValueError(
        f"the period {text!r} is not a month (2026-10) or dates (2026-10-01..2026-10-31)"
    )


def import_revenue(
    conn: sqlite3.Connection, rows: list[RevenueRow], source: str | None = None
) -> RevenueImport:
    """Store ``rows`` through a write connection, replacing amounts already imported."""
    now = format_ts(datetime.now(UTC))
    added = replaced = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for r in rows:
            key = (r.customer_id, r.start.isoformat(), r.end.isoformat(), r.currency)
            exists = conn.execute(
                "SELECT 1 FROM revenue WHERE customer_id = ? AND period_start = ?"
                " AND period_end = ? AND currency = ?",
                key,
            ).fetchone()
            conn.execute(
                "INSERT INTO revenue (customer_id, period_start, period_end, currency, amount,"
                " source, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id,"
                " period_start, period_end, currency) DO UPDATE SET amount = excluded.amount,"
                " source = excluded.source, imported_at = excluded.imported_at",
                (*key, money_text(r.amount), source, now),
            )
            replaced += exists is not None
            added += exists is None
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return RevenueImport(added, replaced)


@dataclass(frozen=True)
class RevenueView:
    """USD revenue per customer attributed to a period (prorated by overlap)."""

    has_revenue: bool
    by_customer: dict[str, Decimal]
    other_currencies: dict[str, tuple[str, ...]]


def revenue_for(conn: sqlite3.Connection, period: Period) -> RevenueView:
    """The revenue of each customer falling in ``period`` (an open end means now).

    Each row's amount is spread evenly over its days in the period's time zone and
    the overlapping share kept, rounded half-even to the picodollar. Non-USD amounts
    are not converted: they are listed in ``other_currencies``.
    """
    period = period.resolved()
    zone = get_zone(period.tz)
    rows = query(
        conn, "SELECT customer_id, period_start, period_end, currency, amount FROM revenue"
    )
    by_customer: dict[str, Decimal] = {}
    other: dict[str, set[str]] = {}
    for row in rows:
        lo = _midnight(row["period_start"], zone)
        hi = _midnight(row["period_end"], zone)
        start = max(lo, period.start) if period.start else lo
        end = min(hi, period.end) if period.end else hi
        if start >= end or hi <= lo:
            continue
        if row["currency"] != "USD":
            other.setdefault(row["customer_id"], set()).add(row["currency"])
            continue
        share = Decimal(int((end - start).total_seconds())) / Decimal(
            int((hi - lo).total_seconds())
        )
        part = (Decimal(row["amount"]) * share).quantize(_PICO, ROUND_HALF_EVEN)
        by_customer[row["customer_id"]] = tidy(
            by_customer.get(row["customer_id"], Decimal(0)) + part
        )
    return RevenueView(
        has_revenue=bool(rows),
        by_customer=by_customer,
        other_currencies={k: tuple(sorted(v)) for k, v in other.items()},
    )


def _midnight(text: str, zone: object) -> datetime:
    day = date.fromisoformat(text)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)  # type: ignore[arg-type]
