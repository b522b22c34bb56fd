"""The public surface: exports, typing marker, and no provider imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dexcost


def test_all_is_sorted_and_every_name_exists() -> None:
    assert dexcost.__all__ == sorted(dexcost.__all__)
    missing = [name for name in dexcost.__all__ if not hasattr(dexcost, name)]
    assert missing == []


def test_contract_names_are_exported() -> None:
    contract = {
        "init", "set_context", "get_context", "clear_context", "task", "get_current_task",
        "set_current_task", "task_context", "async_task_context", "record_cost", "flush",
        "close", "TrackedTask", "CostTracker", "PricingEngine", "CostResult", "RateRegistry",
        "RateEntry", "DexcostConfig", "DexcostContext", "Task", "Event", "EventType",
        "TaskStatus", "CostConfidence", "PricingSource", "InvalidAPIKeyError",
        "validate_api_key", "SessionManager", "get_session_manager", "ServiceCatalog",
    }  # fmt: skip
    assert contract <= set(dexcost.__all__)


def test_package_is_typed() -> None:
    assert (Path(dexcost.__file__).parent / "py.typed").is_file()


def test_import_does_not_import_providers_or_frameworks() -> None:
    heavy = [
        "openai", "anthropic", "litellm", "google.genai", "cohere", "botocore", "boto3",
        "mcp", "langchain_core", "llama_index", "crewai", "pydantic_ai", "httpx", "requests",
        "aiohttp", "urllib3",
    ]  # fmt: skip
    code = (
        "import sys, dexcost\n"
        f"bad = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(dexcost.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert out == ""


def test_enums_match_the_spec() -> None:
    assert {e.value for e in dexcost.EventType} == {
        "llm_call",
        "external_cost",
        "compute_cost",
        "retry_marker",
    }
    assert {c.value for c in dexcost.CostConfidence} == {
        "exact",
        "computed",
        "estimated",
        "unknown",
    }
    assert {"litellm", "custom", "manual", "rate_registry", "service_catalog", "unknown"} <= {
        p.value for p in dexcost.PricingSource
    }
    assert str(dexcost.TaskStatus.SUCCESS) == "success"
