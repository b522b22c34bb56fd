"""Fixtures for the core tests: an initialised SDK on a real SQLite file per test."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dexcost


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own store file and leaves no global tracker behind."""
    monkeypatch.setenv("DEXCOST_BUFFER_PATH", str(tmp_path / "dexcost.db"))
    for var in ("DEXCOST_API_KEY", "DEXCOST_ENV", "DEXCOST_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    yield
    dexcost.close()
    dexcost.clear_context()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dexcost.db"


@pytest.fixture
def sdk(db_path: Path) -> dexcost.CostTracker:
    """dexcost initialised locally with no provider patching."""
    dexcost.init(buffer_path=str(db_path), auto_instrument=[], track_http=False)
    tracker = dexcost.get_tracker()
    assert tracker is not None
    return tracker


@pytest.fixture
def read(db_path: Path) -> Any:
    """``read(sql, *params)``: flush the SDK, then query the store file with plain sqlite3."""

    def query(sql: str, *params: Any) -> list[sqlite3.Row]:
        dexcost.flush()
        con = sqlite3.connect(db_path)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    return query


@pytest.fixture
def child_exit_code() -> Callable[[int, float, str], int]:
    """``child_exit_code(pid, timeout, what)``: a forked child's exit code; a child still
    running after ``timeout`` seconds is killed and the test fails with "the forked child
    hung on ``what``"."""

    def wait(pid: int, timeout: float, what: str) -> int:
        deadline = time.monotonic() + timeout
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung on {what}")
        return os.waitstatus_to_exitcode(done[1])

    return wait
