"""Events that dexcost's own instrumentation records: values now, an :class:`Event` never.

A provider patch or the HTTP capture never hands its event back to the caller, so the
recording thread does not build one. It prices the call and rolls it up into the task
at once (a task's totals are current when the call returns), takes the event's id and
time from one clock reading, redacts the details, and queues the event's values as one
plain tuple: a :data:`Record`. The store's writer turns records into rows directly, in
batches. On the calling thread, right after a call has filled the CPU caches with the
SDK's own code and data, building the Event (a UUID object, a datetime and a 25-field
dataclass) cost more than pricing the call.

A record holds the :class:`Event` fields in their declared order, except that
``event_id`` is the id's 128-bit integer and ``occurred_at`` a ``time.time_ns()`` value.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ._ids import uuid_of
from ._models import Event

__all__ = ["Record", "build"]

#: The values of one event, in :class:`Event` field order (see the module docstring).
Record = tuple[Any, ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def build(record: Record) -> Event:
    """The :class:`Event` a record stands for (for the writer's lenient path)."""
    event_id, task_id, event_type, cost, confidence, source, time_ns, *rest = record
    return Event(
        uuid_of(event_id),
        task_id,
        event_type,
        cost,
        confidence,
        source,
        _EPOCH + timedelta(microseconds=time_ns // 1000),
        *rest,
    )
