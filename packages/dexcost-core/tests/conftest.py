"""Fixtures for the core tests: an initialised SDK on a real SQLite file per test."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
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
