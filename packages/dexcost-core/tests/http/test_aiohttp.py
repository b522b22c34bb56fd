"""aiohttp's ClientSession against the local server: the body is always the user's to read."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import yarl

import dexcost
from dexcost.adapters.http import register_domain_rate, unregister_domain_rate


async def test_json_body_priced_when_read(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.0142}}, gzip=True)
    async with (
        dexcost.task("t"),
        aiohttp.ClientSession() as session,
        session.post(server.url("api.exa.ai", "/search"), json={}) as response,
    ):
        assert events() == []  # headers only so far
        assert await response.json() == {"costDollars": {"total": 0.0142}}
    (event,) = events()
    assert (event["service_name"], event["cost_usd"]) == ("exa_search", "0.0142")
    assert event["details"]["library"] == "aiohttp"
    assert event["details"]["method"] == "POST"


async def test_header_entry_recorded_at_once(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    server.route("/v5/person/enrich", {"data": {}}, headers={"X-Call-Credits-Spent": "2"})
    async with dexcost.task("t"), aiohttp.ClientSession() as session:
        response = await session.get(server.url("api.peopledatalabs.com", "/v5/person/enrich"))
        assert [Decimal(e["cost_usd"]) for e in events()] == [price("people_data_labs", 2)]
        response.release()


async def test_iter_chunked_download_intact_and_priced(
    server: Any, tracker: Any, events: Any
) -> None:
    body = {"costDollars": {"total": 0.05}, "results": [{"text": "z" * 4000}] * 50}
    server.route("/contents", body, chunk=8192)
    expected = hashlib.sha256(server.routes["/contents"].body).digest()
    digest = hashlib.sha256()
    async with (
        dexcost.task("t"),
        aiohttp.ClientSession() as session,
        session.post(server.url("api.exa.ai", "/contents")) as response,
    ):
        async for chunk in response.content.iter_chunked(1000):
            digest.update(chunk)
    assert digest.digest() == expected
    assert [e["cost_usd"] for e in events()] == ["0.05"]


async def test_released_unread_is_priced_from_headers(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search", {"costDollars": {"total": 0.7}, "pad": "p" * 100_000}, chunk=4096)
    async with (
        dexcost.task("t"),
        aiohttp.ClientSession() as session,
        session.post(server.url("api.exa.ai", "/search")) as response,
    ):
        await response.content.readexactly(10)
    (event,) = events()
    assert event["cost_usd"] != "0.7"
    assert event["cost_confidence"] == "estimated"


async def test_base_url_and_unknown_host(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search.json", {})
    async with dexcost.task("t"):
        async with (
            aiohttp.ClientSession(base_url=server.url("serpapi.com", "/")) as session,
            session.get("search.json", params={"q": "x"}) as response,
        ):
            await response.read()
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url("cdn.example.org", "/search.json")) as response,
        ):
            await response.read()
    assert [(e["service_name"], e["details"]["path"]) for e in events()] == [
        ("serpapi", "/search.json")
    ]


async def test_a_url_without_a_path_is_priced_by_its_host(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/", {})
    register_domain_rate("api.newvendor.io", "0.01")
    try:
        async with dexcost.task("t"), aiohttp.ClientSession() as session:
            for _ in range(2):  # the host learnt, then read from the cache
                url = server.url("api.newvendor.io", "?q=1")  # a str URL: read in the gate
                async with session.get(url) as response:
                    await response.read()
    finally:
        unregister_domain_rate("api.newvendor.io")
    assert [(e["cost_usd"], e["details"]["path"]) for e in events()] == [("0.01", "/")] * 2


async def test_a_yarl_url_and_options_reach_the_call_unchanged(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search.json", {"organic_results": []})
    url = yarl.URL(server.url("serpapi.com", "/search.json"))
    async with dexcost.task("t"), aiohttp.ClientSession() as session:
        async with session.get(url, params={"q": "x"}, allow_redirects=False) as response:
            assert response.url.query["q"] == "x"
            assert await response.json() == {"organic_results": []}
        for target in (url, str(url)):  # an unknown keyword is refused by aiohttp itself
            with pytest.raises(TypeError, match="no_such_option"):
                await session.get(target, no_such_option=1)
    assert [(e["service_name"], e["details"]["path"]) for e in events()] == [
        ("serpapi", "/search.json")
    ]
