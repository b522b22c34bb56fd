"""Retries made inside the openai and anthropic SDKs: one event per attempt, linked.

The real SDKs talk to an ``httpx.MockTransport`` (``httpx2`` for anthropic) that answers
from a script. The SDKs wait ``retry-after-ms`` between attempts, so 1 ms keeps the
retries fast without touching the SDK.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

import dexcost
from dexcost import billing_scope
from dexcost.instrument import TrackedOpenAI, get_instrumentor

from .test_anthropic import MESSAGES as CLAUDE_MESSAGES
from .test_anthropic import MODEL as CLAUDE
from .test_anthropic import events_of, message
from .test_openai import MESSAGES, chunks, completion

# openai 3.x talks through httpx2 (like anthropic 2.x); 2.x through httpx.
HTTP = httpx if int(openai.__version__.split(".")[0]) < 3 else httpx2
FAST = {"retry-after-ms": "1"}  # the SDKs honour it; 0 would fall back to their backoff
Script = list[Any]  # (status, json body) pairs, or an exception to raise


def _answer(module: Any, script: Script, seen: list[Any]) -> Callable[[Any], Any]:
    """A MockTransport handler answering each request with the next scripted reply."""

    def handle(request: Any) -> Any:
        seen.append(request)
        reply = script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        status, body = reply
        if isinstance(body, bytes):
            headers = {"content-type": "text/event-stream"}
            return module.Response(status, content=body, headers=headers)
        return module.Response(status, json=body, headers=FAST if status >= 400 else {})

    return handle


def sse(events: list[Any], *, done: bool = False) -> bytes:
    """A server-sent events body: dicts as ``data:`` lines, ``(name, dict)`` with ``event:``."""
    parts = []
    for event in events:
        if isinstance(event, tuple):
            parts.append(f"event: {event[0]}\ndata: {json.dumps(event[1])}\n\n")
        else:
            parts.append(f"data: {json.dumps(event)}\n\n")
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


RATE_LIMITED = (429, {"error": {"message": "slow down", "type": "rate_limit", "code": None}})
SERVER_ERROR = (500, {"error": {"message": "boom", "type": "server_error", "code": None}})
OVERLOADED = (529, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})


class Calls:
    """The requests the transport saw, and the client factories bound to a script."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def openai(self, script: Script, max_retries: int = 2) -> openai.OpenAI:
        transport = HTTP.MockTransport(_answer(HTTP, script, self.seen))
        return openai.OpenAI(
            api_key="sk-test",
            base_url="http://fake.test/v1",
            max_retries=max_retries,
            http_client=HTTP.Client(transport=transport),
        )

    def async_openai(self, script: Script, max_retries: int = 2) -> openai.AsyncOpenAI:
        transport = HTTP.MockTransport(_answer(HTTP, script, self.seen))
        return openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://fake.test/v1",
            max_retries=max_retries,
            http_client=HTTP.AsyncClient(transport=transport),
        )

    def anthropic(self, script: Script, max_retries: int = 2) -> anthropic.Anthropic:
        transport = httpx2.MockTransport(_answer(httpx2, script, self.seen))
        return anthropic.Anthropic(
            api_key="sk-ant-test",
            base_url="http://fake.test",
            max_retries=max_retries,
            http_client=httpx2.Client(transport=transport),
        )

    def async_anthropic(self, script: Script, max_retries: int = 2) -> anthropic.AsyncAnthropic:
        transport = httpx2.MockTransport(_answer(httpx2, script, self.seen))
        return anthropic.AsyncAnthropic(
            api_key="sk-ant-test",
            base_url="http://fake.test",
            max_retries=max_retries,
            http_client=httpx2.AsyncClient(transport=transport),
        )


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("openai")
    tracker.instrument("anthropic")
    return tracker


def assert_chain(recorded: list[dict[str, Any]], errors: list[str | None]) -> None:
    """One event per attempt, in order; each after the first a retry of the one before."""
    assert [e["error_type"] for e in recorded] == errors
    assert [e["details"]["attempt"] for e in recorded] == list(range(1, len(errors) + 1))
    first, *later = recorded
    assert (first["is_retry"], first["retry_of"]) == (0, None)
    for before, event in zip(recorded, later, strict=False):
        assert event["is_retry"] == 1
        assert event["retry_of"] == before["event_id"]
        assert event["retry_reason"] == before["error_type"]


def test_rate_limited_then_answered_records_both_attempts(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.openai([RATE_LIMITED, (200, completion())])
    with instrumented.task("answer") as task:
        result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.usage is not None
    assert result.usage.prompt_tokens == 1117
    assert [r.headers["x-stainless-retry-count"] for r in calls.seen] == ["0", "1"]
    failed, answered = recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert (failed["input_tokens"], Decimal(failed["cost_usd"])) == (0, 0)
    assert (failed["cost_confidence"], failed["model"]) == ("exact", "gpt-4o")
    assert failed["details"]["status_code"] == 429
    assert failed["details"]["operation"] == "chat"
    assert answered["input_tokens"] == 1117
    assert Decimal(answered["cost_usd"]) > 0
    assert task.task.retry_count == 1
    assert task.task.retry_cost_usd == Decimal(answered["cost_usd"])
    assert task.task.total_cost_usd == Decimal(answered["cost_usd"])
    assert task.task.event_count == 2


def test_every_attempt_failing_is_one_event_each_and_the_error_propagates(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.openai([SERVER_ERROR, SERVER_ERROR, SERVER_ERROR], max_retries=2)
    with instrumented.task("answer") as task, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == 500
    recorded = events()
    assert_chain(recorded, ["5xx", "5xx", "5xx"])
    assert recorded[-1]["details"]["error"] == "InternalServerError"  # the one raised
    assert {e["cost_confidence"] for e in recorded} == {"exact"}
    assert (task.task.retry_count, task.task.retry_cost_usd) == (2, Decimal(0))
    assert task.task.event_count == 3


def test_the_next_call_is_not_taken_for_a_retry(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.openai([RATE_LIMITED, (200, completion()), (200, completion())])
    with instrumented.task("answer") as task:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    last = events()[-1]
    assert (last["is_retry"], "attempt" in last["details"]) == (0, False)
    assert task.task.retry_count == 1


def test_timeout_then_answered_costs_unknown_for_the_lost_attempt(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    # Without a response the SDK waits its own backoff (about half a second).
    client = calls.openai([HTTP.ReadTimeout("slow"), (200, completion())], max_retries=1)
    with instrumented.task("answer"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    recorded = events()
    assert_chain(recorded, ["timeout", None])
    failed = recorded[0]
    assert (failed["cost_confidence"], failed["details"]["error"]) == ("unknown", "ReadTimeout")
    assert "status_code" not in failed["details"]


async def test_async_connection_errors_until_the_sdk_gives_up(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.async_openai([HTTP.ConnectError("refused")] * 2, max_retries=1)
    with pytest.raises(openai.APIConnectionError):
        await client.embeddings.create(model="text-embedding-3-small", input="hi")
    recorded = events()
    assert_chain(recorded, ["connection_error", "connection_error"])
    assert recorded[0]["details"]["error"] == "ConnectError"  # what the SDK caught
    assert recorded[0]["details"]["operation"] == "embeddings"
    assert {e["cost_confidence"] for e in recorded} == {"unknown"}
    await client.close()


async def test_async_stream_after_a_rate_limit_is_linked_when_read(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    body = sse(chunks(["Re", "fund"], usage=True), done=True)
    client = calls.async_openai([RATE_LIMITED, (200, body)])
    async with instrumented.task("answer") as task:
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        assert len([chunk async for chunk in stream]) == 5
    assert_chain(events(), ["rate_limit", None])
    assert task.task.retry_count == 1
    await client.close()


def test_anthropic_overloaded_then_answered(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.anthropic([OVERLOADED, (200, message())])
    with instrumented.task("reply") as task:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=CLAUDE_MESSAGES)
    failed, answered = recorded = events()
    assert_chain(recorded, ["overloaded", None])
    assert (failed["provider"], failed["model"]) == ("anthropic", CLAUDE)
    assert failed["details"]["operation"] == "messages"
    assert task.task.retry_count == 1
    assert task.task.retry_cost_usd == Decimal(answered["cost_usd"]) > 0


async def test_anthropic_async_all_attempts_failing(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.async_anthropic([SERVER_ERROR, SERVER_ERROR], max_retries=1)
    async with instrumented.task("reply") as task:
        with pytest.raises(anthropic.InternalServerError):
            await client.messages.create(model=CLAUDE, max_tokens=10, messages=CLAUDE_MESSAGES)
    assert_chain(events(), ["5xx", "5xx"])
    assert task.task.retry_count == 1
    await client.close()


def test_anthropic_stream_helper_after_a_rate_limit(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.anthropic([RATE_LIMITED, (200, sse(events_of(["a", "b"])))])
    with (
        instrumented.task("reply") as task,
        client.messages.stream(model=CLAUDE, max_tokens=10, messages=CLAUDE_MESSAGES) as stream,
    ):
        assert list(stream.text_stream) == ["a", "b"]
    recorded = events()
    assert_chain(recorded, ["rate_limit", None])
    assert recorded[-1]["output_tokens"] == 15
    assert task.task.retry_count == 1


def test_retry_heuristic_on_does_not_count_twice(tmp_path: Any, calls: Calls, events: Any) -> None:
    tracker = dexcost.CostTracker(
        dexcost.DexcostConfig(enable_retry_heuristics=True),
        auto_instrument=["openai"],
        buffer_path=str(tmp_path / "h.db"),
    )
    try:
        client = calls.openai([RATE_LIMITED, SERVER_ERROR, (200, completion())])
        with tracker.task("answer") as task:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert (task.task.retry_count, task.task.event_count) == (2, 3)
        assert task.task.retry_cost_usd == task.task.total_cost_usd > 0
    finally:
        tracker.close()


def test_an_sdk_retry_can_be_unflagged_like_any_retry(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.openai([RATE_LIMITED, (200, completion())])
    with instrumented.task("answer") as task:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        unflagged = task.mark_not_retry()
    assert unflagged is not None
    assert (task.task.retry_count, task.task.retry_cost_usd) == (0, Decimal(0))
    assert events()[-1]["is_retry"] == 0


def test_a_tracked_client_records_its_attempts_without_instrumenting(
    tracker: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    transport = HTTP.MockTransport(_answer(HTTP, [RATE_LIMITED, (200, completion())], []))
    client = TrackedOpenAI(
        api_key="sk-test",
        base_url="http://fake.test/v1",
        http_client=HTTP.Client(transport=transport),
        tracker=tracker,
    )
    with tracker.task("answer") as task:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert_chain(events(), ["rate_limit", None])
    assert task.task.retry_count == 1


def test_a_call_another_layer_owns_records_no_attempts(
    instrumented: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    client = calls.openai([RATE_LIMITED, (200, completion())])
    with billing_scope("outer") as owns:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert owns
    assert events() == []


def test_uninstrument_removes_the_retry_hook(
    tracker: dexcost.CostTracker, calls: Calls, events: Any
) -> None:
    base = openai._base_client
    originals = (
        vars(base.SyncAPIClient)["_sleep_for_retry"],
        vars(base.AsyncAPIClient)["_sleep_for_retry"],
    )
    tracker.instrument("openai")
    assert "openai._base_client:SyncAPIClient._sleep_for_retry" in (
        get_instrumentor("openai").patched
    )
    assert vars(base.SyncAPIClient)["_sleep_for_retry"] is not originals[0]
    tracker.uninstrument("openai")
    assert vars(base.SyncAPIClient)["_sleep_for_retry"] is originals[0]
    assert vars(base.AsyncAPIClient)["_sleep_for_retry"] is originals[1]
    client = calls.openai([RATE_LIMITED, (200, completion())])
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert events() == []
    assert len(calls.seen) == 2


def test_an_sdk_without_the_hook_still_records_calls(
    tracker: dexcost.CostTracker,
    calls: Calls,
    events: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for cls in (openai._base_client.SyncAPIClient, openai._base_client.AsyncAPIClient):
        monkeypatch.delattr(cls, "_sleep_for_retry")
    with caplog.at_level(logging.DEBUG, logger="dexcost.instrument"):
        tracker.instrument("openai")
    assert "SyncAPIClient._sleep_for_retry" in caplog.text
    client = calls.openai([(200, completion())], max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(events()) == 1
    tracker.uninstrument("openai")
