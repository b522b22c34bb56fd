"""The module-level API: ``dexcost.init()`` and the functions that use its global tracker."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import uuid
from typing import Any

from ._config import DexcostConfig
from ._context import _current_task
from ._models import Event
from ._money import ZERO, MoneyInput
from ._session import SessionManager
from ._task_scope import TaskScope
from ._tracked_task import TrackedTask
from ._tracker import CostTracker

logger = logging.getLogger("dexcost")

_lock = threading.Lock()
_tracker: CostTracker | None = None
_config: DexcostConfig | None = None
_atexit_registered = False


def init(
    api_key: str | None = None,
    storage: str | None = None,
    buffer_path: str | None = None,
    batch_size: int = 100,
    flush_interval: float = 5.0,
    auto_instrument: list[str] | None = None,
    redact_fields: list[str] | None = None,
    hash_customer_id: bool = False,
    track_http: bool = True,
    service_catalog_url: str | None = None,
    environment: str | None = None,
    enable_retry_heuristics: bool = False,
    retry_heuristic_window: float | None = None,
    retry_heuristic_threshold: float | None = None,
) -> DexcostConfig:
    """Initialise the SDK once at start-up and return its configuration.

    Without an API key everything stays local: costs go to the SQLite store at
    ``buffer_path`` (default: ``DEXCOST_BUFFER_PATH`` or the user data directory).
    Calling it again closes the previous tracker (flushing it) and starts afresh.
    """
    global _tracker, _config, _atexit_registered
    config = DexcostConfig(
        api_key=api_key if api_key is not None else os.environ.get("DEXCOST_API_KEY") or None,
        storage=storage,
        batch_size=batch_size,
        flush_interval_seconds=flush_interval,
        buffer_path=buffer_path,
        redact_fields=list(redact_fields or []),
        hash_customer_id=hash_customer_id,
        environment=environment
        if environment is not None
        else os.environ.get("DEXCOST_ENV") or None,
        enable_retry_heuristics=enable_retry_heuristics,
        retry_heuristic_window=retry_heuristic_window,
        retry_heuristic_threshold=retry_heuristic_threshold,
    )
    with _lock:
        previous = _tracker
        _tracker = None
        if previous is not None:
            logger.info("dexcost.init() called again: closing the previous tracker")
            _shutdown(previous)
        _config = config
        _tracker = CostTracker(config, auto_instrument=auto_instrument)
        if not _atexit_registered:
            atexit.register(close)
            _atexit_registered = True
    if service_catalog_url:
        from .catalog import refresh_default_catalog

        refresh_default_catalog(service_catalog_url)  # keeps the bundled one on failure
    if track_http:
        from .adapters.http import track_http as start_http_capture

        start_http_capture()  # follows the global tracker; libraries patched on import
    return config


def get_config() -> DexcostConfig | None:
    """The configuration from the last :func:`init`, or None."""
    return _config


def get_tracker() -> CostTracker | None:
    """The global tracker created by :func:`init`, or None before it."""
    return _tracker


def _require() -> CostTracker:
    tracker = _tracker
    if tracker is None:
        raise RuntimeError(
            "dexcost is not initialised: call dexcost.init() once at start-up "
            "(no API key is needed to record locally)"
        )
    return tracker


def _active() -> TrackedTask:
    _require()
    task = _current_task.get()
    live = task._live if task is not None else None
    if live is None or live.ended:
        raise RuntimeError(
            "no active dexcost task: wrap the work in `with dexcost.task('task_type'):` "
            "(or `async with`), or activate one with dexcost.task_context(task)"
        )
    return live


def task(task_type: str = "", metadata: dict[str, Any] | None = None) -> TaskScope:
    """Group the costs of a block into one business task (``with`` or ``async with``).

    Customer and project come from :func:`set_context`. Nested tasks get the enclosing
    task as parent and their costs roll up into it.
    """
    return _require().task(task_type, metadata)


def record_cost(
    service: str,
    cost_usd: MoneyInput,
    *,
    event_type: str = "external_cost",
    cost_confidence: str = "exact",
    pricing_source: str = "manual",
    pricing_version: str | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    """Record a non-LLM cost against the active task (RuntimeError when there is none)."""
    return _active().record_cost(
        service,
        cost_usd,
        event_type=event_type,
        cost_confidence=cost_confidence,
        pricing_source=pricing_source,
        pricing_version=pricing_version,
        details=details,
    )


def record_usage(
    service: str, units: int | float = 1, *, details: dict[str, Any] | None = None
) -> Event:
    """Record rate-registry usage against the active task."""
    return _active().record_usage(service, units, details=details)


def record_llm_call(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: MoneyInput | None = None,
    **kwargs: Any,
) -> Event:
    """Record an LLM call in the active task, or in the agent's session task outside one."""
    return _require().record_llm_call(
        provider, model, input_tokens, output_tokens, cost_usd, **kwargs
    )


def mark_retry(
    reason: str, *, cost_usd: MoneyInput = ZERO, retry_of: uuid.UUID | None = None
) -> Event:
    """Flag a retry in the active task."""
    return _active().mark_retry(reason, cost_usd=cost_usd, retry_of=retry_of)


def mark_not_retry(event_id: uuid.UUID | None = None) -> Event | None:
    """Un-flag a false-positive retry in the active task."""
    return _active().mark_not_retry(event_id)


def link_trace(provider: str, trace_id: str) -> None:
    """Link an external trace to the active task."""
    _active().link_trace(provider, trace_id)


def get_trace_links() -> list[dict[str, str]]:
    """The traces linked to the active task."""
    return _active().get_trace_links()


def get_session_manager() -> SessionManager:
    """The global tracker's :class:`SessionManager`."""
    return _require().sessions


def flush() -> None:
    """Write everything recorded so far (and push it when syncing). No-op before init()."""
    tracker = _tracker
    if tracker is not None:
        tracker.flush()


def close() -> None:
    """Flush and shut the global tracker down. Safe to call before init() or twice."""
    global _tracker
    with _lock:
        tracker = _tracker
        _tracker = None
    if tracker is not None:
        _shutdown(tracker)


def _shutdown(tracker: CostTracker) -> None:
    http = sys.modules.get("dexcost.adapters.http")  # imported only if capture was started
    if http is not None and http.is_tracking_http():
        http.untrack_http()
    tracker.close()
