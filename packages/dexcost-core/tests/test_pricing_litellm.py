"""dexcost's costs against LiteLLM's own ``cost_per_token`` on the same bundled price data.

litellm is a test-only dependency. Both sides read the same file, so any difference beyond
float rounding is a bug on one side; the differences that are deliberate are pinned in the
``test_deliberate_difference_*`` tests, each with the reason.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable
from decimal import Decimal
from importlib import metadata, resources
from typing import Any

import pytest

# Without this litellm downloads its price map on import; the bundled copy is what we compare.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    litellm = pytest.importorskip("litellm")
    from litellm.cost_calculator import batch_cost_calculator
    from litellm.types.utils import (
        CacheCreationTokenDetails,
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        Usage,
    )

from dexcost.pricing import PricingEngine
from dexcost.pricing._data import bundled


def _data_release() -> str:
    """The litellm release the bundled price file was copied from (its SOURCE.md)."""
    text = resources.files("dexcost.pricing.data").joinpath("SOURCE.md").read_text("utf-8")
    found = re.search(r"\*\*litellm (\S+)\*\*", text)
    assert found, "pricing/data/SOURCE.md names no litellm release"
    return found.group(1)


# Both sides must read the same price file, and litellm's cost code changes between
# releases: the comparison is made against the release the data came from.
DATA_RELEASE = _data_release()
if metadata.version("litellm") != DATA_RELEASE:
    pytest.skip(
        f"needs litellm=={DATA_RELEASE}, the release the bundled prices come from "
        f"(litellm {metadata.version('litellm')} is installed; `nox -s tests` pins it)",
        allow_module_level=True,
    )

ENGINE = PricingEngine()
ENTRIES = bundled().entries
REL_TOLERANCE = Decimal("1e-9")  # litellm computes in binary floats

TEXT_MODES = {"chat", "completion", "responses", "embedding"}
# Providers whose litellm cost path adds what a token price cannot say (Perplexity's
# per-request search fees) or tries to sign in over the network on every call.
SKIPPED_PROVIDERS = {"perplexity", "github_copilot", "chatgpt"}
# Models litellm 1.106 prices at standard prices whatever the service tier (see
# test_deliberate_difference_listed_tier_prices_are_used).
LITELLM_IGNORES_TIER = {"moonshotai.kimi-k2.5"}


def _eligible(name: str, entry: Any) -> bool:
    return (
        entry.get("input_cost_per_token") is not None
        and entry.get("output_cost_per_token") is not None
        and entry.get("litellm_provider") not in SKIPPED_PROVIDERS
        and litellm.model_cost.get(name, {}).get("mode") in TEXT_MODES
        # Off-peak discounts depend on the clock; dexcost bills the standard price.
        and "off_peak_pricing" not in litellm.model_cost.get(name, {})
    )


MODELS = sorted(name for name, entry in ENTRIES.items() if _eligible(name, entry))


def _litellm_cost(
    model: str,
    prompt: int,
    completion: int,
    *,
    cache_read: int = 0,
    cache_write: int = 0,
    write_1h: int = 0,
    reasoning: int = 0,
    tier: str | None = None,
) -> Decimal | None:
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=cache_read,
            cache_creation_tokens=cache_write,
            cache_creation_token_details=CacheCreationTokenDetails(
                ephemeral_5m_input_tokens=cache_write - write_1h,
                ephemeral_1h_input_tokens=write_1h,
            )
            if write_1h
            else None,
        ),
        completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=reasoning)
        if reasoning
        else None,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = litellm.cost_per_token(model=model, usage_object=usage, service_tier=tier)
    except Exception:  # litellm cannot route a few listed names (e.g. retired providers)
        return None
    return Decimal(repr(parts[0])) + Decimal(repr(parts[1]))


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= REL_TOLERANCE * max(abs(a), abs(b)) + Decimal("1e-18")


def _compare(models: Iterable[str], cases: list[dict[str, Any]], *, minimum: int) -> None:
    mismatches: list[tuple[str, dict[str, Any], Decimal, Decimal]] = []
    compared: set[str] = set()
    for model in models:
        for case in cases:
            theirs = _litellm_cost(model, **case)
            if theirs is None:
                break
            ours = ENGINE.get_cost(
                model,
                case["prompt"],
                case["completion"],
                case.get("cache_read", 0),
                case.get("cache_write", 0),
                reasoning_tokens=case.get("reasoning", 0),
                service_tier=case.get("tier"),
                cache_write_1h_tokens=case.get("write_1h", 0),
            ).cost_usd
            compared.add(model)
            if not _close(ours, theirs):
                mismatches.append((model, case, ours, theirs))
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:5]}"
    assert len(compared) >= minimum, f"only {len(compared)} models compared"


def _having(*keys: str, where: Callable[[str], bool] = lambda name: True) -> list[str]:
    return [m for m in MODELS if all(ENTRIES[m].get(k) is not None for k in keys) and where(m)]


def test_plain_cached_and_cache_write_costs_match_litellm():
    cases = [
        {"prompt": 1_000, "completion": 100},
        {"prompt": 10_000, "completion": 500, "cache_read": 3_000},
        {"prompt": 10_000, "completion": 500, "cache_read": 2_000, "cache_write": 1_500},
        # Long context: thresholds at 100k/128k/200k/256k/272k are all crossed.
        {"prompt": 300_000, "completion": 1_000, "cache_read": 50_000, "cache_write": 10_000},
    ]
    _compare(MODELS, cases, minimum=1_500)


def test_reasoning_costs_match_litellm():
    cases = [
        {"prompt": 5_000, "completion": 800, "reasoning": 500},
        {"prompt": 5_000, "completion": 800, "reasoning": 800, "cache_read": 1_000},
    ]
    _compare(_having("output_cost_per_reasoning_token"), cases, minimum=20)
    _compare(MODELS[::10], cases, minimum=150)


def test_one_hour_cache_writes_match_litellm():
    cases = [
        {"prompt": 5_000, "completion": 800, "cache_write": 2_000, "write_1h": 500},
        {"prompt": 250_000, "completion": 800, "cache_write": 2_000, "write_1h": 2_000},
    ]
    _compare(_having("cache_creation_input_token_cost_above_1hr"), cases, minimum=100)


@pytest.mark.parametrize("tier", ["flex", "priority"])
def test_service_tier_costs_match_litellm(tier):
    # litellm 1.106 prices Fireworks through its own path, which ignores the service tier.
    models = _having(
        f"input_cost_per_token_{tier}",
        where=lambda m: (
            ENTRIES[m].get("litellm_provider") != "fireworks_ai" and m not in LITELLM_IGNORES_TIER
        ),
    )
    cases = [
        {"prompt": 5_000, "completion": 800, "cache_read": 1_000, "tier": tier},
        {"prompt": 5_000, "completion": 800, "reasoning": 300, "tier": tier},
    ]
    _compare(models, cases, minimum=100)


def test_batch_prices_match_litellms_batch_calculator():
    # litellm's cost_per_token ignores service_tier="batch"; its batch calculator uses the
    # same *_batches prices dexcost does.
    models = _having(
        "input_cost_per_token_batches",
        "output_cost_per_token_batches",
        where=lambda m: ENTRIES[m].get("litellm_provider") in {"openai", "anthropic", "azure"},
    )
    compared = 0
    for model in models:
        usage = Usage(prompt_tokens=20_000, completion_tokens=700, total_tokens=20_700)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parts = batch_cost_calculator(usage, model)
        except Exception:  # litellm cannot route fine-tune names without a provider
            continue
        theirs = sum(Decimal(repr(x)) for x in parts)
        ours = ENGINE.get_cost(model, 20_000, 700, service_tier="batch").cost_usd
        assert _close(ours, theirs), model
        compared += 1
    assert compared >= 20


# -- deliberate differences -----------------------------------------------------------------


def test_deliberate_difference_tier_prices_compose_with_long_context():
    """A tier's long-context price missing from the data is the tier price times the
    standard long-context step. The data's own listings follow that rule where they give
    both (gpt-5.4 flex above 272k = 2 x flex); litellm 1.106 instead falls back to the
    *standard* long-context price, so Azure gpt-5.4 priority costs no more per token above
    272k than below it while every other tier doubles, and Gemini 2.5 Pro flex above 200k
    costs twice what Google's 50% flex discount gives.
    """
    gpt = ENGINE.resolve("gpt-5.4")
    assert gpt is not None
    listed = ENTRIES["gpt-5.4"]
    assert (
        listed["input_cost_per_token_above_272k_tokens_flex"]
        == listed["input_cost_per_token_flex"]
        * listed["input_cost_per_token_above_272k_tokens"]
        / listed["input_cost_per_token"]
    )

    azure = ENTRIES["azure/us/gpt-5.4"]
    assert "input_cost_per_token_above_272k_tokens_priority" not in azure
    ours = ENGINE.get_cost("azure/us/gpt-5.4", 300_000, 0, service_tier="priority").cost_usd
    composed = (
        azure["input_cost_per_token_priority"]
        * azure["input_cost_per_token_above_272k_tokens"]
        / azure["input_cost_per_token"]
    )
    assert ours == 300_000 * composed
    theirs = _litellm_cost("azure/us/gpt-5.4", 300_000, 0, tier="priority")
    assert theirs is not None
    assert _close(theirs, 300_000 * azure["input_cost_per_token_above_272k_tokens"])
    assert azure["input_cost_per_token_above_272k_tokens"] == azure["input_cost_per_token_priority"]
    assert ours == 2 * theirs

    gemini = ENTRIES["gemini-2.5-pro"]
    ours = ENGINE.get_cost("gemini-2.5-pro", 300_000, 0, service_tier="flex").cost_usd
    assert ours == 300_000 * gemini["input_cost_per_token_flex"] * 2
    theirs = _litellm_cost("gemini-2.5-pro", 300_000, 0, tier="flex")
    assert theirs is not None
    assert _close(theirs, 300_000 * gemini["input_cost_per_token_above_200k_tokens"])


@pytest.mark.parametrize("model", ["fireworks_ai/deepseek-v4-pro-0813", *LITELLM_IGNORES_TIER])
def test_deliberate_difference_listed_tier_prices_are_used(model):
    """litellm 1.106 prices Fireworks models and some Bedrock ones at standard prices whatever
    the service tier (the flex-at-standard class of bug, BerriAI/litellm #13810); dexcost
    uses the tier prices the data lists."""
    entry = ENTRIES[model]
    ours = ENGINE.get_cost(model, 5_000, 800, service_tier="priority").cost_usd
    assert (
        ours
        == 5_000 * entry["input_cost_per_token_priority"]
        + 800 * entry["output_cost_per_token_priority"]
    )
    theirs = _litellm_cost(model, 5_000, 800, tier="priority")
    assert theirs is not None
    assert _close(
        theirs, 5_000 * entry["input_cost_per_token"] + 800 * entry["output_cost_per_token"]
    )


def test_deliberate_difference_batch_with_long_context_or_cache():
    """litellm's batch calculator drops the long-context step for batch calls (Gemini 2.5 Pro
    over 200k is billed at the short-context batch price) and, where the data has no batch
    cache price, bills cache reads at the batch *input* price. dexcost composes batch with
    long context and keeps the model's cache-read price."""
    entry = ENTRIES["gemini-2.5-pro"]
    ours = ENGINE.get_cost("gemini-2.5-pro", 300_000, 0, service_tier="batch").cost_usd
    assert ours == 300_000 * entry["input_cost_per_token_batches"] * 2
    usage = Usage(prompt_tokens=300_000, completion_tokens=0, total_tokens=300_000)
    theirs = sum(Decimal(repr(x)) for x in batch_cost_calculator(usage, "gemini-2.5-pro"))
    assert _close(theirs, 300_000 * entry["input_cost_per_token_batches"])

    ours = ENGINE.get_cost("gemini-2.5-pro", 10_000, 0, 3_000, service_tier="batch").cost_usd
    assert (
        ours
        == 7_000 * entry["input_cost_per_token_batches"]
        + 3_000 * entry["cache_read_input_token_cost"]
    )


def test_deliberate_difference_off_peak_prices_are_not_applied():
    """Off-peak discounts (DeepSeek) depend on the hour; dexcost bills the standard price,
    never less than the bill, while litellm applies the discount when the call is priced."""
    model = "deepseek/deepseek-v4-flash"
    assert "off_peak_pricing" in litellm.model_cost[model]
    entry = ENTRIES[model]
    assert (
        ENGINE.get_cost(model, 1_000, 100).cost_usd
        == 1_000 * entry["input_cost_per_token"] + 100 * entry["output_cost_per_token"]
    )
