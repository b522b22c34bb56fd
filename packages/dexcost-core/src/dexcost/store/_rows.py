"""Converting :class:`Event` and :class:`Task` to row tuples and back.

Conversion is defensive: whatever a record holds, it becomes a row (text, integers,
JSON). Only a record without an id, or whose required fields are ``None``, cannot be
stored; the writer logs it. Column order is ``EVENT_COLUMNS`` / ``TASK_COLUMNS``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from dexcost._deferred import Record
from dexcost._models import AGGREGATES, Event, Task, settled_fields

from ._values import (
    _E12,
    _MUL,
    EMPTY_JSON,
    NULL,
    UTC,
    Row,
    format_ts,
    integer,
    money_pair,
    parse_ts,
    text,
    to_json,
    uuid_text,
)

_INT64 = 1 << 63


def event_rows(events: Sequence[Event | Record]) -> tuple[list[Row], list[Event | Record]]:
    """Convert a batch of events; return the rows and the events that need the slow way.

    An item is an :class:`Event` or a deferred record (its values, with the id as an
    integer and the time in nanoseconds; see ``dexcost._deferred``). This is the
    writer's hot loop, written for speed: ``None`` is bound as ``NULL``, text and
    integer fields are passed through as they are (a value SQLite cannot bind makes the
    writer redo the batch row by row and store that value as text), the task id text is
    computed once per task and a timestamp's text up to the second once per second.
    """
    rows: list[Row] = []
    slow: list[Event | Record] = []
    append = rows.append
    # The events of a batch keep their task_id objects alive, so id() is a safe key.
    task_ids: dict[int, str | None] = {}
    seconds: dict[int, str] = {}
    epoch_seconds: dict[int, str] = {}
    null, utc, mul, e12 = NULL, UTC, _MUL, _E12
    v: Any
    pico: Any
    e: Any
    for e in events:
        try:
            record = type(e) is list
            if record:
                (
                    eid,
                    tid,
                    event_type,
                    cost,
                    cost_confidence,
                    pricing_source,
                    at,
                    pricing_version,
                    service_name,
                    provider,
                    model,
                    input_tokens,
                    output_tokens,
                    cached_tokens,
                    cache_creation_tokens,
                    reasoning_tokens,
                    latency_ms,
                    is_retry,
                    retry_reason,
                    retry_of,
                    error_type,
                    customer_id,
                    project_id,
                    task_type,
                    details,
                ) = e
            else:  # attribute reads: faster than unpacking an attrgetter's tuple
                eid = e.event_id
                tid = e.task_id
                event_type = e.event_type
                cost = e.cost_usd
                cost_confidence = e.cost_confidence
                pricing_source = e.pricing_source
                at = e.occurred_at
                pricing_version = e.pricing_version
                service_name = e.service_name
                provider = e.provider
                model = e.model
                input_tokens = e.input_tokens
                output_tokens = e.output_tokens
                cached_tokens = e.cached_tokens
                cache_creation_tokens = e.cache_creation_tokens
                reasoning_tokens = e.reasoning_tokens
                latency_ms = e.latency_ms
                is_retry = e.is_retry
                retry_reason = e.retry_reason
                retry_of = e.retry_of
                error_type = e.error_type
                customer_id = e.customer_id
                project_id = e.project_id
                task_type = e.task_type
                details = e.details
            task_text: str | None = task_ids.get(id(tid))
            if task_text is None:
                task_text = task_ids[id(tid)] = uuid_text(tid)
                if task_text is None:
                    raise ValueError("task_id is None")
            if record:  # the id's integer; the time in ns since the epoch
                h = eid.to_bytes(16, "big").hex()
                event_text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                second, micro = divmod(at // 1000, 1_000_000)
                prefix = epoch_seconds.get(second)
                if prefix is None:
                    prefix = epoch_seconds[second] = time.strftime(
                        "%Y-%m-%dT%H:%M:%S.", time.gmtime(second)
                    )
            else:
                if type(eid) is uuid.UUID:
                    # str(UUID) is implemented in Python; bytes.hex() is not.
                    h = eid.int.to_bytes(16, "big").hex()
                    event_text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                else:
                    event_text = uuid_text(eid)  # type: ignore[assignment]
                tz = at.tzinfo
                if tz is not None and tz is not utc:
                    at = at.astimezone(utc)
                second = ((at.toordinal() * 24 + at.hour) * 60 + at.minute) * 60 + at.second
                prefix = seconds.get(second)
                if prefix is None:
                    prefix = seconds[second] = "%04d-%02d-%02dT%02d:%02d:%02d." % (  # noqa: UP031
                        at.year,
                        at.month,
                        at.day,
                        at.hour,
                        at.minute,
                        at.second,
                    )
                micro = at.microsecond
            if type(cost) is not Decimal:
                raise TypeError("cost_usd is not a Decimal")
            cost_text = str(cost)
            if "E" in cost_text:
                cost_text = format(cost, "f")
            dot = cost_text.find(".")
            if dot < 0 or len(cost_text) - dot <= 13:
                # At most 12 decimal places: the picodollar amount is exact.
                pico = int(mul(cost, e12))
                if not -_INT64 <= pico < _INT64:
                    pico = null
            else:
                cost_text, pico = money_pair(cost)
                if pico is None:
                    pico = null
            append(
                (
                    event_text,
                    task_text,
                    null if (v := event_type) is None else v,
                    cost_text,
                    pico,
                    null if (v := cost_confidence) is None else v,
                    null if (v := pricing_source) is None else v,
                    null if (v := pricing_version) is None else v,
                    "%s%06dZ" % (prefix, micro),  # noqa: UP031
                    null if (v := service_name) is None else v,
                    null if (v := provider) is None else v,
                    null if (v := model) is None else v,
                    null if (v := input_tokens) is None else v,
                    null if (v := output_tokens) is None else v,
                    null if (v := cached_tokens) is None else v,
                    null if (v := cache_creation_tokens) is None else v,
                    null if (v := reasoning_tokens) is None else v,
                    null if (v := latency_ms) is None else v,
                    1 if is_retry else 0,
                    null if (v := retry_reason) is None else v,
                    null if retry_of is None else uuid_text(retry_of),
                    null if (v := error_type) is None else v,
                    null if (v := customer_id) is None else v,
                    null if (v := project_id) is None else v,
                    null if (v := task_type) is None else v,
                    EMPTY_JSON if not details else to_json(details),
                )
            )
        except Exception:
            slow.append(e)
    return rows, slow


def lenient_event_row(e: Event) -> Row:
    """One event's row where a field that cannot be converted is stored as its text."""
    v = {f.name: getattr(e, f.name, None) for f in fields(Event)}
    cost_text: str | None
    pico: int | None
    try:
        cost_text, pico = money_pair(v["cost_usd"])
    except Exception:
        cost_text, pico = text(v["cost_usd"]), None
    return (
        _lenient(uuid_text, v["event_id"]),
        _lenient(uuid_text, v["task_id"]),
        text(v["event_type"]),
        cost_text,
        pico,
        text(v["cost_confidence"]),
        text(v["pricing_source"]),
        text(v["pricing_version"]),
        _lenient(format_ts, v["occurred_at"]),
        text(v["service_name"]),
        text(v["provider"]),
        text(v["model"]),
        _lenient(integer, v["input_tokens"]),
        _lenient(integer, v["output_tokens"]),
        _lenient(integer, v["cached_tokens"]),
        _lenient(integer, v["cache_creation_tokens"]),
        _lenient(integer, v["reasoning_tokens"]),
        _lenient(integer, v["latency_ms"]),
        _lenient(lambda x: 1 if x else 0, v["is_retry"]),
        text(v["retry_reason"]),
        _lenient(uuid_text, v["retry_of"]),
        text(v["error_type"]),
        text(v["customer_id"]),
        text(v["project_id"]),
        text(v["task_type"]),
        to_json(v["details"]),
    )


def _lenient(convert: Any, value: object) -> Any:
    if value is None:
        return None
    try:
        return convert(value)
    except Exception:
        return text(value)


def event_from_row(row: Mapping[str, Any] | Any) -> Event:
    """Rebuild an :class:`Event` from an ``events`` row (a :class:`sqlite3.Row`)."""
    retry_of = row["retry_of"]
    return Event(
        event_id=uuid.UUID(row["event_id"]),
        task_id=uuid.UUID(row["task_id"]),
        event_type=row["event_type"],
        cost_usd=Decimal(row["cost_usd"]),
        cost_confidence=row["cost_confidence"],
        pricing_source=row["pricing_source"],
        occurred_at=parse_ts(row["occurred_at"]),
        pricing_version=row["pricing_version"],
        service_name=row["service_name"],
        provider=row["provider"],
        model=row["model"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_tokens=row["cached_tokens"],
        cache_creation_tokens=row["cache_creation_tokens"],
        reasoning_tokens=row["reasoning_tokens"],
        latency_ms=row["latency_ms"],
        is_retry=bool(row["is_retry"]),
        retry_reason=row["retry_reason"],
        retry_of=None if retry_of is None else uuid.UUID(retry_of),
        error_type=row["error_type"],
        customer_id=row["customer_id"],
        project_id=row["project_id"],
        task_type=row["task_type"],
        details=json.loads(row["details"]),
    )


# --- tasks -----------------------------------------------------------------------------


#: The Task fields a snapshot copies, in ``TASK_COLUMNS`` order (metadata apart).
TASK_FIELDS = (
    "task_id",
    "task_type",
    "customer_id",
    "project_id",
    "parent_task_id",
    "status",
    "started_at",
    "ended_at",
    *AGGREGATES,
    "error_type",
)
_TASK_GETTER = attrgetter(*TASK_FIELDS)
# The same fields out of a Task's own __dict__, where its aggregates live too (see
# _models._Settled): one C call instead of an attribute read per field.
_TASK_ITEMS = itemgetter(*TASK_FIELDS)


class TaskSnapshot:
    """A task's fields as they were when it was put; converted later by the writer."""

    __slots__ = ("metadata", "taken_at", "values")

    def __init__(self, task: Task) -> None:
        values: tuple[Any, ...] | None = None
        if type(task) is Task:
            try:  # settled once, as reading an aggregate would
                values = _TASK_ITEMS(settled_fields(task))
            except KeyError:  # a Task made without __init__: read it field by field
                values = None
        if values is None:
            try:
                values = _TASK_GETTER(task)
            except AttributeError:
                values = tuple(getattr(task, name, None) for name in TASK_FIELDS)
        self.values: tuple[Any, ...] = values
        metadata = getattr(task, "metadata", None)
        if isinstance(metadata, dict):
            # The tracker keeps adding to the live dict.
            metadata = dict(metadata) if metadata else None
        self.metadata: Any = metadata
        self.taken_at = time.time()


def task_row(snapshot: TaskSnapshot, *, lenient: bool = False) -> Row:
    """The ``tasks`` row of a snapshot (see ``TASK_COLUMNS``).

    With ``lenient``, a field that cannot be converted is stored as its text instead of
    raising.
    """
    if not lenient:
        return _strict_task_row(snapshot)
    row: list[Any] = []
    for convert, value in zip(_TASK_CONVERTERS, snapshot.values, strict=True):
        if convert is money_pair:
            try:
                row.extend(money_pair(value))
            except Exception:
                row.extend((text(value), None))
        elif convert is text:
            row.append(text(value))
        else:
            row.append(_lenient(convert, value))
    row.append(to_json(snapshot.metadata))
    row.append(format_ts(datetime.fromtimestamp(snapshot.taken_at, UTC)))
    return tuple(row)


# How the lenient path converts each of TASK_FIELDS (an amount gives two columns).
_TASK_CONVERTERS: tuple[Callable[[Any], Any], ...] = (
    uuid_text,  # task_id
    text,  # task_type
    text,  # customer_id
    text,  # project_id
    uuid_text,  # parent_task_id
    text,  # status
    format_ts,  # started_at
    format_ts,  # ended_at
    money_pair,  # total
    money_pair,  # llm
    money_pair,  # external
    money_pair,  # compute
    integer,  # input tokens
    integer,  # output tokens
    integer,  # cached tokens
    integer,  # cache-creation tokens
    integer,  # retry_count
    money_pair,  # retry cost
    integer,  # event_count
    text,  # error_type
)


def _strict_task_row(snapshot: TaskSnapshot) -> Row:
    """:func:`task_row` without ``lenient``: each field converted once, or an error."""
    (
        task_id,
        task_type,
        customer_id,
        project_id,
        parent_task_id,
        status,
        started_at,
        ended_at,
        total,
        llm,
        external,
        compute,
        input_tokens,
        output_tokens,
        cached_tokens,
        cache_creation_tokens,
        retry_count,
        retry_cost,
        event_count,
        error_type,
    ) = snapshot.values
    return (
        uuid_text(task_id),
        text(task_type),
        text(customer_id),
        text(project_id),
        uuid_text(parent_task_id),
        text(status),
        format_ts(started_at),
        None if ended_at is None else format_ts(ended_at),
        *money_pair(total),
        *money_pair(llm),
        *money_pair(external),
        *money_pair(compute),
        integer(input_tokens),
        integer(output_tokens),
        integer(cached_tokens),
        integer(cache_creation_tokens),
        integer(retry_count),
        *money_pair(retry_cost),
        integer(event_count),
        text(error_type),
        to_json(snapshot.metadata),
        format_ts(datetime.fromtimestamp(snapshot.taken_at, UTC)),
    )


def task_from_row(row: Mapping[str, Any] | Any) -> Task:
    """Rebuild a :class:`Task` from a ``tasks`` row (a :class:`sqlite3.Row`)."""
    parent = row["parent_task_id"]
    ended = row["ended_at"]
    return Task(
        task_id=uuid.UUID(row["task_id"]),
        task_type=row["task_type"],
        started_at=parse_ts(row["started_at"]),
        customer_id=row["customer_id"],
        project_id=row["project_id"],
        parent_task_id=None if parent is None else uuid.UUID(parent),
        status=row["status"],
        ended_at=None if ended is None else parse_ts(ended),
        total_cost_usd=Decimal(row["total_cost_usd"]),
        llm_cost_usd=Decimal(row["llm_cost_usd"]),
        external_cost_usd=Decimal(row["external_cost_usd"]),
        compute_cost_usd=Decimal(row["compute_cost_usd"]),
        total_input_tokens=row["total_input_tokens"],
        total_output_tokens=row["total_output_tokens"],
        total_cached_tokens=row["total_cached_tokens"],
        total_cache_creation_tokens=row["total_cache_creation_tokens"],
        retry_count=row["retry_count"],
        retry_cost_usd=Decimal(row["retry_cost_usd"]),
        event_count=row["event_count"],
        error_type=row["error_type"],
        metadata=json.loads(row["metadata"]),
    )
