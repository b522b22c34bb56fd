"""Attribution: set_context isolation across threads and asyncio tasks, hashing, redaction."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from decimal import Decimal
from typing import Any

import pytest

import dexcost


def test_context_round_trip_and_clear() -> None:
    assert dexcost.get_context() is None
    dexcost.set_context(customer_id="acme", project_id="p1", metadata={"plan": "pro"}, agent="bot")
    ctx = dexcost.get_context()
    assert ctx == dexcost.DexcostContext("acme", "p1", {"plan": "pro"}, "bot")
    dexcost.set_context(customer_id="other")
    assert dexcost.get_context() == dexcost.DexcostContext(customer_id="other")
    dexcost.clear_context()
    assert dexcost.get_context() is None


def test_context_rejects_wrong_types() -> None:
    with pytest.raises(TypeError, match="customer_id"):
        dexcost.set_context(customer_id=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metadata"):
        dexcost.set_context(metadata=["x"])  # type: ignore[arg-type]


def test_threads_do_not_see_each_others_context() -> None:
    seen: dict[str, str | None] = {}
    barrier = threading.Barrier(2)

    def run(customer: str) -> None:
        dexcost.set_context(customer_id=customer)
        barrier.wait()
        ctx = dexcost.get_context()
        seen[customer] = ctx.customer_id if ctx else None

    threads = [threading.Thread(target=run, args=(c,)) for c in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": "a", "b": "b"}
    assert dexcost.get_context() is None


async def test_asyncio_tasks_are_isolated_and_inherit_from_their_creator(
    sdk: dexcost.CostTracker,
) -> None:
    async def handle(customer: str) -> dexcost.Task:
        dexcost.set_context(customer_id=customer)
        async with dexcost.task("request") as t:
            await asyncio.sleep(0.01)
            t.record_cost("svc", "1")

            async def sub() -> str | None:
                ctx = dexcost.get_context()
                current = dexcost.get_current_task()
                assert current is t.task
                return ctx.customer_id if ctx else None

            assert await asyncio.create_task(sub()) == customer
        return t.task

    tasks = await asyncio.gather(*(handle(c) for c in ("c1", "c2", "c3")))
    assert [t.customer_id for t in tasks] == ["c1", "c2", "c3"]


def test_customer_and_project_attribution_on_tasks_and_events(
    sdk: dexcost.CostTracker, read: Any
) -> None:
    dexcost.set_context(customer_id="acme", project_id="support")
    with dexcost.task("resolve_ticket") as t, dexcost.task("lookup") as child:
        child.record_cost("svc", "1")
    assert (t.task.customer_id, t.task.project_id) == ("acme", "support")
    assert (child.task.customer_id, child.task.project_id) == ("acme", "support")
    (event,) = read("SELECT customer_id, project_id, task_type FROM events")
    assert tuple(event) == ("acme", "support", "lookup")


def test_explicit_customer_wins_and_children_inherit_it(sdk: dexcost.CostTracker) -> None:
    dexcost.set_context(customer_id="ctx")
    with sdk.task("job", customer_id="explicit") as t:
        dexcost.clear_context()
        with dexcost.task("child") as child:
            pass
    assert t.task.customer_id == "explicit"
    assert child.task.customer_id == "explicit"


def test_context_metadata_is_merged_into_task_metadata(sdk: dexcost.CostTracker) -> None:
    dexcost.set_context(metadata={"region": "eu", "plan": "pro"})
    with dexcost.task("job", metadata={"plan": "enterprise"}) as t:
        pass
    assert t.task.metadata == {"region": "eu", "plan": "enterprise"}


def test_hash_customer_id_stores_sha256_once(db_path: Any, read: Any) -> None:
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], hash_customer_id=True)
    dexcost.set_context(customer_id="alice@example.com")
    with dexcost.task("outer") as outer, dexcost.task("inner") as inner:
        inner.record_cost("svc", "1")
    digest = hashlib.sha256(b"alice@example.com").hexdigest()
    assert outer.task.customer_id == digest
    assert inner.task.customer_id == digest  # inherited, not hashed twice
    stored = {r["customer_id"] for r in read("SELECT customer_id FROM tasks")}
    stored |= {r["customer_id"] for r in read("SELECT customer_id FROM events")}
    assert stored == {digest}


def test_redact_fields_removes_keys_at_any_depth(db_path: Any, read: Any) -> None:
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], redact_fields=["email", "token"])
    details = {"email": "a@b.c", "keep": 1, "nested": {"token": "s3cret", "ok": [{"email": "x"}]}}
    with dexcost.task("job", metadata={"email": "m@x", "team": "t"}) as t:
        event = t.record_cost("svc", Decimal("0.1"), details=details)
    assert event.details == {"keep": 1, "nested": {"ok": [{}]}}
    assert details["email"] == "a@b.c"  # the caller's dict is not modified
    assert t.task.metadata == {"team": "t"}
    (row,) = read("SELECT details FROM events")
    assert "s3cret" not in row["details"]
    assert "a@b.c" not in row["details"]
