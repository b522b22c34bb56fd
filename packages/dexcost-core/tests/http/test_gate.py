"""HTTP capture's gate: a call skips the wrapper only when it surely is not to be recorded."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from dexcost import _guard
from dexcost._scope import billing_scope
from dexcost.adapters.http import _capture, _known
from dexcost.catalog import (
    ServiceCatalog,
    get_default_catalog,
    register_domain_rate,
    set_default_catalog,
    unregister_domain_rate,
)
from dexcost.instrument import _patch

MODULE = "dexcost_test_http_gate"


@pytest.fixture
def hosts() -> Iterator[dict[str, bool]]:
    """What capture has learnt about hosts, from nothing."""
    _known.forget()
    yield _known.hosts
    _known.forget()


def _host_of(url: str) -> str:
    if url == "broken":
        raise AttributeError("no url")
    return url.partition("://")[2].partition("/")[0]


class Client:
    def send(self, url: str, body: Any = None) -> str:
        return f"sent {url}"


@contextmanager
def _gated(host: str, **names: Any) -> Iterator[list[str]]:
    """``Client.send`` under capture's gate reading the host with the expression ``host``;
    the URLs its wrapper was called for."""
    seen: list[str] = []

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append(args[0])
        return wrapped(*args, **kwargs)

    module = types.ModuleType(MODULE)
    module.Client = Client  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    spec = _capture.gate(host, wrapper, **names)
    patch = _patch.wrap("test", MODULE, "Client.send", wrapper, spec)
    assert patch is not None
    assert patch.gated
    try:
        yield seen
    finally:
        _patch.unwrap(patch)
        del sys.modules[MODULE]


@pytest.fixture
def let_through() -> Iterator[list[str]]:
    with _gated("_dx_host_of({1})", _dx_host_of=_host_of) as seen:
        yield seen


def test_a_host_nobody_prices_is_let_alone_and_remembered(
    hosts: dict[str, bool], let_through: list[str]
) -> None:
    client = Client()
    assert client.send("http://cdn.example.org/a") == "sent http://cdn.example.org/a"
    assert let_through == []
    assert hosts == {"cdn.example.org": False}
    assert client.send("http://serpapi.com/search") == "sent http://serpapi.com/search"
    assert let_through == ["http://serpapi.com/search"]
    assert hosts["serpapi.com"] is True


def test_the_host_expression_reads_the_parameters_however_passed(
    hosts: dict[str, bool], let_through: list[str]
) -> None:
    Client().send(url="http://serpapi.com/a", body=b"x")
    assert let_through == ["http://serpapi.com/a"]


def test_a_call_an_outer_layer_owns_is_let_alone(
    hosts: dict[str, bool], let_through: list[str]
) -> None:
    with billing_scope("openai") as owns:
        assert owns
        Client().send("http://serpapi.com/search")
    assert let_through == []


def test_a_new_rate_reaches_a_host_learnt_as_unpriced(
    hosts: dict[str, bool], let_through: list[str]
) -> None:
    Client().send("http://cdn.example.org/a")
    assert let_through == []
    register_domain_rate("cdn.example.org", "0.01")
    try:
        assert hosts == {}  # forgotten the moment the rates changed
        Client().send("http://cdn.example.org/a")
        assert let_through == ["http://cdn.example.org/a"]
    finally:
        unregister_domain_rate("cdn.example.org")
    assert hosts == {}
    Client().send("http://cdn.example.org/a")
    assert let_through == ["http://cdn.example.org/a"]  # unpriced again


def test_a_new_catalog_reaches_a_host_learnt_as_unpriced(
    hosts: dict[str, bool], let_through: list[str], new_vendor: Any
) -> None:
    Client().send("http://api.newvendor.io/run")
    assert let_through == []
    set_default_catalog(new_vendor("0.01"))
    try:
        Client().send("http://api.newvendor.io/run")
        assert let_through == ["http://api.newvendor.io/run"]
    finally:
        set_default_catalog(None)
    Client().send("http://api.newvendor.io/run")
    assert let_through == ["http://api.newvendor.io/run"]  # the bundled catalog again


def test_an_answer_learnt_while_the_prices_changed_is_not_kept(
    hosts: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = get_default_catalog()

    def changed_meanwhile() -> ServiceCatalog:
        _known.forget()  # as set_default_catalog() on another thread would
        return bundled

    monkeypatch.setattr(_known._catalog_state, "get_default_catalog", changed_meanwhile)
    assert _known.may_price("cdn.example.org") is False
    assert hosts == {}
    assert _known.resolve("http://serpapi.com/search", "GET") is not None
    assert _known.resolved == {}
    monkeypatch.undo()
    assert _known.may_price("cdn.example.org") is False
    assert hosts == {"cdn.example.org": False}


def test_an_error_is_reported_and_lets_the_wrapper_run(
    hosts: dict[str, bool], let_through: list[str]
) -> None:
    _guard.clear()
    assert Client().send("broken") == "sent broken"
    assert let_through == ["broken"]
    assert [(site, str(exc)) for site, exc in _guard.swallowed()] == [("http.gate", "no url")]
    with billing_scope("openai"):  # owned: let alone, error or not
        assert Client().send("broken") == "sent broken"
    assert let_through == ["broken"]


@pytest.mark.parametrize(
    ("url", "priced"),
    [
        ("http://serpapi.com/search?q=1", True),
        ("https://serpapi.com?engine=google", True),  # no path: the query stays on the host
        ("https://serpapi.com#top", True),
        ("http://user:secret@serpapi.com:8443/search", True),
        ("http://cdn.example.org?x=serpapi.com", False),
        ("http://cdn.example.org", False),
    ],
)
def test_the_inline_authority_prices_the_host_however_the_url_ends(
    hosts: dict[str, bool], url: str, priced: bool
) -> None:
    with _gated(_capture.authority_of("{1}")) as seen:
        for _ in range(2):  # learnt, then from the cache
            assert Client().send(url) == f"sent {url}"
    assert seen == ([url, url] if priced else [])
