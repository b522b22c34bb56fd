"""MCP (Model Context Protocol): every ``ClientSession.call_tool`` becomes an event.

A tool call has no tokens. It is recorded as an ``external_cost`` event for the service
``mcp:<tool>`` with its latency and outcome (``success``, ``tool_error`` when the tool
reported an error, or the exception's type), priced from the rate registry: register
``tracker.register_rate("mcp:<tool>", per="call", cost_usd="0.002")`` (or under the bare
tool name). Without a rate the cost is 0 with confidence ``unknown``. The high-level
``mcp.client.Client`` (mcp 2.x) and ``ClientSessionGroup`` delegate to the session and
are covered by the same patch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dexcost import _guard, _money, _scope

from ._base import Instrumentor
from ._record import classify_error

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["MCPInstrumentor"]

_SITE = "instrument.mcp.call_tool"


def _record(
    tracker: CostTracker,
    tool: str,
    started_ns: int,
    result: Any,
    exc: BaseException | None,
) -> None:
    latency_ms = (time.perf_counter_ns() - started_ns) // 1_000_000
    service = f"mcp:{tool}"
    details: dict[str, Any] = {"tool": tool, "latency_ms": latency_ms}
    if exc is not None:
        details["outcome"] = "error"
        details["error_type"] = classify_error(exc)
    elif getattr(result, "is_error", None) or getattr(result, "isError", False):  # 2.x, 1.x
        details["outcome"] = "tool_error"
    else:
        details["outcome"] = "success"
    rates = tracker.rates
    rate = rates.get(service) or rates.get(tool)
    if rate is None:
        tracker.record_cost(
            service,
            _money.ZERO,
            cost_confidence="unknown",
            pricing_source="unknown",
            details=details,
        )
        return
    details["per"] = rate.per
    tracker.record_cost(
        service,
        rate.cost_usd,
        cost_confidence="computed",
        pricing_source="rate_registry",
        pricing_version=getattr(rates, "pricing_version", None),
        details=details,
    )


class MCPInstrumentor(Instrumentor):
    """Records every MCP tool call made through ``mcp.ClientSession``."""

    name = "mcp"
    import_name = "mcp"
    pip_name = "mcp"

    def _install(self) -> None:
        self._wrap("mcp.client.session", "ClientSession.call_tool", self._call_tool)

    async def _call_tool(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        tracker = self.tracker
        if tracker is None:
            return await wrapped(*args, **kwargs)
        tool = args[0] if args else kwargs.get("name")
        if not isinstance(tool, str) or not tool:
            return await wrapped(*args, **kwargs)
        # The tool call owns its transport's HTTP requests: HTTP capture stays silent.
        token = _scope.hold("mcp")
        started = time.perf_counter_ns()
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            _guard.call(_SITE, None, _record, tracker, tool, started, None, exc)
            raise
        finally:
            _scope.release(token)
        _guard.call(_SITE, None, _record, tracker, tool, started, result, None)
        return result
