"""Retries made inside google-genai: one event per attempt, linked.

The SDK retries only with ``HttpRetryOptions``; these tests turn them on through the
client's or the request's ``HttpOptions`` with millisecond waits. The real SDK talks to
the fake API on 127.0.0.1, which answers 429 / 503 and then the result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from google import genai
from google.genai import _api_client, errors, types

import dexcost
from dexcost import billing_scope
from dexcost.instrument import get_instrumentor

from .test_gemini import MODEL, response, stream_chunks
from .test_sdk_retries import assert_chain

EMBED_MODEL = "gemini-embedding-001"
AIOHTTP_WARNING = "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
RATE_LIMITED = (429, "RESOURCE_EXHAUSTED")
UNAVAILABLE = (503, "UNAVAILABLE")


def retries(attempts: int = 3) -> types.HttpRetryOptions:
    return types.HttpRetryOptions(attempts=attempts, initial_delay=0.001, max_delay=0.01, jitter=0)


def failing(api: Any, error: tuple[int, str] = RATE_LIMITED, times: int = 1) -> None:
    code, status = error
    for _ in range(times):
        api.reply_json({"error": {"code": code, "message": "try later", "status": status}}, code)


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("gemini")
    return tracker


@pytest.fixture
def client(fake_api: Any) -> Iterator[genai.Client]:
    options = types.HttpOptions(base_url=fake_api.url, retry_options=retries())
    c = genai.Client(api_key="test-key", http_options=options)
    yield c
    c.close()


def test_rate_limited_then_answered_records_both_attempts(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_json(response())
    with instrumented.task("answer") as task:
        result = client.models.generate_content(model=MODEL, contents="Where is my refund?")
    assert result.text == "Your refund is on its way."
    assert len(fake_api.requests) == 2
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert (failed["provider"], failed["model"]) == ("gemini", MODEL)
    assert (failed["input_tokens"], Decimal(failed["cost_usd"])) == (0, 0)
    assert failed["cost_confidence"] == "exact"
    assert failed["details"] == {
        "operation": "generate_content",
        "status_code": 429,
        "attempt": 1,
    }
    assert failed["latency_ms"] is not None
    assert failed["occurred_at"] < answered["occurred_at"]
    assert answered["input_tokens"] == 120
    assert task.task.retry_count == 1
    assert task.task.retry_cost_usd == Decimal(answered["cost_usd"]) > 0
    assert task.task.event_count == 2


def test_the_sdks_wait_is_kept(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    wait = types.HttpRetryOptions(attempts=2, initial_delay=0.2, jitter=0)
    options = types.HttpOptions(base_url=fake_api.url, retry_options=wait)
    client = genai.Client(api_key="test-key", http_options=options)
    failing(fake_api)
    fake_api.reply_json(response())
    started = time.perf_counter()
    client.models.generate_content(model=MODEL, contents="hi")
    assert time.perf_counter() - started >= 0.2
    client.close()
    failed, answered = events()
    assert failed["latency_ms"] < 200 <= answered["latency_ms"]  # the wait is the call's


def test_retry_options_of_one_request(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake_api.url))
    failing(fake_api, UNAVAILABLE)
    fake_api.reply_json(response())
    config = types.GenerateContentConfig(http_options=types.HttpOptions(retry_options=retries()))
    client.models.generate_content(model=MODEL, contents="hi", config=config)
    client.close()
    assert_chain(events(), ["5xx", None])


def test_every_attempt_failing_is_one_event_each_and_the_error_propagates(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api, UNAVAILABLE, times=3)
    with instrumented.task("answer") as task, pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")
    recorded = events()
    assert_chain(recorded, ["5xx", "5xx", "5xx"])
    assert recorded[-1]["details"]["error"] == "ServerError"  # the one raised
    assert [e["details"].get("status_code") for e in recorded] == [503, 503, None]
    assert {e["cost_confidence"] for e in recorded} == {"exact"}
    assert (task.task.retry_count, task.task.retry_cost_usd) == (2, Decimal(0))


def test_without_retry_options_the_sdk_sends_once(
    instrumented: dexcost.CostTracker, fake_api: Any, one_event: Any
) -> None:
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake_api.url))
    failing(fake_api)
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=MODEL, contents="hi")
    client.close()
    event = one_event()
    assert (event["error_type"], event["is_retry"]) == ("rate_limit", 0)
    assert "attempt" not in event["details"]


def test_the_next_call_is_not_taken_for_a_retry(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_json(response())
    fake_api.reply_json(response())
    with instrumented.task("answer") as task:
        client.models.generate_content(model=MODEL, contents="hi")
        client.models.generate_content(model=MODEL, contents="hi")
    last = events()[-1]
    assert (last["is_retry"], "attempt" in last["details"]) == (0, False)
    assert task.task.retry_count == 1


def test_stream_after_a_rate_limit_is_linked_when_read(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_sse(stream_chunks(["Your ", "refund ", "shipped."]))
    with instrumented.task("answer") as task:
        stream = client.models.generate_content_stream(model=MODEL, contents="Refund?")
        assert fake_api.requests == []  # sent on the first read
        text = "".join(chunk.text or "" for chunk in stream)
    assert text == "Your refund shipped."
    failed, streamed = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert failed["details"]["stream"] is True
    assert (streamed["output_tokens"], streamed["details"]["stream"]) == (3, True)
    assert task.task.retry_count == 1


def test_stream_failing_every_attempt(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    options = types.HttpOptions(base_url=fake_api.url, retry_options=retries(attempts=2))
    client = genai.Client(api_key="test-key", http_options=options)
    failing(fake_api, UNAVAILABLE, times=2)
    with instrumented.task("answer") as task, pytest.raises(errors.ServerError):
        next(iter(client.models.generate_content_stream(model=MODEL, contents="hi")))
    client.close()
    assert_chain(events(), ["5xx", "5xx"])
    assert task.task.retry_count == 1


def test_a_call_after_a_failed_stream_is_not_linked_to_it(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    options = types.HttpOptions(base_url=fake_api.url, retry_options=retries(attempts=2))
    client = genai.Client(api_key="test-key", http_options=options)
    failing(fake_api, UNAVAILABLE, times=2)
    fake_api.reply_json(response())
    with pytest.raises(errors.ServerError):
        list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    client.models.generate_content(model=MODEL, contents="hi")
    client.close()
    last = events()[-1]
    assert (last["is_retry"], "attempt" in last["details"]) == (0, False)


@pytest.mark.filterwarnings(AIOHTTP_WARNING)
async def test_async_call_and_stream_after_failures(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_json(response())
    failing(fake_api, UNAVAILABLE)
    fake_api.reply_sse(stream_chunks(["a", "b"]))
    async with instrumented.task("async") as task:
        await client.aio.models.generate_content(model=MODEL, contents="hi")
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
        assert len([chunk async for chunk in stream]) == 2
    await client.aio.aclose()
    recorded = events()
    assert_chain(recorded[:2], ["rate_limit", None])
    assert_chain(recorded[2:], ["5xx", None])
    assert recorded[-1]["details"]["stream"] is True
    assert task.task.retry_count == 2


def test_embed_content_after_a_rate_limit(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_json(
        {"embeddings": [{"values": [0.1]}], "usageMetadata": {"promptTokenCount": 9}}
    )
    client.models.embed_content(model=EMBED_MODEL, contents="refund policy")
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert (failed["model"], failed["details"]["operation"]) == (EMBED_MODEL, "embed_content")
    assert answered["input_tokens"] == 9


@pytest.mark.filterwarnings(AIOHTTP_WARNING)
async def test_async_embed_content_failing_every_attempt(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api, UNAVAILABLE, times=3)
    with pytest.raises(errors.ServerError):
        await client.aio.models.embed_content(model=EMBED_MODEL, contents="hi")
    await client.aio.aclose()
    assert_chain(events(), ["5xx", "5xx", "5xx"])


def test_refused_connections_until_the_sdk_gives_up(
    instrumented: dexcost.CostTracker, unused_port: int, events: Any
) -> None:
    url = f"http://127.0.0.1:{unused_port}"
    options = types.HttpOptions(base_url=url, retry_options=retries(attempts=2))
    client = genai.Client(api_key="test-key", http_options=options)
    with pytest.raises(httpx2.ConnectError):
        client.models.generate_content(model=MODEL, contents="hi")
    client.close()
    recorded = events()
    assert_chain(recorded, ["connection_error", "connection_error"])
    assert recorded[0]["details"]["error"] == "ConnectError"
    assert recorded[0]["model"] == MODEL
    assert {e["cost_confidence"] for e in recorded} == {"unknown"}


def test_each_request_of_automatic_function_calling_is_its_own_chain(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    def get_order_status(order_id: str) -> str:
        """Look up an order."""
        return "shipped"

    fake_api.reply_json(
        response(call={"name": "get_order_status", "args": {"order_id": "A1"}}, output=5)
    )
    failing(fake_api)
    fake_api.reply_json(response("It has shipped.", prompt=160, output=8, thoughts=0))
    with instrumented.task("answer") as task:
        result = client.models.generate_content(
            model=MODEL,
            contents="Status of order A1?",
            config=types.GenerateContentConfig(tools=[get_order_status]),
        )
    assert result.text == "It has shipped."
    first, *second = events()
    assert (first["is_retry"], "attempt" in first["details"]) == (0, False)
    assert_chain(second, ["rate_limit", None])
    assert task.task.retry_count == 1


def test_calls_outside_any_task_are_linked_too(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_json(response())
    client.models.generate_content(model=MODEL, contents="hi")
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert failed["task_id"] == answered["task_id"]


def test_a_call_another_layer_owns_records_no_attempts(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    failing(fake_api)
    fake_api.reply_json(response())
    with billing_scope("outer") as owns:
        client.models.generate_content(model=MODEL, contents="hi")
    assert owns
    assert events() == []
    assert len(fake_api.requests) == 2


def test_uninstrument_removes_the_retry_hooks(
    tracker: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    cls = _api_client.BaseApiClient
    names = ("_request", "_request_once", "_async_request", "_async_request_once")
    originals = [vars(cls)[name] for name in names]
    tracker.instrument("gemini")
    patched = get_instrumentor("gemini").patched
    assert {f"google.genai._api_client:BaseApiClient.{name}" for name in names} <= set(patched)
    tracker.uninstrument("gemini")
    assert [vars(cls)[name] for name in names] == originals
    failing(fake_api)
    fake_api.reply_json(response())
    client.models.generate_content(model=MODEL, contents="hi")
    assert events() == []
    assert len(fake_api.requests) == 2
