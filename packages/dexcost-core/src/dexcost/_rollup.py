"""Roll-up of event costs into a task and all of its ancestors.

A task's aggregates include every descendant's events, so the root of a tree carries what
the whole business operation cost. Callers hold the tracker's settle lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._models import Event, Task

if TYPE_CHECKING:
    from ._deferred import Record
    from ._tracked_task import TrackedTask


def lineage(tracked: TrackedTask) -> Iterator[TrackedTask]:
    """Yield ``tracked`` and then each live ancestor up to the root."""
    node: TrackedTask | None = tracked
    while node is not None:
        yield node
        node = node._parent


def add_event(task: Task, event: Event) -> None:
    """Add ``event``'s cost and tokens to ``task``'s aggregates."""
    cost = event.cost_usd
    values = task.__dict__  # the aggregates themselves, not their settling reads
    values["total_cost_usd"] += cost
    values["event_count"] += 1
    kind = event.event_type
    if kind == "llm_call":
        values["llm_cost_usd"] += cost
        values["total_input_tokens"] += event.input_tokens or 0
        values["total_output_tokens"] += event.output_tokens or 0
        values["total_cached_tokens"] += event.cached_tokens or 0
        values["total_cache_creation_tokens"] += event.cache_creation_tokens or 0
    elif kind == "external_cost":
        values["external_cost_usd"] += cost
    elif kind == "compute_cost":
        values["compute_cost_usd"] += cost
    if event.is_retry:
        values["retry_count"] += 1
        values["retry_cost_usd"] += cost


def add_record(task: Task, record: Record) -> None:
    """:func:`add_event` for a deferred record (never a retry; its values are in
    :class:`Event` field order, see ``_deferred``)."""
    cost = record[3]
    values = task.__dict__
    values["total_cost_usd"] += cost
    values["event_count"] += 1
    kind = record[2]
    if kind == "llm_call":
        values["llm_cost_usd"] += cost
        values["total_input_tokens"] += record[11]
        values["total_output_tokens"] += record[12]
        values["total_cached_tokens"] += record[13]
        values["total_cache_creation_tokens"] += record[14]
    elif kind == "external_cost":
        values["external_cost_usd"] += cost
    elif kind == "compute_cost":
        values["compute_cost_usd"] += cost


def set_retry_flag(task: Task, event: Event, is_retry: bool) -> None:
    """Move ``event``'s cost in or out of ``task``'s retry aggregates."""
    if is_retry:
        task.retry_count += 1
        task.retry_cost_usd += event.cost_usd
    else:
        task.retry_count -= 1
        task.retry_cost_usd -= event.cost_usd
