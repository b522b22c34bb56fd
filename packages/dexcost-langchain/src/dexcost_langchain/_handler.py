"""The LangChain callback handler: dexcost's shared implementation on LangChain's base."""

from __future__ import annotations

from langchain_core.callbacks import BaseCallbackHandler

from dexcost.integrations import DexcostCallbackHandler as _SharedHandler

__all__ = ["DexcostCallbackHandler"]


class DexcostCallbackHandler(_SharedHandler, BaseCallbackHandler):
    """Turns LangChain and LangGraph runs into dexcost tasks and prices their LLM calls.

    ``callbacks=[DexcostCallbackHandler()]`` records into the global tracker of
    ``dexcost.init()``; pass a ``CostTracker`` to use another. The outermost run becomes
    a task (or joins the one opened with ``dexcost.task()``); nested chains, graph
    nodes, tools and retrievers become child tasks named after the run or the tool,
    limited to the kinds in ``nested_tasks`` (``"chain"``, ``"tool"``,
    ``"retriever"``). An LLM call that a dexcost provider patch records is left to it;
    any other is recorded from LangChain's usage metadata. At most ``max_open_runs``
    runs are followed at once; a run whose end never arrives is dropped after
    ``run_timeout`` seconds and its task ends as failed (``abandoned``).

    The same implementation backs ``dexcost.integrations.DexcostCallbackHandler``.
    """
