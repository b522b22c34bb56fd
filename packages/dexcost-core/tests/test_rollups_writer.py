"""The writer keeps ``event_days`` exactly as the schema-2 insert trigger did.

Each test writes the same batches twice: through the writer into a current store, and
row by row into a schema-2 file whose triggers maintain the roll-up. The two
``event_days`` tables must be identical, row for row (emptied keys included).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost._types import CostConfidence, EventType
from dexcost.store import LocalStore
from dexcost.store._connect import open_write_connection
from dexcost.store._rows import TaskSnapshot
from dexcost.store._schema import MIGRATIONS, SCHEMA_VERSION
from dexcost.store._values import sanitize_row
from dexcost.store._writer import EVENT_UPSERT, TASK_UPSERT, BatchWriter, event_rows, task_rows

UTC = timezone.utc
T0 = datetime(2026, 3, 28, 23, 59, 59, 999999, tzinfo=UTC)

# Whole roll-up rows against the raw events (as in test_rollups), for the migrated file.
EVENT_CHECK = """
SELECT substr(occurred_at, 1, 10), COALESCE(customer_id, ''), COALESCE(task_type, ''),
       event_type, COALESCE(provider, ''), COALESCE(model, ''), COALESCE(service_name, ''),
       is_retry != 0, COALESCE(retry_reason, ''), cost_confidence = 'unknown', count(*),
       COALESCE(SUM(cost_pico), 0), COALESCE(SUM(input_tokens), 0)
FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""
ROLLUP = """
SELECT day, customer_id, task_type, event_type, provider, model, service_name, is_retry,
       retry_reason, unknown, n, cost_hi * 1000000 + cost_lo, input_tokens
FROM event_days WHERE n != 0
"""


def event(**kw: Any) -> Event:
    base: dict[str, Any] = {
        "event_id": uuid7(),
        "task_id": uuid7(),
        "event_type": "llm_call",
        "cost_usd": Decimal("0.000123456789"),
        "cost_confidence": "computed",
        "pricing_source": "litellm",
        "occurred_at": T0,
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 80,
        "customer_id": "acme",
        "task_type": "resolve_ticket",
    }
    base.update(kw)
    return Event(**base)


def days(path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted(map(tuple, conn.execute("SELECT * FROM event_days")))


def schema2_file(path: Path) -> None:
    """A store as schema version 2 left it: the per-row insert trigger in place."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for step in MIGRATIONS[:2]:
            for statement in step:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")


def write_by_trigger(path: Path, batches: Sequence[Sequence[Event]]) -> None:
    """Write row by row into a schema-2 file, as the writer did then (sanitised retry)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        for batch in batches:
            for row in event_rows(batch):
                for attempt in (row, sanitize_row(row)):
                    try:
                        conn.execute(EVENT_UPSERT, attempt)
                        break
                    except (sqlite3.IntegrityError, OverflowError):
                        pass  # not stored as it is: sanitised, else skipped


def write_by_writer(path: Path, batches: Sequence[Sequence[Event]]) -> None:
    """Write each batch as one transaction of the store's writer."""
    conn = open_write_connection(path)
    try:
        writer = BatchWriter(conn, path)
        for batch in batches:
            assert writer.write(batch, [])
    finally:
        conn.close()


def assert_same_rollup(tmp_path: Path, batches: Sequence[Sequence[Event]]) -> None:
    reference, current = tmp_path / "v2.db", tmp_path / "v3.db"
    schema2_file(reference)
    write_by_trigger(reference, batches)
    write_by_writer(current, batches)
    expected = days(reference)
    assert expected  # the batches did reach the roll-up
    assert days(current) == expected


def test_new_events_are_summed_per_key_like_the_trigger(tmp_path: Path) -> None:
    batch = [
        event(customer_id=f"c{i % 3}", input_tokens=i, occurred_at=T0 + timedelta(seconds=i))
        for i in range(40)
    ]
    batch += [
        event(
            event_type="external_cost",
            service_name="google_maps_api",
            provider=None,
            model=None,
            input_tokens=None,
            output_tokens=None,
            cost_usd=Decimal("0.005") * i,
            cost_confidence="exact",
        )
        for i in range(5)
    ]
    batch += [
        event(is_retry=True, retry_reason="rate_limit", cached_tokens=600),
        event(cost_usd=Decimal("0"), cost_confidence="unknown", customer_id=None),
        event(cost_usd=Decimal("-0.0000025")),  # a credit: SQL truncates toward zero
        event(cost_usd=Decimal("-3.1234567")),
        event(cost_usd=Decimal("9300000")),  # too big for picodollars: counted in big
        event(cost_usd=Decimal("0.0000000000004999")),  # rounded in the integer column
        event(occurred_at=datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))),
        event(event_type=EventType.LLM_CALL, cost_confidence=CostConfidence.UNKNOWN),
    ]
    assert_same_rollup(tmp_path, [batch, batch[:0], [event(cache_creation_tokens=7)]])


def test_a_batch_mixing_new_and_put_again_events(tmp_path: Path) -> None:
    first = [event(customer_id=f"c{i % 2}", is_retry=i % 3 == 0) for i in range(12)]
    fresh = event(customer_id="c9")
    mixed = [
        event(customer_id="new"),
        # mark_not_retry: the same event again, no longer a retry
        dataclasses.replace(first[0], is_retry=False, retry_reason=None),
        fresh,
        dataclasses.replace(first[1], customer_id="moved", cost_usd=Decimal("2.5")),
        dataclasses.replace(fresh, occurred_at=T0 + timedelta(days=1)),  # new, then again
        event(customer_id="new"),
        dataclasses.replace(first[0], model="gpt-4o-mini"),  # put a third time
    ]
    again_only = [dataclasses.replace(e, output_tokens=1) for e in first[3:6]]
    assert_same_rollup(tmp_path, [first, mixed, again_only])
    with closing(sqlite3.connect(tmp_path / "v3.db")) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 15


@pytest.mark.parametrize(
    "unusual",
    [
        {"customer_id": 42},  # stored as the text '42'
        {"input_tokens": "12"},  # stored as the integer 12
        {"output_tokens": 2.5},
        {"output_tokens": 7.0},  # stored as the integer 7
        {"cached_tokens": True},
        {"model": float("nan")},  # stored as NULL
        {"input_tokens": 2**70},  # cannot be bound: the row is stored leniently
        {"event_type": None},  # cannot be stored: skipped
    ],
    ids=repr,
)
def test_unusual_values_reach_the_rollup_as_stored(tmp_path: Path, unusual: dict[str, Any]) -> None:
    plain = [event(customer_id="acme") for _ in range(5)]
    odd = event(**unusual)
    batches = [plain, [event(), odd, event(customer_id="42")], [dataclasses.replace(odd)]]
    assert_same_rollup(tmp_path, batches)


def test_a_schema2_store_is_upgraded_and_kept_exact(tmp_path: Path) -> None:
    old = [event(customer_id=f"c{i % 4}", is_retry=i % 2 == 0) for i in range(20)]
    later = [
        *[dataclasses.replace(e, is_retry=False, retry_reason=None) for e in old[:5]],
        *[event(customer_id=f"c{i % 4}") for i in range(20)],
    ]
    path, reference = tmp_path / "store.db", tmp_path / "reference.db"
    for file in (path, reference):
        schema2_file(file)
        write_by_trigger(file, [old])
    write_by_trigger(reference, [later])

    store = LocalStore(path)  # upgrades the file
    for e in later:
        store.put_event(e)
    store.close()

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        triggers = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert "event_days_insert" not in triggers
        assert {"event_days_update", "event_days_delete", "task_days_insert"} <= triggers
        assert sorted(map(tuple, conn.execute(EVENT_CHECK))) == sorted(
            map(tuple, conn.execute(ROLLUP))
        )
        conn.execute("DELETE FROM events WHERE customer_id = 'c1'")  # the trigger follows
        conn.commit()
        assert sorted(map(tuple, conn.execute(EVENT_CHECK))) == sorted(
            map(tuple, conn.execute(ROLLUP))
        )
    assert days(path) != days(reference)  # the delete moved it
    with closing(sqlite3.connect(reference)) as conn:
        conn.execute("DELETE FROM events WHERE customer_id = 'c1'")
        conn.commit()
    assert days(path) == days(reference)


def test_every_table_is_a_rowid_table_in_a_new_and_an_upgraded_store(tmp_path: Path) -> None:
    """Generic SQLite tools read a table's last rows by rowid; the roll-ups keep theirs."""
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    LocalStore(new).close()
    schema2_file(old)
    write_by_trigger(old, [[event(customer_id=f"c{i % 3}") for i in range(9)]])
    task = Task(task_id=uuid7(), task_type="resolve_ticket", started_at=T0, customer_id="acme")
    with closing(sqlite3.connect(old)) as conn:  # the trigger rolls it into task_days
        conn.executemany(TASK_UPSERT, task_rows([TaskSnapshot(task)]))
        conn.commit()

    def rollups(path: Path) -> tuple[list[Any], list[Any]]:
        with closing(sqlite3.connect(path)) as conn:
            return (
                sorted(map(tuple, conn.execute("SELECT * FROM event_days"))),
                sorted(map(tuple, conn.execute("SELECT * FROM task_days"))),
            )

    before = rollups(old)
    assert before[0]
    assert before[1]
    LocalStore(old).close()  # upgrades the file
    assert rollups(old) == before
    for path in (new, old):
        with closing(sqlite3.connect(path)) as conn:
            tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            for name, sql in tables.fetchall():
                assert "WITHOUT ROWID" not in sql.upper(), name
                conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid DESC LIMIT 3').fetchall()
    store = LocalStore(old)  # the roll-up triggers still work on the rebuilt tables
    store.put_task(dataclasses.replace(task, task_id=uuid7()))
    store.close()
    assert rollups(old)[1] != before[1]


def test_a_batch_writes_each_task_once_as_it_was_last(tmp_path: Path) -> None:
    """A task begun and ended within one batch is one upsert, with its final fields;
    other tasks of the batch keep theirs."""
    first = Task(task_id=uuid7(), task_type="a", started_at=T0)
    second = Task(task_id=uuid7(), task_type="b", started_at=T0)
    begun = TaskSnapshot(first)
    other = TaskSnapshot(second)
    first.status, first.ended_at, first.total_cost_usd = "success", T0, Decimal("1.5")
    ended = TaskSnapshot(first)
    rows = task_rows([begun, other, ended])
    assert [(r[0], r[1]) for r in rows] == [(str(first.task_id), "a"), (str(second.task_id), "b")]
    path = tmp_path / "d.db"
    LocalStore(path).close()
    with closing(open_write_connection(path)) as conn:
        assert BatchWriter(conn, path).write([], [begun, other, ended])
        stored = dict(conn.execute("SELECT task_id, status FROM tasks").fetchall())
    assert stored == {str(first.task_id): "success", str(second.task_id): "pending"}
