"""What every provider module shares: token usage, error types, estimates, recording."""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dexcost._money import ZERO
from dexcost._tracker import CostTracker as _CostTracker

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = [
    "Usage",
    "classify_error",
    "estimate_tokens",
    "record_failure",
    "record_llm",
    "text_chars",
]


class Usage:
    """Token counts of one call, in dexcost's one convention.

    ``input_tokens`` includes cache reads and writes; ``cached_tokens`` and
    ``cache_creation_tokens`` say how many of them were billed at the cache prices.
    ``output_tokens`` includes ``reasoning_tokens``. ``estimated`` is True when the
    provider sent no usage and the counts were estimated from text lengths.
    """

    __slots__ = (
        "cache_creation_tokens",
        "cache_write_1h_tokens",
        "cached_tokens",
        "estimated",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
    )

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        *,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        reasoning_tokens: int = 0,
        estimated: bool = False,
    ) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cached_tokens = cached_tokens
        self.cache_creation_tokens = cache_creation_tokens
        self.cache_write_1h_tokens = cache_write_1h_tokens
        self.reasoning_tokens = reasoning_tokens
        self.estimated = estimated

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Usage({fields})"


def as_int(value: Any) -> int:
    """A token count from an SDK field that may be None, a float or missing."""
    if type(value) is int:
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return 0
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (SDK objects or plain dicts), else None."""
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, Mapping):
        return obj.get(name)
    return value


# -- estimates when the provider sent no usage ----------------------------------------

_TEXT_KEYS = frozenset({"content", "text", "input", "system", "instructions", "prompt", "parts"})
_MAX_DEPTH = 6


def text_chars(value: Any, _depth: int = 0) -> int:
    """Characters of prompt-like text in a request value (messages, input, parts).

    Counts strings under text-bearing keys and in lists, skips everything else (images,
    tool schemas, ids), so base64 payloads do not inflate the estimate.
    """
    if isinstance(value, str):
        return len(value)
    if _depth >= _MAX_DEPTH:
        return 0
    if isinstance(value, (list, tuple)):
        return sum(text_chars(v, _depth + 1) for v in value)
    if isinstance(value, Mapping):
        return sum(text_chars(v, _depth + 1) for k, v in value.items() if k in _TEXT_KEYS)
    for key in ("text", "content", "parts"):  # SDK objects (pydantic models)
        inner = getattr(value, key, None)
        if inner is not None and not callable(inner):
            return text_chars(inner, _depth + 1)
    return 0


def estimate_tokens(chars: int) -> int:
    """Rough token count for ``chars`` characters of text (about four per token)."""
    return (chars + 3) // 4 if chars > 0 else 0


# -- failures --------------------------------------------------------------------------


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    if isinstance(value, int):
        return value
    return None


def classify_error(exc: BaseException, *, status: int | None = None, code: str = "") -> str:
    """The ``error_type`` for a failed call: ``rate_limit``, ``timeout``, ``5xx``, ...

    Transient types (``rate_limit``, ``overloaded``, ``timeout``, ``5xx``,
    ``connection_error``) feed retry tracking. Others are ``auth_error``,
    ``bad_request``, ``not_found``, ``client_error`` or the exception's class name.
    """
    if status is None:
        status = _status_of(exc)
    names = code.lower() + " " + " ".join(c.__name__.lower() for c in type(exc).__mro__[:-2])
    if status == 429 or "ratelimit" in names or "throttl" in names or "toomanyrequests" in names:
        return "rate_limit"
    if status == 529 or "overloaded" in names:
        return "overloaded"
    if "timeout" in names or "timedout" in names or status in (408, 504):
        return "timeout"
    if status is not None and status >= 500:
        return "5xx"
    if "serviceunavailable" in names or "internalserver" in names or "servererror" in names:
        return "5xx"
    if "connect" in names:
        return "connection_error"
    if status in (401, 403) or "authentication" in names or "permissiondenied" in names:
        return "auth_error"
    if status == 404 or "notfound" in names:
        return "not_found"
    if status in (400, 422) or "badrequest" in names or "validation" in names:
        return "bad_request"
    if status is not None and 400 <= status < 500:
        return "client_error"
    return type(exc).__name__


def _billed_nothing(exc: BaseException, status: int | None) -> bool:
    """True when the provider answered with an error status (such calls are not billed)."""
    return (status if status is not None else _status_of(exc)) is not None


# -- recording -------------------------------------------------------------------------


def elapsed_ms(started_ns: int) -> int:
    """Milliseconds since ``started_ns`` (a ``perf_counter_ns`` value)."""
    return (time.perf_counter_ns() - started_ns) // 1_000_000


def record_llm(
    tracker: CostTracker,
    provider: str,
    model: str | None,
    usage: Usage,
    latency_ms: int,
    details: dict[str, Any],
    *,
    error: BaseException | None = None,
    cost_usd: Decimal | None = None,
    pricing_source: str | None = None,
    cost_confidence: str | None = None,
) -> None:
    """Send one ``llm_call`` to the tracker (priced there unless ``cost_usd`` is given)."""
    if usage.estimated:
        details["usage"] = "estimated"
        cost_confidence = "estimated"
    _send(
        tracker,
        provider,
        model or "unknown",
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_tokens,
        usage.cache_creation_tokens,
        usage.reasoning_tokens,
        usage.cache_write_1h_tokens,
        latency_ms,
        details,
        None if error is None else classify_error(error),
        cost_usd,
        cost_confidence,
        pricing_source,
    )


def record_failure(
    tracker: CostTracker,
    provider: str,
    model: str | None,
    exc: BaseException,
    started_ns: int,
    details: dict[str, Any],
    *,
    status: int | None = None,
    code: str = "",
) -> None:
    """Record a call that raised: no tokens, cost 0, and its ``error_type``.

    A provider does not bill a request it answered with an error status, so that zero
    is exact; after a timeout or a broken connection it is ``unknown``.
    """
    details["error"] = type(exc).__name__
    exact = _billed_nothing(exc, status)
    _send(
        tracker,
        provider,
        model or "unknown",
        0,
        0,
        0,
        0,
        0,
        0,
        elapsed_ms(started_ns),
        details,
        classify_error(exc, status=status, code=code),
        ZERO,
        "exact" if exact else "unknown",
        "provider" if exact else "unknown",
    )


def _send(
    tracker: CostTracker,
    provider: Any,
    model: Any,
    tin: Any,
    tout: Any,
    cached: Any,
    written: Any,
    reasoning: Any,
    written_1h: Any,
    latency_ms: Any,
    details: dict[str, Any],
    error_type: str | None,
    cost_usd: Decimal | None,
    cost_confidence: str | None,
    pricing_source: str | None,
) -> None:
    """Record one call, skipping the public method's checks when they cannot fail.

    The values come from SDK objects and a compatible server may send anything, so the
    shortcut is taken only when every count is a non-negative int, the names non-empty
    strings and a given cost a valid amount; anything else goes through
    ``record_llm_call``, which rejects it as it does for any caller. A stand-in for
    the tracker (one that links SDK retry attempts) is always called through
    ``record_llm_call``.
    """
    if (
        type(tracker) is _CostTracker
        and type(tin) is int
        and type(tout) is int
        and type(cached) is int
        and type(written) is int
        and type(reasoning) is int
        and type(written_1h) is int
        and type(latency_ms) is int
        and (tin | tout | cached | written | reasoning | written_1h | latency_ms) >= 0
        and type(provider) is str
        and provider.strip()
        and type(model) is str
        and model.strip()
        and (
            cost_usd is None
            or (type(cost_usd) is Decimal and cost_usd.is_finite() and cost_usd >= 0)
        )
    ):
        tracker.current()._note_llm(
            provider,
            model,
            tin,
            tout,
            cached,
            written,
            reasoning,
            written_1h,
            details.get("service_tier"),
            latency_ms,
            dict(details),  # the event's own copy: callers may keep theirs
            error_type,
            cost_usd,
            cost_confidence,
            pricing_source,
        )
        return
    tracker.record_llm_call(
        provider,
        model,
        tin,
        tout,
        cost_usd,
        cost_confidence=cost_confidence,
        pricing_source=pricing_source,
        cached_tokens=cached,
        cache_creation_tokens=written,
        reasoning_tokens=reasoning,
        cache_write_1h_tokens=written_1h,
        service_tier=details.get("service_tier"),
        latency_ms=latency_ms,
        details=details,
        error_type=error_type,
    )
