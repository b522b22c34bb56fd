"""Endpoints of LLM providers: priced by the provider instrumentation, never by the catalog.

The HTTP layer skips these so a model call made through an SDK is not billed twice. Where
a host also serves non-LLM products that the catalog prices (Cohere rerank, Mistral OCR,
Perplexity Search), only the model paths are listed.
"""

from __future__ import annotations

from dexcost.catalog._match import PatternIndex, parse_pattern

#: Host patterns (``host`` or ``host/path-prefix``, same syntax as the catalog).
LLM_PROVIDER_HOSTS: tuple[str, ...] = (
    # OpenAI and Azure OpenAI
    "api.openai.com",
    "*.openai.azure.com",
    "*.cognitiveservices.azure.com/openai",
    "*.services.ai.azure.com/openai",
    "*.services.ai.azure.com/models",
    "models.inference.ai.azure.com",
    "*.inference.ai.azure.com",
    "models.github.ai",
    # Anthropic
    "api.anthropic.com",
    # Google Gemini and Vertex AI
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "*-aiplatform.googleapis.com",
    # AWS Bedrock runtime
    "bedrock-runtime.*.amazonaws.com",
    "bedrock-runtime-fips.*.amazonaws.com",
    # Cohere: chat and generation only; embed and rerank are in the catalog
    "api.cohere.com/v1/chat",
    "api.cohere.com/v2/chat",
    "api.cohere.com/v1/generate",
    "api.cohere.com/compatibility",
    "api.cohere.ai/v1/chat",
    "api.cohere.ai/v2/chat",
    "api.cohere.ai/v1/generate",
    # Mistral: chat, completion, embeddings, agents; OCR is in the catalog
    "api.mistral.ai/v1/chat",
    "api.mistral.ai/v1/fim",
    "api.mistral.ai/v1/embeddings",
    "api.mistral.ai/v1/agents",
    "api.mistral.ai/v1/conversations",
    "api.mistral.ai/v1/moderations",
    "codestral.mistral.ai",
    # Perplexity Sonar; the Search API (/search) is in the catalog
    "api.perplexity.ai/chat",
    "api.perplexity.ai/responses",
    "api.perplexity.ai/v1/responses",
    "api.perplexity.ai/async",
    # xAI models; its voice endpoints are not
    "api.x.ai/v1/chat",
    "api.x.ai/v1/completions",
    "api.x.ai/v1/responses",
    "api.x.ai/v1/messages",
    "api.x.ai/v1/embeddings",
    # Model hosts and routers priced per token
    "openrouter.ai/api",
    "api.together.xyz",
    "api.together.ai",
    "api.fireworks.ai/inference",
    "api.groq.com/openai",
    "api.deepinfra.com",
    "api.cerebras.ai",
    "api.novita.ai",
    "api.studio.nebius.com",
    "api.tokenfactory.nebius.com",
    "api.sambanova.ai",
    "inference.baseten.co",
    "api.lambda.ai",
    "api.hyperbolic.xyz",
    "api.deepseek.com",
    "api.moonshot.ai",
    "api.moonshot.cn",
    "api.z.ai",
    "open.bigmodel.cn",
    "dashscope.aliyuncs.com",
    "dashscope-intl.aliyuncs.com",
    "api.ai21.com",
    "router.huggingface.co",
    "api-inference.huggingface.co",
    # Hugging Face Inference Endpoints: dedicated model servers billed by the instance
    # hour; their OpenAI-compatible routes are model calls
    "*.endpoints.huggingface.cloud/v1/chat/completions",
    "*.endpoints.huggingface.cloud/v1/completions",
    "gateway.ai.cloudflare.com",
    "api.cloudflare.com/client/v4/accounts/*/ai",
)

_index: PatternIndex[bool] = PatternIndex(
    (parse_pattern(p), None, True) for p in LLM_PROVIDER_HOSTS
)


def is_llm_provider_url(url: str) -> bool:
    """True if ``url`` is an LLM provider endpoint (left to the provider instrumentation)."""
    return _index.match(url) is not None
