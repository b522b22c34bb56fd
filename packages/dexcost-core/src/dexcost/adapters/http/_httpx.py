"""httpx: ``Client.send`` and ``AsyncClient.send`` (the openai 2.x, cohere, mcp transport).

A response read by ``send`` (the default) is priced at once from its content. A
streamed one (``client.stream(...)``, ``send(stream=True)``) whose price is in the body
gets a tee in place of ``response.stream``: it is priced when the user has read it
(``read()``, ``iter_bytes()``, ...), or from headers when closed earlier. httpx2, the
fork under its own name, is the same API and uses :func:`build_targets` too.
"""

from __future__ import annotations

import importlib
from typing import Any

from dexcost.instrument._patch import GateSpec, WrapperFn

from ._body import BodyWatch
from ._capture import Call, Finish, async_wrapper, gate, sync_wrapper

__all__ = ["LIBRARY", "build_targets", "targets"]

LIBRARY = "httpx"


def _host(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    host: str = (args[0] if args else kwargs["request"]).url.host
    return host


#: The gate's host expression (see ``_capture.gate``): ``send(self, request, ...)``.
_GATE_HOST = "{1}.url.host"


def _target(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    request = args[0] if args else kwargs["request"]
    return str(request.url), str(request.method)


def _tee_classes(module: Any) -> tuple[type, type]:
    """Byte-stream wrappers that subclass ``module``'s own stream types (httpx checks them)."""

    class SyncTee(module.SyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, watch: BodyWatch) -> None:
            self._inner = inner
            self._watch = watch

        def __iter__(self) -> Any:
            watch = self._watch
            for chunk in self._inner:
                watch.feed(chunk, encoded=True)
                yield chunk
            watch.done()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._watch.finish()

        def __del__(self) -> None:
            self._watch.finish()

    class AsyncTee(module.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, watch: BodyWatch) -> None:
            self._inner = inner
            self._watch = watch

        async def __aiter__(self) -> Any:
            watch = self._watch
            async for chunk in self._inner:
                watch.feed(chunk, encoded=True)
                yield chunk
            watch.done()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._watch.finish()

        def __del__(self) -> None:
            self._watch.finish()

    return SyncTee, AsyncTee


def _finisher(base: type, tee: type) -> Finish:
    def finish(
        call: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], response: Any
    ) -> Any:
        status = int(response.status_code)
        headers = response.headers
        if not call.needs_body:
            call.record(status, headers, None)
            return response
        content = vars(response).get("_content")
        if isinstance(content, bytes):  # not streamed: send() has read it already
            call.record(status, headers, content)
            return response
        stream = response.stream
        if not isinstance(stream, base) or response.is_stream_consumed:
            call.record(status, headers, None)
            return response
        watch = BodyWatch(call, status, headers, headers.get("content-encoding"))
        response.stream = tee(stream, watch)
        return response

    return finish


def build_targets(
    module_name: str, library: str
) -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The patch targets of httpx or a fork of it with the same API (httpx2)."""
    module = importlib.import_module(module_name)
    sync_tee, async_tee = _tee_classes(module)
    sync_finish = _finisher(module.SyncByteStream, sync_tee)
    async_finish = _finisher(module.AsyncByteStream, async_tee)
    sync = sync_wrapper(library, _host, _target, sync_finish)
    sync_gated = sync_wrapper(library, _host, _target, sync_finish, gated=True)
    coroutine = async_wrapper(library, _host, _target, async_finish)
    coroutine_gated = async_wrapper(library, _host, _target, async_finish, gated=True)
    return [
        (module_name, "Client.send", sync, gate(_GATE_HOST, sync_gated)),
        (module_name, "AsyncClient.send", coroutine, gate(_GATE_HOST, coroutine_gated)),
    ]


def targets() -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The methods to patch: ``(module, attribute path, wrapper, gate)``."""
    return build_targets(LIBRARY, LIBRARY)
