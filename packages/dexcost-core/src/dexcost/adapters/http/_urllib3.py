"""urllib3: ``HTTPConnectionPool.urlopen``, for code that uses urllib3 directly.

requests and botocore send through urllib3 too; their own wrappers own the call, so
this one stays silent for them. A response read with ``preload_content=True`` (the
default) is priced from its body; one left for the caller to read is priced from its
headers (the entry's fallback), since urllib3's many ways of reading cannot be watched.
"""

from __future__ import annotations

from typing import Any

from dexcost.instrument._patch import GateSpec, WrapperFn

from ._body import decode
from ._capture import Call, authority, authority_of, gate, sync_wrapper

__all__ = ["LIBRARY", "targets"]

LIBRARY = "urllib3"

_PRELOAD = 12  # position of preload_content in urlopen(method, url, body, headers, ...)


def _url(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    url: str = args[1] if len(args) > 1 else kwargs["url"]
    if url.startswith(("http://", "https://")):  # absolute when sent through a proxy
        return url
    return f"{instance.scheme}://{instance.host}{url}"


def _host(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    url: str = args[1] if len(args) > 1 else kwargs["url"]
    if url.startswith(("http://", "https://")):  # absolute when sent through a proxy
        return authority(url)
    host: str = instance.host
    return host


#: The gate's host expression (see ``_capture.gate``): ``urlopen(self, method, url, ...)``.
_GATE_HOST = authority_of("{2}") + ' if {2}.startswith(("http://", "https://")) else {0}.host'


def _target(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    method = args[0] if args else kwargs["method"]
    return _url(instance, args, kwargs), str(method)


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, True)


def _finish(
    call: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], response: Any
) -> Any:
    status = int(response.status)
    headers = response.headers
    body: bytes | None = None
    if call.needs_body and _argument(args, kwargs, _PRELOAD, "preload_content"):
        data = vars(response).get("_body")
        if isinstance(data, bytes):
            if not _argument(args, kwargs, _PRELOAD + 1, "decode_content"):
                data = decode(data, headers.get("content-encoding"))
            body = data
    call.record(status, headers, body)
    return response


def targets() -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The methods to patch: ``(module, attribute path, wrapper, gate)``."""
    wrapper = sync_wrapper(LIBRARY, _host, _target, _finish)
    gated_wrapper = sync_wrapper(LIBRARY, _host, _target, _finish, gated=True)
    gated = gate(_GATE_HOST, gated_wrapper, 2)
    return [("urllib3.connectionpool", "HTTPConnectionPool.urlopen", wrapper, gated)]
