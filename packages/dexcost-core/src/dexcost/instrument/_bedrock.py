"""AWS Bedrock runtime (boto3 / botocore).

Every botocore operation goes through ``BaseClient._make_api_call``; the wrapper looks
at bedrock-runtime model calls only (:mod:`._bedrock_calls`) and calls everything else
straight through. aiobotocore overrides ``_make_api_call`` and is not covered.
"""

from __future__ import annotations

from typing import Any

from dexcost import _guard

from ._base import Instrumentor
from ._bedrock_calls import LAYER, SITE, SYNC, begin, on_result

__all__ = ["BedrockInstrumentor"]


class BedrockInstrumentor(Instrumentor):
    """Records every Bedrock model call made through boto3 / botocore."""

    name = LAYER
    import_name = "botocore"
    pip_name = "boto3"

    def _install(self) -> None:
        self._wrap("botocore.client", "BaseClient._make_api_call", self._make_api_call)

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
