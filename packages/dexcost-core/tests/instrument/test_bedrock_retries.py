"""Retries made inside botocore and aiobotocore: one event per Bedrock attempt, linked.

Real clients talk to the local server, which answers each attempt from its queue.
botocore's legacy retry mode draws its backoff from ``random.random()``; fixing that
value keeps the waits to milliseconds without touching botocore. The standard and
adaptive modes draw from a generator bound at import and wait their real backoff (under
a second for one retry).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

import dexcost
from dexcost import billing_scope
from dexcost.instrument import get_instrumentor

from .test_bedrock import (
    CONVERSE,
    CONVERSE_MESSAGES,
    EVENTSTREAM,
    MODEL,
    THROTTLED,
    converse_stream_body,
)
from .test_sdk_retries import assert_chain

UNAVAILABLE = {"x-amzn-errortype": "ServiceUnavailableException:http://internal.amazon.com/"}


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.001)


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("bedrock")
    return tracker


def sync_client(url: str, attempts: int, mode: str = "legacy") -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": attempts, "mode": mode}),
    )


@pytest.fixture
def client(fake_api: Any) -> Iterator[Any]:
    c = sync_client(fake_api.url, attempts=3)
    yield c
    c.close()


def throttle(fake_api: Any) -> None:
    fake_api.reply_json({"message": "Too many requests"}, status=429, headers=THROTTLED)


def unavailable(fake_api: Any) -> None:
    fake_api.reply_json({"message": "Try again"}, status=503, headers=UNAVAILABLE)


def test_throttled_then_answered_records_both_attempts(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, events: Any
) -> None:
    throttle(fake_api)
    fake_api.reply_json(CONVERSE)
    with instrumented.task("summarise") as task:
        result = client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert (failed["model"], failed["input_tokens"], Decimal(failed["cost_usd"])) == (MODEL, 0, 0)
    assert failed["cost_confidence"] == "exact"
    assert failed["details"]["status_code"] == 429
    assert failed["details"]["operation"] == "Converse"
    assert answered["input_tokens"] == 230
    assert Decimal(answered["cost_usd"]) > 0
    assert task.task.retry_count == 1
    assert task.task.retry_cost_usd == task.task.total_cost_usd == Decimal(answered["cost_usd"])
    assert task.task.event_count == 2


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_every_retry_mode_is_seen(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any, mode: str
) -> None:
    unavailable(fake_api)
    fake_api.reply_json(CONVERSE)
    client = sync_client(fake_api.url, attempts=2, mode=mode)
    client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    client.close()
    assert_chain(events(), ["5xx", None])


def test_every_attempt_failing_is_one_event_each_and_the_error_propagates(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, events: Any
) -> None:
    for _ in range(3):
        unavailable(fake_api)
    with instrumented.task("summarise") as task, pytest.raises(ClientError) as caught:
        client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    recorded = events()
    assert_chain(recorded, ["5xx", "5xx", "5xx"])
    assert recorded[-1]["details"]["error"] == "ServiceUnavailableException"  # the one raised
    assert {e["cost_confidence"] for e in recorded} == {"exact"}
    assert (task.task.retry_count, task.task.retry_cost_usd) == (2, Decimal(0))


def test_connection_errors_until_botocore_gives_up(
    instrumented: dexcost.CostTracker, unused_port: int, events: Any
) -> None:
    client = sync_client(f"http://127.0.0.1:{unused_port}", attempts=2)
    with pytest.raises(EndpointConnectionError):
        client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    client.close()
    recorded = events()
    assert_chain(recorded, ["connection_error", "connection_error"])
    assert recorded[0]["details"]["error"] == "EndpointConnectionError"  # what botocore caught
    assert "status_code" not in recorded[0]["details"]
    assert {e["cost_confidence"] for e in recorded} == {"unknown"}


def test_a_stream_after_a_throttle_is_linked_when_read(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, events: Any, aws: Any
) -> None:
    throttle(fake_api)
    fake_api.reply_bytes(converse_stream_body(aws, ["a ", "b"]), EVENTSTREAM)
    with instrumented.task("summarise") as task:
        stream = client.converse_stream(modelId=MODEL, messages=CONVERSE_MESSAGES)["stream"]
        assert len(events()) == 1  # the throttled attempt; the stream records when read
        assert len(list(stream)) == 6
    assert_chain(events(), ["rate_limit", None])
    assert task.task.retry_count == 1


def test_the_next_call_is_not_taken_for_a_retry(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, events: Any
) -> None:
    throttle(fake_api)
    fake_api.reply_json(CONVERSE)
    fake_api.reply_json(CONVERSE)
    with instrumented.task("summarise") as task:
        client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
        client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    last = events()[-1]
    assert (last["is_retry"], "attempt" in last["details"]) == (0, False)
    assert task.task.retry_count == 1


def test_a_call_another_layer_owns_records_no_attempts(
    instrumented: dexcost.CostTracker, client: Any, fake_api: Any, events: Any
) -> None:
    throttle(fake_api)
    fake_api.reply_json(CONVERSE)
    with billing_scope("outer") as owns:
        client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert owns
    assert events() == []


def test_uninstrument_removes_the_retry_hook(
    tracker: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    original = vars(botocore.endpoint.Endpoint)["_needs_retry"]
    tracker.instrument("bedrock")
    assert "botocore.endpoint:Endpoint._needs_retry" in get_instrumentor("bedrock").patched
    assert vars(botocore.endpoint.Endpoint)["_needs_retry"] is not original
    tracker.uninstrument("bedrock")
    assert vars(botocore.endpoint.Endpoint)["_needs_retry"] is original
    throttle(fake_api)
    fake_api.reply_json(CONVERSE)
    client = sync_client(fake_api.url, attempts=2)
    client.converse(modelId=MODEL, messages=CONVERSE_MESSAGES)
    assert events() == []
    assert len(fake_api.requests) == 2
