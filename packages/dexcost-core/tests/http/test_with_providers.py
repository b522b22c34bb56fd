"""HTTP capture next to the provider instrumentation: an SDK's call is billed once."""

from __future__ import annotations

from typing import Any

import pytest

import dexcost
from dexcost.adapters.http import register_domain_rate

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 4},
}


def test_sdk_call_recorded_by_the_provider_layer_only(server: Any, tracker: Any, read: Any) -> None:
    anthropic = pytest.importorskip("anthropic")
    server.route("/v1/messages", MESSAGE)
    register_domain_rate("api.anthropic.com", "1")  # would bill the host at the HTTP layer
    tracker.instrument("anthropic")
    try:
        client = anthropic.Anthropic(
            api_key="sk-test", base_url=server.url("api.anthropic.com", "")
        )
        with dexcost.task("chat"):
            client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
            )
    finally:
        tracker.uninstrument("anthropic")
    rows = read("SELECT event_type, input_tokens FROM events")
    assert [(r["event_type"], r["input_tokens"]) for r in rows] == [("llm_call", 12)]
    assert len(server.hits) == 1
