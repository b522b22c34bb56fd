"""requests: ``Session.send`` (every ``requests.get``/``post``/... and Session call).

A response sent without ``stream=True`` has its content loaded by requests before
``send`` returns, so it is priced at once. A streamed one whose price is in the body
gets a tee on ``response.raw`` (:class:`RawTee`) and is priced when the user has read
it (``iter_content``, ``.json()``, ``raw.read()``), or from headers if closed earlier.
Redirects followed inside ``send`` are one call: inner hops see the scope owned.
"""

from __future__ import annotations

from typing import Any

from dexcost import _guard
from dexcost.instrument._patch import GateSpec, WrapperFn
from dexcost.instrument._proxy import ObjectProxy

from ._body import BodyWatch
from ._capture import URL_HOST, Call, authority, gate, sync_wrapper

__all__ = ["LIBRARY", "RawTee", "targets"]

LIBRARY = "requests"


class RawTee(ObjectProxy):
    """A urllib3 ``HTTPResponse`` that shows the bytes the user reads to a :class:`BodyWatch`.

    Only ``stream()``, ``read()`` and ``read1()`` are watched (what requests and file-like
    consumers use); other ways of reading leave the call priced from headers.
    """

    def __init__(self, wrapped: Any, watch: BodyWatch) -> None:
        super().__init__(wrapped)
        self._self_watch = watch

    def _dexcost_encoded(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a read with these arguments returns still-compressed bytes."""
        decode = args[1] if len(args) > 1 else kwargs.get("decode_content")
        if decode is None:
            decode = getattr(self.__wrapped__, "decode_content", False)
        return decode is not True

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        watch = self._self_watch
        encoded = _guard.call(watch.site, True, self._dexcost_encoded, args, kwargs)
        for data in self.__wrapped__.stream(*args, **kwargs):
            watch.feed(data, encoded=encoded)
            yield data
        watch.done()

    def read(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read(*args, **kwargs)
        _guard.call(self._self_watch.site, None, self._dexcost_seen, data, args, kwargs)
        return data

    def read1(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read1(*args, **kwargs)
        _guard.call(self._self_watch.site, None, self._dexcost_seen, data, args, kwargs)
        return data

    def _dexcost_seen(self, data: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        watch = self._self_watch
        watch.feed(data, encoded=self._dexcost_encoded(args, kwargs))
        amt = args[0] if args else kwargs.get("amt")
        if amt is None or not data:  # read everything, or hit the end
            watch.done()

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_watch.finish()

    def release_conn(self) -> Any:
        try:
            return self.__wrapped__.release_conn()
        finally:
            self._self_watch.finish()

    def __del__(self) -> None:
        self._self_watch.finish()


def _host(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return authority((args[0] if args else kwargs["request"]).url)


def _target(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    request = args[0] if args else kwargs["request"]
    return str(request.url), str(request.method)


def _finish(
    call: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], response: Any
) -> Any:
    status = int(response.status_code)
    headers = response.headers
    if not call.needs_body:
        call.record(status, headers, None)
        return response
    content = vars(response).get("_content")
    if isinstance(content, bytes):  # not streamed: requests has read it already
        call.record(status, headers, content)
        return response
    raw = response.raw
    if raw is None or not hasattr(raw, "stream"):
        call.record(status, headers, None)
        return response
    encoding = headers.get("content-encoding")
    response.raw = RawTee(raw, BodyWatch(call, status, headers, encoding))
    return response


def targets() -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The methods to patch: ``(module, attribute path, wrapper, gate)``."""
    wrapper = sync_wrapper(LIBRARY, _host, _target, _finish)
    gated = sync_wrapper(LIBRARY, _host, _target, _finish, gated=True)
    return [("requests.sessions", "Session.send", wrapper, gate(URL_HOST, gated))]
