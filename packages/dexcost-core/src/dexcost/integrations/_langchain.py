"""``DexcostCallbackHandler``: LangChain runs become nested tasks, LLM calls get costs.

This class needs no LangChain import: it has the methods and flags LangChain calls on a
callback handler. LangChain's model constructors accept only real
``BaseCallbackHandler`` instances, so when langchain-core is installed, creating this
class gives an instance of a subclass that also derives from ``BaseCallbackHandler``
(``dexcost_langchain.DexcostCallbackHandler`` is that subclass, declared statically).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from dexcost import _guard

from ._lc_tracking import Tracking

if TYPE_CHECKING:
    from typing_extensions import Self

    from dexcost._tracker import CostTracker

__all__ = ["NESTED_TASK_KINDS", "DexcostCallbackHandler"]

#: Nested run kinds that can become child tasks (the outermost run always is one).
NESTED_TASK_KINDS: tuple[str, ...] = ("chain", "tool", "retriever")

_bind_lock = threading.Lock()
_bound: dict[type, type] = {}


class DexcostCallbackHandler:
    """A LangChain callback handler that turns runs into dexcost tasks.

    ``callbacks=[DexcostCallbackHandler()]`` records into the global tracker of
    ``dexcost.init()`` (pass a ``CostTracker`` to use another). The outermost run
    becomes a task, or joins the one opened with ``dexcost.task()``; nested runs of the
    kinds in ``nested_tasks`` become child tasks named after the run or tool. LLM calls
    a dexcost provider patch records are left to it; others are recorded from
    LangChain's usage. At most ``max_open_runs`` runs are followed at once, and a run
    whose end never arrives is dropped after ``run_timeout`` seconds.
    """

    raise_error: bool = False
    # Inline, so the task and marker set in a start callback are visible where
    # LangChain then runs the model or tool (sync and async).
    run_inline: bool = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is DexcostCallbackHandler:
            bound = _langchain_subclass(cls)
            if bound is not None:
                instance: Self = object.__new__(bound)
                return instance
        return object.__new__(cls)

    def __init__(
        self,
        tracker: CostTracker | None = None,
        *,
        nested_tasks: Collection[str] = NESTED_TASK_KINDS,
        max_open_runs: int = 10_000,
        run_timeout: float | None = 3600.0,
    ) -> None:
        if isinstance(nested_tasks, str) or not isinstance(nested_tasks, Collection):
            raise TypeError(
                "nested_tasks must be a collection of run kinds, e.g. ['tool'], "
                f"not {type(nested_tasks).__name__}"
            )
        unknown = sorted(set(nested_tasks) - set(NESTED_TASK_KINDS))
        if unknown:
            raise ValueError(
                f"unknown run kinds in nested_tasks: {unknown}; "
                f"choose from {list(NESTED_TASK_KINDS)}"
            )
        if isinstance(max_open_runs, bool) or not isinstance(max_open_runs, int):
            raise TypeError(f"max_open_runs must be an int, not {type(max_open_runs).__name__}")
        if max_open_runs < 1:
            raise ValueError(f"max_open_runs must be at least 1, got {max_open_runs}")
        if run_timeout is not None and not run_timeout > 0:
            raise ValueError(
                f"run_timeout must be a positive number of seconds, got {run_timeout!r}"
            )
        self._tracking = Tracking(tracker, frozenset(nested_tasks), max_open_runs, run_timeout)

    def __repr__(self) -> str:
        kinds = sorted(self._tracking.nested)
        return f"<{type(self).__name__} nested_tasks={kinds} open_runs={self.open_runs}>"

    @property
    def open_runs(self) -> int:
        """How many runs the handler follows right now (bounded by ``max_open_runs``)."""
        return len(self._tracking.runs)

    @property
    def tracker(self) -> CostTracker | None:
        """The tracker this handler records into now (None before ``dexcost.init()``)."""
        return self._tracking.tracker()

    # LangChain skips a handler's events of a kind whose ``ignore_*`` flag is true.
    @property
    def ignore_llm(self) -> bool:
        """False: LLM events are followed."""
        return False

    @property
    def ignore_chat_model(self) -> bool:
        """False: chat-model events are followed."""
        return False

    @property
    def ignore_chain(self) -> bool:
        """False: chain events are followed."""
        return False

    @property
    def ignore_agent(self) -> bool:
        """False: agent and tool events are followed."""
        return False

    @property
    def ignore_retriever(self) -> bool:
        """False: retriever events are followed."""
        return False

    @property
    def ignore_retry(self) -> bool:
        """True: retries show up as failed attempts, not as retry events."""
        return True

    @property
    def ignore_custom_event(self) -> bool:
        """True: custom events carry no cost."""
        return True

    # -- chains --------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain, graph or graph node started: open (or prepare) its task."""
        _guard.call(
            "integrations.langchain.start",
            None,
            self._tracking.start,
            "chain",
            serialized,
            run_id,
            parent_run_id,
            tags,
            metadata,
            kwargs.get("name"),
        )

    def on_chain_end(
        self,
        outputs: Any,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain ended: its task succeeds."""
        _guard.call("integrations.langchain.end", None, self._tracking.end, run_id, None)

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain raised: its task fails with the error's type."""
        _guard.call("integrations.langchain.end", None, self._tracking.end, run_id, error)

    # -- tools ---------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool started: open its task, named after the tool."""
        name = (serialized or {}).get("name") or kwargs.get("name")
        _guard.call(
            "integrations.langchain.start",
            None,
            self._tracking.start,
            "tool",
            serialized,
            run_id,
            parent_run_id,
            tags,
            metadata,
            name,
        )

    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool returned: its task succeeds."""
        _guard.call("integrations.langchain.end", None, self._tracking.end, run_id, None)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool raised: its task fails with the error's type."""
        _guard.call("integrations.langchain.end", None, self._tracking.end, run_id, error)

    # -- retrievers ----------------------------------------------------------------------

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever started: open its task."""
        _guard.call(
            "integrations.langchain.start",
            None,
            self._tracking.start,
            "retriever",
            serialized,
            run_id,
            parent_run_id,
            tags,
            metadata,
            kwargs.get("name"),
        )

    def on_retriever_end(
        self,
        documents: Any,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever returned: its task succeeds."""
        _guard.call("integrations.langchain.end", None, self._tracking.end, run_id, None)

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever raised: its task fails with the error's type."""
        _guard.call("integrations.langchain.end", None, self._tracking.end, run_id, error)

    # -- LLM calls -----------------------------------------------------------------------

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """An LLM call started: note the model and start timing it."""
        _guard.call(
            "integrations.langchain.llm_start",
            None,
            self._tracking.llm_start,
            run_id,
            parent_run_id,
            metadata,
            kwargs,
        )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat-model call started: note the model and start timing it."""
        _guard.call(
            "integrations.langchain.llm_start",
            None,
            self._tracking.llm_start,
            run_id,
            parent_run_id,
            metadata,
            kwargs,
        )

    def on_llm_end(
        self,
        response: Any,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """An LLM call finished: record its tokens and cost unless a provider patch did."""
        _guard.call(
            "integrations.langchain.llm_end", None, self._tracking.llm_end, run_id, response, None
        )

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """An LLM call raised: record it as failed, with its error type and latency."""
        _guard.call(
            "integrations.langchain.llm_end",
            None,
            self._tracking.llm_end,
            run_id,
            kwargs.get("response"),
            error,
        )

    # -- events without cost (present so duck-typed use needs no LangChain base class) ---

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        """Ignored: the tokens of a streamed answer are counted at its end."""

    def on_stream_event(self, event: Any, **kwargs: Any) -> None:
        """Ignored: streamed protocol events are counted at the end of the call."""

    def on_text(self, text: Any, **kwargs: Any) -> None:
        """Ignored."""

    def on_agent_action(self, action: Any, **kwargs: Any) -> None:
        """Ignored: the tool the agent calls is followed as a tool run."""

    def on_agent_finish(self, finish: Any, **kwargs: Any) -> None:
        """Ignored: the agent's chain run ends its task."""


def _langchain_subclass(cls: type) -> type | None:
    """``cls`` combined with LangChain's ``BaseCallbackHandler``, or None without it."""
    bound = _bound.get(cls)
    if bound is not None:
        return bound
    try:
        if importlib.util.find_spec("langchain_core") is None:
            return None
        base = importlib.import_module("langchain_core.callbacks.base").BaseCallbackHandler
    except (ImportError, AttributeError):
        return None
    with _bind_lock:
        bound = _bound.get(cls)
        if bound is None:
            bound = type(
                cls.__name__,
                (cls, base),
                {
                    "__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "__doc__": cls.__doc__,
                },
            )
            _bound[cls] = bound
    return bound
