"""ServiceCatalog.from_url against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dexcost.catalog import (
    ServiceCatalog,
    get_default_catalog,
    refresh_default_catalog,
    set_default_catalog,
)

BUNDLED = ServiceCatalog.load_bundled()


def _newer_document() -> bytes:
    doc = {
        "format": 1,
        "version": "2099.1.1",
        "updated": "2099-01-01",
        "services": [
            {
                "service": "acme",
                "name": "Acme",
                "category": "search",
                "hosts": ["api.acme.test"],
                "pricing": {"kind": "per_request", "price": "0.5"},
                "source": "https://acme.test/pricing",
                "price_date": "2098-12-31",
                "confidence": "estimated",
            }
        ],
    }
    return json.dumps(doc).encode()


ROUTES: dict[str, tuple[int, bytes]] = {
    "/good.json": (200, _newer_document()),
    "/bad-json.json": (200, b"{not json"),
    "/invalid.json": (
        200,
        json.dumps(
            {"format": 1, "version": "x", "updated": "2099-01-01", "services": [{}]}
        ).encode(),
    ),
    "/old.json": (
        200,
        _newer_document()
        .replace(b"2099-01-01", b"2001-01-01")
        .replace(b"2098-12-31", b"2000-01-01"),
    ),
    "/missing.json": (404, b"nope"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ROUTES.get(self.path, (404, b""))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_valid_newer_document_replaces_the_bundled_one(server: str) -> None:
    fetched = ServiceCatalog.from_url(f"{server}/good.json", timeout=2)
    assert fetched.version == "2099.1.1"
    assert fetched.lookup("https://api.acme.test/") is not None
    assert fetched.lookup("https://api.exa.ai/search") is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/bad-json.json", "invalid"),
        ("/invalid.json", "services[0]"),
        ("/old.json", "older"),
        ("/missing.json", "could not fetch"),
    ],
)
def test_bad_answers_keep_the_bundled_catalog_and_say_why(
    server: str, path: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dexcost.catalog"):
        kept = ServiceCatalog.from_url(f"{server}{path}", timeout=2)
    assert kept is BUNDLED
    assert any(reason in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


def test_unreachable_port_keeps_the_bundled_catalog(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dexcost.catalog"):
        kept = ServiceCatalog.from_url(f"http://127.0.0.1:{_closed_port()}/c.json", timeout=0.5)
    assert kept is BUNDLED
    assert any("could not fetch" in r.getMessage() for r in caplog.records)


def test_non_http_urls_are_refused() -> None:
    assert ServiceCatalog.from_url("file:///etc/passwd") is BUNDLED


def test_refresh_default_catalog_switches_resolve_service(server: str) -> None:
    try:
        refresh_default_catalog(f"{server}/good.json", timeout=2)
        assert get_default_catalog().version == "2099.1.1"
        refresh_default_catalog(f"{server}/bad-json.json", timeout=2)
        assert get_default_catalog().version == "2099.1.1"
    finally:
        set_default_catalog(None)
    assert get_default_catalog() is BUNDLED
