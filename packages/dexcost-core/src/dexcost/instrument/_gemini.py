"""Google Gen AI (``google-genai``): generate_content (streamed or not) and embed_content.

The patched methods are the per-request ``Models._generate_content`` and
``_generate_content_stream`` (and their ``AsyncModels`` twins), not the public
``generate_content``: automatic function calling and automatic continuation make several
requests per public call, and each one is billed. ``client.chats`` goes through them
too. ``embed_content`` sends one request and is patched as it is. Pinned and tested
against google-genai 1.x-3.x, where these names are stable. With ``HttpRetryOptions``
the SDK retries a request itself; each attempt it retried is recorded too
(:mod:`._gemini_retries`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _gemini_retries, _sdk_retries
from ._base import CallHandler, Instrumentor, ResultHandler, async_wrapper, sync_wrapper
from ._record import (
    Usage,
    as_int,
    elapsed_ms,
    estimate_tokens,
    record_failure,
    record_llm,
    text_chars,
)
from ._stream import StreamObserver, TrackedAsyncStream, TrackedStream

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["GeminiInstrumentor"]


def _usage(meta: Any) -> Usage:
    """Gemini counts thoughts and tool-use prompts apart; fold them into output / input."""
    thoughts = as_int(getattr(meta, "thoughts_token_count", None))
    return Usage(
        as_int(getattr(meta, "prompt_token_count", None))
        + as_int(getattr(meta, "tool_use_prompt_token_count", None)),
        as_int(getattr(meta, "candidates_token_count", None)) + thoughts,
        cached_tokens=as_int(getattr(meta, "cached_content_token_count", None)),
        reasoning_tokens=thoughts,
    )


def _model_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.rsplit("/", 1)[-1]  # "models/gemini-2.5-flash", ".../publishers/google/models/x"


def _provider(instance: Any) -> str:
    return _provider_of(getattr(instance, "_api_client", None))


def _provider_of(api_client: Any) -> str:
    return "vertex_ai" if getattr(api_client, "vertexai", False) else "gemini"


def _response_text_chars(response: Any) -> int:
    total = 0
    for candidate in getattr(response, "candidates", None) or ():
        content = getattr(candidate, "content", None)
        total += text_chars(getattr(content, "parts", None))
    return total


def _record(
    tracker: CostTracker,
    instance: Any,
    kwargs: dict[str, Any],
    response: Any,
    output_chars: int,
    latency_ms: int,
    *,
    stream: bool,
    completed: bool = True,
    error: BaseException | None = None,
    ttft_ms: int | None = None,
) -> None:
    meta = getattr(response, "usage_metadata", None)
    if meta is not None:
        usage = _usage(meta)
    else:
        chars = text_chars(kwargs.get("contents"))
        usage = Usage(estimate_tokens(chars), estimate_tokens(output_chars), estimated=True)
    details: dict[str, Any] = {"operation": "generate_content"}
    if stream:
        details["stream"] = True
        if not completed:
            details["stream_completed"] = False
        if ttft_ms is not None:
            details["time_to_first_token_ms"] = ttft_ms
    request_model = _model_name(kwargs.get("model"))
    if request_model is not None:
        details["request_model"] = request_model
    response_id = getattr(response, "response_id", None)
    if isinstance(response_id, str):
        details["response_id"] = response_id
    tier = getattr(meta, "traffic_type", None)
    if tier is not None:
        details["traffic_type"] = str(getattr(tier, "value", tier))
    model = _model_name(getattr(response, "model_version", None)) or request_model
    record_llm(tracker, _provider(instance), model, usage, latency_ms, details, error=error)


class _Chunks(StreamObserver):
    """Each chunk carries the cumulative usage so far: the last one has the totals."""

    __slots__ = ("chars", "instance", "kwargs", "tracker")

    def __init__(
        self, tracker: CostTracker, instance: Any, kwargs: dict[str, Any], started_ns: int
    ) -> None:
        super().__init__(started_ns)
        self.tracker = tracker
        self.instance = instance
        self.kwargs = kwargs
        self.chars = 0

    def sent(self) -> None:
        self.tracker = _sdk_retries.take(self.tracker)  # the sync stream's request retried

    def observe(self, chunk: Any) -> None:
        if chunk.usage_metadata is None:
            self.chars += _response_text_chars(chunk)

    def record(self) -> None:
        if self.last is None and self.error is not None:
            details = {"operation": "generate_content", "stream": True}
            model = _model_name(self.kwargs.get("model"))
            record_failure(
                self.tracker, _provider(self.instance), model, self.error, self.started_ns, details
            )
            return
        _record(
            self.tracker,
            self.instance,
            self.kwargs,
            self.last,
            self.chars,
            self.latency_ms(),
            stream=True,
            completed=self.completed,
            error=self.error,
            ttft_ms=self.time_to_first_item_ms(),
        )


class _Handler(CallHandler):
    operation = "generate_content"

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        if self.stream:
            observer = _Chunks(tracker, instance, kwargs, started_ns)
            if hasattr(result, "__anext__"):
                return TrackedAsyncStream(result, observer)
            # The sync stream is a generator that sends its request on the first read.
            return TrackedStream(result, observer, hold="gemini", lazy=True)
        chars = _response_text_chars(result) if result.usage_metadata is None else 0
        _record(tracker, instance, kwargs, result, chars, elapsed_ms(started_ns), stream=False)
        return result

    def on_error(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started_ns: int,
    ) -> None:
        details: dict[str, Any] = {"operation": "generate_content"}
        if self.stream:
            details["stream"] = True
        model = _model_name(kwargs.get("model"))
        record_failure(tracker, _provider(instance), model, exc, started_ns, details)


class _Embed(ResultHandler):
    """``embed_content``: ``usage_metadata``, else Vertex's per-embedding token counts.

    The Gemini API's batchEmbedContents reports no usage: the tokens are then estimated.
    """

    operation = "embed_content"

    def provider(self, instance: Any) -> str:
        return _provider(instance)

    def model(self, kwargs: dict[str, Any]) -> str | None:
        return _model_name(kwargs.get("model"))

    def usage(self, kwargs: dict[str, Any], result: Any, details: dict[str, Any]) -> Usage:
        chars = getattr(getattr(result, "metadata", None), "billable_character_count", None)
        if chars is not None:
            details["billable_character_count"] = as_int(chars)
        meta = getattr(result, "usage_metadata", None)
        prompt = getattr(meta, "prompt_token_count", None)
        if prompt is not None:
            cached = as_int(getattr(meta, "cached_content_token_count", None))
            return Usage(as_int(prompt), cached_tokens=cached)
        counts = [
            getattr(getattr(e, "statistics", None), "token_count", None)
            for e in getattr(result, "embeddings", None) or ()
        ]
        if counts and None not in counts:
            return Usage(sum(as_int(c) for c in counts))
        return Usage(estimate_tokens(text_chars(kwargs.get("contents"))), estimated=True)


_STREAMED = {"generateContent": False, "streamGenerateContent": True}


def _describe_attempt(api_client: Any, request: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Provider, model and details of a request attempt the SDK retries."""
    # ".../models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    target = str(getattr(request, "url", "")).split("?", 1)[0].rsplit("/", 1)[-1]
    model, _, method = target.partition(":")
    stream = _STREAMED.get(method)
    details: dict[str, Any] = {
        "operation": "embed_content" if stream is None else "generate_content"
    }
    if stream:
        details["stream"] = True
    return _provider_of(api_client), _model_name(model), details


class GeminiInstrumentor(Instrumentor):
    """Records every Gemini call made through the ``google-genai`` SDK."""

    name = "gemini"
    import_name = "google.genai"
    pip_name = "google-genai"

    def _install(self) -> None:
        module = "google.genai.models"
        retry_aware = _sdk_retries.retry_aware
        plain, stream = retry_aware(_Handler(stream=False)), retry_aware(_Handler(stream=True))
        self._wrap(module, "Models._generate_content", sync_wrapper(self, plain))
        self._wrap(module, "Models._generate_content_stream", sync_wrapper(self, stream))
        self._wrap(module, "AsyncModels._generate_content", async_wrapper(self, plain))
        self._wrap(module, "AsyncModels._generate_content_stream", async_wrapper(self, stream))
        embed = retry_aware(_Embed())
        self._wrap(module, "Models.embed_content", sync_wrapper(self, embed))
        self._wrap(module, "AsyncModels.embed_content", async_wrapper(self, embed))
        _gemini_retries.install(self, _describe_attempt)
