"""Session tasks: LLM costs recorded outside any task are never lost."""

from __future__ import annotations

import time
from typing import Any

import dexcost


def test_call_outside_a_task_lands_in_the_agents_session(
    sdk: dexcost.CostTracker, read: Any
) -> None:
    dexcost.set_context(customer_id="acme", agent="support_bot")
    first = dexcost.record_llm_call("openai", "gpt-4o-mini", 100, 10)
    second = dexcost.record_llm_call("openai", "gpt-4o-mini", 100, 10)
    (session,) = dexcost.get_session_manager().active
    assert first.task_id == second.task_id == session.task_id
    assert session.task.task_type == "support_bot"
    assert session.task.customer_id == "acme"
    assert session.task.metadata == {"_session": True}
    assert session.task.total_cost_usd == first.cost_usd + second.cost_usd


def test_default_session_type_and_one_session_per_customer(sdk: dexcost.CostTracker) -> None:
    dexcost.set_context(customer_id="a")
    a = dexcost.record_llm_call("openai", "gpt-4o", 1, 1)
    dexcost.set_context(customer_id="b")
    b = dexcost.record_llm_call("openai", "gpt-4o", 1, 1)
    sessions = {s.task.customer_id: s for s in dexcost.get_session_manager().active}
    assert set(sessions) == {"a", "b"}
    assert a.task_id == sessions["a"].task_id
    assert b.task_id == sessions["b"].task_id
    assert {s.task.task_type for s in sessions.values()} == {"session"}


def test_idle_sessions_end_and_the_next_call_opens_a_new_one(db_path: Any, read: Any) -> None:
    tracker = dexcost.CostTracker(auto_instrument=[], buffer_path=str(db_path))
    tracker.sessions.idle_timeout = 0.05
    first = tracker.record_llm_call("openai", "gpt-4o", 1, 1)
    time.sleep(0.1)
    second = tracker.record_llm_call("openai", "gpt-4o", 1, 1)
    assert first.task_id != second.task_id
    deadline = time.monotonic() + 5
    while tracker.sessions.active and time.monotonic() < deadline:
        time.sleep(0.01)  # the background reaper ends idle sessions by itself
    assert tracker.sessions.active == []
    tracker.flush()
    statuses = read("SELECT status FROM tasks ORDER BY started_at")
    assert [r["status"] for r in statuses] == ["success", "success"]
    tracker.close()


def test_end_idle_ends_only_sessions_past_the_timeout(sdk: dexcost.CostTracker) -> None:
    sessions = sdk.sessions
    sessions.idle_timeout = 60
    dexcost.set_context(customer_id="a")
    dexcost.record_llm_call("openai", "gpt-4o", 1, 1)
    assert sessions.end_idle() == 0
    (session,) = sessions.active
    assert sessions.end_idle(now=time.monotonic() + 61) == 1
    assert session.ended
    assert session.task.status == "success"


def test_close_ends_open_sessions(sdk: dexcost.CostTracker, read: Any) -> None:
    dexcost.record_llm_call("openai", "gpt-4o", 1, 1)
    (session,) = dexcost.get_session_manager().active
    dexcost.close()
    assert session.ended
    (row,) = read("SELECT status FROM tasks")
    assert row["status"] == "success"


def test_calls_inside_a_task_never_open_a_session(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("job"):
        dexcost.record_llm_call("openai", "gpt-4o", 1, 1)
    assert dexcost.get_session_manager().active == []
