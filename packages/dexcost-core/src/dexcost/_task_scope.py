"""The ``with``/``async with`` form of a task: opens it, makes it current, ends it."""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._context import _current_task
from ._models import Task

if TYPE_CHECKING:
    from ._tracked_task import TrackedTask
    from ._tracker import CostTracker


class TaskScope:
    """Returned by ``dexcost.task()``: enter it (sync or async) to get a TrackedTask.

    On exit the task ends as ``success``, or as ``failed`` with the exception's type name
    when the block raised (the exception itself propagates unchanged). A task the block
    already ended with ``end()`` is left as it is.
    """

    __slots__ = (
        "_customer_id",
        "_metadata",
        "_project_id",
        "_token",
        "_tracked",
        "_tracker",
        "_type",
    )

    def __init__(
        self,
        tracker: CostTracker,
        task_type: str,
        metadata: dict[str, Any] | None,
        customer_id: str | None,
        project_id: str | None,
    ) -> None:
        self._tracker = tracker
        self._type = task_type
        self._metadata = metadata
        self._customer_id = customer_id
        self._project_id = project_id
        self._tracked: TrackedTask | None = None
        self._token: contextvars.Token[Task | None] | None = None

    def __enter__(self) -> TrackedTask:
        if self._tracked is not None:
            raise RuntimeError("a dexcost task scope can be entered only once; call task() again")
        current = _current_task.get()
        parent = current._live if current is not None else None
        tracked = self._tracker._open_task(
            self._type, self._metadata, self._customer_id, self._project_id, parent
        )
        self._tracked = tracked
        self._token = _current_task.set(tracked.task)
        return tracked

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tracked = self._tracked
        assert tracked is not None
        assert self._token is not None
        try:
            _current_task.reset(self._token)
        except ValueError:
            # Exited in another context than it was entered in (e.g. a generator resumed
            # elsewhere); fall back to restoring the parent explicitly.
            parent = tracked._parent
            _current_task.set(parent.task if parent is not None else None)
        if not tracked.ended:
            if exc_type is None:
                self._tracker._end_task(tracked, "success", None)
            else:
                self._tracker._end_task(tracked, "failed", exc_type.__name__)

    async def __aenter__(self) -> TrackedTask:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
