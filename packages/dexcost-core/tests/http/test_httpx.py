"""httpx and httpx2, sync and async clients, against the local server."""

from __future__ import annotations

import hashlib
import importlib
from decimal import Decimal
from typing import Any

import pytest

import dexcost
from dexcost.adapters.http import _track

LIBS = ["httpx", "httpx2"]


@pytest.fixture(params=LIBS)
def hx(request: pytest.FixtureRequest) -> Any:
    """httpx, then httpx2 (the fork anthropic, google-genai and openai 3.x use)."""
    return importlib.import_module(request.param)


def test_sync_client_per_request_and_body(
    hx: Any, server: Any, tracker: Any, events: Any, price: Any
) -> None:
    server.route("/search.json", {})
    server.route("/query", {"usage": {"readUnits": 11}})
    pinecone = "idx-1.svc.aped-4627-b74a.pinecone.io"
    with dexcost.task("t"), hx.Client() as client:
        client.get(server.url("serpapi.com", "/search.json?q=a"))
        assert client.post(server.url(pinecone, "/query")).json() == {"usage": {"readUnits": 11}}
    got = [(e["service_name"], Decimal(e["cost_usd"]), e["details"]["library"]) for e in events()]
    assert got == [
        ("serpapi", price("serpapi"), hx.__name__),
        ("pinecone", price("pinecone", 11), hx.__name__),
    ]


async def test_async_client(hx: Any, server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.017}}, gzip=True)
    async with dexcost.task("t"), hx.AsyncClient() as client:
        response = await client.post(server.url("api.exa.ai", "/search"), json={})
    assert response.json() == {"costDollars": {"total": 0.017}}
    (event,) = events()
    assert (event["cost_usd"], event["cost_confidence"]) == ("0.017", "exact")
    assert event["details"]["library"] == hx.__name__


def test_sync_stream_priced_after_the_user_reads(
    hx: Any, server: Any, tracker: Any, events: Any
) -> None:
    body = {"costDollars": {"total": 0.021}, "results": [{"text": "y" * 3000}] * 30}
    server.route("/contents", body, chunk=2048, gzip=True)
    with (
        dexcost.task("t"),
        hx.Client() as client,
        client.stream("POST", server.url("api.exa.ai", "/contents")) as response,
    ):
        assert events() == []
        lines = list(response.iter_lines())
    assert "".join(lines).startswith('{"costDollars"')
    assert [e["cost_usd"] for e in events()] == ["0.021"]


async def test_async_stream_download_intact_and_recorded_once(
    hx: Any, server: Any, tracker: Any, events: Any, price: Any
) -> None:
    payload = bytes(range(256)) * 4096
    server.route("/search.json", payload, chunk=32768, headers={"Content-Type": "image/png"})
    digest = hashlib.sha256()
    async with (
        dexcost.task("t"),
        hx.AsyncClient() as client,
        client.stream("GET", server.url("serpapi.com", "/search.json")) as response,
    ):
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(payload).digest()
    assert [Decimal(e["cost_usd"]) for e in events()] == [price("serpapi")]


async def test_async_stream_body_priced_after_aread(
    hx: Any, server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search", {"costDollars": {"total": 0.008}}, chunk=5)
    async with dexcost.task("t"), hx.AsyncClient() as client:
        request = client.build_request("POST", server.url("api.exa.ai", "/search"))
        response = await client.send(request, stream=True)
        assert events() == []
        await response.aread()
        await response.aclose()
    assert [e["cost_usd"] for e in events()] == ["0.008"]


def test_stream_left_unread_is_priced_from_headers(
    hx: Any, server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search", {"costDollars": {"total": 0.3}})
    with (
        dexcost.task("t"),
        hx.Client() as client,
        client.stream("POST", server.url("api.exa.ai", "/search")),
    ):
        pass
    (event,) = events()
    assert event["cost_usd"] != "0.3"
    assert event["cost_confidence"] == "estimated"


def test_llm_and_unknown_hosts_record_nothing(
    hx: Any, server: Any, tracker: Any, events: Any
) -> None:
    server.route("/v1/messages", {"content": []})
    server.route("/x", {})
    with dexcost.task("t"), hx.Client() as client:
        client.post(server.url("api.anthropic.com", "/v1/messages"))
        client.get(server.url("files.example.org", "/x"))
    assert events() == []
    assert len(server.hits) == 2


async def test_httpx_over_aiohttp_is_recorded_once(server: Any, tracker: Any, events: Any) -> None:
    httpx_aiohttp = pytest.importorskip("httpx_aiohttp")
    assert {"aiohttp", "httpx"} <= set(_track.patched())  # both layers see the request
    server.route("/search", {"costDollars": {"total": 0.006}})
    async with dexcost.task("t"), httpx_aiohttp.HttpxAiohttpClient() as client:
        response = await client.post(server.url("api.exa.ai", "/search"))
    assert response.json() == {"costDollars": {"total": 0.006}}
    assert [(e["cost_usd"], e["details"]["library"]) for e in events()] == [("0.006", "httpx")]
