"""LiteLLM through the real ``litellm`` package, over the openai SDK, to a fake API.

litellm calls the openai SDK underneath and reports to its callbacks on background
threads, so these tests also pin that each call is recorded exactly once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import litellm
import openai
import pytest
from litellm.litellm_core_utils import logging_worker, thread_pool_executor

import dexcost
from dexcost.instrument import instrument_litellm, uninstrument_litellm

# litellm 1.10x itself trips this pydantic warning (also without dexcost); the ReadOnly
# one is ignored for the whole suite (pyproject.toml).
pytestmark = pytest.mark.filterwarnings("ignore:Accessing the 'model_(computed_)?fields' attribute")

from_import_completion = litellm.completion  # bound before dexcost patches the module
MESSAGES = [{"role": "user", "content": "Route this ticket."}]
RESPONSE = {
    "id": "chatcmpl-litellm-1",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "billing"},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 200,
        "completion_tokens": 10,
        "total_tokens": 210,
        "prompt_tokens_details": {"cached_tokens": 100},
    },
}


def chunks(words: list[str], usage: bool) -> list[dict[str, Any]]:
    base = {
        "id": "chatcmpl-ls",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
    }
    out = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": w}}]}
        for w in words
    ]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        out.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 30,
                    "completion_tokens": len(words),
                    "total_tokens": 30 + len(words),
                },
            }
        )
    return out


@pytest.fixture(autouse=True)
def _close_the_loop_litellm_opens(request: pytest.FixtureRequest) -> Iterator[None]:
    """litellm's sync calls create an asyncio loop in the calling thread (through
    ``asyncio.get_event_loop()``) and never close it; close it so its sockets do not
    warn when collected during a later test."""
    yield
    if inspect.iscoroutinefunction(request.function):
        return  # pytest-asyncio owns that loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:  # none was created
            return
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


def wait_for_litellm_threads(timeout: float = 5.0) -> None:
    """Let litellm's background logging threads finish what they were given."""
    executor = thread_pool_executor.executor
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if executor._pending_slots._value == executor._max_pending_tasks:
            return
        time.sleep(0.01)
    raise AssertionError("litellm's logging threads did not finish")


async def flush_litellm_async() -> None:
    await logging_worker.GLOBAL_LOGGING_WORKER.flush()
    wait_for_litellm_threads()


@pytest.fixture
def call(fake_api: Any) -> Any:
    """``litellm.completion`` against the fake API (read at call time: it may be patched)."""

    def completion(fn: Any = None, **kwargs: Any) -> Any:
        fn = fn or litellm.completion
        return fn(
            model="gpt-4o",
            messages=MESSAGES,
            api_base=fake_api.url + "/v1",
            api_key="sk-test",
            max_retries=0,
            **kwargs,
        )

    return completion


@pytest.fixture
def both(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    """litellm and the openai SDK it calls, both instrumented."""
    tracker.instrument("litellm")
    tracker.instrument("openai")
    return tracker


def test_completion_is_recorded_once_with_litellms_cost(
    both: dexcost.CostTracker, call: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(RESPONSE)
    with both.task("route") as task:
        response = call()
    wait_for_litellm_threads()
    assert response.choices[0].message.content == "billing"
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("openai", "gpt-4o-2024-08-06")
    assert (event["input_tokens"], event["output_tokens"], event["cached_tokens"]) == (200, 10, 100)
    assert event["pricing_source"] == "litellm"
    expected = Decimal(repr(response._hidden_params["response_cost"]))
    assert Decimal(event["cost_usd"]) == expected > 0
    assert event["details"]["via"] == "litellm"


def test_completion_imported_before_instrumenting_goes_through_the_callback_once(
    both: dexcost.CostTracker, call: Any, fake_api: Any, one_event: Any
) -> None:
    assert from_import_completion is not litellm.completion  # the patch is bypassed
    fake_api.reply_json(RESPONSE)
    with both.task("route") as task:
        call(from_import_completion)
        wait_for_litellm_threads()  # the callback runs on a litellm thread
    event = one_event()  # not also by the openai SDK patch underneath
    assert event["task_id"] == str(task.task_id)
    assert (event["input_tokens"], event["output_tokens"]) == (200, 10)
    assert event["pricing_source"] == "litellm"


async def test_acompletion_once(both: dexcost.CostTracker, fake_api: Any, one_event: Any) -> None:
    fake_api.reply_json(RESPONSE)
    async with both.task("async") as task:
        await litellm.acompletion(
            model="gpt-4o",
            messages=MESSAGES,
            api_base=fake_api.url + "/v1",
            api_key="sk-test",
            max_retries=0,
        )
    await flush_litellm_async()
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert event["output_tokens"] == 10


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_is_recorded_once_when_consumed(
    both: dexcost.CostTracker, call: Any, fake_api: Any, one_event: Any, include_usage: bool
) -> None:
    fake_api.reply_sse(chunks(["bill", "ing"], usage=include_usage), done=True)
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    with both.task("stream"):
        text = "".join(
            c.choices[0].delta.content or "" for c in call(stream=True, **options) if c.choices
        )
    wait_for_litellm_threads()
    assert text == "billing"
    event = one_event()
    assert event["details"]["stream"] is True
    if include_usage:
        assert (event["input_tokens"], event["output_tokens"]) == (30, 2)
        assert event["cost_confidence"] == "computed"
    else:  # no usage sent (and litellm's own end-of-stream count is empty): estimated
        assert event["output_tokens"] > 0
        assert event["cost_confidence"] == "estimated"


async def test_async_stream_once(both: dexcost.CostTracker, fake_api: Any, one_event: Any) -> None:
    fake_api.reply_sse(chunks(["a", "b"], usage=True), done=True)
    stream = await litellm.acompletion(
        model="gpt-4o",
        messages=MESSAGES,
        api_base=fake_api.url + "/v1",
        api_key="sk-test",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert len([c async for c in stream]) >= 2
    await flush_litellm_async()
    assert one_event()["output_tokens"] == 2


def test_stream_abandoned_early_is_estimated_once(
    both: dexcost.CostTracker, call: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(chunks(["one ", "two ", "three ", "four"], usage=True), done=True)
    stream = call(stream=True, stream_options={"include_usage": True})
    next(iter(stream))
    stream.completion_stream.close()
    del stream
    wait_for_litellm_threads()
    event = one_event()
    assert event["cost_confidence"] == "estimated"
    assert event["details"]["stream_completed"] is False


def test_rate_limit_is_recorded_once_and_propagates(
    both: dexcost.CostTracker, call: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"error": {"message": "Rate limit reached", "type": "requests"}}, status=429
    )
    with pytest.raises(litellm.RateLimitError):
        call()
    wait_for_litellm_threads()
    event = one_event()
    assert (event["error_type"], event["provider"]) == ("rate_limit", "openai")


def test_embedding(both: dexcost.CostTracker, fake_api: Any, one_event: Any) -> None:
    fake_api.reply_json(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 6, "total_tokens": 6},
        }
    )
    litellm.embedding(
        model="text-embedding-3-small",
        input=["refund policy"],
        api_base=fake_api.url + "/v1",
        api_key="sk-test",
    )
    wait_for_litellm_threads()
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (6, 0)
    assert event["details"]["operation"] == "embeddings"


def test_openai_sdk_alone_still_records_when_litellm_is_instrumented(
    both: dexcost.CostTracker, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(RESPONSE)
    with openai.OpenAI(api_key="k", base_url=fake_api.url + "/v1", max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert one_event()["provider"] == "openai"


def test_uninstrument_restores_functions_and_removes_the_callback(
    tracker: dexcost.CostTracker, call: Any, fake_api: Any, events: Any
) -> None:
    original = litellm.completion
    callbacks = list(litellm.callbacks)
    instrument_litellm(tracker)
    assert litellm.completion is not original
    assert len(litellm.callbacks) == len(callbacks) + 1
    uninstrument_litellm()
    assert litellm.completion is original
    assert litellm.callbacks == callbacks
    fake_api.reply_json(RESPONSE)
    call()
    wait_for_litellm_threads()
    assert events() == []


def test_failure_of_a_call_imported_before_instrumenting_is_recorded_once(
    both: dexcost.CostTracker, call: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"error": {"message": "Rate limit reached", "type": "requests"}}, status=429
    )
    with pytest.raises(litellm.RateLimitError):
        call(from_import_completion)
    wait_for_litellm_threads()
    event = one_event()
    assert event["error_type"] == "rate_limit"
    assert event["details"]["via"] == "litellm"
