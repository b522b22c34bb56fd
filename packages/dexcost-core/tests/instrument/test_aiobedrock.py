"""Bedrock through real aiobotocore (async boto), talking to a local endpoint on 127.0.0.1.

aiobotocore sends with aiohttp; the stream operations answer with real AWS event-stream
bodies, parsed by aiobotocore's own async event stream.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("aiobotocore", reason="aiobotocore is not installed (nox -s tests has it)")

import aiobotocore.client
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

import dexcost
from dexcost.instrument import get_instrumentor, uninstrument_bedrock

from .test_bedrock import (
    ANTHROPIC_BODY,
    CONVERSE,
    CONVERSE_MESSAGES,
    EVENTSTREAM,
    MODEL,
    THROTTLED,
    TOKEN_HEADERS,
    converse_stream_body,
)


def aio_client(
    url: str, service: str = "bedrock-runtime", attempts: int = 1, mode: str = "standard"
) -> Any:
    """An aiobotocore client context manager (``async with``) for ``service`` at ``url``."""
    return get_session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": attempts, "mode": mode}),
    )


@pytest.fixture
async def client(fake_api: Any) -> AsyncIterator[Any]:
    async with aio_client(fake_api.url) as c:
        yield c


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("bedrock")
    return tracker


async def test_converse_normalises_cache_tokens_into_input(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(CONVERSE, headers={"x-amzn-requestid": "req-aio-1"})
    async with instrumented.task("summarise") as task:
        result = await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert result["output"]["message"]["content"][0]["text"] == "Late delivery."
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("bedrock", MODEL)
    assert (event["input_tokens"], event["output_tokens"]) == (30 + 150 + 50, 12)
    assert (event["cached_tokens"], event["cache_creation_tokens"]) == (150, 50)
    assert event["details"]["request_id"] == "req-aio-1"
    assert event["details"]["operation"] == "Converse"


async def test_converse_stream_yields_every_event_and_records_metadata_usage(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, aws: Any
) -> None:
    fake_api.reply_bytes(converse_stream_body(aws, ["Late ", "delivery."]), EVENTSTREAM)
    async with instrumented.task("summarise") as task:
        result = await client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES)
        assert isinstance(result["stream"], aiobotocore.eventstream.AioEventStream)
        kinds = [next(iter(event)) async for event in result["stream"]]
    assert kinds == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["input_tokens"], event["output_tokens"]) == (25, 2)
    assert event["details"]["stream"] is True
    assert "stream_completed" not in event["details"]


async def test_converse_stream_closed_early_estimates(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, aws: Any
) -> None:
    fake_api.reply_bytes(converse_stream_body(aws, ["a ", "b ", "c"]), EVENTSTREAM)
    stream = (await client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES))["stream"]
    seen = []
    async for event in stream:
        seen.append(event)
        if len(seen) == 2:
            break
    stream.close()
    event = one_event()
    assert event["cost_confidence"] == "estimated"
    assert event["details"]["stream_completed"] is False


async def test_a_stream_read_partly_and_dropped_records_what_it_saw(
    instrumented: dexcost.CostTracker,
    client: Any,
    fake_api: Any,
    one_event: Any,
    events: Any,
    aws: Any,
) -> None:
    fake_api.reply_bytes(converse_stream_body(aws, ["a ", "b ", "c"]), EVENTSTREAM)
    result = await client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES)
    async for first in result["stream"]:
        assert "messageStart" in first
        break
    del result
    gc.collect()
    for _ in range(10):  # the event loop closes the dropped reader soon after
        if events():
            break
        await asyncio.sleep(0)
    event = one_event()
    assert event["details"]["stream_completed"] is False


async def test_invoke_model_reads_usage_from_the_body_the_caller_reads(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, events: Any
) -> None:
    fake_api.reply_json(ANTHROPIC_BODY, headers=TOKEN_HEADERS)
    request = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": []}
    response = await client.invoke_model(modelId=MODEL, body=json.dumps(request))
    assert events() == []  # recorded when the body is read (or closed / collected)
    async with response["body"] as body:
        assert isinstance(body, aiobotocore.response.StreamingBody)
        data = json.loads(await body.read())
    assert data["content"][0]["text"] == "Done"
    event = one_event()
    assert (event["input_tokens"], event["cached_tokens"], event["output_tokens"]) == (910, 900, 4)


async def test_invoke_model_body_read_by_async_iteration(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(ANTHROPIC_BODY, headers=TOKEN_HEADERS)
    response = await client.invoke_model(modelId=MODEL, body=b"{}")
    data = b"".join([chunk async for chunk in response["body"]])
    assert json.loads(data)["content"][0]["text"] == "Done"
    event = one_event()
    assert (event["input_tokens"], event["cached_tokens"]) == (910, 900)


async def test_invoke_model_body_never_read_falls_back_to_headers(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"outputs": [{"text": "x"}]},
        headers={
            "x-amzn-bedrock-input-token-count": "33",
            "x-amzn-bedrock-output-token-count": "7",
        },
    )
    response = await client.invoke_model(modelId="mistral.mistral-large-2402-v1:0", body=b"{}")
    await response["body"].aclose()
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (33, 7)
    assert event["cost_confidence"] != "estimated"


async def test_invoke_model_with_response_stream_uses_invocation_metrics(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, aws: Any
) -> None:
    body = aws.chunk({"type": "message_start"}) + aws.chunk(
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 11,
                "outputTokenCount": 22,
                "cacheReadInputTokenCount": 100,
                "cacheWriteInputTokenCount": 0,
                "invocationLatency": 400,
                "firstByteLatency": 100,
            },
        }
    )
    fake_api.reply_bytes(body, EVENTSTREAM)
    response = await client.invoke_model_with_response_stream(modelId=MODEL, body=b"{}")
    chunks = [json.loads(e["chunk"]["bytes"]) async for e in response["body"]]
    assert [c["type"] for c in chunks] == ["message_start", "message_stop"]
    event = one_event()
    assert (event["input_tokens"], event["cached_tokens"], event["output_tokens"]) == (111, 100, 22)
    assert event["details"]["operation"] == "InvokeModelWithResponseStream"


async def _throttled_error(client: Any, fake_api: Any) -> ClientError:
    fake_api.reply_json({"message": "Too many requests"}, status=429, headers=THROTTLED)
    with pytest.raises(ClientError) as caught:
        await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    return caught.value


async def test_throttling_is_recorded_and_the_client_error_propagates_unchanged(
    tracker: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    plain = await _throttled_error(client, fake_api)
    tracker.instrument("bedrock")
    seen = await _throttled_error(client, fake_api)
    assert type(seen) is type(plain)
    assert (str(seen), seen.operation_name) == (str(plain), plain.operation_name)
    assert seen.response["Error"] == plain.response["Error"]
    assert seen.response["Error"]["Code"] == "ThrottlingException"
    event = one_event()
    assert (event["error_type"], event["model"]) == ("rate_limit", MODEL)
    assert event["cost_confidence"] == "exact"
    assert event["details"]["operation"] == "Converse"


async def test_call_outside_any_task_lands_in_the_agent_session(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    dexcost.set_context(agent="support-bot", customer_id="acme")
    fake_api.reply_json(CONVERSE)
    await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    event = one_event()
    assert (event["task_type"], event["customer_id"]) == ("support-bot", "acme")


async def test_other_aws_calls_pass_through_unrecorded(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json({"modelSummaries": []})
    async with aio_client(fake_api.url, "bedrock") as control:
        assert (await control.list_foundation_models())["modelSummaries"] == []
    assert events() == []


async def test_uninstrument_restores_make_api_call(
    tracker: dexcost.CostTracker, client: Any, fake_api: Any, events: Any
) -> None:
    original = vars(aiobotocore.client.AioBaseClient)["_make_api_call"]
    tracker.instrument("bedrock")
    assert vars(aiobotocore.client.AioBaseClient)["_make_api_call"] is not original
    assert "aiobotocore.client:AioBaseClient._make_api_call" in (
        get_instrumentor("bedrock").patched
    )
    uninstrument_bedrock()
    assert vars(aiobotocore.client.AioBaseClient)["_make_api_call"] is original
    fake_api.reply_json(CONVERSE)
    await client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert events() == []


def test_double_instrument_is_refused(tracker: dexcost.CostTracker) -> None:
    original = vars(aiobotocore.client.AioBaseClient)["_make_api_call"]
    tracker.instrument("bedrock")
    patched = vars(aiobotocore.client.AioBaseClient)["_make_api_call"]
    assert patched is not original
    with pytest.raises(RuntimeError, match="already instrumented"):
        tracker.instrument("bedrock")
    assert vars(aiobotocore.client.AioBaseClient)["_make_api_call"] is patched
