"""HTTP capture's gate: a call skips the wrapper only when it surely is not to be recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dexcost import _guard
from dexcost._scope import billing_scope
from dexcost.adapters.http import _capture
from dexcost.catalog import get_default_catalog
from dexcost.catalog._domain_rates import default_registry


@pytest.fixture
def prices() -> Iterator[_capture._Prices]:
    saved = _capture._prices[0]
    current = _capture._Prices(get_default_catalog(), default_registry._index)
    _capture._prices[0] = current
    yield current
    _capture._prices[0] = saved


def _host_of(instance: Any, url: str) -> str:
    return url.partition("://")[2].partition("/")[0]


def _through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


check, count, gated = _capture.gate(_host_of, _through)


def test_a_host_nobody_prices_is_let_alone_and_remembered(prices: _capture._Prices) -> None:
    assert (count, gated) == (1, _through)
    assert check(None, "http://cdn.example.org/a") is False
    assert prices.hosts == {"cdn.example.org": False}
    assert check(None, "http://serpapi.com/search") is True
    assert prices.hosts["serpapi.com"] is True


def test_a_call_an_outer_layer_owns_is_let_alone(prices: _capture._Prices) -> None:
    with billing_scope("openai") as owns:
        assert owns
        assert check(None, "http://serpapi.com/search") is False


def test_a_cache_from_another_catalog_or_rates_lets_the_call_through(
    prices: _capture._Prices,
) -> None:
    assert check(None, "http://cdn.example.org/a") is False
    stale = _capture._Prices(get_default_catalog(), object())  # rates since replaced
    stale.hosts["cdn.example.org"] = False
    _capture._prices[0] = stale
    assert check(None, "http://cdn.example.org/a") is True  # the wrapper renews it


def test_an_error_is_reported_and_lets_the_wrapper_run(prices: _capture._Prices) -> None:
    def broken(instance: Any, request: Any) -> str:
        raise AttributeError("no url")

    _guard.clear()
    assert _capture.gate(broken, _through)[0](None, object()) is True
    assert [(site, str(exc)) for site, exc in _guard.swallowed()] == [("http.gate", "no url")]
