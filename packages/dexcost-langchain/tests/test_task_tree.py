"""The run tree becomes the task tree: names, nesting, failures and roll-ups."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("langgraph", reason="needs langgraph")

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

import dexcost
from dexcost_langchain import DexcostCallbackHandler

Chat = Callable[..., Any]
Answer = Callable[..., Any]
Ledger = Any
PROMPT = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("user", "{question}")])


def cost_of(tracker: dexcost.CostTracker, input_tokens: int, output_tokens: int) -> Decimal:
    return tracker.get_cost("gpt-4o-mini-2024-07-18", input_tokens, output_tokens).cost_usd


def test_a_chain_is_one_task_holding_its_llm_call(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    chain = (PROMPT | chat(answer("Paris", 120, 4)) | StrOutputParser()).with_config(
        run_name="answer_question"
    )

    assert chain.invoke({"question": "capital?"}, {"callbacks": [DexcostCallbackHandler()]}) == (
        "Paris"
    )

    # The prompt template and the parser cost nothing and stay out of the ledger.
    assert ledger.tree() == ["answer_question"]
    task = ledger.task("answer_question")
    (event,) = ledger.events()
    assert event["task_id"] == task["task_id"]
    assert (event["model"], event["input_tokens"], event["output_tokens"]) == (
        "gpt-4o-mini-2024-07-18",
        120,
        4,
    )
    assert Decimal(event["cost_usd"]) == cost_of(sdk, 120, 4) > 0
    assert task["status"] == "success"
    assert Decimal(task["total_cost_usd"]) == Decimal(event["cost_usd"])


def test_nested_chains_that_spend_become_child_tasks_and_roll_up(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    draft = (PROMPT | chat(answer("draft", 300, 80))).with_config(run_name="draft")
    review = (PROMPT | chat(answer("ok", 200, 10))).with_config(run_name="review")
    pipeline = (
        RunnableLambda(lambda q: {"question": q}).with_config(run_name="prepare")
        | draft
        | RunnableLambda(lambda m: {"question": m.content})
        | review
    ).with_config(run_name="write_reply")

    pipeline.invoke("hello", {"callbacks": [DexcostCallbackHandler()]})

    assert ledger.tree() == ["write_reply", "write_reply/draft", "write_reply/review"]
    root = ledger.task("write_reply")
    children = {t["task_type"]: Decimal(t["total_cost_usd"]) for t in ledger.children(root)}
    assert children == {"draft": cost_of(sdk, 300, 80), "review": cost_of(sdk, 200, 10)}
    assert Decimal(root["total_cost_usd"]) == sum(children.values())
    assert root["total_input_tokens"] == 500


def test_parallel_branches_are_sibling_tasks(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    enrich = RunnableParallel(
        summary=(PROMPT | chat(answer("short", 500, 40))).with_config(run_name="summary"),
        labels=(PROMPT | chat(answer("billing", 150, 3))).with_config(run_name="labels"),
    ).with_config(run_name="enrich_ticket")

    enrich.invoke({"question": "my invoice is wrong"}, {"callbacks": [DexcostCallbackHandler()]})

    assert sorted(ledger.tree()) == [
        "enrich_ticket",
        "enrich_ticket/labels",
        "enrich_ticket/summary",
    ]
    events = {e["task_type"]: e for e in ledger.events()}
    assert {k: e["input_tokens"] for k, e in events.items()} == {"summary": 500, "labels": 150}
    root = ledger.task("enrich_ticket")
    assert Decimal(root["total_cost_usd"]) == cost_of(sdk, 500, 40) + cost_of(sdk, 150, 3)


def test_the_outermost_run_joins_the_users_task(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    draft = (PROMPT | chat(answer("draft", 300, 80))).with_config(run_name="draft")
    chain = (RunnableLambda(lambda q: {"question": q}) | draft).with_config(run_name="reply")

    with dexcost.task("resolve_ticket") as outer:
        chain.invoke("hi", {"callbacks": [DexcostCallbackHandler()]})
        assert dexcost.get_current_task() is outer.task  # nothing left in context

    assert ledger.tree() == ["resolve_ticket", "resolve_ticket/draft"]
    assert Decimal(ledger.task("resolve_ticket")["total_cost_usd"]) == cost_of(sdk, 300, 80)


def _support_graph(model: Any, tools: list[Any], **tool_node: Any) -> Any:
    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(tools, **tool_node))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile().with_config(run_name="support_agent")


@tool
def lookup_order(order_id: str) -> str:
    """Look up the shipping status of an order."""
    return f"order {order_id} shipped"


def _tool_call(name: str, **args: Any) -> list[dict[str, Any]]:
    return [{"name": name, "args": args, "id": "call_1"}]


def test_a_tool_calling_agent_loop(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    model = chat(
        answer("", 400, 30, tool_calls=_tool_call("lookup_order", order_id="42")),
        answer("Your order shipped.", 520, 12),
    )
    agent = _support_graph(model, [lookup_order])

    out = agent.invoke(
        {"messages": [("user", "where is order 42?")]}, {"callbacks": [DexcostCallbackHandler()]}
    )

    assert out["messages"][-1].content == "Your order shipped."
    # Graph nodes and tools are tasks; the routing function is not.
    assert ledger.tree() == [
        "support_agent",
        "support_agent/agent",
        "support_agent/tools",
        "support_agent/tools/lookup_order",
        "support_agent/agent",
    ]
    agent_steps = [t for t in ledger.tasks() if t["task_type"] == "agent"]
    assert [t["total_input_tokens"] for t in agent_steps] == [400, 520]
    root = ledger.task("support_agent")
    assert Decimal(root["total_cost_usd"]) == cost_of(sdk, 400, 30) + cost_of(sdk, 520, 12)
    assert all(t["status"] == "success" for t in ledger.tasks())


def test_nested_tasks_can_be_limited_to_tools(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    model = chat(
        answer("", 400, 30, tool_calls=_tool_call("lookup_order", order_id="7")),
        answer("Shipped.", 520, 12),
    )
    handler = DexcostCallbackHandler(nested_tasks=["tool"])

    _support_graph(model, [lookup_order]).invoke(
        {"messages": [("user", "order 7?")]}, {"callbacks": [handler]}
    )

    assert ledger.tree() == ["support_agent", "support_agent/lookup_order"]
    root = ledger.task("support_agent")
    assert {e["task_id"] for e in ledger.events()} == {root["task_id"]}
    assert root["total_input_tokens"] == 920


@tool
def refund(order_id: str) -> str:
    """Refund an order."""
    raise PermissionError(f"refunds for {order_id} need approval")


def test_an_error_inside_a_tool_fails_the_tool_task(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    model = chat(
        answer("", 400, 30, tool_calls=_tool_call("refund", order_id="42")),
        answer("I could not refund it.", 480, 9),
    )
    agent = _support_graph(model, [refund], handle_tool_errors=True)

    agent.invoke({"messages": [("user", "refund 42")]}, {"callbacks": [DexcostCallbackHandler()]})

    tool_task = ledger.task("refund")
    assert (tool_task["status"], tool_task["error_type"]) == ("failed", "PermissionError")
    # The agent handled the error and answered: the run itself succeeded.
    assert ledger.task("support_agent")["status"] == "success"


def test_an_unhandled_error_fails_the_run_and_propagates_unchanged(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    boom = LookupError("no such customer")

    def fail(_: Any) -> None:
        raise boom

    chain = (PROMPT | chat(answer("x", 90, 5)) | RunnableLambda(fail)).with_config(
        run_name="classify"
    )

    with pytest.raises(LookupError) as raised:
        chain.invoke({"question": "?"}, {"callbacks": [DexcostCallbackHandler()]})

    assert raised.value is boom
    task = ledger.task("classify")
    assert (task["status"], task["error_type"]) == ("failed", "LookupError")
    assert Decimal(task["total_cost_usd"]) == cost_of(sdk, 90, 5)  # the cost is kept


class Handbook(BaseRetriever):
    """A retriever over a fixed handbook."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content="Refunds take 5 days.")]


def test_a_retriever_is_a_task(
    sdk: dexcost.CostTracker, ledger: Ledger, chat: Chat, answer: Answer
) -> None:
    rag = (
        {"question": RunnableLambda(lambda q: q), "context": Handbook()}
        | ChatPromptTemplate.from_template("{context}\n{question}")
        | chat(answer("5 days", 210, 4))
    ).with_config(run_name="answer_from_handbook")

    rag.invoke("how long do refunds take?", {"callbacks": [DexcostCallbackHandler()]})

    assert "answer_from_handbook/Handbook" in ledger.tree()


def test_a_graph_interrupt_is_not_a_failure(sdk: dexcost.CostTracker, ledger: Ledger) -> None:
    def ask_approval(state: MessagesState) -> dict[str, Any]:
        decision = interrupt("approve the refund?")
        return {"messages": [("ai", f"decision: {decision}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("approval", ask_approval)
    graph.add_edge(START, "approval")
    app = graph.compile(checkpointer=InMemorySaver()).with_config(run_name="refund_flow")
    config: Any = {"configurable": {"thread_id": "t1"}, "callbacks": [DexcostCallbackHandler()]}

    app.invoke({"messages": [("user", "refund")]}, config)
    app.invoke(Command(resume="yes"), config)

    statuses = [(t["task_type"], t["status"], t["error_type"]) for t in ledger.tasks()]
    assert statuses == [
        ("refund_flow", "success", None),
        ("approval", "success", None),
        ("refund_flow", "success", None),
        ("approval", "success", None),
    ]
