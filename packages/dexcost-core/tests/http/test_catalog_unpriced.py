"""Calls to services the catalog recognises but cannot price are recorded as unpriced."""

from __future__ import annotations

from typing import Any

import requests

import dexcost

WEAVIATE = "my-cluster-abc123.c0.europe-west3.gcp.weaviate.cloud"


def test_unpriced_service_is_an_event_of_unknown_cost(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/v1/graphql", {"data": {"Get": {"Article": []}}})
    with dexcost.task("rag"):
        r = requests.post(server.url(WEAVIATE, "/v1/graphql"), json={"query": "{ Get { } }"})
    assert r.json() == {"data": {"Get": {"Article": []}}}
    (event,) = events()
    assert (event["service_name"], event["cost_usd"], event["cost_confidence"]) == (
        "weaviate_cloud",
        "0",
        "unknown",
    )
    assert event["pricing_source"] == "service_catalog"
    assert event["details"]["host"] == WEAVIATE
