"""Fixtures: dexcost on a real SQLite file, LangChain's fake models with real usage.

The fakes are langchain-core's own test models carrying the ``usage_metadata`` and
``response_metadata`` a real provider integration attaches; the ledger is read back
from the store file with plain sqlite3, as a user would.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="the dexcost-langchain tests need langchain-core")

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

import dexcost
import dexcost_langchain
from dexcost import _guard
from dexcost.instrument import ALL_SUPPORTED_INSTRUMENTS, get_instrumentor


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Own store file per test; no tracker, context, injection or patch left behind."""
    monkeypatch.setenv("DEXCOST_BUFFER_PATH", str(tmp_path / "dexcost.db"))
    for var in ("DEXCOST_API_KEY", "DEXCOST_ENV", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(var, raising=False)
    yield
    dexcost.set_current_task(None)  # the main thread's context outlives the test
    dexcost_langchain.uninstrument()
    dexcost.close()
    dexcost.clear_context()
    for name in ALL_SUPPORTED_INSTRUMENTS:
        get_instrumentor(name).uninstrument()


@pytest.fixture(autouse=True)
def _guard_stays_silent(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which dexcost swallowed one of its own errors (unless it expects to)."""
    _guard.clear()
    yield
    errors = _guard.swallowed()
    _guard.clear()
    if errors and "swallows" not in request.keywords:
        pytest.fail(f"dexcost swallowed internal errors: {errors!r}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "swallows: the test makes dexcost swallow an error")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dexcost.db"


@pytest.fixture
def sdk(db_path: Path) -> dexcost.CostTracker:
    """``dexcost.init()`` on the test's store, no provider patched."""
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], track_http=False)
    tracker = dexcost.get_tracker()
    assert tracker is not None
    return tracker


class Ledger:
    """What the store holds: tasks and events as dicts, read after a flush."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        dexcost.flush()
        con = sqlite3.connect(self.path)
        con.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in con.execute(sql, params).fetchall()]
        finally:
            con.close()
        for row in rows:
            for key in ("details", "metadata"):
                if key in row:
                    row[key] = json.loads(row[key] or "{}")
        return rows

    def tasks(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM tasks ORDER BY started_at, task_id")

    def events(self, event_type: str = "llm_call") -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM events WHERE event_type = ? ORDER BY occurred_at, event_id", event_type
        )

    def task(self, task_type: str) -> dict[str, Any]:
        found = [t for t in self.tasks() if t["task_type"] == task_type]
        assert len(found) == 1, f"{len(found)} tasks of type {task_type!r}: {self.tree()}"
        return found[0]

    def tree(self) -> list[str]:
        """Each task as ``parent/.../task`` (by task type), in start order."""
        tasks = self.tasks()
        by_id = {t["task_id"]: t for t in tasks}

        def path(task: dict[str, Any]) -> str:
            parent = by_id.get(task["parent_task_id"])
            return f"{path(parent)}/{task['task_type']}" if parent else task["task_type"]

        return [path(t) for t in tasks]

    def children(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        return [t for t in self.tasks() if t["parent_task_id"] == task["task_id"]]


@pytest.fixture
def ledger(db_path: Path) -> Ledger:
    return Ledger(db_path)


def usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int = 0,
    cache_creation: int = 0,
    reasoning: int = 0,
) -> dict[str, Any]:
    """A ``UsageMetadata`` dict as partner integrations build it (input includes cache)."""
    um: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if cache_read or cache_creation:
        um["input_token_details"] = {"cache_read": cache_read, "cache_creation": cache_creation}
    if reasoning:
        um["output_token_details"] = {"reasoning": reasoning}
    return um


def answer(
    text: str,
    input_tokens: int = 100,
    output_tokens: int = 20,
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    tool_calls: list[dict[str, Any]] | None = None,
    **details: int,
) -> AIMessage:
    """An AI message with the usage and metadata a provider integration attaches."""
    return AIMessage(
        content=text,
        tool_calls=tool_calls or [],
        usage_metadata=usage(input_tokens, output_tokens, **details),  # type: ignore[arg-type]
        response_metadata={"model_name": model, "model_provider": "openai"},
    )


class FakeChat(GenericFakeChatModel):
    """langchain-core's generic fake chat model, named like a partner model.

    ``model`` feeds LangChain's ``ls_model_name``; tools bind to the model itself; a
    streamed answer ends with a usage chunk, as providers that report usage do.
    """

    model: str = "gpt-4o-mini"

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeChat:  # type: ignore[override]
        return self

    def _stream(  # type: ignore[override]
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        message = next(self.messages)
        message = AIMessage(content=message) if isinstance(message, str) else message
        for word in str(message.content).split(" "):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        if message.usage_metadata:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata=message.usage_metadata,
                    response_metadata=message.response_metadata,
                )
            )


@pytest.fixture(name="answer")
def answer_fixture() -> Callable[..., AIMessage]:
    """``answer(text, input_tokens, output_tokens, model=..., tool_calls=..., ...)``."""
    return answer


@pytest.fixture(name="usage")
def usage_fixture() -> Callable[..., dict[str, Any]]:
    """``usage(input_tokens, output_tokens, cache_read=..., ...)``: a UsageMetadata dict."""
    return usage


@pytest.fixture
def chat() -> Callable[..., FakeChat]:
    """``chat(*messages, model=...)``: a fake chat model answering with ``messages``."""

    def make(*messages: AIMessage | str, model: str = "gpt-4o-mini") -> FakeChat:
        return FakeChat(messages=iter(messages), model=model)

    return make
