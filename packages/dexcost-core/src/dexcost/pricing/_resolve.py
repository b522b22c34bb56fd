"""Model name resolution: the price entry a name as seen in an SDK call or response maps to.

Handles case and whitespace, provider prefixes (``openai/gpt-4o``), the ``provider=`` hint,
dated names (``gpt-4o-2024-08-06`` falls back to ``gpt-4o`` only if there is no dated entry),
``-latest`` aliases, Bedrock geography prefixes (``us.``, ``eu.``, ``apac.``, ``global.``) and
OpenAI fine-tune names (``ft:gpt-4o-mini-2024-07-18:org::id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from ._data import PriceData

# Provider names callers use (OpenTelemetry ``gen_ai.provider.name``, SDK names) -> the name the
# price data uses.
_PROVIDER_ALIASES: Mapping[str, str] = {
    "aws.bedrock": "bedrock",
    "aws_bedrock": "bedrock",
    "amazon_bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "gcp.gemini": "gemini",
    "google": "gemini",
    "google_genai": "gemini",
    "google-genai": "gemini",
    "gcp.vertex_ai": "vertex_ai",
    "gcp.gen_ai": "vertex_ai",
    "vertex": "vertex_ai",
    "vertexai": "vertex_ai",
    "azure.ai.openai": "azure",
    "azure_openai": "azure",
    "azure.ai.inference": "azure_ai",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "xai",
    "moonshot_ai": "moonshot",
    "ibm.watsonx.ai": "watsonx",
    "together": "together_ai",
    "fireworks": "fireworks_ai",
}

# Providers recognized as a name prefix (``openai/gpt-4o``) even if the data has no such key.
_KNOWN_PROVIDERS = frozenset(
    {
        *_PROVIDER_ALIASES.values(),
        "openai",
        "anthropic",
        "azure",
        "bedrock",
        "vertex_ai",
        "gemini",
        "cohere",
        "groq",
        "deepseek",
        "openrouter",
        "ollama",
    }
)

# Listings sold at the provider's own list price under another provider's name: Anthropic's
# models on Vertex AI (global endpoint) cost what they cost on Anthropic's API, and the data
# keeps older Claude models only there.
_SAME_PRICE_LISTINGS: Mapping[str, tuple[str, ...]] = {"anthropic": ("vertex_ai",)}

# Name families whose provider is unambiguous, used to choose among listings of a bare name.
_FAMILIES = (
    ("claude", "anthropic"),
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding-", "openai"),
    ("gemini", "gemini"),
)

_BEDROCK_GEO = re.compile(r"^(?:us|eu|apac|ap|au|jp|ca|us-gov|global)\.(?=[a-z0-9-]+\.)")
_DATE_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # gpt-4o-2024-08-06
    re.compile(r"-20\d{6}$"),  # claude-sonnet-4-5-20250929
    re.compile(r"@[a-z0-9-]+$"),  # claude-3-5-sonnet@20240620, @default (Vertex)
    re.compile(r"-(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$"),  # gpt-4-0613
    re.compile(r"-latest$"),
)


def normalize_provider(provider: str | None) -> str | None:
    """Lower-case a provider hint and map well-known aliases to the price data's names."""
    if provider is None:
        return None
    p = provider.strip().lower()
    return _PROVIDER_ALIASES.get(p, p) or None


def provider_matches(entry_provider: object, provider: str) -> bool:
    """Whether an entry's ``litellm_provider`` (``bedrock_converse``, ...) is ``provider``."""
    if not isinstance(entry_provider, str):
        return False
    e = entry_provider.lower()
    return (
        e == provider
        or e.startswith((provider + "_", provider + "-"))
        or e.endswith("-" + provider)
        or _PROVIDER_ALIASES.get(e) == provider
    )


def _variants(name: str) -> Iterator[str]:
    """``name`` itself, then less specific spellings of it, most specific first."""
    seen = {name}
    yield name
    queue = [name]
    if name.startswith("ft:") and name.count(":") >= 2:
        base = "ft:" + name.split(":")[1]
        queue.append(base)
        seen.add(base)
        yield base
    while queue:
        current = queue.pop(0)
        head, slash, last = current.rpartition("/")
        prefix = head + slash
        geo = _BEDROCK_GEO.sub("", last, count=1)
        candidates = [prefix + geo] if geo != last else []
        for pattern in _DATE_SUFFIXES:
            stripped = pattern.sub("", last, count=1)
            if stripped != last and stripped:
                candidates.append(prefix + stripped)
        for candidate in candidates:
            if candidate not in seen:
                seen.add(candidate)
                queue.append(candidate)
                yield candidate


def _family_provider(name: str) -> str | None:
    last = name.rpartition("/")[2]
    for start, provider in _FAMILIES:
        if last.startswith(start):
            return provider
    return None


def candidates(data: PriceData, model: str, provider: str | None) -> tuple[list[str], list[str]]:
    """The spellings to look ``model`` up by (most specific first) and the provider hints."""
    name = model.strip().lower()
    if not name:
        return [], []
    hints: list[str] = []
    explicit = normalize_provider(provider)
    if explicit:
        hints.append(explicit)
    names = [name]
    head, slash, rest = name.partition("/")
    prefixed = normalize_provider(head) if slash and rest else None
    if prefixed and (
        prefixed in data.prefixes or prefixed in _KNOWN_PROVIDERS or prefixed == explicit
    ):
        if prefixed not in hints:
            hints.append(prefixed)
        names.append(rest)
    return [v for n in names for v in _variants(n)], hints


def resolve_name(data: PriceData, model: str, provider: str | None) -> str | None:
    """The entry name in ``data`` for ``model`` (and an optional provider hint), or None."""
    variants, hints = candidates(data, model, provider)
    if not variants:
        return None
    name = variants[0]
    # 1. The hinted provider's own listing (``azure/gpt-4o``), or an entry it sells.
    key = _hinted(data, variants, hints)
    if key is not None:
        return key
    # 2. The name as written, any provider.
    for variant in variants:
        key = data.by_lower.get(variant)
        if key is not None:
            return key
    # 3. The provider the name's family implies (``claude-...`` is Anthropic's).
    family = _family_provider(name)
    if not hints and family is not None:
        key = _hinted(data, variants, [family])
        if key is not None:
            return key
    # 4. A bare name listed under exactly one provider's own prefix (``deepseek-chat``).
    wanted = hints[0] if hints else family
    for variant in variants:
        listed = data.bare.get(variant, ())
        if wanted is not None:
            listed = tuple(
                k
                for k in listed
                if provider_matches(data.entries[k].get("litellm_provider"), wanted)
            )
        if len(listed) == 1:
            return listed[0]
    return None


def _hinted(data: PriceData, variants: list[str], hints: list[str]) -> str | None:
    """The first variant the hinted provider lists itself, else one a same-price listing has."""
    for hint in hints:
        for variant in variants:
            key = data.by_lower.get(f"{hint}/{variant}")
            if key is not None:
                return key
            key = data.by_lower.get(variant)
            if key is not None and provider_matches(
                data.entries[key].get("litellm_provider"), hint
            ):
                return key
        for listing in _SAME_PRICE_LISTINGS.get(hint, ()):
            for variant in variants:
                key = data.by_lower.get(f"{listing}/{variant}")
                if key is not None:
                    return key
    return None


def bare_ambiguity(data: PriceData, model: str) -> tuple[str, ...]:
    """Listings a bare name could mean, for the log line when it resolves to none."""
    name = model.strip().lower()
    for variant in _variants(name):
        listed = data.bare.get(variant, ())
        if len(listed) > 1:
            return listed
    return ()
