"""The runs a handler follows: a bounded, locked map that cleans up after lost callbacks.

LangChain reports each run with a start and an end callback, but an end can go missing
(a stream abandoned half-way, a crashed worker). So the map is capped, and a run is
handed back for clean-up when it is older than the timeout, when the cap pushes it out,
or shortly after its root run ended while it was still open. Every run id is owned by
exactly one registry in the process, so two dexcost handlers attached to the same run
(an explicit one and the globally injected one) never both record it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dexcost._models import Task
    from dexcost._scope import FrameworkCall
    from dexcost._tracked_task import TrackedTask

__all__ = ["Group", "LLMRun", "Run", "RunRegistry"]

#: Runs still open this long after their root run ended are abandoned (seconds).
ORPHAN_GRACE = 60.0

_monotonic = time.monotonic
_owners: dict[uuid.UUID, RunRegistry] = {}  # run id -> the registry that follows it
_owners_lock = threading.Lock()


class Run:
    """One chain, tool or retriever run: where it sits and the task it maps to."""

    __slots__ = (
        "customer_id",
        "ended",
        "has_children",
        "joined",
        "kind",
        "lazy",
        "name",
        "open_descendants",
        "owner",
        "parent",
        "prev_active",
        "prev_task",
        "project_id",
        "root",
        "run_id",
        "started",
        "task",
    )

    def __init__(
        self, run_id: uuid.UUID, kind: str, name: str, parent: Run | None, owner: Any
    ) -> None:
        self.run_id = run_id
        self.kind = kind
        self.name = name
        self.parent = parent
        self.root: Run = parent.root if parent is not None else self
        self.has_children = False
        if parent is not None:
            parent.has_children = True
        self.owner = owner  # the handler's tracking state, for the scope listener
        self.started = _monotonic()
        #: The task costs inside this run land in; None while lazy or transparent.
        self.task: TrackedTask | None = None
        self.joined = False  # the task is the user's own (never ended by us)
        self.lazy = False  # a nested chain: becomes a task once something costs
        self.ended = False
        self.customer_id: str | None = None
        self.project_id: str | None = None
        self.prev_task: Task | None = None  # the current task before this run started
        self.prev_active: Run | None = None
        self.open_descendants: set[Run] | None = None  # only on roots


class Group:
    """LLM runs started in one context before any of them ran share one marker.

    ``generate()`` with several prompts starts all runs first and calls the provider
    after; the calls all see the last marker set, so the runs share it (one model,
    so either a provider patch covers all of them or none).
    """

    __slots__ = ("open", "owner", "started", "task")

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.open = 1
        self.started = _monotonic()
        self.task: TrackedTask | None = None  # where the covered calls are recorded


class LLMRun(Run):
    """One LLM or chat-model run, with what is needed to record it at its end."""

    __slots__ = ("activated", "marker", "model", "prev_marker", "provider", "started_ns")

    def __init__(
        self, run_id: uuid.UUID, name: str, parent: Run | None, owner: Any, marker: FrameworkCall
    ) -> None:
        super().__init__(run_id, "llm", name, parent, owner)
        self.marker = marker
        self.prev_marker: FrameworkCall | None = None
        self.activated = False  # this run put the marker in context
        self.model: str | None = None
        self.provider: str | None = None
        self.started_ns = time.perf_counter_ns()


class RunRegistry:
    """The open runs of one handler, oldest first, at most ``max_runs`` of them."""

    def __init__(self, max_runs: int, timeout: float | None) -> None:
        self.max_runs = max_runs
        self.timeout = timeout
        self.grace = ORPHAN_GRACE if timeout is None else min(ORPHAN_GRACE, timeout)
        self._runs: OrderedDict[uuid.UUID, Run] = OrderedDict()
        self._orphans: deque[tuple[float, Run]] = deque()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: uuid.UUID | None) -> Run | None:
        """The open run ``run_id`` followed here, or None."""
        if run_id is None:
            return None
        with self._lock:
            return self._runs.get(run_id)

    def add(self, run: Run) -> list[Run] | None:
        """Follow ``run``; returns the runs to abandon, or None if another registry owns it."""
        with _owners_lock:
            if _owners.setdefault(run.run_id, self) is not self:
                return None
        now = _monotonic()
        with self._lock:
            self._runs[run.run_id] = run
            root = run.root
            if root is not run and not root.ended:
                if root.open_descendants is None:
                    root.open_descendants = set()
                root.open_descendants.add(run)
            evicted: list[Run] = []
            while len(self._runs) > self.max_runs:
                evicted.append(self._runs.popitem(last=False)[1])
            orphans = self._orphans
            while orphans and orphans[0][0] <= now:
                orphan = orphans.popleft()[1]
                if self._runs.get(orphan.run_id) is orphan:
                    del self._runs[orphan.run_id]
                    evicted.append(orphan)
            if self.timeout is not None:
                limit = now - self.timeout
                while self._runs:
                    oldest = next(iter(self._runs.values()))
                    if oldest.started > limit:
                        break
                    evicted.append(self._runs.popitem(last=False)[1])
            for gone in evicted:
                self._detach(gone, now)
        return evicted

    def pop(self, run_id: uuid.UUID) -> Run | None:
        """Stop following ``run_id`` (its end arrived) and return it, or None."""
        with self._lock:
            run = self._runs.pop(run_id, None)
            if run is not None:
                self._detach(run, _monotonic())
        return run

    def materialize(
        self, run: Run | None, open_task: Callable[[Run, TrackedTask | None], TrackedTask | None]
    ) -> TrackedTask | None:
        """The task costs inside ``run`` land in, opening lazy chains on the way down.

        Transparent runs (hidden, or of a kind that is not a task) pass through to their
        parent; a lazy chain still open becomes a task now, under its parent's task.
        """
        with self._lock:
            pending: list[Run] = []
            node = run
            while node is not None and node.task is None:
                if node.lazy and not node.ended:
                    pending.append(node)
                node = node.parent
            base = node.task if node is not None else None
            for lazy in reversed(pending):
                lazy.task = open_task(lazy, base)
                lazy.lazy = False
                if lazy.task is None:
                    break
                base = lazy.task
            return base

    def _detach(self, run: Run, now: float) -> None:
        run.ended = True
        with _owners_lock:
            if _owners.get(run.run_id) is self:
                del _owners[run.run_id]
        root = run.root
        if root is not run:
            if root.open_descendants is not None:
                root.open_descendants.discard(run)
        elif run.open_descendants:
            deadline = now + self.grace
            self._orphans.extend((deadline, child) for child in run.open_descendants)
            run.open_descendants = None
