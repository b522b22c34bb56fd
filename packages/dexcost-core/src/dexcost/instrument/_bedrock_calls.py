"""Reading bedrock-runtime calls, for botocore and aiobotocore alike.

Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream are recorded;
every other operation, and every other service, is called straight through. Bedrock
reports input tokens without the cache: they are normalised to include it. InvokeModel's
token counts come from its response headers; the body is read only when the caller reads
it (through a transparent proxy), to pick up cache counts from it.

:func:`begin` owns one call (the billing scope) and makes it the :func:`current` one,
where botocore's retry loop finds it (:mod:`._bedrock_retries`); :func:`on_result`
records the result or wraps what the caller reads later. The sync and async clients
differ only in the stream and body proxies they pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from dexcost import _guard, _scope

from ._proxy import ObjectProxy
from ._record import (
    Usage,
    as_int,
    elapsed_ms,
    estimate_tokens,
    record_failure,
    record_llm,
    text_chars,
)
from ._sdk_retries import Chain, linked
from ._stream import StreamObserver, TrackedStream

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["LAYER", "SITE", "SYNC", "Body", "Call", "Proxies", "begin", "current", "on_result"]

#: The instrumentor's name: the billing layer that owns a Bedrock call.
LAYER = "bedrock"
SITE = "instrument.bedrock"
_OPERATIONS = frozenset(
    {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"}
)
_MAX_BODY = 1 << 20  # bytes of an InvokeModel body kept to read cache counts from
_current: ContextVar[Call | None] = ContextVar("dexcost_bedrock_call", default=None)


def _converse_usage(u: Any) -> Usage:
    read = as_int(u.get("cacheReadInputTokens"))
    written = as_int(u.get("cacheWriteInputTokens"))
    return Usage(
        as_int(u.get("inputTokens")) + read + written,
        as_int(u.get("outputTokens")),
        cached_tokens=read,
        cache_creation_tokens=written,
    )


def _invoke_usage(headers: dict[str, Any], body: Any) -> Usage | None:
    """From an InvokeModel response: body usage (with cache counts) or the headers."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if isinstance(usage, dict):
        if "input_tokens" in usage:  # Anthropic models
            read = as_int(usage.get("cache_read_input_tokens"))
            written = as_int(usage.get("cache_creation_input_tokens"))
            return Usage(
                as_int(usage["input_tokens"]) + read + written,
                as_int(usage.get("output_tokens")),
                cached_tokens=read,
                cache_creation_tokens=written,
            )
        if "inputTokens" in usage:  # Amazon Nova
            read = as_int(usage.get("cacheReadInputTokenCount"))
            written = as_int(usage.get("cacheWriteInputTokenCount"))
            return Usage(
                as_int(usage["inputTokens"]) + read + written,
                as_int(usage.get("outputTokens")),
                cached_tokens=read,
                cache_creation_tokens=written,
            )
    if "x-amzn-bedrock-input-token-count" in headers:
        return Usage(
            as_int(headers["x-amzn-bedrock-input-token-count"]),
            as_int(headers.get("x-amzn-bedrock-output-token-count")),
        )
    return None


def _metrics_usage(metrics: dict[str, Any]) -> Usage:
    """``amazon-bedrock-invocationMetrics`` of a response stream's last chunk."""
    read = as_int(metrics.get("cacheReadInputTokenCount"))
    written = as_int(metrics.get("cacheWriteInputTokenCount"))
    return Usage(
        as_int(metrics.get("inputTokenCount")) + read + written,
        as_int(metrics.get("outputTokenCount")),
        cached_tokens=read,
        cache_creation_tokens=written,
    )


def _request_chars(params: dict[str, Any]) -> int:
    body = params.get("body")
    if isinstance(body, (bytes, bytearray, str)):
        return len(body)
    return text_chars(params.get("messages")) + text_chars(params.get("system"))


def _details(operation: str, result: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"operation": operation}
    meta = result.get("ResponseMetadata") if isinstance(result, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("RequestId"), str):
        details["request_id"] = meta["RequestId"]
    tier = result.get("serviceTier") if isinstance(result, dict) else None
    if isinstance(tier, dict):
        tier = tier.get("type")
    if isinstance(tier, str):
        details["service_tier"] = tier
    return details


class Call:
    """One bedrock-runtime call this layer owns: what every record of it needs."""

    __slots__ = (
        "_current",
        "_scope",
        "chain",
        "model",
        "operation",
        "params",
        "started_ns",
        "tracker",
    )

    def __init__(
        self, tracker: CostTracker, operation: str, params: dict[str, Any], started_ns: int
    ) -> None:
        self.tracker = tracker
        self.operation = operation
        self.params = params
        self.model = params.get("modelId") if isinstance(params.get("modelId"), str) else None
        self.started_ns = started_ns
        #: The attempts botocore retried, once it retries one (None: not retried).
        self.chain: Chain | None = None
        self._scope: Token[str | None] | None = None
        self._current: Token[Call | None] | None = None

    def release(self) -> None:
        """The call returned or raised: it is no longer current, nor owns the billing scope."""
        if self._current is not None:
            _current.reset(self._current)
            self._current = None
        if self._scope is not None:
            _scope.release(self._scope)
            self._scope = None

    def _sink(self) -> CostTracker:
        """Where the end of the call is recorded: linked to the retried attempts, if any."""
        return self.tracker if self.chain is None else linked(self.tracker, self.chain)

    def record(
        self,
        usage: Usage | None,
        details: dict[str, Any],
        latency_ms: int,
        output_chars: int = 0,
        error: BaseException | None = None,
    ) -> None:
        if usage is None:
            chars = _request_chars(self.params)
            usage = Usage(estimate_tokens(chars), estimate_tokens(output_chars), estimated=True)
        record_llm(self._sink(), "bedrock", self.model, usage, latency_ms, details, error=error)

    def failed(self, exc: BaseException) -> None:
        """Record the call as failed with ``exc`` (which then reaches the caller unchanged)."""
        response = getattr(exc, "response", None)
        status, code = None, ""
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(response.get("Error", {}).get("Code", ""))
        details: dict[str, Any] = {"operation": self.operation}
        record_failure(
            self._sink(),
            "bedrock",
            self.model,
            exc,
            self.started_ns,
            details,
            status=status,
            code=code,
        )


def begin(
    tracker: CostTracker | None, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Call | None:
    """The call ``client._make_api_call(*args, **kwargs)``, owned by this layer; None when
    it is not to be recorded (another service or operation, or another layer owns it).

    The caller calls :meth:`Call.release` when the call returns or raises.
    """
    if tracker is None:
        return None
    operation = args[0] if args else kwargs.get("operation_name")
    if operation not in _OPERATIONS or not _is_bedrock_runtime(client):
        return None
    token = _scope.claim(LAYER)
    if token is None:
        return None
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    call = Call(
        tracker, operation, params if isinstance(params, dict) else {}, time.perf_counter_ns()
    )
    call._scope = token
    call._current = _current.set(call)
    return call


def current() -> Call | None:
    """The Bedrock call in progress in this context (between :func:`begin` and its release)."""
    return _current.get()


def _is_bedrock_runtime(client: Any) -> bool:
    meta = getattr(client, "meta", None)
    return getattr(getattr(meta, "service_model", None), "service_name", None) == "bedrock-runtime"


class _ConverseEvents(StreamObserver):
    """ConverseStream: the ``metadata`` event carries usage and metrics."""

    __slots__ = ("call", "chars", "details", "metadata")

    def __init__(self, call: Call, details: dict[str, Any]) -> None:
        super().__init__(call.started_ns)
        self.call = call
        self.details = details
        self.metadata: Any = None
        self.chars = 0

    def observe(self, event: Any) -> None:
        delta = event.get("contentBlockDelta")
        if delta is not None:
            self.chars += len(delta.get("delta", {}).get("text") or "")
        elif "metadata" in event:
            self.metadata = event["metadata"]

    def record(self) -> None:
        usage = self.metadata.get("usage") if isinstance(self.metadata, dict) else None
        _finish_stream(self, None if usage is None else _converse_usage(usage), self.chars)


class _InvokeChunks(StreamObserver):
    """InvokeModelWithResponseStream: the last chunk has the invocation metrics."""

    __slots__ = ("call", "details")
    per_item = False

    def __init__(self, call: Call, details: dict[str, Any]) -> None:
        super().__init__(call.started_ns)
        self.call = call
        self.details = details

    def record(self) -> None:
        usage = None
        chunk = self.last.get("chunk") if isinstance(self.last, dict) else None
        if chunk is not None:
            data = _json(chunk.get("bytes"))
            metrics = (
                data.get("amazon-bedrock-invocationMetrics") if isinstance(data, dict) else None
            )
            if isinstance(metrics, dict):
                usage = _metrics_usage(metrics)
        # Without metrics, each chunk is about one token of output.
        _finish_stream(self, usage, self.items * 4)


def _json(data: Any) -> Any:
    """Parsed JSON, or None for a body that is not (an error page, binary output)."""
    try:
        return json.loads(data or b"null")
    except ValueError:
        return None


def _finish_stream(observer: Any, usage: Usage | None, output_chars: int) -> None:
    details = dict(observer.details, stream=True)
    if not observer.completed:
        details["stream_completed"] = False
    ttft = observer.time_to_first_item_ms()
    if ttft is not None:
        details["time_to_first_token_ms"] = ttft
    observer.call.record(usage, details, observer.latency_ms(), output_chars, observer.error)


class Body(StreamObserver):
    """An InvokeModel body: recorded when read, closed or collected."""

    __slots__ = ("call", "data", "details", "headers", "latency")

    def __init__(self, call: Call, details: dict[str, Any], headers: dict[str, Any]) -> None:
        super().__init__(call.started_ns)
        self.call = call
        self.details = details
        self.headers = headers
        self.latency = elapsed_ms(call.started_ns)
        self.data = bytearray()

    def saw(self, data: Any, whole: bool) -> None:
        """The caller read ``data``; ``whole``: all of the body (``read()`` with no size)."""
        if len(self.data) + len(data) <= _MAX_BODY:
            self.data += data
        if whole or not data:
            self.completed = True
            self.finish()

    def record(self) -> None:
        body: Any = None
        if self.completed and self.data:
            body = _json(bytes(self.data))
        self.call.record(_invoke_usage(self.headers, body), self.details, self.latency)


class _TappedBody(ObjectProxy):
    """botocore's StreamingBody, unchanged for the caller; dexcost sees what ``read`` returns."""

    def __init__(self, body: Any, observer: Body) -> None:
        super().__init__(body)
        self._self_observer = observer

    def read(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read(*args, **kwargs)
        _guard.call(SITE, None, self._self_observer.saw, data, not args and not kwargs)
        return data

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_observer.finish()

    def __del__(self) -> None:
        self._self_observer.finish()


#: What a client's results are wrapped in: (event stream proxy, InvokeModel body proxy),
#: each called as ``proxy(wrapped, observer)``.
Proxies = tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]
SYNC: Proxies = (TrackedStream, _TappedBody)


def on_result(call: Call, result: Any, proxies: Proxies) -> Any:
    """Record a Converse result; wrap the stream or body of the others (read later)."""
    details = _details(call.operation, result)
    operation = call.operation
    stream, body = proxies
    if operation == "Converse":
        usage = result.get("usage")
        call.record(
            None if usage is None else _converse_usage(usage), details, elapsed_ms(call.started_ns)
        )
    elif operation == "ConverseStream":
        result["stream"] = stream(result["stream"], _ConverseEvents(call, details))
    elif operation == "InvokeModelWithResponseStream":
        result["body"] = stream(result["body"], _InvokeChunks(call, details))
    else:  # InvokeModel
        headers = result.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        result["body"] = body(result["body"], Body(call, details, headers))
    return result
