"""The persisted records: :class:`Task` and :class:`Event`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._money import ZERO

if TYPE_CHECKING:
    from ._tracked_task import TrackedTask


@dataclass(eq=False)
class Task:
    """A business operation (``resolve_ticket``) and the costs rolled up from its events.

    Aggregates include the costs of every descendant task, so a parent's
    ``total_cost_usd`` is what the whole operation cost.
    """

    task_id: uuid.UUID
    task_type: str
    started_at: datetime
    customer_id: str | None = None
    project_id: str | None = None
    parent_task_id: uuid.UUID | None = None
    status: str = "pending"
    ended_at: datetime | None = None
    total_cost_usd: Decimal = ZERO
    llm_cost_usd: Decimal = ZERO
    external_cost_usd: Decimal = ZERO
    compute_cost_usd: Decimal = ZERO
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    total_cached_tokens: int = 0
    total_cache_creation_tokens: int = 0
    retry_count: int = 0
    retry_cost_usd: Decimal = ZERO
    event_count: int = 0
    error_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The live handle while the task is open in this process (not persisted).
    _live: TrackedTask | None = field(default=None, repr=False, compare=False)


class _Settled:
    """A :class:`Task` aggregate that is current whenever it is read.

    dexcost's instrumentation defers pricing and roll-up (see ``dexcost._deferred``);
    reading an aggregate of a task that has a live handle first settles its tracker's
    pending records, on whatever thread reads it. The value lives in the instance's
    ``__dict__`` under the same name (the roll-up writes it there directly).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, task: Task | None, owner: type | None = None) -> Any:
        if task is None:
            return self
        values = settled_fields(task)
        try:
            return values[self.name]
        except KeyError:  # a Task made without __init__
            raise AttributeError(self.name) from None

    def __set__(self, task: Task, value: Any) -> None:
        task.__dict__[self.name] = value


def settled_fields(task: Task) -> dict[str, Any]:
    """``task``'s own ``__dict__`` (its fields and aggregates), after settling its
    tracker's pending records when it has a live handle (see :class:`_Settled`)."""
    values = task.__dict__
    live = values.get("_live")
    if live is not None:
        tracker = live._tracker
        if tracker._pending or tracker._settling:
            tracker._settle()
    return values


#: The aggregates a task's events roll up into.
AGGREGATES = (
    "total_cost_usd",
    "llm_cost_usd",
    "external_cost_usd",
    "compute_cost_usd",
    "total_input_tokens",
    "total_output_tokens",
    "total_cached_tokens",
    "total_cache_creation_tokens",
    "retry_count",
    "retry_cost_usd",
    "event_count",
)
for _name in AGGREGATES:
    setattr(Task, _name, _Settled(_name))


@dataclass(eq=False, slots=True)
class Event:
    """One cost-generating action inside a task (an LLM call, a paid API call, ...).

    ``input_tokens`` counts every input token including cache reads and writes;
    ``cached_tokens`` and ``cache_creation_tokens`` say how many of them were billed at
    the cache-read and cache-write prices. ``customer_id``, ``project_id`` and
    ``task_type`` are the task's attribution at the time of the event.
    """

    event_id: uuid.UUID
    task_id: uuid.UUID
    event_type: str
    cost_usd: Decimal
    cost_confidence: str
    pricing_source: str
    occurred_at: datetime
    pricing_version: str | None = None
    service_name: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    latency_ms: int | None = None
    is_retry: bool = False
    retry_reason: str | None = None
    retry_of: uuid.UUID | None = None
    error_type: str | None = None
    customer_id: str | None = None
    project_id: str | None = None
    task_type: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
