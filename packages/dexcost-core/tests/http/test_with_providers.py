"""HTTP capture next to the provider instrumentation: an SDK's call is billed once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import dexcost
from dexcost.adapters.http import register_domain_rate

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 4},
}


def test_sdk_call_recorded_by_the_provider_layer_only(server: Any, tracker: Any, read: Any) -> None:
    anthropic = pytest.importorskip("anthropic")
    server.route("/v1/messages", MESSAGE)
    register_domain_rate("api.anthropic.com", "1")  # would bill the host at the HTTP layer
    tracker.instrument("anthropic")
    try:
        client = anthropic.Anthropic(
            api_key="sk-test", base_url=server.url("api.anthropic.com", "")
        )
        with client, dexcost.task("chat"):
            client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
            )
    finally:
        tracker.uninstrument("anthropic")
    rows = read("SELECT event_type, input_tokens FROM events")
    assert [(r["event_type"], r["input_tokens"]) for r in rows] == [("llm_call", 12)]
    assert len(server.hits) == 1


def test_cohere_embed_batches_sent_from_a_thread_pool_are_billed_once(
    server: Any, tracker: Any, read: Any
) -> None:
    # cohere.Client.embed sends 96 texts per request from its own thread pool, where the
    # caller's context (and so the SDK layer's ownership) is not visible; HTTP capture
    # would otherwise bill each batch as the catalogued cohere_embed service as well.
    cohere = pytest.importorskip("cohere")
    body = {
        "id": "emb-1",
        "response_type": "embeddings_floats",
        "embeddings": [[0.1]] * 50,
        "texts": ["t"] * 50,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": 30}},
    }
    server.route("/v1/embed", body)
    server.route("/v2/embed", {**body, "response_type": "embeddings_by_type", "embeddings": {}})
    tracker.instrument("cohere")
    try:
        base_url = server.url("api.cohere.com", "")
        with httpx.Client() as http, dexcost.task("index"):
            v2 = cohere.ClientV2(api_key="k", base_url=base_url, httpx_client=http)
            v1 = cohere.Client(api_key="k", base_url=base_url, httpx_client=http)
            v2.embed(texts=["t"] * 100, model="embed-english-v3.0", input_type="search_query")
            v1.embed(texts=["t"] * 100, model="embed-english-v3.0")
    finally:
        tracker.uninstrument("cohere")
    rows = read("SELECT event_type, input_tokens FROM events WHERE event_type != 'task_end'")
    assert [(r["event_type"], r["input_tokens"]) for r in rows] == [
        ("llm_call", 30),
        ("llm_call", 60),
    ]
    assert len(server.hits) == 3


BEDROCK_HOST = "bedrock-runtime.us-east-1.amazonaws.com"
BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11},
    "metrics": {"latencyMs": 5},
}


def _bedrock_args(server: Any) -> dict[str, Any]:
    botocore_config = pytest.importorskip("botocore.config")
    return {
        "region_name": "us-east-1",
        "endpoint_url": server.url(BEDROCK_HOST, ""),
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret",
        "config": botocore_config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    }


async def test_async_bedrock_call_recorded_by_the_provider_layer_only(
    server: Any, tracker: Any, read: Any
) -> None:
    # aiobotocore sends through aiohttp, which HTTP capture patches; a user's rate for the
    # exact Bedrock host would bill each request there if the provider layer did not own it.
    session = pytest.importorskip("aiobotocore.session")
    server.route("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", CONVERSE)
    register_domain_rate(BEDROCK_HOST, "1")
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    args = _bedrock_args(server)
    async with session.get_session().create_client("bedrock-runtime", **args) as client:
        await client.converse(modelId=BEDROCK_MODEL, messages=messages)  # not instrumented
        tracker.instrument("bedrock")
        try:
            async with dexcost.task("chat"):
                await client.converse(modelId=BEDROCK_MODEL, messages=messages)
        finally:
            tracker.uninstrument("bedrock")
    rows = read("SELECT event_type, input_tokens FROM events WHERE event_type != 'task_end'")
    assert [(r["event_type"], r["input_tokens"]) for r in rows] == [
        ("external_cost", None),  # the uninstrumented call: HTTP capture's, at the rate
        ("llm_call", 9),
    ]
    assert len(server.hits) == 2


def test_sync_bedrock_call_recorded_by_the_provider_layer_only(
    server: Any, tracker: Any, read: Any
) -> None:
    boto3 = pytest.importorskip("boto3")
    server.route("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", CONVERSE)
    register_domain_rate(BEDROCK_HOST, "1")
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    client = boto3.client("bedrock-runtime", **_bedrock_args(server))
    client.converse(modelId=BEDROCK_MODEL, messages=messages)  # not instrumented
    tracker.instrument("bedrock")
    try:
        with dexcost.task("chat"):
            client.converse(modelId=BEDROCK_MODEL, messages=messages)
    finally:
        tracker.uninstrument("bedrock")
        client.close()
    rows = read("SELECT event_type, input_tokens FROM events WHERE event_type != 'task_end'")
    assert [(r["event_type"], r["input_tokens"]) for r in rows] == [
        ("external_cost", None),
        ("llm_call", 9),
    ]
    assert len(server.hits) == 2
