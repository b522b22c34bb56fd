"""The local store: every field round-trips exactly, upserts, flush/close, registry."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost.store import (
    LocalStore,
    close_all_stores,
    connect_readonly,
    default_buffer_path,
    event_from_row,
    get_store,
    task_from_row,
)
from dexcost.store._values import money_pair

UTC = timezone.utc


def make_event(task_id: uuid.UUID | None = None, **kw: Any) -> Event:
    values: dict[str, Any] = {
        "event_id": uuid7(),
        "task_id": task_id or uuid7(),
        "event_type": "llm_call",
        "cost_usd": Decimal("0.0123"),
        "cost_confidence": "computed",
        "pricing_source": "litellm",
        "occurred_at": datetime.now(UTC),
    }
    values.update(kw)
    return Event(**values)


def full_event() -> Event:
    """An event with every optional field set to a non-default value."""
    return make_event(
        cost_usd=Decimal("0.000123456789"),
        pricing_version="v-3f9a",
        service_name="svc",
        provider="openai",
        model="gpt-4o",
        input_tokens=1234,
        output_tokens=567,
        cached_tokens=89,
        cache_creation_tokens=10,
        reasoning_tokens=42,
        latency_ms=812,
        is_retry=True,
        retry_reason="rate_limit",
        retry_of=uuid7(),
        error_type="timeout",
        customer_id="acme",
        project_id="proj",
        task_type="resolve_ticket",
        details={"finish_reason": "stop", "n": [1, 2.5, None], "ok": True},
        occurred_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
    )


def full_task() -> Task:
    return Task(
        task_id=uuid7(),
        task_type="resolve_ticket",
        started_at=datetime(2026, 3, 4, 5, 6, 0, 1, tzinfo=UTC),
        customer_id="acme",
        project_id="proj",
        parent_task_id=uuid7(),
        status="failed",
        ended_at=datetime(2026, 3, 4, 5, 7, 0, 999999, tzinfo=UTC),
        total_cost_usd=Decimal("1.50"),
        llm_cost_usd=Decimal("1.25"),
        external_cost_usd=Decimal("0.20"),
        compute_cost_usd=Decimal("0.05"),
        total_input_tokens=100,
        total_output_tokens=50,
        total_cached_tokens=25,
        total_cache_creation_tokens=5,
        retry_count=2,
        retry_cost_usd=Decimal("0.300"),
        event_count=7,
        error_type="ValueError",
        metadata={"_trace_links": [{"provider": "langfuse", "trace_id": "t-1"}]},
    )


def read_events(path: Path) -> dict[uuid.UUID, Event]:
    with closing(connect_readonly(path)) as conn:
        return {e.event_id: e for e in map(event_from_row, conn.execute("SELECT * FROM events"))}


def read_tasks(path: Path) -> dict[uuid.UUID, Task]:
    with closing(connect_readonly(path)) as conn:
        return {t.task_id: t for t in map(task_from_row, conn.execute("SELECT * FROM tasks"))}


def assert_same(a: object, b: object, cls: type) -> None:
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name.startswith("_"):
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        assert va == vb, f.name
        assert type(va) is type(vb), f.name


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = LocalStore(tmp_path / "sub" / "dexcost.db")
    yield s
    s.close()


def test_every_event_field_round_trips_exactly(store: LocalStore) -> None:
    original = full_event()
    bare = make_event()
    store.put_event(original)
    store.put_event(bare)
    assert store.flush(timeout=10)
    stored = read_events(store.path)
    assert_same(stored[original.event_id], original, Event)
    assert_same(stored[bare.event_id], bare, Event)
    assert stored[original.event_id].occurred_at.tzinfo is not None


def test_every_task_field_round_trips_exactly(store: LocalStore) -> None:
    original = full_task()
    bare = Task(task_id=uuid7(), task_type="t", started_at=datetime.now(UTC))
    store.put_task(original)
    store.put_task(bare)
    assert store.flush(timeout=10)
    stored = read_tasks(store.path)
    assert_same(stored[original.task_id], original, Task)
    assert_same(stored[bare.task_id], bare, Task)


_amounts = st.one_of(
    st.just(Decimal(0)),
    st.integers(0, 15).flatmap(lambda p: st.decimals(min_value=0, max_value=10**9, places=p)),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(_amounts, min_size=5, max_size=5),
    counts=st.lists(st.integers(0, 2**40), min_size=6, max_size=6),
    parent=st.booleans(),
    ended=st.booleans(),
    metadata=st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
def test_the_writers_task_row_is_the_one_its_lenient_conversion_gives(
    amounts: list[Decimal], counts: list[int], parent: bool, ended: bool, metadata: Any
) -> None:
    """The writer converts a task with a strict fast path and falls back to the lenient
    one only when that raises: for every valid task both give the same row (a task's
    untouched amounts are the shared zero, others any Decimal)."""
    from dexcost._money import ZERO
    from dexcost.store._rows import TaskSnapshot, task_row

    task = Task(task_id=uuid7(), task_type="t", started_at=datetime.now(UTC), metadata=metadata)
    task.parent_task_id = uuid7() if parent else None
    task.ended_at = datetime.now(UTC) if ended else None
    for name, amount in zip(
        (
            "total_cost_usd",
            "llm_cost_usd",
            "external_cost_usd",
            "compute_cost_usd",
            "retry_cost_usd",
        ),
        amounts,
        strict=True,
    ):
        setattr(task, name, ZERO if amount == 0 and amount.as_tuple().exponent == 0 else amount)
    for name, count in zip(
        ("total_input_tokens", "total_output_tokens", "total_cached_tokens",
         "total_cache_creation_tokens", "retry_count", "event_count"),
        counts,
        strict=True,
    ):  # fmt: skip
        setattr(task, name, count)
    snapshot = TaskSnapshot(task)
    assert task_row(snapshot) == task_row(snapshot, lenient=True)


def test_the_shared_zero_is_stored_as_any_other_zero_amount() -> None:
    """Untouched task amounts are the shared ZERO, which the store converts without the
    Decimal arithmetic; the columns must be those of any zero."""
    from dexcost._money import ZERO
    from dexcost.store._values import money_text, to_pico

    other = Decimal("0")
    assert other is not ZERO
    assert money_pair(ZERO) == money_pair(other) == (money_text(other), to_pico(other))


def test_columns_hold_sortable_utc_text_and_exact_picodollars(store: LocalStore) -> None:
    paris = timezone(timedelta(hours=2))
    event = make_event(
        occurred_at=datetime(2026, 1, 1, 1, 30, 0, tzinfo=paris),
        cost_usd=Decimal("0.000000075"),
    )
    store.put_event(event)
    naive = make_event(occurred_at=datetime(2026, 1, 1, 12, 0), cost_usd=Decimal("12"))
    store.put_event(naive)
    store.flush()
    conn = sqlite3.connect(store.path)
    rows = dict(conn.execute("SELECT event_id, occurred_at || '|' || cost_usd FROM events"))
    picos = dict(conn.execute("SELECT event_id, cost_pico FROM events"))
    conn.close()
    assert rows[str(event.event_id)] == "2025-12-31T23:30:00.000000Z|0.000000075"
    assert picos[str(event.event_id)] == 75_000
    # A naive datetime is taken as UTC.
    assert rows[str(naive.event_id)] == "2026-01-01T12:00:00.000000Z|12"
    assert picos[str(naive.event_id)] == 12 * 10**12
    back = read_events(store.path)[event.event_id]
    assert back.occurred_at == event.occurred_at


def test_amount_finer_than_a_picodollar_keeps_exact_text(store: LocalStore) -> None:
    amount = Decimal("0.0000000000015")  # 1.5 picodollars
    event = make_event(cost_usd=amount)
    store.put_event(event)
    store.flush()
    conn = sqlite3.connect(store.path)
    text, pico = conn.execute("SELECT cost_usd, cost_pico FROM events").fetchone()
    conn.close()
    assert Decimal(text) == amount
    assert pico == 2  # half-even rounding for the SQL sum only


def test_reput_of_an_event_is_an_upsert(store: LocalStore) -> None:
    event = make_event(is_retry=True, retry_reason="timeout")
    store.put_event(event)
    store.flush()
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE events SET synced_at = 'x'")
    conn.commit()
    event.is_retry = False  # what mark_not_retry does
    event.retry_reason = None
    store.put_event(event)
    store.flush()
    rows = conn.execute("SELECT is_retry, retry_reason, synced_at FROM events").fetchall()
    conn.close()
    # One row, updated, and marked for the sync worker to push again.
    assert rows == [(0, None, None)]


def test_task_is_snapshotted_when_put_then_upserted(store: LocalStore) -> None:
    task = Task(task_id=uuid7(), task_type="report", started_at=datetime.now(UTC))
    store.put_task(task)
    # The tracker keeps mutating the same object; the queued snapshot must not change.
    task.status = "success"
    task.total_cost_usd = Decimal("2.5")
    task.metadata["k"] = "v"
    store.flush()
    first = read_tasks(store.path)[task.task_id]
    assert (first.status, first.total_cost_usd, first.metadata) == ("pending", 0, {})
    store.put_task(task)
    store.flush()
    tasks = read_tasks(store.path)
    assert len(tasks) == 1
    assert (tasks[task.task_id].status, tasks[task.task_id].total_cost_usd) == (
        "success",
        Decimal("2.5"),
    )
    assert tasks[task.task_id].metadata == {"k": "v"}


def test_details_of_any_type_are_stored_as_json(store: LocalStore) -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    weird = {
        "amount": Decimal("0.10"),
        "id": uuid.UUID(int=1),
        "at": datetime(2026, 1, 1, tzinfo=UTC),
        "tags": {"b"},
        "raw": b"\x00\x01",
        1: "int key",
        "nan": float("nan"),
        "obj": Thing(),
    }
    a, b = make_event(details=weird), make_event(details=cyclic)
    store.put_event(a)
    store.put_event(b)
    store.flush()
    stored = read_events(store.path)
    assert stored[a.event_id].details == {
        "amount": "0.10",
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2026-01-01T00:00:00+00:00",
        "tags": ["b"],
        "raw": "AAE=",
        "1": "int key",
        "nan": "nan",
        "obj": "thing",
    }
    assert stored[b.event_id].details["self"]  # cut at some depth, but stored


def test_flush_waits_for_everything_put_before(store: LocalStore) -> None:
    events = [make_event() for _ in range(5000)]
    for e in events:
        store.put_event(e)
    assert store.flush(timeout=30)
    assert len(read_events(store.path)) == 5000


def test_close_is_idempotent_and_later_puts_are_still_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "d.db")
    store.put_event(make_event())
    store.close()
    store.close()
    assert store.closed
    late = make_event()
    store.put_event(late)
    store.put_task(Task(task_id=uuid7(), task_type="late", started_at=datetime.now(UTC)))
    assert store.flush()
    assert late.event_id in read_events(store.path)
    assert len(read_events(store.path)) == 2
    assert len(read_tasks(store.path)) == 1


def test_get_store_gives_one_store_per_file(tmp_path: Path) -> None:
    a = get_store(tmp_path / "x.db")
    b = get_store(str(tmp_path / "." / "x.db"))
    assert a is b
    assert get_store(tmp_path / "y.db") is not a
    a.close()
    c = get_store(tmp_path / "x.db")
    assert c is not a
    assert not c.closed
    close_all_stores()
    assert c.closed


def test_get_store_without_path_uses_the_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEXCOST_BUFFER_PATH", str(tmp_path / "env" / "e.db"))
    store = get_store()
    try:
        assert store.path == (tmp_path / "env" / "e.db").resolve()
        assert store.path.exists()
    finally:
        store.close()


@pytest.mark.skipif(
    not hasattr(__import__("sys"), "platform") or __import__("sys").platform != "linux",
    reason="XDG layout applies on Linux",
)
def test_default_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEXCOST_BUFFER_PATH", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_buffer_path() == tmp_path / "dexcost" / "dexcost.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_buffer_path() == tmp_path / "home" / ".local" / "share" / "dexcost" / "dexcost.db"
    )


def test_put_event_does_not_touch_disk(store: LocalStore) -> None:
    """Recording is an in-memory append; the row appears only once the writer ran."""
    conn = sqlite3.connect(store.path)
    before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    store.put_event(make_event())
    store.flush()
    after = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    assert (before, after) == (0, 1)


def test_puts_racing_with_close_are_all_written(tmp_path: Path) -> None:
    import threading

    store = LocalStore(tmp_path / "d.db")
    start = threading.Barrier(5)
    put: list[Event] = []

    def producer() -> None:
        start.wait()
        for _ in range(200):
            e = make_event()
            store.put_event(e)
            put.append(e)

    threads = [threading.Thread(target=producer) for _ in range(4)]
    for t in threads:
        t.start()
    start.wait()
    closers = [threading.Thread(target=store.close) for _ in range(2)]
    for t in closers:
        t.start()
    for t in threads + closers:
        t.join(60)
    assert store.flush(timeout=30)
    assert set(read_events(store.path)) == {e.event_id for e in put}


def test_public_names_are_pinned() -> None:
    import dexcost.store

    assert dexcost.store.__all__ == [
        "ENV_BUFFER_PATH",
        "SCHEMA_VERSION",
        "LocalStore",
        "SchemaVersionError",
        "StoreError",
        "StoreNotFoundError",
        "close_all_stores",
        "connect_readonly",
        "default_buffer_path",
        "event_from_row",
        "get_store",
        "task_from_row",
    ]


@settings(max_examples=300, deadline=None)
@given(
    now_ns=st.integers(min_value=0, max_value=4_102_444_800 * 10**9),  # up to 2100
    cost=st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=14),
    tokens=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
    names=st.tuples(*[st.one_of(st.none(), st.text(max_size=12))] * 4),
    details=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8)),
)
def test_a_deferred_record_converts_to_the_row_of_its_event(
    now_ns: int, cost: Decimal, tokens: int | None, names: tuple[Any, ...], details: Any
) -> None:
    """The writer converts instrumentation's records (values, an integer id, a time in
    ns) without building their Event; the row is the one the Event would give."""
    from dexcost._deferred import build
    from dexcost._ids import id_at
    from dexcost.store._rows import event_rows

    provider, model, customer, task_type = names
    record = [id_at(now_ns), uuid7(), "llm_call", cost, "computed", "litellm", now_ns]
    record += ["v1", None, provider, model, tokens, tokens, 0, None, None, tokens]
    record += [False, None, None, None, customer, None, task_type, details]
    rows, slow = event_rows([record, build(record)])
    assert slow == []
    # NULL is bound as one NaN object, which is not equal to itself.
    assert all(x is y or x == y for x, y in zip(rows[0], rows[1], strict=True))


@pytest.mark.skipif(
    not hasattr(sqlite3.Connection, "setlimit"), reason="Connection.setlimit needs Python 3.11"
)
@pytest.mark.parametrize("count", [0, 1, 2, 7, 300, 517])
def test_events_are_inserted_in_multi_row_chunks(tmp_path: Path, count: int) -> None:
    """The writer inserts a batch with multi-row statements (one SQLite step, so one GIL
    release, per chunk), sized to the connection's limit on bound parameters."""
    from dexcost.store._connect import open_write_connection
    from dexcost.store._multirow import write_rows as insert_rows
    from dexcost.store._rows import event_rows
    from dexcost.store._writer import EVENT_INSERT_NEW

    conn = open_write_connection(tmp_path / "chunks.db")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 26 * 5 + 3)  # 5 rows per statement
    events = [make_event() for _ in range(count)]
    rows, slow = event_rows(events)
    assert slow == []
    with conn:
        assert insert_rows(conn, EVENT_INSERT_NEW, rows) == count
        assert insert_rows(conn, EVENT_INSERT_NEW, rows[: count // 2]) == 0  # all known
    stored = {r[0] for r in conn.execute("SELECT event_id FROM events")}
    conn.close()
    assert stored == {str(e.event_id) for e in events}


@pytest.mark.skipif(
    not hasattr(sqlite3.Connection, "setlimit"), reason="Connection.setlimit needs Python 3.11"
)
def test_multi_row_upserts_apply_in_order(tmp_path: Path) -> None:
    """Task snapshots and roll-up sums go through multi-row upserts too: a task put
    several times in one batch ends as its last snapshot, and the day's sums add up."""
    store = LocalStore(tmp_path / "upserts.db")
    conn = store._conn
    assert conn is not None
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # a few rows per statement
    tasks = [Task(task_id=uuid7(), task_type="t", started_at=datetime.now(UTC)) for _ in range(9)]
    events = [make_event(task_id=tasks[i % 9].task_id) for i in range(40)]
    for i, task in enumerate(tasks):
        store.put_task(task)
        task.status = "success"
        task.event_count = i
        store.put_task(task)  # the same task again, later in the same batch
    for event in events:
        store.put_event(event)
    assert store.flush(10)
    store.close()
    with closing(connect_readonly(tmp_path / "upserts.db")) as ro:
        rows = {r["task_id"]: r for r in ro.execute("SELECT * FROM tasks")}
        (count, pico) = ro.execute(
            "SELECT sum(n), sum(cost_hi) * 1000000 + sum(cost_lo) FROM event_days"
        ).fetchone()
    assert {k: (r["status"], r["event_count"]) for k, r in rows.items()} == {
        str(t.task_id): ("success", i) for i, t in enumerate(tasks)
    }
    assert count == 40
    assert pico == sum(int(e.cost_usd * 10**12) for e in events)
