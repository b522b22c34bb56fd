"""``instrument()``: one dexcost handler on every LangChain run, with no ``callbacks=``.

LangChain's public configure hook (``register_configure_hook``) adds the handler that a
registered variable holds to every callback manager it builds. The variable must hold
one handler for every thread and task, and be emptied again by ``uninstrument()``, so
it is a tiny stand-in with the one method LangChain reads (``get``) rather than a
``ContextVar``, whose value cannot be changed for all contexts at once. It is
registered once per process; the list LangChain keeps never shrinks.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, cast

from langchain_core.tracers.context import register_configure_hook

from dexcost.integrations import NESTED_TASK_KINDS

from ._handler import DexcostCallbackHandler

if TYPE_CHECKING:
    from dexcost import CostTracker

__all__ = ["instrument", "instrumented_handler", "uninstrument"]


class _Slot:
    """What LangChain's configure hook reads: the handler to attach, or None."""

    __slots__ = ("handler",)

    def __init__(self) -> None:
        self.handler: DexcostCallbackHandler | None = None

    def get(self, default: Any = None) -> DexcostCallbackHandler | None:
        return self.handler if self.handler is not None else default


_slot = _Slot()
_lock = threading.Lock()
_registered = False


def instrument(
    tracker: CostTracker | None = None,
    *,
    nested_tasks: Collection[str] = NESTED_TASK_KINDS,
    max_open_runs: int = 10_000,
    run_timeout: float | None = 3600.0,
) -> DexcostCallbackHandler:
    """Attach a :class:`DexcostCallbackHandler` to every LangChain run in the process.

    Takes the handler's arguments and returns the handler. Calling it again replaces
    the handler; :func:`uninstrument` removes it. A run that also gets a dexcost
    handler through ``callbacks=`` is followed once, by the first handler attached.
    """
    global _registered
    handler = DexcostCallbackHandler(
        tracker,
        nested_tasks=nested_tasks,
        max_open_runs=max_open_runs,
        run_timeout=run_timeout,
    )
    with _lock:
        if not _registered:
            register_configure_hook(cast(Any, _slot), True)
            _registered = True
        _slot.handler = handler
    return handler


def uninstrument() -> None:
    """Stop attaching the handler to new runs (runs already started keep it)."""
    with _lock:
        _slot.handler = None


def instrumented_handler() -> DexcostCallbackHandler | None:
    """The handler :func:`instrument` attaches to every run, or None."""
    return _slot.handler
