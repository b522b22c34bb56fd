"""The events of a period, grouped once in SQL, for every report to aggregate further.

Whole UTC days come from the ``event_days`` roll-up (kept equal to ``events`` by
triggers); the partial days at either edge of the period come from ``events`` through
its time index. Either way the result is exact, and a month of a million events is a
few thousand rows. :func:`load_groups` writes them to a temporary table; reports then
run small aggregations over it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dexcost.store._schema_v2 import ROLLUP_KEYS
from dexcost.store._values import format_ts

from ._period import Period
from ._sql import query, split_amount

UTC = timezone.utc

#: The attribution columns of a group row (None for a missing value).
KEYS = ROLLUP_KEYS
_SUMS = ("n", "spend_hi", "spend_lo", "big", "tin", "tout", "tcached", "tcw")
_RAW = {
    "is_retry": "is_retry != 0",
    "unknown": "cost_confidence = 'unknown'",
}
_RAW_KEYS = ", ".join(f"{_RAW.get(k, k)} AS {k}" for k in KEYS)
_RAW_SUMS = (
    "count(*) AS n, SUM(cost_pico / 1000000) AS spend_hi, SUM(cost_pico % 1000000) AS spend_lo,"
    " SUM(cost_pico IS NULL) AS big, SUM(input_tokens) AS tin, SUM(output_tokens) AS tout,"
    " SUM(cached_tokens) AS tcached, SUM(cache_creation_tokens) AS tcw"
)
_NOT_NULLABLE = ("is_retry", "unknown", "event_type")
_ROLLUP_KEYS = ", ".join(f"NULLIF({k}, '') AS {k}" if k not in _NOT_NULLABLE else k for k in KEYS)
_ROLLUP_SUMS = (
    "n, cost_hi AS spend_hi, cost_lo AS spend_lo, big, input_tokens AS tin,"
    " output_tokens AS tout, cached_tokens AS tcached, cache_creation_tokens AS tcw"
)


@dataclass(frozen=True)
class _Piece:
    rollup: bool
    lo: str | None
    hi: str | None


def pieces(period: Period) -> list[_Piece]:
    """Split ``period`` into whole UTC days (roll-up) and partial days (raw events)."""
    start, end = period.start, period.end
    first = None if start is None else _ceil_day(start)
    last = None if end is None else _floor_day(end)
    if (
        start is not None
        and end is not None
        and first is not None
        and last is not None
        and (first >= last)
    ):
        return [_Piece(False, format_ts(start), format_ts(end))]
    out = [
        _Piece(
            True,
            None if first is None else first.strftime("%Y-%m-%d"),
            None if last is None else last.strftime("%Y-%m-%d"),
        )
    ]
    if start is not None and first is not None and first != start:
        out.append(_Piece(False, format_ts(start), format_ts(first)))
    if end is not None and last is not None and last != end:
        out.append(_Piece(False, format_ts(last), format_ts(end)))
    return out


def _floor_day(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _ceil_day(value: datetime) -> datetime:
    floor = _floor_day(value)
    return floor if floor == value else floor + timedelta(days=1)


def _piece_sql(piece: _Piece, by_day: bool, extra: str) -> tuple[str, list[str]]:
    params: list[str] = []
    if piece.rollup:
        conds = []
        if piece.lo is not None:
            conds.append("day >= ?")
            params.append(piece.lo)
        if piece.hi is not None:
            conds.append("day < ?")
            params.append(piece.hi)
        if extra:
            conds.append(extra.replace("{customer_id}", "NULLIF(customer_id, '')"))
        where = " AND ".join(conds) or "1"
        day = "day, " if by_day else ""
        sql = f"SELECT {day}{_ROLLUP_KEYS}, {_ROLLUP_SUMS} FROM event_days WHERE {where}"
        return sql, params
    conds = ["occurred_at >= ?", "occurred_at < ?"]
    params = [piece.lo or "", piece.hi or ""]
    if extra:
        conds.append(extra.replace("{customer_id}", "customer_id"))
    day = "substr(occurred_at, 1, 10) AS day, " if by_day else ""
    groups = ", ".join(str(i) for i in range(1, len(KEYS) + 1 + by_day))
    sql = (
        f"SELECT {day}{_RAW_KEYS}, {_RAW_SUMS} FROM events WHERE {' AND '.join(conds)}"
        f" GROUP BY {groups}"
    )
    return sql, params


@contextmanager
def groups(
    conn: sqlite3.Connection,
    period: Period,
    *,
    by_day: bool = False,
    customer_id: str | None = None,
    table: str = "temp.dexcost_groups",
) -> Iterator[str]:
    """Group the events of ``period`` into the temporary ``table``; yield its name.

    Columns: (``day``, when ``by_day``: the UTC day) the :data:`KEYS`, then ``n``,
    ``spend_hi``/``spend_lo`` (a money pair, see :func:`~._sql.money`), ``tin``,
    ``tout``, ``tcached``, ``tcw`` (token sums). ``customer_id`` keeps one customer.
    The table is dropped on exit.
    """
    conn.execute("PRAGMA temp_store = MEMORY")
    extra, extra_params = "", []
    if customer_id is not None:
        extra, extra_params = "{customer_id} = ?", [customer_id]
    parts, params = [], []
    for piece in pieces(period):
        sql, args = _piece_sql(piece, by_day, extra)
        parts.append(sql)
        params += args + extra_params
    cols = (["day"] if by_day else []) + list(KEYS)
    names = ", ".join(cols)
    inner = " UNION ALL ".join(parts)
    sums = ", ".join(f"SUM({s}) AS {s}" for s in _SUMS)
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(
        f"CREATE TABLE {table} AS SELECT {names}, {sums} FROM ({inner}) GROUP BY {names}",
        params,
    )
    try:
        _add_big(conn, table, period, by_day, customer_id)
        yield table
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _add_big(
    conn: sqlite3.Connection, table: str, period: Period, by_day: bool, customer_id: str | None
) -> None:
    """Add amounts too large for int64 picodollars (rare) from their exact text."""
    (row,) = query(conn, f"SELECT COALESCE(SUM(big), 0) AS big FROM {table}")
    if not row["big"]:
        return
    where, params = period.clause("occurred_at")
    if customer_id is not None:
        where += " AND customer_id = ?"
        params.append(customer_id)
    day = "substr(occurred_at, 1, 10), " if by_day else ""
    cols = (["day"] if by_day else []) + list(KEYS)
    for event in query(
        conn,
        f"SELECT {day}{_RAW_KEYS}, cost_usd FROM events WHERE cost_pico IS NULL AND {where}",
        params,
    ):
        parts = split_amount(event["cost_usd"])
        if parts is not None:
            values = tuple(event)[: len(cols)]
            conn.execute(
                f"INSERT INTO {table} ({', '.join(cols)}, n, spend_hi, spend_lo)"
                f" VALUES ({', '.join('?' * len(cols))}, 0, ?, ?)",
                (*values, *parts),
            )


#: Select-list fragment re-summing a groups table's spend (exact: parts of sums).
SPEND = "SUM(spend_hi) AS spend_hi, SUM(spend_lo) AS spend_lo"


def spend_where(condition: str, name: str) -> str:
    """Select-list fragment summing the spend of the group rows matching ``condition``."""
    return (
        f"SUM(CASE WHEN {condition} THEN spend_hi END) AS {name}_hi,"
        f" SUM(CASE WHEN {condition} THEN spend_lo END) AS {name}_lo"
    )
