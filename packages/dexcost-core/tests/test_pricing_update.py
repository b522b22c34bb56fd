"""auto_update=True against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dexcost.pricing import PricingEngine

NEW_PRICES = json.dumps(
    {
        "gpt-4o": {
            "litellm_provider": "openai",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
        }
    }
).encode()


@dataclass
class Reply:
    status: int = 200
    body: bytes = NEW_PRICES
    etag: str | None = None


@dataclass
class PriceServer:
    url: str
    reply: Reply
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.requests)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[PriceServer]:
    reply = Reply()
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, dict(self.headers.items())))
            if reply.etag and self.headers.get("If-None-Match") == reply.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.etag:
                self.send_header("ETag", reply.etag)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("DEXCOST_ENDPOINT", url + "/")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("DEXCOST_API_KEY", raising=False)
    monkeypatch.delenv("DEXCOST_PRICING_UPDATE_INTERVAL", raising=False)
    try:
        yield PriceServer(url=url, reply=reply, requests=seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def engines() -> Iterator[list[PricingEngine]]:
    made: list[PricingEngine] = []
    yield made
    for engine in made:
        engine.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_update_replaces_the_prices_and_sends_the_api_key(server, engines):
    bundled_version = PricingEngine().pricing_version
    engine = PricingEngine(auto_update=True, api_key="dx_test_abc")
    engines.append(engine)
    wait_until(lambda: engine.pricing_version != bundled_version, "the new prices")
    assert engine.get_cost("gpt-4o", 1000, 1000).cost_usd == Decimal("0.003")
    path, headers = server.requests[0]
    assert path == "/v1/pricing"
    assert headers["Authorization"] == "Bearer dx_test_abc"


def test_the_api_key_defaults_to_the_environment(server, engines, monkeypatch):
    monkeypatch.setenv("DEXCOST_API_KEY", "dx_live_env")
    engines.append(PricingEngine(auto_update=True))
    wait_until(lambda: server.count() >= 1, "a request")
    assert server.requests[0][1]["Authorization"] == "Bearer dx_live_env"


def test_custom_prices_survive_an_update(server, engines):
    engine = PricingEngine(auto_update=True)
    engines.append(engine)
    engine.set_custom_pricing("gpt-4o", "1", "1")
    before = engine.pricing_version
    wait_until(lambda: engine.pricing_version != before, "the new prices")
    result = engine.get_cost("gpt-4o", 1000, 0)
    assert (result.cost_usd, result.pricing_source) == (Decimal(1), "custom")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"{not json"), "refused"),
        (Reply(body=b"{}"), "refused"),
        (Reply(body=b'["gpt-4o"]'), "refused"),
        (Reply(status=500, body=b"oops"), "could not fetch"),
        (Reply(status=401, body=b"{}"), "could not fetch"),
    ],
)
def test_a_bad_answer_keeps_the_current_prices_and_says_why(server, engines, caplog, reply, reason):
    caplog.set_level(logging.WARNING, logger="dexcost.pricing")
    server.reply.status, server.reply.body = reply.status, reply.body
    engine = PricingEngine(auto_update=True)
    engines.append(engine)
    before = engine.get_cost("gpt-4o", 1000, 1000)
    wait_until(lambda: reason in caplog.text, "the log line")
    assert server.url in caplog.text
    assert engine.get_cost("gpt-4o", 1000, 1000) == before


def test_an_unreachable_endpoint_keeps_the_current_prices(engines, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="dexcost.pricing")
    monkeypatch.setenv("DEXCOST_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("NO_PROXY", "*")
    engine = PricingEngine(auto_update=True)
    engines.append(engine)
    version = engine.pricing_version
    wait_until(lambda: "could not fetch" in caplog.text, "the log line")
    assert engine.pricing_version == version


def test_updates_repeat_until_close_and_unchanged_data_is_not_refetched(
    server, engines, monkeypatch
):
    monkeypatch.setenv("DEXCOST_PRICING_UPDATE_INTERVAL", "0.02")
    server.reply.etag = '"v1"'
    engine = PricingEngine(auto_update=True)
    engines.append(engine)
    wait_until(lambda: server.count() >= 3, "three requests")
    # After the first answer the client asks "changed since v1?" and the server says no.
    assert all(headers.get("If-None-Match") == '"v1"' for _, headers in server.requests[1:3])
    assert engine.get_cost("gpt-4o", 1000, 1000).cost_usd == Decimal("0.003")
    engine.close()
    at_close = server.count()
    time.sleep(0.3)  # many intervals: a fetch in flight at close() may finish, no more start
    assert server.count() <= at_close + 1
    engine.close()  # closing twice is harmless


def test_close_without_auto_update_is_a_no_op():
    engine = PricingEngine()
    engine.close()
    assert engine.get_cost("gpt-4o", 1, 1).cost_confidence == "computed"
