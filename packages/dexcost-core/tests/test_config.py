"""Configuration: API keys, environment variables, modes, the development console."""

from __future__ import annotations

from typing import Any

import pytest

import dexcost
from dexcost import DexcostConfig, InvalidAPIKeyError, validate_api_key


def test_validate_api_key() -> None:
    assert validate_api_key(None) is None
    assert validate_api_key("dx_live_abc") == "live"
    assert validate_api_key("dx_test_abc") == "test"
    for bad in ("sk-123", "dx_live_", "DX_LIVE_abc", ""):
        with pytest.raises(InvalidAPIKeyError, match="dx_live_"):
            validate_api_key(bad)
    assert issubclass(InvalidAPIKeyError, ValueError)


def test_config_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    local = DexcostConfig()
    assert (local.storage_mode, local.key_type, local.is_sandbox, local.is_dev) == (
        "local",
        None,
        False,
        False,
    )
    cloud = DexcostConfig(api_key="dx_test_1")
    assert (cloud.storage_mode, cloud.key_type, cloud.is_sandbox) == ("cloud", "test", True)
    assert DexcostConfig(api_key="dx_live_1", storage="local").storage_mode == "local"
    assert DexcostConfig(api_key="dx_live_1", environment="development").storage_mode == "local"
    assert cloud.endpoint == "https://api.dexcost.io"
    monkeypatch.setenv("DEXCOST_ENDPOINT", "http://127.0.0.1:8080")
    assert cloud.endpoint == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "kwargs",
    [{"storage": "s3"}, {"batch_size": 0}, {"flush_interval_seconds": 0}, {"api_key": "nope"}],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DexcostConfig(**kwargs)


def test_init_reads_the_environment(monkeypatch: pytest.MonkeyPatch, db_path: Any) -> None:
    monkeypatch.setenv("DEXCOST_API_KEY", "dx_test_key")
    monkeypatch.setenv("DEXCOST_ENV", "development")
    config = dexcost.init(buffer_path=str(db_path), auto_instrument=[])
    assert config.api_key == "dx_test_key"
    assert config.is_dev
    assert dexcost.get_config() is config


def test_init_with_a_bad_key_from_the_environment_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEXCOST_API_KEY", "sk-wrong")
    with pytest.raises(InvalidAPIKeyError, match="DEXCOST_API_KEY"):
        dexcost.init(auto_instrument=[])


def test_init_twice_replaces_the_tracker(db_path: Any) -> None:
    dexcost.init(buffer_path=str(db_path), auto_instrument=[])
    first = dexcost.get_tracker()
    dexcost.init(buffer_path=str(db_path), auto_instrument=[])
    assert dexcost.get_tracker() is not first


def test_close_and_flush_are_safe_before_init() -> None:
    dexcost.flush()
    dexcost.close()
    dexcost.close()


def test_development_console_prints_events_and_tasks(
    db_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], environment="development")
    dexcost.set_context(customer_id="acme")
    with dexcost.task("resolve_ticket") as t:
        t.record_llm_call("openai", "gpt-4o", 1000, 100)
        t.record_cost("pinecone", "0.0004")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("[dexcost]")]
    assert len(lines) == 3
    assert "openai/gpt-4o in=1000 out=100" in lines[0]
    assert "pinecone" in lines[1]
    assert "'resolve_ticket' success" in lines[2]
    assert "customer=acme" in lines[2]


def test_init_starts_http_capture_and_close_stops_it(db_path: Any) -> None:
    from dexcost.adapters.http import is_tracking_http

    dexcost.init(buffer_path=str(db_path), auto_instrument=[])
    assert is_tracking_http()
    dexcost.close()
    assert not is_tracking_http()
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], track_http=False)
    assert not is_tracking_http()
