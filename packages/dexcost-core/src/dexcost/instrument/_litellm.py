"""LiteLLM: completion, embedding, responses and text_completion, sync and async.

Two hooks work together so each call is recorded once, with litellm's own usage and
cost (it knows the prices of every provider it routes to):

* ``litellm.completion`` & co. are wrapped. The wrapper owns the call (so the openai
  SDK and HTTP capture underneath stay silent) and records it synchronously from the
  response: usage and ``_hidden_params["response_cost"]``. Streams are recorded when
  consumed, from the usage litellm attaches at the end of the stream.
* A litellm ``CustomLogger`` callback records calls that did not go through the
  wrapper (``from litellm import completion`` bound before dexcost patched it, or
  litellm's internal entry points). litellm runs callbacks in a copy of the caller's
  context, so a call the wrapper owns is recognised there and skipped. Calls made from
  litellm's code are also treated as owned by the openai/anthropic patches.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dexcost import _guard, _scope

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
from ._stream import StreamObserver, TrackedAsyncStream, TrackedStream

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["LiteLLMInstrumentor"]

_LAYER = "litellm"
_stream_type: type | None = None
_OWNED_MAX = 4096


class _OwnedCalls:
    """litellm call ids the wrapper records itself, so the callback skips them.

    Needed for streams: litellm reports a finished stream from a thread that does not
    carry the caller's context. Bounded: the oldest ids are forgotten first.
    """

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, call_id: Any) -> None:
        if isinstance(call_id, str):
            with self._lock:
                self._ids[call_id] = None
                if len(self._ids) > _OWNED_MAX:
                    self._ids.popitem(last=False)

    def __contains__(self, call_id: object) -> bool:
        with self._lock:
            return call_id in self._ids


_owned = _OwnedCalls()


def _usage(u: Any) -> Usage:
    """litellm's Usage (chat: prompt/completion) or a Responses usage (input/output)."""
    prompt = field(u, "prompt_tokens")
    if prompt is None:
        prompt = field(u, "input_tokens")
    completion = field(u, "completion_tokens")
    if completion is None:
        completion = field(u, "output_tokens")
    prompt_details = field(u, "prompt_tokens_details") or field(u, "input_tokens_details")
    output_details = field(u, "completion_tokens_details") or field(u, "output_tokens_details")
    cached = field(u, "cache_read_input_tokens") or field(prompt_details, "cached_tokens")
    written = field(u, "cache_creation_input_tokens") or field(
        prompt_details, "cache_creation_tokens"
    )
    return Usage(
        as_int(prompt),
        as_int(completion),
        cached_tokens=as_int(cached),
        cache_creation_tokens=as_int(written),
        reasoning_tokens=as_int(field(output_details, "reasoning_tokens")),
    )


def _cost(value: Any) -> Decimal | None:
    """litellm's USD cost (a float) as Decimal, through its shortest repr."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return Decimal(repr(value))
    return None


def _request_chars(kwargs: dict[str, Any]) -> int:
    return text_chars(kwargs.get("messages")) + text_chars(kwargs.get("input"))


def _send(
    tracker: CostTracker,
    provider: Any,
    model: Any,
    usage: Usage,
    latency_ms: int,
    details: dict[str, Any],
    cost: Decimal | None,
    error: BaseException | None = None,
) -> None:
    details["via"] = "litellm"
    record_llm(
        tracker,
        provider if isinstance(provider, str) and provider else "litellm",
        model if isinstance(model, str) else None,
        usage,
        latency_ms,
        details,
        error=error,
        cost_usd=None if usage.estimated else cost,
        pricing_source="litellm" if cost is not None and not usage.estimated else None,
        cost_confidence="computed" if cost is not None and not usage.estimated else None,
    )


class _Chunks(StreamObserver):
    """A litellm stream: usage in the last chunk, or attached by litellm at its end."""

    __slots__ = ("chars", "kwargs", "operation", "tracker", "usage")

    def __init__(
        self, tracker: CostTracker, kwargs: dict[str, Any], started_ns: int, operation: str
    ) -> None:
        super().__init__(started_ns)
        self.tracker = tracker
        self.kwargs = kwargs
        self.operation = operation
        self.usage: Any = None
        self.chars = 0

    def observe(self, chunk: Any) -> None:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        choices = getattr(chunk, "choices", None)
        if choices:
            text = getattr(choices[0].delta, "content", None)
            if text:
                self.chars += len(text)

    def record(self) -> None:
        last = self.last
        hidden = getattr(last, "_hidden_params", None) or {}
        usage = self._read_usage(hidden.get("usage"))
        details: dict[str, Any] = {"operation": self.operation, "stream": True}
        if not self.completed:
            details["stream_completed"] = False
        ttft = self.time_to_first_item_ms()
        if ttft is not None:
            details["time_to_first_token_ms"] = ttft
        model = getattr(last, "model", None) or self.kwargs.get("model")
        provider = hidden.get("custom_llm_provider")
        _send(self.tracker, provider, model, usage, self.latency_ms(), details, None, self.error)

    def _read_usage(self, end_of_stream: Any) -> Usage:
        """The stream's usage: a chunk's, litellm's end-of-stream figure, or an estimate.

        No chunk carried usage and the caller did not ask for it: the provider sent none
        that dexcost saw, so litellm's figure is its own token count (litellm >= 1.108
        counts; older releases leave zeros). Its counts are kept, labelled estimated.
        """
        if self.usage is not None:
            return _usage(self.usage)
        usage = _usage(end_of_stream) if end_of_stream is not None else None
        if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):
            request = estimate_tokens(_request_chars(self.kwargs))
            return Usage(request, estimate_tokens(self.chars), estimated=True)
        if not _asks_usage(self.kwargs):
            usage.estimated = True
        return usage


def _asks_usage(kwargs: dict[str, Any]) -> bool:
    options = kwargs.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


class _Handler(CallHandler):
    def __init__(self, operation: str, is_async: bool) -> None:
        self.operation = operation  # type: ignore[misc]
        self.is_async = is_async

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        if args and "model" not in kwargs:
            kwargs = {**kwargs, "model": args[0]}
        if _stream_type is not None and isinstance(result, _stream_type):
            _owned.add(getattr(getattr(result, "logging_obj", None), "litellm_call_id", None))
            observer = _Chunks(tracker, kwargs, started_ns, self.operation)
            # Reading holds the scope so litellm's end-of-stream callback sees it is ours.
            if self.is_async:
                return TrackedAsyncStream(result, observer, hold=_LAYER)
            return TrackedStream(result, observer, hold=_LAYER)
        usage_obj = getattr(result, "usage", None)
        if usage_obj is None:  # not a model response (e.g. a coroutine or a raw object)
            return result
        hidden = getattr(result, "_hidden_params", None) or {}
        _owned.add(hidden.get("litellm_call_id"))
        details: dict[str, Any] = {"operation": self.operation}
        if isinstance(getattr(result, "id", None), str):
            details["response_id"] = result.id
        model = getattr(result, "model", None) or kwargs.get("model")
        _send(
            tracker,
            hidden.get("custom_llm_provider"),
            model,
            _usage(usage_obj),
            elapsed_ms(started_ns),
            details,
            _cost(hidden.get("response_cost")),
        )
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
        model = kwargs.get("model") or (args[0] if args else None)
        provider = getattr(exc, "llm_provider", None)
        details = {"operation": self.operation, "via": "litellm"}
        record_failure(
            tracker,
            provider if isinstance(provider, str) and provider else "litellm",
            model if isinstance(model, str) else None,
            exc,
            started_ns,
            details,
        )


def _from_callback(
    tracker: CostTracker, kwargs: dict[str, Any], response: Any, start: Any, end: Any
) -> None:
    """Record a call litellm reported to its callbacks (one the wrapper did not see)."""
    slo = kwargs.get("standard_logging_object") or {}
    usage_obj = getattr(response, "usage", None)
    if usage_obj is not None:
        usage = _usage(usage_obj)
    else:
        usage = Usage(as_int(slo.get("prompt_tokens")), as_int(slo.get("completion_tokens")))
    try:
        latency = max(0, int((end - start).total_seconds() * 1000))
    except (TypeError, AttributeError):  # litellm passes datetimes; anything else: unknown
        latency = 0
    details: dict[str, Any] = {"operation": str(slo.get("call_type") or "completion")}
    if slo.get("stream"):
        details["stream"] = True
    cost = _cost(kwargs.get("response_cost"))
    if cost is None:
        cost = _cost(slo.get("response_cost"))
    model = getattr(response, "model", None) or slo.get("model") or kwargs.get("model")
    provider = slo.get("custom_llm_provider") or (kwargs.get("litellm_params") or {}).get(
        "custom_llm_provider"
    )
    _send(tracker, provider, model, usage, latency, details, cost)


def _failed_from_callback(
    tracker: CostTracker, kwargs: dict[str, Any], start: Any, end: Any
) -> None:
    exc = kwargs.get("exception")
    if not isinstance(exc, BaseException):
        exc = RuntimeError(str(exc))
    details = {"operation": "completion", "via": "litellm"}
    provider = (kwargs.get("litellm_params") or {}).get("custom_llm_provider") or "litellm"
    record_failure(tracker, provider, kwargs.get("model"), exc, _ns_of(start), details)


def _ns_of(start: Any) -> int:
    """``start`` (a datetime) on the ``perf_counter_ns`` clock, for the latency."""
    try:
        elapsed = (time.time() - start.timestamp()) * 1e9
    except (TypeError, AttributeError):
        elapsed = 0
    return time.perf_counter_ns() - int(elapsed)


def _make_logger(inst: LiteLLMInstrumentor) -> Any:
    from litellm.integrations.custom_logger import CustomLogger

    class DexcostLogger(CustomLogger):
        """Records litellm calls dexcost's wrapper did not own (parameter names matter)."""

        def _tracker(self, kwargs: Any) -> CostTracker | None:
            # Most callbacks run in a copy of the caller's context: inside our wrapper
            # the scope says litellm owns the call. Streams are reported from a thread
            # without it; the wrapper registered their call ids.
            if _scope.current_billing_layer() == _LAYER:
                return None
            if isinstance(kwargs, dict) and kwargs.get("litellm_call_id") in _owned:
                return None
            return inst.tracker

        def log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            tracker = self._tracker(kwargs)
            if tracker is not None:
                _guard.call(
                    "instrument.litellm.callback",
                    None,
                    _from_callback,
                    tracker,
                    kwargs,
                    response_obj,
                    start_time,
                    end_time,
                )

        async def async_log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            self.log_success_event(kwargs, response_obj, start_time, end_time)

        def log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            tracker = self._tracker(kwargs)
            if tracker is not None:
                _guard.call(
                    "instrument.litellm.callback",
                    None,
                    _failed_from_callback,
                    tracker,
                    kwargs,
                    start_time,
                    end_time,
                )

        async def async_log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            self.log_failure_event(kwargs, response_obj, start_time, end_time)

    return DexcostLogger()


_ENTRY_POINTS = (
    ("completion", "chat", False),
    ("acompletion", "chat", True),
    ("embedding", "embeddings", False),
    ("aembedding", "embeddings", True),
    ("responses", "responses", False),
    ("aresponses", "responses", True),
    ("text_completion", "completions", False),
    ("atext_completion", "completions", True),
)


class LiteLLMInstrumentor(Instrumentor):
    """Records every call made through ``litellm``, with litellm's own cost."""

    name = "litellm"
    import_name = "litellm"
    pip_name = "litellm"

    def __init__(self) -> None:
        super().__init__()
        self._logger: Any = None
        self._callbacks_lock = threading.Lock()

    def _install(self) -> None:
        global _stream_type
        import litellm
        from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

        _stream_type = CustomStreamWrapper
        for function, operation, is_async in _ENTRY_POINTS:
            handler = _Handler(operation, is_async)
            wrapper = async_wrapper(self, handler) if is_async else sync_wrapper(self, handler)
            self._wrap("litellm", function, wrapper)
        with self._callbacks_lock:
            self._logger = _make_logger(self)
            litellm.callbacks.append(self._logger)
        _scope.set_implicit_owner("litellm", True)

    def _teardown(self) -> None:
        import litellm

        _scope.set_implicit_owner("litellm", False)
        with self._callbacks_lock:
            logger, self._logger = self._logger, None
            if logger is None:
                return
            # litellm copies registered loggers into its per-kind lists on first use.
            for name in (
                "callbacks",
                "input_callback",
                "success_callback",
                "failure_callback",
                "_async_success_callback",
                "_async_failure_callback",
            ):
                registry = getattr(litellm, name, None)
                while isinstance(registry, list) and logger in registry:
                    registry.remove(logger)
