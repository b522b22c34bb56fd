"""LLM calls recorded from LangChain's own usage (models dexcost does not patch)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

import dexcost
from dexcost_langchain import DexcostCallbackHandler

PROMPT = ChatPromptTemplate.from_messages([("user", "{question}")])


def test_cache_and_reasoning_tokens_are_priced(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    model = chat(
        answer(
            "done",
            5000,
            900,
            model="claude-sonnet-4-5",
            cache_read=3000,
            cache_creation=1000,
            reasoning=600,
        ),
        model="claude-sonnet-4-5",
    )

    model.invoke("hi", {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    assert (
        event["input_tokens"],
        event["output_tokens"],
        event["cached_tokens"],
        event["cache_creation_tokens"],
        event["reasoning_tokens"],
    ) == (5000, 900, 3000, 1000, 600)
    expected = sdk.pricing.get_cost(
        "claude-sonnet-4-5", 5000, 900, 3000, 1000, reasoning_tokens=600
    )
    assert Decimal(event["cost_usd"]) == expected.cost_usd > 0
    # Cache reads are cheaper than fresh input: the split matters.
    assert expected.cost_usd < sdk.pricing.get_cost("claude-sonnet-4-5", 5000, 900).cost_usd
    assert event["details"]["integration"] == "langchain"


@pytest.mark.parametrize("with_total", [True, False], ids=["with-cache_creation", "split-only"])
def test_anthropic_cache_writes_split_by_lifetime(
    with_total: bool, sdk: dexcost.CostTracker, ledger: Any, chat: Any, usage: Any
) -> None:
    from langchain_core.messages import AIMessage

    um = usage(6000, 200, cache_read=1000)
    # langchain-anthropic: the lifetime split, with or without the standard total.
    um["input_token_details"] = {
        "cache_read": 1000,
        "ephemeral_5m_input_tokens": 1500,
        "ephemeral_1h_input_tokens": 2500,
        **({"cache_creation": 4000} if with_total else {}),
    }
    message = AIMessage(
        content="ok", usage_metadata=um, response_metadata={"model_name": "claude-sonnet-4-5"}
    )

    chat(message).invoke("hi", {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    assert (event["cached_tokens"], event["cache_creation_tokens"]) == (1000, 4000)
    expected = sdk.pricing.get_cost(
        "claude-sonnet-4-5", 6000, 200, 1000, 4000, cache_write_1h_tokens=2500
    )
    assert Decimal(event["cost_usd"]) == expected.cost_usd
    # 1-hour writes cost more than 5-minute ones: the split is priced.
    assert (
        expected.cost_usd
        > sdk.pricing.get_cost("claude-sonnet-4-5", 6000, 200, 1000, 4000).cost_usd
    )


def test_the_model_falls_back_to_the_requested_one(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, usage: Any
) -> None:
    from langchain_core.messages import AIMessage

    bare = AIMessage(content="hi", usage_metadata=usage(40, 2))  # no response metadata
    chat(bare, model="gpt-4o").invoke("hi", {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    assert event["model"] == "gpt-4o"
    assert Decimal(event["cost_usd"]) == sdk.get_cost("gpt-4o", 40, 2).cost_usd


def test_llm_cache_hits_are_recorded_at_zero_cost(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    set_llm_cache(InMemoryCache())
    try:
        model = chat(answer("Paris", 300, 5), answer("never used", 1, 1))
        handler = DexcostCallbackHandler()
        first = model.invoke("capital of France?", {"callbacks": [handler]})
        second = model.invoke("capital of France?", {"callbacks": [handler]})
    finally:
        set_llm_cache(None)

    assert first.content == second.content == "Paris"
    paid, hit = ledger.events()
    assert Decimal(paid["cost_usd"]) > 0
    assert not paid["details"].get("cache_hit")
    assert (Decimal(hit["cost_usd"]), hit["cost_confidence"]) == (Decimal(0), "exact")
    assert hit["details"]["cache_hit"] is True
    assert hit["input_tokens"] == hit["output_tokens"] == 0


def test_a_streamed_answer_is_recorded_once_at_its_end(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    chain = (PROMPT | chat(answer("one two three", 250, 3))).with_config(run_name="stream_reply")

    text = "".join(
        c.content
        for c in chain.stream({"question": "?"}, {"callbacks": [DexcostCallbackHandler()]})
    )

    assert text.strip() == "one two three"
    (event,) = ledger.events()
    assert (event["input_tokens"], event["output_tokens"]) == (250, 3)
    assert event["task_id"] == ledger.task("stream_reply")["task_id"]


async def test_async_invoke_stream_events_and_batch(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    model = chat(*(answer(f"a{i}", 100 + i, 10) for i in range(6)))
    chain = (PROMPT | model).with_config(run_name="async_reply")
    handler = DexcostCallbackHandler()
    config: Any = {"callbacks": [handler]}

    await chain.ainvoke({"question": "1"}, config)
    async for _ in chain.astream({"question": "2"}, config):
        pass
    async for _ in chain.astream_events({"question": "3"}, config, version="v2"):
        pass
    await chain.abatch([{"question": "4"}, {"question": "5"}, {"question": "6"}], config)

    tasks = ledger.tasks()
    assert [t["task_type"] for t in tasks] == ["async_reply"] * 6
    assert sorted(t["total_input_tokens"] for t in tasks) == list(range(100, 106))
    assert all(t["event_count"] == 1 and t["status"] == "success" for t in tasks)
    assert dexcost.get_current_task() is None  # nothing leaked into the caller's context


def test_sync_batch_makes_one_task_per_input(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    chain = (PROMPT | chat(*(answer("x", 10 * (i + 1), 1) for i in range(4)))).with_config(
        run_name="classify"
    )

    chain.batch([{"question": str(i)} for i in range(4)], {"callbacks": [DexcostCallbackHandler()]})

    tasks = ledger.tasks()
    assert [t["event_count"] for t in tasks] == [1, 1, 1, 1]
    assert sorted(t["total_input_tokens"] for t in tasks) == [10, 20, 30, 40]


def test_generate_with_several_prompts_records_each(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    from langchain_core.messages import HumanMessage

    model = chat(answer("a", 11, 1), answer("b", 22, 2), answer("c", 33, 3))

    model.generate(
        [[HumanMessage("1")], [HumanMessage("2")], [HumanMessage("3")]],
        callbacks=[DexcostCallbackHandler()],
    )

    assert sorted(e["input_tokens"] for e in ledger.events()) == [11, 22, 33]


def test_a_call_without_usage_is_recorded_as_unknown(sdk: dexcost.CostTracker, ledger: Any) -> None:
    FakeListChatModel(responses=["hello"]).invoke("hi", {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    assert (Decimal(event["cost_usd"]), event["cost_confidence"]) == (Decimal(0), "unknown")
    assert event["details"]["usage"] == "missing"


class RateLimited(Exception):
    """Shaped like provider SDK errors: carries the HTTP status."""

    status_code = 429


class FlakyChat(GenericFakeChatModel):
    """Raises the queued errors first, then answers."""

    model: str = "gpt-4o-mini-2024-07-18"
    failures: list[Any] = []  # noqa: RUF012 (a pydantic field: copied per instance)

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            raise self.failures.pop(0)
        return super()._generate(*args, **kwargs)


def test_failed_calls_and_retries(db_path: Any, ledger: Any, answer: Any) -> None:
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], enable_retry_heuristics=True)
    model = FlakyChat(messages=iter([answer("ok", 120, 8)]), failures=[RateLimited("slow down")])
    retrying = model.with_retry(stop_after_attempt=2, wait_exponential_jitter=False)
    chain = (PROMPT | retrying).with_config(run_name="retrying_reply")

    chain.invoke({"question": "?"}, {"callbacks": [DexcostCallbackHandler()]})

    failed, retried = ledger.events()
    assert (failed["error_type"], Decimal(failed["cost_usd"]), failed["cost_confidence"]) == (
        "rate_limit",
        Decimal(0),
        "exact",  # the provider answered 429: nothing was billed
    )
    assert failed["details"]["error"] == "RateLimited"
    assert (retried["error_type"], retried["input_tokens"]) == (None, 120)
    assert (retried["is_retry"], retried["retry_reason"]) == (1, "rate_limit")
    task = ledger.task("retrying_reply")
    assert (task["status"], task["retry_count"]) == ("success", 1)


def test_a_call_outside_any_task_lands_in_the_agents_session(
    sdk: dexcost.CostTracker, ledger: Any, chat: Any, answer: Any
) -> None:
    dexcost.set_context(customer_id="acme", agent="triage_bot")

    chat(answer("hi", 70, 3)).invoke("hello", {"callbacks": [DexcostCallbackHandler()]})

    (event,) = ledger.events()
    session = ledger.task("triage_bot")
    assert event["task_id"] == session["task_id"]
    assert session["customer_id"] == event["customer_id"] == "acme"


class InstructModel(BaseLLM):
    """A completion model reporting OpenAI-style ``llm_output["token_usage"]``."""

    def _generate(
        self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> LLMResult:
        return LLMResult(
            generations=[[Generation(text="done")] for _ in prompts],
            llm_output={
                "token_usage": {
                    "prompt_tokens": 60 * len(prompts),
                    "completion_tokens": 5 * len(prompts),
                },
                "model_name": "gpt-3.5-turbo-instruct",
            },
        )

    @property
    def _llm_type(self) -> str:
        return "instruct"


def test_completion_models_report_usage_in_llm_output(
    sdk: dexcost.CostTracker, ledger: Any
) -> None:
    chain = (RunnableLambda(lambda q: q) | InstructModel()).with_config(run_name="complete")

    chain.invoke("say done", {"callbacks": [DexcostCallbackHandler()]})
    InstructModel().generate(["a", "b"], callbacks=[DexcostCallbackHandler()])

    events = ledger.events()
    assert [(e["model"], e["input_tokens"], e["output_tokens"]) for e in events] == [
        ("gpt-3.5-turbo-instruct", 60, 5),
        # One request served two prompts: LangChain puts its usage on the first.
        ("gpt-3.5-turbo-instruct", 120, 10),
        ("gpt-3.5-turbo-instruct", 0, 0),
    ]
    assert Decimal(events[0]["cost_usd"]) == sdk.get_cost("gpt-3.5-turbo-instruct", 60, 5).cost_usd
