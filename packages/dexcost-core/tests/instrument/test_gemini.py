"""Gemini through the real ``google-genai`` SDK, talking to a fake API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

import dexcost
from dexcost.instrument import instrument_gemini, uninstrument_gemini

MODEL = "gemini-2.5-flash"


def response(
    text: str = "Your refund is on its way.",
    *,
    prompt: int = 120,
    output: int = 30,
    thoughts: int = 100,
    cached: int = 100,
    call: dict[str, Any] | None = None,
) -> dict[str, Any]:
    part = {"functionCall": call} if call else {"text": text}
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "thoughtsTokenCount": thoughts,
            "cachedContentTokenCount": cached,
            "totalTokenCount": prompt + output + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        },
        "modelVersion": MODEL,
        "responseId": "resp-gem-1",
    }


def stream_chunks(words: list[str]) -> list[dict[str, Any]]:
    """Each streamed chunk carries the cumulative usage so far."""
    return [response(w, prompt=40, output=i + 1, thoughts=0, cached=0) for i, w in enumerate(words)]


@pytest.fixture
def client(fake_api: Any) -> Iterator[genai.Client]:
    c = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake_api.url))
    yield c
    c.close()


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("gemini")
    return tracker


def test_generate_content_folds_thoughts_into_output(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(response())
    with instrumented.task("answer") as task:
        result = client.models.generate_content(model=MODEL, contents="Where is my refund?")
    assert result.text == "Your refund is on its way."
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("gemini", MODEL)
    assert (event["input_tokens"], event["output_tokens"]) == (120, 130)
    assert (event["reasoning_tokens"], event["cached_tokens"]) == (100, 100)
    assert event["details"]["response_id"] == "resp-gem-1"
    assert event["cost_confidence"] == "computed"


def test_automatic_function_calling_records_each_request(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    def get_order_status(order_id: str) -> str:
        """Look up an order."""
        return "shipped"

    fake_api.reply_json(
        response(call={"name": "get_order_status", "args": {"order_id": "A1"}}, output=5)
    )
    fake_api.reply_json(response("It has shipped.", prompt=160, output=8, thoughts=0))
    result = client.models.generate_content(
        model=MODEL,
        contents="Status of order A1?",
        config=types.GenerateContentConfig(tools=[get_order_status]),
    )
    assert result.text == "It has shipped."
    assert len(fake_api.requests) == 2
    assert [(e["input_tokens"], e["output_tokens"]) for e in events()] == [(120, 105), (160, 8)]


def test_stream_uses_the_last_cumulative_usage(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(stream_chunks(["Your ", "refund ", "shipped."]))
    text = "".join(
        chunk.text or ""
        for chunk in client.models.generate_content_stream(model=MODEL, contents="Refund?")
    )
    assert text == "Your refund shipped."
    event = one_event()
    assert (event["input_tokens"], event["output_tokens"]) == (40, 3)
    assert event["details"]["stream"] is True


def test_unread_stream_sends_nothing_and_records_nothing(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    stream = client.models.generate_content_stream(model=MODEL, contents="never read")
    del stream
    assert fake_api.requests == []
    assert events() == []


# google-genai 3.x subclasses aiohttp.ClientSession, which aiohttp 3.14 warns about.
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_async_client_plain_and_streamed(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(response())
    fake_api.reply_sse(stream_chunks(["a", "b"]))
    async with instrumented.task("async") as task:
        result = await client.aio.models.generate_content(model=MODEL, contents="hi")
        assert result.text
        chunks = [
            c
            async for c in await client.aio.models.generate_content_stream(
                model=MODEL, contents="hi"
            )
        ]
        assert len(chunks) == 2
    plain, streamed = events()
    assert {plain["task_id"], streamed["task_id"]} == {str(task.task_id)}
    assert (plain["output_tokens"], streamed["output_tokens"]) == (130, 2)
    await client.aio.aclose()


def test_rate_limit_is_recorded_and_raised(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
        status=429,
    )
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert caught.value.code == 429
    event = one_event()
    assert (event["error_type"], event["model"]) == ("rate_limit", MODEL)


def test_stream_error_on_first_read_is_recorded_as_failed(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}, status=503
    )
    with pytest.raises(errors.ServerError):
        for _ in client.models.generate_content_stream(model=MODEL, contents="hi"):
            pass
    event = one_event()
    assert (event["error_type"], event["input_tokens"]) == ("5xx", 0)


def test_uninstrument_restores_the_per_request_methods(
    tracker: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    names = ("_generate_content", "_generate_content_stream")
    originals = [
        vars(cls)[n] for cls in (genai.models.Models, genai.models.AsyncModels) for n in names
    ]
    instrument_gemini(tracker)
    uninstrument_gemini()
    restored = [
        vars(cls)[n] for cls in (genai.models.Models, genai.models.AsyncModels) for n in names
    ]
    assert all(a is b for a, b in zip(originals, restored, strict=False))
    fake_api.reply_json(response())
    client.models.generate_content(model=MODEL, contents="hi")
    assert events() == []


EMBED_MODEL = "gemini-embedding-001"


def test_embed_content_without_usage_is_estimated(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    # The Gemini API's batchEmbedContents answers with the vectors only.
    fake_api.reply_json({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]})
    with instrumented.task("index") as task:
        result = client.models.embed_content(
            model=EMBED_MODEL, contents=["refund policy", "shipping"]
        )
    assert result.embeddings is not None
    assert len(result.embeddings) == 2
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert (event["provider"], event["model"]) == ("gemini", EMBED_MODEL)
    assert (event["input_tokens"], event["output_tokens"]) == (6, 0)  # 21 characters
    assert (event["cost_confidence"], event["details"]["usage"]) == ("estimated", "estimated")
    assert event["details"]["operation"] == "embed_content"
    assert Decimal(event["cost_usd"]) > 0


def test_embed_content_usage_metadata_is_used_when_sent(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"embeddings": [{"values": [0.1]}], "usageMetadata": {"promptTokenCount": 9}}
    )
    client.models.embed_content(model=f"models/{EMBED_MODEL}", contents="refund policy")
    event = one_event()
    assert (event["model"], event["input_tokens"]) == (EMBED_MODEL, 9)
    expected = instrumented.pricing.get_cost(EMBED_MODEL, 9, 0, provider="gemini")
    assert (Decimal(event["cost_usd"]), event["cost_confidence"]) == (
        expected.cost_usd,
        "computed",
    )


def test_vertex_embed_content_sums_the_token_statistics(
    instrumented: dexcost.CostTracker, fake_api: Any, one_event: Any
) -> None:
    client = genai.Client(
        vertexai=True, api_key="test-key", http_options=types.HttpOptions(base_url=fake_api.url)
    )
    fake_api.reply_json(
        {
            "predictions": [
                {"embeddings": {"values": [0.1], "statistics": {"token_count": 5.0}}},
                {"embeddings": {"values": [0.2], "statistics": {"token_count": 3.0}}},
            ],
            "metadata": {"billableCharacterCount": 20},
        }
    )
    client.models.embed_content(model="text-embedding-005", contents=["hello", "world"])
    client.close()
    assert fake_api.requests[0]["path"].endswith("text-embedding-005:predict")
    event = one_event()
    assert (event["provider"], event["model"]) == ("vertex_ai", "text-embedding-005")
    assert (event["input_tokens"], event["cost_confidence"]) == (8, "computed")
    assert event["details"]["billable_character_count"] == 20


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_async_embed_content(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"embeddings": [{"values": [0.1]}], "usageMetadata": {"promptTokenCount": 4}}
    )
    async with instrumented.task("async") as task:
        await client.aio.models.embed_content(model=EMBED_MODEL, contents="hi")
    await client.aio.aclose()
    event = one_event()
    assert (event["task_id"], event["input_tokens"]) == (str(task.task_id), 4)


def test_embed_content_error_is_recorded_and_raised(
    instrumented: dexcost.CostTracker, client: genai.Client, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(
        {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
        status=429,
    )
    with pytest.raises(errors.ClientError):
        client.models.embed_content(model=EMBED_MODEL, contents="hi")
    event = one_event()
    assert (event["error_type"], event["model"]) == ("rate_limit", EMBED_MODEL)
    assert event["details"]["operation"] == "embed_content"


def test_uninstrument_restores_embed_content(
    tracker: dexcost.CostTracker, client: genai.Client, fake_api: Any, events: Any
) -> None:
    classes = (genai.models.Models, genai.models.AsyncModels)
    originals = [vars(cls)["embed_content"] for cls in classes]
    instrument_gemini(tracker)
    assert all(
        vars(cls)["embed_content"] is not o for cls, o in zip(classes, originals, strict=True)
    )
    uninstrument_gemini()
    assert all(vars(cls)["embed_content"] is o for cls, o in zip(classes, originals, strict=True))
    fake_api.reply_json({"embeddings": [{"values": [0.1]}]})
    client.models.embed_content(model=EMBED_MODEL, contents="hi")
    assert events() == []
