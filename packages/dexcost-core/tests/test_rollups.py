"""The daily roll-ups stay equal to the tables through inserts, upserts, deletes and
migration; periods in a time zone."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost.insights import Period
from dexcost.store import LocalStore, connect_readonly
from dexcost.store._schema import MIGRATIONS

UTC = timezone.utc
T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)

EVENT_CHECK = """
SELECT substr(occurred_at, 1, 10), COALESCE(customer_id, ''), COALESCE(task_type, ''),
       event_type, COALESCE(provider, ''), COALESCE(model, ''), COALESCE(service_name, ''),
       is_retry != 0, COALESCE(retry_reason, ''), cost_confidence = 'unknown', count(*),
       COALESCE(SUM(cost_pico), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0)
FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""
ROLLUP = """
SELECT day, customer_id, task_type, event_type, provider, model, service_name, is_retry,
       retry_reason, unknown, n, cost_hi * 1000000 + cost_lo, input_tokens, output_tokens
FROM event_days WHERE n != 0
"""
TASK_CHECK = """
SELECT substr(started_at, 1, 10), COALESCE(customer_id, ''), task_type,
       parent_task_id IS NULL, status, count(*), COALESCE(SUM(total_cost_pico), 0),
       COALESCE(SUM(retry_cost_pico), 0), SUM(retry_count > 0), SUM(retry_count)
FROM tasks GROUP BY 1, 2, 3, 4, 5
"""
TASK_ROLLUP = """
SELECT day, customer_id, task_type, is_root, status, n, cost_hi * 1000000 + cost_lo,
       retry_hi * 1000000 + retry_lo, retried, retries FROM task_days WHERE n != 0
"""


def same_rows(conn: sqlite3.Connection, a: str, b: str) -> None:
    assert sorted(map(tuple, conn.execute(a))) == sorted(map(tuple, conn.execute(b)))


def event(**kw: object) -> Event:
    base = {
        "event_id": uuid7(),
        "task_id": uuid7(),
        "event_type": "llm_call",
        "cost_usd": Decimal("0.25"),
        "cost_confidence": "computed",
        "pricing_source": "litellm",
        "occurred_at": T0,
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


edits = st.lists(
    st.tuples(
        st.sampled_from(["put", "reput", "delete"]),
        st.integers(0, 9),
        st.sampled_from([None, "acme", "globex"]),
        st.booleans(),
        st.integers(0, 10**9),
        st.integers(-40, 40),
        st.sampled_from(["computed", "unknown"]),
    ),
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits)
def test_event_rollup_follows_every_change(tmp_path: Path, script: list[tuple]) -> None:
    path = tmp_path / f"{uuid7()}.db"
    store = LocalStore(path)
    ids = [uuid7() for _ in range(10)]
    deletes = []
    for action, i, customer, retry, pico, hours, confidence in script:
        e = event(
            event_id=ids[i],
            customer_id=customer,
            is_retry=retry,
            retry_reason="timeout" if retry else None,
            cost_usd=Decimal(pico).scaleb(-12),
            occurred_at=T0 + timedelta(hours=hours),
            cost_confidence=confidence,
            input_tokens=pico % 1000,
        )
        if action == "delete":
            deletes.append(str(ids[i]))
        else:
            store.put_event(e)
        if action == "reput":  # e.g. mark_not_retry: the same event again, changed
            store.put_event(dataclasses.replace(e, is_retry=not retry, retry_reason=None))
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.executemany("DELETE FROM events WHERE event_id = ?", [(d,) for d in deletes])
        conn.execute("UPDATE events SET synced_at = 'x'")  # the sync worker: no effect
        conn.commit()
        same_rows(conn, EVENT_CHECK, ROLLUP)


def test_task_rollup_follows_start_and_end(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "d.db")
    root = Task(task_id=uuid7(), task_type="resolve", started_at=T0, customer_id="acme")
    child = Task(task_id=uuid7(), task_type="lookup", started_at=T0, parent_task_id=root.task_id)
    store.put_task(root)
    store.put_task(child)
    store.flush()
    root.status, root.total_cost_usd, root.retry_count = "failed", Decimal("1.5"), 2
    root.retry_cost_usd = Decimal("0.5")
    root.started_at = T0 + timedelta(hours=3)  # moves to the next UTC day
    store.put_task(root)
    store.close()
    with closing(sqlite3.connect(tmp_path / "d.db")) as conn:
        same_rows(conn, TASK_CHECK, TASK_ROLLUP)
        assert conn.execute("SELECT count(*) FROM task_days WHERE n != 0").fetchone()[0] == 2


def test_an_old_store_is_upgraded_with_its_rollups(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    store = LocalStore(tmp_path / "new.db")
    for i in range(30):
        store.put_event(event(customer_id=f"c{i % 3}", occurred_at=T0 + timedelta(hours=i)))
    store.put_task(Task(task_id=uuid7(), task_type="t", started_at=T0))
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("ATTACH ? AS new", (str(tmp_path / "new.db"),))
        conn.execute("INSERT INTO events SELECT * FROM new.events")
        conn.execute("INSERT INTO tasks SELECT * FROM new.tasks")
        conn.commit()
    with closing(connect_readonly(path)) as conn:  # upgrades the file to version 2
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        same_rows(conn, EVENT_CHECK, ROLLUP)
        same_rows(conn, TASK_CHECK, TASK_ROLLUP)


# --- periods ------------------------------------------------------------------------------


def test_a_month_in_a_time_zone() -> None:
    p = Period.month("2026-03", tz="Europe/Paris")
    assert p.start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert p.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # summer time from the 29th
    days = list(p.days())
    assert len(days) == 31
    assert days[0][0] == date(2026, 3, 1)
    dst = dict(days)[date(2026, 3, 29)]
    assert dst.end is not None
    assert dst.start is not None
    assert dst.end - dst.start == timedelta(hours=23)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.month("2026-3")


def test_dates_are_read_in_the_zone() -> None:
    p = Period.parse("2026-03-01", "2026-03-01", tz="Asia/Kolkata")
    assert p.start == datetime(2026, 2, 28, 18, 30, tzinfo=UTC)
    assert p.end == datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    assert "IST" in p.describe()
    with pytest.raises(ValueError, match="unknown time zone"):
        Period.parse("7d", tz="Nowhere/Special")


def test_the_previous_period_has_the_same_length() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    p = Period.parse("7d", now=now)
    before = p.previous(now)
    assert before is not None
    assert before.end == p.start
    assert before.start == now - timedelta(days=14)
    assert Period.all_time().previous(now) is None
