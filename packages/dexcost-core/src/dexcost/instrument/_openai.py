"""OpenAI: Chat Completions (incl. ``parse`` and the ``.stream()`` helper), Responses,
Embeddings and legacy Completions, sync and async, streamed or not.

Patched at class level, so every client (``OpenAI``, ``AzureOpenAI``, clients created
before instrumenting, ``client.beta.chat.completions``) is covered. The ``.stream()``
helpers call ``create`` and so come through it; ``parse`` posts directly and is patched
on its own. Works with openai 1.x-3.x (the resource paths are the same).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import TYPE_CHECKING, Any

from . import _sdk_retries, _stainless_retries
from ._base import CallHandler, Instrumentor, async_wrapper, sync_wrapper
from ._record import (
    Usage,
    as_int,
    estimate_tokens,
    field,
    record_failure,
    record_llm,
    text_chars,
)
from ._stainless import forwarding, handle_raw, raw_mode
from ._stream import StreamObserver, TrackedAsyncStream, TrackedStream
from ._tracked_clients import tracked_types, tracker_of_client

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["OpenAIInstrumentor"]

_DEFAULT_HOST = "api.openai.com"
_perf_ns = time.perf_counter_ns

# Filled in at instrument time (never at import: importing dexcost must not import openai).
_stream_types: tuple[type, ...] = ()
_async_stream_type: type | None = None
# The SDK streams' ``__iter__`` / ``__aiter__`` when they only forward ``_iterator``.
_forward_iter: Any = None
_forward_aiter: Any = None


def _chat_usage(u: Any) -> Usage:
    if type(u) is dict:
        return _dict_usage(u, "prompt_tokens", "completion_tokens", "prompt_tokens_details")
    prompt = getattr(u, "prompt_tokens_details", None)
    completion = getattr(u, "completion_tokens_details", None)
    return Usage(
        u.prompt_tokens or 0,
        getattr(u, "completion_tokens", None) or 0,  # embeddings have none
        cached_tokens=0 if prompt is None else prompt.cached_tokens or 0,
        cache_creation_tokens=0
        if prompt is None
        else as_int(getattr(prompt, "cache_write_tokens", None)),  # openai >= 2.x
        reasoning_tokens=0 if completion is None else completion.reasoning_tokens or 0,
    )


def _responses_usage(u: Any) -> Usage:
    if type(u) is dict:
        return _dict_usage(u, "input_tokens", "output_tokens", "input_tokens_details")
    inp = getattr(u, "input_tokens_details", None)
    out = getattr(u, "output_tokens_details", None)
    return Usage(
        u.input_tokens or 0,
        u.output_tokens or 0,
        cached_tokens=0 if inp is None else inp.cached_tokens or 0,
        cache_creation_tokens=0
        if inp is None
        else as_int(getattr(inp, "cache_write_tokens", None)),
        reasoning_tokens=0 if out is None else out.reasoning_tokens or 0,
    )


def _dict_usage(u: dict[str, Any], inp: str, out: str, details: str) -> Usage:
    """Usage given as a plain dict (raw JSON from a compatible server)."""
    prompt = field(u, details)
    output = field(u, "completion_tokens_details") or field(u, "output_tokens_details")
    return Usage(
        as_int(u.get(inp)),
        as_int(u.get(out)),
        cached_tokens=as_int(field(prompt, "cached_tokens")),
        cache_creation_tokens=as_int(field(prompt, "cache_write_tokens")),
        reasoning_tokens=as_int(field(output, "reasoning_tokens")),
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


def _asks_usage(kwargs: dict[str, Any]) -> bool:
    options = kwargs.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# client -> (the instance attribute behind its ``base_url``, that URL, provider, host)
_places: weakref.WeakKeyDictionary[Any, tuple[str | None, Any, str, str | None]] = (
    weakref.WeakKeyDictionary()
)


def _where(instance: Any) -> tuple[str, str | None]:
    """The provider name and, when it is not OpenAI's own API, the host called.

    Cached per client and checked against the client's URL on every call (it can be
    reassigned). The check reads the instance attribute the ``base_url`` property
    returns: openai 3.x's property imports a module on every read, a cost per call.
    """
    client: Any = getattr(instance, "_client", None)
    try:
        name, url, provider, host = _places[client]
        current = client.__dict__.get(name) if name is not None else client.base_url
        if current is url:
            return provider, host
    except (KeyError, TypeError, AttributeError):
        pass
    base_url = getattr(client, "base_url", None)
    provider = "azure" if "Azure" in type(client).__name__ else "openai"
    host = getattr(base_url, "host", None)
    if not isinstance(host, str) or host == _DEFAULT_HOST:
        host = None
    with contextlib.suppress(TypeError):  # not weak-referenceable: just not cached
        _places[client] = (_attribute_holding(client, base_url), base_url, provider, host)
    return provider, host


def _attribute_holding(client: Any, base_url: Any) -> str | None:
    """The ``*base_url`` instance attribute that is ``base_url`` (``_base_url`` in openai
    1.x-2.x, ``_configured_base_url`` in 3.x), or None: read the property then."""
    if base_url is None:
        return None
    for name, value in getattr(client, "__dict__", {}).items():
        if value is base_url and name.endswith("base_url"):
            return str(name)
    return None


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
        mode = raw_mode(kwargs) if "extra_headers" in kwargs else None
        if mode is not None:
            return handle_raw(
                result,
                mode,
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
        latency = (_perf_ns() - started_ns) // 1_000_000  # elapsed_ms(), a frame less
        record_llm(tracker, provider, model, usage, latency, details)

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
        observer_cls = self.observer
        if observer_cls is _ChatStream and not _asks_usage(kwargs):
            observer_cls = _ChatStreamEstimating
        observer = observer_cls(self, tracker, instance, kwargs, started_ns)
        cls: Any = type(stream)
        if _async_stream_type is not None and issubclass(cls, _async_stream_type):
            source = stream._iterator if cls.__aiter__ is _forward_aiter else None
            return TrackedAsyncStream(stream, observer, source=source)
        source = stream._iterator if cls.__iter__ is _forward_iter else None
        return TrackedStream(stream, observer, source=source)

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

    __slots__ = ("carrier", "chars", "handler", "instance", "kwargs", "tracker", "usage")

    #: True when the usage comes in the last item (read there at the end, not per item).
    usage_in_last = False

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
        self.carrier: Any = None  # what carries model / id / service tier (else: last item)
        self.chars = 0

    def estimate(self) -> Usage:
        """Usage estimated from what was read (no usage came)."""
        return _estimated(self.kwargs, self.chars)

    def record(self) -> None:
        # As cheap as recording a whole response: the same reads, plus the stream's facts.
        latency = self.latency_ms()
        handler, kwargs, last = self.handler, self.kwargs, self.last
        provider, host = _where(self.instance)
        usage_obj = getattr(last, "usage", None) if self.usage_in_last else self.usage
        usage = self.estimate() if usage_obj is None else handler.read_usage(usage_obj)
        details = _details(handler.operation, host, kwargs.get("model"))
        details["stream"] = True
        if not self.completed:
            details["stream_completed"] = False
        ttft = self.time_to_first_item_ms()
        if ttft is not None:
            details["time_to_first_token_ms"] = ttft
        carrier = last if self.carrier is None else self.carrier
        _add_response_fields(details, carrier)
        model = getattr(carrier, "model", None) or kwargs.get("model")
        record_llm(self.tracker, provider, model, usage, latency, details, error=self.error)


class _ChatStream(_Stream):
    """Chat / legacy completion chunks, ``include_usage`` asked: usage in the last chunk.

    Nothing is looked at per chunk; a stream cut before its usage chunk is estimated at
    a token per content chunk (what OpenAI sends).
    """

    __slots__ = ()
    per_item = False
    usage_in_last = True

    def estimate(self) -> Usage:
        usage = _estimated(self.kwargs, 0)
        usage.output_tokens = max(self.items - 1, 0)  # minus the opening role chunk
        return usage


class _ChatStreamEstimating(_Stream):
    """Chat chunks without ``include_usage``: count the text to estimate the output."""

    __slots__ = ()

    def observe(self, chunk: Any) -> None:
        usage = chunk.usage
        if usage is not None:  # some compatible servers send it anyway
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
            self.carrier = response
            if response.usage is not None:
                self.usage = response.usage
        elif event.type == "response.output_text.delta":
            self.chars += len(event.delta)


_OPERATIONS = (
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/completions", "completions"),
)


def _describe_attempt(instance: Any, options: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Provider, model and details of a request attempt the SDK retries."""
    provider, host = _where(instance)
    body = getattr(options, "json_data", None)
    model = body.get("model") if isinstance(body, dict) else None
    url = str(getattr(options, "url", ""))
    operation = next((op for path, op in _OPERATIONS if url.endswith(path)), "call")
    return provider, model if isinstance(model, str) else None, _details(operation, host, model)


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
        global _stream_types, _async_stream_type, _forward_iter, _forward_aiter
        from openai import _streaming

        _stream_types = (_streaming.Stream, _streaming.AsyncStream)
        _async_stream_type = _streaming.AsyncStream
        _forward_iter = forwarding(_streaming.Stream.__iter__)
        _forward_aiter = forwarding(_streaming.AsyncStream.__aiter__, is_async=True)

        retry_aware = _sdk_retries.retry_aware
        chat = retry_aware(_Handler("chat", _chat_usage, _ChatStream))
        responses = retry_aware(_Handler("responses", _responses_usage, _ResponsesStream))
        embeddings = retry_aware(_Handler("embeddings", _chat_usage, None))
        completions = retry_aware(_Handler("completions", _chat_usage, _ChatStream))
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
        _stainless_retries.install(self, "openai._base_client", _describe_attempt)
