"""Context propagation: attribution (:class:`DexcostContext`) and the current task.

Both live in ``contextvars``: each thread starts empty, each asyncio task starts with a
copy of its creator's values, so attribution never leaks between concurrent requests.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._models import Task


@dataclass
class DexcostContext:
    """Attribution context stored by :func:`set_context`."""

    customer_id: str | None = None
    project_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    agent: str | None = None


_context: contextvars.ContextVar[DexcostContext | None] = contextvars.ContextVar(
    "dexcost_context", default=None
)
_current_task: contextvars.ContextVar[Task | None] = contextvars.ContextVar(
    "dexcost_current_task", default=None
)


def set_context(
    customer_id: str | None = None,
    project_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    agent: str | None = None,
) -> None:
    """Set the attribution for tasks and LLM calls that follow in this thread or async task.

    The call replaces the whole context (a field left out is cleared); use
    :func:`clear_context` to remove it.
    """
    for name, value in (("customer_id", customer_id), ("project_id", project_id)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if agent is not None and not isinstance(agent, str):
        raise TypeError(f"agent must be a str, not {type(agent).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    _context.set(DexcostContext(customer_id, project_id, dict(metadata or {}), agent))


def get_context() -> DexcostContext | None:
    """Return the current :class:`DexcostContext`, or None when none was set."""
    return _context.get()


def clear_context() -> None:
    """Remove the attribution context of this thread or async task."""
    _context.set(None)


def get_current_task() -> Task | None:
    """Return the :class:`Task` active in this context, or None."""
    return _current_task.get()


def set_current_task(task: Task | None) -> contextvars.Token[Task | None]:
    """Make ``task`` the active one; restore later with ``ContextVar.reset(token)``."""
    if task is not None and not isinstance(task, Task):
        raise TypeError(f"set_current_task() takes a Task or None, not {type(task).__name__}")
    return _current_task.set(task)


def reset_current_task(token: contextvars.Token[Task | None]) -> None:
    """Restore the task that was active before :func:`set_current_task`."""
    _current_task.reset(token)


@contextmanager
def task_context(task: Task) -> Generator[None, None, None]:
    """Make ``task`` the active task for the duration of the block."""
    token = set_current_task(task)
    try:
        yield
    finally:
        _current_task.reset(token)


@asynccontextmanager
async def async_task_context(task: Task) -> AsyncGenerator[None, None]:
    """Async form of :func:`task_context`."""
    token = set_current_task(task)
    try:
        yield
    finally:
        _current_task.reset(token)
