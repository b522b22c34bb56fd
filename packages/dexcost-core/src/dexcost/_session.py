"""Session tasks: a home for costs recorded outside any explicit task.

An LLM call made with no task open lands in a session task keyed by the attribution in
context (agent, customer, project). Its ``task_type`` is the agent name from
``set_context(agent=...)``, or ``"session"``. A session ends after ``idle_timeout``
seconds without a call (the next call opens a new one) and at ``close()``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ._context import _context

if TYPE_CHECKING:
    from ._tracked_task import TrackedTask
    from ._tracker import CostTracker

DEFAULT_SESSION_TYPE = "session"
SESSION_METADATA_KEY = "_session"
_Key = tuple[str | None, str | None, str | None]


class _Slot:
    __slots__ = ("last", "task")

    def __init__(self, task: TrackedTask, last: float) -> None:
        self.task = task
        self.last = last


class SessionManager:
    """Creates, reuses and ends the session tasks of one :class:`CostTracker`."""

    def __init__(self, tracker: CostTracker, idle_timeout: float = 300.0) -> None:
        self._tracker = tracker
        self.idle_timeout = idle_timeout
        self._sessions: dict[_Key, _Slot] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    @property
    def active(self) -> list[TrackedTask]:
        """The open session tasks."""
        with self._lock:
            return [slot.task for slot in self._sessions.values()]

    def current(self) -> TrackedTask:
        """The session task for the attribution in context, opened if needed."""
        ctx = _context.get()
        key: _Key = (ctx.agent, ctx.customer_id, ctx.project_id) if ctx else (None, None, None)
        now = time.monotonic()
        expired: TrackedTask | None = None
        with self._lock:
            slot = self._sessions.get(key)
            if slot is not None:
                if now - slot.last <= self.idle_timeout and not slot.task.ended:
                    slot.last = now
                    return slot.task
                expired = slot.task
            session = self._tracker._open_task(
                task_type=key[0] or DEFAULT_SESSION_TYPE,
                metadata={SESSION_METADATA_KEY: True},
                customer_id=key[1],
                project_id=key[2],
                parent=None,
            )
            self._sessions[key] = _Slot(session, now)
            self._ensure_reaper()
        if expired is not None:
            self._finish(expired)
        return session

    def end_idle(self, now: float | None = None) -> int:
        """End the sessions idle for longer than ``idle_timeout``; return how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [k for k, s in self._sessions.items() if now - s.last > self.idle_timeout]
            ended = [self._sessions.pop(k).task for k in stale]
        for session in ended:
            self._finish(session)
        return len(ended)

    def end_all(self) -> None:
        """End every open session (at ``close()``)."""
        self._stop.set()
        with self._lock:
            sessions = [slot.task for slot in self._sessions.values()]
            self._sessions.clear()
        for session in sessions:
            self._finish(session)

    def _finish(self, session: TrackedTask) -> None:
        if not session.ended:
            self._tracker._end_task(session, "success", None)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._stop.clear()
            self._reaper = threading.Thread(target=self._reap, name="dexcost-sessions", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        interval = min(self.idle_timeout / 2, 30.0)
        while not self._stop.wait(interval):
            self.end_idle()
            with self._lock:
                if not self._sessions:
                    self._reaper = None
                    return
