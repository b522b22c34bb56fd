"""Provider auto-instrumentation: every LLM call an SDK makes becomes an ``llm_call``.

``dexcost.init()`` instruments every installed SDK in :data:`ALL_SUPPORTED_INSTRUMENTS`
(or the ``auto_instrument`` list). The functions here add or remove one provider by
hand; ``CostTracker.instrument(name)`` and ``uninstrument(name)`` do the same by name.
Importing this package imports no provider SDK: each is imported when instrumented.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from ._base import Instrumentor
from ._tracked_clients import (
    TrackedAnthropic,
    TrackedAsyncAnthropic,
    TrackedAsyncOpenAI,
    TrackedOpenAI,
)

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = [
    "ALL_SUPPORTED_INSTRUMENTS",
    "Instrumentor",
    "TrackedAnthropic",
    "TrackedAsyncAnthropic",
    "TrackedAsyncOpenAI",
    "TrackedOpenAI",
    "get_instrumentor",
    "instrument_anthropic",
    "instrument_bedrock",
    "instrument_cohere",
    "instrument_gemini",
    "instrument_litellm",
    "instrument_mcp",
    "instrument_openai",
    "uninstrument_anthropic",
    "uninstrument_bedrock",
    "uninstrument_cohere",
    "uninstrument_gemini",
    "uninstrument_litellm",
    "uninstrument_mcp",
    "uninstrument_openai",
]

#: Every name accepted by ``CostTracker.instrument()`` and ``init(auto_instrument=...)``.
ALL_SUPPORTED_INSTRUMENTS: list[str] = [
    "openai",
    "anthropic",
    "litellm",
    "gemini",
    "bedrock",
    "cohere",
    "mcp",
]

_CLASSES = {
    "openai": ("._openai", "OpenAIInstrumentor"),
    "anthropic": ("._anthropic", "AnthropicInstrumentor"),
    "litellm": ("._litellm", "LiteLLMInstrumentor"),
    "gemini": ("._gemini", "GeminiInstrumentor"),
    "bedrock": ("._bedrock", "BedrockInstrumentor"),
    "cohere": ("._cohere", "CohereInstrumentor"),
    "mcp": ("._mcp", "MCPInstrumentor"),
}
_instances: dict[str, Instrumentor] = {}
_lock = threading.Lock()


def get_instrumentor(name: str) -> Instrumentor:
    """The process-wide :class:`Instrumentor` for ``name`` (ValueError if unknown)."""
    instance = _instances.get(name)
    if instance is not None:
        return instance
    if name not in _CLASSES:
        raise ValueError(
            f"unknown instrument {name!r}; choose from {list(ALL_SUPPORTED_INSTRUMENTS)}"
        )
    with _lock:
        instance = _instances.get(name)
        if instance is None:
            module, cls = _CLASSES[name]
            instance = getattr(importlib.import_module(module, __name__), cls)()
            _instances[name] = instance
    return instance


def _instrument(name: str, tracker: CostTracker) -> None:
    tracker.instrument(name)


def instrument_openai(tracker: CostTracker) -> None:
    """Record ``openai`` calls (chat, responses, embeddings; sync, async, streamed)."""
    _instrument("openai", tracker)


def uninstrument_openai() -> None:
    """Restore the original ``openai`` methods."""
    _uninstrument("openai")


def instrument_anthropic(tracker: CostTracker) -> None:
    """Record ``anthropic`` Messages calls (incl. beta and ``.stream()``)."""
    _instrument("anthropic", tracker)


def uninstrument_anthropic() -> None:
    """Restore the original ``anthropic`` methods."""
    _uninstrument("anthropic")


def instrument_litellm(tracker: CostTracker) -> None:
    """Record ``litellm`` calls (completion, embedding, responses; sync and async)."""
    _instrument("litellm", tracker)


def uninstrument_litellm() -> None:
    """Restore ``litellm`` and remove dexcost's callback."""
    _uninstrument("litellm")


def instrument_gemini(tracker: CostTracker) -> None:
    """Record ``google-genai`` generate_content calls (sync, async, streamed)."""
    _instrument("gemini", tracker)


def uninstrument_gemini() -> None:
    """Restore the original ``google-genai`` methods."""
    _uninstrument("gemini")


def instrument_bedrock(tracker: CostTracker) -> None:
    """Record AWS Bedrock runtime calls (Converse, ConverseStream, InvokeModel*) made
    through boto3 / botocore or aiobotocore, one event per attempt botocore makes."""
    _instrument("bedrock", tracker)


def uninstrument_bedrock() -> None:
    """Restore botocore's and aiobotocore's original methods."""
    _uninstrument("bedrock")


def instrument_cohere(tracker: CostTracker) -> None:
    """Record ``cohere`` chat calls (v1 and v2, sync and async, streamed)."""
    _instrument("cohere", tracker)


def uninstrument_cohere() -> None:
    """Restore the original ``cohere`` methods."""
    _uninstrument("cohere")


def instrument_mcp(tracker: CostTracker) -> None:
    """Record MCP ``ClientSession.call_tool`` calls (tool, latency, outcome, rate)."""
    _instrument("mcp", tracker)


def uninstrument_mcp() -> None:
    """Restore the original ``mcp`` ``call_tool``."""
    _uninstrument("mcp")


def _uninstrument(name: str) -> None:
    instrumentor = get_instrumentor(name)
    tracker = instrumentor.tracker
    if tracker is not None:
        tracker.uninstrument(name)  # keeps tracker.instrumented in step
    instrumentor.uninstrument()
