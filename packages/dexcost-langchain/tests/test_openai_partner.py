"""A real partner model (langchain-openai's ChatOpenAI) over a fake HTTP transport.

Proves the scope rule end to end: when dexcost patches the openai SDK, each call is
recorded exactly once, by the provider layer, inside the framework's task; without the
patch, the handler records the same call from LangChain's usage, at the same cost.
"""

from __future__ import annotations

import json
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_openai", reason="needs langchain-openai")
pytest.importorskip("langgraph", reason="needs langgraph")

import httpx
import openai
from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import dexcost
from dexcost_langchain import DexcostCallbackHandler

MODEL = "gpt-4o-mini-2024-07-18"
PROMPT = ChatPromptTemplate.from_messages([("user", "{question}")])


class FakeOpenAI:
    """Answers OpenAI chat requests from a queue, streamed when asked to."""

    def __init__(self) -> None:
        self.replies: deque[tuple[int, dict[str, Any]]] = deque()
        self.requests: list[dict[str, Any]] = []

    def reply(
        self,
        content: str = "",
        prompt_tokens: int = 100,
        completion_tokens: int = 10,
        *,
        cached_tokens: int = 0,
        tool_calls: list[dict[str, Any]] | None = None,
        status: int = 200,
    ) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
                }
                for i, c in enumerate(tool_calls)
            ]
        body = {
            "id": f"chatcmpl-{len(self.replies)}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
        }
        if status != 200:
            body = {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
        self.replies.append((status, body))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        self.requests.append(payload)
        status, body = self.replies.popleft()
        if status != 200 or not payload.get("stream"):
            return httpx.Response(status, json=body)
        return httpx.Response(
            200, content=_sse(body), headers={"content-type": "text/event-stream"}
        )


def _sse(body: dict[str, Any]) -> bytes:
    text = body["choices"][0]["message"]["content"]
    base = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    chunks = [
        base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": w + " "}}]}
        for w in text.split(" ")
    ]
    chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append(base | {"choices": [], "usage": body["usage"]})
    lines = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return lines.encode()


@pytest.fixture
def api() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def llm(api: FakeOpenAI) -> ChatOpenAI:
    transport = httpx.MockTransport(api)
    return ChatOpenAI(
        model="gpt-4o-mini",
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        stream_usage=True,
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
    )


def _init(db_path: Path, patched: bool) -> dexcost.CostTracker:
    dexcost.init(buffer_path=str(db_path), auto_instrument=["openai"] if patched else [])
    tracker = dexcost.get_tracker()
    assert tracker is not None
    return tracker


async def _run(mode: str, llm: ChatOpenAI, handler: DexcostCallbackHandler) -> None:
    chain = (PROMPT | llm).with_config(run_name="reply")
    config: Any = {"callbacks": [handler]}
    inputs = {"question": "where is my order?"}
    if mode == "invoke":
        chain.invoke(inputs, config)
    elif mode == "stream":
        for _ in chain.stream(inputs, config):
            pass
    elif mode == "ainvoke":
        await chain.ainvoke(inputs, config)
    elif mode == "astream":
        async for _ in chain.astream(inputs, config):
            pass
    else:
        async for _ in chain.astream_events(inputs, config, version="v2"):
            pass


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream", "astream_events"])
@pytest.mark.parametrize("patched", [True, False], ids=["sdk-patched", "unpatched"])
async def test_each_call_is_recorded_once_in_the_chains_task(
    mode: str, patched: bool, db_path: Path, ledger: Any, api: FakeOpenAI, llm: ChatOpenAI
) -> None:
    tracker = _init(db_path, patched)
    api.reply("It shipped yesterday.", 1200, 40, cached_tokens=1024)

    await _run(mode, llm, DexcostCallbackHandler())

    assert len(api.requests) == 1
    (event,) = ledger.events()
    assert event["task_id"] == ledger.task("reply")["task_id"]
    assert (event["model"], event["input_tokens"], event["output_tokens"]) == (MODEL, 1200, 40)
    assert event["cached_tokens"] == 1024
    assert Decimal(event["cost_usd"]) == tracker.get_cost(MODEL, 1200, 40, 1024).cost_usd
    # Who recorded it: the SDK patch when there is one, else the handler.
    assert ("operation" in event["details"]) is patched
    assert ("integration" in event["details"]) is not patched


# langchain-openai warns when it sums usage fields the SDK left null (not ours to fix).
@pytest.mark.filterwarnings("ignore:Unexpected type for token usage:UserWarning")
def test_generate_with_several_prompts_is_recorded_once_per_request(
    db_path: Path, ledger: Any, api: FakeOpenAI, llm: ChatOpenAI
) -> None:
    _init(db_path, patched=True)
    for n in (11, 22, 33):
        api.reply("ok", n, 1)

    llm.generate([[HumanMessage(str(i))] for i in range(3)], callbacks=[DexcostCallbackHandler()])

    assert sorted(e["input_tokens"] for e in ledger.events()) == [11, 22, 33]


@tool
def track_parcel(order_id: str) -> str:
    """Where a parcel is."""
    return f"parcel {order_id} is in Lyon"


def test_a_tool_calling_agent_over_the_real_sdk(
    db_path: Path, ledger: Any, api: FakeOpenAI, llm: ChatOpenAI
) -> None:
    tracker = _init(db_path, patched=True)
    api.reply("", 300, 20, tool_calls=[{"name": "track_parcel", "args": {"order_id": "9"}}])
    api.reply("It is in Lyon.", 380, 9)
    model = llm.bind_tools([track_parcel])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([track_parcel]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    app = graph.compile().with_config(run_name="parcel_agent")

    app.invoke({"messages": [("user", "where is 9?")]}, {"callbacks": [DexcostCallbackHandler()]})

    assert len(api.requests) == 2
    events = ledger.events()
    assert [e["input_tokens"] for e in events] == [300, 380]
    agent_tasks = [t["task_id"] for t in ledger.tasks() if t["task_type"] == "agent"]
    assert [e["task_id"] for e in events] == agent_tasks
    assert "parcel_agent/tools/track_parcel" in ledger.tree()
    root = ledger.task("parcel_agent")
    assert Decimal(root["total_cost_usd"]) == sum(
        tracker.get_cost(MODEL, i, o).cost_usd for i, o in ((300, 20), (380, 9))
    )


def _client(api: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(api)),
    )


def test_sdk_calls_made_directly_in_a_step_or_tool_land_in_its_task(
    db_path: Path, ledger: Any, api: FakeOpenAI
) -> None:
    _init(db_path, patched=True)
    client = _client(api)
    api.reply("billing", 50, 1)
    api.reply("tracked", 70, 2)

    def classify(text: str) -> str:
        out = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
        )
        return out.choices[0].message.content or ""

    @tool
    def summarize(text: str) -> str:
        """Summarize a ticket with the SDK."""
        return classify(text)

    flow = (
        RunnableLambda(classify).with_config(run_name="classify")
        | RunnableLambda(lambda label: summarize.invoke({"text": label}))
    ).with_config(run_name="triage")

    flow.invoke("my invoice is wrong", {"callbacks": [DexcostCallbackHandler()]})

    by_task = {e["task_type"]: e["input_tokens"] for e in ledger.events()}
    assert by_task == {"classify": 50, "summarize": 70}
    assert set(ledger.tree()) == {"triage", "triage/classify", "triage/summarize"}


async def test_async_sdk_calls_in_a_node_land_in_the_node(
    db_path: Path, ledger: Any, api: FakeOpenAI
) -> None:
    _init(db_path, patched=True)
    client = openai.AsyncOpenAI(
        api_key="sk-test",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(api)),
    )
    api.reply("urgent", 64, 1)

    async def triage(state: MessagesState) -> dict[str, Any]:
        out = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "rate urgency"}]
        )
        return {"messages": [("ai", out.choices[0].message.content or "")]}

    graph = StateGraph(MessagesState)
    graph.add_node("triage", triage)
    graph.add_edge(START, "triage")
    app = graph.compile().with_config(run_name="intake")

    await app.ainvoke({"messages": [("user", "help")]}, {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    assert event["task_type"] == "triage"
    assert dexcost.get_current_task() is None


def test_an_api_error_is_recorded_once_and_propagates(
    db_path: Path, ledger: Any, api: FakeOpenAI, llm: ChatOpenAI
) -> None:
    _init(db_path, patched=True)
    api.reply(status=429)
    chain = (PROMPT | llm).with_config(run_name="reply")

    with pytest.raises(openai.RateLimitError) as raised:
        chain.invoke({"question": "?"}, {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    assert (event["error_type"], Decimal(event["cost_usd"])) == ("rate_limit", Decimal(0))
    task = ledger.task("reply")
    assert (task["status"], task["error_type"]) == ("failed", type(raised.value).__name__)
