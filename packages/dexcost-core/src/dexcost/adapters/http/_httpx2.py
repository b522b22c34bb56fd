"""httpx2: ``Client.send`` and ``AsyncClient.send`` of the httpx fork.

anthropic 2.x, google-genai 3.x, pydantic-ai and openai 3.x send through httpx2, a
separate namespace (its classes are not httpx's). Same API, same handling as httpx.
"""

from __future__ import annotations

from dexcost.instrument._patch import GateSpec, WrapperFn

from ._httpx import build_targets

__all__ = ["LIBRARY", "targets"]

LIBRARY = "httpx2"


def targets() -> list[tuple[str, str, WrapperFn, GateSpec | None]]:
    """The methods to patch: ``(module, attribute path, wrapper, gate)``."""
    return build_targets(LIBRARY, LIBRARY)
