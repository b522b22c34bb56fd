"""Events or tasks of a period, grouped once in SQL, for every report to aggregate further.

Whole UTC days come from the roll-ups (``event_days``, ``task_days``; triggers keep
them equal to ``events`` and ``tasks``); partial days at the edges of a period come
from the tables themselves through their time index. Either way the result is exact,
and a month of a million events is a few thousand rows. :func:`groups` writes them to
a temporary table; reports then run small aggregations over it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dexcost.store._schema_v2 import ROLLUP_KEYS, TASK_ROLLUP_KEYS
from dexcost.store._values import format_ts

from ._period import Period
from ._sql import query, split_amount

UTC = timezone.utc


@dataclass(frozen=True)
class Source:
    """A table, its daily roll-up, and how a raw row maps to a roll-up row."""

    raw: str
    rollup: str
    time: str
    keys: tuple[str, ...]
    raw_keys: dict[str, str]
    nullable: tuple[str, ...]
    sums: tuple[tuple[str, str, str], ...]  # (group column, raw aggregate, roll-up column)
    money: tuple[tuple[str, str], ...]  # (group money name, raw column prefix)


def _money_sums(name: str, column: str, rollup: str) -> tuple[tuple[str, str, str], ...]:
    return (
        (f"{name}_hi", f"SUM({column}_pico / 1000000)", f"{rollup}_hi"),
        (f"{name}_lo", f"SUM({column}_pico % 1000000)", f"{rollup}_lo"),
    )


EVENTS = Source(
    raw="events",
    rollup="event_days",
    time="occurred_at",
    keys=ROLLUP_KEYS,
    raw_keys={"is_retry": "is_retry != 0", "unknown": "cost_confidence = 'unknown'"},
    nullable=("customer_id", "task_type", "provider", "model", "service_name", "retry_reason"),
    sums=(
        ("n", "count(*)", "n"),
        *_money_sums("spend", "cost", "cost"),
        ("big", "SUM(cost_pico IS NULL)", "big"),
        ("tin", "SUM(input_tokens)", "input_tokens"),
        ("tout", "SUM(output_tokens)", "output_tokens"),
        ("tcached", "SUM(cached_tokens)", "cached_tokens"),
        ("tcw", "SUM(cache_creation_tokens)", "cache_creation_tokens"),
    ),
    money=(("spend", "cost"),),
)
TASKS = Source(
    raw="tasks",
    rollup="task_days",
    time="started_at",
    keys=TASK_ROLLUP_KEYS,
    raw_keys={"is_root": "parent_task_id IS NULL"},
    nullable=("customer_id",),
    sums=(
        ("n", "count(*)", "n"),
        *_money_sums("cost", "total_cost", "cost"),
        ("big", "SUM(total_cost_pico IS NULL OR retry_cost_pico IS NULL)", "big"),
        *_money_sums("retry", "retry_cost", "retry"),
        ("retried", "SUM(retry_count > 0)", "retried"),
        ("retries", "SUM(retry_count)", "retries"),
    ),
    money=(("cost", "total_cost"), ("retry", "retry_cost")),
)
#: The attribution columns of an events group row (None for a missing value).
KEYS = ROLLUP_KEYS


@dataclass(frozen=True)
class _Piece:
    rollup: bool
    lo: str | None
    hi: str | None
    sign: int = 1


def pieces(period: Period) -> list[_Piece]:
    """Cover ``period`` with whole UTC days (roll-up) and signed partial days (raw rows).

    Each bound moves to its nearest UTC midnight: the hours between are added from, or
    taken away with, the raw rows, whichever reads fewer raw hours than reading the
    whole period raw. So a day in UTC+1 is one roll-up day and two raw hours.
    """
    start, end = period.start, period.end
    lo = None if start is None else _nearest_day(start)
    hi = None if end is None else _nearest_day(end)
    if start is not None and end is not None and lo is not None and hi is not None:
        edges = abs(lo - start) + abs(hi - end)
        if lo >= hi or edges >= end - start:
            return [_Piece(False, format_ts(start), format_ts(end))]
    out = [
        _Piece(
            True,
            None if lo is None else lo.strftime("%Y-%m-%d"),
            None if hi is None else hi.strftime("%Y-%m-%d"),
        )
    ]
    if start is not None and lo is not None and lo != start:
        a, b = sorted((lo, start))
        out.append(_Piece(False, format_ts(a), format_ts(b), 1 if start < lo else -1))
    if end is not None and hi is not None and hi != end:
        a, b = sorted((hi, end))
        out.append(_Piece(False, format_ts(a), format_ts(b), 1 if hi < end else -1))
    return out


def _nearest_day(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    floor = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return floor if value - floor <= timedelta(hours=12) else floor + timedelta(days=1)


def _select(
    src: Source, piece: _Piece, slot: str | None, customer: bool
) -> tuple[str, list[object]]:
    """One SELECT of the union: the rows of ``piece``, labelled ``slot``."""
    params: list[object] = [] if slot is None else [slot]
    label = "" if slot is None else "? AS slot, "
    conds: list[str] = []
    if piece.rollup:
        keys = ", ".join(f"NULLIF({k}, '') AS {k}" if k in src.nullable else k for k in src.keys)
        sums = ", ".join(f"{r} AS {g}" for g, _, r in src.sums)
        for op, bound in ((">=", piece.lo), ("<", piece.hi)):
            if bound is not None:
                conds.append(f"day {op} ?")
                params.append(bound)
        if customer:
            conds.append("customer_id = ?")
        where = " AND ".join(conds) or "1"
        return f"SELECT {label}{keys}, {sums} FROM {src.rollup} WHERE {where}", params
    keys = ", ".join(f"{src.raw_keys.get(k, k)} AS {k}" for k in src.keys)
    minus = "" if piece.sign > 0 else "-"
    sums = ", ".join(f"{minus}{a} AS {g}" for g, a, _ in src.sums)
    conds = [f"{src.time} >= ?", f"{src.time} < ?"]
    params += [piece.lo, piece.hi]
    if customer:
        conds.append("customer_id = ?")
    first = 1 if slot is None else 2
    by = ", ".join(str(i) for i in range(first, first + len(src.keys)))
    sql = f"SELECT {label}{keys}, {sums} FROM {src.raw} WHERE {' AND '.join(conds)} GROUP BY {by}"
    return sql, params


@contextmanager
def groups(
    conn: sqlite3.Connection,
    period: Period | None = None,
    *,
    source: Source = EVENTS,
    slots: Sequence[tuple[str, Period]] | None = None,
    customer_id: str | None = None,
    table: str = "temp.dexcost_groups",
) -> Iterator[str]:
    """Group the rows of ``period`` (or of each labelled period of ``slots``) into the
    temporary ``table``; yield its name, drop it on exit.

    Columns: ``slot`` (the label, with ``slots``), the source's keys (None for a missing
    value), then its sums: for events ``n``, ``spend_hi``/``spend_lo`` (a money pair,
    see :func:`~._sql.money`), ``tin``, ``tout``, ``tcached``, ``tcw``; for tasks ``n``,
    ``cost_*``, ``retry_*``, ``retried`` (runs with a retry), ``retries``.
    ``customer_id`` keeps one customer's rows.
    """
    (store_mode,) = conn.execute("PRAGMA temp_store").fetchone()
    was_in_transaction = conn.in_transaction
    if not was_in_transaction:
        conn.execute("PRAGMA temp_store = MEMORY")
    labelled: list[tuple[str | None, Period]] = (
        [(None, period or Period.all_time())] if slots is None else list(slots)
    )
    parts, params = [], []
    for label, span in labelled:
        for piece in pieces(span):
            sql, args = _select(source, piece, label, customer_id is not None)
            parts.append(sql)
            params += args + ([customer_id] if customer_id is not None else [])
    cols = (["slot"] if slots is not None else []) + list(source.keys)
    names = ", ".join(cols)
    sums = ", ".join(f"SUM({g}) AS {g}" for g, _, _ in source.sums)
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(
        f"CREATE TABLE {table} AS SELECT {names}, {sums}"
        f" FROM ({' UNION ALL '.join(parts)}) GROUP BY {names} HAVING SUM(n) != 0",
        params,
    )
    try:
        _add_big(conn, table, source, labelled, slots is not None, cols, customer_id)
        yield table
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        if not was_in_transaction:
            if conn.in_transaction:  # opened by the inserts into our temporary table
                conn.commit()
            conn.execute(f"PRAGMA temp_store = {int(store_mode)}")


def _add_big(
    conn: sqlite3.Connection,
    table: str,
    src: Source,
    labelled: list[tuple[str | None, Period]],
    has_slot: bool,
    cols: list[str],
    customer_id: str | None,
) -> None:
    """Add amounts too large for int64 picodollars (rare) from their exact text."""
    (row,) = query(conn, f"SELECT COALESCE(SUM(big), 0) AS big FROM {table}")
    if not row["big"]:
        return
    keys = ", ".join(f"{src.raw_keys.get(k, k)} AS {k}" for k in src.keys)
    texts = ", ".join(f"{c}_pico AS {c}_pico, {c}_usd AS {c}_usd" for _, c in src.money)
    nulls = " OR ".join(f"{c}_pico IS NULL" for _, c in src.money)
    for label, span in labelled:
        where, params = span.clause(src.time)
        if customer_id is not None:
            where += " AND customer_id = ?"
            params.append(customer_id)
        for raw in query(
            conn, f"SELECT {keys}, {texts} FROM {src.raw} WHERE ({nulls}) AND {where}", params
        ):
            names, values = list(cols), ([label] if has_slot else []) + list(raw)[: len(src.keys)]
            for name, column in src.money:
                parts = split_amount(raw[f"{column}_usd"])
                if raw[f"{column}_pico"] is None and parts is not None:
                    names += [f"{name}_hi", f"{name}_lo"]
                    values += list(parts)
            conn.execute(
                f"INSERT INTO {table} ({', '.join(names)}, n)"
                f" VALUES ({', '.join('?' * len(values))}, 0)",
                values,
            )


#: Select-list fragment re-summing a groups table's spend (exact: parts of sums).
SPEND = "SUM(spend_hi) AS spend_hi, SUM(spend_lo) AS spend_lo"


def sum_of(name: str, alias: str | None = None) -> str:
    """Select-list fragment re-summing the money pair ``name`` of a groups table."""
    alias = alias or name
    return f"SUM({name}_hi) AS {alias}_hi, SUM({name}_lo) AS {alias}_lo"


def spend_where(condition: str, name: str, money: str = "spend") -> str:
    """Select-list fragment summing the money pair ``money`` of rows matching ``condition``."""
    return (
        f"SUM(CASE WHEN {condition} THEN {money}_hi END) AS {name}_hi,"
        f" SUM(CASE WHEN {condition} THEN {money}_lo END) AS {name}_lo"
    )
