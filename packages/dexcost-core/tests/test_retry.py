"""Retry tracking: manual markers, overrides, and the opt-in heuristic."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import dexcost
from dexcost import RetryHeuristicEngine


def test_mark_retry_counts_towards_retry_cost(sdk: dexcost.CostTracker, read: Any) -> None:
    with dexcost.task("outer") as outer, dexcost.task("inner") as t:
        first = t.record_llm_call("openai", "gpt-4o", 10, 0, cost_usd="0", error_type="rate_limit")
        marker = t.mark_retry("rate_limit", cost_usd="0.001", retry_of=first.event_id)
    assert marker.event_type == "retry_marker"
    assert marker.is_retry
    assert marker.retry_of == first.event_id
    for task in (t.task, outer.task):
        assert task.retry_count == 1
        assert task.retry_cost_usd == Decimal("0.001")
    (row,) = read(
        "SELECT retry_reason, is_retry, retry_of FROM events WHERE event_type='retry_marker'"
    )
    assert tuple(row) == ("rate_limit", 1, str(first.event_id))


def test_mark_not_retry_unflags_latest_then_by_id(sdk: dexcost.CostTracker, read: Any) -> None:
    with dexcost.task("job") as t:
        a = t.mark_retry("timeout", cost_usd="1")
        b = t.mark_retry("5xx", cost_usd="2")
        assert t.mark_not_retry() is b
        assert t.task.retry_cost_usd == Decimal(1)
        assert t.mark_not_retry(event_id=a.event_id) is a
        assert t.mark_not_retry() is None
    assert (t.task.retry_count, t.task.retry_cost_usd) == (0, 0)
    assert t.task.total_cost_usd == Decimal(3)  # the cost stays, only the flag moves
    flags = read("SELECT is_retry FROM events")
    assert [r["is_retry"] for r in flags] == [0, 0]
    (task_row,) = read("SELECT retry_count, retry_cost_usd FROM tasks")
    assert tuple(task_row) == (0, "0")


def heuristic_sdk(db_path: Any, **kwargs: Any) -> dexcost.CostTracker:
    dexcost.init(
        buffer_path=str(db_path), auto_instrument=[], enable_retry_heuristics=True, **kwargs
    )
    tracker = dexcost.get_tracker()
    assert tracker is not None
    return tracker


def test_heuristic_flags_the_call_after_a_transient_failure(db_path: Any) -> None:
    heuristic_sdk(db_path)
    with dexcost.task("job") as t:
        failed = t.record_llm_call("openai", "gpt-4o", 100, 0, error_type="rate_limit")
        retried = t.record_llm_call("openai", "gpt-4o", 100, 20)
        normal = t.record_llm_call("openai", "gpt-4o", 100, 20)
        other_model = t.record_llm_call("openai", "gpt-4o-mini", 100, 20)
    assert not failed.is_retry
    assert retried.is_retry
    assert retried.retry_reason == "rate_limit"
    assert retried.retry_of == failed.event_id
    assert not normal.is_retry  # a failure is consumed by the first call after it
    assert not other_model.is_retry
    assert t.task.retry_count == 1
    assert t.task.retry_cost_usd == retried.cost_usd > 0


def test_heuristic_follows_retry_chains_and_ignores_non_transient_errors(db_path: Any) -> None:
    heuristic_sdk(db_path)
    with dexcost.task("job") as t:
        t.record_llm_call("anthropic", "claude-3-5-sonnet-20241022", 1, 0, error_type="timeout")
        second = t.record_llm_call(
            "anthropic", "claude-3-5-sonnet-20241022", 1, 0, error_type="5xx"
        )
        third = t.record_llm_call("anthropic", "claude-3-5-sonnet-20241022", 10, 10)
        t.record_llm_call(
            "anthropic", "claude-3-5-sonnet-20241022", 1, 0, error_type="invalid_request"
        )
        fixed = t.record_llm_call("anthropic", "claude-3-5-sonnet-20241022", 10, 10)
    assert second.is_retry
    assert third.retry_of == second.event_id
    assert not fixed.is_retry
    assert t.task.retry_count == 2


def test_heuristic_window_and_threshold() -> None:
    engine = RetryHeuristicEngine(window=10, threshold=0.8)
    assert engine.score("rate_limit", 0) == 1.0
    assert engine.score("rate_limit", 10) == 0.5
    assert engine.score("rate_limit", 11) == 0.0
    import uuid

    failure = (uuid.uuid4(), "timeout", 100.0)
    assert engine.judge(failure, 101.0).is_retry  # score 0.95
    assert not engine.judge(failure, 108.0).is_retry  # score 0.6 < 0.8
    assert not engine.judge(failure, 200.0).is_retry


def test_heuristic_off_by_default(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("job") as t:
        t.record_llm_call("openai", "gpt-4o", 1, 0, error_type="rate_limit")
        again = t.record_llm_call("openai", "gpt-4o", 1, 1)
    assert not again.is_retry


@pytest.mark.parametrize(
    ("window", "threshold"), [(0, None), (-1, None), (None, 1.5), (None, -0.1)]
)
def test_heuristic_settings_are_validated(db_path: Any, window: Any, threshold: Any) -> None:
    with pytest.raises(ValueError, match="retry_heuristic"):
        heuristic_sdk(db_path, retry_heuristic_window=window, retry_heuristic_threshold=threshold)


def test_heuristic_matches_the_dated_model_a_provider_reports(db_path: Any) -> None:
    heuristic_sdk(db_path)
    with dexcost.task("job") as t:
        failed = t.record_llm_call("openai", "gpt-4o-mini", 0, 0, error_type="rate_limit")
        retried = t.record_llm_call("openai", "gpt-4o-mini-2024-07-18", 100, 20)
    assert retried.retry_of == failed.event_id
