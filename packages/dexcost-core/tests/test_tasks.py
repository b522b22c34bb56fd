"""Tasks: with/async with, nesting, roll-up, failures, manual start/end, decorators."""

from __future__ import annotations

import asyncio
import gc
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest

import dexcost


def test_task_before_init_says_to_call_init() -> None:
    with pytest.raises(RuntimeError, match=r"dexcost.init\(\)"), dexcost.task("x"):
        pass


def test_record_cost_without_task_says_how_to_open_one(sdk: dexcost.CostTracker) -> None:
    with pytest.raises(RuntimeError, match=r"no active dexcost task.*dexcost.task"):
        dexcost.record_cost("svc", "0.01")


def test_clean_exit_is_success_and_persisted(sdk: dexcost.CostTracker, read: Any) -> None:
    with dexcost.task("generate_report", metadata={"k": "v"}) as t:
        assert dexcost.get_current_task() is t.task
        dexcost.record_cost("pdf_renderer", "0.002")
        t.record_cost("cloud_storage", "0.0001", event_type="compute_cost")
    assert dexcost.get_current_task() is None
    assert t.task.status == "success"
    assert t.task.ended_at is not None
    assert t.task.total_cost_usd == Decimal("0.0021")
    assert t.task.external_cost_usd == Decimal("0.002")
    assert t.task.compute_cost_usd == Decimal("0.0001")
    (row,) = read("SELECT * FROM tasks")
    assert row["task_id"] == str(t.task_id)
    assert row["task_type"] == "generate_report"
    assert row["status"] == "success"
    assert Decimal(row["total_cost_usd"]) == Decimal("0.0021")
    events = read("SELECT task_id, service_name, event_type FROM events ORDER BY event_id")
    assert [(e["service_name"], e["event_type"]) for e in events] == [
        ("pdf_renderer", "external_cost"),
        ("cloud_storage", "compute_cost"),
    ]
    assert {e["task_id"] for e in events} == {str(t.task_id)}


class Boom(Exception):
    pass


def test_exception_marks_failed_keeps_events_and_propagates(
    sdk: dexcost.CostTracker, read: Any
) -> None:
    error = Boom("the user's own error")

    def work() -> dexcost.TrackedTask:
        with dexcost.task("classify") as t:
            t.record_cost("ocr", "0.01")
            seen.append(t)
            raise error

    seen: list[dexcost.TrackedTask] = []
    with pytest.raises(Boom) as caught:
        work()
    (t,) = seen
    assert caught.value is error
    assert t.task.status == "failed"
    assert t.task.error_type == "Boom"
    (row,) = read("SELECT status, error_type FROM tasks")
    assert tuple(row) == ("failed", "Boom")
    assert len(read("SELECT * FROM events")) == 1


async def test_async_with_task(sdk: dexcost.CostTracker) -> None:
    async with dexcost.task("async_job") as t:
        await asyncio.sleep(0)
        t.record_cost("svc", "1")
        assert dexcost.get_current_task() is t.task
    assert t.task.status == "success"
    assert dexcost.get_current_task() is None


def test_nesting_links_parents_and_rolls_up(sdk: dexcost.CostTracker, read: Any) -> None:
    with dexcost.task("pipeline") as outer:
        outer.record_cost("a", "1")
        with dexcost.task("step_one") as inner:
            inner.record_cost("b", "2")
            with dexcost.task("leaf") as leaf:
                leaf.record_llm_call("openai", "custom-model", 10, 5, cost_usd="4")
        assert dexcost.get_current_task() is outer.task
    assert inner.task.parent_task_id == outer.task_id
    assert leaf.task.parent_task_id == inner.task_id
    assert leaf.task.total_cost_usd == Decimal(4)
    assert inner.task.total_cost_usd == Decimal(6)
    assert outer.task.total_cost_usd == Decimal(7)
    assert outer.task.llm_cost_usd == Decimal(4)
    assert outer.task.total_input_tokens == 10
    assert outer.task.event_count == 3
    stored = {r["task_type"]: r for r in read("SELECT * FROM tasks")}
    assert Decimal(stored["pipeline"]["total_cost_usd"]) == Decimal(7)
    assert stored["leaf"]["parent_task_id"] == str(inner.task_id)


def test_children_in_threads_roll_up_exactly(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("fan_out") as parent:
        parent_task = parent.task

        def worker() -> None:
            with dexcost.task_context(parent_task):
                for _ in range(200):
                    with dexcost.task("child") as child:
                        child.record_cost("svc", "0.001")

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert parent.task.total_cost_usd == Decimal("0.800")
    assert parent.task.event_count == 800


async def test_child_that_outlives_its_parent_still_rolls_up(
    sdk: dexcost.CostTracker, read: Any
) -> None:
    release = asyncio.Event()

    async def background() -> None:
        async with dexcost.task("slow_child") as child:
            await release.wait()
            child.record_cost("svc", "5")

    async with dexcost.task("parent") as parent:
        job = asyncio.create_task(background())
        await asyncio.sleep(0)
    assert parent.task.status == "success"
    release.set()
    await job
    assert parent.task.total_cost_usd == Decimal(5)
    stored = {r["task_type"]: r for r in read("SELECT * FROM tasks")}
    assert Decimal(stored["parent"]["total_cost_usd"]) == Decimal(5)
    assert stored["slow_child"]["parent_task_id"] == str(parent.task_id)


def test_start_task_and_end_exactly_once(sdk: dexcost.CostTracker, read: Any) -> None:
    tracker = dexcost.CostTracker(auto_instrument=[])
    t = tracker.start_task("celery_job", customer_id="acme")
    assert dexcost.get_current_task() is None
    t.record_cost("queue", "0.0005")
    t.end(status="success")
    with pytest.raises(RuntimeError, match="exactly once"):
        t.end()
    with pytest.raises(RuntimeError, match="already ended"):
        t.record_cost("queue", "1")
    (row,) = read("SELECT customer_id, status, total_cost_usd FROM tasks")
    assert tuple(row) == ("acme", "success", "0.0005")


def test_end_rejects_unknown_status(sdk: dexcost.CostTracker) -> None:
    t = sdk.start_task("x")
    with pytest.raises(ValueError, match="'success' or 'failed'"):
        t.end("done")
    t.end("failed", error_type="UpstreamTimeout")
    assert (t.task.status, t.task.error_type) == ("failed", "UpstreamTimeout")


def test_task_never_ended_warns_and_is_stored_pending(sdk: dexcost.CostTracker, read: Any) -> None:
    t = sdk.start_task("forgotten")
    t.record_cost("svc", "1")
    task_id = t.task_id
    gc.disable()  # the task and its handle form a cycle: collect it inside the block
    try:
        del t
        with pytest.warns(ResourceWarning, match="never ended"):
            gc.collect()
    finally:
        gc.enable()
    (row,) = read("SELECT status, total_cost_usd FROM tasks WHERE task_id = ?", str(task_id))
    assert tuple(row) == ("pending", "1")


def test_ending_inside_with_block_is_respected(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("x") as t:
        t.end("failed")
    assert t.task.status == "failed"


def test_task_context_activates_a_started_task(sdk: dexcost.CostTracker) -> None:
    t = sdk.start_task("manual")
    with dexcost.task_context(t.task):
        dexcost.record_cost("svc", "2")
        with dexcost.task("child") as child:
            pass
    t.end()
    assert child.task.parent_task_id == t.task_id
    assert t.task.total_cost_usd == Decimal(2)


def test_set_current_task_returns_a_resettable_token(sdk: dexcost.CostTracker) -> None:
    t = sdk.start_task("manual")
    token = dexcost.set_current_task(t.task)
    assert dexcost.get_current_task() is t.task
    dexcost._context._current_task.reset(token)
    assert dexcost.get_current_task() is None
    t.end()
    with pytest.raises(TypeError):
        dexcost.set_current_task("not a task")  # type: ignore[arg-type]


def test_track_task_decorator_sync_async_and_bare(sdk: dexcost.CostTracker) -> None:
    seen: list[dexcost.Task] = []

    @sdk.track_task("resolve_ticket")
    def resolve(x: int) -> int:
        task = dexcost.get_current_task()
        assert task is not None
        seen.append(task)
        return x * 2

    @sdk.track_task
    async def summarise() -> str:
        task = dexcost.get_current_task()
        assert task is not None
        seen.append(task)
        return "ok"

    assert resolve(21) == 42
    assert resolve.__name__ == "resolve"
    assert asyncio.run(summarise()) == "ok"
    assert [t.task_type for t in seen] == ["resolve_ticket", "summarise"]
    assert all(t.status == "success" for t in seen)

    @sdk.track_task("failing")
    def fail() -> None:
        raise Boom

    with pytest.raises(Boom):
        fail()


def test_track_task_refuses_generators(sdk: dexcost.CostTracker) -> None:
    with pytest.raises(TypeError, match="generator"):

        @sdk.track_task
        def gen() -> Any:
            yield 1


def test_task_ids_are_unique_and_time_ordered(sdk: dexcost.CostTracker) -> None:
    ids = []
    for _ in range(50):
        with dexcost.task("x") as t:
            ids.append(t.task_id)
    assert len(set(ids)) == 50
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids)
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)


def test_a_scope_is_entered_once(sdk: dexcost.CostTracker) -> None:
    scope = dexcost.task("x")
    with scope:
        pass
    with pytest.raises(RuntimeError, match="only once"), scope:
        pass


def test_start_task_can_be_back_dated(sdk: dexcost.CostTracker) -> None:
    from datetime import datetime, timedelta, timezone

    earlier = datetime.now(timezone.utc) - timedelta(seconds=30)
    t = sdk.start_task("lazy", started_at=earlier)
    t.end()
    assert t.task.started_at == earlier
    with pytest.raises(TypeError, match="timezone-aware"):
        sdk.start_task("bad", started_at=datetime.now())
