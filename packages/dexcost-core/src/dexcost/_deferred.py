"""Events that dexcost's own instrumentation records: values now, the rest later.

A provider patch or the HTTP capture never hands its event back to the caller, so the
recording thread neither builds an :class:`Event` nor prices the call nor rolls it up.
It takes the event's id and time from one clock reading and queues the event's values,
with what pricing and roll-up need, as one plain list: a *pending* record. On the
calling thread, right after a call has filled the CPU caches with the SDK's own code and
data, pricing (a price lookup and Decimal arithmetic) and the roll-up through the task's
ancestors cost more than everything else dexcost does per call.

A pending record is *settled* (priced, its details redacted, rolled up into its task and
every ancestor) by :meth:`CostTracker._settle`, in recording order, by the first of:

- a read of any task aggregate (``task.total_cost_usd``, ...: see ``_models``), so a
  task's totals are current whenever they are read, on any thread;
- the end of a task, ``flush()``, ``close()``;
- the store's writer, before it writes the batch the record is in (at most about a
  second later; see ``store._store``).

A call is priced with the prices its engine had when it was made (the record keeps the
engine's snapshot). Settling drops the trailing fields, leaving a :data:`Record`: the
:class:`Event` fields in their declared order, except that ``event_id`` is the id's
128-bit integer and ``occurred_at`` a ``time.time_ns()`` value. The store's writer turns
records into rows directly, in batches.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from ._ids import uuid_of
from ._models import Event, Task

__all__ = ["KEPT_FREELY", "PENDING", "BodyHold", "Record", "build", "held_bodies", "settle"]

#: The values of one event, in :class:`Event` field order (see the module docstring).
Record = list[Any]
#: The length of a settled record. A pending one has five more fields: the
#: ``TrackedTask`` it was recorded in, the ``PricingEngine`` (None: the cost is known),
#: the engine's price snapshot, the 1-hour cache-write tokens and the service tier. An
#: HTTP call priced from its response body has its ``PricedService`` and the body in
#: place of the engine and the snapshot; if that prices it to zero with some confidence
#: (a free call) settling sets its event type to None: no event, and not written.
RECORD_LENGTH = 25
PENDING = RECORD_LENGTH + 5

#: A response body up to this size (bytes) that alone sets an HTTP call's price is kept
#: by its pending record unconditionally; larger ones only within :data:`held_bodies`.
KEPT_FREELY = 16 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class BodyHold:
    """The bytes of larger response bodies that pending records keep, within a limit.

    A record keeps its body for about a second at most (until the store's writer
    settles it); the limit bounds what a burst of large answers can hold on to. A body
    that does not fit is priced on the calling thread instead.
    """

    __slots__ = ("_lock", "held", "limit")

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        #: Bytes held now.
        self.held = 0

    def take(self, size: int) -> bool:
        """Hold a body of ``size`` bytes if it fits; whether it did (a body up to
        :data:`KEPT_FREELY` always does, and is not counted)."""
        if size <= KEPT_FREELY:
            return True
        with self._lock:
            if self.held + size > self.limit:
                return False
            self.held += size
            return True

    def give(self, size: int) -> None:
        """Let go of a body of ``size`` bytes that :meth:`take` held."""
        if size <= KEPT_FREELY:
            return
        with self._lock:
            self.held -= size

    def _after_fork_in_child(self) -> None:
        # The lock may have been held by a thread the child does not have. The count
        # stays: the child's copies of the pending records give their bytes back.
        self._lock = threading.Lock()


#: What every tracker's pending records hold of large bodies (32 MiB at most).
held_bodies = BodyHold(32 * 1024 * 1024)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=held_bodies._after_fork_in_child)


def settle(record: Any) -> list[Task]:
    """Settle pending ``record`` and everything its tracker recorded before it; the
    ended tasks whose totals that moved (the store's writer writes them again)."""
    tracker = record[RECORD_LENGTH]._tracker
    tracker._settle()
    tasks: list[Task] = tracker._take_dirty()
    return tasks


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
