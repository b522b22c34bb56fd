"""HTTP capture's gate: a call skips the wrapper only when it surely is not to be recorded."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from dexcost import _guard
from dexcost._scope import billing_scope
from dexcost.adapters.http import _capture
from dexcost.catalog import get_default_catalog
from dexcost.catalog._domain_rates import default_registry
from dexcost.instrument import _patch

MODULE = "dexcost_test_http_gate"


@pytest.fixture
def prices() -> Iterator[_capture._Prices]:
    saved = _capture._prices[0]
    current = _capture._Prices(get_default_catalog(), default_registry._index)
    _capture._prices[0] = current
    yield current
    _capture._prices[0] = saved


def _host_of(url: str) -> str:
    if url == "broken":
        raise AttributeError("no url")
    return url.partition("://")[2].partition("/")[0]


class Client:
    def send(self, url: str, body: Any = None) -> str:
        return f"sent {url}"


@pytest.fixture
def let_through() -> Iterator[list[str]]:
    """``Client.send`` under capture's gate; the URLs its wrapper was called for."""
    seen: list[str] = []

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append(args[0])
        return wrapped(*args, **kwargs)

    module = types.ModuleType(MODULE)
    module.Client = Client  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    spec = _capture.gate("_dx_host_of({1})", wrapper, _dx_host_of=_host_of)
    patch = _patch.wrap("test", MODULE, "Client.send", wrapper, spec)
    assert patch is not None
    assert patch.gated
    yield seen
    _patch.unwrap(patch)
    del sys.modules[MODULE]


def test_a_host_nobody_prices_is_let_alone_and_remembered(
    prices: _capture._Prices, let_through: list[str]
) -> None:
    client = Client()
    assert client.send("http://cdn.example.org/a") == "sent http://cdn.example.org/a"
    assert let_through == []
    assert prices.hosts == {"cdn.example.org": False}
    assert client.send("http://serpapi.com/search") == "sent http://serpapi.com/search"
    assert let_through == ["http://serpapi.com/search"]
    assert prices.hosts["serpapi.com"] is True


def test_the_host_expression_reads_the_parameters_however_passed(
    prices: _capture._Prices, let_through: list[str]
) -> None:
    Client().send(url="http://serpapi.com/a", body=b"x")
    assert let_through == ["http://serpapi.com/a"]


def test_a_call_an_outer_layer_owns_is_let_alone(
    prices: _capture._Prices, let_through: list[str]
) -> None:
    with billing_scope("openai") as owns:
        assert owns
        Client().send("http://serpapi.com/search")
    assert let_through == []


def test_a_cache_from_another_catalog_or_rates_lets_the_call_through(
    prices: _capture._Prices, let_through: list[str]
) -> None:
    Client().send("http://cdn.example.org/a")
    assert let_through == []
    stale = _capture._Prices(get_default_catalog(), object())  # rates since replaced
    stale.hosts["cdn.example.org"] = False
    _capture._prices[0] = stale
    Client().send("http://cdn.example.org/a")
    assert let_through == ["http://cdn.example.org/a"]  # the wrapper renews the cache


def test_an_error_is_reported_and_lets_the_wrapper_run(
    prices: _capture._Prices, let_through: list[str]
) -> None:
    _guard.clear()
    assert Client().send("broken") == "sent broken"
    assert let_through == ["broken"]
    assert [(site, str(exc)) for site, exc in _guard.swallowed()] == [("http.gate", "no url")]
    with billing_scope("openai"):  # owned: let alone, error or not
        assert Client().send("broken") == "sent broken"
    assert let_through == ["broken"]
