"""botocore: ``URLLib3Session.send``, every AWS API request boto3 makes.

Non-streaming operations (Textract, Comprehend, Rekognition, ...) have their body read
by botocore before ``send`` returns and are priced from it. A streamed output (S3
``GetObject``, Polly ``SynthesizeSpeech``) is priced from its headers, which is where
the catalog reads Polly's character count. Bedrock runtime is an LLM endpoint, left to
the provider instrumentation.
"""

from __future__ import annotations

from typing import Any

from dexcost.instrument._patch import GateSpec, WrapperFn

from ._body import decode
from ._capture import URL_HOST, Call, authority, gate, sync_wrapper

__all__ = ["LIBRARY", "targets"]

LIBRARY = "botocore"


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
    body: bytes | None = None
    if call.needs_body:
        content = vars(response).get("_content")  # set unless the output is streamed
        if isinstance(content, bytes):  # read with decode_content=False
            body = decode(content, headers.get("content-encoding"))
    call.record(status, headers, body)
    return response


def targets() -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The methods to patch: ``(module, attribute path, wrapper, gate)``."""
    wrapper = sync_wrapper(LIBRARY, _host, _target, _finish)
    gated = sync_wrapper(LIBRARY, _host, _target, _finish, gated=True)
    return [("botocore.httpsession", "URLLib3Session.send", wrapper, gate(URL_HOST, gated))]
