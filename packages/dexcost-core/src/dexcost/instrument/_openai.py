"""OpenAI: Chat Completions (incl. ``parse`` and the ``.stream()`` helper), Responses,
Embeddings and legacy Completions, sync and async, streamed or not.

Patched at class level, so every client (``OpenAI``, ``AzureOpenAI``, clients created
before instrumenting, ``client.beta.chat.completions``) is covered. The ``.stream()``
helpers call ``create`` and so come through it; ``parse`` posts directly and is patched
on its own. Works with openai 1.x-3.x (the resource paths are the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import CallHandler, Instrumentor, async_wrapper, sync_wrapper
from ._record import (
    Usage,
    as_int,
    elapsed_ms,
    estimate_tokens,
    field,
    record_failure,
    record_llm,
    text_chars,
)
from ._stainless import handle_raw, raw_mode
from ._stream import StreamObserver, TrackedAsyncStream, TrackedStream
from ._tracked_clients import tracked_types, tracker_of_client

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["OpenAIInstrumentor"]

_DEFAULT_HOST = "api.openai.com"

# Filled in at instrument time (never at import: importing dexcost must not import openai).
_stream_types: tuple[type, ...] = ()
_async_stream_type: type | None = None


def _chat_usage(u: Any) -> Usage:
    prompt = field(u, "prompt_tokens_details")
    completion = field(u, "completion_tokens_details")
    return Usage(
        as_int(field(u, "prompt_tokens")),
        as_int(field(u, "completion_tokens")),
        cached_tokens=as_int(field(prompt, "cached_tokens")),
        cache_creation_tokens=as_int(field(prompt, "cache_write_tokens")),
        reasoning_tokens=as_int(field(completion, "reasoning_tokens")),
    )


def _responses_usage(u: Any) -> Usage:
    inp = field(u, "input_tokens_details")
    out = field(u, "output_tokens_details")
    return Usage(
        as_int(field(u, "input_tokens")),
        as_int(field(u, "output_tokens")),
        cached_tokens=as_int(field(inp, "cached_tokens")),
        cache_creation_tokens=as_int(field(inp, "cache_write_tokens")),
        reasoning_tokens=as_int(field(out, "reasoning_tokens")),
    )


def _output_chars(result: Any) -> int:
    text = getattr(result, "output_text", None)  # Responses
    if isinstance(text, str):
        return len(text)
    total = 0
    for choice in getattr(result, "choices", None) or ():
        message = getattr(choice, "message", None)
        total += text_chars(getattr(message, "content", None) or getattr(choice, "text", None))
    return total


def _estimated(kwargs: dict[str, Any], output_chars: int) -> Usage:
    request = kwargs.get("messages") or kwargs.get("input") or kwargs.get("prompt")
    chars = text_chars(request) + text_chars(kwargs.get("instructions"))
    return Usage(estimate_tokens(chars), estimate_tokens(output_chars), estimated=True)


def _where(instance: Any) -> tuple[str, str | None]:
    """The provider name and, when it is not OpenAI's own API, the host called."""
    client = getattr(instance, "_client", None)
    provider = "azure" if "Azure" in type(client).__name__ else "openai"
    host = getattr(getattr(client, "base_url", None), "host", None)
    return provider, (host if isinstance(host, str) and host != _DEFAULT_HOST else None)


def _details(operation: str, host: str | None, request_model: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"operation": operation}
    if host is not None:
        details["host"] = host
    if isinstance(request_model, str):
        details["request_model"] = request_model
    return details


class _Handler(CallHandler):
    """One OpenAI method family: how to read its usage from a result or a stream."""

    def __init__(self, operation: str, read_usage: Any, observer: type[_Stream] | None) -> None:
        self.operation = operation  # type: ignore[misc]
        self.read_usage = read_usage
        self.observer = observer

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        if isinstance(result, _stream_types):
            return self._wrap_stream(tracker, instance, kwargs, result, started_ns)
        mode = raw_mode(kwargs)
        if mode == "stream":  # with_streaming_response: the body is the caller's to read
            return result
        if mode is not None:
            return handle_raw(
                result,
                _stream_types,
                lambda stream: self._wrap_stream(tracker, instance, kwargs, stream, started_ns),
                lambda parsed: self.record(tracker, instance, kwargs, parsed, started_ns),
            )
        self.record(tracker, instance, kwargs, result, started_ns)
        return result

    def record(
        self,
        tracker: CostTracker,
        instance: Any,
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> None:
        provider, host = _where(instance)
        usage_obj = getattr(result, "usage", None)
        if usage_obj is not None:
            usage = self.read_usage(usage_obj)
        else:
            usage = _estimated(kwargs, _output_chars(result))
        details = _details(self.operation, host, kwargs.get("model"))
        _add_response_fields(details, result)
        model = getattr(result, "model", None) or kwargs.get("model")
        record_llm(tracker, provider, model, usage, elapsed_ms(started_ns), details)

    def _wrap_stream(
        self,
        tracker: CostTracker,
        instance: Any,
        kwargs: dict[str, Any],
        stream: Any,
        started_ns: int,
    ) -> Any:
        if self.observer is None:
            return stream
        observer = self.observer(self, tracker, instance, kwargs, started_ns)
        if _async_stream_type is not None and isinstance(stream, _async_stream_type):
            return TrackedAsyncStream(stream, observer)
        return TrackedStream(stream, observer)

    def on_error(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started_ns: int,
    ) -> None:
        provider, host = _where(instance)
        details = _details(self.operation, host, None)
        record_failure(tracker, provider, kwargs.get("model"), exc, started_ns, details)


def _add_response_fields(details: dict[str, Any], result: Any) -> None:
    response_id = getattr(result, "id", None)
    if isinstance(response_id, str):
        details["response_id"] = response_id
    tier = getattr(result, "service_tier", None)
    if isinstance(tier, str):
        details["service_tier"] = tier


class _Stream(StreamObserver):
    """Base of the OpenAI stream observers: remembers the call, records at the end."""

    __slots__ = ("chars", "handler", "instance", "kwargs", "last", "tracker", "usage")

    def __init__(
        self,
        handler: _Handler,
        tracker: CostTracker,
        instance: Any,
        kwargs: dict[str, Any],
        started_ns: int,
    ) -> None:
        super().__init__(started_ns)
        self.handler = handler
        self.tracker = tracker
        self.instance = instance
        self.kwargs = kwargs
        self.usage: Any = None
        self.last: Any = None  # the item that carries model / id / service tier
        self.chars = 0

    def record(self) -> None:
        handler, kwargs = self.handler, self.kwargs
        provider, host = _where(self.instance)
        if self.usage is not None:
            usage = handler.read_usage(self.usage)
        else:
            usage = _estimated(kwargs, self.chars)
        details = _details(handler.operation, host, kwargs.get("model"))
        details["stream"] = True
        if not self.completed:
            details["stream_completed"] = False
        ttft = self.time_to_first_item_ms()
        if ttft is not None:
            details["time_to_first_token_ms"] = ttft
        _add_response_fields(details, self.last)
        model = getattr(self.last, "model", None) or kwargs.get("model")
        record_llm(
            self.tracker, provider, model, usage, self.latency_ms(), details, error=self.error
        )


class _ChatStream(_Stream):
    """Chat / legacy completion chunks: usage in the last chunk (``include_usage``)."""

    __slots__ = ()

    def observe(self, chunk: Any) -> None:
        self.last = chunk
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        choices = chunk.choices
        if choices:
            choice = choices[0]
            delta = getattr(choice, "delta", None)
            text = choice.text if delta is None else delta.content
            if text:
                self.chars += len(text)


class _ResponsesStream(_Stream):
    """Responses events: ``response.completed`` (or incomplete/failed) carries usage."""

    __slots__ = ()

    def observe(self, event: Any) -> None:
        response = getattr(event, "response", None)
        if response is not None:
            self.last = response
            if response.usage is not None:
                self.usage = response.usage
        elif event.type == "response.output_text.delta":
            self.chars += len(event.delta)


_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"


class OpenAIInstrumentor(Instrumentor):
    """Records every OpenAI model call made through the ``openai`` SDK."""

    name = "openai"
    import_name = "openai"
    pip_name = "openai"

    def tracker_for(self, instance: Any) -> CostTracker | None:
        """The tracker of a tracked client (TrackedOpenAI...), else the instrumenting one."""
        client = getattr(instance, "_client", None)
        if type(client) in tracked_types:
            tracker = tracker_of_client(client)
            if tracker is not None:
                return tracker
        return self.tracker

    def _install(self) -> None:
        global _stream_types, _async_stream_type
        from openai import _streaming

        _stream_types = (_streaming.Stream, _streaming.AsyncStream)
        _async_stream_type = _streaming.AsyncStream

        chat = _Handler("chat", _chat_usage, _ChatStream)
        responses = _Handler("responses", _responses_usage, _ResponsesStream)
        embeddings = _Handler("embeddings", _chat_usage, None)
        completions = _Handler("completions", _chat_usage, _ChatStream)
        targets = [
            (_CHAT, "Completions", ("create", "parse"), chat),
            (_RESPONSES, "Responses", ("create", "parse"), responses),
            ("openai.resources.embeddings", "Embeddings", ("create",), embeddings),
            ("openai.resources.completions", "Completions", ("create",), completions),
        ]
        for module, cls, methods, handler in targets:
            for method in methods:
                self._wrap(module, f"{cls}.{method}", sync_wrapper(self, handler))
                self._wrap(module, f"Async{cls}.{method}", async_wrapper(self, handler))
