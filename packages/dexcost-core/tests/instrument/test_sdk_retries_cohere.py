"""Retries made inside the cohere SDK: one event per attempt, linked.

The real SDK talks to the fake API on 127.0.0.1, which answers 429 / 503 and then the
result. The SDK waits ``retry-after-ms`` between attempts, so 1 ms keeps the retries
fast without touching the SDK.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import cohere
import cohere.core.http_client
import httpx
import pytest

import dexcost
from dexcost import billing_scope
from dexcost.instrument import get_instrumentor

from .test_cohere import (
    MESSAGES,
    MODEL,
    V1_RESPONSE,
    embed_v1_response,
    embed_v2_response,
    v2_response,
    v2_stream,
)
from .test_sdk_retries import assert_chain

FAST = {"retry-after-ms": "1"}
EMBED_MODEL = "embed-v4.0"
HTTP_CLIENT = cohere.core.http_client


def throttled(api: Any, status: int = 429, times: int = 1) -> None:
    for _ in range(times):
        api.reply_json({"message": "slow down"}, status=status, headers=FAST)


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("cohere")
    return tracker


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


@pytest.fixture
def client(fake_api: Any, http: httpx.Client) -> cohere.ClientV2:
    return cohere.ClientV2(api_key="test", base_url=fake_api.url, httpx_client=http)


def test_rate_limited_then_answered_records_both_attempts(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    with instrumented.task("classify") as task:
        result = client.chat(model=MODEL, messages=MESSAGES)
    assert result.message.content[0].text == "billing"
    assert len(fake_api.requests) == 2
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert (failed["provider"], failed["model"]) == ("cohere", MODEL)
    assert (failed["input_tokens"], Decimal(failed["cost_usd"])) == (0, 0)
    assert failed["cost_confidence"] == "exact"
    assert failed["details"] == {"operation": "chat", "status_code": 429, "attempt": 1}
    assert failed["latency_ms"] is not None
    assert answered["input_tokens"] == 5
    assert task.task.retry_count == 1
    assert task.task.retry_cost_usd == Decimal(answered["cost_usd"]) > 0
    assert task.task.event_count == 2


def test_every_attempt_failing_is_one_event_each_and_the_error_propagates(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api, status=503, times=3)
    with (
        instrumented.task("classify") as task,
        pytest.raises(cohere.errors.ServiceUnavailableError) as caught,
    ):
        client.chat(model=MODEL, messages=MESSAGES)  # max_retries: 2 by default
    assert caught.value.status_code == 503
    assert caught.value.body == {"message": "slow down"}
    recorded = events()
    assert_chain(recorded, ["5xx", "5xx", "5xx"])
    assert recorded[-1]["details"]["error"] == "ServiceUnavailableError"  # the one raised
    assert [e["details"].get("status_code") for e in recorded] == [503, 503, None]
    assert {e["cost_confidence"] for e in recorded} == {"exact"}
    assert (task.task.retry_count, task.task.retry_cost_usd) == (2, Decimal(0))


def test_the_sdks_wait_is_kept(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json({"message": "slow down"}, status=429, headers={"retry-after-ms": "200"})
    fake_api.reply_json(v2_response())
    started = time.perf_counter()
    client.chat(model=MODEL, messages=MESSAGES)
    assert time.perf_counter() - started >= 0.2
    failed, answered = events()
    assert failed["latency_ms"] < 200 <= answered["latency_ms"]  # the wait is the call's


def test_request_options_max_retries_is_honoured(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api, times=2)
    with pytest.raises(cohere.errors.TooManyRequestsError):
        client.chat(model=MODEL, messages=MESSAGES, request_options={"max_retries": 1})
    assert len(fake_api.requests) == 2
    assert_chain(events(), ["rate_limit", "rate_limit"])


def test_the_next_call_is_not_taken_for_a_retry(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    fake_api.reply_json(v2_response())
    with instrumented.task("classify") as task:
        client.chat(model=MODEL, messages=MESSAGES)
        client.chat(model=MODEL, messages=MESSAGES)
    last = events()[-1]
    assert (last["is_retry"], "attempt" in last["details"]) == (0, False)
    assert task.task.retry_count == 1


def test_refused_connections_until_the_sdk_gives_up(
    instrumented: dexcost.CostTracker, unused_port: int, http: httpx.Client, events: Any
) -> None:
    # No answer: the SDK waits its own backoff (about a second).
    client = cohere.ClientV2(
        api_key="test", base_url=f"http://127.0.0.1:{unused_port}", httpx_client=http
    )
    with pytest.raises(httpx.ConnectError):
        client.chat(model=MODEL, messages=MESSAGES, request_options={"max_retries": 1})
    recorded = events()
    assert_chain(recorded, ["connection_error", "connection_error"])
    assert recorded[0]["details"]["error"] == "ConnectError"
    assert recorded[0]["model"] == MODEL
    assert "status_code" not in recorded[0]["details"]
    assert {e["cost_confidence"] for e in recorded} == {"unknown"}


async def test_async_chat_after_a_rate_limit(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    http = httpx.AsyncClient()
    client = cohere.AsyncClientV2(api_key="test", base_url=fake_api.url, httpx_client=http)
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    async with http, instrumented.task("async") as task:
        await client.chat(model=MODEL, messages=MESSAGES)
    assert_chain(events(), ["rate_limit", None])
    assert task.task.retry_count == 1


async def test_async_embed_failing_every_attempt(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    http = httpx.AsyncClient()
    client = cohere.AsyncClientV2(api_key="test", base_url=fake_api.url, httpx_client=http)
    throttled(fake_api, status=500, times=2)
    async with http:
        with pytest.raises(cohere.errors.InternalServerError):
            await client.embed(
                model=EMBED_MODEL,
                input_type="search_query",
                texts=["a"],
                request_options={"max_retries": 1},
            )
    recorded = events()
    assert_chain(recorded, ["5xx", "5xx"])
    assert {e["details"]["operation"] for e in recorded} == {"embed"}
    assert {e["model"] for e in recorded} == {EMBED_MODEL}


def test_embed_after_a_server_error(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api, status=503)
    fake_api.reply_json(embed_v2_response({"input_tokens": 7}))
    with instrumented.task("index") as task:
        client.embed(model=EMBED_MODEL, input_type="search_query", texts=["a", "b"])
    failed, answered = recorded = events()
    assert_chain(recorded, ["5xx", None])
    assert failed["details"]["operation"] == "embed"
    assert answered["input_tokens"] == 7
    assert task.task.retry_count == 1


def test_v1_chat_after_a_rate_limit(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any, http: httpx.Client
) -> None:
    client = cohere.Client(api_key="test", base_url=fake_api.url, httpx_client=http)
    throttled(fake_api)
    fake_api.reply_json(V1_RESPONSE)
    assert client.chat(message="Classify this ticket.", model=MODEL).text == "billing"
    failed, _ = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert failed["details"]["operation"] == "chat_v1"


def test_a_stream_is_not_retried_by_the_sdk(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    # HttpClient.stream sends once: the 429 reaches the caller on the first read.
    throttled(fake_api)
    fake_api.reply_sse(v2_stream(["bill", "ing"]), done=True)
    with pytest.raises(cohere.errors.TooManyRequestsError):
        list(client.chat_stream(model=MODEL, messages=MESSAGES))
    assert len(list(client.chat_stream(model=MODEL, messages=MESSAGES))) > 0
    failed, answered = events()
    assert (failed["error_type"], failed["is_retry"]) == ("rate_limit", 0)
    assert (answered["is_retry"], "attempt" in answered["details"]) == (0, False)


def test_a_stream_after_a_retried_call_is_not_linked_to_it(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    fake_api.reply_sse(v2_stream(["x"]), done=True)
    with instrumented.task("classify") as task:
        client.chat(model=MODEL, messages=MESSAGES)
        list(client.chat_stream(model=MODEL, messages=MESSAGES))
    streamed = events()[-1]
    assert (streamed["is_retry"], streamed["details"]["stream"]) == (0, True)
    assert task.task.retry_count == 1


def test_v1_batched_embed_keeps_its_retries_in_the_one_event(
    instrumented: dexcost.CostTracker, fake_api: Any, one_event: Any, http: httpx.Client
) -> None:
    # Client.embed sends its batches from a thread pool: one merged event, as before.
    client = cohere.Client(api_key="test", base_url=fake_api.url, httpx_client=http)
    throttled(fake_api)
    fake_api.reply_json(embed_v1_response(3, 12))
    with instrumented.task("index") as task:
        client.embed(texts=["a", "b", "c"], model="embed-english-v3.0")
    assert len(fake_api.requests) == 2
    event = one_event()
    assert (event["input_tokens"], event["is_retry"]) == (12, 0)
    assert task.task.retry_count == 0


async def test_v1_async_batched_embed_keeps_its_retries_in_the_one_event(
    instrumented: dexcost.CostTracker, fake_api: Any, one_event: Any
) -> None:
    http = httpx.AsyncClient()
    client = cohere.AsyncClient(api_key="test", base_url=fake_api.url, httpx_client=http)
    throttled(fake_api)
    fake_api.reply_json(embed_v1_response(2, 9))
    async with http:
        await client.embed(texts=["a", "b"], model="embed-english-v3.0")
    assert len(fake_api.requests) == 2
    assert one_event()["input_tokens"] == 9


def test_v1_embed_sent_directly_is_split(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any, http: httpx.Client
) -> None:
    client = cohere.Client(api_key="test", base_url=fake_api.url, httpx_client=http)
    throttled(fake_api)
    fake_api.reply_json(embed_v1_response(1, 4))
    cohere.base_client.BaseCohere.embed(client, texts=["a"], model="embed-english-v3.0")
    recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert recorded[0]["details"]["operation"] == "embed_v1"


def test_calls_outside_any_task_are_linked_too(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    client.chat(model=MODEL, messages=MESSAGES)
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert failed["task_id"] == answered["task_id"]


def test_a_call_another_layer_owns_records_no_attempts(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    with billing_scope("outer") as owns:
        client.chat(model=MODEL, messages=MESSAGES)
    assert owns
    assert events() == []
    assert len(fake_api.requests) == 2


def test_uninstrument_removes_the_retry_hooks(
    tracker: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    names = ("_retry_timeout", "_retry_timeout_from_retries")
    originals = [vars(HTTP_CLIENT)[name] for name in names]
    tracker.instrument("cohere")
    patched = get_instrumentor("cohere").patched
    assert {f"cohere.core.http_client:{name}" for name in names} <= set(patched)
    tracker.uninstrument("cohere")
    assert [vars(HTTP_CLIENT)[name] for name in names] == originals
    throttled(fake_api)
    fake_api.reply_json(v2_response())
    client.chat(model=MODEL, messages=MESSAGES)
    assert events() == []
    assert len(fake_api.requests) == 2
