"""Running a one-row INSERT (or upsert) for many rows in multi-row statements.

``executemany`` steps SQLite once per row, and Python's sqlite3 module releases the GIL
around every step. While the recording threads keep the interpreter busy, the writer
gets the GIL back only at the switch interval (5 ms), so one step per row let it write
about one row per interval and fall behind. A multi-row statement steps once per chunk.
SQLite applies its rows in order, an ``ON CONFLICT`` clause to each of them, so the
result is the one ``executemany`` gives.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain

from ._values import Row

__all__ = ["write_rows"]

#: Most rows in one statement; fewer where SQLite allows fewer bound parameters (999
#: before SQLite 3.32). Smaller chunks are powers of two, so few statements are compiled.
ROWS_PER_STATEMENT = 256

_VARIABLES: int | None = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
_statements: dict[tuple[str, int], str] = {}


def _for_rows(sql: str, n: int) -> str:
    """``sql`` (``... VALUES (?, ..., ?) [tail]``) with its values group repeated ``n`` times."""
    key = (sql, n)
    found = _statements.get(key)
    if found is None:
        start = sql.index(" VALUES (") + len(" VALUES ")
        end = sql.index(")", start) + 1
        group = sql[start:end]
        found = _statements[key] = f"{sql[:start]}{', '.join([group] * n)}{sql[end:]}"
    return found


def write_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[Row]) -> int:
    """Run the one-row statement ``sql`` for every row, in order; return the rows changed."""
    if not rows:
        return 0
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    most = 999 if getlimit is None or _VARIABLES is None else getlimit(_VARIABLES)
    limit = max(1, min(ROWS_PER_STATEMENT, most // len(rows[0])))
    changed = 0
    start, total = 0, len(rows)
    while start < total:
        n = limit
        while n > total - start:
            n //= 2
        chunk = rows[start : start + n]
        changed += conn.execute(_for_rows(sql, n), list(chain.from_iterable(chunk))).rowcount
        start += n
    return changed
