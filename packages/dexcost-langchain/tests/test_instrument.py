"""``instrument()``: every run is followed with no ``callbacks=`` anywhere."""

from __future__ import annotations

from typing import Any

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers.context import _configure_hooks

import dexcost
import dexcost_langchain
from dexcost_langchain import DexcostCallbackHandler

PROMPT = ChatPromptTemplate.from_messages([("user", "{question}")])


def test_instrument_follows_every_run_until_uninstrument(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    chain = (PROMPT | chat(answer("a", 100, 5), answer("b", 200, 5))).with_config(run_name="reply")

    handler = dexcost_langchain.instrument()
    assert dexcost_langchain.instrumented_handler() is handler
    chain.invoke({"question": "1"})  # no callbacks anywhere
    dexcost_langchain.uninstrument()
    chain.invoke({"question": "2"})

    assert dexcost_langchain.instrumented_handler() is None
    assert ledger.tree() == ["reply"]
    assert [e["input_tokens"] for e in ledger.events()] == [100]


async def test_injection_reaches_thread_pools_and_async_runs(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    chain = (PROMPT | chat(*(answer("x", 10 + i, 1) for i in range(5)))).with_config(
        run_name="reply"
    )
    dexcost_langchain.instrument()

    chain.batch([{"question": "1"}, {"question": "2"}])  # runs on a thread pool
    await chain.abatch([{"question": "3"}, {"question": "4"}])
    await chain.ainvoke({"question": "5"})

    tasks = ledger.tasks()
    assert [t["task_type"] for t in tasks] == ["reply"] * 5
    assert sorted(t["total_input_tokens"] for t in tasks) == [10, 11, 12, 13, 14]


def test_an_explicit_handler_and_the_injected_one_record_once(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    draft = (PROMPT | chat(answer("d", 300, 30))).with_config(run_name="draft")
    chain = draft.with_config(run_name="reply")
    dexcost_langchain.instrument()

    chain.invoke({"question": "?"}, {"callbacks": [DexcostCallbackHandler()]})

    assert ledger.tree() == ["reply"]
    (event,) = ledger.events()
    assert event["input_tokens"] == 300


def test_instrument_again_replaces_the_handler_and_registers_once(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    hooks_before = len(_configure_hooks)
    first = dexcost_langchain.instrument()
    second = dexcost_langchain.instrument(nested_tasks=[])
    dexcost_langchain.uninstrument()
    third = dexcost_langchain.instrument(nested_tasks=[])
    draft = (PROMPT | chat(answer("d", 300, 30))).with_config(run_name="draft")

    (draft | (lambda m: m.content)).with_config(run_name="reply").invoke({"question": "?"})

    assert first is not second is not third
    assert dexcost_langchain.instrumented_handler() is third
    # LangChain's hook list never shrinks: dexcost adds one entry per process, at most.
    assert len(_configure_hooks) - hooks_before <= 1
    assert ledger.tree() == ["reply"]  # nested_tasks=[] of the handler in place
