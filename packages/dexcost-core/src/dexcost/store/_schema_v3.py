"""Schema version 3: new events reach ``event_days`` from the writer, not a trigger.

The per-row ``event_days_insert`` trigger cost about two thirds of the write
throughput. The writer now adds a batch's new events to the roll-up itself, summed per
key in the batch's transaction (see ``_rollup.py``). Upserts of existing events and
deletes still go through the ``event_days_update`` and ``event_days_delete`` triggers,
and ``task_days`` keeps all its triggers (tasks are few).

Only dexcost's writer may insert into ``events`` from this version on: an older
dexcost refuses the file (its schema is newer), and a row inserted by hand is not
added to the roll-up.
"""

from __future__ import annotations

from ._schema_v2 import ADD_ON_CONFLICT, INTO_EVENT_DAYS, _measures, _values

V3: list[str] = ["DROP TRIGGER event_days_insert"]

#: Adds summed deltas (one row per roll-up key: ``day``, the keys, then the measures).
ADD_DELTAS = f"{INTO_EVENT_DAYS} VALUES ({', '.join('?' * 18)}){ADD_ON_CONFLICT}"

#: Adds the stored row of one event (by ``event_id``), exactly as the trigger did.
ADD_STORED_EVENT = (
    f"{INTO_EVENT_DAYS} SELECT {_values('events')}{_measures('events', '+')}"
    f" FROM events WHERE event_id = ?{ADD_ON_CONFLICT}"
)
