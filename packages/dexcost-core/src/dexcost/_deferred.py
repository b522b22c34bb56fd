"""Events that dexcost's own instrumentation records: a tuple now, an :class:`Event` later.

A provider patch or the HTTP capture never hands its event back to the caller, so the
recording thread does not build one. It prices the call and rolls it up into the task
at once (a task's totals are current when the call returns), takes the event's id and
time, and queues the values as one plain tuple. The store's writer builds the
:class:`Event` (its UUID object, its datetime, its redacted details) in batches, where
that work is cheap: on the calling thread, after a call has filled the CPU caches with
the SDK's own code and data, building it cost more than pricing the call.

The layout is ``Record``'s field order below; :func:`build` is the only reader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ._ids import uuid_of
from ._models import Event

__all__ = ["COST", "EVENT_TYPE", "Record", "build"]

#: id (128-bit int), time_ns, task_id, event_type, cost_usd, cost_confidence,
#: pricing_source, pricing_version, service_name, provider, model, input_tokens,
#: output_tokens, cached_tokens, cache_creation_tokens, reasoning_tokens, latency_ms,
#: error_type, customer_id, project_id, task_type, details, redactor
Record = tuple[Any, ...]

#: Where the roll-up reads a record's event type and cost.
EVENT_TYPE = 3
COST = 4

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def build(record: Record) -> Event:
    """The :class:`Event` a record stands for, its details redacted."""
    (
        event_id,
        time_ns,
        task_id,
        event_type,
        cost,
        confidence,
        source,
        version,
        service,
        provider,
        model,
        tin,
        tout,
        cached,
        written,
        reasoning,
        latency_ms,
        error_type,
        customer_id,
        project_id,
        task_type,
        details,
        redactor,
    ) = record
    redact: Callable[[dict[str, Any]], dict[str, Any]] | None = redactor
    if redact is not None and details:
        details = redact(details)
    cost_usd: Decimal = cost
    return Event(
        uuid_of(event_id),
        task_id,
        event_type,
        cost_usd,
        confidence,
        source,
        _EPOCH + timedelta(microseconds=time_ns // 1000),
        version,
        service,
        provider,
        model,
        tin,
        tout,
        cached,
        written,
        reasoning,
        latency_ms,
        False,
        None,
        None,
        error_type,
        customer_id,
        project_id,
        task_type,
        details,
    )
