"""Bedrock through real boto3 / botocore, talking to a local endpoint on 127.0.0.1.

The stream operations answer with real AWS event-stream bodies (binary framing and
CRCs), so botocore's own parser runs.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import dexcost
from dexcost.instrument import uninstrument_bedrock

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CONVERSE_MESSAGES = [{"role": "user", "content": [{"text": "Summarise the complaint."}]}]
EVENTSTREAM = "application/vnd.amazon.eventstream"
THROTTLED = {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/"}
CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Late delivery."}]}},
    "stopReason": "end_turn",
    "usage": {
        "inputTokens": 30,
        "outputTokens": 12,
        "totalTokens": 242,
        "cacheReadInputTokens": 150,
        "cacheWriteInputTokens": 50,
    },
    "metrics": {"latencyMs": 321},
}
ANTHROPIC_BODY = {
    "id": "msg_bdrk_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Done"}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 900,
        "output_tokens": 4,
    },
}
TOKEN_HEADERS = {"x-amzn-bedrock-input-token-count": "10", "x-amzn-bedrock-output-token-count": "4"}


def make_client(url: str, service: str = "bedrock-runtime") -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def client(fake_api: Any) -> Any:
    c = make_client(fake_api.url)
    yield c
    c.close()


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("bedrock")
    return tracker


def test_converse_normalises_cache_tokens_into_input(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Late delivery."}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": 30,
                "outputTokens": 12,
                "totalTokens": 242,
                "cacheReadInputTokens": 150,
                "cacheWriteInputTokens": 50,
            },
            "metrics": {"latencyMs": 321},
        },
        headers={"x-amzn-requestid": "req-converse-1"},
    )
    with instrumented.task("summarise") as task:
        result = client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert result["output"]["message"]["content"][0]["text"] == "Late delivery."
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("bedrock", MODEL)
    assert event["input_tokens"] == 30 + 150 + 50
    assert (event["cached_tokens"], event["cache_creation_tokens"]) == (150, 50)
    assert event["output_tokens"] == 12
    assert event["details"]["request_id"] == "req-converse-1"


def converse_stream_body(aws: Any, words: list[str], *, metadata: bool = True) -> bytes:
    body = aws.event("messageStart", {"role": "assistant"})
    for word in words:
        body += aws.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word}})
    body += aws.event("contentBlockStop", {"contentBlockIndex": 0})
    body += aws.event("messageStop", {"stopReason": "end_turn"})
    if metadata:
        body += aws.event(
            "metadata",
            {
                "usage": {"inputTokens": 25, "outputTokens": len(words), "totalTokens": 27},
                "metrics": {"latencyMs": 100},
            },
        )
    return body


def test_converse_stream_yields_every_event_and_records_metadata_usage(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, aws: Any
) -> None:
    fake_api.reply_bytes(converse_stream_body(aws, ["Late ", "delivery."]), EVENTSTREAM)
    result = client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES)
    kinds = [next(iter(event)) for event in result["stream"]]
    assert kinds == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (25, 2)
    assert event["details"]["stream"] is True


def test_converse_stream_closed_early_estimates(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, aws: Any
) -> None:
    fake_api.reply_bytes(converse_stream_body(aws, ["a ", "b ", "c"]), EVENTSTREAM)
    stream = client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES)["stream"]
    for _ in zip(range(2), stream, strict=False):
        pass
    stream.close()
    event = one_event()
    assert event["cost_confidence"] == "estimated"
    assert event["details"]["stream_completed"] is False


def test_invoke_model_reads_usage_from_the_body_the_caller_reads(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any, events: Any
) -> None:
    body = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Done"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 900,
            "output_tokens": 4,
        },
    }
    fake_api.reply_json(
        body,
        headers={
            "x-amzn-bedrock-input-token-count": "10",
            "x-amzn-bedrock-output-token-count": "4",
        },
    )
    request = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": []}
    response = client.invoke_model(modelId=MODEL, body=json.dumps(request))
    assert events() == []  # recorded when the body is read (or closed / collected)
    data = json.loads(response["body"].read())
    assert data["content"][0]["text"] == "Done"
    event = one_event()
    assert (event["input_tokens"], event["cached_tokens"], event["output_tokens"]) == (910, 900, 4)


def test_invoke_model_body_never_read_falls_back_to_headers(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"outputs": [{"text": "x"}]},
        headers={
            "x-amzn-bedrock-input-token-count": "33",
            "x-amzn-bedrock-output-token-count": "7",
        },
    )
    response = client.invoke_model(modelId="mistral.mistral-large-2402-v1:0", body=b"{}")
    response["body"].close()
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (33, 7)
    assert event["cost_confidence"] != "estimated"


def test_invoke_model_with_response_stream_uses_invocation_metrics(
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
    response = client.invoke_model_with_response_stream(modelId=MODEL, body=b"{}")
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert [c["type"] for c in chunks] == ["message_start", "message_stop"]
    event = one_event()
    assert (event["input_tokens"], event["cached_tokens"], event["output_tokens"]) == (111, 100, 22)


def test_throttling_is_recorded_and_the_client_error_propagates(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"message": "Too many requests, please wait before trying again."},
        status=429,
        headers={"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/"},
    )
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    event = one_event()
    assert (event["error_type"], event["model"]) == ("rate_limit", MODEL)


def test_other_aws_calls_pass_through_unrecorded(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    control = make_client(fake_api.url, "bedrock")
    fake_api.reply_json({"modelSummaries": []})
    assert control.list_foundation_models()["modelSummaries"] == []
    control.close()
    assert events() == []


def test_uninstrument_restores_make_api_call(
    tracker: dexcost.CostTracker, client: Any, fake_api: Any, events: Any
) -> None:
    original = vars(botocore.client.BaseClient)["_make_api_call"]
    tracker.instrument("bedrock")
    assert vars(botocore.client.BaseClient)["_make_api_call"] is not original
    uninstrument_bedrock()
    assert vars(botocore.client.BaseClient)["_make_api_call"] is original
    fake_api.reply_json(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            "metrics": {"latencyMs": 1},
        }
    )
    client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert events() == []
