"""The public surface: exports, import costs, argument errors, the spec's handler."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel

import dexcost
import dexcost.integrations
import dexcost_langchain
from dexcost_langchain import DexcostCallbackHandler


def test_exports() -> None:
    assert dexcost_langchain.__all__ == [
        "DexcostCallbackHandler",
        "__version__",
        "instrument",
        "instrumented_handler",
        "uninstrument",
    ]
    assert dexcost.integrations.__all__ == ["NESTED_TASK_KINDS", "DexcostCallbackHandler"]
    assert issubclass(DexcostCallbackHandler, BaseCallbackHandler)
    assert issubclass(DexcostCallbackHandler, dexcost.integrations.DexcostCallbackHandler)


def _python(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "DEXCOST_BUFFER_PATH": str(tmp_path / "sub.db")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_dexcost_and_its_integrations_imports_no_framework(tmp_path: Path) -> None:
    out = _python(
        """
        import sys
        import dexcost, dexcost.integrations
        print(sorted(m for m in sys.modules if m.startswith(("langchain", "langgraph", "openai"))))
        """,
        tmp_path,
    )
    assert out == "[]"


def test_the_core_handler_works_without_langchain(tmp_path: Path) -> None:
    # The spec's duck-typed handler: LangChain absent, called as LangChain would call it.
    out = _python(
        """
        import sys, uuid
        from types import SimpleNamespace as NS
        sys.modules["langchain_core"] = None  # not installed
        import dexcost
        from dexcost.integrations import DexcostCallbackHandler

        dexcost.init(auto_instrument=[])
        tracker = dexcost.get_tracker()
        handler = DexcostCallbackHandler(tracker)
        assert type(handler).__mro__[1:] == (object,), type(handler).__mro__
        with dexcost.task("lc_chain") as task:
            run = uuid.uuid4()
            handler.on_llm_start({"name": "OpenAI"}, ["Summarise this"], run_id=run,
                                 invocation_params={"model_name": "gpt-4o"})
            result = NS(generations=[[NS(text="ok")]],
                        llm_output={"token_usage": {"prompt_tokens": 800,
                                                    "completion_tokens": 150}})
            handler.on_llm_end(result, run_id=run)
        print(task.task.total_input_tokens, task.task.total_output_tokens,
              task.task.total_cost_usd == tracker.get_cost("gpt-4o", 800, 150).cost_usd)
        """,
        tmp_path,
    )
    assert out == "800 150 True"


def test_the_core_handler_is_a_langchain_handler_when_langchain_is_installed(
    sdk: dexcost.CostTracker, ledger: Any
) -> None:
    handler = dexcost.integrations.DexcostCallbackHandler(sdk)
    assert isinstance(handler, BaseCallbackHandler)
    assert isinstance(handler, dexcost.integrations.DexcostCallbackHandler)

    # As in the spec: the handler given to the model's constructor.
    llm = FakeListChatModel(responses=["summary"], callbacks=[handler])
    with dexcost.task(task_type="lc_chain"):
        llm.invoke("Summarise this text")

    (event,) = ledger.events()
    assert event["task_type"] == "lc_chain"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"nested_tasks": "tool"}, TypeError),
        ({"nested_tasks": ["tool", "agent"]}, ValueError),
        ({"max_open_runs": 0}, ValueError),
        ({"max_open_runs": 2.5}, TypeError),
        ({"run_timeout": 0}, ValueError),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        DexcostCallbackHandler(**kwargs)


def test_without_init_the_handler_records_nothing_and_breaks_nothing(
    chat: Any, answer: Any
) -> None:
    handler = DexcostCallbackHandler()
    assert handler.tracker is None

    assert chat(answer("fine")).invoke("hi", {"callbacks": [handler]}).content == "fine"
    assert handler.open_runs == 0
