"""The live handle of an open task: :class:`TrackedTask` and its recording methods."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
import warnings
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _validate as check
from ._deferred import held_bodies
from ._ids import id_at, uuid7
from ._models import Event, Task
from ._money import ZERO, MoneyInput, to_money
from ._retry import model_key
from .pricing import PricingEngine
from .store._store import take_snapshot

if TYPE_CHECKING:
    from ._tracker import CostTracker
    from .catalog import PricedService
    from .pricing._engine import _Snapshot

logger = logging.getLogger("dexcost")
_COST_EVENT_TYPES = ("external_cost", "compute_cost")
_END_STATUSES = ("success", "failed")
_utc = timezone.utc
_time_ns = time.time_ns


def _check_cost_event_type(event_type: str) -> None:
    if event_type not in _COST_EVENT_TYPES:
        raise ValueError(
            f"event_type must be 'external_cost' or 'compute_cost', got {event_type!r}; "
            "record LLM calls with record_llm_call() and retries with mark_retry()"
        )


class TrackedTask:
    """An open task: record costs into it, then :meth:`end` it exactly once.

    Created by ``dexcost.task()``, ``CostTracker.task()`` or ``CostTracker.start_task()``.
    """

    __slots__ = ("__weakref__", "_ended", "_failures", "_parent", "_retries", "_tracker", "task")

    def __init__(self, tracker: CostTracker, task: Task, parent: TrackedTask | None) -> None:
        self.task = task
        self._tracker = tracker
        self._parent = parent
        self._ended = False
        # Last unconsumed failed call per model: (event_id, error_type, monotonic time).
        self._failures: dict[str, tuple[uuid.UUID, str, float]] = {}
        # Events flagged as retries, oldest first, for mark_not_retry().
        self._retries: list[Event] = []
        task._live = self

    def __repr__(self) -> str:
        t = self.task
        return f"<TrackedTask {t.task_type!r} {t.task_id} {t.status} ${t.total_cost_usd}>"

    def __del__(self) -> None:
        if not getattr(self, "_ended", True):
            # Keep what it recorded: the row is rewritten with its final totals.
            with contextlib.suppress(Exception):  # nothing may escape a finaliser
                snapshot = take_snapshot(self.task)  # never waits: it may run anywhere
                if snapshot is not None:
                    self._tracker.store.put_snapshot(snapshot, wait=False)
            warnings.warn(
                f"dexcost task {self.task.task_type!r} ({self.task.task_id}) was never ended: "
                "call end() exactly once (or use `with dexcost.task(...)`); it is stored "
                "as 'pending' with the costs recorded so far",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    @property
    def task_id(self) -> uuid.UUID:
        """The unique id of this task."""
        return self.task.task_id

    @property
    def ended(self) -> bool:
        """True once :meth:`end` has run."""
        return self._ended

    # -- recording -----------------------------------------------------------------------

    def record_cost(
        self,
        service: str,
        cost_usd: MoneyInput,
        *,
        event_type: str = "external_cost",
        cost_confidence: str = "exact",
        pricing_source: str = "manual",
        pricing_version: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        """Record a non-LLM cost (a paid API call, compute time) against this task."""
        _check_cost_event_type(event_type)
        cost = to_money(cost_usd)
        confidence = check.confidence(cost_confidence)
        source = check.pricing_source(pricing_source)
        return self._record_cost(
            check.name(service, "service"),
            cost,
            event_type,
            confidence,
            source,
            pricing_version,
            check.details(details),
        )

    def record_usage(
        self,
        service: str,
        units: int | float = 1,
        *,
        details: dict[str, Any] | None = None,
        event_type: str = "external_cost",
    ) -> Event:
        """Record ``units`` of a service priced from the rate registry (units × rate)."""
        _check_cost_event_type(event_type)
        rates = self._tracker.rates
        rate = rates.get(service)
        if rate is None:
            raise ValueError(
                f"no rate registered for service {service!r}: register one with "
                f"tracker.register_rate({service!r}, per='request', cost_usd='0.005') "
                "or load a rates file with tracker.load_rates(path)"
            )
        if isinstance(units, bool) or not isinstance(units, (int, float)):
            raise TypeError(f"units must be an int or a float, not {type(units).__name__}")
        if not units >= 0 or units == float("inf"):
            raise ValueError(f"units must be a finite, non-negative number, got {units!r}")
        quantity = Decimal(units) if isinstance(units, int) else Decimal(repr(units))
        info = check.details(details)
        info.setdefault("units", str(quantity))
        info.setdefault("per", rate.per)
        return self._emit(
            Event(
                event_id=uuid7(),
                task_id=self.task.task_id,
                event_type=event_type,
                cost_usd=rate.cost_usd * quantity,
                cost_confidence="computed",
                pricing_source="rate_registry",
                pricing_version=rates.pricing_version,
                service_name=service,
                occurred_at=datetime.now(_utc),
                details=info,
            )
        )

    def record_llm_call(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: MoneyInput | None = None,
        *,
        cost_confidence: str | None = None,
        pricing_source: str | None = None,
        cached_tokens: int = 0,
        latency_ms: int | None = None,
        details: dict[str, Any] | None = None,
        error_type: str | None = None,
        cache_creation_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        service_tier: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Event:
        """Record one LLM call; the cost is computed by the PricingEngine when omitted.

        ``input_tokens`` counts all input tokens, including ``cached_tokens`` (billed at
        the cache-read price) and ``cache_creation_tokens`` (billed at the cache-write
        price); ``output_tokens`` includes ``reasoning_tokens``.
        """
        check.name(provider, "provider")
        check.name(model, "model")
        tin = check.tokens(input_tokens, "input_tokens")
        tout = check.tokens(output_tokens, "output_tokens")
        cached = check.tokens(cached_tokens, "cached_tokens")
        written = check.tokens(cache_creation_tokens, "cache_creation_tokens")
        reasoning = check.tokens(reasoning_tokens, "reasoning_tokens")
        if latency_ms is not None:
            latency_ms = check.tokens(latency_ms, "latency_ms")
        written_1h = check.tokens(cache_write_1h_tokens, "cache_write_1h_tokens")
        cost = None if cost_usd is None else to_money(cost_usd)
        info = check.details(details)
        return self._record_llm(
            provider,
            model,
            tin,
            tout,
            cached,
            written,
            reasoning,
            written_1h,
            service_tier,
            latency_ms,
            info,
            error_type,
            cost,
            check.confidence(cost_confidence) if cost_confidence else None,
            check.pricing_source(pricing_source) if pricing_source else None,
            occurred_at,
        )

    def mark_retry(
        self,
        reason: str,
        *,
        cost_usd: MoneyInput = ZERO,
        retry_of: uuid.UUID | None = None,
    ) -> Event:
        """Flag a retry explicitly; its cost counts towards the task's retry cost."""
        check.name(reason, "reason")
        if retry_of is not None and not isinstance(retry_of, uuid.UUID):
            raise TypeError(f"retry_of must be a uuid.UUID, not {type(retry_of).__name__}")
        return self._emit(
            Event(
                event_id=uuid7(),
                task_id=self.task.task_id,
                event_type="retry_marker",
                cost_usd=to_money(cost_usd),
                cost_confidence="exact",
                pricing_source="manual",
                is_retry=True,
                retry_reason=reason,
                retry_of=retry_of,
                occurred_at=datetime.now(_utc),
            )
        )

    def mark_not_retry(self, event_id: uuid.UUID | None = None) -> Event | None:
        """Un-flag a false-positive retry: the latest one, or the event ``event_id``.

        Returns the updated event, or None when no such retry exists in this task.
        """
        return self._tracker._unflag_retry(self, event_id)

    def link_trace(self, provider: str, trace_id: str) -> None:
        """Link a trace from another observability tool (Langfuse, LangSmith, ...)."""
        link = {
            "provider": check.name(provider, "provider"),
            "trace_id": check.name(trace_id, "trace_id"),
        }
        links = self.task.metadata.setdefault("_trace_links", [])
        if link not in links:
            links.append(link)
            if self._ended:
                self._tracker._persist(self.task)

    def get_trace_links(self) -> list[dict[str, str]]:
        """Every linked trace as ``{"provider": ..., "trace_id": ...}``."""
        return [dict(link) for link in self.task.metadata.get("_trace_links", [])]

    def end(self, status: str = "success", *, error_type: str | None = None) -> None:
        """Close the task and persist it. Call exactly once; a second call raises.

        ``error_type`` names what made a failed task fail (e.g. an exception's class name).
        """
        if status not in _END_STATUSES:
            raise ValueError(f"status must be 'success' or 'failed', got {status!r}")
        self._tracker._end_task(self, status, error_type)

    # -- internals -----------------------------------------------------------------------

    def _record_cost(
        self,
        service: str,
        cost: Decimal,
        event_type: str,
        confidence: str,
        source: str,
        version: str | None,
        info: dict[str, Any],
    ) -> Event:
        """:meth:`record_cost` with every value already checked; ``info`` becomes the
        event's details as it is (the caller hands it over)."""
        return self._emit(
            Event(
                uuid7(),
                self.task.task_id,
                event_type,
                cost,
                confidence,
                source,
                datetime.now(_utc),
                version,
                service,
                details=info,
            )
        )

    def _record_priced(
        self,
        service: str,
        amount: Decimal,
        confidence: str,
        source: str,
        version: str | None,
        info: dict[str, Any],
    ) -> None:
        """An external cost dexcost priced from an HTTP response.

        The names come from the catalog; ``amount`` is already checked (``to_money``).
        ``info`` is handed over as the details. No :class:`Event` is built and the
        roll-up is deferred (see ``_deferred``).
        """
        if self._tracker._console or self._ended:  # print it, or raise as record_cost does
            self._record_cost(service, amount, "external_cost", confidence, source, version, info)
            return
        self._defer_external(service, amount, confidence, source, version, info, None, None)

    def _record_priced_later(
        self, priced: PricedService, body: bytes, version: str | None, info: dict[str, Any]
    ) -> None:
        """An external cost whose price is in the HTTP response ``body``: queued as it
        is, priced when settled (see ``_deferred``); a call that then prices to zero with
        some confidence is no event. In dev mode, on an ended task, or for a large body
        that the pending records' budget cannot hold, it is priced now."""
        if self._tracker._console or self._ended or not held_bodies.take(len(body)):
            values = _price_body(priced, body)
            if values is not None:
                self._record_priced(priced.service_name, *values, version, info)
            return
        # Cost, confidence and source come from the body when the record is settled.
        self._defer_external(priced.service_name, None, None, None, version, info, priced, body)

    def _defer_external(
        self,
        service: str,
        cost: Decimal | None,
        confidence: str | None,
        source: str | None,
        version: str | None,
        info: dict[str, Any],
        priced: PricedService | None,
        body: bytes | None,
    ) -> None:
        """Queue a pending ``external_cost`` record (see ``_deferred``): priced already,
        or by ``priced`` (the catalog entry as it was at the call) from ``body``."""
        task = self.task
        now = _time_ns()
        self._tracker._defer(
            [
                id_at(now),
                task.task_id,
                "external_cost",
                cost,
                confidence,
                source,
                now,
                version,
                service,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                False,
                None,
                None,
                None,
                task.customer_id,
                task.project_id,
                task.task_type,
                info,
                self,
                priced,
                body,
                0,
                None,
            ]
        )

    def _record_llm(
        self,
        provider: str,
        model: str,
        tin: int,
        tout: int,
        cached: int,
        written: int,
        reasoning: int,
        written_1h: int,
        service_tier: str | None,
        latency_ms: int | None,
        info: dict[str, Any],
        error_type: str | None,
        cost: Decimal | None,
        confidence: str | None,
        source: str | None,
        occurred_at: datetime | None = None,
    ) -> Event:
        """:meth:`record_llm_call` with every value already checked.

        Names are non-empty strings, counts non-negative ints, ``cost`` a valid amount
        (None: price it), ``confidence`` and ``source`` valid or None (the default for
        how the cost was found). ``info`` becomes the event's details as it is (the
        caller hands it over). dexcost's own instrumentation, which reads these values
        itself, records through here without the public method's checks.
        """
        tracker = self._tracker
        cost, confidence, source, version = _price(
            tracker.pricing,
            None,
            provider,
            model,
            tin,
            tout,
            cached,
            written,
            reasoning,
            written_1h,
            service_tier,
            cost,
            confidence,
            source,
            info,
        )
        event = Event(
            uuid7(),
            self.task.task_id,
            "llm_call",
            cost,
            confidence,
            source,
            occurred_at or datetime.now(_utc),
            version,
            None,
            provider,
            model,
            tin,
            tout,
            cached,
            written,
            reasoning or None,
            latency_ms,
            False,
            None,
            None,
            error_type,
            details=info,
        )
        engine = tracker.retry_engine
        if engine is not None:
            now = time.monotonic()
            key = model_key(model)
            verdict = engine.judge(self._failures.pop(key, None), now)
            if verdict.is_retry:
                event.is_retry = True
                event.retry_reason = verdict.reason
                event.retry_of = verdict.retry_of
                event.details["retry_confidence"] = round(verdict.confidence, 3)
            if error_type is not None:
                self._failures[key] = (event.event_id, error_type, now)
        return self._emit(event)

    def _note_llm(
        self,
        provider: str,
        model: str,
        tin: int,
        tout: int,
        cached: int,
        written: int,
        reasoning: int,
        written_1h: int,
        service_tier: str | None,
        latency_ms: int | None,
        info: dict[str, Any],
        error_type: str | None,
        cost: Decimal | None,
        confidence: str | None,
        source: str | None,
    ) -> None:
        """:meth:`_record_llm` for dexcost's own instrumentation, which never hands the
        event back: its values are queued as they are, and pricing and roll-up are left
        to whoever next needs them (see ``_deferred``). With the retry heuristic on, a
        pricing engine of another class, in dev mode or on an ended task it is
        :meth:`_record_llm` itself."""
        tracker = self._tracker
        pricing = tracker.pricing
        if (
            tracker.retry_engine is not None
            or tracker._console
            or self._ended
            or type(pricing) is not PricingEngine  # a subclass prices on the calling thread
        ):
            self._record_llm(
                provider,
                model,
                tin,
                tout,
                cached,
                written,
                reasoning,
                written_1h,
                service_tier,
                latency_ms,
                info,
                error_type,
                cost,
                confidence,
                source,
            )
            return
        task = self.task
        now = _time_ns()
        tracker._defer(
            [
                id_at(now),
                task.task_id,
                "llm_call",
                cost,
                confidence,
                source,
                now,
                None,
                None,
                provider,
                model,
                tin,
                tout,
                cached,
                written,
                reasoning or None,
                latency_ms,
                False,
                None,
                None,
                error_type,
                task.customer_id,
                task.project_id,
                task.task_type,
                info,
                self,
                pricing,
                pricing._snapshot,  # the prices as they are now, whenever it is priced
                written_1h,
                service_tier,
            ]
        )

    def _emit(self, event: Event) -> Event:
        if self._ended:
            raise RuntimeError(
                f"task {self.task.task_type!r} ({self.task.task_id}) has already ended; "
                "record costs before end(), or open a new task"
            )
        self._tracker._emit(self, event)
        return event


def is_free(amount: Decimal, confidence: str) -> bool:
    """Whether a priced HTTP call is free (zero, and known to be): such a call is no
    event. One that could not be priced (``unknown``) is recorded at zero."""
    return not amount and confidence != "unknown"


def _price_body(priced: PricedService, body: bytes) -> tuple[Decimal, str, str] | None:
    """Cost, confidence and source of an HTTP call priced by ``priced`` (its catalog
    entry as it was at the call) from its response ``body``; None when it is free.
    A failure is logged and prices the call at 0 (``unknown``)."""
    try:
        result = priced.extract_cost(None, body)
        amount = to_money(result.amount)
        confidence, source = result.confidence, result.pricing_source
    except Exception:  # a bug in pricing must not lose the event or the others
        logger.exception(
            "dexcost could not price a %s response; recorded at 0", priced.service_name
        )
        return ZERO, "unknown", "unknown"
    return None if is_free(amount, confidence) else (amount, confidence, source)


def _price(
    pricing: PricingEngine,
    snapshot: _Snapshot | None,
    provider: str,
    model: str,
    tin: int,
    tout: int,
    cached: int,
    written: int,
    reasoning: int,
    written_1h: int,
    service_tier: str | None,
    cost: Decimal | None,
    confidence: str | None,
    source: str | None,
    info: dict[str, Any],
) -> tuple[Decimal, str, str, str | None]:
    """Cost, confidence, source and pricing version of one LLM call.

    A given ``cost`` is kept (``exact``, ``manual`` unless said otherwise); else the
    engine prices the call (with ``snapshot``, its prices when the call was made, or
    those it has now when None), and a given confidence or source still wins. The pricing
    facts the event has no column for, the service tier and the 1-hour share of the
    cache writes, go into ``info`` (its details) unless the caller set them there.
    """
    if service_tier is not None:
        info.setdefault("service_tier", service_tier)
    if written_1h:
        info.setdefault("cache_write_1h_tokens", written_1h)
    if cost is not None:
        return cost, confidence or "exact", source or "manual", None
    if type(pricing) is PricingEngine:  # a subclass's own get_cost is honoured
        cost, priced_confidence, priced_source, version = pricing._price(
            pricing._snapshot if snapshot is None else snapshot,
            model,
            provider,
            tin,
            tout,
            cached,
            written,
            reasoning,
            service_tier,
            written_1h,
        )
        return cost, confidence or priced_confidence, source or priced_source, version
    result = pricing.get_cost(
        model,
        tin,
        tout,
        cached,
        written,
        provider=provider,
        reasoning_tokens=reasoning,
        service_tier=service_tier,
        cache_write_1h_tokens=written_1h,
    )
    return (
        result.cost_usd,
        confidence or result.cost_confidence,
        source or result.pricing_source,
        result.pricing_version,
    )
