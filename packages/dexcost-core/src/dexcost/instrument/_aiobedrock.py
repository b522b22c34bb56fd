"""aiobotocore (async boto3, under aioboto3): the bedrock-runtime calls of async clients.

``AioBaseClient._make_api_call`` is aiobotocore's own coroutine, not botocore's method:
it is wrapped like the sync one and records the same operations the same way. Its event
streams are async iterables (``AioEventStream``) and InvokeModel's body has a coroutine
``read``; both are proxied so the caller sees them unchanged. Its HTTP goes through
aiohttp (or httpx) inside the wrapped call, in the same context, so HTTP capture sees the
call owned and stays silent.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from dexcost import _guard

from ._bedrock_calls import SITE, Body, Proxies, begin, on_result
from ._bedrock_retries import async_needs_retry
from ._proxy import ObjectProxy
from ._stream import TrackedAsyncStream, finish_after

if TYPE_CHECKING:
    from ._base import Instrumentor

__all__ = ["MODULE", "install"]

#: The module whose import means aiobotocore is in use.
MODULE = "aiobotocore.client"


class _AsyncTappedBody(ObjectProxy):
    """aiobotocore's StreamingBody, unchanged for the caller; dexcost sees what it reads."""

    def __init__(self, body: Any, observer: Body) -> None:
        super().__init__(body)
        self._self_observer = observer

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

    async def __aenter__(self) -> _AsyncTappedBody:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_observer.finish()

    def close(self) -> Any:
        # Sync for the aiohttp body, a coroutine for the httpx one.
        result = self.__wrapped__.close()
        if inspect.isawaitable(result):
            return finish_after(result, self._self_observer)
        self._self_observer.finish()
        return result

    def aclose(self) -> Any:
        return finish_after(self.__wrapped__.aclose(), self._self_observer)

    def __del__(self) -> None:
        self._self_observer.finish()


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
