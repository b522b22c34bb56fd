"""A real HTTP server on 127.0.0.1 that answers for catalogued hostnames, and a tracker.

Catalog hostnames (``serpapi.com``, ``api.exa.ai``, ...) reach the server through a test
resolver: ``socket.getaddrinfo`` answers 127.0.0.1 for every name, so each library runs
its own connection code unchanged and no request can leave the machine.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import dexcost
from dexcost import _guard
from dexcost.adapters.http import clear_domain_rates, track_http, untrack_http
from dexcost.catalog import ServiceCatalog


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b"{}"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False
    chunk: int = 0  # > 0: send the body in chunks of this size (Transfer-Encoding: chunked)


class Server:
    """The test server: ``url(host, path)`` and ``route(path, ...)``; counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, str, str]] = []  # (method, host header, path)
        self.lock = threading.Lock()
        handler = _handler(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, body: Any = None, **kwargs: Any) -> Route:
        raw = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        route = Route(body=raw, **kwargs)
        self.routes[path] = route
        return route


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.partition("?")[0]
            with server.lock:
                server.hits.append((self.command, self.headers.get("Host", ""), path))
            route = server.routes.get(path) or Route(b'{"error": "no route"}', status=404)
            body = gzip.compress(route.body) if route.gzip else route.body
            self.send_response(route.status)
            if "Content-Type" not in route.headers:
                self.send_header("Content-Type", "application/json")
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.gzip:
                self.send_header("Content-Encoding", "gzip")
            if route.chunk:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), route.chunk):
                    part = body[i : i + route.chunk]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    return Handler


@pytest.fixture(scope="session")
def _server() -> Iterator[Server]:
    server = Server()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def server(_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The server with no routes, and every hostname resolving to it."""
    _server.routes.clear()
    _server.hits.clear()
    real = socket.getaddrinfo

    def to_loopback(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", to_loopback)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    return _server


@pytest.fixture
def tracker(sdk: dexcost.CostTracker) -> Iterator[dexcost.CostTracker]:
    """dexcost initialised locally, HTTP capture on; fails the test if the guard hid an error."""
    _guard.clear()
    track_http()
    yield sdk
    untrack_http()
    clear_domain_rates()
    assert _guard.swallowed() == [], "dexcost swallowed an internal error"


def _price(service: str, *quantities: Any) -> Decimal:
    entry = ServiceCatalog.load_bundled().get(service)
    assert entry is not None, service
    rule: Any = entry.rule
    if not quantities:
        return Decimal(rule.price)
    return sum(
        (Decimal(q) * t.price / t.per for q, t in zip(quantities, rule.terms, strict=True)),
        Decimal(0),
    )


@pytest.fixture
def price() -> Any:
    """``price(service, *quantities)``: what the bundled catalog charges, computed from the
    entry itself: its per-request price, or ``quantity * price / per`` summed over its
    per-unit terms (one quantity per term)."""
    return _price


def _new_vendor(price: str) -> ServiceCatalog:
    return ServiceCatalog(
        {
            "format": 1,
            "version": "2099.01.01",
            "updated": "2099-01-01",
            "services": [
                {
                    "service": "newvendor",
                    "name": "New Vendor",
                    "category": "search",
                    "hosts": ["api.newvendor.io"],
                    "pricing": {"kind": "per_request", "price": price},
                    "confidence": "estimated",
                    "source": "https://newvendor.io/pricing",
                    "price_date": "2099-01-01",
                    "notes": "test entry",
                }
            ],
        }
    )


@pytest.fixture
def new_vendor() -> Any:
    """``new_vendor(price)``: a catalog (version 2099.01.01) of one entry, ``newvendor``,
    which prices every call to api.newvendor.io at ``price``."""
    return _new_vendor


@pytest.fixture
def events(read: Any) -> Any:
    """``events()``: the recorded external_cost events, oldest first, details decoded."""

    def fetch() -> list[dict[str, Any]]:
        rows = read(
            "SELECT * FROM events WHERE event_type = 'external_cost' ORDER BY occurred_at, event_id"
        )
        out = []
        for row in rows:
            item = dict(row)
            item["details"] = json.loads(item["details"])
            out.append(item)
        return out

    return fetch
