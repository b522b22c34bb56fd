"""Property tests of the money math: exact sums, monotonic costs, cache never dearer."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from dexcost.pricing import PricingEngine

ENGINE = PricingEngine()
# Bundled models with cache, reasoning, service-tier, long-context and range-tier prices.
MODELS = [
    "gpt-4o",
    "gpt-5.4",
    "claude-sonnet-4-5",
    "gemini-2.5-pro",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "dashscope/qwen-plus-2025-07-28",
    "o3",
]
TIERS = [None, "flex", "priority", "batch"]


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int
    cache_write_1h_tokens: int

    def kwargs(self) -> dict[str, int]:
        return dict(vars(self))


@st.composite
def usages(draw: st.DrawFn, max_input: int = 1_500_000) -> Usage:
    """Consistent counts: cache parts within input, reasoning within output, 1h within writes."""
    input_tokens = draw(st.integers(0, max_input))
    cached = draw(st.integers(0, input_tokens))
    creation = draw(st.integers(0, input_tokens - cached))
    output = draw(st.integers(0, 200_000))
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        cached_tokens=cached,
        cache_creation_tokens=creation,
        reasoning_tokens=draw(st.integers(0, output)),
        cache_write_1h_tokens=draw(st.integers(0, creation)),
    )


def cost(model: str, usage: Usage, tier: str | None = None) -> Decimal:
    return ENGINE.get_cost(model, service_tier=tier, **usage.kwargs()).cost_usd


@given(st.sampled_from(MODELS), usages(), st.sampled_from(TIERS))
def test_cost_is_exactly_the_decimal_sum_of_its_parts(model, usage, tier):
    price = ENGINE.resolve(model)
    assert price is not None
    r = price.rates_for(usage.input_tokens, tier)
    parts = [
        (usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens) * r.input,
        usage.cached_tokens * r.cache_read,
        (usage.cache_creation_tokens - usage.cache_write_1h_tokens) * r.cache_write,
        usage.cache_write_1h_tokens * r.cache_write_1h,
        (usage.output_tokens - usage.reasoning_tokens) * r.output,
        usage.reasoning_tokens * r.reasoning,
    ]
    result = cost(model, usage, tier)
    assert type(result) is Decimal
    assert result == sum(parts, Decimal(0))
    assert result >= 0


@given(
    st.sampled_from(MODELS),
    usages(),
    st.sampled_from(TIERS),
    st.integers(1, 300_000),
    st.sampled_from(["input_tokens", "output_tokens"]),
)
def test_more_tokens_never_cost_less(model, usage, tier, extra, field):
    more = Usage(**{**usage.kwargs(), field: getattr(usage, field) + extra})
    assert cost(model, more, tier) >= cost(model, usage, tier)


@given(st.sampled_from(MODELS), usages(), st.sampled_from(TIERS), st.data())
def test_cached_tokens_never_cost_more_than_uncached(model, usage, tier, data):
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens
    moved = data.draw(st.integers(0, uncached))
    more_cached = Usage(**{**usage.kwargs(), "cached_tokens": usage.cached_tokens + moved})
    assert cost(model, more_cached, tier) <= cost(model, usage, tier)


@given(usages(max_input=100_000), st.integers(1, 10))
def test_cost_is_linear_below_any_threshold(usage, k):
    scaled = Usage(**{name: value * k for name, value in usage.kwargs().items()})
    assert cost("gpt-4o", scaled) == k * cost("gpt-4o", usage)


@given(
    st.decimals(min_value=0, max_value=100, places=6),
    st.decimals(min_value=0, max_value=100, places=6),
    st.decimals(min_value=0, max_value=100, places=6),
    usages(),
)
def test_custom_prices_per_1k_are_applied_exactly(input_per_1k, output_per_1k, read_per_1k, usage):
    engine = PricingEngine()
    engine.set_custom_pricing(
        "house-model", input_per_1k, output_per_1k, cached_input_per_1k=read_per_1k
    )
    uncached = usage.input_tokens - usage.cached_tokens
    expected = (
        uncached * input_per_1k
        + usage.cached_tokens * read_per_1k
        + usage.output_tokens * output_per_1k
    ) / 1000
    result = engine.get_cost("house-model", **usage.kwargs())
    assert result.cost_usd == expected
    assert result.pricing_source == "custom"
