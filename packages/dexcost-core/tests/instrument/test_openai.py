"""OpenAI through the real ``openai`` SDK, talking to a fake API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

import dexcost
from dexcost import _guard
from dexcost.instrument import (
    TrackedAsyncOpenAI,
    TrackedOpenAI,
    get_instrumentor,
    instrument_openai,
    uninstrument_openai,
)

MODEL = "gpt-4o-2024-08-06"
MESSAGES = [{"role": "user", "content": "Summarise the ticket in one line."}]
CHAT = openai.resources.chat.completions.completions


def completion(prompt: int = 1117, output: int = 46, cached: int = 1024, reasoning: int = 0) -> Any:
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
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
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035",
    }


def chunks(words: list[str], usage: bool) -> list[dict[str, Any]]:
    """A chat stream as OpenAI sends it; with ``include_usage`` a last chunk has usage."""
    base = {
        "id": "chatcmpl-stream1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
    }
    out = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
            "usage": None,
        }
    ]
    out += [
        {**base, "choices": [{"index": 0, "delta": {"content": w}}], "usage": None} for w in words
    ]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        out.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 20,
                    "completion_tokens": len(words),
                    "total_tokens": 20 + len(words),
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
            }
        )
    return out


@pytest.fixture
def client(fake_api: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(fake_api: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0
    ) as c:
        yield c


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("openai")
    return tracker


def expected_cost(tracker: dexcost.CostTracker, event: dict[str, Any]) -> Decimal:
    return tracker.pricing.get_cost(
        event["model"],
        event["input_tokens"],
        event["output_tokens"],
        event["cached_tokens"],
        event["cache_creation_tokens"],
        provider="openai",
    ).cost_usd


def test_chat_completion_is_recorded_in_the_current_task(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(completion())
    with instrumented.task("resolve_ticket") as task:
        result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert isinstance(result, openai.types.chat.ChatCompletion)
    assert result.choices[0].message.content == "Refund issued."
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert event["provider"] == "openai"
    assert event["model"] == MODEL  # the model the response reports
    assert (event["input_tokens"], event["output_tokens"], event["cached_tokens"]) == (
        1117,
        46,
        1024,
    )
    assert event["latency_ms"] is not None
    assert event["cost_confidence"] == "computed"
    assert event["pricing_version"]
    assert Decimal(event["cost_usd"]) == expected_cost(instrumented, event) > 0
    assert event["details"]["operation"] == "chat"
    assert event["details"]["request_model"] == "gpt-4o"
    assert event["details"]["service_tier"] == "default"
    assert event["details"]["response_id"] == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert "Summarise" not in str(event)  # never the prompt


def test_a_client_pointed_elsewhere_records_the_new_host(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(completion())
    fake_api.reply_json(completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.base_url = fake_api.url.replace("127.0.0.1", "localhost") + "/v1"
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    first, second = events()
    assert first["details"]["host"] == "127.0.0.1"
    assert second["details"]["host"] == "localhost"


def test_reasoning_tokens_are_kept_inside_output(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(completion(prompt=50, output=300, cached=0, reasoning=256))
    client.chat.completions.create(model="o4-mini", messages=MESSAGES)
    event = one_event()
    assert (event["output_tokens"], event["reasoning_tokens"]) == (300, 256)


async def test_async_chat_completion(
    instrumented: dexcost.CostTracker, aclient: openai.AsyncOpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(completion())
    async with instrumented.task("async_job") as task:
        result = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.usage is not None
    assert result.usage.prompt_tokens == 1117
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["input_tokens"], event["output_tokens"]) == (1117, 46)


def test_stream_yields_every_chunk_and_records_usage_from_the_last(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    words = ["Refund ", "issued ", "today."]
    fake_api.reply_sse(chunks(words, usage=True), done=True)
    with instrumented.task("t"):
        stream = client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.Stream)
        received = list(stream)
    texts = [c.choices[0].delta.content for c in received if c.choices]
    assert texts == ["", *words, None]
    assert received[-1].usage is not None
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (20, 3)
    assert event["cost_confidence"] == "computed"
    assert event["details"]["stream"] is True
    assert "stream_completed" not in event["details"]


def test_stream_without_usage_is_estimated(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(chunks(["Refund issued to the customer today."], usage=False), done=True)
    for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
        pass
    event = one_event()
    assert event["cost_confidence"] == "estimated"
    assert event["details"]["usage"] == "estimated"
    assert event["input_tokens"] > 0
    assert event["output_tokens"] > 0
    assert Decimal(event["cost_usd"]) > 0


def test_stream_closed_early_in_a_with_block_records_what_it_saw(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a", "b", "c", "d"], usage=True), done=True)
    with client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as stream:
        first = next(stream)
        assert first.choices[0].delta.role == "assistant"
        assert events() == []  # nothing yet: the stream is still open
    event = only(events())
    assert event["details"]["stream_completed"] is False
    assert event["cost_confidence"] == "estimated"


def collect_garbage() -> None:
    """Run the collector; leftovers of earlier tests (unclosed sockets) may warn as they
    go, which is not what these tests are about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_partly_read_stream_records_when_garbage_collected(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a", "b", "c"], usage=False), done=True)

    def peek() -> str:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        for chunk in stream:
            if chunk.choices[0].delta.content:
                stream.response.close()
                return str(chunk.choices[0].delta.content)
        raise AssertionError("no content")

    with instrumented.task("gc") as task:
        assert peek() == "a"
        collect_garbage()
        event = only(events())
    assert event["task_id"] == str(task.task_id)
    assert event["details"]["stream_completed"] is False
    assert event["output_tokens"] == 1  # "a": what it saw


def test_unread_stream_records_on_collection_in_the_calls_context(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a"], usage=False), done=True)
    with instrumented.task("outer") as task:
        with instrumented.task("inner") as inner:
            stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        stream.response.close()
        del stream
        collect_garbage()
    event = only(events())
    # The call's task had ended before the stream was dropped: the tracker puts late
    # events in the session task rather than lose them.
    assert event["task_id"] not in {str(task.task_id), str(inner.task_id)}
    assert event["task_type"] == "session"
    assert event["input_tokens"] > 0
    assert event["output_tokens"] == 0


def test_stream_read_by_next_then_for_yields_each_chunk_once(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    words = ["a", "b", "c"]
    fake_api.reply_sse(chunks(words, usage=True), done=True)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    first = next(stream)
    rest = list(stream)
    assert list(stream) == []  # read to its end: nothing more
    received = [first, *rest]
    assert all(type(c) is openai.types.chat.ChatCompletionChunk for c in received)
    assert [c.choices[0].delta.content for c in received if c.choices] == ["", *words, None]
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (20, 3)
    assert "stream_completed" not in event["details"]


def test_stream_kept_only_by_its_iterator_records_when_read_to_its_end(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a", "b"], usage=True), done=True)
    reader = iter(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )  # the stream object itself is gone: the iterator keeps reading
    collect_garbage()
    assert events() == []
    assert len(list(reader)) == 5
    event = only(events())
    assert (event["input_tokens"], event["output_tokens"]) == (20, 2)


def test_stream_closed_after_a_partial_read_records_what_it_saw(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a", "b", "c", "d"], usage=False), done=True)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    seen = ""
    for chunk in stream:
        seen += chunk.choices[0].delta.content or ""
        if seen == "ab":
            break
    assert events() == []  # left the loop, but the stream is still open
    stream.close()
    stream.close()  # recorded once
    assert list(stream) == []  # closed: nothing more is read
    event = only(events())
    assert event["details"]["stream_completed"] is False
    assert event["output_tokens"] == 1  # "ab": what it saw, estimated


def test_stream_failing_midway_raises_the_sdks_error_and_records_it(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    sent = chunks(["a", "b"], usage=True)[:2]
    fake_api.reply_sse([*sent, {"error": {"message": "overloaded", "type": "server_error"}}])
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    received: list[Any] = []
    with pytest.raises(openai.APIError, match="overloaded") as raised:
        received.extend(stream)
    assert len(received) == 2
    assert type(raised.value) is openai.APIError  # the SDK's own error, passed on as it is
    event = only(events())
    assert event["details"]["stream_completed"] is False
    assert event["error_type"] == "APIError"


async def test_async_stream_read_by_anext_then_async_for(
    instrumented: dexcost.CostTracker, aclient: openai.AsyncOpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["x", "y"], usage=True), done=True)
    stream = await aclient.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    first = await stream.__anext__()
    rest = [c async for c in stream]
    assert [c async for c in stream] == []
    assert first.choices[0].delta.role == "assistant"
    assert rest[-1].usage.completion_tokens == 2
    event = only(events())
    assert (event["input_tokens"], event["output_tokens"]) == (20, 2)
    assert "stream_completed" not in event["details"]


async def test_async_stream_left_early_and_dropped_records_what_it_saw(
    instrumented: dexcost.CostTracker, aclient: openai.AsyncOpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["x", "y", "z"], usage=False), done=True)
    with instrumented.task("t") as task:
        stream = await aclient.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        async for chunk in stream:
            if chunk.choices[0].delta.content:
                break
        await stream.response.aclose()
        del stream, chunk
        collect_garbage()
        for _ in range(10):  # the event loop closes the dropped reader soon after
            if events():
                break
            await asyncio.sleep(0)
    event = only(events())
    assert event["task_id"] == str(task.task_id)
    assert event["details"]["stream_completed"] is False
    assert event["output_tokens"] == 1  # "x"


async def test_async_stream_with_async_with_and_early_exit(
    instrumented: dexcost.CostTracker, aclient: openai.AsyncOpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["x", "y"], usage=True), done=True)
    fake_api.reply_sse(chunks(["x", "y", "z"], usage=True), done=True)
    stream = await aclient.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.AsyncStream)
    seen = [c async for c in stream]
    assert seen[-1].usage.completion_tokens == 2
    async with await aclient.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as partial:
        async for _ in partial:
            break
    full, cut = events()
    assert (full["output_tokens"], "stream_completed" in full["details"]) == (2, False)
    assert cut["details"]["stream_completed"] is False


def test_stream_helper_goes_through_create(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(chunks(["Hello", " there"], usage=True), done=True)
    with client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello there"
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (20, 2)


def test_responses_api_and_its_stream(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    response = {
        "id": "resp_67ccd2bed1ec8190b14f964abc054267",
        "object": "response",
        "created_at": 1741476542,
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 328,
            "input_tokens_details": {"cached_tokens": 128},
            "output_tokens": 52,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 380,
        },
    }
    fake_api.reply_json(response)
    result = client.responses.create(model="gpt-4.1", input="Close the ticket")
    assert result.output_text == "Done."
    in_progress = {**response, "status": "in_progress", "usage": None, "output": []}
    fake_api.reply_sse(
        [
            (
                "response.created",
                {"type": "response.created", "sequence_number": 0, "response": in_progress},
            ),
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 1,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "Done.",
                    "logprobs": [],
                },
            ),
            (
                "response.completed",
                {"type": "response.completed", "sequence_number": 2, "response": response},
            ),
        ]
    )
    for _ in client.responses.create(model="gpt-4.1", input="Close the ticket", stream=True):
        pass
    plain, streamed = events()
    for event in (plain, streamed):
        assert event["model"] == "gpt-4.1-2025-04-14"
        assert (event["input_tokens"], event["output_tokens"], event["cached_tokens"]) == (
            328,
            52,
            128,
        )
        assert event["details"]["operation"] == "responses"
    assert streamed["details"]["stream"] is True


def test_embeddings(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        }
    )
    client.embeddings.create(model="text-embedding-3-small", input="refund policy")
    event = one_event()
    assert (event["model"], event["input_tokens"], event["output_tokens"]) == (
        "text-embedding-3-small",
        8,
        0,
    )
    assert event["details"]["operation"] == "embeddings"


def test_with_raw_response_is_recorded_once_and_parses_to_the_same_object(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(completion())
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    parsed = raw.parse()
    assert parsed is raw.parse()
    assert parsed.usage is not None
    assert parsed.usage.prompt_tokens == 1117
    assert one_event()["input_tokens"] == 1117


def test_with_streaming_response_is_recorded_when_the_caller_parses(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(completion())
    with (
        instrumented.task("streamed") as task,
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES
        ) as response,
    ):
        assert isinstance(response, openai._response.APIResponse)
        assert response.http_response.status_code == 200
        assert events() == []  # the body is not read until the caller asks
        parsed = response.parse()
        assert parsed is response.parse()
        assert isinstance(parsed, openai.types.chat.ChatCompletion)
    event = only(events())
    assert event["task_id"] == str(task.task_id)
    assert (event["model"], event["input_tokens"], event["cached_tokens"]) == (MODEL, 1117, 1024)
    assert Decimal(event["cost_usd"]) == expected_cost(instrumented, event) > 0


def test_with_streaming_response_stream_is_tracked(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a", "b"], usage=True), done=True)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        stream = response.parse()
        assert isinstance(stream, openai.Stream)
        assert stream is response.parse()
        received = list(stream)
    assert [c.choices[0].delta.content for c in received if c.choices] == ["", "a", "b", None]
    event = only(events())
    assert (event["input_tokens"], event["output_tokens"]) == (20, 2)
    assert event["details"]["stream"] is True
    assert "stream_completed" not in event["details"]


def test_with_streaming_response_stream_left_early_records_at_the_end_of_the_block(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(chunks(["a", "b", "c"], usage=True), done=True)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        next(iter(response.parse()))
        assert events() == []
    event = only(events())  # recorded on leaving the block, not at garbage collection
    assert event["details"]["stream_completed"] is False


def test_with_streaming_response_lands_in_the_task_that_made_the_call(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(completion())
    manager = client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES
    )
    with instrumented.task("sender") as task:
        response = manager.__enter__()  # the request is sent here
        reader = threading.Thread(target=response.parse)  # read where the task is unknown
        reader.start()
        reader.join()
        manager.__exit__(None, None, None)
    assert one_event()["task_id"] == str(task.task_id)


def test_with_streaming_response_read_by_lines_is_left_to_the_caller(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(completion())
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES
    ) as response:
        body = "".join(response.iter_lines())
    assert '"prompt_tokens": 1117' in body  # every byte reached the caller
    assert events() == []  # a documented limit: only parse() is recorded


async def test_async_with_streaming_response_plain_and_streamed(
    instrumented: dexcost.CostTracker, aclient: openai.AsyncOpenAI, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(completion())
    fake_api.reply_sse(chunks(["a"], usage=True), done=True)
    async with instrumented.task("async") as task:
        async with aclient.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES
        ) as response:
            parsed = await response.parse()
            assert parsed is await response.parse()
        async with aclient.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ) as response:
            stream = await response.parse()
            assert isinstance(stream, openai.AsyncStream)
            assert len([c async for c in stream]) == 4
    plain, streamed = events()
    assert {plain["task_id"], streamed["task_id"]} == {str(task.task_id)}
    assert (plain["input_tokens"], streamed["input_tokens"]) == (1117, 20)
    assert streamed["details"]["stream"] is True


def test_with_streaming_response_error_is_recorded_once(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json({"error": {"message": "slow down"}}, status=429)
    with (
        pytest.raises(openai.RateLimitError),
        client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES),
    ):
        pass
    assert one_event()["error_type"] == "rate_limit"


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (429, openai.RateLimitError, "rate_limit"),
        (500, openai.InternalServerError, "5xx"),
        (400, openai.BadRequestError, "bad_request"),
    ],
)
def test_failed_call_is_recorded_and_the_error_propagates(
    instrumented: dexcost.CostTracker,
    client: openai.OpenAI,
    fake_api: Any,
    one_event: Any,
    status: int,
    error: type[Exception],
    error_type: str,
) -> None:
    fake_api.reply_json({"error": {"message": "nope", "type": "x", "code": None}}, status=status)
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    event = one_event()
    assert event["error_type"] == error_type
    assert (event["input_tokens"], Decimal(event["cost_usd"])) == (0, 0)
    assert event["cost_confidence"] == "exact"  # an error answer is not billed
    assert event["model"] == "gpt-4o"


def test_connection_error_is_recorded_with_unknown_cost(
    instrumented: dexcost.CostTracker, one_event: Any, unused_port: int
) -> None:
    client = openai.OpenAI(
        api_key="k", base_url=f"http://127.0.0.1:{unused_port}/v1", max_retries=0
    )
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    event = one_event()
    assert (event["error_type"], event["cost_confidence"]) == ("connection_error", "unknown")


def test_retry_heuristic_sees_failed_calls(
    tmp_path: Any, fake_api: Any, client: openai.OpenAI
) -> None:
    dexcost.init(
        buffer_path=str(tmp_path / "r.db"),
        auto_instrument=["openai"],
        track_http=False,
        enable_retry_heuristics=True,
    )
    fake_api.reply_json({"error": {"message": "slow down"}}, status=429)
    fake_api.reply_json(completion())
    with dexcost.task("retrying") as task:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert task.task.retry_count == 1


def test_call_outside_any_task_lands_in_the_agent_session(
    instrumented: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, one_event: Any
) -> None:
    dexcost.set_context(agent="support-bot", customer_id="acme")
    fake_api.reply_json(completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    event = one_event()
    assert (event["task_type"], event["customer_id"]) == ("support-bot", "acme")


def test_uninstrument_restores_the_exact_originals(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    originals = {name: vars(CHAT.Completions)[name] for name in ("create", "parse")} | {
        "async_create": vars(CHAT.AsyncCompletions)["create"]
    }
    instrument_openai(tracker)
    assert tracker.instrumented == frozenset({"openai"})
    assert vars(CHAT.Completions)["create"] is not originals["create"]
    uninstrument_openai()
    assert tracker.instrumented == frozenset()
    assert vars(CHAT.Completions)["create"] is originals["create"]
    assert vars(CHAT.Completions)["parse"] is originals["parse"]
    assert vars(CHAT.AsyncCompletions)["create"] is originals["async_create"]
    fake_api.reply_json(completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert events() == []
    uninstrument_openai()  # safe when not instrumented
    tracker.uninstrument("openai")


def test_double_instrument_is_refused(tracker: dexcost.CostTracker, tmp_path: Any) -> None:
    tracker.instrument("openai")
    with pytest.raises(RuntimeError, match="already instrumented"):
        tracker.instrument("openai")
    other = dexcost.CostTracker(auto_instrument=[], buffer_path=str(tmp_path / "other.db"))
    with pytest.raises(RuntimeError):
        other.instrument("openai")
    other.uninstrument("openai")  # not its patch: nothing happens
    assert get_instrumentor("openai").is_instrumented
    other.close()


def test_uninstrument_leaves_a_later_wrapper_of_another_tool_working(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    import wrapt

    original = vars(CHAT.Completions)["create"]
    tracker.instrument("openai")
    calls = []

    def other_tool(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append(kwargs["model"])
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(CHAT, "Completions.create", other_tool)
    tracker.uninstrument("openai")
    fake_api.reply_json(completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert calls == ["gpt-4o"]  # the other tool's wrapper still runs
    assert events() == []  # ours is switched off
    tracker.instrument("openai")  # re-armed in place, not stacked twice
    fake_api.reply_json(completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(events()) == 1
    tracker.uninstrument("openai")
    CHAT.Completions.create = original  # remove the other tool's wrapper


def test_an_internal_failure_never_changes_the_call(
    instrumented: dexcost.CostTracker,
    client: openai.OpenAI,
    fake_api: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenPricing:
        def get_cost(self, *args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("pricing bug")

        def close(self) -> None:
            pass

    instrumented.pricing = BrokenPricing()  # type: ignore[assignment]
    fake_api.reply_json(completion())
    fake_api.reply_json(completion())
    with caplog.at_level(logging.DEBUG, logger="dexcost"):
        first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        second = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert first.id == second.id == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    swallowed = _guard.swallowed()
    assert [type(exc) for _, exc in swallowed] == [ZeroDivisionError, ZeroDivisionError]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once per site
    _guard.clear()


def test_tracked_client_records_without_global_instrumentation(
    tracker: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    client = TrackedOpenAI(api_key="k", base_url=fake_api.url + "/v1", tracker=tracker)
    assert isinstance(client, openai.OpenAI)
    assert isinstance(client, TrackedOpenAI)
    plain = openai.OpenAI(api_key="k", base_url=fake_api.url + "/v1")
    assert not isinstance(plain, TrackedOpenAI)
    fake_api.reply_json(completion())
    fake_api.reply_json(completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    plain.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(events()) == 1  # only the tracked client's call
    assert not get_instrumentor("openai").is_instrumented


async def test_tracked_async_client_uses_the_global_tracker_at_call_time(
    tmp_path: Any, fake_api: Any
) -> None:
    client = TrackedAsyncOpenAI(api_key="k", base_url=fake_api.url + "/v1")  # before init()
    dexcost.init(buffer_path=str(tmp_path / "g.db"), auto_instrument=[], track_http=False)
    fake_api.reply_json(completion())
    async with client, dexcost.task("late_init") as task:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert task.task.total_input_tokens == 1117


def only(found: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(found) == 1, found
    return found[0]
