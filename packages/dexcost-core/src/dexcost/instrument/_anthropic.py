"""Anthropic: Messages ``create`` / ``parse`` / ``stream``, regular and beta, sync and async.

``messages.stream(...)`` posts directly instead of calling ``create``, so it is patched
on its own: the returned stream manager is proxied, and when its ``with`` block is
entered the raw event stream under the ``MessageStream`` is tracked. Beta Messages is a
separate class (pydantic-ai and CrewAI use it) and is patched the same way. Anthropic
reports input tokens without the cache: here they are normalised to include it.
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Any

from dexcost import _guard, _scope

from . import _sdk_retries, _stainless_retries
from ._base import CallHandler, Instrumentor, async_wrapper, sync_wrapper
from ._proxy import ObjectProxy
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

__all__ = ["AnthropicInstrumentor"]

_stream_types: tuple[type, ...] = ()
_async_stream_type: type | None = None
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "server_tool_use",
    "service_tier",
)


def _usage(u: Any, delta: Any = None) -> tuple[Usage, dict[str, Any]]:
    """Normalised usage from a Message's usage, overwritten by a stream's message_delta.

    Delta counts are cumulative totals: each non-None field replaces the start value.
    """
    values = {name: field(u, name) for name in _USAGE_FIELDS}
    if delta is not None:
        for name in _USAGE_FIELDS:
            value = field(delta, name)
            if value is not None:
                values[name] = value
    read = as_int(values["cache_read_input_tokens"])
    written = as_int(values["cache_creation_input_tokens"])
    usage = Usage(
        as_int(values["input_tokens"]) + read + written,
        as_int(values["output_tokens"]),
        cached_tokens=read,
        cache_creation_tokens=written,
        cache_write_1h_tokens=as_int(field(values["cache_creation"], "ephemeral_1h_input_tokens")),
    )
    extra: dict[str, Any] = {}
    if isinstance(values["service_tier"], str):
        extra["service_tier"] = values["service_tier"]
    searches = as_int(field(values["server_tool_use"], "web_search_requests"))
    if searches:
        extra["web_search_requests"] = searches
    return usage, extra


def _estimated(kwargs: dict[str, Any], output_chars: int) -> Usage:
    chars = text_chars(kwargs.get("messages")) + text_chars(kwargs.get("system"))
    return Usage(estimate_tokens(chars), estimate_tokens(output_chars), estimated=True)


def _provider(instance: Any) -> str:
    name = type(getattr(instance, "_client", None)).__name__
    if "Bedrock" in name:
        return "bedrock"
    if "Vertex" in name:
        return "vertex_ai"
    return "anthropic"


def _details(operation: str, kwargs: dict[str, Any], stream: bool) -> dict[str, Any]:
    details: dict[str, Any] = {"operation": operation}
    if stream:
        details["stream"] = True
    model = kwargs.get("model")
    if isinstance(model, str):
        details["request_model"] = model
    return details


def _record_message(
    tracker: CostTracker,
    instance: Any,
    kwargs: dict[str, Any],
    message: Any,
    started_ns: int,
    operation: str,
) -> None:
    details = _details(operation, kwargs, False)
    usage_obj = getattr(message, "usage", None)
    if usage_obj is not None:
        usage, extra = _usage(usage_obj)
        details.update(extra)
    else:
        chars = sum(text_chars(getattr(b, "text", None)) for b in message.content or ())
        usage = _estimated(kwargs, chars)
    if isinstance(getattr(message, "id", None), str):
        details["response_id"] = message.id
    model = getattr(message, "model", None) or kwargs.get("model")
    record_llm(tracker, _provider(instance), model, usage, elapsed_ms(started_ns), details)


class _EventStream(StreamObserver):
    """Raw Messages events: message_start has input usage, message_delta the totals."""

    __slots__ = ("chars", "delta", "instance", "kwargs", "message", "operation", "tracker")

    def __init__(
        self,
        tracker: CostTracker,
        instance: Any,
        kwargs: dict[str, Any],
        started_ns: int,
        operation: str,
    ) -> None:
        super().__init__(started_ns)
        self.tracker = tracker
        self.instance = instance
        self.kwargs = kwargs
        self.operation = operation
        self.message: Any = None
        self.delta: Any = None
        self.chars = 0

    def observe(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            text = getattr(event.delta, "text", None)
            if text:
                self.chars += len(text)
        elif kind == "message_delta":
            self.delta = event.usage
        elif kind == "message_start":
            self.message = event.message

    def record(self) -> None:
        kwargs, message = self.kwargs, self.message
        details = _details(self.operation, kwargs, True)
        usage_obj = getattr(message, "usage", None)
        if usage_obj is not None:
            usage, extra = _usage(usage_obj, self.delta)
            details.update(extra)
            if self.delta is None:  # cut off before the totals: output is a guess
                usage.output_tokens = max(usage.output_tokens, estimate_tokens(self.chars))
                usage.estimated = True
        else:
            usage = _estimated(kwargs, self.chars)
        if not self.completed:
            details["stream_completed"] = False
        ttft = self.time_to_first_item_ms()
        if ttft is not None:
            details["time_to_first_token_ms"] = ttft
        if isinstance(getattr(message, "id", None), str):
            details["response_id"] = message.id
        model = getattr(message, "model", None) or kwargs.get("model")
        record_llm(
            self.tracker,
            _provider(self.instance),
            model,
            usage,
            self.latency_ms(),
            details,
            error=self.error,
        )


def _track(stream: Any, observer: _EventStream) -> Any:
    if _async_stream_type is not None and isinstance(stream, _async_stream_type):
        return TrackedAsyncStream(stream, observer)
    return TrackedStream(stream, observer)


class _Handler(CallHandler):
    """``create`` and ``parse``: a Message, or a raw event stream when ``stream=True``."""

    def __init__(self, operation: str) -> None:
        self.operation = operation  # type: ignore[misc]

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        op = self.operation

        def wrap(stream: Any) -> Any:
            return _track(stream, _EventStream(tracker, instance, kwargs, started_ns, op))

        def record(message: Any) -> None:
            _record_message(tracker, instance, kwargs, message, started_ns, op)

        if isinstance(result, _stream_types):
            return wrap(result)
        mode = raw_mode(kwargs)
        if mode is not None:
            return handle_raw(result, mode, _stream_types, wrap, record)
        record(result)
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
        details = _details(self.operation, kwargs, bool(kwargs.get("stream")))
        record_failure(tracker, _provider(instance), kwargs.get("model"), exc, started_ns, details)


class _StreamManager(ObjectProxy):
    """The manager ``messages.stream()`` returns: the request is sent on ``with`` entry."""

    def __init__(
        self, manager: Any, inst: AnthropicInstrumentor, instance: Any, kwargs: dict[str, Any]
    ) -> None:
        super().__init__(manager)
        self._self_inst = inst
        self._self_instance = instance
        self._self_kwargs = kwargs

    def _dexcost_begin(self) -> tuple[Any, Any, int]:
        tracker = self._self_inst.tracker_for(self._self_instance)
        token = _scope.claim("anthropic") if tracker is not None else None
        return tracker, token, time.perf_counter_ns()

    def _dexcost_attach(self, tracker: Any, message_stream: Any, started_ns: int) -> None:
        raw = message_stream._raw_stream
        observer = _EventStream(
            _sdk_retries.take(tracker), self._self_instance, self._self_kwargs, started_ns, "stream"
        )
        message_stream._raw_stream = _track(raw, observer)

    def _dexcost_failed(self, tracker: Any, exc: BaseException, started_ns: int) -> None:
        kwargs = self._self_kwargs
        details = _details("stream", kwargs, True)
        provider = _provider(self._self_instance)
        tracker = _sdk_retries.take(tracker)
        record_failure(tracker, provider, kwargs.get("model"), exc, started_ns, details)

    def __enter__(self) -> Any:
        tracker, token, started = self._dexcost_begin()
        if token is None:
            return self.__wrapped__.__enter__()
        try:
            stream = self.__wrapped__.__enter__()
        except Exception as exc:
            _guard.call(
                "instrument.anthropic.stream", None, self._dexcost_failed, tracker, exc, started
            )
            raise
        finally:
            _scope.release(token)
        _guard.call(
            "instrument.anthropic.stream", None, self._dexcost_attach, tracker, stream, started
        )
        return stream

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        tracker, token, started = self._dexcost_begin()
        if token is None:
            return await self.__wrapped__.__aenter__()
        try:
            stream = await self.__wrapped__.__aenter__()
        except Exception as exc:
            _guard.call(
                "instrument.anthropic.stream", None, self._dexcost_failed, tracker, exc, started
            )
            raise
        finally:
            _scope.release(token)
        _guard.call(
            "instrument.anthropic.stream", None, self._dexcost_attach, tracker, stream, started
        )
        return stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


def _describe_attempt(instance: Any, options: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Provider, model and details of a request attempt the SDK retries."""
    body = getattr(options, "json_data", None)
    if not isinstance(body, dict):
        body = {}
    model = body.get("model")
    details = _details("messages", body, bool(body.get("stream")))
    return _provider(instance), model if isinstance(model, str) else None, details


_MESSAGES = "anthropic.resources.messages.messages"
_BETA = "anthropic.resources.beta.messages.messages"


class AnthropicInstrumentor(Instrumentor):
    """Records every Claude call made through the ``anthropic`` SDK."""

    name = "anthropic"
    import_name = "anthropic"
    pip_name = "anthropic"

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
        _streaming = importlib.import_module("anthropic._streaming")

        _stream_types = (_streaming.Stream, _streaming.AsyncStream)
        _async_stream_type = _streaming.AsyncStream

        handler = _sdk_retries.retry_aware(_Handler("messages"))
        for module in (_MESSAGES, _BETA):
            for method in ("create", "parse"):
                self._wrap(module, f"Messages.{method}", sync_wrapper(self, handler))
                self._wrap(module, f"AsyncMessages.{method}", async_wrapper(self, handler))
            self._wrap(module, "Messages.stream", self._stream_wrapper)
            self._wrap(module, "AsyncMessages.stream", self._stream_wrapper)
        _stainless_retries.install(self, "anthropic._base_client", _describe_attempt)

    def _stream_wrapper(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        if self.tracker_for(instance) is None:
            return manager
        return _guard.call(
            "instrument.anthropic.stream", manager, _StreamManager, manager, self, instance, kwargs
        )
