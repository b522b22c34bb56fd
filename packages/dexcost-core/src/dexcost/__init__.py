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
from ._scope import (
    BillingScope,
    FrameworkCall,
    billing_scope,
    current_billing_layer,
    current_framework_call,
    mark_covered,
    on_covered,
)
from ._session import SessionManager
from ._task_scope import TaskScope
from ._tracked_task import TrackedTask
from ._tracker import CostTracker
from ._types import CostConfidence, EventType, PricingSource, TaskStatus
from .catalog import CostExtractionResult, ServiceCatalog
from .instrument import (
    ALL_SUPPORTED_INSTRUMENTS,
    TrackedAnthropic,
    TrackedAsyncAnthropic,
    TrackedAsyncOpenAI,
    TrackedOpenAI,
    instrument_anthropic,
    instrument_bedrock,
    instrument_cohere,
    instrument_gemini,
    instrument_litellm,
    instrument_mcp,
    instrument_openai,
    uninstrument_anthropic,
    uninstrument_bedrock,
    uninstrument_cohere,
    uninstrument_gemini,
    uninstrument_litellm,
    uninstrument_mcp,
    uninstrument_openai,
)
from .pricing import CostResult, PricingEngine, RateEntry, RateRegistry

__version__ = "0.1.0"

__all__ = [
    "ALL_SUPPORTED_INSTRUMENTS",
    "BillingScope",
    "CostConfidence",
    "CostExtractionResult",
    "CostResult",
    "CostTracker",
    "DexcostConfig",
    "DexcostContext",
    "Event",
    "EventType",
    "FrameworkCall",
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
    "TrackedAnthropic",
    "TrackedAsyncAnthropic",
    "TrackedAsyncOpenAI",
    "TrackedOpenAI",
    "TrackedTask",
    "__version__",
    "async_task_context",
    "billing_scope",
    "clear_context",
    "close",
    "current_billing_layer",
    "current_framework_call",
    "flush",
    "get_config",
    "get_context",
    "get_current_task",
    "get_session_manager",
    "get_trace_links",
    "get_tracker",
    "init",
    "instrument_anthropic",
    "instrument_bedrock",
    "instrument_cohere",
    "instrument_gemini",
    "instrument_litellm",
    "instrument_mcp",
    "instrument_openai",
    "link_trace",
    "mark_covered",
    "mark_not_retry",
    "mark_retry",
    "on_covered",
    "record_cost",
    "record_llm_call",
    "record_usage",
    "set_context",
    "set_current_task",
    "task",
    "task_context",
    "uninstrument_anthropic",
    "uninstrument_bedrock",
    "uninstrument_cohere",
    "uninstrument_gemini",
    "uninstrument_litellm",
    "uninstrument_mcp",
    "uninstrument_openai",
    "validate_api_key",
]
