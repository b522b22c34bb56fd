"""Several processes, forks and interpreter exit: nothing is lost, nothing corrupted."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dexcost.store

SRC = str(Path(dexcost.store.__file__).resolve().parents[2])

PRELUDE = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime, timezone
    from decimal import Decimal
    from dexcost._ids import uuid7
    from dexcost._models import Event
    from dexcost.store import get_store

    def event(tag, i, task_id):
        return Event(
            event_id=uuid7(), task_id=task_id, event_type="llm_call",
            cost_usd=Decimal("0.000001") * (i + 1), cost_confidence="computed",
            pricing_source="litellm", occurred_at=datetime.now(timezone.utc),
            customer_id=tag, details={"i": i},
        )
    """
)


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], expect_rc: int = 0) -> None:
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == expect_rc, err


def counts(path: Path) -> dict[str, tuple[int, int, int]]:
    """Per tag: rows, distinct sequence numbers, and their sum."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT customer_id, count(*), count(DISTINCT json_extract(details, '$.i')),"
            " sum(json_extract(details, '$.i')) FROM events GROUP BY customer_id"
        ).fetchall()
    finally:
        conn.close()
    return {tag: (n, distinct, total) for tag, n, distinct, total in rows}


def expected(n: int) -> tuple[int, int, int]:
    return n, n, n * (n - 1) // 2


WRITER = """
path, tag, rounds, per_round = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = get_store(path)
task = uuid7()
i = 0
for _ in range(rounds):
    for _ in range(per_round):
        store.put_event(event(tag, i, task))
        i += 1
    assert store.flush(timeout=120)
"""


@pytest.mark.slow
def test_two_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    # Many small transactions from both sides at once, so they contend for the lock.
    procs = [run_python(WRITER, str(path), tag, "150", "100") for tag in ("a", "b")]
    for proc in procs:
        finish(proc)
    assert counts(path) == {"a": expected(15_000), "b": expected(15_000)}


def test_exit_right_after_flush_has_everything_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    code = """
    store = get_store(sys.argv[1])
    task = uuid7()
    for i in range(3000):
        store.put_event(event("x", i, task))
    assert store.flush()
    os._exit(0)  # no atexit, no cleanup of any kind
    """
    finish(run_python(code, str(path)))
    assert counts(path) == {"x": expected(3000)}


@pytest.mark.parametrize(
    ("ending", "rc"),
    [("pass", 0), ("raise SystemExit(3)", 3), ("raise RuntimeError('boom')", 1)],
)
def test_exit_without_flush_writes_everything(tmp_path: Path, ending: str, rc: int) -> None:
    path = tmp_path / "d.db"
    code = f"""
    store = get_store(sys.argv[1])
    task = uuid7()
    for i in range(20000):
        store.put_event(event("x", i, task))
    {ending}
    """
    finish(run_python(code, str(path)), expect_rc=rc)
    assert counts(path) == {"x": expected(20000)}


def test_records_put_after_close_reopen_the_store_until_exit(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    code = """
    import atexit, threading
    store = get_store(sys.argv[1])
    store.close()
    task = uuid7()
    for i in range(5000):  # a new writer takes them
        store.put_event(event("x", i, task))
    # A record put by an exit handler that runs after dexcost's own: written at once.
    from dexcost.store._store import close_at_exit
    atexit.unregister(close_at_exit)
    atexit.register(lambda: store.put_event(event("late", 0, task)))
    atexit.register(close_at_exit)
    """
    finish(run_python(code, str(path)))
    assert counts(path) == {"x": expected(5000), "late": expected(1)}


def _mp_child(path: str) -> None:
    import uuid as _uuid
    from datetime import datetime, timezone
    from decimal import Decimal

    from dexcost._models import Event
    from dexcost.store import get_store

    store = get_store(path)
    task = _uuid.uuid4()
    for i in range(5000):
        store.put_event(
            Event(
                event_id=_uuid.uuid4(),
                task_id=task,
                event_type="external_cost",
                cost_usd=Decimal("0.01"),
                cost_confidence="exact",
                pricing_source="manual",
                occurred_at=datetime.now(timezone.utc),
                customer_id="child",
                details={"i": i},
            )
        )
    # No flush: multiprocessing ends the child with os._exit, skipping atexit.


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_multiprocessing_fork_child_without_flush_writes_everything(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    parent = dexcost.store.get_store(path)  # the parent's writer thread is running
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_mp_child, args=(str(path),))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    parent.close()
    assert counts(path) == {"child": expected(5000)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_forked_child_gets_its_own_writer(tmp_path: Path) -> None:
    from datetime import datetime, timezone
    from decimal import Decimal

    from dexcost._ids import uuid7
    from dexcost._models import Event

    def event(tag: str, i: int) -> Event:
        return Event(
            event_id=uuid7(),
            task_id=uuid7(),
            event_type="llm_call",
            cost_usd=Decimal("0.001"),
            cost_confidence="computed",
            pricing_source="litellm",
            occurred_at=datetime.now(timezone.utc),
            customer_id=tag,
            details={"i": i},
        )

    path = tmp_path / "d.db"
    store = dexcost.store.get_store(path)
    for i in range(2000):  # probably still queued at the fork: the parent's to write
        store.put_event(event("parent", i))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            for i in range(2000):
                store.put_event(event("child", i))
            code = 0 if store.flush(timeout=60) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.flush(timeout=60)
    assert counts(path) == {"child": expected(2000), "parent": expected(2000)}
    store.close()


def test_a_store_created_by_another_process_mid_open_is_not_called_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process B creates the file between process A reading version 0 and looking for
    tables: A must open it as the dexcost store it is."""
    from dexcost.store import _connect

    path = tmp_path / "race.db"
    _connect.open_write_connection(path).close()  # "process B" finished creating it
    real = _connect.read_version
    calls = {"n": 0}

    def stale_first(conn: sqlite3.Connection) -> int:
        calls["n"] += 1
        return 0 if calls["n"] == 1 else real(conn)  # A's first read predates B's commit

    monkeypatch.setattr(_connect, "read_version", stale_first)
    _connect.open_write_connection(path).close()
