"""aiobotocore (async boto3, under aioboto3): the bedrock-runtime calls of async clients.

``AioBaseClient._make_api_call`` is aiobotocore's own coroutine, not botocore's method:
it is wrapped like the sync one and records the same operations the same way. Its event
streams are async iterables (``AioEventStream``) and InvokeModel's body has a coroutine
``read``; both are proxied so the caller sees them unchanged. Its HTTP goes through
aiohttp (or httpx) inside the wrapped call, in the same context, so HTTP capture sees the
call owned and stays silent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dexcost import _guard

from ._bedrock_calls import SITE, Body, Proxies, begin, on_result
from ._bedrock_retries import async_needs_retry
from ._stream import AsyncObserved, TrackedAsyncStream

if TYPE_CHECKING:
    from ._base import Instrumentor

__all__ = ["MODULE", "install"]

#: The module whose import means aiobotocore is in use.
MODULE = "aiobotocore.client"


class _AsyncTappedBody(AsyncObserved):
    """aiobotocore's StreamingBody, unchanged for the caller; dexcost sees what it reads."""

    _self_observer: Body

    async def read(self, *args: Any, **kwargs: Any) -> Any:
        data = await self.__wrapped__.read(*args, **kwargs)
        _guard.call(SITE, None, self._self_observer.saw, data, not args and not kwargs)
        return data

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            _guard.call(SITE, None, self._self_observer.saw, b"", True)
            raise
        _guard.call(SITE, None, self._self_observer.saw, chunk, False)
        return chunk


_ASYNC: Proxies = (TrackedAsyncStream, _AsyncTappedBody)


def install(inst: Instrumentor) -> None:
    """Wrap ``AioBaseClient._make_api_call`` (and the retry hook) as ``inst``'s patches."""

    async def make_api_call(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = begin(inst.tracker, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            _guard.call(SITE, None, call.failed, exc)
            raise
        finally:
            call.release()
        return _guard.call(SITE, result, on_result, call, result, _ASYNC)

    inst._wrap(MODULE, "AioBaseClient._make_api_call", make_api_call)
    inst._wrap("aiobotocore.endpoint", "AioEndpoint._needs_retry", async_needs_retry)
