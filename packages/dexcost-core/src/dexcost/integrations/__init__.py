"""Framework integrations that need no framework import.

:class:`DexcostCallbackHandler` is the LangChain callback handler: pass it in
``callbacks=[...]`` and chains, agents, graph nodes, tools and retrievers become nested
tasks, and LLM calls get their costs. ``pip install dexcost-langchain`` adds a
statically typed subclass and ``dexcost_langchain.instrument()``, which attaches it to
every run without ``callbacks=`` anywhere.
"""

from __future__ import annotations

from ._langchain import NESTED_TASK_KINDS, DexcostCallbackHandler

__all__ = ["NESTED_TASK_KINDS", "DexcostCallbackHandler"]
