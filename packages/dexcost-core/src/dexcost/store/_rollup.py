"""Adding a batch's new events to ``event_days``, summed per roll-up key.

Schema version 3 dropped the per-row insert trigger; the writer calls :func:`add_new`
in the batch's transaction instead. The sums are exactly those the trigger made
(``_schema_v2._apply('NEW', '+')``): the day is the first ten characters of
``occurred_at``, a missing text is ``''``, ``cost_pico`` is split into millions
(``cost_hi``, truncated toward zero like SQL) and the rest (``cost_lo``), ``big``
counts a NULL ``cost_pico``. A batch holding a value SQLite converts on storing (an
integer given as text, a float, a non-text id) is added from its stored rows in SQL
instead, so the roll-up is the trigger's in every case.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from ._multirow import write_rows
from ._schema_v3 import ADD_DELTAS, ADD_STORED_EVENT
from ._values import NULL, Row

_MILLION = 1_000_000
# At most 999 bound parameters in SQLite builds before 3.32.
_CHUNK = 500


def existing_ids(conn: sqlite3.Connection, rows: Sequence[Row]) -> set[Any]:
    """The ``event_id`` values of ``rows`` that are already stored."""
    found: set[Any] = set()
    for start in range(0, len(rows), _CHUNK):
        ids = [r[0] for r in rows[start : start + _CHUNK]]
        marks = ", ".join("?" * len(ids))
        sql = f"SELECT event_id FROM events WHERE event_id IN ({marks})"
        found.update(r[0] for r in conn.execute(sql, ids))
    return found


def split_new(rows: Sequence[Row], stored: set[Any]) -> tuple[list[Row], list[Row]]:
    """``(inserts, upserts)``: the first row of each id not in ``stored``; the rest, in order.

    Written in that order, every insert adds a new event and every upsert replaces a
    stored one (its update trigger moves it in the roll-up).
    """
    seen = set(stored)
    inserts: list[Row] = []
    upserts: list[Row] = []
    for row in rows:
        key = row[0]
        if key in seen:
            upserts.append(row)
        else:
            seen.add(key)
            inserts.append(row)
    return inserts, upserts


class _Unusual(Exception):
    """A value whose stored form SQLite decides; the batch is added in SQL instead."""


def add_new(conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """Add ``rows``, events just inserted (distinct ids), to ``event_days``."""
    if not rows:
        return
    try:
        deltas = _deltas(rows)
    except (_Unusual, TypeError):
        conn.executemany(ADD_STORED_EVENT, [(r[0],) for r in rows])
        return
    write_rows(conn, ADD_DELTAS, deltas)


# customer_id, task_type, event_type, provider, model, service_name, is_retry,
# retry_reason, cost_confidence: the roll-up key after the day.
_ATTRIBUTION = itemgetter(22, 24, 2, 10, 11, 9, 18, 19, 5)


def _deltas(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """One ``ADD_DELTAS`` row per roll-up key of ``rows``.

    Raises :class:`_Unusual` or :class:`TypeError` when a value is not a plain
    integer, text or NULL (the hot loop lets Python's ``+`` do the type check).
    """
    sums: dict[tuple[Any, ...], list[Any]] = {}
    get = sums.get
    attribution = _ATTRIBUTION
    null, million = NULL, _MILLION
    for r in rows:
        pico, a, b, c, d = r[4], r[12], r[13], r[14], r[15]
        if type(pico) is int:
            big = 0
            # SQL's integer division truncates toward zero.
            hi = pico // million if pico >= 0 else -(-pico // million)
        elif pico is null or pico is None:
            hi = pico = 0
            big = 1
        else:
            raise _Unusual
        if a is null:
            a = 0
        if b is null:
            b = 0
        if c is null:
            c = 0
        if d is null:
            d = 0
        key = (r[8][:10], attribution(r))
        acc = get(key)
        if acc is None:
            sums[key] = [1, hi, pico, big, a, b, c, d]
        else:
            acc[0] += 1
            acc[1] += hi
            acc[2] += pico
            acc[3] += big
            acc[4] += a
            acc[5] += b
            acc[6] += c
            acc[7] += d
    deltas = []
    for (day, attrs), (n, hi, pico, big, a, b, c, d) in sums.items():
        if not all(type(v) is int for v in (a, b, c, d)):
            raise _Unusual  # a float or bool was summed: SQLite may store it otherwise
        # Each event's cost_lo is its pico - 1000000 * its cost_hi; so are their sums.
        deltas.append((*_key(day, attrs), n, hi, pico - million * hi, big, a, b, c, d))
    return deltas


def _key(day: Any, attrs: tuple[Any, ...]) -> tuple[Any, ...]:
    """The roll-up key as the trigger computed it from the stored row."""
    customer, task_type, event_type, provider, model, service, retry, reason, conf = attrs
    if type(day) is not str or type(retry) is not int:
        raise _Unusual
    return (
        day,
        _text(customer),
        _text(task_type),
        _text(event_type),
        _text(provider),
        _text(model),
        _text(service),
        1 if retry != 0 else 0,
        _text(reason),
        1 if _text(conf) == "unknown" else 0,
    )


def _text(value: object) -> str:
    """``COALESCE(value, '')`` of a value bound to a TEXT column."""
    if type(value) is str:
        return value
    if value is None or value is NULL:
        return ""
    if isinstance(value, str):
        return str.__str__(value)  # a str enum is bound as its text
    raise _Unusual
