"""PricingEngine: token semantics, tiers, long context, custom prices, unknown models, errors.

Most tests price against a small price file written for the test, so each expected cost is
derived from prices the test itself chose.
"""

from __future__ import annotations

import decimal
import json
import logging
import re
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dexcost.pricing import CostResult, ModelPrice, PricingEngine

IN = Decimal("0.000003")
OUT = Decimal("0.000015")
READ = Decimal("0.0000003")
WRITE = Decimal("0.00000375")
WRITE_1H = Decimal("0.000006")
REASON = Decimal("0.00004")

PRICES: dict[str, dict[str, Any]] = {
    "cached-model": {
        "litellm_provider": "acme",
        "input_cost_per_token": IN,
        "output_cost_per_token": OUT,
        "cache_read_input_token_cost": READ,
        "cache_creation_input_token_cost": WRITE,
        "cache_creation_input_token_cost_above_1hr": WRITE_1H,
    },
    "plain-model": {
        "litellm_provider": "acme",
        "input_cost_per_token": IN,
        "output_cost_per_token": OUT,
    },
    "thinker": {
        "litellm_provider": "acme",
        "input_cost_per_token": IN,
        "output_cost_per_token": OUT,
        "output_cost_per_reasoning_token": REASON,
    },
    "tiered": {
        "litellm_provider": "acme",
        "input_cost_per_token": Decimal("0.000002"),
        "output_cost_per_token": Decimal("0.00001"),
        "cache_read_input_token_cost": Decimal("0.0000002"),
        "input_cost_per_token_flex": Decimal("0.000001"),
        "output_cost_per_token_flex": Decimal("0.000005"),
        "input_cost_per_token_priority": Decimal("0.000004"),
        "output_cost_per_token_priority": Decimal("0.00002"),
        "input_cost_per_token_batches": Decimal("0.000001"),
        "output_cost_per_token_batches": Decimal("0.000005"),
        "input_cost_per_token_above_200k_tokens": Decimal("0.000004"),
        "output_cost_per_token_above_200k_tokens": Decimal("0.000015"),
        "cache_read_input_token_cost_above_200k_tokens": Decimal("0.0000004"),
        "input_cost_per_token_above_200k_tokens_priority": Decimal("0.000009"),
    },
    "two-steps": {
        "litellm_provider": "acme",
        "input_cost_per_token": Decimal("0.000001"),
        "output_cost_per_token": Decimal("0.000002"),
        "input_cost_per_token_above_128k_tokens": Decimal("0.000002"),
        "input_cost_per_token_above_256k_tokens": Decimal("0.000003"),
        "output_cost_per_token_above_128k_tokens": Decimal("0.000004"),
    },
    "xai/grok-test": {
        "litellm_provider": "xai",
        "input_cost_per_token": Decimal("0.000003"),
        "output_cost_per_token": Decimal("0.000015"),
        "input_cost_per_token_above_128k_tokens": Decimal("0.000006"),
    },
    "ranges": {
        "litellm_provider": "dashscope",
        "tiered_pricing": [
            {
                "input_cost_per_token": Decimal("1E-7"),
                "output_cost_per_token": Decimal("4E-7"),
                "range": [0, 256000],
            },
            {
                "input_cost_per_token": Decimal("5E-7"),
                "output_cost_per_token": Decimal("2E-6"),
                "range": [256000, 1000000],
            },
        ],
    },
    "images-only": {"litellm_provider": "acme", "output_cost_per_image": Decimal("0.04")},
    "noisy": {
        "litellm_provider": "acme",
        "input_cost_per_token": Decimal("5.0000000000000004E-8"),
        "output_cost_per_token": Decimal("2.0000000000000002E-7"),
    },
}


def write_prices(path: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Write ``entries`` as a LiteLLM-shaped file, Decimals as JSON numbers spelled exactly."""

    def default(value: object) -> object:
        if isinstance(value, Decimal):
            return f"@number:{value}"
        raise TypeError(type(value).__name__)

    text = re.sub(r'"@number:([^"]+)"', r"\1", json.dumps(entries, default=default))
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def engine(tmp_path: Path) -> PricingEngine:
    return PricingEngine(write_prices(tmp_path / "prices.json", PRICES))


# -- token semantics ------------------------------------------------------------------------


def test_plain_call_is_input_times_input_price_plus_output_times_output_price(engine):
    result = engine.get_cost("plain-model", 1200, 345)
    assert result == CostResult(
        1200 * IN + 345 * OUT, "computed", "litellm", engine.pricing_version
    )
    assert type(result.cost_usd) is Decimal


def test_cache_reads_are_billed_at_the_cache_price_and_never_also_at_the_full_price(engine):
    # input_tokens includes the 400 cache reads: 600 at the input price, 400 at the read price.
    cost = engine.get_cost("cached-model", 1000, 0, cached_tokens=400).cost_usd
    assert cost == 600 * IN + 400 * READ
    assert cost < engine.get_cost("cached-model", 1000, 0).cost_usd


def test_cache_writes_are_billed_at_their_own_price(engine):
    cost = engine.get_cost("cached-model", 1000, 10, cached_tokens=200, cache_creation_tokens=300)
    assert cost.cost_usd == 500 * IN + 200 * READ + 300 * WRITE + 10 * OUT


def test_one_hour_cache_writes_are_a_subset_billed_at_the_1h_price(engine):
    cost = engine.get_cost(
        "cached-model", 1000, 0, cache_creation_tokens=300, cache_write_1h_tokens=100
    ).cost_usd
    assert cost == 700 * IN + 200 * WRITE + 100 * WRITE_1H


def test_missing_cache_prices_fall_back_to_the_input_price(engine):
    # A provider that publishes no cache price bills those tokens as ordinary input.
    cost = engine.get_cost(
        "plain-model",
        1000,
        0,
        cached_tokens=100,
        cache_creation_tokens=200,
        cache_write_1h_tokens=50,
    ).cost_usd
    assert cost == 1000 * IN


def test_reasoning_is_part_of_output_and_billed_once_at_the_reasoning_price(engine):
    cost = engine.get_cost("thinker", 100, 1000, reasoning_tokens=400).cost_usd
    assert cost == 100 * IN + 600 * OUT + 400 * REASON


def test_reasoning_without_its_own_price_costs_the_output_price(engine):
    with_reasoning = engine.get_cost("plain-model", 100, 1000, reasoning_tokens=400).cost_usd
    assert (
        with_reasoning
        == engine.get_cost("plain-model", 100, 1000).cost_usd
        == 100 * IN + 1000 * OUT
    )


def test_inconsistent_counts_are_clamped_and_logged_once(engine, caplog):
    caplog.set_level(logging.WARNING, logger="dexcost.pricing")
    # Anthropic-style counts (input excluding cache) passed by mistake: cache parts billed as given.
    first = engine.get_cost("cached-model", 100, 5, cached_tokens=300, cache_creation_tokens=50)
    engine.get_cost("cached-model", 100, 5, cached_tokens=300, cache_creation_tokens=50)
    assert first.cost_usd == 300 * READ + 50 * WRITE + 5 * OUT
    over_reasoning = engine.get_cost("thinker", 0, 10, reasoning_tokens=30).cost_usd
    assert over_reasoning == 30 * REASON
    messages = [r.getMessage() for r in caplog.records if "inconsistent" in r.getMessage()]
    assert len(messages) == 2  # once for each model, not once per call
    assert "cached-model" in messages[0]


def test_cost_is_exact_whatever_the_callers_decimal_context(engine):
    expected = 123_456_789 * IN + 987_654_321 * OUT
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        assert engine.get_cost("plain-model", 123_456_789, 987_654_321).cost_usd == expected


# -- service tiers and long context ---------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "inp", "out"),
    [
        ("flex", "0.000001", "0.000005"),
        ("priority", "0.000004", "0.00002"),
        ("batch", "0.000001", "0.000005"),
        ("batches", "0.000001", "0.000005"),
        ("FLEX ", "0.000001", "0.000005"),
        ("default", "0.000002", "0.00001"),
        ("standard", "0.000002", "0.00001"),
        ("auto", "0.000002", "0.00001"),
        (None, "0.000002", "0.00001"),
    ],
)
def test_service_tier_selects_the_tiers_prices(engine, tier, inp, out):
    cost = engine.get_cost("tiered", 1000, 100, service_tier=tier).cost_usd
    assert cost == 1000 * Decimal(inp) + 100 * Decimal(out)


def test_a_tier_without_prices_uses_standard_prices_and_logs_once(engine, caplog):
    caplog.set_level(logging.WARNING, logger="dexcost.pricing")
    for _ in range(3):
        cost = engine.get_cost("plain-model", 1000, 100, service_tier="flex").cost_usd
        assert cost == 1000 * IN + 100 * OUT
    assert sum("'flex'" in r.getMessage() for r in caplog.records) == 1


def test_a_tier_without_its_own_cache_price_keeps_the_standard_cache_price(engine):
    cost = engine.get_cost("tiered", 1000, 0, cached_tokens=500, service_tier="flex").cost_usd
    assert cost == 500 * Decimal("0.000001") + 500 * Decimal("0.0000002")


def test_long_context_price_applies_once_input_exceeds_the_threshold(engine):
    at = engine.get_cost("tiered", 200_000, 10).cost_usd
    above = engine.get_cost("tiered", 200_001, 10).cost_usd
    assert at == 200_000 * Decimal("0.000002") + 10 * Decimal("0.00001")
    assert above == 200_001 * Decimal("0.000004") + 10 * Decimal("0.000015")


def test_long_context_threshold_counts_cached_input(engine):
    # 150k uncached + 60k cache reads = 210k input: above 200k, for every kind of token.
    cost = engine.get_cost("tiered", 210_000, 0, cached_tokens=60_000).cost_usd
    assert cost == 150_000 * Decimal("0.000004") + 60_000 * Decimal("0.0000004")


def test_highest_crossed_threshold_wins_and_lower_steps_fill_gaps(engine):
    cost = engine.get_cost("two-steps", 300_000, 10).cost_usd
    # input from the 256k step, output only has a 128k step.
    assert cost == 300_000 * Decimal("0.000003") + 10 * Decimal("0.000004")


def test_tier_and_long_context_compose(engine):
    # An explicit priority price above 200k is used as listed ...
    listed = engine.get_cost("tiered", 300_000, 0, service_tier="priority").cost_usd
    assert listed == 300_000 * Decimal("0.000009")
    # ... and a missing flex price above 200k is the flex price times the standard 200k step.
    composed = engine.get_cost("tiered", 300_000, 0, service_tier="flex").cost_usd
    assert composed == 300_000 * Decimal("0.000001") * 2


def test_xai_bills_long_context_from_the_threshold_itself(engine):
    assert engine.get_cost("xai/grok-test", 128_000, 0).cost_usd == 128_000 * Decimal("0.000006")
    assert engine.get_cost("xai/grok-test", 127_999, 0).cost_usd == 127_999 * Decimal("0.000003")


def test_tiered_pricing_ranges_price_the_whole_call_at_one_tier(engine):
    assert engine.get_cost("ranges", 256_000, 100).cost_usd == 256_000 * Decimal(
        "1E-7"
    ) + 100 * Decimal("4E-7")
    assert engine.get_cost("ranges", 256_001, 100).cost_usd == 256_001 * Decimal(
        "5E-7"
    ) + 100 * Decimal("2E-6")
    # An empty prompt still pays for its output (first tier), never a silent zero.
    assert engine.get_cost("ranges", 0, 100).cost_usd == 100 * Decimal("4E-7")
    # Above the last range, the last tier.
    assert engine.get_cost("ranges", 2_000_000, 0).cost_usd == 2_000_000 * Decimal("5E-7")


def test_rates_for_exposes_the_rates_a_call_gets(engine):
    price = engine.resolve("tiered")
    assert isinstance(price, ModelPrice)
    assert price.service_tiers == {"flex", "priority", "batches"}
    assert price.rates.input == Decimal("0.000002")
    assert price.rates_for(300_000, "priority").input == Decimal("0.000009")
    assert price.rates_for(10, "batch").output == Decimal("0.000005")


# -- unknown models and errors --------------------------------------------------------------


def test_unknown_model_costs_zero_with_unknown_confidence_and_logs_once(engine, caplog):
    caplog.set_level(logging.WARNING, logger="dexcost.pricing")
    results = [engine.get_cost("no-such-model", 1000, 100) for _ in range(5)]
    assert results[0] == CostResult(Decimal(0), "unknown", "unknown", engine.pricing_version)
    assert all(r == results[0] for r in results)
    logged = [r for r in caplog.records if "no-such-model" in r.getMessage()]
    assert len(logged) == 1
    assert "set_custom_pricing" in logged[0].getMessage()


def test_an_entry_without_token_prices_is_unknown_not_free(engine):
    result = engine.get_cost("images-only", 1000, 100)
    assert (result.cost_confidence, result.pricing_source) == ("unknown", "unknown")
    assert engine.resolve("images-only") is None


@pytest.mark.parametrize(
    "field",
    [
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
        "cache_write_1h_tokens",
    ],
)
def test_negative_counts_raise_value_error_naming_the_argument(engine, field):
    counts = dict.fromkeys(
        [
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cache_creation_tokens",
            "reasoning_tokens",
            "cache_write_1h_tokens",
        ],
        0,
    )
    counts[field] = -1
    with pytest.raises(ValueError, match=f"{field} must not be negative"):
        engine.get_cost("plain-model", **counts)


@pytest.mark.parametrize("bad", [True, 1.0, "10", None])
def test_non_int_counts_raise_type_error(engine, bad):
    with pytest.raises(TypeError, match="input_tokens must be an int"):
        engine.get_cost("plain-model", bad, 0)
    with pytest.raises(TypeError, match="reasoning_tokens must be an int"):
        engine.get_cost("plain-model", 0, 0, reasoning_tokens=bad)


def test_int_like_counts_are_accepted(engine):
    class Count:  # e.g. a numpy integer
        def __index__(self) -> int:
            return 7

    assert engine.get_cost("plain-model", Count(), Count()).cost_usd == 7 * IN + 7 * OUT  # type: ignore[arg-type]


def test_model_must_be_a_string(engine):
    with pytest.raises(TypeError, match="model must be a str"):
        engine.get_cost(None, 1, 1)  # type: ignore[arg-type]


# -- custom prices and version --------------------------------------------------------------


def test_custom_pricing_takes_precedence_and_changes_the_version(engine):
    before = engine.pricing_version
    engine.set_custom_pricing("plain-model", "0.5", Decimal("1.5"))
    result = engine.get_cost("plain-model", 2000, 1000)
    assert result.pricing_source == "custom"
    assert result.cost_confidence == "computed"
    assert result.cost_usd == Decimal("0.5") * 2 + Decimal("1.5") * 1
    assert result.pricing_version == engine.pricing_version != before


def test_custom_pricing_for_an_unknown_model_and_its_spellings(engine):
    engine.set_custom_pricing("My-FineTune", 0.25, 1.25)  # floats are accepted for prices
    for name in ("my-finetune", " MY-FINETUNE ", "openai/my-finetune"):
        assert engine.get_cost(name, 1000, 1000).cost_usd == Decimal("1.5")
    engine.set_custom_pricing("azure/prod-deployment", "1", "1")
    assert engine.get_cost("prod-deployment", 1000, 0, provider="azure").cost_usd == Decimal(1)
    assert engine.get_cost("prod-deployment", 1000, 0).cost_confidence == "unknown"


def test_custom_cache_prices_default_to_the_input_price(engine):
    engine.set_custom_pricing("m", "1", "2")
    assert engine.get_cost("m", 1000, 0, cached_tokens=1000).cost_usd == Decimal(1)
    engine.set_custom_pricing("m", "1", "2", cached_input_per_1k="0.1", cache_write_per_1k="1.25")
    cost = engine.get_cost("m", 3000, 0, cached_tokens=1000, cache_creation_tokens=1000).cost_usd
    assert cost == Decimal("1") + Decimal("0.1") + Decimal("1.25")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("m", "-1", "1"), ValueError),
        (("m", "abc", "1"), ValueError),
        (("m", "1", None), TypeError),
        (("", "1", "1"), ValueError),
    ],
)
def test_custom_pricing_rejects_bad_input(engine, args, error):
    with pytest.raises(error):
        engine.set_custom_pricing(*args)


def test_version_is_stable_for_the_same_data_and_custom_prices(tmp_path):
    path = write_prices(tmp_path / "p.json", PRICES)
    a, b = PricingEngine(path), PricingEngine(path)
    assert a.pricing_version == b.pricing_version
    a.set_custom_pricing("x", "1", "2")
    b.set_custom_pricing("x", "1.000", "2")
    assert a.pricing_version == b.pricing_version
    other = PricingEngine(write_prices(tmp_path / "q.json", {"plain-model": PRICES["plain-model"]}))
    assert other.pricing_version != PricingEngine(path).pricing_version


def test_float_noise_in_the_data_is_removed(engine):
    price = engine.resolve("noisy")
    assert price is not None
    assert (price.rates.input, price.rates.output) == (Decimal("5E-8"), Decimal("2E-7"))
    assert engine.get_cost("noisy", 1000, 0).cost_usd == Decimal("0.00005")


def test_concurrent_custom_prices_and_costs(engine):
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(50):
                engine.set_custom_pricing(f"model-{i}-{j}", "1", "1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(500):
                assert engine.get_cost("cached-model", 10, 1).cost_usd == 10 * IN + OUT
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(engine.resolve(f"model-{i}-49") is not None for i in range(3))


# -- data files ------------------------------------------------------------------------------


def test_missing_data_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="price data file not found"):
        PricingEngine(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid JSON price document"),
        ("[1, 2]", "must be a JSON object"),
        ('{"m": {"mode": "chat"}}', "no model in the document has a per-token price"),
    ],
)
def test_invalid_data_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        PricingEngine(path)
    assert str(path) in str(info.value)
