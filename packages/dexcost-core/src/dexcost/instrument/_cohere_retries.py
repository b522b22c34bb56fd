"""Where the cohere SDK retries: the wait helpers of its generated HTTP client.

cohere 7.x retries inside ``HttpClient.request`` and ``AsyncHttpClient.request``
(``cohere.core.http_client``, by default twice, ``max_retries`` in ``request_options``):
after a 408, 409, 429 or 5xx answer it calls ``_retry_timeout(response, retries)``, after
a refused connection (and a dropped one, when ``retry_remote_protocol_errors`` is set)
``_retry_timeout_from_retries(retries)`` with that exception being handled. Each is
called once per failed attempt the client is about to retry, to compute the wait, and
both the sync and the async client use them. The wrappers return the wait unchanged,
record the attempt (:mod:`._sdk_retries`) and mark the next attempt's start after the
wait. ``HttpClient.stream`` (``chat_stream``) does not retry. In an SDK version without
these helpers the patches are skipped (logged at debug level) and only this feature is
off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dexcost import _guard

from ._sdk_retries import SITE, Attempt, owns, record_retried, response_ms

if TYPE_CHECKING:
    from ._base import Instrumentor

__all__ = ["Describe", "install"]

#: ``describe(request)`` → provider, requested model and ``details`` of the
#: ``httpx.Request`` of a failed attempt.
Describe = Callable[[Any], tuple[str, str | None, dict[str, Any]]]

_MODULE = "cohere.core.http_client"


def install(inst: Instrumentor, describe: Describe) -> bool:
    """Wrap the two wait helpers; part of ``inst``'s patches. False when one is missing."""
    layer = inst.name

    def note(response: Any, exc: BaseException | None, wait: Any) -> None:
        tracker = inst.tracker_for(None)
        if tracker is None:
            return
        if response is not None:
            request, status = response.request, response.status_code
        else:
            request, status = _request_of(exc), None
        provider, model, details = describe(request)
        attempt = Attempt(
            provider,
            model,
            details,
            status=status,
            error=exc,
            latency_ms=response_ms(response),
        )
        chain = record_retried(tracker, attempt)
        if isinstance(wait, (int, float)):
            chain.resume(time.perf_counter_ns() + int(wait * 1e9))

    def after_answer(wrapped: Any, _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        wait = wrapped(*args, **kwargs)
        response = kwargs.get("response", args[0] if args else None)
        if response is not None and owns(layer):
            _guard.call(SITE, None, note, response, None, wait)
        return wait

    def after_failure(wrapped: Any, _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        wait = wrapped(*args, **kwargs)
        if owns(layer):
            _guard.call(SITE, None, note, None, sys.exc_info()[1], wait)
        return wait

    found_answer = inst._wrap(_MODULE, "_retry_timeout", after_answer)
    found_failure = inst._wrap(_MODULE, "_retry_timeout_from_retries", after_failure)
    return found_answer and found_failure


def _request_of(exc: BaseException | None) -> Any:
    """The ``httpx.Request`` an httpx exception was raised for, if it says."""
    try:
        return getattr(exc, "request", None)
    except RuntimeError:  # httpx: no request attached
        return None
