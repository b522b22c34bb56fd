"""Every column of ``events`` or ``tasks`` as JSON Lines or CSV, amounts as exact text."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from typing import Any, TextIO

from ._period import Period

#: The tables that can be exported, and the timestamp column their period applies to.
EXPORT_TABLES = {"events": "occurred_at", "tasks": "started_at"}
EXPORT_FORMATS = ("jsonl", "csv")
_JSON_COLUMNS = frozenset({"details", "metadata"})
_BOOL_COLUMNS = frozenset({"is_retry"})


def export_rows(
    conn: sqlite3.Connection, table: str, period: Period | None = None
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """The column names of ``table`` and an iterator over its rows in ``period``.

    Rows come as stored: amounts are exact decimal strings, timestamps UTC text,
    ``details``/``metadata`` JSON text. Oldest first.
    """
    if table not in EXPORT_TABLES:
        raise ValueError(f"table must be one of {', '.join(EXPORT_TABLES)}, not {table!r}")
    column = EXPORT_TABLES[table]
    where, params = (period or Period.all_time()).clause(column)
    cursor = conn.cursor()
    cursor.row_factory = None
    cursor.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY {column}, rowid", params)
    names = [d[0] for d in cursor.description]
    return names, iter(cursor)


def write_export(
    out: TextIO,
    conn: sqlite3.Connection,
    table: str,
    fmt: str,
    period: Period | None = None,
) -> int:
    """Write ``table``'s rows in ``period`` to ``out`` as ``jsonl`` or ``csv``; return the count.

    JSON Lines keep ``details``/``metadata`` as nested objects and ``is_retry`` as a
    boolean; CSV writes every value as stored (NULL as an empty field).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    names, rows = export_rows(conn, table, period)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow(row)
            count += 1
        return count
    json_at = [i for i, n in enumerate(names) if n in _JSON_COLUMNS]
    bool_at = [i for i, n in enumerate(names) if n in _BOOL_COLUMNS]
    for row in rows:
        values = list(row)
        for i in json_at:
            values[i] = _json_or_text(values[i])
        for i in bool_at:
            values[i] = None if values[i] is None else bool(values[i])
        out.write(json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
