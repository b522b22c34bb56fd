"""Name resolution and the bundled price data."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

import dexcost.pricing
from dexcost.pricing import PricingEngine


@pytest.fixture(scope="module")
def engine() -> PricingEngine:
    return PricingEngine()


@pytest.fixture(scope="module")
def raw_prices() -> dict[str, dict[str, object]]:
    """The bundled file read independently of the engine."""
    text = resources.files("dexcost.pricing").joinpath("data").joinpath("model_prices.json")
    data: dict[str, dict[str, object]] = json.loads(text.read_bytes(), parse_float=Decimal)
    return data


def test_public_names():
    assert dexcost.pricing.__all__ == [
        "CostResult",
        "ModelPrice",
        "PricingEngine",
        "RateEntry",
        "RateRegistry",
        "TokenRates",
    ]


def test_importing_pricing_imports_neither_litellm_nor_network_or_yaml_modules():
    code = (
        "import sys, dexcost.pricing; dexcost.pricing.PricingEngine().get_cost('gpt-4o', 1, 1);"
        "print(sorted(m for m in ('litellm', 'yaml', 'urllib.request', 'http.client')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(dexcost.pricing.__file__).parents[2])},
    )
    assert out.stdout.strip() == "[]"


def test_bundled_file_matches_its_recorded_source():
    data = resources.files("dexcost.pricing").joinpath("data")
    source = data.joinpath("SOURCE.md").read_text(encoding="utf-8")
    recorded = re.search(r"SHA-256: `([0-9a-f]{64})`", source)
    assert recorded is not None
    actual = hashlib.sha256(data.joinpath("model_prices.json").read_bytes()).hexdigest()
    assert actual == recorded.group(1)
    assert "litellm 1.106.2" in source
    assert "MIT License" in source


@pytest.mark.parametrize(
    ("model", "provider", "entry"),
    [
        ("gpt-4o", None, "gpt-4o"),
        ("GPT-4o ", None, "gpt-4o"),
        ("openai/gpt-4o", None, "gpt-4o"),
        ("gpt-4o", "openai", "gpt-4o"),
        # A dated name: its own entry when there is one, else the undated base.
        ("gpt-4o-2024-08-06", None, "gpt-4o-2024-08-06"),
        ("gpt-4o-2031-01-01", None, "gpt-4o"),
        ("gpt-4-0613", None, "gpt-4-0613"),
        ("claude-sonnet-4-5-20250929", None, "claude-sonnet-4-5-20250929"),
        ("claude-sonnet-4-5-20991231", "anthropic", "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-5", None, "claude-sonnet-4-5"),
        # Provider hint: the provider's own listing.
        ("gpt-4o", "azure", "azure/gpt-4o"),
        ("gpt-4o", "azure.ai.openai", "azure/gpt-4o"),
        ("azure/gpt-4o", None, "azure/gpt-4o"),
        ("gemini-2.5-pro", "gemini", "gemini/gemini-2.5-pro"),
        ("gemini-2.5-pro", "gcp.gemini", "gemini/gemini-2.5-pro"),
        # Anthropic's -latest aliases: older Claude models are listed only on Vertex AI,
        # at Anthropic's list price.
        ("claude-3-5-sonnet-latest", "anthropic", "vertex_ai/claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", None, "vertex_ai/claude-3-5-sonnet"),
        ("claude-3-5-sonnet@20240620", "vertex_ai", "vertex_ai/claude-3-5-sonnet@20240620"),
        # Bedrock: region-qualified inference profiles, with and without their own entry.
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            None,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            None,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws.bedrock",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "bedrock",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        # A bare name listed by exactly one provider under its own prefix.
        ("devstral-latest", None, "mistral/devstral-latest"),
        # A name several hosts list: the hint picks one.
        (
            "meta-llama/Meta-Llama-3-8B-Instruct",
            "together_ai",
            "together_ai/meta-llama/Meta-Llama-3-8B-Instruct",
        ),
        # OpenAI fine-tunes are priced at the fine-tune price of their base model.
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None, "ft:gpt-4o-mini-2024-07-18"),
    ],
)
def test_name_resolution(engine, raw_prices, model, provider, entry):
    assert entry in raw_prices
    price = engine.resolve(model, provider)
    assert price is not None
    assert price.name == entry
    assert price.rates.input == raw_prices[entry]["input_cost_per_token"]


def test_a_name_several_hosts_list_needs_a_provider(engine, caplog):
    caplog.set_level(logging.WARNING, logger="dexcost.pricing")
    result = engine.get_cost("meta-llama/Meta-Llama-3-8B-Instruct", 10, 10)
    assert result.cost_confidence == "unknown"
    assert "listed by several providers" in caplog.text
    assert "together_ai/meta-llama/Meta-Llama-3-8B-Instruct" in caplog.text


def test_unknown_names_resolve_to_none(engine):
    assert engine.resolve("definitely-not-a-model") is None
    assert engine.resolve("  ") is None
    assert engine.get_cost("", 10, 10).cost_confidence == "unknown"


def test_bundled_cost_matches_the_file_prices(engine, raw_prices):
    entry = raw_prices["claude-sonnet-4-5"]
    cost = engine.get_cost(
        "claude-sonnet-4-5",
        10_000,
        500,
        cached_tokens=4_000,
        cache_creation_tokens=1_000,
        cache_write_1h_tokens=400,
    )
    expected = (
        5_000 * entry["input_cost_per_token"]
        + 4_000 * entry["cache_read_input_token_cost"]
        + 600 * entry["cache_creation_input_token_cost"]
        + 400 * entry["cache_creation_input_token_cost_above_1hr"]
        + 500 * entry["output_cost_per_token"]
    )
    assert cost.cost_usd == expected
    assert (cost.cost_confidence, cost.pricing_source) == ("computed", "litellm")


def test_bundled_data_is_loaded_once_and_versioned_the_same(engine):
    other = PricingEngine()
    assert other.pricing_version == engine.pricing_version
    assert re.fullmatch(r"[0-9a-f]{16}", engine.pricing_version)


def test_every_bundled_price_is_a_clean_decimal(raw_prices):
    engine = PricingEngine()
    for name in raw_prices:
        price = engine.resolve(name)
        if price is None:
            continue
        r = price.rates
        for rate in (r.input, r.output, r.cache_read, r.cache_write, r.cache_write_1h, r.reasoning):
            assert isinstance(rate, Decimal)
            assert rate.is_finite()
            assert rate >= 0
            assert len(rate.as_tuple().digits) <= 15
