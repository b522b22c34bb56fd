"""Anthropic through the real ``anthropic`` SDK, talking to a fake API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import dexcost
from dexcost.instrument import TrackedAnthropic, instrument_anthropic, uninstrument_anthropic

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Draft a reply to the customer."}]
MESSAGES_MODULE = anthropic.resources.messages.messages
BETA_MODULE = anthropic.resources.beta.messages.messages


def message(text: str = "Hello!") -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
            "output_tokens": 6,
            "service_tier": "standard",
        },
    }


def events_of(words: list[str], *, final: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """A Messages stream as Anthropic sends it (usage in message_start and message_delta)."""
    start = {**message(), "content": [], "stop_reason": None}
    start["usage"] = {**start["usage"], "output_tokens": 1}
    out: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    out += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
        )
        for w in words
    ]
    if final:
        out += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 15, "cache_read_input_tokens": 2000},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    return out


@pytest.fixture
def client(fake_api: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="sk-ant-test", base_url=fake_api.url, max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(fake_api: Any) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-test", base_url=fake_api.url, max_retries=0
    ) as c:
        yield c


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("anthropic")
    return tracker


def assert_cached_usage(event: dict[str, Any], output: int) -> None:
    # Anthropic's input_tokens (12) excludes the cache; dexcost's input includes it.
    assert event["input_tokens"] == 12 + 100 + 2000
    assert (event["cached_tokens"], event["cache_creation_tokens"]) == (2000, 100)
    assert event["details"]["cache_write_1h_tokens"] == 40  # the 1-hour share of the writes
    assert event["output_tokens"] == output
    assert event["model"] == MODEL
    assert event["provider"] == "anthropic"


def test_message_is_recorded_with_cache_tokens_normalised(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(message())
    with instrumented.task("reply") as task:
        result = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert isinstance(result, anthropic.types.Message)
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert_cached_usage(event, output=6)
    assert event["details"]["service_tier"] == "standard"
    assert event["cost_confidence"] == "computed"
    expected = instrumented.pricing.get_cost(
        MODEL, 2112, 6, 2000, 100, provider="anthropic", cache_write_1h_tokens=40
    ).cost_usd
    assert Decimal(event["cost_usd"]) == expected > 0


def test_raw_event_stream_merges_start_and_delta_usage(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(events_of(["Dear ", "customer"]))
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    event = one_event()
    assert_cached_usage(event, output=15)  # message_delta totals overwrite message_start
    assert event["details"]["stream"] is True
    assert event["cost_confidence"] == "computed"


def test_stream_helper_bypassing_create_is_recorded(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(events_of(["Dear ", "customer"]))
    with (
        instrumented.task("helper") as task,
        client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Dear customer"
    assert final.usage.output_tokens == 15
    event = one_event()
    assert event["task_id"] == str(task.task_id)
    assert_cached_usage(event, output=15)
    assert event["details"]["operation"] == "stream"


def test_stream_helper_left_early_records_input_and_estimates_output(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, events: Any
) -> None:
    fake_api.reply_sse(events_of(["one ", "two ", "three"], final=False))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        for text in stream.text_stream:
            assert text == "one "
            break
        assert events() == []
    (event,) = events()
    assert event["input_tokens"] == 2112
    assert event["cost_confidence"] == "estimated"
    assert event["details"]["stream_completed"] is False


def test_beta_messages_create_and_stream(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(message())
    fake_api.reply_sse(events_of(["ok"]))
    client.beta.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    with client.beta.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream:
        stream.until_done()
    plain, streamed = events()
    assert_cached_usage(plain, output=6)
    assert_cached_usage(streamed, output=15)


async def test_async_create_and_stream_helper(
    instrumented: dexcost.CostTracker,
    aclient: anthropic.AsyncAnthropic,
    fake_api: Any,
    events: Any,
) -> None:
    fake_api.reply_json(message())
    fake_api.reply_sse(events_of(["a", "b"]))
    fake_api.reply_sse(events_of(["c"]))
    async with instrumented.task("async") as task:
        await aclient.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        async with aclient.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as s:
            assert [t async for t in s.text_stream] == ["a", "b"]
        raw = await aclient.messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES, stream=True
        )
        assert [e.type async for e in raw][-1] == "message_stop"
    recorded = events()
    assert len(recorded) == 3
    assert {e["task_id"] for e in recorded} == {str(task.task_id)}
    assert [e["output_tokens"] for e in recorded] == [6, 15, 15]


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (529, anthropic.InternalServerError, "overloaded"),
        (429, anthropic.RateLimitError, "rate_limit"),
    ],
)
def test_errors_are_recorded_and_propagate(
    instrumented: dexcost.CostTracker,
    client: anthropic.Anthropic,
    fake_api: Any,
    one_event: Any,
    status: int,
    error: type[Exception],
    error_type: str,
) -> None:
    fake_api.reply_json(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        status=status,
    )
    with pytest.raises(error):
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    event = one_event()
    assert (event["error_type"], Decimal(event["cost_usd"])) == (error_type, 0)


def test_stream_helper_error_on_enter_is_recorded(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json({"type": "error", "error": {"type": "rate_limit_error"}}, status=429)
    with pytest.raises(anthropic.RateLimitError):  # noqa: SIM117
        with client.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES):
            pass
    assert one_event()["error_type"] == "rate_limit"


def test_with_raw_response_stream_is_tracked(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(events_of(["x"]))
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, stream=True
    )
    assert [e.type for e in raw.parse()][-1] == "message_stop"
    assert_cached_usage(one_event(), output=15)


def test_with_streaming_response_is_recorded_when_the_caller_parses(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(message())
    with (
        instrumented.task("streamed") as task,
        client.messages.with_streaming_response.create(
            model=MODEL, max_tokens=10, messages=MESSAGES
        ) as response,
    ):
        assert events() == []  # the body is the caller's: nothing read yet
        parsed = response.parse()
        assert isinstance(parsed, anthropic.types.Message)
        assert parsed is response.parse()
    [event] = events()
    assert event["task_id"] == str(task.task_id)
    assert_cached_usage(event, output=6)


def test_with_streaming_response_event_stream_is_tracked(
    instrumented: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_sse(events_of(["Dear ", "customer"]))
    with client.beta.messages.with_streaming_response.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, stream=True
    ) as response:
        assert [e.type for e in response.parse()][-1] == "message_stop"
    event = one_event()
    assert_cached_usage(event, output=15)
    assert event["details"]["stream"] is True


async def test_async_with_streaming_response(
    instrumented: dexcost.CostTracker, aclient: anthropic.AsyncAnthropic, fake_api: Any, events: Any
) -> None:
    fake_api.reply_json(message())
    fake_api.reply_sse(events_of(["x"]))
    async with aclient.messages.with_streaming_response.create(
        model=MODEL, max_tokens=10, messages=MESSAGES
    ) as response:
        assert (await response.parse()).usage.output_tokens == 6
    async with aclient.messages.with_streaming_response.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, stream=True
    ) as response:
        assert [e.type async for e in await response.parse()][-1] == "message_stop"
    plain, streamed = events()
    assert_cached_usage(plain, output=6)
    assert_cached_usage(streamed, output=15)


def test_uninstrument_restores_every_patched_method(
    tracker: dexcost.CostTracker, client: anthropic.Anthropic, fake_api: Any, events: Any
) -> None:
    targets = [
        (cls, name)
        for module in (MESSAGES_MODULE, BETA_MODULE)
        for cls in (module.Messages, module.AsyncMessages)
        for name in ("create", "parse", "stream")
    ]
    originals = [vars(cls)[name] for cls, name in targets]
    instrument_anthropic(tracker)
    assert all(vars(cls)[name] is not o for (cls, name), o in zip(targets, originals, strict=False))
    uninstrument_anthropic()
    assert all(vars(cls)[name] is o for (cls, name), o in zip(targets, originals, strict=False))
    fake_api.reply_sse(events_of(["x"]))
    with client.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream:
        stream.until_done()
    assert events() == []


def test_tracked_anthropic_client(
    tracker: dexcost.CostTracker, fake_api: Any, one_event: Any
) -> None:
    fake_api.reply_json(message())
    with TrackedAnthropic(api_key="k", base_url=fake_api.url, tracker=tracker) as client:
        assert isinstance(client, anthropic.Anthropic)
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert_cached_usage(one_event(), output=6)
