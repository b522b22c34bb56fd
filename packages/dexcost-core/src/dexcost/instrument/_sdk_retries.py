"""The retries an SDK makes inside one call, recorded one event per attempt.

Several provider SDKs retry a failed request themselves (429, 5xx, timeouts, broken
connections): the caller sees one call, and so did dexcost, so the attempts that failed
were invisible. Here, for any SDK:

* Each failed attempt the SDK retries becomes an ``llm_call`` with its ``error_type``
  (classified like any failed call), no tokens and cost 0: ``exact`` when the provider
  answered with an error status (not billed), ``unknown`` after a timeout or a broken
  connection. ``details["attempt"]`` numbers the attempts of the call from 1.
* The attempt that ends the call (recorded by the provider's own wrapper as before: the
  result, or the failure whose exception reaches the caller) is the last of the chain.
  Every attempt after the first is flagged as a retry of the one before it
  (``is_retry``, ``retry_reason`` = that attempt's ``error_type``, ``retry_of`` = its
  event id), so ``retry_count`` and ``retry_cost_usd`` roll up. Three attempts that all
  fail are three events, two of them retries.

Each SDK supplies a hook on its retry loop (the ``_*_retries`` modules), installed
through the instrumentor's own patches so ``uninstrument`` removes it. The hook
describes a failed attempt the SDK retries as an :class:`Attempt` and hands it to
:func:`record_retried`, only for a call the provider's wrapper owns (:func:`owns`); it
never changes what the SDK waits, returns or raises.

The attempts of the call in progress are kept in a context variable, created at the
first failure. The provider's handler takes them when the call ends (:func:`retry_aware`,
:func:`take`) and records its event through a stand-in for the tracker that links the
event into the chain, also for a stream that records later. A stream that sends its
request on its first read takes them right after that read, in the reader's context.
A hook that knows its call (botocore's, :mod:`._bedrock_retries`) keeps the call's own
:class:`Chain` instead and records the end of the call through :func:`linked`.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from dexcost import _guard, _scope
from dexcost._money import ZERO
from dexcost._types import TRANSIENT_ERROR_TYPES

from ._base import CallHandler
from ._record import classify_error

if TYPE_CHECKING:
    from dexcost._models import Event
    from dexcost._tracker import CostTracker

__all__ = [
    "SITE",
    "Attempt",
    "Chain",
    "Unsplit",
    "linked",
    "owns",
    "record_retried",
    "response_ms",
    "retry_aware",
    "take",
]

#: Where errors of the retry hooks are reported (``_guard`` site name).
SITE = "instrument.sdk_retries"
_chain: ContextVar[Chain | None] = ContextVar("dexcost_sdk_retries", default=None)
_unsplit: ContextVar[bool] = ContextVar("dexcost_sdk_retries_unsplit", default=False)
_perf_ns = time.perf_counter_ns


class Attempt:
    """A failed attempt the SDK is about to retry, as its hook saw it.

    ``status`` is the provider's error status (None: no answer, ``error`` then says
    why) and ``code`` its error code, if any; ``latency_ms`` the attempt's duration if
    the hook knows it, and ``occurred_at`` when it failed, for a hook that records it
    later.
    """

    __slots__ = (
        "code",
        "details",
        "error",
        "latency_ms",
        "model",
        "occurred_at",
        "provider",
        "status",
    )

    def __init__(
        self,
        provider: str,
        model: str | None,
        details: dict[str, Any],
        *,
        status: int | None = None,
        error: BaseException | None = None,
        latency_ms: int | None = None,
        occurred_at: datetime | None = None,
        code: str = "",
    ) -> None:
        self.provider = provider
        self.model = model
        self.details = details
        self.status = status
        self.error = error
        self.latency_ms = latency_ms
        self.occurred_at = occurred_at
        self.code = code


class Chain:
    """The attempts of one call so far: how many, and the last failure to link to."""

    __slots__ = ("attempts", "last", "started_ns")

    def __init__(self) -> None:
        self.attempts = 0
        self.last: tuple[uuid.UUID, str] | None = None  # (event id, error type)
        self.started_ns: int | None = None  # when the attempt in progress began

    def link(self, tracker: CostTracker, event: Event) -> None:
        """Make ``event`` the next attempt: a retry of the last failure, if any."""
        self.attempts += 1
        if self.last is not None:
            event_id, reason = self.last
            _flag_retry(tracker, event, reason, event_id)
        error = event.error_type
        self.last = None if error is None else (event.event_id, error)

    def resume(self, at_ns: int) -> None:
        """The next attempt starts at ``at_ns`` (``perf_counter_ns``), after the SDK's wait."""
        self.started_ns = at_ns


class _ChainedTracker:
    """The tracker, for a handler recording the last attempt of a call: links its event."""

    __slots__ = ("_chain", "_tracker")

    def __init__(self, tracker: CostTracker, chain: Chain) -> None:
        self._tracker = tracker
        self._chain = chain

    def record_llm_call(self, *args: Any, **kwargs: Any) -> Event:
        chain = self._chain
        details = kwargs.get("details")
        if isinstance(details, dict):
            kwargs["details"] = {**details, "attempt": chain.attempts + 1}
        event = self._tracker.record_llm_call(*args, **kwargs)
        _guard.call(SITE, None, chain.link, self._tracker, event)
        return event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


def take(tracker: CostTracker) -> CostTracker:
    """The tracker a handler records the end of a call with.

    When the SDK retried inside the call, a stand-in that links the event to the
    failed attempts (and the chain is taken: the next call starts afresh); else
    ``tracker`` itself.
    """
    chain = _chain.get()
    if chain is None:
        return tracker
    _chain.set(None)
    return linked(tracker, chain)


def linked(tracker: CostTracker, chain: Chain) -> CostTracker:
    """A stand-in for ``tracker`` that records the event ending a call as ``chain``'s last."""
    return cast("CostTracker", _ChainedTracker(tracker, chain))


class _RetryAware(CallHandler):
    """A provider's handler, recording through :func:`take`."""

    def __init__(self, inner: CallHandler) -> None:
        self.inner = inner
        self.operation = inner.operation  # type: ignore[misc]
        self._on_result = inner.on_result

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        if _chain.get() is not None:  # :func:`take`, called only when there is a chain
            tracker = take(tracker)
        return self._on_result(tracker, instance, args, kwargs, result, started_ns)

    def on_error(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started_ns: int,
    ) -> None:
        self.inner.on_error(take(tracker), instance, args, kwargs, exc, started_ns)


def retry_aware(handler: CallHandler) -> CallHandler:
    """``handler``, made to link its event to the attempts the SDK retried."""
    return _RetryAware(handler)


# -- for the hooks -----------------------------------------------------------------------


def owns(layer: str) -> bool:
    """True when ``layer``'s wrapper owns the call in progress and splits its attempts."""
    return _scope.current_billing_layer() == layer and not _unsplit.get()


class Unsplit:
    """``with Unsplit():`` a call made of concurrent requests (batches): not split.

    Its requests' retries stay inside the one event the call records.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _unsplit.set(True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _unsplit.reset(self._token)


def response_ms(response: Any) -> int | None:
    """How long an httpx(2) response took, when it was read to its end."""
    try:
        elapsed = response.elapsed  # set once the response is closed
    except (AttributeError, RuntimeError):
        return None
    return int(elapsed.total_seconds() * 1000)


def record_retried(tracker: CostTracker, attempt: Attempt, chain: Chain | None = None) -> Chain:
    """Record ``attempt`` as the next failed attempt of the call in progress.

    The call's attempts are ``chain`` when the hook keeps them, else the context's.
    The latency is the time since the chain last resumed (:meth:`Chain.resume`), else
    the hook's measure; the chain is returned for the hook to say when the next attempt
    starts.
    """
    if chain is None:
        chain = _chain.get()
        if chain is None:
            chain = Chain()
            _chain.set(chain)
    status, exc, details = attempt.status, attempt.error, attempt.details
    if status is not None:
        error_type = classify_error(exc or Exception(), status=status, code=attempt.code)
        details["status_code"] = status
    else:
        # No answer: SDKs retry only timeouts and failed connections.
        error_type = "connection_error" if exc is None else classify_error(exc)
        if error_type not in TRANSIENT_ERROR_TYPES:
            error_type = "connection_error"
        if exc is not None:
            details["error"] = type(exc).__name__
    details["attempt"] = chain.attempts + 1
    latency = attempt.latency_ms
    if chain.started_ns is not None:
        latency = (_perf_ns() - chain.started_ns) // 1_000_000
    event = tracker.record_llm_call(
        attempt.provider,
        attempt.model or "unknown",
        0,
        0,
        ZERO,
        cost_confidence="exact" if status is not None else "unknown",
        pricing_source="provider" if status is not None else "unknown",
        latency_ms=latency,
        details=details,
        error_type=error_type,
        occurred_at=attempt.occurred_at,
    )
    chain.link(tracker, event)
    chain.started_ns = None
    return chain


# -- flagging a recorded event as a retry ------------------------------------------------


def _flag_retry(tracker: CostTracker, event: Event, reason: str, retry_of: uuid.UUID) -> None:
    """Flag the recorded ``event`` as a retry of ``retry_of`` in the task that made it."""
    tracked = tracker.current()
    if tracked.task.task_id != event.task_id:  # the task changed meanwhile: leave it
        return
    tracker._flag_retry(tracked, event, reason, retry_of)
