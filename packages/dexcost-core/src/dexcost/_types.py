"""The enumerations of the data model: event types, task status, confidence, sources."""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    """A str-valued enum whose ``str()`` is its value (like 3.11's StrEnum, on 3.10 too)."""

    def __str__(self) -> str:
        return str(self.value)


class EventType(_StrEnum):
    """What kind of cost an event records."""

    LLM_CALL = "llm_call"
    EXTERNAL_COST = "external_cost"
    COMPUTE_COST = "compute_cost"
    RETRY_MARKER = "retry_marker"


class TaskStatus(_StrEnum):
    """The state of a task: ``pending`` while it runs, then ``success`` or ``failed``."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


class CostConfidence(_StrEnum):
    """How a cost was determined."""

    EXACT = "exact"
    COMPUTED = "computed"
    ESTIMATED = "estimated"
    UNKNOWN = "unknown"


class PricingSource(_StrEnum):
    """Where the price behind a cost came from."""

    LITELLM = "litellm"
    CUSTOM = "custom"
    MANUAL = "manual"
    RATE_REGISTRY = "rate_registry"
    SERVICE_CATALOG = "service_catalog"
    PROVIDER = "provider"
    UNKNOWN = "unknown"


EVENT_TYPES = frozenset(e.value for e in EventType)
TASK_STATUSES = frozenset(s.value for s in TaskStatus)
COST_CONFIDENCES = frozenset(c.value for c in CostConfidence)
PRICING_SOURCES = frozenset(p.value for p in PricingSource)

#: Error types that count as transient: a call that failed with one is usually retried.
TRANSIENT_ERROR_TYPES = frozenset(
    {"rate_limit", "timeout", "5xx", "server_error", "connection_error", "overloaded"}
)
