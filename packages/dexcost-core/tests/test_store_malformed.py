"""A malformed record never drops the other records of its batch, nor breaks the store."""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost._types import EventType
from dexcost.store import LocalStore, connect_readonly, event_from_row

UTC = timezone.utc


def make_event(**kw: Any) -> Event:
    values: dict[str, Any] = {
        "event_id": uuid7(),
        "task_id": uuid7(),
        "event_type": "llm_call",
        "cost_usd": Decimal("0.01"),
        "cost_confidence": "computed",
        "pricing_source": "litellm",
        "occurred_at": datetime.now(UTC),
    }
    values.update(kw)
    return Event(**values)


class Color(Enum):
    RED = "red"


def stored_rows(path: Path) -> dict[str, sqlite3.Row]:
    with closing(connect_readonly(path)) as conn:
        return {r["event_id"]: r for r in conn.execute("SELECT * FROM events")}


def test_strange_values_are_stored_and_the_batch_survives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [make_event() for _ in range(50)]
    strange = [
        make_event(event_type=EventType.LLM_CALL, cost_confidence=Color.RED),  # enums
        make_event(model=12345, provider=3.5),  # numbers where text is expected
        make_event(input_tokens=2**70),  # does not fit in SQLite's int64
        make_event(model="bad \ud800 surrogate"),  # not encodable as UTF-8
        make_event(cost_usd="0.25"),  # text instead of Decimal
        make_event(cost_usd=Decimal("NaN")),
        make_event(input_tokens="17", latency_ms=True),
        make_event(task_id=str(uuid7()), retry_of=str(uuid7())),  # ids as text
        make_event(details=["not", "a", "dict"]),
        make_event(occurred_at="2026-01-01T00:00:00Z"),
    ]
    batch = good[:25] + strange + good[25:]
    store = LocalStore(tmp_path / "d.db")
    for e in batch:
        store.put_event(e)
    assert store.flush(timeout=30)
    store.close()
    rows = stored_rows(store.path)
    assert {str(e.event_id) for e in batch} <= set(rows)
    r = rows
    assert r[str(strange[0].event_id)]["event_type"] == "llm_call"
    assert r[str(strange[0].event_id)]["cost_confidence"] == "red"
    assert r[str(strange[1].event_id)]["model"] == "12345"
    # INTEGER affinity turns the numeric text into a REAL: kept, if not to the unit.
    assert r[str(strange[2].event_id)]["input_tokens"] == float(2**70)
    assert "surrogate" in r[str(strange[3].event_id)]["model"]
    assert r[str(strange[4].event_id)]["cost_usd"] == "0.25"
    assert r[str(strange[4].event_id)]["cost_pico"] == 250_000_000_000
    assert r[str(strange[5].event_id)]["cost_pico"] is None
    assert r[str(strange[6].event_id)]["input_tokens"] == 17
    assert r[str(strange[6].event_id)]["latency_ms"] == 1
    assert uuid.UUID(r[str(strange[7].event_id)]["task_id"]) == uuid.UUID(strange[7].task_id)  # type: ignore[arg-type]
    assert r[str(strange[8].event_id)]["details"] == '{"value":["not","a","dict"]}'
    assert r[str(strange[9].event_id)]["occurred_at"] == "2026-01-01T00:00:00Z"
    # Good events are intact and read back as they went in.
    for e in good:
        back = event_from_row(r[str(e.event_id)])
        assert (back.cost_usd, back.occurred_at, back.task_id) == (
            e.cost_usd,
            e.occurred_at,
            e.task_id,
        )


def test_a_record_that_cannot_be_stored_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [make_event() for _ in range(10)]
    no_id = make_event(event_id=None)
    no_type = make_event(event_type=None)
    store = LocalStore(tmp_path / "d.db")
    with caplog.at_level(logging.ERROR, logger="dexcost.store"):
        for e in [*good[:5], no_id, no_type, *good[5:]]:
            store.put_event(e)
        store.flush(timeout=30)
    store.close()
    rows = stored_rows(store.path)
    assert set(rows) == {str(e.event_id) for e in good}
    messages = "\n".join(rec.getMessage() for rec in caplog.records)
    assert str(no_type.event_id) in messages
    assert "could not store event" in messages


def test_a_malformed_task_does_not_block_events(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "d.db")
    task = Task(task_id=uuid7(), task_type="x", started_at=datetime.now(UTC))
    task.total_cost_usd = "abc"  # type: ignore[assignment]
    task.metadata = {"when": datetime(2026, 1, 1, tzinfo=UTC), (1, 2): "tuple key"}
    event = make_event(task_id=task.task_id)
    store.put_task(task)
    store.put_event(event)
    assert store.flush()
    store.close()
    with closing(connect_readonly(store.path)) as conn:
        row = conn.execute("SELECT total_cost_usd, total_cost_pico, metadata FROM tasks").fetchone()
        count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert tuple(row) == ("abc", None, '{"when":"2026-01-01T00:00:00+00:00","(1, 2)":"tuple key"}')
    assert count == 1


def test_a_deferred_record_that_cannot_be_converted_drops_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """dexcost's instrumentation queues an event as its values (a list) for the writer
    to convert; one that cannot be converted is logged, without its values, and skipped."""
    from dexcost._deferred import build
    from dexcost._ids import id_at

    now = time.time_ns()
    values: list[Any] = [id_at(now), uuid7(), "external_cost", Decimal("0.002")]
    values += ["exact", "provider", now, "v1", "tavily"] + [None] * 8
    values += [False, None, None, None, "acme", None, "research", {"query": "s3cret"}]
    since_epoch = build(values).occurred_at - datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert since_epoch // timedelta(microseconds=1) == now // 1000  # kept to the microsecond
    odd = list(values)
    odd[3] = "0.002"  # text, not a Decimal: converted the lenient way
    odd[0] = id_at(time.time_ns())
    broken = [*values[:-1], "one too many", {"query": "s3cret"}]
    store = LocalStore(tmp_path / "s.db")
    good = [make_event(), make_event()]
    for item in (good[0], broken, values, odd, good[1]):
        store.put_event(item)
    with caplog.at_level(logging.ERROR, logger="dexcost.store"):
        assert store.flush(5)
    store.close()
    rows = stored_rows(tmp_path / "s.db")
    ids = [str(uuid.UUID(int=values[0])), str(uuid.UUID(int=odd[0]))]
    assert set(rows) == {str(e.event_id) for e in good} | set(ids)
    for event_id in ids:
        stored = event_from_row(rows[event_id])
        assert (stored.service_name, stored.customer_id, stored.cost_usd) == (
            "tavily",
            "acme",
            Decimal("0.002"),
        )
        assert stored.details == {"query": "s3cret"}
    assert event_from_row(rows[ids[0]]).occurred_at == build(values).occurred_at
    assert "could not convert a deferred event (26 values)" in caplog.text
    assert "s3cret" not in caplog.text
