"""aiohttp: ``ClientSession._request``, behind every ``session.get``/``post``/``request``.

aiohttp returns the response once its headers arrive; the body is read later by the
user. Entries priced from headers are recorded at once. For the others the response's
``content`` stream gets a tee (:class:`ContentTee`): the call is priced when the user
has read the body (``await resp.json()``, ``read()``, ``iter_chunked()``, ...) or from
headers if the response is released before that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dexcost import _guard
from dexcost.instrument._patch import GateSpec, WrapperFn
from dexcost.instrument._proxy import ObjectProxy

from ._body import BodyWatch
from ._capture import Call, async_wrapper, authority, authority_of, gate

if TYPE_CHECKING:
    from aiohttp.streams import AsyncStreamIterator, ChunkTupleAsyncStreamIterator

__all__ = ["LIBRARY", "ContentTee", "targets"]

LIBRARY = "aiohttp"


class ContentTee(ObjectProxy):
    """A response's ``StreamReader`` that shows what the user reads to a :class:`BodyWatch`."""

    def __init__(self, wrapped: Any, watch: BodyWatch, encoded: bool) -> None:
        super().__init__(wrapped)
        self._self_watch = watch
        self._self_encoded = encoded

    def _dexcost_seen(self, data: bytes) -> None:
        self._self_watch.feed(data, encoded=self._self_encoded)
        if _guard.call(self._self_watch.site, False, self.__wrapped__.at_eof):
            self._self_watch.done()

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self.__wrapped__.read(n)
        self._dexcost_seen(data)
        return data

    async def readany(self) -> bytes:
        data: bytes = await self.__wrapped__.readany()
        self._dexcost_seen(data)
        return data

    async def readchunk(self) -> tuple[bytes, bool]:
        chunk: tuple[bytes, bool] = await self.__wrapped__.readchunk()
        self._dexcost_seen(chunk[0])
        return chunk

    async def readexactly(self, n: int) -> bytes:
        data: bytes = await self.__wrapped__.readexactly(n)
        self._dexcost_seen(data)
        return data

    async def readline(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = await self.__wrapped__.readline(*args, **kwargs)
        self._dexcost_seen(data)
        return data

    async def readuntil(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = await self.__wrapped__.readuntil(*args, **kwargs)
        self._dexcost_seen(data)
        return data

    def read_nowait(self, n: int = -1) -> bytes:
        data: bytes = self.__wrapped__.read_nowait(n)
        self._dexcost_seen(data)
        return data

    # aiohttp's own iterators, over this tee's reads (imported here: this module is
    # imported by the hook that runs while aiohttp itself is being imported).
    def __aiter__(self) -> AsyncStreamIterator[bytes]:
        from aiohttp.streams import AsyncStreamIterator

        return AsyncStreamIterator(self.readline)

    def iter_chunked(self, n: int) -> AsyncStreamIterator[bytes]:
        from aiohttp.streams import AsyncStreamIterator

        self.__wrapped__.set_read_chunk_size(n)
        return AsyncStreamIterator(lambda: self.read(n))

    def iter_any(self) -> AsyncStreamIterator[bytes]:
        from aiohttp.streams import AsyncStreamIterator

        return AsyncStreamIterator(self.readany)

    def iter_chunks(self) -> ChunkTupleAsyncStreamIterator:
        from aiohttp.streams import ChunkTupleAsyncStreamIterator

        return ChunkTupleAsyncStreamIterator(self)  # type: ignore[arg-type]

    def set_exception(self, *args: Any, **kwargs: Any) -> None:
        # aiohttp sets one when the response is released or closed: reading has ended.
        try:
            self.__wrapped__.set_exception(*args, **kwargs)
        finally:
            self._self_watch.finish()

    def __del__(self) -> None:
        self._self_watch.finish()


def _str_or_url(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs["str_or_url"]


def _session_url(session: Any, target: Any) -> str:
    """``str_or_url`` (a str or a ``yarl.URL``) as an absolute URL, ``base_url`` applied."""
    url = target if isinstance(target, str) else str(target)
    if not url.startswith(("http://", "https://")):  # relative to the session's base_url
        url = str(session._build_url(target))
    return url


def _host(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return authority(_session_url(instance, _str_or_url(args, kwargs)))


#: The gate's host expression (see ``_capture.gate``): ``_request(self, method,
#: str_or_url, ...)``, an absolute str URL read in place.
_GATE_HOST = (
    authority_of("{2}")
    + ' if {2}.__class__ is str and {2}.startswith(("http://", "https://")) else '
    + authority_of("_dx_session_url({0}, {2})")
)


def _target(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    method = args[0] if args else kwargs["method"]
    return _session_url(instance, _str_or_url(args, kwargs)), str(method)


def _finish(
    call: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], response: Any
) -> Any:
    status = int(response.status)
    headers = response.headers
    content = response.content
    if not call.needs_body or content is None:
        call.record(status, headers, None)
        return response
    decompress = kwargs.get("auto_decompress")
    if decompress is None:
        decompress = getattr(instance, "auto_decompress", True)
    watch = BodyWatch(call, status, headers, headers.get("content-encoding"))
    response.content = ContentTee(content, watch, encoded=not decompress)
    return response


def targets() -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The methods to patch: ``(module, attribute path, wrapper, gate)``."""
    wrapper = async_wrapper(LIBRARY, _host, _target, _finish)
    gated = async_wrapper(LIBRARY, _host, _target, _finish, gated=True)
    spec = gate(_GATE_HOST, gated, 2, _dx_session_url=_session_url)
    return [("aiohttp.client", "ClientSession._request", wrapper, spec)]
