"""MCP tool calls through a real ``mcp`` client session and an in-process server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import mcp
import pytest
from mcp.client.session import ClientSession

import dexcost
from dexcost.instrument import instrument_mcp, uninstrument_mcp


def make_server() -> Any:
    try:  # mcp 2.x
        from mcp.server.mcpserver import MCPServer as Server
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as Server
    server = Server("orders")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Find an order."""
        return f"order {order_id}: shipped"

    @server.tool()
    def refund(order_id: str) -> str:
        """Refund an order."""
        raise ValueError("refunds are closed")

    return server


@asynccontextmanager
async def connected() -> AsyncIterator[Any]:
    """A client connected in-process to the server (its calls go through ClientSession)."""
    server = make_server()
    if hasattr(mcp, "Client"):  # mcp 2.x
        async with mcp.Client(server) as client:
            yield client
    else:  # mcp 1.x
        from mcp.shared.memory import create_connected_server_and_client_session

        async with create_connected_server_and_client_session(server._mcp_server) as session:
            yield session


@pytest.fixture
def instrumented(tracker: dexcost.CostTracker) -> dexcost.CostTracker:
    tracker.instrument("mcp")
    return tracker


async def test_tool_call_without_a_rate_is_recorded_at_unknown_cost(
    instrumented: dexcost.CostTracker, one_event: Any
) -> None:
    async with connected() as client, instrumented.task("support") as task:
        result = await client.call_tool("lookup_order", {"order_id": "A1"})
    assert "shipped" in result.content[0].text
    event = one_event("external_cost")
    assert event["task_id"] == str(task.task_id)
    assert event["service_name"] == "mcp:lookup_order"
    assert (Decimal(event["cost_usd"]), event["cost_confidence"]) == (0, "unknown")
    assert event["details"]["tool"] == "lookup_order"
    assert event["details"]["outcome"] == "success"
    assert isinstance(event["details"]["latency_ms"], int)


async def test_tool_call_is_priced_from_the_rate_registry(
    instrumented: dexcost.CostTracker, one_event: Any
) -> None:
    instrumented.register_rate("mcp:lookup_order", per="call", cost_usd="0.002")
    async with connected() as client:
        await client.call_tool("lookup_order", {"order_id": "A2"})
    event = one_event("external_cost")
    assert Decimal(event["cost_usd"]) == Decimal("0.002")
    assert (event["cost_confidence"], event["pricing_source"]) == ("computed", "rate_registry")


async def test_a_rate_under_the_bare_tool_name_also_applies(
    instrumented: dexcost.CostTracker, one_event: Any
) -> None:
    instrumented.register_rate("lookup_order", per="call", cost_usd="0.01")
    async with connected() as client:
        await client.call_tool("lookup_order", {"order_id": "A3"})
    assert Decimal(one_event("external_cost")["cost_usd"]) == Decimal("0.01")


async def test_tool_error_is_the_outcome(instrumented: dexcost.CostTracker, one_event: Any) -> None:
    async with connected() as client:
        result = await client.call_tool("refund", {"order_id": "A1"})
    assert getattr(result, "is_error", None) or getattr(result, "isError", False)
    assert one_event("external_cost")["details"]["outcome"] == "tool_error"


async def test_uninstrument_restores_call_tool(tracker: dexcost.CostTracker, events: Any) -> None:
    original = vars(ClientSession)["call_tool"]
    instrument_mcp(tracker)
    assert vars(ClientSession)["call_tool"] is not original
    uninstrument_mcp()
    assert vars(ClientSession)["call_tool"] is original
    async with connected() as client:
        await client.call_tool("lookup_order", {"order_id": "A1"})
    assert events("external_cost") == []
