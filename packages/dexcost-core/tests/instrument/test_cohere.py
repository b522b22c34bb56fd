"""Cohere through the real ``cohere`` SDK (v2 and v1), talking to a fake API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import cohere
import httpx
import pytest

import dexcost
from dexcost.instrument import uninstrument_cohere

MODEL = "command-a-03-2025"
MESSAGES = [{"role": "user", "content": "Classify this ticket."}]


def v2_response() -> dict[str, Any]:
    return {
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "billing"}]},
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 418},
            "tokens": {"input_tokens": 71, "output_tokens": 418},
            "cached_tokens": 0,
        },
    }


def v2_stream(words: list[str], *, end: bool = True) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message-start",
            {
                "id": "29f14a5a-stream",
                "type": "message-start",
                "delta": {"message": {"role": "assistant", "content": [], "tool_calls": []}},
            },
        ),
        (
            "content-start",
            {
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}},
            },
        ),
    ]
    events += [
        (
            "content-delta",
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": w}}}},
        )
        for w in words
    ]
    if end:
        events += [
            ("content-end", {"type": "content-end", "index": 0}),
            (
                "message-end",
                {
                    "type": "message-end",
                    "delta": {
                        "finish_reason": "COMPLETE",
                        "usage": {
                            "billed_units": {"input_tokens": 3, "output_tokens": len(words)},
                            "tokens": {"input_tokens": 69, "output_tokens": len(words)},
                        },
                    },
                },
            ),
        ]
    return events


V1_RESPONSE = {
    "response_id": "5a9c1ba9-v1",
    "text": "billing",
    "generation_id": "gen-1",
    "finish_reason": "COMPLETE",
    "meta": {
        "api_version": {"version": "1"},
        "billed_units": {"input_tokens": 17, "output_tokens": 12},
        "tokens": {"input_tokens": 83, "output_tokens": 12},
    },
}


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


def test_v2_chat_is_priced_from_billed_units(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(v2_response())
    with instrumented.task("classify") as task:
        result = client.chat(model=MODEL, messages=MESSAGES)
    assert result.message.content[0].text == "billing"
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("cohere", MODEL)
    assert (event["input_tokens"], event["output_tokens"]) == (5, 418)  # billed, not raw
    assert event["details"]["response_id"] == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"


def test_v2_chat_stream_and_an_unread_stream(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(v2_stream(["bill", "ing"]), done=True)
    texts = [
        e.delta.message.content.text
        for e in client.chat_stream(model=MODEL, messages=MESSAGES)
        if e.type == "content-delta"
    ]
    assert texts == ["bill", "ing"]
    unread = client.chat_stream(model=MODEL, messages=MESSAGES)
    del unread  # a generator never started sends nothing
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (3, 2)
    assert event["details"]["stream"] is True
    assert len(fake_api.requests) == 1


def test_v2_stream_cut_short_is_estimated(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(v2_stream(["a long answer ", "that never ends"], end=False))
    stream = client.chat_stream(model=MODEL, messages=MESSAGES)
    next(stream)
    stream.close()
    event = one_event()
    assert event["cost_confidence"] == "estimated"
    assert event["details"]["stream_completed"] is False


async def test_v2_async_chat_and_stream(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    http = httpx.AsyncClient()
    client = cohere.AsyncClientV2(api_key="test", base_url=fake_api.url, httpx_client=http)
    fake_api.reply_json(v2_response())
    fake_api.reply_sse(v2_stream(["x"]), done=True)
    async with http, instrumented.task("async") as task:
        await client.chat(model=MODEL, messages=MESSAGES)
        seen = [e.type async for e in client.chat_stream(model=MODEL, messages=MESSAGES)]
    assert seen[-1] == "message-end"
    plain, streamed = events()
    assert {plain["task_id"], streamed["task_id"]} == {str(task.task_id)}
    assert (plain["output_tokens"], streamed["output_tokens"]) == (418, 1)


def test_v1_client_chat_and_stream(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any, http: httpx.Client
) -> None:
    client = cohere.Client(api_key="test", base_url=fake_api.url, httpx_client=http)
    fake_api.reply_json(V1_RESPONSE)
    fake_api.reply_lines(
        [
            {"is_finished": False, "event_type": "stream-start", "generation_id": "gen-2"},
            {"is_finished": False, "event_type": "text-generation", "text": "billing"},
            {
                "is_finished": True,
                "event_type": "stream-end",
                "finish_reason": "COMPLETE",
                "response": V1_RESPONSE,
            },
        ]
    )
    assert client.chat(message="Classify this ticket.", model=MODEL).text == "billing"
    kinds = [e.event_type for e in client.chat_stream(message="Classify.", model=MODEL)]
    assert kinds == ["stream-start", "text-generation", "stream-end"]
    plain, streamed = events()
    for event in (plain, streamed):
        assert (event["input_tokens"], event["output_tokens"]) == (17, 12)
        assert event["details"]["response_id"] == "5a9c1ba9-v1"


def test_rate_limit_propagates_and_is_recorded(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json({"message": "too many requests"}, status=429)
    with pytest.raises(cohere.errors.TooManyRequestsError):
        client.chat(model=MODEL, messages=MESSAGES, request_options={"max_retries": 0})
    assert one_event()["error_type"] == "rate_limit"


def test_uninstrument(
    tracker: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    original = vars(cohere.v2.client.V2Client)["chat"]
    tracker.instrument("cohere")
    uninstrument_cohere()
    assert vars(cohere.v2.client.V2Client)["chat"] is original
    fake_api.reply_json(v2_response())
    client.chat(model=MODEL, messages=MESSAGES)
    assert events() == []


EMBED_MODEL = "embed-v4.0"


def embed_v2_response(billed: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "emb-v2-1",
        "response_type": "embeddings_by_type",
        "embeddings": {"float": [[0.1, 0.2], [0.3, 0.4]]},
        "texts": ["refund policy", "shipping times"],
    }
    if billed is not None:
        body["meta"] = {"api_version": {"version": "2"}, "billed_units": billed}
    return body


def embed_v1_response(n: int, tokens: int) -> dict[str, Any]:
    return {
        "id": f"emb-v1-{n}",
        "response_type": "embeddings_floats",
        "embeddings": [[0.1, 0.2]] * n,
        "texts": ["t"] * n,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": tokens}},
    }


def expected_cost(tracker: dexcost.CostTracker, event: dict[str, Any]) -> Any:
    return tracker.pricing.get_cost(event["model"], event["input_tokens"], 0, provider="cohere")


def test_v2_embed_is_priced_from_billed_units(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(embed_v2_response({"input_tokens": 12}))
    with instrumented.task("index") as task:
        result = client.embed(
            model=EMBED_MODEL,
            input_type="search_document",
            texts=["refund policy", "shipping times"],
            embedding_types=["float"],
        )
    assert result.embeddings.float_ == [[0.1, 0.2], [0.3, 0.4]]
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("cohere", EMBED_MODEL)
    assert (event["input_tokens"], event["output_tokens"]) == (12, 0)
    assert event["details"] == {"operation": "embed", "response_id": "emb-v2-1"}
    cost = expected_cost(instrumented, event)
    assert cost.cost_confidence == "computed"
    assert (Decimal(event["cost_usd"]), event["cost_confidence"]) == (cost.cost_usd, "computed")


def test_v2_embed_counts_image_tokens_as_input(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(embed_v2_response({"input_tokens": 3, "image_tokens": 1000, "images": 1}))
    client.embed(model=EMBED_MODEL, input_type="image", images=["data:image/png;base64,AAAA"])
    event = one_event()
    assert event["input_tokens"] == 1003
    assert event["details"]["image_tokens"] == 1000


def test_v2_embed_without_billed_units_is_estimated(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(embed_v2_response(None))
    inputs = [{"content": [{"type": "text", "text": "x" * 40}]}]
    client.embed(model=EMBED_MODEL, input_type="search_query", inputs=inputs)
    event = one_event()
    assert (event["input_tokens"], event["cost_confidence"]) == (10, "estimated")
    assert event["details"]["usage"] == "estimated"


async def test_v2_async_embed(
    instrumented: dexcost.CostTracker, fake_api: Any, one_event: Any
) -> None:
    http = httpx.AsyncClient()
    client = cohere.AsyncClientV2(api_key="test", base_url=fake_api.url, httpx_client=http)
    fake_api.reply_json(embed_v2_response({"input_tokens": 7}))
    async with http, instrumented.task("async") as task:
        await client.embed(model=EMBED_MODEL, input_type="search_query", texts=["a", "b"])
    event = one_event()
    assert (event["task_id"], event["input_tokens"]) == (str(task.task_id), 7)


def test_v1_embed_batches_are_one_event_in_the_callers_task(
    instrumented: dexcost.CostTracker, fake_api: Any, one_event: Any, http: httpx.Client
) -> None:
    # Client.embed sends 96 texts per request from a thread pool and merges the answers.
    client = cohere.Client(api_key="test", base_url=fake_api.url, httpx_client=http)
    fake_api.reply_json(embed_v1_response(96, 300))
    fake_api.reply_json(embed_v1_response(4, 20))
    with instrumented.task("index") as task:
        result = client.embed(texts=["t"] * 100, model="embed-english-v3.0")
    assert len(result.embeddings) == 100
    assert len(fake_api.requests) == 2
    event = one_event()
    assert (event["task_id"], event["model"]) == (str(task.task_id), "embed-english-v3.0")
    assert (event["input_tokens"], event["details"]["operation"]) == (320, "embed_v1")
    assert Decimal(event["cost_usd"]) == expected_cost(instrumented, event).cost_usd > 0


async def test_v1_async_embed(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any
) -> None:
    http = httpx.AsyncClient()
    client = cohere.AsyncClient(api_key="test", base_url=fake_api.url, httpx_client=http)
    fake_api.reply_json(embed_v1_response(2, 9))
    async with http:
        await client.embed(texts=["a", "b"], model="embed-english-v3.0")
    [event] = events()
    assert (event["input_tokens"], event["details"]["operation"]) == (9, "embed_v1")


def test_embed_error_propagates_and_is_recorded(
    instrumented: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json({"message": "invalid input_type"}, status=400)
    with pytest.raises(cohere.errors.BadRequestError):
        client.embed(
            model=EMBED_MODEL,
            input_type="search_query",
            texts=["a"],
            request_options={"max_retries": 0},
        )
    event = one_event()
    assert (event["error_type"], event["model"]) == ("bad_request", EMBED_MODEL)
    assert (event["input_tokens"], event["cost_confidence"]) == (0, "exact")


def test_uninstrument_restores_embed(
    tracker: dexcost.CostTracker, client: cohere.ClientV2, fake_api: Any, events: Any
) -> None:
    targets = [
        (cohere.v2.client.V2Client, "embed"),
        (cohere.v2.client.AsyncV2Client, "embed"),
        (cohere.client.Client, "embed"),
        (cohere.client.AsyncClient, "embed"),
        (cohere.base_client.BaseCohere, "embed"),
        (cohere.base_client.AsyncBaseCohere, "embed"),
    ]
    originals = [vars(cls)[name] for cls, name in targets]
    tracker.instrument("cohere")
    assert all(vars(cls)[name] is not o for (cls, name), o in zip(targets, originals, strict=True))
    uninstrument_cohere()
    assert all(vars(cls)[name] is o for (cls, name), o in zip(targets, originals, strict=True))
    fake_api.reply_json(embed_v2_response({"input_tokens": 1}))
    client.embed(model=EMBED_MODEL, input_type="search_query", texts=["a"])
    assert events() == []


def test_v1_embed_stream_is_recorded_per_request(
    instrumented: dexcost.CostTracker, fake_api: Any, events: Any, http: httpx.Client
) -> None:
    # embed_stream sends its batches through BaseCohere.embed on the caller's thread.
    client = cohere.Client(api_key="test", base_url=fake_api.url, httpx_client=http)
    fake_api.reply_json(embed_v1_response(2, 11))
    fake_api.reply_json(embed_v1_response(1, 5))
    with instrumented.task("index") as task:
        out = list(
            client.embed_stream(texts=["a", "b", "c"], model="embed-english-v3.0", batch_size=2)
        )
    assert len(out) == 3
    assert [(e["task_id"], e["input_tokens"]) for e in events()] == [
        (str(task.task_id), 11),
        (str(task.task_id), 5),
    ]
