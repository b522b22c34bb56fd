"""The :class:`CostTracker`: opens tasks, records events, owns pricing, rates and storage."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._config import DexcostConfig
from ._context import _context, _current_task
from ._deferred import RECORD_LENGTH, held_bodies
from ._ids import uuid7
from ._models import Event, Task
from ._money import ZERO, MoneyInput
from ._privacy import Redactor, hash_customer_id
from ._retry import RetryHeuristicEngine
from ._rollup import add_event, add_record, lineage, set_retry_flag
from ._session import SessionManager
from ._task_scope import TaskScope
from ._tracked_task import TrackedTask, _price, _price_body
from .pricing import CostResult, PricingEngine, RateRegistry
from .store import LocalStore, get_store
from .store._store import take_snapshot

if TYPE_CHECKING:
    from decimal import Decimal

    from ._deferred import Record

logger = logging.getLogger("dexcost")
F = TypeVar("F", bound=Callable[..., Any])
_utc = timezone.utc
_trackers: weakref.WeakSet[CostTracker] = weakref.WeakSet()


class CostTracker:
    """Records the costs of tasks: the object behind ``dexcost.init()`` and the module API.

    Create one directly when you need several independent trackers (each with its own
    rates, custom prices and store). ``auto_instrument=None`` patches every installed
    provider SDK not already patched by another tracker; ``[]`` patches none.
    """

    def __init__(
        self,
        config: DexcostConfig | None = None,
        *,
        auto_instrument: list[str] | None = None,
        buffer_path: str | None = None,
        pricing: PricingEngine | None = None,
    ) -> None:
        if config is None:
            from ._api import get_config

            config = get_config() or DexcostConfig()
        if buffer_path is not None:
            config = dataclasses.replace(config, buffer_path=buffer_path)
        self.config = config
        self.pricing = pricing if pricing is not None else PricingEngine()
        self.rates = RateRegistry()
        self.retry_engine: RetryHeuristicEngine | None = (
            RetryHeuristicEngine(config.retry_heuristic_window, config.retry_heuristic_threshold)
            if config.enable_retry_heuristics
            else None
        )
        self.store: LocalStore = get_store(config.buffer_path)
        self.sessions = SessionManager(self, config.session_idle_timeout)
        redactor = Redactor(config.redact_fields)
        self._redactor = redactor if redactor else None  # no per-event __bool__ call
        self._hash_customers = config.hash_customer_id
        self._console = config.is_dev
        self._lock = threading.RLock()
        # Held while task aggregates change: a leaf (nothing that holds it takes another
        # lock or calls the store), so the store's writer may take it to settle records.
        self._settle_lock = threading.RLock()
        self._pending: deque[Record] = deque()  # recorded, not yet settled (_deferred)
        self._defer_one = self._pending.append
        self._settling = False
        # Ended tasks whose totals a late-settled record moved: written again soon.
        self._dirty: dict[uuid.UUID, Task] = {}
        _trackers.add(self)
        self._open: weakref.WeakSet[TrackedTask] = weakref.WeakSet()
        self._instrumented: set[str] = set()
        self._closed = False
        if auto_instrument is None or auto_instrument:
            self._auto_instrument(auto_instrument)

    def __repr__(self) -> str:
        patched = sorted(self._instrumented)
        return f"<CostTracker store={str(self.store.path)!r} instrumented={patched}>"

    # -- tasks ---------------------------------------------------------------------------

    def task(
        self,
        task_type: str = "",
        metadata: dict[str, Any] | None = None,
        *,
        customer_id: str | None = None,
        project_id: str | None = None,
    ) -> TaskScope:
        """A task for a ``with`` or ``async with`` block, nested under the current task.

        ``customer_id``/``project_id`` default to those of ``set_context()``, then to the
        parent task's. A clean exit ends it as ``success``; an exception as ``failed``
        (events kept, the exception propagates).
        """
        return TaskScope(self, task_type, metadata, customer_id, project_id)

    def start_task(
        self,
        task_type: str = "",
        *,
        customer_id: str | None = None,
        project_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        parent: Task | TrackedTask | None = None,
        started_at: datetime | None = None,
    ) -> TrackedTask:
        """Open a task without a ``with`` block (Celery jobs, callbacks); call ``end()`` once.

        It is not made the current task: wrap code in ``dexcost.task_context(t.task)`` for
        automatically captured calls to land in it. ``started_at`` back-dates the start
        (an aware datetime) for work that began before it was known to cost anything.
        """
        if started_at is not None and (
            not isinstance(started_at, datetime) or started_at.tzinfo is None
        ):
            raise TypeError("started_at must be a timezone-aware datetime")
        if isinstance(parent, Task):
            parent_live = parent._live
        elif isinstance(parent, TrackedTask) or parent is None:
            parent_live = parent
        else:
            raise TypeError(f"parent must be a Task or TrackedTask, not {type(parent).__name__}")
        return self._open_task(
            task_type, metadata, customer_id, project_id, parent_live, started_at
        )

    def track_task(
        self,
        task_type: str | Callable[..., Any] | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        customer_id: str | None = None,
        project_id: str | None = None,
    ) -> Any:
        """Decorator running each call of a sync or async function in its own task.

        Use bare (``@tracker.track_task``, task type = the function's name) or with a type
        (``@tracker.track_task("resolve_ticket")``).
        """

        def decorate(func: F) -> F:
            kind = task_type if isinstance(task_type, str) else func.__name__
            if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
                raise TypeError(
                    f"track_task cannot wrap the generator function {func.__qualname__}: its "
                    "body runs after the call returns; open `with dexcost.task(...)` inside it"
                )
            scope = functools.partial(
                self.task, kind, metadata, customer_id=customer_id, project_id=project_id
            )
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def run_async(*args: Any, **kwargs: Any) -> Any:
                    async with scope():
                        return await func(*args, **kwargs)

                return run_async  # type: ignore[return-value]

            @functools.wraps(func)
            def run(*args: Any, **kwargs: Any) -> Any:
                with scope():
                    return func(*args, **kwargs)

            return run  # type: ignore[return-value]

        if callable(task_type):
            return decorate(task_type)
        return decorate

    # -- recording outside a given task ------------------------------------------------

    def current(self) -> TrackedTask:
        """The task costs land in now: the current task, else the agent's session task."""
        task = _current_task.get()
        if task is not None:
            live = task._live
            if live is not None and not live._ended:
                return live
        return self.sessions.current()

    def record_llm_call(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: MoneyInput | None = None,
        **kwargs: Any,
    ) -> Event:
        """Record an LLM call in the current task, or the session task when none is open.

        Takes the arguments of :meth:`TrackedTask.record_llm_call`.
        """
        return self.current().record_llm_call(
            provider, model, input_tokens, output_tokens, cost_usd, **kwargs
        )

    def record_cost(self, service: str, cost_usd: MoneyInput, **kwargs: Any) -> Event:
        """Record a non-LLM cost in the current task, or the session task when none is open."""
        return self.current().record_cost(service, cost_usd, **kwargs)

    def record_usage(self, service: str, units: int | float = 1, **kwargs: Any) -> Event:
        """Record rate-registry usage in the current task, or the session task."""
        return self.current().record_usage(service, units, **kwargs)

    # -- pricing and rates ---------------------------------------------------------------

    def register_rate(self, service: str, per: str, cost_usd: Decimal | str) -> None:
        """Register a per-unit price for ``record_usage(service, units)``."""
        self.rates.register(service, per, cost_usd)

    def load_rates(self, path: str | Path) -> None:
        """Load rates from a YAML file (``rates.<service>.per`` / ``.cost_usd``)."""
        self.rates.load(path)

    def export_rates(self, path: str | Path) -> None:
        """Write the registered rates to a YAML file, sorted by service."""
        self.rates.export(path)

    def get_cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
    ) -> CostResult:
        """Price a call without recording it."""
        return self.pricing.get_cost(
            model, input_tokens, output_tokens, cached_tokens, cache_creation_tokens
        )

    def set_custom_pricing(
        self,
        model: str,
        input_per_1k: Decimal | str | float,
        output_per_1k: Decimal | str | float,
    ) -> None:
        """Price ``model`` with your own per-1k-token prices (they take precedence)."""
        self.pricing.set_custom_pricing(model, input_per_1k, output_per_1k)

    # -- instrumentation -----------------------------------------------------------------

    @property
    def instrumented(self) -> frozenset[str]:
        """Names of the SDKs this tracker has patched."""
        return frozenset(self._instrumented)

    def instrument(self, name: str) -> None:
        """Patch one SDK by name; RuntimeError if it is already instrumented."""
        from .instrument import ALL_SUPPORTED_INSTRUMENTS, get_instrumentor

        if name not in ALL_SUPPORTED_INSTRUMENTS:
            raise ValueError(
                f"unknown instrument {name!r}; choose from {list(ALL_SUPPORTED_INSTRUMENTS)}"
            )
        instrumentor = get_instrumentor(name)
        if name in self._instrumented or instrumentor.is_instrumented:
            raise RuntimeError(
                f"{name!r} is already instrumented; call uninstrument({name!r}) on the tracker "
                "that patched it first"
            )
        instrumentor.instrument(self)
        self._instrumented.add(name)

    def uninstrument(self, name: str) -> None:
        """Remove this tracker's patch of ``name``; does nothing when it has none."""
        if name not in self._instrumented:
            return
        from .instrument import get_instrumentor

        get_instrumentor(name).uninstrument()
        self._instrumented.discard(name)

    def _auto_instrument(self, names: list[str] | None) -> None:
        from .instrument import ALL_SUPPORTED_INSTRUMENTS, get_instrumentor

        explicit = names is not None
        for name in ALL_SUPPORTED_INSTRUMENTS if names is None else names:
            if explicit and name not in ALL_SUPPORTED_INSTRUMENTS:
                raise ValueError(
                    f"unknown instrument {name!r} in auto_instrument; choose from "
                    f"{list(ALL_SUPPORTED_INSTRUMENTS)}"
                )
            instrumentor = get_instrumentor(name)
            if not instrumentor.is_available():
                logger.debug("dexcost: %s is not installed; not instrumented", name)
                continue
            if instrumentor.is_instrumented:
                logger.debug("dexcost: %s is already instrumented by another tracker", name)
                continue
            self.instrument(name)

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Write every recorded event, and the open tasks' current totals, to the store."""
        self._settle()
        self._persist_dirty()
        for tracked in list(self._open):
            self._persist(tracked.task)
        return self.store.flush(timeout)

    def close(self) -> None:
        """End session tasks, persist open tasks as ``pending``, unpatch SDKs and flush."""
        if self._closed:
            return
        self._closed = True
        self.sessions.end_all()
        for name in list(self._instrumented):
            try:
                self.uninstrument(name)
            except Exception:  # one failing SDK must not keep the others patched
                logger.exception("dexcost: uninstrumenting %s failed", name)
        self.pricing.close()
        self.flush()

    # -- internals -----------------------------------------------------------------------

    def _open_task(
        self,
        task_type: str,
        metadata: dict[str, Any] | None,
        customer_id: str | None,
        project_id: str | None,
        parent: TrackedTask | None,
        started_at: datetime | None = None,
    ) -> TrackedTask:
        if not isinstance(task_type, str):
            raise TypeError(f"task_type must be a str, not {type(task_type).__name__}")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        ctx = _context.get()
        if customer_id is None and ctx is not None:
            customer_id = ctx.customer_id
        if customer_id is not None:
            if self._hash_customers:
                customer_id = hash_customer_id(customer_id)
        elif parent is not None:
            customer_id = parent.task.customer_id  # already hashed when hashing is on
        if project_id is None:
            project_id = ctx.project_id if ctx is not None and ctx.project_id else None
            if project_id is None and parent is not None:
                project_id = parent.task.project_id
        merged = {**ctx.metadata, **(metadata or {})} if ctx is not None else dict(metadata or {})
        task = Task(
            task_id=uuid7(),
            task_type=task_type,
            started_at=started_at or datetime.now(_utc),
            customer_id=customer_id,
            project_id=project_id,
            parent_task_id=parent.task.task_id if parent is not None else None,
            metadata=merged if self._redactor is None else self._redactor(merged),
        )
        # Copied before it has a live handle: a new task has nothing pending, so its copy
        # need not settle the records other tasks have pending (see _models._Settled).
        self.store.put_task(task)
        tracked = TrackedTask(self, task, parent)
        self._open.add(tracked)
        return tracked

    def _emit(self, tracked: TrackedTask, event: Event) -> None:
        """The hot path: attribute, roll up, queue. No disk, no network."""
        task = tracked.task
        event.customer_id = task.customer_id
        event.project_id = task.project_id
        event.task_type = task.task_type
        redactor = self._redactor
        if redactor is not None and event.details:
            event.details = redactor(event.details)
        ended_ancestors: list[Task] = []
        with self._lock, self._settle_lock:
            node: TrackedTask | None = tracked
            while node is not None:
                add_event(node.task, event)
                if node._ended:
                    ended_ancestors.append(node.task)
                node = node._parent
            if event.is_retry:
                tracked._retries.append(event)
        self.store.put_event(event)
        # A child that outlives its parent still rolls up; rewrite the ended rows.
        for ancestor in ended_ancestors:
            self._persist(ancestor)
        if self._console:
            from ._console import print_event

            print_event(event)

    def _defer(self, record: Record) -> None:
        """:meth:`_emit` for dexcost's own instrumentation: queue a pending record (see
        ``_deferred``); the store's writer makes its row. Not used in dev mode, which
        prints each event."""
        self._defer_one(record)
        self.store.put_event(record)
        if self._dirty:
            self._persist_dirty()

    def _settle(self) -> None:
        """Price and roll up every pending record, oldest first (see ``_deferred``)."""
        with self._settle_lock:
            pending = self._pending
            if not pending:
                return
            settling, self._settling = self._settling, True
            try:
                while pending:
                    self._settle_one(pending.popleft())
            finally:
                self._settling = settling

    def _settle_one(self, record: Record) -> None:
        tracked, engine, snapshot, written_1h, tier = record[RECORD_LENGTH:]
        if engine is not None and record[2] == "external_cost":  # priced from its body
            held_bodies.give(len(snapshot))
            values = _price_body(engine, snapshot)
            if values is None:  # a free call: no event
                record[2] = None
                del record[RECORD_LENGTH:]
                return
            record[3], record[4], record[5] = values
        elif engine is not None:  # an LLM call, priced with the prices of its moment
            try:
                record[3], record[4], record[5], record[7] = _price(
                    engine,
                    snapshot,
                    record[9],  # provider, model, tokens: input, output, cached, written
                    record[10],
                    record[11],
                    record[12],
                    record[13],
                    record[14],
                    record[15] or 0,  # reasoning
                    written_1h,
                    tier,
                    record[3],  # cost, confidence and source as given (None: priced)
                    record[4],
                    record[5],
                    record[24],  # the details, where the pricing facts go
                )
            except Exception:  # a bug in pricing must not lose the event or the others
                logger.exception("dexcost could not price a %s call; recorded at 0", record[10])
                record[3], record[4], record[5] = ZERO, "unknown", "unknown"
        redactor = self._redactor
        if redactor is not None and record[24]:  # the details come last
            try:
                record[24] = redactor(record[24])
            except Exception:
                logger.exception("dexcost could not redact an event's details; dropped them")
                record[24] = {}
        node: TrackedTask | None = tracked
        while node is not None:
            task = node.task
            add_record(task, record)
            if node._ended:  # a child that outlives its parent still rolls up
                self._dirty[task.task_id] = task
            node = node._parent
        del record[RECORD_LENGTH:]  # last: a record this short is settled

    def _take_dirty(self) -> list[Task]:
        """The ended tasks whose totals late records moved, to be written again."""
        tasks = []
        while self._dirty:
            try:
                tasks.append(self._dirty.popitem()[1])
            except KeyError:  # another thread took the last one
                break
        return tasks

    def _persist_dirty(self) -> None:
        for task in self._take_dirty():
            self._persist(task)

    def _end_task(self, tracked: TrackedTask, status: str, error_type: str | None) -> None:
        task = tracked.task
        with self._lock:
            self._settle()  # its own records, before it is marked ended
            if tracked.ended:
                raise RuntimeError(
                    f"task {task.task_type!r} ({task.task_id}) was already ended; "
                    "end() must be called exactly once"
                )
            tracked._ended = True
            task.status = status
            task.error_type = error_type
            task.ended_at = datetime.now(_utc)
        self._open.discard(tracked)
        self._persist(task)
        self._persist_dirty()
        if self._console:
            from ._console import print_task

            print_task(task)

    def _persist(self, task: Task) -> None:
        # Settled and copied under the settle lock (a consistent copy); queued under the
        # task lock (in order) without waiting for the writer, which may need the settle
        # lock for its batch.
        with self._lock:
            with self._settle_lock:
                self._settle()
                snapshot = take_snapshot(task)
            if snapshot is not None:
                self.store.put_snapshot(snapshot, wait=False)

    def _unflag_retry(self, tracked: TrackedTask, event_id: uuid.UUID | None) -> Event | None:
        with self._lock:
            target = None
            for event in reversed(tracked._retries):
                if event.is_retry and (event_id is None or event.event_id == event_id):
                    target = event
                    break
            if target is None:
                return None
            target.is_retry = False
            target.details["retry_overridden"] = True
            tracked._retries.remove(target)
            for node in lineage(tracked):
                set_retry_flag(node.task, target, False)
        self._rewrite(tracked, target)
        return target

    def _flag_retry(
        self, tracked: TrackedTask, event: Event, reason: str, retry_of: uuid.UUID
    ) -> None:
        """Flag the recorded ``event`` as a retry of ``retry_of`` (the reverse of unflagging).

        Its cost moves into the retry totals of its task and ancestors; an event the
        retry heuristic already flagged keeps its roll-up and gets the exact link.
        """
        with self._lock:
            if event.is_retry and event.retry_of == retry_of:
                return
            event.retry_reason = reason
            event.retry_of = retry_of
            if not event.is_retry:
                event.is_retry = True
                tracked._retries.append(event)
                for node in lineage(tracked):
                    set_retry_flag(node.task, event, True)
        self._rewrite(tracked, event)

    def _rewrite(self, tracked: TrackedTask, event: Event) -> None:
        """Store a changed ``event`` again, and the ended tasks whose totals it moved."""
        self.store.put_event(event)
        for node in lineage(tracked):
            if node.ended:  # open tasks are written at end() and flush()
                self._persist(node.task)


# A fork never copies a settle in progress (a record half rolled up, a lock held by a
# thread the child does not have): the forking thread waits for it, and the child gets
# fresh locks.
_forking: list[CostTracker] = []


def _before_fork() -> None:
    for tracker in list(_trackers):
        tracker._settle_lock.acquire()
        _forking.append(tracker)


def _after_fork_in_parent() -> None:
    while _forking:
        _forking.pop()._settle_lock.release()


def _after_fork_in_child() -> None:
    _forking.clear()
    for tracker in list(_trackers):
        tracker._lock = threading.RLock()
        tracker._settle_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
