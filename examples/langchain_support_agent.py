"""A LangChain support agent serving several customers, with its costs by task.

Each ticket is triaged by a small model, then handled by a tool-calling agent that looks
orders up, searches the help centre and issues refunds. One line,
``dexcost_langchain.instrument()``, turns every run into dexcost tasks: the agent run,
its triage chain and each tool call, with the LLM costs where they were spent.

The models are LangChain's own fake chat model answering with the usage a provider
would report, so nothing here needs a network or an API key.

    pip install dexcost dexcost-langchain
    python examples/langchain_support_agent.py
"""

from __future__ import annotations

import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import dexcost
import dexcost_langchain


class ScriptedChat(GenericFakeChatModel):
    """Answers with scripted messages; tools bind to it like to a real chat model."""

    model: str = "gpt-4o-mini"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:  # type: ignore[override]
        return self


def reply(
    text: str, tokens_in: int, tokens_out: int, model: str, **calls: dict[str, Any]
) -> AIMessage:
    """What the provider would answer: text or tool calls, with its usage."""
    return AIMessage(
        content=text,
        tool_calls=[{"name": n, "args": a, "id": f"call_{n}"} for n, a in calls.items()],
        usage_metadata={
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
            "input_token_details": {"cache_read": tokens_in // 2},  # a cached system prompt
        },
        response_metadata={"model_name": model},
    )


# -- tools -----------------------------------------------------------------------------


@tool
def lookup_order(order_id: str) -> str:
    """The shipping status of an order."""
    return f"Order {order_id} left the warehouse yesterday."


@tool
def search_help_centre(query: str) -> str:
    """Search the help-centre articles."""
    return "Refunds are issued within 5 business days."


@tool
def issue_refund(order_id: str) -> str:
    """Refund an order."""
    if order_id.startswith("B2B"):
        raise PermissionError("business orders are refunded by the account manager")
    return f"Refund for {order_id} issued."


TOOLS = {t.name: t for t in (lookup_order, search_help_centre, issue_refund)}

# -- the agent -------------------------------------------------------------------------

TRIAGE = ChatPromptTemplate.from_messages(
    [("system", "Label the ticket: shipping, billing or other."), ("user", "{ticket}")]
)


def handle_ticket(ticket: dict[str, Any]) -> str:
    """Triage the ticket, then loop: the model calls tools until it can answer."""
    triage = (TRIAGE | ticket["triage_model"]).with_config(run_name="triage")
    label = triage.invoke({"ticket": ticket["text"]}).content
    model = ticket["agent_model"].bind_tools(list(TOOLS.values()))
    messages: list[BaseMessage] = [HumanMessage(f"[{label}] {ticket['text']}")]
    while True:
        answer = model.invoke(messages)
        messages.append(answer)
        if not answer.tool_calls:
            return str(answer.content)
        for call in answer.tool_calls:
            try:
                messages.append(TOOLS[call["name"]].invoke(call))
            except Exception as exc:  # the agent tells the customer instead of crashing
                messages.append(ToolMessage(f"error: {exc}", tool_call_id=call["id"]))


support_agent = RunnableLambda(handle_ticket).with_config(run_name="support_agent")

# -- a day of tickets ------------------------------------------------------------------

SMALL, BIG = "claude-haiku-4-5", "gpt-4o"


def ticket(customer: str, text: str, *script: AIMessage, label: str = "shipping") -> dict[str, Any]:
    return {
        "customer": customer,
        "text": text,
        "triage_model": ScriptedChat(messages=iter([reply(label, 180, 2, SMALL)]), model=SMALL),
        "agent_model": ScriptedChat(messages=iter(script), model=BIG),
    }


TICKETS = [
    ticket(
        "acme-corp",
        "Where is order A-1001?",
        reply("", 2400, 30, BIG, lookup_order={"order_id": "A-1001"}),
        reply("It left the warehouse yesterday.", 2600, 25, BIG),
    ),
    ticket(
        "acme-corp",
        "Please refund order A-1002, it arrived broken.",
        reply("", 2500, 40, BIG, search_help_centre={"query": "refund broken item"}),
        reply("", 2900, 35, BIG, issue_refund={"order_id": "A-1002"}),
        reply("Your refund is on its way.", 3200, 30, BIG),
        label="billing",
    ),
    ticket(
        "globex",
        "Refund our order B2B-77.",
        reply("", 2450, 35, BIG, issue_refund={"order_id": "B2B-77"}),
        reply("Your account manager will process this refund.", 2800, 40, BIG),
        label="billing",
    ),
    ticket(
        "initech",
        "Hello?",
        reply("Hello! How can I help?", 2100, 12, BIG),
        label="other",
    ),
]


def print_costs(db: Path) -> None:
    """Costs by customer and by task type, read back from the local store."""
    con = sqlite3.connect(db)
    money = lambda value: Decimal(value).quantize(Decimal("0.000001"))  # noqa: E731

    print("Cost by customer (whole tickets)")
    rows = con.execute(
        "SELECT customer_id, total_cost_usd FROM tasks WHERE parent_task_id IS NULL"
    ).fetchall()
    by_customer: dict[str, list[Decimal]] = {}
    for customer, cost in rows:
        by_customer.setdefault(customer, []).append(Decimal(cost))
    for customer, costs in sorted(by_customer.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {customer:<12} tickets: {len(costs)}  ${money(sum(costs, Decimal(0)))}")

    print("\nCost by task (LLM spend in the task itself; failures from tools)")
    rows = con.execute(
        "SELECT t.task_type, t.status, t.error_type, "
        "(SELECT group_concat(cost_usd, ' ') FROM events e WHERE e.task_id = t.task_id) "
        "FROM tasks t"
    ).fetchall()
    stats: dict[str, dict[str, Any]] = {}
    for task_type, status, error_type, costs in rows:
        entry = stats.setdefault(task_type, {"runs": 0, "cost": Decimal(0), "failed": []})
        entry["runs"] += 1
        entry["cost"] += sum((Decimal(c) for c in (costs or "").split()), Decimal(0))
        if status == "failed":
            entry["failed"].append(error_type)
    for task_type, entry in sorted(stats.items(), key=lambda kv: -kv[1]["cost"]):
        failed = f"  failed: {', '.join(entry['failed'])}" if entry["failed"] else ""
        print(f"  {task_type:<20} {entry['runs']:>2} runs  ${money(entry['cost'])}{failed}")
    con.close()


def main() -> None:
    db = Path(tempfile.mkdtemp(prefix="dexcost-langchain-")) / "support.db"
    dexcost.init(buffer_path=str(db), auto_instrument=[], track_http=False)
    dexcost_langchain.instrument()  # every LangChain run below becomes tasks

    for t in TICKETS:
        dexcost.set_context(customer_id=t["customer"], project_id="support")
        answer = support_agent.invoke(t)
        print(f"{t['customer']:<12} {t['text']!r} -> {answer!r}")

    dexcost.close()
    print()
    print_costs(db)
    print(f"\nThe store: {db}")


if __name__ == "__main__":
    main()
