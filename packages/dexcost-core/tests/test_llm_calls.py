"""record_llm_call: validation, pricing through the PricingEngine, unknown models."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

import dexcost


def test_cost_is_computed_from_bundled_prices(sdk: dexcost.CostTracker, read: Any) -> None:
    with dexcost.task("chat") as t:
        event = t.record_llm_call("openai", "gpt-4o", 1000, 100, cached_tokens=200, latency_ms=420)
    # gpt-4o list prices: $2.50 / 1M input, $1.25 / 1M cached input, $10 / 1M output.
    expected = 800 * Decimal("2.5e-6") + 200 * Decimal("1.25e-6") + 100 * Decimal("1e-5")
    assert event.cost_usd == expected
    assert event.cost_confidence == "computed"
    assert event.pricing_source == "litellm"
    assert event.pricing_version == sdk.pricing.pricing_version
    assert t.task.total_cached_tokens == 200
    assert t.task.llm_cost_usd == expected
    (row,) = read("SELECT * FROM events")
    assert (row["provider"], row["model"], row["input_tokens"], row["output_tokens"]) == (
        "openai",
        "gpt-4o",
        1000,
        100,
    )
    assert (row["cached_tokens"], row["latency_ms"], Decimal(row["cost_usd"])) == (
        200,
        420,
        expected,
    )


def test_explicit_cost_is_exact_and_manual(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("chat") as t:
        event = t.record_llm_call("openai", "gpt-4o", 10, 10, cost_usd="0.5")
    assert (event.cost_usd, event.cost_confidence, event.pricing_source) == (
        Decimal("0.5"),
        "exact",
        "manual",
    )


def test_one_hour_cache_writes_are_kept_in_the_details(sdk: dexcost.CostTracker, read: Any) -> None:
    # The event has one cache-write column; how many of the writes went to the 1-hour
    # cache (billed at twice the input price, not 1.25 times) stays in its details.
    mine = {"turn": 3}
    with dexcost.task("chat") as t:
        split = t.record_llm_call(
            "anthropic",
            "claude-sonnet-4-5",
            1000,
            10,
            cache_creation_tokens=300,
            cache_write_1h_tokens=100,
            details=mine,
        )
        plain = t.record_llm_call("anthropic", "claude-sonnet-4-5", 1000, 10)
    assert split.details == {"turn": 3, "cache_write_1h_tokens": 100}
    assert mine == {"turn": 3}  # the caller's dict is not changed
    assert "cache_write_1h_tokens" not in plain.details
    rows = read("SELECT details FROM events ORDER BY event_id")
    assert [json.loads(r["details"] or "{}").get("cache_write_1h_tokens") for r in rows] == [
        100,
        None,
    ]


def test_unknown_model_costs_zero_with_unknown_confidence(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("chat") as t:
        event = t.record_llm_call("acme-llm", "acme-model-xl-9000", 500, 50)
    assert event.cost_usd == 0
    assert event.cost_confidence == "unknown"
    assert event.pricing_source == "unknown"


def test_custom_pricing_takes_precedence(sdk: dexcost.CostTracker) -> None:
    sdk.set_custom_pricing("gpt-4o", input_per_1k="0.001", output_per_1k="0.002")
    with dexcost.task("chat") as t:
        event = t.record_llm_call("openai", "gpt-4o", 2000, 1000)
    assert event.cost_usd == Decimal("0.004")
    assert event.pricing_source == "custom"


def test_module_level_record_llm_call_lands_in_current_task(sdk: dexcost.CostTracker) -> None:
    with dexcost.task("chat") as t:
        event = dexcost.record_llm_call("openai", "gpt-4o-mini", 100, 10)
    assert event.task_id == t.task_id
    assert t.task.event_count == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"input_tokens": -1}, ValueError),
        ({"output_tokens": 1.5}, TypeError),
        ({"input_tokens": True}, TypeError),
        ({"cached_tokens": -3}, ValueError),
        ({"cost_usd": 0.01}, TypeError),
        ({"cost_confidence": "pretty sure"}, ValueError),
        ({"model": ""}, ValueError),
        ({"cache_write_1h_tokens": -1, "cost_usd": "0.5"}, ValueError),
    ],
)
def test_misuse_raises_clear_errors_and_records_nothing(
    sdk: dexcost.CostTracker, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    args: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 10,
        "output_tokens": 10,
    }
    args.update(kwargs)
    with dexcost.task("chat") as t, pytest.raises(error):
        t.record_llm_call(**args)
    assert t.task.event_count == 0


def test_record_usage_uses_the_rate_registry(sdk: dexcost.CostTracker, read: Any) -> None:
    sdk.register_rate("maps.googleapis.com", per="request", cost_usd="0.005")
    with dexcost.task("route_calculation") as t:
        event = t.record_usage("maps.googleapis.com", units=3)
        half = t.record_usage("gpu", units=0) if sdk.rates.get("gpu") else None
    assert half is None
    assert event.cost_usd == Decimal("0.015")
    assert (event.cost_confidence, event.pricing_source) == ("computed", "rate_registry")
    assert event.details == {"units": "3", "per": "request"}
    with dexcost.task("x") as t2, pytest.raises(ValueError, match="register_rate"):
        t2.record_usage("unregistered")


def test_rates_round_trip_through_yaml(sdk: dexcost.CostTracker, tmp_path: Any) -> None:
    sdk.register_rate("b_service", per="page", cost_usd="0.01")
    sdk.register_rate("a_service", per="request", cost_usd="0.0005")
    path = tmp_path / "rates.yaml"
    sdk.export_rates(path)
    other = dexcost.CostTracker(auto_instrument=[])
    other.load_rates(path)
    assert other.rates.get("a_service") == dexcost.RateEntry(
        "a_service", "request", Decimal("0.0005")
    )
    assert other.rates.pricing_version == sdk.rates.pricing_version
