"""Where google-genai retries: the attempts of its tenacity loop.

google-genai 3.x retries only when asked to: ``HttpRetryOptions`` in the client's or
the request's ``HttpOptions`` (``retry_options``; without them a request is sent once).
``BaseApiClient._request`` then runs a tenacity loop over ``_request_once``
(``_async_request`` over ``_async_request_once``), called once per attempt; an attempt
fails by raising (``APIError``, whose ``code`` is the status, or the transport's
exception). Between a failure and its retry tenacity calls only callbacks fixed when
the client was built, so the attempts themselves are watched instead: a failure is
recorded as retried when the next attempt of the same loop starts, with its own
latency and time; the failure that ends the loop is left to the provider's wrapper.
The loop's state lives in a context variable while ``_request`` runs. In an SDK version
without these methods the patches are skipped (logged at debug level) and only this
feature is off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dexcost import _guard

from ._sdk_retries import SITE, Attempt, owns, record_retried

if TYPE_CHECKING:
    from ._base import Instrumentor

__all__ = ["Describe", "install"]

#: ``describe(api_client, http_request)`` → provider, requested model and ``details``
#: of the SDK's request (its ``url``).
Describe = Callable[[Any, Any], tuple[str, str | None, dict[str, Any]]]

_MODULE = "google.genai._api_client"
_loop: ContextVar[_Loop | None] = ContextVar("dexcost_genai_retry_loop", default=None)
_perf_ns = time.perf_counter_ns


class _Loop:
    """One retry loop of an owned call: its client and its last failed attempt."""

    __slots__ = ("client", "failed")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.failed: tuple[BaseException, Any, int, int, datetime] | None = None

    def fail(self, exc: BaseException, args: tuple[Any, ...], started_ns: int) -> None:
        """The attempt begun at ``started_ns`` raised ``exc``: retried, if another begins."""
        request = args[0] if args else None
        self.failed = (exc, request, started_ns, _perf_ns(), datetime.now(timezone.utc))


def install(inst: Instrumentor, describe: Describe) -> bool:
    """Wrap the loops and their attempts, sync and async; part of ``inst``'s patches.

    False when this SDK version lacks one of the four methods.
    """
    layer = inst.name

    def retried(loop: _Loop) -> None:
        failed, loop.failed = loop.failed, None
        tracker = inst.tracker_for(loop.client)
        if failed is None or tracker is None:
            return
        exc, request, started_ns, ended_ns, when = failed
        provider, model, details = describe(loop.client, request)
        code = getattr(exc, "code", None)
        attempt = Attempt(
            provider,
            model,
            details,
            status=code if type(code) is int and 400 <= code < 600 else None,
            error=exc,
            latency_ms=(ended_ns - started_ns) // 1_000_000,
            occurred_at=when,
        )
        record_retried(tracker, attempt)

    def begin(client: Any) -> _Loop | None:
        """The loop this attempt belongs to; records the failure before it as retried."""
        loop = _loop.get()
        if loop is None or loop.client is not client:
            return None
        if loop.failed is not None:
            _guard.call(SITE, None, retried, loop)
        return loop

    def sync_loop(wrapped: Any, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not owns(layer):
            return wrapped(*args, **kwargs)
        token = _loop.set(_Loop(client))
        try:
            return wrapped(*args, **kwargs)
        finally:
            _loop.reset(token)

    async def async_loop(
        wrapped: Any, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not owns(layer):
            return await wrapped(*args, **kwargs)
        token = _loop.set(_Loop(client))
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _loop.reset(token)

    def sync_attempt(
        wrapped: Any, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        loop = begin(client)
        if loop is None:
            return wrapped(*args, **kwargs)
        started = _perf_ns()
        try:
            return wrapped(*args, **kwargs)
        except Exception as exc:
            _guard.call(SITE, None, loop.fail, exc, args, started)
            raise

    async def async_attempt(
        wrapped: Any, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        loop = begin(client)
        if loop is None:
            return await wrapped(*args, **kwargs)
        started = _perf_ns()
        try:
            return await wrapped(*args, **kwargs)
        except Exception as exc:
            _guard.call(SITE, None, loop.fail, exc, args, started)
            raise

    found = [
        inst._wrap(_MODULE, "BaseApiClient._request", sync_loop),
        inst._wrap(_MODULE, "BaseApiClient._request_once", sync_attempt),
        inst._wrap(_MODULE, "BaseApiClient._async_request", async_loop),
        inst._wrap(_MODULE, "BaseApiClient._async_request_once", async_attempt),
    ]
    return all(found)
