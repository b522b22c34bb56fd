"""track_http / untrack_http, library selection, domain rates, the scope rule, the guard."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import botocore.httpsession
import httpx
import httpx2
import pytest
import requests
import urllib3

import dexcost
import dexcost.adapters.http as http
from dexcost import _guard
from dexcost._scope import FrameworkCall, billing_scope
from dexcost.adapters.http import (
    clear_domain_rates,
    is_tracking_http,
    register_domain_rate,
    track_http,
    unregister_domain_rate,
    untrack_http,
)
from dexcost.catalog import get_default_catalog, set_default_catalog
from dexcost.instrument._patch import installed

TARGETS = [
    (requests.Session, "send"),
    (httpx.Client, "send"),
    (httpx.AsyncClient, "send"),
    (httpx2.Client, "send"),
    (httpx2.AsyncClient, "send"),
    (aiohttp.ClientSession, "_request"),
    (botocore.httpsession.URLLib3Session, "send"),
    (urllib3.HTTPConnectionPool, "urlopen"),
]


def test_public_names() -> None:
    assert http.__all__ == sorted(http.__all__)
    assert set(http.__all__) == {
        "ALL_HTTP_LIBRARIES",
        "clear_domain_rates",
        "is_tracking_http",
        "register_domain_rate",
        "track_http",
        "unregister_domain_rate",
        "untrack_http",
    }
    assert set(http.ALL_HTTP_LIBRARIES) == {
        "requests", "httpx", "httpx2", "aiohttp", "botocore", "urllib3"
    }  # fmt: skip


def test_untrack_restores_every_original(sdk: Any) -> None:
    originals = [vars(cls)[name] for cls, name in TARGETS]
    assert not is_tracking_http()
    assert sorted(track_http()) == sorted(http.ALL_HTTP_LIBRARIES)
    assert is_tracking_http()
    pairs = zip(TARGETS, originals, strict=True)
    assert all(vars(cls)[name] is not orig for (cls, name), orig in pairs)
    assert len(installed("http")) == len(TARGETS)
    untrack_http()
    assert not is_tracking_http()
    assert [vars(cls)[name] for cls, name in TARGETS] == originals
    assert installed("http") == []


def test_nothing_recorded_after_untrack(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search.json", {})
    untrack_http()
    with dexcost.task("t"):
        requests.get(server.url("serpapi.com", "/search.json"))
    assert events() == []


def test_libraries_limits_what_is_patched(sdk: Any) -> None:
    try:
        assert track_http(libraries=["requests"]) == ["requests"]
        assert {p.target for p in installed("http")} == {"requests.sessions:Session.send"}
    finally:
        untrack_http()


def test_libraries_argument_errors(sdk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown HTTP library 'pycurl'"):
        track_http(libraries=["pycurl"])
    with pytest.raises(TypeError, match=r"\['httpx'\]"):
        track_http(libraries="httpx")
    monkeypatch.setitem(sys.modules, "httpx2", None)  # as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install httpx2"):
        track_http(libraries=["httpx2"])
    assert not is_tracking_http()
    assert installed("http") == []


def test_track_imports_no_http_library(tmp_path: Path) -> None:
    code = (
        "import sys, dexcost\n"
        "from dexcost.adapters.http import track_http\n"
        "from dexcost.instrument._patch import installed\n"
        "dexcost.init(auto_instrument=[], track_http=False)\n"
        "track_http()\n"
        "libs = ['requests', 'httpx', 'httpx2', 'aiohttp', 'botocore', 'urllib3']\n"
        "print(sorted(m for m in libs if m in sys.modules))\n"
        "import requests\n"
        "print(sorted(p.target for p in installed('http')))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(dexcost.__file__).parents[1]),
        "DEXCOST_BUFFER_PATH": str(tmp_path / "sub.db"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    assert out == [
        "[]",
        "['requests.sessions:Session.send', 'urllib3.connectionpool:HTTPConnectionPool.urlopen']",
    ]


def test_explicit_tracker_receives_the_costs(
    server: Any, tracker: Any, events: Any, tmp_path: Path, price: Any
) -> None:
    server.route("/search.json", {})
    other = dexcost.CostTracker(buffer_path=str(tmp_path / "other.db"), auto_instrument=[])
    try:
        track_http(other)
        with other.task("t") as task:
            requests.get(server.url("serpapi.com", "/search.json"))
        assert task.task.external_cost_usd == price("serpapi")
        assert events() == []  # nothing in the global tracker's store
    finally:
        other.close()


def test_a_tracker_subclass_sees_captured_calls_through_record_cost(
    server: Any, tracker: Any, tmp_path: Path, price: Any
) -> None:
    server.route("/search.json", {})
    seen: list[tuple[str, Decimal, dict[str, Any]]] = []

    class Tagging(dexcost.CostTracker):
        def record_cost(self, service: str, cost_usd: Any, **kwargs: Any) -> Any:
            seen.append((service, cost_usd, dict(kwargs)))
            kwargs["details"] = {**kwargs["details"], "team": "search"}
            return super().record_cost(service, cost_usd, **kwargs)

    other = Tagging(buffer_path=str(tmp_path / "other.db"), auto_instrument=[])
    try:
        track_http(other)
        with other.task("t") as task:
            requests.get(server.url("serpapi.com", "/search.json?q=x"))
        [(service, cost, kwargs)] = seen
        assert (service, cost) == ("serpapi", price("serpapi"))
        assert kwargs["cost_confidence"] == "estimated"
        assert kwargs["pricing_source"] == "service_catalog"
        assert kwargs["pricing_version"] == get_default_catalog().version
        assert kwargs["details"]["path"] == "/search.json"
        assert task.task.external_cost_usd == price("serpapi")
        other.flush()
        with sqlite3.connect(tmp_path / "other.db") as con:
            [(details,)] = con.execute("SELECT details FROM events").fetchall()
        assert json.loads(details)["team"] == "search"
    finally:
        other.close()


# -- domain rates --------------------------------------------------------------------------


def test_domain_rate_takes_precedence_over_the_catalog(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    server.route("/search.json", {})
    register_domain_rate("serpapi.com", "0.5")
    with dexcost.task("t"):
        requests.get(server.url("serpapi.com", "/search.json"))
        unregister_domain_rate("serpapi.com")
        requests.get(server.url("serpapi.com", "/search.json"))
    got = [(e["service_name"], e["cost_usd"], e["pricing_source"]) for e in events()]
    assert got == [
        ("serpapi.com", "0.5", "rate_registry"),
        ("serpapi", str(price("serpapi")), "service_catalog"),
    ]
    assert events()[0]["cost_confidence"] == "computed"
    assert events()[0]["pricing_version"] is None


def test_wildcard_domain_rate(server: Any, tracker: Any, events: Any) -> None:
    server.route("/v1/run", {})
    register_domain_rate("*.tools.example.net", Decimal("0.002"))
    with dexcost.task("t"):
        requests.post(server.url("eu.tools.example.net", "/v1/run"))
        requests.post(server.url("a.b.tools.example.net", "/v1/run"))
        requests.post(server.url("tools.example.net", "/v1/run"))  # not a subdomain
    assert [(e["service_name"], e["cost_usd"]) for e in events()] == [
        ("eu.tools.example.net", "0.002"),
        ("a.b.tools.example.net", "0.002"),
    ]


def test_llm_hosts_only_priced_by_an_exact_rate(server: Any, tracker: Any, events: Any) -> None:
    server.route("/v1/chat/completions", {})
    register_domain_rate("*.openai.com", "1")
    with dexcost.task("t"):
        requests.post(server.url("api.openai.com", "/v1/chat/completions"))
        assert events() == []  # a wildcard never bills an LLM endpoint
        register_domain_rate("api.openai.com", "0.25")  # the user asked for this host
        requests.post(server.url("api.openai.com", "/v1/chat/completions"))
        with billing_scope("openai") as owns:  # ...but the provider layer records its calls
            assert owns
            requests.post(server.url("api.openai.com", "/v1/chat/completions"))
    assert [e["cost_usd"] for e in events()] == ["0.25"]
    clear_domain_rates()


# -- the scope rule ------------------------------------------------------------------------


def test_a_call_owned_by_an_outer_layer_is_not_recorded(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search", {"costDollars": {"total": 0.01}})
    with dexcost.task("t"), billing_scope("litellm"):
        requests.post(server.url("api.exa.ai", "/search"))
        httpx.post(server.url("api.exa.ai", "/search"))
    assert events() == []


def test_framework_call_covered_only_when_http_records(server: Any, tracker: Any) -> None:
    server.route("/search.json", {})
    server.route("/x", {})
    with dexcost.task("t"):
        with FrameworkCall("unpriced") as unpriced:
            requests.get(server.url("internal.example.org", "/x"))
        with FrameworkCall("priced") as priced:
            requests.get(server.url("serpapi.com", "/search.json"))
    assert (unpriced.covered, priced.covered_by) == (False, "http")


# -- the guard -----------------------------------------------------------------------------


def test_internal_error_never_reaches_the_user(server: Any, tracker: Any) -> None:
    server.route("/search.json", {"ok": 1})

    class Broken:  # a stand-in for the tracker: captured calls go to its record_cost
        def record_cost(self, *args: Any, **kwargs: Any) -> Any:
            raise LookupError("no task store")

    track_http(Broken())  # type: ignore[arg-type]
    with dexcost.task("t"):
        response = requests.get(server.url("serpapi.com", "/search.json"))
    assert response.json() == {"ok": 1}
    assert [type(exc) for _, exc in _guard.swallowed()] == [LookupError]
    _guard.clear()


# -- prices changing while capturing -------------------------------------------------------


def test_a_rate_registered_later_applies_to_the_next_call(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/v1/run", {})
    with dexcost.task("t"):
        for _ in range(3):  # not priced: nothing, and the host is known to be unpriced
            requests.post(server.url("api.newvendor.io", "/v1/run"))
        register_domain_rate("api.newvendor.io", "0.03")
        requests.post(server.url("api.newvendor.io", "/v1/run"))
    assert [e["cost_usd"] for e in events()] == ["0.03"]


def test_a_changed_rate_prices_the_next_call_to_the_same_url(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/v1/run", {})
    url = server.url("api.newvendor.io", "/v1/run")
    try:
        with dexcost.task("t"):
            register_domain_rate("api.newvendor.io", "0.03")
            requests.post(url)
            requests.post(url)
            register_domain_rate("api.newvendor.io", "0.05")  # same URL, now a new price
            requests.post(url)
    finally:
        unregister_domain_rate("api.newvendor.io")
    assert [e["cost_usd"] for e in events()] == ["0.03", "0.03", "0.05"]


def test_a_refreshed_catalog_applies_to_the_next_call(
    server: Any, tracker: Any, events: Any, new_vendor: Any
) -> None:
    bundled = get_default_catalog()
    server.route("/v1/run", {})
    try:
        with dexcost.task("t"):
            requests.post(server.url("api.newvendor.io", "/v1/run"))
            set_default_catalog(new_vendor("0.004"))
            requests.post(server.url("api.newvendor.io", "/v1/run"))
    finally:
        set_default_catalog(bundled)
    (event,) = events()
    assert (event["service_name"], event["cost_usd"], event["pricing_version"]) == (
        "newvendor",
        "0.004",
        "2099.01.01",
    )


def test_a_host_that_cannot_be_read_is_reported_once_and_the_request_sent_once(
    tracker: Any,
) -> None:
    from dexcost.adapters.http._capture import sync_wrapper

    def unreadable(instance: Any, args: Any, kwargs: Any) -> str:
        raise LookupError("no host")

    def never(*args: Any) -> Any:
        raise AssertionError("a request whose host is unknown is not priced")

    sent: list[str] = []

    def send(url: str) -> str:
        sent.append(url)
        return "response"

    track_http(libraries=[])
    wrapper = sync_wrapper("test", unreadable, never, never)
    _guard.clear()
    assert wrapper(send, None, ("http://x",), {}) == "response"
    assert sent == ["http://x"]
    assert [type(exc) for _, exc in _guard.swallowed()] == [LookupError]
    _guard.clear()
