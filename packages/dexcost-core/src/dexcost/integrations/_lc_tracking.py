"""What a LangChain handler does with runs: tasks, context, and the LLM calls it records.

The run tree becomes the task tree. The outermost run becomes a task, or joins the task
the user opened with ``dexcost.task()``. Nested tools and retrievers become child tasks
when they start; nested chains become child tasks once something inside them costs
money or is a task (LangGraph nodes, tagged ``graph:step:N``, as soon as they start),
so prompt templates, output parsers and routing functions stay out of the ledger, and
LCEL's unnamed composition runnables (``RunnableSequence``, ...) never become tasks.

Around each LLM run a :class:`~dexcost._scope.FrameworkCall` marker is active; a
provider patch that bills the call marks it covered, and the listener registered with
:func:`dexcost._scope.on_covered` makes the run's task current where the SDK is called,
so the patch records into the framework's task. At the end of the run, the call is
recorded from LangChain's own usage only when no patch covered it.

In synchronous code the handler also makes each run's task current while it runs (so
``dexcost.record_cost()`` in a tool lands in the tool's task) and puts the previous one
back at its end, by *setting* it (``Token.reset`` fails across contexts). In async code
LangChain fires end callbacks from a copied context, so nothing set in a start callback
could be put back: there the task is made current only inside the SDK call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from dexcost import _guard, _scope
from dexcost._api import get_tracker
from dexcost._context import _current_task

from ._lc_record import ABANDONED, record_call, record_lost
from ._lc_runs import Group, LLMRun, Run, RunRegistry
from ._lc_usage import model_hint

if TYPE_CHECKING:
    from dexcost._tracked_task import TrackedTask
    from dexcost._tracker import CostTracker

__all__ = ["Tracking"]

_log = logging.getLogger("dexcost.integrations.langchain")

HIDDEN_TAG = "langsmith:hidden"  # LangChain's internal plumbing runs
_GRAPH_STEP = "graph:step:"  # the tag LangGraph puts on node runs
_PLUMBING = "Runnable"  # default names of LCEL's composition runnables

# The innermost run followed in this context (for calls made outside LangChain models).
_active_run: ContextVar[Run | None] = ContextVar("dexcost_langchain_run", default=None)
_listener_lock = threading.Lock()
_listening = False
_group_lock = threading.Lock()  # Group.open counters (ends may come from other threads)


class Tracking:
    """The state and logic behind one ``DexcostCallbackHandler``."""

    def __init__(
        self,
        tracker: CostTracker | None,
        nested: frozenset[str],
        max_open_runs: int,
        run_timeout: float | None,
    ) -> None:
        self.explicit_tracker = tracker
        self.nested = nested
        self.runs = RunRegistry(max_open_runs, run_timeout)
        _listen_for_provider_calls()

    def tracker(self) -> CostTracker | None:
        """The tracker given to the handler, else the global one (None before init)."""
        tracker = self.explicit_tracker
        return tracker if tracker is not None else get_tracker()

    # -- chains, tools, retrievers -------------------------------------------------------

    def start(
        self,
        kind: str,
        serialized: Any,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None,
        tags: list[str] | None,
        metadata: Mapping[str, Any] | None,
        name: Any,
    ) -> None:
        """A chain, tool or retriever run started."""
        tracker = self.tracker()
        if tracker is None:
            return
        parent = self.runs.get(parent_run_id)
        run = Run(run_id, kind, _run_name(kind, serialized, name), parent, self)
        evicted = self.runs.add(run)
        if evicted is None:  # another dexcost handler follows this run
            return
        if evicted:
            self.abandon(evicted)
        if metadata:
            run.customer_id = _attribute(metadata, "customer_id")
            run.project_id = _attribute(metadata, "project_id")
        hidden = bool(tags) and HIDDEN_TAG in tags  # type: ignore[operator]
        run.prev_active = _innermost_open_run()
        run.prev_task = _current_task.get()
        if parent is None:
            self._place_top_level(run, hidden)
        elif not hidden and kind in self.nested:
            if kind == "chain" and not _is_graph_node(tags):
                # LCEL's own composition (RunnableSequence, RunnableParallel<...>, ...)
                # is plumbing: its costs belong to the enclosing task.
                run.lazy = not run.name.startswith(_PLUMBING)
            else:
                run.task = self._open(run, self.runs.materialize(parent, self._open))
        _active_run.set(run)
        if run.task is not None and not _in_async() and run.prev_task is not run.task.task:
            _current_task.set(run.task.task)

    def _place_top_level(self, run: Run, hidden: bool) -> None:
        """A run with no parent we follow: a new task, or the user's current one.

        ``batch()`` starts the runs of all its inputs one after the other in the same
        context before running any: a run that finds a childless root of ours current
        is such a sibling and gets a task of its own, restoring what the first found.
        A run started inside one of our runs without LangChain's parent link (a new
        ``config`` passed to a nested call) becomes a child task of it.
        """
        active = run.prev_active
        current = _live_current_task()
        ours = (
            active is not None
            and not active.ended
            and not active.joined
            and active.task is not None
            and current is active.task
        )
        if current is not None and (hidden or not ours):
            run.task, run.joined = current, True
            return
        parent_task = current
        if ours and active is not None and active.parent is None and not active.has_children:
            run.prev_active, run.prev_task, parent_task = active.prev_active, active.prev_task, None
        if not hidden:
            run.task = self._open(run, parent_task)

    def end(self, run_id: uuid.UUID, error: BaseException | None) -> None:
        """A chain, tool or retriever run ended (``error`` when it raised)."""
        run = self.runs.pop(run_id)
        if run is None:
            return
        if _active_run.get() is run:
            _active_run.set(run.prev_active)
        task = run.task
        if task is None:
            return
        if _current_task.get() is task.task:
            _current_task.set(run.prev_task)
        if run.joined or task.ended:
            return
        if error is None or _is_control_flow(error):
            _end_task(task, "success", None)
        else:
            _end_task(task, "failed", type(error).__name__)

    # -- LLM calls ---------------------------------------------------------------------

    def llm_start(
        self,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None,
        metadata: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        """An LLM or chat-model run started: put its task and marker in context."""
        tracker = self.tracker()
        if tracker is None:
            return
        parent = self.runs.get(parent_run_id)
        marker = _scope.current_framework_call()
        group = marker.key if marker is not None else None
        # Runs started back to back before any call was made share the marker.
        shared = (
            isinstance(group, Group)
            and group.owner is self
            and group.open > 0
            and marker is not None
            and not marker.covered
        )
        if not shared:
            marker = _scope.FrameworkCall(Group(self))
        assert marker is not None
        run = LLMRun(run_id, _run_name("llm", None, kwargs.get("name")), parent, self, marker)
        evicted = self.runs.add(run)
        if evicted is None:
            return
        if evicted:
            self.abandon(evicted)
        if shared:
            assert isinstance(group, Group)
            with _group_lock:
                group.open += 1
        else:
            run.prev_marker = _scope.current_framework_call()
            run.activated = True
            marker.activate()
        run.model = model_hint(metadata, kwargs.get("invocation_params"))
        provider = metadata.get("ls_provider") if metadata else None
        run.provider = provider if isinstance(provider, str) and provider else None
        run.task = (
            self.runs.materialize(parent, self._open)
            if parent is not None
            else _live_current_task()
        )
        group = marker.key
        if isinstance(group, Group) and not shared:
            group.task = run.task
        run.prev_task = _current_task.get()
        if run.task is not None and not _in_async() and run.prev_task is not run.task.task:
            _current_task.set(run.task.task)

    def llm_end(self, run_id: uuid.UUID, response: Any, error: BaseException | None) -> None:
        """An LLM run ended: record it unless a provider patch already did."""
        run = self.runs.pop(run_id)
        if not isinstance(run, LLMRun):
            return
        marker = run.marker
        if run.activated and _scope.current_framework_call() is marker:
            _scope._framework_call.set(run.prev_marker)
        if run.task is not None and _current_task.get() is run.task.task:
            _current_task.set(run.prev_task)
        _leave_group(marker.key)
        if not marker.covered:
            record_call(run, self.tracker(), response, error)

    # -- clean-up ----------------------------------------------------------------------

    def abandon(self, runs: list[Run]) -> None:
        """Close runs whose end never arrived: tasks fail as ``abandoned``."""
        for run in runs:
            if isinstance(run, LLMRun):
                _leave_group(run.marker.key)
                if not run.marker.covered:
                    _guard.call("integrations.langchain.abandon", None, record_lost, run)
            elif run.task is not None and not run.joined and not run.task.ended:
                _guard.call(
                    "integrations.langchain.abandon",
                    None,
                    _end_task,
                    run.task,
                    "failed",
                    ABANDONED,
                )
        _log.debug("dexcost: abandoned %d LangChain runs whose end never arrived", len(runs))

    # -- internals ---------------------------------------------------------------------

    def _open(self, run: Run, parent: TrackedTask | None) -> TrackedTask | None:
        tracker = self.tracker()
        if tracker is None:
            return None
        return tracker.start_task(
            run.name,
            customer_id=run.customer_id,
            project_id=run.project_id,
            metadata={"langchain_run_id": str(run.run_id), "langchain_run_type": run.kind},
            parent=parent,
        )


def _end_task(task: TrackedTask, status: str, error_type: str | None) -> None:
    task.end(status, error_type=error_type)


def _innermost_open_run() -> Run | None:
    """The innermost run in context that has not ended (async contexts keep ended ones).

    Skipping ended runs also keeps a long-lived context from chaining every run it
    ever started through ``prev_active``.
    """
    run = _active_run.get()
    while run is not None and run.ended:
        run = run.prev_active
    return run


def _in_async() -> bool:
    """True inside a running event loop, where end callbacks come from copied contexts."""
    return asyncio._get_running_loop() is not None


def _leave_group(group: object) -> None:
    if isinstance(group, Group):
        with _group_lock:
            group.open -= 1


def _live_current_task() -> TrackedTask | None:
    task = _current_task.get()
    live = task._live if task is not None else None
    return live if live is not None and not live.ended else None


def _run_name(kind: str, serialized: Any, name: Any) -> str:
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        value = serialized.get("name")
        if isinstance(value, str) and value:
            return value
        ident = serialized.get("id")
        if isinstance(ident, list) and ident and isinstance(ident[-1], str):
            return ident[-1]
    return kind


def _attribute(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None


def _is_graph_node(tags: list[str] | None) -> bool:
    return bool(tags) and any(tag.startswith(_GRAPH_STEP) for tag in tags or ())


def _is_control_flow(error: BaseException) -> bool:
    """LangGraph's interrupts and commands travel as exceptions; they are not failures."""
    return any(cls.__name__ == "GraphBubbleUp" for cls in type(error).__mro__)


# -- calls made inside a run without a LangChain model (an SDK used in a tool or node) --


def _listen_for_provider_calls() -> None:
    global _listening
    with _listener_lock:
        if not _listening:
            _scope.on_covered(_on_provider_call)
            _listening = True


def _on_provider_call(layer: str) -> None:
    """A billing layer took a call: make the task it belongs to current where it is made.

    Inside an LLM run that is the run's task. Elsewhere (an SDK called directly in a
    tool, a node or a lambda) it is the task of the innermost run still open, opening
    a lazy chain if needed. Runs that already ended are skipped: in async code they can
    stay in a context after their end.
    """
    marker = _scope.current_framework_call()
    group = marker.key if marker is not None else None
    run = _innermost_open_run()
    task: TrackedTask | None
    # The LLM run's marker, unless it is a stale one from before the innermost run.
    if (
        isinstance(group, Group)
        and group.open > 0
        and (run is None or group.started >= run.started)
    ):
        task = group.task
    elif run is not None:
        tracking = run.owner
        task = tracking.runs.materialize(run, tracking._open)
    else:
        return
    if task is not None and not task.ended and _current_task.get() is not task.task:
        _current_task.set(task.task)
