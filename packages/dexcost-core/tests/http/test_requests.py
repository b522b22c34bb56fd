"""requests (over urllib3) against the local server: pricing, streams, scope, errors."""

from __future__ import annotations

import hashlib
import json
import socket
from decimal import Decimal
from typing import Any

import pytest
import requests

import dexcost
from dexcost.adapters.http import untrack_http
from dexcost.adapters.http._body import BODY_LIMIT
from dexcost.catalog import ServiceCatalog

PINECONE = "my-index-c7556fa.svc.us-east1-aws.pinecone.io"


def test_per_request_entry_records_once_with_details(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    server.route("/search.json", {"organic_results": []})
    with dexcost.task("research") as t:
        r = requests.get(server.url("serpapi.com", "/search.json?q=coffee&api_key=sk-secret"))
    assert r.json() == {"organic_results": []}
    (event,) = events()
    assert event["task_id"] == str(t.task_id)
    assert event["service_name"] == "serpapi"
    assert Decimal(event["cost_usd"]) == price("serpapi")
    assert event["cost_confidence"] == "estimated"
    assert event["pricing_source"] == "service_catalog"
    assert event["pricing_version"] == ServiceCatalog.load_bundled().version
    details = event["details"]
    assert details["library"] == "requests"
    assert details["method"] == "GET"
    assert details["host"] == "serpapi.com"
    assert details["path"] == "/search.json"  # no query string, so no api_key
    assert details["status"] == 200
    assert isinstance(details["latency_ms"], int)
    assert "sk-secret" not in json.dumps(event)


def test_per_unit_from_body(server: Any, tracker: Any, events: Any, price: Any) -> None:
    server.route("/query", {"matches": [], "usage": {"readUnits": 7}})
    with dexcost.task("rag"):
        requests.post(server.url(PINECONE, "/query"), json={"topK": 3})
    (event,) = events()
    assert event["service_name"] == "pinecone"
    assert Decimal(event["cost_usd"]) == price("pinecone", 7)


def test_reported_charge_in_body_is_exact(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.0125}, "results": []})
    with dexcost.task("research"):
        requests.post(server.url("api.exa.ai", "/search"), json={"query": "x"})
    (event,) = events()
    assert (event["service_name"], event["cost_usd"], event["cost_confidence"]) == (
        "exa_search",
        "0.0125",
        "exact",
    )


def test_credits_from_a_header(server: Any, tracker: Any, events: Any, price: Any) -> None:
    server.route("/api/v1/", b"<html></html>", headers={"Spb-cost": "25"})
    with dexcost.task("scrape"):
        requests.get(server.url("app.scrapingbee.com", "/api/v1/?url=https://example.com"))
    (event,) = events()
    assert event["service_name"] == "scrapingbee"
    assert Decimal(event["cost_usd"]) == price("scrapingbee", 25)


def test_gzip_body_is_priced_from_the_decoded_json(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.02}}, gzip=True)
    with dexcost.task("research"):
        r = requests.post(server.url("api.exa.ai", "/search"))
    assert r.json() == {"costDollars": {"total": 0.02}}
    assert [e["cost_usd"] for e in events()] == ["0.02"]


def test_host_not_in_the_catalog_records_nothing(server: Any, tracker: Any, events: Any) -> None:
    server.route("/data", {"x": 1})
    with dexcost.task("t"):
        assert requests.get(server.url("internal.example.org", "/data")).json() == {"x": 1}
    assert events() == []
    assert len(server.hits) == 1


def test_llm_host_is_left_to_the_provider_layer(server: Any, tracker: Any, events: Any) -> None:
    server.route("/v1/chat/completions", {"choices": []})
    with dexcost.task("t"):
        requests.post(server.url("api.openai.com", "/v1/chat/completions"), json={})
    assert events() == []


def test_recorded_once_through_requests_and_urllib3(server: Any, tracker: Any, events: Any) -> None:
    from dexcost.instrument._patch import installed

    assert {p.target for p in installed("http")} >= {
        "requests.sessions:Session.send",
        "urllib3.connectionpool:HTTPConnectionPool.urlopen",
    }
    server.route("/search.json", {})
    with dexcost.task("t"):
        requests.get(server.url("serpapi.com", "/search.json"))
        requests.Session().get(server.url("serpapi.com", "/search.json"))
    assert [e["details"]["library"] for e in events()] == ["requests", "requests"]


def test_redirect_followed_inside_send_is_one_call(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search.json", status=302, headers={"Location": "/final.json"})
    server.route("/final.json", {"ok": True})
    with dexcost.task("t"):
        r = requests.get(server.url("serpapi.com", "/search.json"))
    assert r.json() == {"ok": True}
    assert len(server.hits) == 2
    (event,) = events()
    assert event["details"]["path"] == "/search.json"


def test_error_answers_are_not_billed(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search.json", {"error": "Invalid API key"}, status=401)
    with dexcost.task("t"):
        r = requests.get(server.url("serpapi.com", "/search.json"))
    assert r.status_code == 401
    assert events() == []


def test_outside_a_task_costs_land_in_the_session_task(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search.json", {})
    requests.get(server.url("serpapi.com", "/search.json"))
    (event,) = events()
    sessions = {str(s.task_id) for s in tracker.sessions.active}
    assert event["task_id"] in sessions


def test_connection_refused_propagates_untouched(server: Any, tracker: Any, events: Any) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://serpapi.com:{port}/search.json"

    def attempt() -> BaseException:
        with dexcost.task("t"), pytest.raises(requests.ConnectionError) as caught:
            requests.get(url, timeout=5)
        return caught.value

    captured = attempt()
    untrack_http()
    plain = attempt()
    assert type(captured) is type(plain)
    assert type(captured.args[0]) is type(plain.args[0])
    assert type(captured.__context__) is type(plain.__context__)
    assert events() == []


# -- streamed responses -------------------------------------------------------------------


def test_streamed_download_is_intact_and_recorded_once(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, chunked on the wire
    server.route("/search.json", payload, chunk=65536, headers={"Content-Type": "image/png"})
    digest = hashlib.sha256()
    with (
        dexcost.task("t"),
        requests.get(server.url("serpapi.com", "/search.json"), stream=True) as r,
    ):
        for chunk in r.iter_content(chunk_size=10_000):
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(payload).digest()
    assert [Decimal(e["cost_usd"]) for e in events()] == [price("serpapi")]


def test_streamed_body_priced_when_the_user_has_read_it(
    server: Any, tracker: Any, events: Any
) -> None:
    body = {"costDollars": {"total": 0.031}, "results": [{"text": "x" * 5000}] * 20}
    server.route("/contents", body, chunk=4096, gzip=True)
    with dexcost.task("t"):
        r = requests.post(server.url("api.exa.ai", "/contents"), stream=True)
        assert events() == []  # nothing read yet, nothing priced yet
        assert r.json() == body
    (event,) = events()
    assert (event["cost_usd"], event["cost_confidence"]) == ("0.031", "exact")


def test_streamed_body_read_raw_by_the_user(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.004}}, gzip=True)
    with dexcost.task("t"):
        r = requests.post(server.url("api.exa.ai", "/search"), stream=True)
        raw = b""
        while chunk := r.raw.read(7):
            raw += chunk
    assert json.loads(__import__("gzip").decompress(raw)) == {"costDollars": {"total": 0.004}}
    assert [e["cost_usd"] for e in events()] == ["0.004"]


def test_stream_closed_early_is_priced_from_headers(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.5}, "pad": "x" * 200_000}, chunk=1024)
    entry = ServiceCatalog.load_bundled().get("exa_search")
    assert entry is not None
    assert entry.rule.fallback is not None
    with (
        dexcost.task("t"),
        requests.post(server.url("api.exa.ai", "/search"), stream=True) as r,
    ):
        first = next(r.iter_content(100))
    assert first.startswith(b'{"costDollars"')
    (event,) = events()
    fallback: Any = entry.rule.fallback
    assert Decimal(event["cost_usd"]) == fallback.price
    assert event["cost_confidence"] == "estimated"


def _large_search_result(cost: str, *, where: str = "end") -> dict[str, Any]:
    """An Exa-like answer over BODY_LIMIT whose charge sits at one end or in the middle."""
    results = [{"id": i, "text": "x" * 1000, "costDollars": {"total": 9}} for i in range(4200)]
    assert len(json.dumps(results)) > BODY_LIMIT
    if where == "middle":
        return {"results": results, "costDollars": {"total": float(cost)}, "more": results}
    return {"results": results, "costDollars": {"total": float(cost)}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_body_over_the_limit_is_priced_from_the_charge_at_its_end(
    server: Any, tracker: Any, events: Any, stream: bool
) -> None:
    """Loaded, the body is searched; streamed, only its two ends are kept to search."""
    server.route("/search", _large_search_result("0.9"), chunk=65536)
    with dexcost.task("t"):
        r = requests.post(server.url("api.exa.ai", "/search"), stream=stream)
        read = b"".join(r.iter_content(65536)) if stream else r.content
    assert json.loads(read)["costDollars"] == {"total": 0.9}  # the user's bytes, whole
    (event,) = events()
    assert (event["cost_usd"], event["cost_confidence"]) == ("0.9", "exact")


@pytest.mark.parametrize("stream", [False, True])
def test_a_charge_only_in_the_middle_of_a_body_over_the_limit_falls_back(
    server: Any, tracker: Any, events: Any, stream: bool
) -> None:
    """Too large to parse whole, and not where the search looks: the per-request price."""
    server.route("/search", _large_search_result("0.9", where="middle"), chunk=65536)
    with dexcost.task("t"):
        r = requests.post(server.url("api.exa.ai", "/search"), stream=stream)
        if stream:
            for _ in r.iter_content(65536):
                pass
    (event,) = events()
    assert event["cost_usd"] not in ("0.9", "9")
    assert event["cost_confidence"] == "estimated"


def test_free_endpoint_is_no_event_but_unpriceable_call_is(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/account.json", {"plan": "starter"})  # serpapi prices this at 0
    server.route("/vectors/upsert", {"upsertedCount": 2})  # pinecone reports no read units
    with dexcost.task("t"):
        requests.get(server.url("serpapi.com", "/account.json"))
        requests.post(server.url(PINECONE, "/vectors/upsert"))
    (event,) = events()
    assert (event["service_name"], event["cost_usd"], event["cost_confidence"]) == (
        "pinecone",
        "0",
        "unknown",
    )


def test_captured_event_carries_attribution_redaction_and_current_totals(
    server: Any, db_path: Any, events: Any, price: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The event is built by the store's writer; what it carries is fixed when the call
    returns (attribution, id, time), the task's totals are current at once, and
    ``redact_fields`` applies to it as to any event."""
    from dexcost.adapters.http import track_http

    dexcost.init(
        buffer_path=str(db_path), auto_instrument=[], track_http=False, redact_fields=["path"]
    )
    track_http()
    try:
        server.route("/search.json", {"organic_results": []})
        dexcost.set_context(customer_id="acme", project_id="support")
        with dexcost.task("research") as t:
            requests.get(server.url("serpapi.com", "/search.json?q=coffee"))
            assert t.task.external_cost_usd == price("serpapi")
            assert t.task.event_count == 1
            dexcost.set_context(customer_id="globex")  # later changes do not move the event
    finally:
        untrack_http()
    (event,) = events()
    assert (event["customer_id"], event["project_id"], event["task_type"]) == (
        "acme",
        "support",
        "research",
    )
    assert "path" not in event["details"]
    assert event["details"]["host"] == "serpapi.com"
    assert "[dexcost]" not in capsys.readouterr().err  # printed only in dev mode


def test_dev_mode_prints_each_captured_call(
    server: Any, db_path: Any, events: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from dexcost.adapters.http import track_http

    dexcost.init(
        buffer_path=str(db_path), auto_instrument=[], track_http=False, environment="development"
    )
    track_http()
    try:
        server.route("/search.json", {"organic_results": []})
        with dexcost.task("research"):
            requests.get(server.url("serpapi.com", "/search.json"))
    finally:
        untrack_http()
    assert "external_cost" in capsys.readouterr().err
    assert len(events()) == 1
