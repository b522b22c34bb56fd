"""Retries made inside aiobotocore: one event per Bedrock attempt, linked.

The same chain as botocore's (test_bedrock_retries.py), through aiobotocore's own async
``AioEndpoint._needs_retry``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

pytest.importorskip("aiobotocore", reason="aiobotocore is not installed (nox -s tests has it)")

import aiobotocore.endpoint
from botocore.exceptions import ClientError, EndpointConnectionError

import dexcost
from dexcost.instrument import get_instrumentor

from .test_aiobedrock import aio_client
from .test_bedrock import CONVERSE, CONVERSE_MESSAGES, EVENTSTREAM, MODEL, converse_stream_body
from .test_bedrock_retries import throttle, unavailable
from .test_sdk_retries import assert_chain


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.001)


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("bedrock")
    return tracker


async def test_async_throttled_then_streamed(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any, aws: Any
) -> None:
    throttle(fake_api)
    fake_api.reply_bytes(converse_stream_body(aws, ["a ", "b"]), EVENTSTREAM)
    async with (
        aio_client(fake_api.url, attempts=3, mode="legacy") as client,
        instrumented.task("t") as task,
    ):
        result = await client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES)
        assert len([event async for event in result["stream"]]) == 6
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert (failed["details"]["status_code"], failed["cost_confidence"]) == (429, "exact")
    assert answered["input_tokens"] == 25
    assert task.task.retry_count == 1


async def test_async_every_attempt_failing(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    throttle(fake_api)
    unavailable(fake_api)
    async with (
        aio_client(fake_api.url, attempts=2, mode="legacy") as client,
        instrumented.task("t") as task,
    ):
        with pytest.raises(ClientError) as caught:
            await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert_chain(events(), ["rate_limit", "5xx"])
    assert task.task.retry_count == 1


async def test_async_connection_errors(
    instrumented: dexcost.CostTracker, unused_port: int, events: Any
) -> None:
    async with aio_client(f"http://127.0.0.1:{unused_port}", attempts=2, mode="legacy") as client:
        with pytest.raises(EndpointConnectionError):
            await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert_chain(events(), ["connection_error", "connection_error"])


async def test_uninstrument_removes_the_async_retry_hook(
    tracker: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    original = vars(aiobotocore.endpoint.AioEndpoint)["_needs_retry"]
    tracker.instrument("bedrock")
    patched = get_instrumentor("bedrock").patched
    assert "aiobotocore.endpoint:AioEndpoint._needs_retry" in patched
    assert vars(aiobotocore.endpoint.AioEndpoint)["_needs_retry"] is not original
    tracker.uninstrument("bedrock")
    assert vars(aiobotocore.endpoint.AioEndpoint)["_needs_retry"] is original
    throttle(fake_api)
    fake_api.reply_json(CONVERSE)
    async with aio_client(fake_api.url, attempts=2, mode="legacy") as client:
        await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert events() == []
    assert len(fake_api.requests) == 2
