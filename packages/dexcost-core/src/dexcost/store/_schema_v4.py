"""Schema version 4: the daily roll-ups are ordinary (rowid) tables.

``event_days`` and ``task_days`` were ``WITHOUT ROWID`` tables, which tools that read
any SQLite file alike cannot show (``SELECT * ... ORDER BY rowid``, as SQLite browsers
and benchmark harnesses do, fails on them). The roll-ups are small, a row per day and
key, so the second b-tree a rowid table keeps for the same primary key costs little.
Each table is rebuilt with the same columns, key and rows. The triggers that write the
roll-ups name the table, not its storage, and keep working: the rename runs with
``legacy_alter_table`` so SQLite does not re-check them while the table is away.
"""

from __future__ import annotations

from ._schema_v2 import V2


def _rebuild(table: str) -> list[str]:
    (create,) = (s for s in V2 if f"CREATE TABLE {table} (" in s)
    rowid_table = create.replace(f"CREATE TABLE {table} (", f"CREATE TABLE {table}_v4 (")
    rowid_table = rowid_table.replace(") WITHOUT ROWID", ")")
    return [
        rowid_table,
        f"INSERT INTO {table}_v4 SELECT * FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_v4 RENAME TO {table}",
    ]


V4: list[str] = [
    "PRAGMA legacy_alter_table = ON",
    *_rebuild("event_days"),
    *_rebuild("task_days"),
    "PRAGMA legacy_alter_table = OFF",
]
