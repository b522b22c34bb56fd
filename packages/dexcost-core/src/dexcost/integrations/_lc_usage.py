"""Reading LangChain results without importing LangChain: tokens, model, provider.

Everything here is duck-typed on the shapes langchain-core 0.3-1.x hands to callback
handlers: an ``LLMResult`` whose first generation carries an ``AIMessage`` with
``usage_metadata`` (the standard, provider-neutral counts) and ``response_metadata``,
or, for completion models, ``llm_output["token_usage"]`` in OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dexcost.instrument._record import Usage, as_int

__all__ = ["Reading", "model_hint", "read_result"]

# Keys a model id may sit under, best first (response metadata, llm_output, params).
_MODEL_KEYS = ("model_name", "model", "model_id", "deployment_name")


class Reading:
    """What one ``on_llm_end`` response says about the call."""

    __slots__ = ("cache_hit", "model", "provider", "service_tier", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.service_tier: str | None = None
        self.cache_hit = False


def read_result(response: Any) -> Reading:
    """Read usage, model and provider from an ``LLMResult`` (or anything shaped like it)."""
    reading = Reading()
    message = _first_message(response)
    llm_output = getattr(response, "llm_output", None)
    metadata = getattr(message, "response_metadata", None)
    if isinstance(metadata, Mapping):
        reading.model = _text(metadata, _MODEL_KEYS)
        reading.provider = _text(metadata, ("model_provider",))
        reading.service_tier = _text(metadata, ("service_tier",))
    if reading.model is None and isinstance(llm_output, Mapping):
        reading.model = _text(llm_output, _MODEL_KEYS)
    usage_metadata = getattr(message, "usage_metadata", None)
    if isinstance(usage_metadata, Mapping):
        # langchain-core zeroes the cost of an answer served from its LLM cache (and
        # keeps the original counts): no provider was called.
        reading.cache_hit = "total_cost" in usage_metadata and usage_metadata.get("total_cost") == 0
        if "input_tokens" in usage_metadata or "output_tokens" in usage_metadata:
            reading.usage = _from_usage_metadata(usage_metadata)
    if reading.usage is None and isinstance(llm_output, Mapping):
        reading.usage = _from_token_usage(llm_output.get("token_usage"))
    return reading


def model_hint(metadata: Mapping[str, Any] | None, params: Any) -> str | None:
    """The model named when the call started: ``ls_model_name``, else the call params."""
    if metadata:
        name = metadata.get("ls_model_name")
        if isinstance(name, str) and name:
            return name
    if isinstance(params, Mapping):
        return _text(params, _MODEL_KEYS)
    return None


def _first_message(response: Any) -> Any:
    generations = getattr(response, "generations", None)
    if not generations:
        return None
    first = generations[0]
    if isinstance(first, list):
        if not first:
            return None
        first = first[0]
    return getattr(first, "message", None)


def _text(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _from_usage_metadata(um: Mapping[str, Any]) -> Usage:
    """LangChain's ``UsageMetadata``: ``input_tokens`` already includes cache reads/writes."""
    inp = um.get("input_token_details")
    out = um.get("output_token_details")
    inp = inp if isinstance(inp, Mapping) else {}
    out = out if isinstance(out, Mapping) else {}
    # langchain-anthropic also splits cache writes by lifetime; since early 2026 it
    # leaves the standard ``cache_creation`` out when it reports the split.
    by_lifetime = as_int(inp.get("ephemeral_5m_input_tokens")) + as_int(
        inp.get("ephemeral_1h_input_tokens")
    )
    written = max(as_int(inp.get("cache_creation")), by_lifetime)
    return Usage(
        as_int(um.get("input_tokens")),
        as_int(um.get("output_tokens")),
        cached_tokens=as_int(inp.get("cache_read")),
        cache_creation_tokens=written,
        cache_write_1h_tokens=min(written, as_int(inp.get("ephemeral_1h_input_tokens"))),
        reasoning_tokens=as_int(out.get("reasoning")),
    )


def _from_token_usage(token_usage: Any) -> Usage | None:
    """OpenAI-style ``llm_output["token_usage"]`` (completion models, older chat models).

    An empty mapping counts as zero: when one call served several prompts, LangChain
    gives the whole usage to the first prompt's result and ``{}`` to the others.
    """
    if not isinstance(token_usage, Mapping):
        return None
    prompt = token_usage.get("prompt_tokens_details")
    completion = token_usage.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, Mapping) else {}
    completion = completion if isinstance(completion, Mapping) else {}
    return Usage(
        as_int(token_usage.get("prompt_tokens")),
        as_int(token_usage.get("completion_tokens")),
        cached_tokens=as_int(prompt.get("cached_tokens")),
        cache_creation_tokens=as_int(prompt.get("cache_write_tokens")),
        reasoning_tokens=as_int(completion.get("reasoning_tokens")),
    )
