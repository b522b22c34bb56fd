"""RateRegistry: validation, exact YAML round trips, deterministic versions, threads."""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from dexcost.pricing import RateEntry, RateRegistry


def test_register_and_get():
    rates = RateRegistry()
    rates.register("serper", "query", "0.001")
    rates.register("twilio_sms", "message", Decimal("0.0079"))
    rates.register("pdf_pages", "page", 2)
    assert rates.get("serper") == RateEntry("serper", "query", Decimal("0.001"))
    assert rates.get("pdf_pages") == RateEntry("pdf_pages", "page", Decimal(2))
    assert rates.get("unknown") is None
    rates.register("serper", "query", "0.0003")  # re-registering replaces
    assert rates.get("serper").cost_usd == Decimal("0.0003")


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("s", "call", 0.01), TypeError, "floats cannot hold prices exactly"),
        (("s", "call", True), TypeError, "not bool"),
        (("s", "call", "-1"), ValueError, "must not be negative"),
        (("s", "call", "abc"), ValueError, "not a number"),
        (("s", "call", "NaN"), ValueError, "finite"),
        (("s", "", "1"), ValueError, "per must be a non-empty string"),
        (("s", "  ", "1"), ValueError, "per must be a non-empty string"),
        (("", "call", "1"), ValueError, "service must be a non-empty string"),
    ],
)
def test_register_rejects_bad_input_and_keeps_nothing(args, error, message):
    rates = RateRegistry()
    with pytest.raises(error, match=message):
        rates.register(*args)
    assert rates.get(args[0]) is None


def test_export_then_load_round_trips_exactly(tmp_path: Path):
    rates = RateRegistry()
    rates.register("zeta", "call", "0.0100")
    rates.register("alpha", "1k characters", "0.000000123456789012345678901")
    path = tmp_path / "rates.yaml"
    rates.export(path)

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(doc["rates"]) == ["alpha", "zeta"]  # sorted by service
    assert doc["rates"]["zeta"] == {"per": "call", "cost_usd": "0.0100"}  # exact strings

    loaded = RateRegistry()
    loaded.load(path)
    assert loaded.get("zeta") == rates.get("zeta")
    assert loaded.get("alpha") == rates.get("alpha")
    assert loaded.pricing_version == rates.pricing_version


def test_load_reads_yaml_numbers_as_the_decimals_written(tmp_path: Path):
    path = tmp_path / "rates.yaml"
    path.write_text(
        "rates:\n"
        "  exa_search:\n    per: request\n    cost_usd: 0.007\n"
        "  firecrawl:\n    per: credit\n    cost_usd: 0.00083\n"
        "  big:\n    per: job\n    cost_usd: 1_000.10\n"
        "  whole:\n    per: job\n    cost_usd: 3\n",
        encoding="utf-8",
    )
    rates = RateRegistry()
    rates.load(path)
    assert rates.get("exa_search").cost_usd == Decimal("0.007")
    assert str(rates.get("firecrawl").cost_usd) == "0.00083"
    assert rates.get("big").cost_usd == Decimal("1000.10")
    assert rates.get("whole").cost_usd == Decimal(3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rates: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "top-level 'rates' mapping"),
        ("", "top-level 'rates' mapping"),
        ("rates:\n  serper: 0.001\n", "rates.serper: expected a mapping"),
        ("rates:\n  serper:\n    per: query\n", "rates.serper: missing cost_usd"),
        ("rates:\n  serper:\n    cost_usd: '1'\n", "rates.serper: missing per"),
        (
            "rates:\n  serper:\n    per: query\n    cost_usd: -0.5\n",
            "rates.serper: cost_usd must not",
        ),
        (
            "rates:\n  serper:\n    per: query\n    cost_usd: .inf\n",
            "rates.serper: cost_usd must be",
        ),
        (
            "rates:\n  serper:\n    per: query\n    cost_usd: cheap\n",
            "rates.serper: cost_usd is not",
        ),
        ("rates:\n  serper:\n    per: ''\n    cost_usd: '1'\n", "rates.serper: per must be"),
        ("rates:\n  serper:\n    per: q\n    cost_usd: yes\n", "rates.serper: cost_usd must be"),
    ],
)
def test_invalid_files_raise_value_error_naming_file_and_service(tmp_path, text, message):
    path = tmp_path / "rates.yaml"
    path.write_text(text, encoding="utf-8")
    rates = RateRegistry()
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        rates.load(path)
    assert str(path) in str(info.value)


def test_a_bad_service_loads_nothing_from_the_file(tmp_path):
    path = tmp_path / "rates.yaml"
    path.write_text(
        "rates:\n"
        "  good:\n    per: call\n    cost_usd: '1'\n"
        "  bad:\n    per: call\n    cost_usd: -1\n",
        encoding="utf-8",
    )
    rates = RateRegistry()
    rates.register("existing", "call", "2")
    version = rates.pricing_version
    with pytest.raises(ValueError, match=re.escape("rates.bad:")):
        rates.load(path)
    assert rates.get("good") is None
    assert rates.pricing_version == version


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        RateRegistry().load(tmp_path / "nope.yaml")


def test_pricing_version_is_deterministic():
    a, b = RateRegistry(), RateRegistry()
    a.register("x", "call", "0.01")
    a.register("y", "page", "2")
    b.register("y", "page", "2.00")
    b.register("x", "call", Decimal("0.010"))
    assert a.pricing_version == b.pricing_version
    assert len(a.pricing_version) == 64
    before = a.pricing_version
    a.register("x", "call", "0.02")
    assert a.pricing_version != before
    a.register("x", "call", "0.01")
    assert a.pricing_version == before
    c = RateRegistry()
    c.register("x", "request", "0.01")
    c.register("y", "page", "2")
    assert c.pricing_version != before  # the unit is part of the rate
    assert RateRegistry().pricing_version == RateRegistry().pricing_version


def test_concurrent_registration_keeps_every_rate():
    rates = RateRegistry()

    def register(worker: int) -> None:
        for i in range(200):
            rates.register(f"svc-{worker}-{i}", "call", str(i))
            rates.pricing_version  # noqa: B018 - reading while others write

    threads = [threading.Thread(target=register, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(rates.get(f"svc-{w}-{i}") is not None for w in range(4) for i in range(200))
    fresh = RateRegistry()
    for w in range(4):
        for i in range(200):
            fresh.register(f"svc-{w}-{i}", "call", str(i))
    assert rates.pricing_version == fresh.pricing_version
