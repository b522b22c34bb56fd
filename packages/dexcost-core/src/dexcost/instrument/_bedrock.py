"""AWS Bedrock runtime: boto3 / botocore, and aiobotocore (aioboto3) for async code.

Every botocore operation goes through ``BaseClient._make_api_call``; aiobotocore
overrides it with a coroutine, ``AioBaseClient._make_api_call``. Both are wrapped, and
both wrappers look at bedrock-runtime model calls only (:mod:`._bedrock_calls`).
aiobotocore is optional: it is patched when the program imports it, never imported here.
The attempts botocore retries inside a call are recorded too (:mod:`._bedrock_retries`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from dexcost import _guard

from . import _aiobedrock, _bedrock_retries
from ._base import Instrumentor
from ._bedrock_calls import LAYER, SITE, SYNC, begin, on_result

__all__ = ["BedrockInstrumentor"]


class BedrockInstrumentor(Instrumentor):
    """Records every Bedrock model call made through boto3 / botocore or aiobotocore."""

    name = LAYER
    import_name = "botocore"
    pip_name = "boto3"

    def _install(self) -> None:
        self._wrap("botocore.client", "BaseClient._make_api_call", self._make_api_call)
        self._wrap("botocore.endpoint", "Endpoint._needs_retry", _bedrock_retries.needs_retry)
        self._install_on_import(_aiobedrock.MODULE, partial(_aiobedrock.install, self))

    def _make_api_call(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = begin(self.tracker, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except Exception as exc:
            _guard.call(SITE, None, call.failed, exc)
            raise
        finally:
            call.release()
        return _guard.call(SITE, result, on_result, call, result, SYNC)
