"""The examples run as a user would run them, and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    src = [
        ROOT / "packages" / "dexcost-core" / "src",
        ROOT / "packages" / "dexcost-langchain" / "src",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, src))}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_prints_the_report_of_its_day(tmp_path: Path) -> None:
    out = run_example("agent_day.py", "--db", str(tmp_path / "demo.db"))
    for heading in ("Total spend", "Spend by customer", "Spend by task type", "Retries"):
        assert heading in out
    assert "acme-corp" in out
    assert "generate_report" in out
    assert "llama-3.1-70b-internal" in out  # the unpriced model is called out, not hidden
    assert (tmp_path / "demo.db").is_file()


def test_langchain_example_prints_costs_by_task() -> None:
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    out = run_example("langchain_support_agent.py")
    assert "$" in out
