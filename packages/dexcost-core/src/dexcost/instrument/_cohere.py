"""Cohere: chat, chat_stream and embed, API v2 (``ClientV2``, ``client.v2``) and v1, sync and async.

Costs are read from ``billed_units`` (what Cohere charges), not ``tokens`` (which
include prompt-template tokens). Responses carry no model name, so the requested one
is reported. ``chat_stream`` is a generator that sends its request on the first read;
the stream proxy owns the call while reading so HTTP capture stays silent.

v1 ``Client.embed`` splits the texts into batches of 96, sends each through
``BaseCohere.embed`` from a thread pool, where the caller's task and billing scope are not
visible, and merges the responses, summing their billed units. It is recorded as one
call, in the caller's task; its batches hold the scope on their threads so HTTP capture
stays silent, and are not recorded again. ``BaseCohere.embed`` called otherwise (directly,
per batch of ``Client.embed_stream``) is recorded per request. A direct call on a client
from another thread while that client's ``Client.embed`` runs is taken for one of its
batches and not recorded.

The attempts the SDK retries (:mod:`._cohere_retries`) are recorded one event each,
except inside v1 ``Client.embed`` / ``AsyncClient.embed``, whose batches run
concurrently: their retries stay inside the one merged event.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from dexcost import _scope

from . import _cohere_retries, _patch, _sdk_retries
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

__all__ = ["CohereInstrumentor"]


def _usage(usage: Any) -> Usage | None:
    """From v2 ``Usage`` or v1 ``ApiMeta``: billed units, with cache hits."""
    billed = getattr(usage, "billed_units", None)
    if billed is None:
        return None
    return Usage(
        as_int(getattr(billed, "input_tokens", None)),
        as_int(getattr(billed, "output_tokens", None)),
        cached_tokens=as_int(getattr(usage, "cached_tokens", None)),
    )


def _estimated(kwargs: dict[str, Any], output_chars: int) -> Usage:
    chars = text_chars(kwargs.get("messages")) + text_chars(kwargs.get("message"))
    chars += text_chars(kwargs.get("preamble")) + text_chars(kwargs.get("chat_history"))
    return Usage(estimate_tokens(chars), estimate_tokens(output_chars), estimated=True)


def _details(operation: str, stream: bool, response_id: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"operation": operation}
    if stream:
        details["stream"] = True
    if isinstance(response_id, str):
        details["response_id"] = response_id
    return details


def _model(kwargs: dict[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) else None


class _Events(StreamObserver):
    """v2: ``message-end`` carries the usage; v1: ``stream-end`` carries the response."""

    __slots__ = ("chars", "kwargs", "operation", "response_id", "tracker", "usage")

    def __init__(
        self, tracker: CostTracker, kwargs: dict[str, Any], started_ns: int, operation: str
    ) -> None:
        super().__init__(started_ns)
        self.tracker = tracker
        self.kwargs = kwargs
        self.operation = operation
        self.usage: Any = None
        self.response_id: Any = None
        self.chars = 0

    def sent(self) -> None:
        self.tracker = _sdk_retries.take(self.tracker)

    def observe(self, event: Any) -> None:
        kind = getattr(event, "type", None) or getattr(event, "event_type", None)
        if kind == "content-delta":
            text = getattr(
                getattr(getattr(event.delta, "message", None), "content", None), "text", None
            )
            if text:
                self.chars += len(text)
        elif kind == "text-generation":
            self.chars += len(event.text or "")
        elif kind == "message-end":
            self.usage = getattr(event.delta, "usage", None)
        elif kind == "message-start":
            self.response_id = event.id
        elif kind == "stream-end":
            response = event.response
            self.usage = getattr(response, "meta", None)
            self.response_id = getattr(response, "response_id", None)

    def record(self) -> None:
        kwargs = self.kwargs
        if self.first_item_ns is None and self.error is not None:
            details = _details(self.operation, True, None)
            record_failure(
                self.tracker, "cohere", _model(kwargs), self.error, self.started_ns, details
            )
            return
        usage = _usage(self.usage) or _estimated(kwargs, self.chars)
        details = _details(self.operation, True, self.response_id)
        if not self.completed:
            details["stream_completed"] = False
        ttft = self.time_to_first_item_ms()
        if ttft is not None:
            details["time_to_first_token_ms"] = ttft
        record_llm(
            self.tracker,
            "cohere",
            _model(kwargs),
            usage,
            self.latency_ms(),
            details,
            error=self.error,
        )


class _Handler(CallHandler):
    def __init__(self, operation: str, stream: bool) -> None:
        self.operation = operation  # type: ignore[misc]
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
            observer = _Events(tracker, kwargs, started_ns, self.operation)
            if hasattr(result, "__anext__"):
                return TrackedAsyncStream(result, observer, hold="cohere", lazy=True)
            return TrackedStream(result, observer, hold="cohere", lazy=True)
        meta = getattr(result, "usage", None) or getattr(result, "meta", None)
        usage = _usage(meta)
        if usage is None:
            message = getattr(result, "message", None)
            text = getattr(result, "text", None) or getattr(message, "content", None)
            usage = _estimated(kwargs, text_chars(text))
        response_id = getattr(result, "id", None) or getattr(result, "response_id", None)
        details = _details(self.operation, False, response_id)
        record_llm(tracker, "cohere", _model(kwargs), usage, elapsed_ms(started_ns), details)
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
        details = _details(self.operation, self.stream, None)
        record_failure(tracker, "cohere", _model(kwargs), exc, started_ns, details)


class _Embed(ResultHandler):
    """``embed``: billed input tokens (image tokens included, and also kept apart)."""

    def __init__(self, operation: str) -> None:
        self.operation = operation  # type: ignore[misc]

    def provider(self, instance: Any) -> str:
        return "cohere"

    def usage(self, kwargs: dict[str, Any], result: Any, details: dict[str, Any]) -> Usage:
        response_id = getattr(result, "id", None)
        if isinstance(response_id, str):
            details["response_id"] = response_id
        billed = getattr(getattr(result, "meta", None), "billed_units", None)
        if billed is None:
            chars = text_chars(kwargs.get("texts")) + text_chars(kwargs.get("inputs"))
            return Usage(estimate_tokens(chars), estimated=True)
        images = as_int(getattr(billed, "image_tokens", None))
        if images:
            details["image_tokens"] = images
        return Usage(as_int(getattr(billed, "input_tokens", None)) + images)


class _Batching:
    """The clients with a ``Client.embed`` in progress, whose batches run on a pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}

    def outer(self, inst: Instrumentor, record: _patch.WrapperFn) -> _patch.WrapperFn:
        """``Client.embed``: recorded by ``record``, its client marked while it runs."""
        lock, running = self._lock, self._running

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
            if inst.tracker_for(instance) is None:
                return wrapped(*args, **kw)
            key = id(instance)
            with lock:
                running[key] = running.get(key, 0) + 1
            try:
                with _sdk_retries.Unsplit():
                    return record(wrapped, instance, args, kw)
            finally:
                with lock:
                    if running[key] == 1:
                        del running[key]
                    else:
                        running[key] -= 1

        return wrapper

    def inner(self, record: _patch.WrapperFn) -> _patch.WrapperFn:
        """``BaseCohere.embed``: silent for a batch on a pool thread, else ``record``."""
        running = self._running

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
            if id(instance) in running and _scope.current_billing_layer() is None:
                token = _scope.hold("cohere")  # the Client.embed call records the merged result
                try:
                    with _sdk_retries.Unsplit():
                        return wrapped(*args, **kw)
                finally:
                    _scope.release(token)
            return record(wrapped, instance, args, kw)

        return wrapper


def _unsplit_async(record: _patch.WrapperFn) -> _patch.WrapperFn:
    """v1 ``AsyncClient.embed``: its batches, gathered as tasks, are not split into attempts."""

    async def wrapper(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kw: dict[str, Any]
    ) -> Any:
        with _sdk_retries.Unsplit():
            return await record(wrapped, instance, args, kw)

    return wrapper


_OPERATIONS = (
    ("/v2/chat", "chat"),
    ("/v1/chat", "chat_v1"),
    ("/v2/embed", "embed"),
    ("/v1/embed", "embed_v1"),
)


def _describe_attempt(request: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Provider, model and details of a request attempt the SDK retries."""
    path = str(getattr(getattr(request, "url", None), "path", ""))
    operation = next((op for suffix, op in _OPERATIONS if path.endswith(suffix)), "call")
    try:
        body = json.loads(getattr(request, "content", b"") or b"{}")
    except (ValueError, RuntimeError):  # not JSON, or a streamed body not read
        body = {}
    if not isinstance(body, dict):
        body = {}
    return "cohere", _model(body), _details(operation, body.get("stream") is True, None)


class CohereInstrumentor(Instrumentor):
    """Records every Cohere chat and embed call made through the ``cohere`` SDK."""

    name = "cohere"
    import_name = "cohere"
    pip_name = "cohere"

    def _install(self) -> None:
        targets = [
            ("cohere.v2.client", "V2Client", "AsyncV2Client", "chat"),
            ("cohere.base_client", "BaseCohere", "AsyncBaseCohere", "chat_v1"),
        ]
        retry_aware = _sdk_retries.retry_aware
        for module, sync_cls, async_cls, operation in targets:
            chat, stream = retry_aware(_Handler(operation, False)), _Handler(operation, True)
            self._wrap(module, f"{sync_cls}.chat", sync_wrapper(self, chat))
            self._wrap(module, f"{sync_cls}.chat_stream", sync_wrapper(self, stream))
            self._wrap(module, f"{async_cls}.chat", async_wrapper(self, chat))
            self._wrap(module, f"{async_cls}.chat_stream", sync_wrapper(self, stream))
        v2_embed, v1_embed = retry_aware(_Embed("embed")), retry_aware(_Embed("embed_v1"))
        self._wrap("cohere.v2.client", "V2Client.embed", sync_wrapper(self, v2_embed))
        self._wrap("cohere.v2.client", "AsyncV2Client.embed", async_wrapper(self, v2_embed))
        # AsyncClient.embed gathers its batches as tasks, which see the caller's scope.
        batching, v1_sync = _Batching(), sync_wrapper(self, v1_embed)
        self._wrap("cohere.client", "Client.embed", batching.outer(self, v1_sync))
        self._wrap("cohere.base_client", "BaseCohere.embed", batching.inner(v1_sync))
        v1_async = async_wrapper(self, v1_embed)
        self._wrap("cohere.client", "AsyncClient.embed", _unsplit_async(v1_async))
        self._wrap("cohere.base_client", "AsyncBaseCohere.embed", v1_async)
        _cohere_retries.install(self, _describe_attempt)
