"""The instrumentation API: names, init() auto-instrumentation, missing SDKs, the guard."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import dexcost
from dexcost import _guard
from dexcost.instrument import ALL_SUPPORTED_INSTRUMENTS, Instrumentor, get_instrumentor
from dexcost.instrument._stream import StreamObserver

SDK_MODULES = (
    "openai",
    "anthropic",
    "litellm",
    "google.genai",
    "cohere",
    "botocore",
    "aiobotocore",
    "mcp",
)


def test_supported_names() -> None:
    assert ALL_SUPPORTED_INSTRUMENTS == [
        "openai",
        "anthropic",
        "litellm",
        "gemini",
        "bedrock",
        "cohere",
        "mcp",
    ]
    for name in ALL_SUPPORTED_INSTRUMENTS:
        instrumentor = get_instrumentor(name)
        assert instrumentor.name == name
        assert get_instrumentor(name) is instrumentor
    with pytest.raises(ValueError, match="unknown instrument 'mistral'"):
        get_instrumentor("mistral")


def test_importing_dexcost_and_checking_availability_imports_no_sdk() -> None:
    code = (
        "import sys, dexcost, dexcost.instrument as i\n"
        "assert all(i.get_instrumentor(n).is_available() for n in i.ALL_SUPPORTED_INSTRUMENTS)\n"
        f"print(sorted(m for m in {SDK_MODULES!r} if m in sys.modules))\n"
    )
    src = Path(dexcost.__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src), "PATH": ""},
    )
    assert out.stdout.strip() == "[]"


def test_init_instruments_every_installed_sdk_and_close_restores_them(tmp_path: Path) -> None:
    import botocore.client
    import openai

    create = vars(openai.resources.chat.completions.completions.Completions)["create"]
    make_api_call = vars(botocore.client.BaseClient)["_make_api_call"]
    dexcost.init(buffer_path=str(tmp_path / "all.db"), track_http=False)
    tracker = dexcost.get_tracker()
    assert tracker is not None
    assert tracker.instrumented == frozenset(ALL_SUPPORTED_INSTRUMENTS)
    assert vars(botocore.client.BaseClient)["_make_api_call"] is not make_api_call
    dexcost.close()
    assert all(not get_instrumentor(n).is_instrumented for n in ALL_SUPPORTED_INSTRUMENTS)
    assert vars(openai.resources.chat.completions.completions.Completions)["create"] is create
    assert vars(botocore.client.BaseClient)["_make_api_call"] is make_api_call


def test_init_instruments_aiobotocore_with_bedrock_and_close_restores_it(tmp_path: Path) -> None:
    client = pytest.importorskip("aiobotocore.client", reason="aiobotocore is not installed")
    make_api_call_async = vars(client.AioBaseClient)["_make_api_call"]
    dexcost.init(buffer_path=str(tmp_path / "aio.db"), auto_instrument=["bedrock"])
    assert vars(client.AioBaseClient)["_make_api_call"] is not make_api_call_async
    dexcost.close()
    assert vars(client.AioBaseClient)["_make_api_call"] is make_api_call_async


def test_init_patches_an_sdk_only_when_the_program_imports_it(tmp_path: Path) -> None:
    code = (
        "import sys, dexcost\n"
        f"dexcost.init(buffer_path={str(tmp_path / 'lazy.db')!r}, track_http=False)\n"
        "print(sorted(dexcost.get_tracker().instrumented))\n"
        f"print(sorted(m for m in {SDK_MODULES!r} if m in sys.modules))\n"
        "from openai.resources.chat.completions.completions import Completions\n"
        "print(hasattr(vars(Completions)['create'], '_self_dexcost_patch'))\n"
        "dexcost.close()\n"
        "print(hasattr(vars(Completions)['create'], '_self_dexcost_patch'))\n"
    )
    src = Path(dexcost.__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src), "PATH": "", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    lines = out.stdout.split("\n")
    assert lines[0] == str(sorted(ALL_SUPPORTED_INSTRUMENTS))
    assert lines[1] == "[]"  # init() imported none of them
    assert lines[2:4] == ["True", "False"]  # patched on import, restored


@pytest.mark.parametrize(
    "before", ["", "import botocore.client", "import botocore.client; init(); dexcost.close()"]
)
def test_aiobotocore_is_patched_when_the_program_imports_it(tmp_path: Path, before: str) -> None:
    # Part of "bedrock": patched on import, whether botocore was imported before init() or
    # with aiobotocore, also after an earlier init() and close(); removed with the rest.
    pytest.importorskip("aiobotocore")
    code = (
        "import sys, dexcost\n"
        f"def init(): dexcost.init(buffer_path={str(tmp_path / 'aio.db')!r},"
        " auto_instrument=['bedrock'], track_http=False)\n"
        f"{before}\n"
        "init()\n"
        "print('aiobotocore' in sys.modules)\n"
        "from aiobotocore.session import get_session\n"
        "from aiobotocore.client import AioBaseClient as C\n"
        "print(hasattr(vars(C)['_make_api_call'], '_self_dexcost_patch'))\n"
        "dexcost.close()\n"
        "print(hasattr(vars(C)['_make_api_call'], '_self_dexcost_patch'))\n"
    )
    src = Path(dexcost.__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src), "PATH": ""},
    )
    assert out.stdout.split("\n")[:3] == ["False", "True", "False"]


def test_init_with_an_empty_list_patches_nothing(tmp_path: Path) -> None:
    dexcost.init(buffer_path=str(tmp_path / "none.db"), auto_instrument=[], track_http=False)
    tracker = dexcost.get_tracker()
    assert tracker is not None
    assert tracker.instrumented == frozenset()


class _Absent(Instrumentor):
    name = "absent"
    import_name = "dexcost_no_such_sdk"
    pip_name = "dexcost-no-such-sdk"

    def _install(self) -> None:
        raise AssertionError("never reached")


def test_a_missing_sdk_asked_for_explicitly_names_the_install_command(
    tracker: dexcost.CostTracker,
) -> None:
    absent = _Absent()
    assert absent.is_available() is False
    with pytest.raises(ModuleNotFoundError, match=r"pip install dexcost-no-such-sdk"):
        absent.instrument(tracker)
    assert absent.is_instrumented is False


def test_the_guard_returns_the_fallback_and_logs_each_site_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(x: int) -> int:
        raise ValueError(x)

    with caplog.at_level(logging.DEBUG, logger="dexcost"):
        assert _guard.call("site.a", -1, broken, 1) == -1
        assert _guard.call("site.a", -2, broken, 2) == -2
        assert _guard.call("site.b", -3, broken, 3) == -3
        assert _guard.call("site.b", 0, lambda: 7) == 7
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(" in ")[1].split(";")[0] for r in warnings] == [
        "site.a",
        "site.b",
    ]
    assert [(site, exc.args) for site, exc in _guard.swallowed()] == [
        ("site.a", (1,)),
        ("site.a", (2,)),
        ("site.b", (3,)),
    ]
    _guard.clear()
    assert _guard.swallowed() == []


def test_a_stream_observer_records_once_whoever_finishes_it() -> None:
    records: list[int] = []

    class Counting(StreamObserver):
        __slots__ = ()

        def record(self) -> None:
            records.append(1)

    for _ in range(50):
        observer = Counting(0)
        barrier = threading.Barrier(4)

        def finish(o: Any = observer, b: Any = barrier) -> None:
            b.wait()
            o.finish()

        threads = [threading.Thread(target=finish) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(records) == 50
