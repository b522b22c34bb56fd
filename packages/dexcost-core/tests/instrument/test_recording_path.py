"""What the instrumentation records is what the public API records for the same call.

Provider patches hand their calls to the tracker without the public method's argument
checks (they read the values themselves); the events must not differ in any field.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

import dexcost
from dexcost import DexcostConfig, Task

MODEL = "gpt-4o-2024-08-06"
MESSAGES = [{"role": "user", "content": "Summarise the ticket in one line."}]
# Columns that name this particular event or task, or the moment it was recorded.
_OWN = ("event_id", "task_id", "occurred_at", "retry_of")
_TASK_OWN = ("task_id", "started_at", "ended_at", "_live")


def _completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-same",
        "object": "chat.completion",
        "created": 1741570283,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Refund issued.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1117,
            "completion_tokens": 346,
            "total_tokens": 1463,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
        "service_tier": "priority",
    }


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[dexcost.CostTracker]:
    config = DexcostConfig(
        redact_fields=["response_id"], hash_customer_id=True, enable_retry_heuristics=True
    )
    t = dexcost.CostTracker(
        config, auto_instrument=["openai"], buffer_path=str(tmp_path / "same.db")
    )
    yield t
    t.close()


def _events(tracker: dexcost.CostTracker, task: dexcost.TrackedTask) -> list[dict[str, Any]]:
    tracker.flush()
    con = sqlite3.connect(tracker.store.path)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT * FROM events WHERE task_id = ? ORDER BY event_id", (str(task.task_id),)
        ).fetchall()
    finally:
        con.close()
    return [{**dict(r), "details": json.loads(r["details"] or "{}")} for r in rows]


def _by_hand(
    tracker: dexcost.CostTracker, failed: dict[str, Any], answered: dict[str, Any]
) -> tuple[dexcost.TrackedTask, list[dict[str, Any]]]:
    """The failed and the answered call recorded through ``record_llm_call``."""
    with tracker.task("ticket") as by_hand:
        by_hand.record_llm_call(
            "openai",
            "gpt-4o",
            0,
            0,
            Decimal(0),
            cost_confidence="exact",
            pricing_source="provider",
            latency_ms=failed["latency_ms"],
            details=failed["details"],
            error_type="rate_limit",
        )
        by_hand.record_llm_call(
            "openai",
            MODEL,
            1117,
            346,
            cached_tokens=1024,
            reasoning_tokens=256,
            service_tier="priority",
            latency_ms=answered["latency_ms"],
            details={**answered["details"], "response_id": "chatcmpl-same"},
        )
    return by_hand, _events(tracker, by_hand)


def test_instrumented_calls_record_the_events_record_llm_call_records(
    tracker: dexcost.CostTracker, fake_api: Any
) -> None:
    dexcost.set_context(customer_id="acme", project_id="support")
    client = openai.OpenAI(api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0)
    fake_api.reply_json({"error": {"message": "slow down"}}, status=429)
    fake_api.reply_json(_completion())
    with tracker.task("ticket") as captured:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.close()
    failed, answered = _events(tracker, captured)

    details = {k: v for k, v in answered["details"].items() if k != "retry_confidence"}
    by_hand, expected = _by_hand(tracker, failed, {**answered, "details": details})

    assert answered["is_retry"]
    assert answered["retry_of"] == failed["event_id"]
    assert expected[1]["retry_of"] == expected[0]["event_id"]
    assert Decimal(answered["cost_usd"]) > 0
    assert "response_id" not in answered["details"]  # redacted on both paths
    assert answered["customer_id"] != "acme"  # hashed on both paths
    for got, want in zip((failed, answered), expected, strict=True):
        got["details"].pop("retry_confidence", None)
        want["details"].pop("retry_confidence", None)
        assert {k: v for k, v in got.items() if k not in _OWN} == {
            k: v for k, v in want.items() if k not in _OWN
        }
    same = [f.name for f in dataclasses.fields(Task) if f.name not in _TASK_OWN]
    assert [getattr(captured.task, n) for n in same] == [getattr(by_hand.task, n) for n in same]


@pytest.fixture
def quiet_tracker(tmp_path: Path) -> Iterator[dexcost.CostTracker]:
    """The default set-up (retry heuristic off): events are built by the store's writer."""
    config = DexcostConfig(redact_fields=["response_id"], hash_customer_id=True)
    t = dexcost.CostTracker(
        config, auto_instrument=["openai"], buffer_path=str(tmp_path / "quiet.db")
    )
    yield t
    t.close()


def test_events_built_by_the_writer_equal_record_llm_call_events(
    quiet_tracker: dexcost.CostTracker, fake_api: Any
) -> None:
    tracker = quiet_tracker
    dexcost.set_context(customer_id="acme", project_id="support")
    client = openai.OpenAI(api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0)
    fake_api.reply_json({"error": {"message": "slow down"}}, status=429)
    fake_api.reply_json(_completion())
    with tracker.task("ticket") as captured:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        # The task's totals are current as soon as the call returns, before any write.
        assert captured.task.event_count == 2
        assert captured.task.total_input_tokens == 1117
        assert captured.task.total_cost_usd > 0
    client.close()
    failed, answered = _events(tracker, captured)

    by_hand, expected = _by_hand(tracker, failed, answered)

    assert "response_id" not in answered["details"]  # redacted by the writer too
    assert answered["customer_id"] != "acme"  # hashed
    assert failed["event_id"] < answered["event_id"]
    for got, want in zip((failed, answered), expected, strict=True):
        assert {k: v for k, v in got.items() if k not in _OWN} == {
            k: v for k, v in want.items() if k not in _OWN
        }
        # The id and the time come from one clock reading, taken when the call returned.
        at = datetime.fromisoformat(got["occurred_at"].replace("Z", "+00:00"))
        assert uuid.UUID(got["event_id"]).int >> 80 == int(at.timestamp() * 1000)
    same = [f.name for f in dataclasses.fields(Task) if f.name not in _TASK_OWN]
    assert [getattr(captured.task, n) for n in same] == [getattr(by_hand.task, n) for n in same]


def test_event_ids_keep_the_order_of_recording_across_both_paths(
    quiet_tracker: dexcost.CostTracker, fake_api: Any
) -> None:
    """Instrumented calls (built by the writer) and record_cost events (built at once)
    sort by id in the order they were recorded."""
    client = openai.OpenAI(api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0)
    with quiet_tracker.task("ticket") as t:
        for i in range(3):
            fake_api.reply_json(_completion())
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            t.record_cost("search", "0.001", details={"n": i})
    client.close()
    kinds = [(e["event_type"], e["details"].get("n")) for e in _events(quiet_tracker, t)]
    assert kinds == [pair for i in range(3) for pair in (("llm_call", None), ("external_cost", i))]


def test_dev_mode_prints_each_instrumented_call(
    tmp_path: Path, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = dexcost.CostTracker(
        DexcostConfig(environment="development"),
        auto_instrument=["openai"],
        buffer_path=str(tmp_path / "dev.db"),
    )
    try:
        client = openai.OpenAI(api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0)
        fake_api.reply_json(_completion())
        with tracker.task("ticket") as t:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.close()
        (event,) = _events(tracker, t)
    finally:
        tracker.close()
    assert f"openai/{MODEL} in=1117 out=346 cached=1024" in capsys.readouterr().err
    assert event["input_tokens"] == 1117
