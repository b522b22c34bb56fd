"""dexcost for LangChain and LangGraph: runs become nested cost tasks.

``callbacks=[DexcostCallbackHandler()]`` on a run, or :func:`instrument` once for every
run in the process. Chains, graphs and agents become tasks; nested chains, graph nodes,
tools and retrievers become child tasks; LLM calls are priced from LangChain's usage
unless a dexcost provider patch already records them.
"""

from __future__ import annotations

from ._handler import DexcostCallbackHandler
from ._inject import instrument, instrumented_handler, uninstrument

__version__ = "0.1.0"

__all__ = [
    "DexcostCallbackHandler",
    "__version__",
    "instrument",
    "instrumented_handler",
    "uninstrument",
]
