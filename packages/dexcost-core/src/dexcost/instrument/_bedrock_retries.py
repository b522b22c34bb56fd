"""botocore's own retries of a Bedrock call, recorded one ``llm_call`` per attempt.

botocore retries throttling, 5xx answers, timeouts and broken connections inside one
``_make_api_call`` (legacy, standard and adaptive retry modes alike), so the caller sees
one call and ``ResponseMetadata.RetryAttempts`` says how many attempts failed. Each
failed attempt botocore retries becomes an event, linked into a chain with the event
that ends the call, exactly as for the openai and anthropic SDKs (:mod:`._sdk_retries`).

The hook is ``Endpoint._needs_retry`` (aiobotocore: ``AioEndpoint._needs_retry``, its own
coroutine), which the retry loop calls after every attempt, with the attempt's response
or exception. It asks the retry mode's ``needs-retry`` handlers, waits the backoff they
answer and returns True, or returns False without waiting. It is the one place that sees
both the attempt and botocore's decision for every client, whereas a ``needs-retry``
handler would have to be registered on each client's own event emitter and would not see
the decision. The wrapper returns what the method returns and records only when it
returned True, for the bedrock-runtime call this layer owns (:func:`._bedrock_calls.current`),
after the wait. It is one of the instrumentor's patches, removed by ``uninstrument``; in
a botocore without the method the patch is skipped and calls are recorded as one event.
"""

from __future__ import annotations

import time
from typing import Any

from dexcost import _guard

from ._bedrock_calls import SITE, Call, current
from ._sdk_retries import Attempt, Chain, record_retried

__all__ = ["async_needs_retry", "needs_retry"]

_perf_ns = time.perf_counter_ns
# Endpoint._needs_retry(attempts, operation_model, request_dict, response, caught_exception)
_OPERATION, _RESPONSE, _EXCEPTION = 1, 3, 4


def needs_retry(wrapped: Any, endpoint: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The wrapper of botocore's ``Endpoint._needs_retry``."""
    call = current()
    if call is None:
        return wrapped(*args, **kwargs)
    ended = _perf_ns()
    retry = wrapped(*args, **kwargs)
    if retry is True:
        _guard.call(SITE, None, _retried, call, args, kwargs, ended)
    return retry


async def async_needs_retry(
    wrapped: Any, endpoint: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper of aiobotocore's ``AioEndpoint._needs_retry``."""
    call = current()
    if call is None:
        return await wrapped(*args, **kwargs)
    ended = _perf_ns()
    retry = await wrapped(*args, **kwargs)
    if retry is True:
        _guard.call(SITE, None, _retried, call, args, kwargs, ended)
    return retry


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _retried(call: Call, args: tuple[Any, ...], kwargs: dict[str, Any], ended_ns: int) -> None:
    """Record the attempt of ``call`` that ended at ``ended_ns``; botocore sends it again."""
    operation = _arg(args, kwargs, _OPERATION, "operation_model")
    service = getattr(getattr(operation, "service_model", None), "service_name", None)
    if service != "bedrock-runtime" or getattr(operation, "name", None) != call.operation:
        return  # another request made during the call (a credentials refresh)
    response = _arg(args, kwargs, _RESPONSE, "response")
    status, code = None, ""
    if response is not None:  # (http response, parsed): the provider answered
        http, parsed = response
        status = http.status_code
        error = parsed.get("Error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            code = str(error.get("Code") or "")
    chain = call.chain
    if chain is None:
        chain = call.chain = Chain()
    started = chain.started_ns if chain.started_ns is not None else call.started_ns
    chain.started_ns = None  # measured here: botocore's wait is not part of the attempt
    attempt = Attempt(
        "bedrock",
        call.model,
        {"operation": call.operation},
        status=status if isinstance(status, int) else None,
        error=_arg(args, kwargs, _EXCEPTION, "caught_exception"),
        latency_ms=(ended_ns - started) // 1_000_000,
        code=code,
    )
    record_retried(call.tracker, attempt, chain)
    chain.resume(_perf_ns())  # the next attempt starts after the wait
