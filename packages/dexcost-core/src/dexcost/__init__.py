"""dexcost: what each task and each customer of an AI agent costs.

Start with :func:`init`, group work with :func:`task`, and attribute it with
:func:`set_context`. Everything is recorded locally (SQLite) unless an API key is set.
"""

from __future__ import annotations

from ._api import (
    close,
    flush,
    get_config,
    get_session_manager,
    get_trace_links,
    get_tracker,
    init,
    link_trace,
    mark_not_retry,
    mark_retry,
    record_cost,
    record_llm_call,
    record_usage,
    task,
)
from ._config import DexcostConfig, InvalidAPIKeyError, validate_api_key
from ._context import (
    DexcostContext,
    async_task_context,
    clear_context,
    get_context,
    get_current_task,
    set_context,
    set_current_task,
    task_context,
)
from ._models import Event, Task
from ._retry import RetryHeuristicEngine
from ._session import SessionManager
from ._task_scope import TaskScope
from ._tracked_task import TrackedTask
from ._tracker import CostTracker
from ._types import CostConfidence, EventType, PricingSource, TaskStatus
from .catalog import CostExtractionResult, ServiceCatalog
from .pricing import CostResult, PricingEngine, RateEntry, RateRegistry

__version__ = "0.1.0"

__all__ = [
    "CostConfidence",
    "CostExtractionResult",
    "CostResult",
    "CostTracker",
    "DexcostConfig",
    "DexcostContext",
    "Event",
    "EventType",
    "InvalidAPIKeyError",
    "PricingEngine",
    "PricingSource",
    "RateEntry",
    "RateRegistry",
    "RetryHeuristicEngine",
    "ServiceCatalog",
    "SessionManager",
    "Task",
    "TaskScope",
    "TaskStatus",
    "TrackedTask",
    "__version__",
    "async_task_context",
    "clear_context",
    "close",
    "flush",
    "get_config",
    "get_context",
    "get_current_task",
    "get_session_manager",
    "get_trace_links",
    "get_tracker",
    "init",
    "link_trace",
    "mark_not_retry",
    "mark_retry",
    "record_cost",
    "record_llm_call",
    "record_usage",
    "set_context",
    "set_current_task",
    "task",
    "task_context",
    "validate_api_key",
]
