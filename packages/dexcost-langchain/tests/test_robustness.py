"""Concurrent customers, bounded per-run state, and a handler that never breaks a run."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import dexcost
from dexcost import _guard
from dexcost.integrations import _lc_tracking
from dexcost_langchain import DexcostCallbackHandler

PROMPT = ChatPromptTemplate.from_messages([("user", "{question}")])


@tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    time.sleep(0.01)  # lets the two runs interleave
    return "ok"


def _agent_run(chat: Any, answer: Any, tokens: int) -> Any:
    model = chat(
        answer(
            "", tokens, 10, tool_calls=[{"name": "lookup", "args": {"order_id": "1"}, "id": "c"}]
        ),
        answer("done", tokens + 1, 2),
    )

    def step(question: str) -> str:
        call = model.invoke(question)
        lookup.invoke(call.tool_calls[0]["args"])
        return str(model.invoke("again").content)

    return RunnableLambda(step).with_config(run_name="support_agent")


def test_two_concurrent_runs_for_two_customers(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    handler = DexcostCallbackHandler()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def serve(customer: str, tokens: int) -> None:
        try:
            dexcost.set_context(customer_id=customer)
            agent = _agent_run(chat, answer, tokens)
            start.wait()
            agent.invoke("where is my order?", {"callbacks": [handler]})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=serve, args=("acme", 1000)),
        threading.Thread(target=serve, args=("globex", 2000)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    tasks = ledger.tasks()
    roots = {t["customer_id"]: t for t in tasks if t["parent_task_id"] is None}
    assert set(roots) == {"acme", "globex"}
    for customer, tokens in (("acme", 1000), ("globex", 2000)):
        root = roots[customer]
        assert root["total_input_tokens"] == 2 * tokens + 1
        children = ledger.children(root)
        assert [(c["task_type"], c["customer_id"]) for c in children] == [("lookup", customer)]
    for event in ledger.events():
        assert event["customer_id"] == ("acme" if event["input_tokens"] < 2000 else "globex")
    assert handler.open_runs == 0


async def test_customer_from_run_metadata_in_concurrent_async_runs(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    handler = DexcostCallbackHandler()

    async def serve(customer: str, tokens: int) -> None:
        chain = (PROMPT | chat(answer("a", tokens, 5))).with_config(run_name="reply")
        await chain.ainvoke(
            {"question": "?"},
            {"callbacks": [handler], "metadata": {"customer_id": customer, "project_id": "p1"}},
        )

    await asyncio.gather(serve("acme", 100), serve("globex", 200))

    by_customer = {t["customer_id"]: t for t in ledger.tasks()}
    assert {c: t["total_input_tokens"] for c, t in by_customer.items()} == {
        "acme": 100,
        "globex": 200,
    }
    assert {t["project_id"] for t in by_customer.values()} == {"p1"}


def test_runs_whose_end_never_arrives_are_bounded_and_closed(
    sdk: dexcost.CostTracker, ledger: Any
) -> None:
    handler = DexcostCallbackHandler(max_open_runs=3)

    # As LangChain reports runs: starts whose ends never come (a dropped stream, a crash),
    # each in the context of its own request.
    for i in range(10):
        contextvars.copy_context().run(
            handler.on_chain_start, None, {}, run_id=uuid.uuid4(), name=f"lost_{i}"
        )
    contextvars.copy_context().run(
        handler.on_llm_start, None, ["hi"], run_id=uuid.uuid4(), metadata={"ls_model_name": "x"}
    )

    assert handler.open_runs == 3
    tasks = {t["task_type"]: t for t in ledger.tasks()}
    for i in range(8):  # pushed out by the cap, oldest first
        assert (tasks[f"lost_{i}"]["status"], tasks[f"lost_{i}"]["error_type"]) == (
            "failed",
            "abandoned",
        )
    assert tasks["lost_9"]["status"] == "pending"


def test_runs_older_than_the_timeout_are_closed(sdk: dexcost.CostTracker, ledger: Any) -> None:
    handler = DexcostCallbackHandler(run_timeout=0.05)
    root, child = uuid.uuid4(), uuid.uuid4()

    def run_with_a_lost_tool() -> None:
        handler.on_chain_start(None, {}, run_id=root, name="root")
        handler.on_tool_start({"name": "slow_tool"}, "", run_id=child, parent_run_id=root)
        handler.on_chain_end({}, run_id=root)  # its tool never reported back

    contextvars.copy_context().run(run_with_a_lost_tool)
    time.sleep(0.1)

    handler.on_chain_start(None, {}, run_id=uuid.uuid4(), name="next")  # cleans up

    assert handler.open_runs == 1
    statuses = {t["task_type"]: (t["status"], t["error_type"]) for t in ledger.tasks()}
    assert statuses == {
        "root": ("success", None),
        "slow_tool": ("failed", "abandoned"),
        "next": ("pending", None),
    }


def test_a_streamed_chain_dropped_half_way_leaves_nothing_open(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    handler = DexcostCallbackHandler(run_timeout=0.05)
    chain = (PROMPT | chat(answer("one two three four", 80, 4))).with_config(run_name="reply")

    stream = chain.stream({"question": "?"}, {"callbacks": [handler]})
    next(stream)
    stream.close()  # the reader went away: LangChain ends the chain, never its model call
    time.sleep(0.1)
    contextvars.copy_context().run(
        handler.on_chain_start, None, {}, run_id=uuid.uuid4(), name="next_request"
    )

    assert ledger.task("reply")["status"] == "success"
    assert handler.open_runs == 1  # only the new run


@pytest.mark.swallows
def test_an_internal_error_never_reaches_langchain(
    sdk: dexcost.CostTracker, chat: Any, answer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in dexcost")

    monkeypatch.setattr(_lc_tracking.Tracking, "start", broken)
    monkeypatch.setattr(_lc_tracking.Tracking, "llm_end", broken)
    chain = (PROMPT | chat(answer("still works", 10, 1))).with_config(run_name="reply")

    out = chain.invoke({"question": "?"}, {"callbacks": [DexcostCallbackHandler()]})

    assert out.content == "still works"
    sites = {site for site, _ in _guard.swallowed()}
    assert sites == {"integrations.langchain.start", "integrations.langchain.llm_end"}


def test_costs_roll_up_to_the_outermost_run(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    inner = (PROMPT | chat(answer("x", 400, 40))).with_config(run_name="inner")
    middle = (RunnableLambda(lambda q: {"question": q}) | inner).with_config(run_name="middle")
    outer = (RunnableLambda(lambda q: q) | middle).with_config(run_name="outer")

    outer.invoke("?", {"callbacks": [DexcostCallbackHandler()]})

    assert ledger.tree() == ["outer", "outer/middle", "outer/middle/inner"]
    totals = {t["task_type"]: Decimal(t["total_cost_usd"]) for t in ledger.tasks()}
    assert totals["outer"] == totals["middle"] == totals["inner"] > 0


async def test_a_long_lived_async_context_does_not_keep_old_runs(
    sdk: dexcost.CostTracker, chat: Any, answer: Any
) -> None:
    # Async end callbacks run in copied contexts, so the caller's context keeps the
    # last run it started; that run must not keep every earlier one alive.
    chain = (PROMPT | chat(*(answer("x", 10, 1) for _ in range(21)))).with_config(run_name="reply")
    handler = DexcostCallbackHandler()

    for _ in range(21):
        await chain.ainvoke({"question": "?"}, {"callbacks": [handler]})

    kept, run = 0, _lc_tracking._active_run.get()  # white-box: what the context holds
    while run is not None:
        kept += run.name == "reply"
        run = run.prev_active
    assert kept == 1
    assert handler.open_runs == 0
