"""The dexcost command on a seeded store, checked against plain Python over the raw rows."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

import dexcost.store
from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost.cli import main
from dexcost.store import LocalStore

UTC = timezone.utc
NOW = datetime.now(UTC)
SRC = str(Path(dexcost.store.__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with 60 days of activity: nested tasks, retries, unpriced calls, no customer."""
    rng = random.Random(20261122)
    path = tmp_path_factory.mktemp("cli") / "dexcost.db"
    store = LocalStore(path)
    for n in range(120):
        started = NOW - timedelta(days=rng.uniform(0, 60))
        customer = rng.choice([None, "acme", "globex", "initech", "umbrella"])
        root = Task(
            task_id=uuid7(),
            task_type=rng.choice(["resolve_ticket", "generate_report"]),
            started_at=started,
            customer_id=customer,
            status=rng.choice(["success", "success", "failed"]),
            ended_at=started + timedelta(seconds=rng.uniform(0.2, 400)),
            metadata={"n": n},
        )
        family = [root]
        if n % 3 == 0:
            family.append(
                Task(
                    task_id=uuid7(),
                    task_type="lookup",
                    started_at=started + timedelta(seconds=1),
                    customer_id=customer,
                    parent_task_id=root.task_id,
                    status="success",
                )
            )
        for _ in range(rng.randrange(0, 8)):
            task = rng.choice(family)
            unknown = rng.random() < 0.1
            retry = rng.random() < 0.15
            cost = Decimal(rng.randrange(0, 5_000_000)).scaleb(-9)
            event = Event(
                event_id=uuid7(),
                task_id=task.task_id,
                event_type="llm_call",
                cost_usd=Decimal(0) if unknown else cost,
                cost_confidence="unknown" if unknown else "computed",
                pricing_source="unknown" if unknown else "litellm",
                occurred_at=task.started_at + timedelta(seconds=rng.uniform(0, 5)),
                provider="openai",
                model="gpt-9-preview" if unknown else "gpt-4o",
                input_tokens=rng.randrange(10, 5000),
                output_tokens=rng.randrange(1, 900),
                is_retry=retry,
                retry_reason=rng.choice(["rate_limit", "timeout", None]) if retry else None,
                customer_id=customer,
                task_type=task.task_type,
                details={"attempt": 2} if retry else {},
            )
            store.put_event(event)
            for t in [task, root] if task is not root else [root]:
                t.total_cost_usd += event.cost_usd
                t.event_count += 1
                t.retry_count += retry
                t.retry_cost_usd += event.cost_usd if retry else 0
        for t in family:
            store.put_task(t)
    store.close()
    return path


def raw(db: Path, table: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def since(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pct(part: Decimal, whole: Decimal) -> str | None:
    if not whole:
        return None
    return str((part * 100 / whole).quantize(Decimal("0.01"), ROUND_HALF_EVEN))


def test_report_json_matches_python_over_the_raw_rows(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = since(30)
    code, out, _ = run(capsys, "report", "--db", str(db), "--json", "--since", start)
    assert code == 0
    got = json.loads(out)
    bound = start + ".000000Z"
    events = [e for e in raw(db, "events") if e["occurred_at"] >= bound]
    tasks = [t for t in raw(db, "tasks") if t["started_at"] >= bound]
    roots = [t for t in tasks if t["parent_task_id"] is None]
    total = sum((Decimal(e["cost_usd"]) for e in events), Decimal(0))

    assert Decimal(got["total_spend_usd"]) == total
    assert got["event_count"] == len(events)
    assert got["task_count"] == len(roots)
    assert got["failed_task_count"] == sum(t["status"] == "failed" for t in roots)
    avg = (total / len(roots)).quantize(Decimal("1e-12"), ROUND_HALF_EVEN)
    assert Decimal(got["avg_cost_per_task_usd"]) == avg

    spend: dict[Any, Decimal] = defaultdict(Decimal)
    retry: dict[Any, Decimal] = defaultdict(Decimal)
    for e in events:
        spend[e["customer_id"]] += Decimal(e["cost_usd"])
        retry[e["customer_id"]] += Decimal(e["cost_usd"]) if e["is_retry"] else 0
    root_count: dict[Any, int] = defaultdict(int)
    for t in roots:
        root_count[t["customer_id"]] += 1
    assert {
        c["customer_id"]: (Decimal(c["spend_usd"]), c["share_pct"], c["task_count"])
        for c in got["by_customer"]
    } == {k: (v, pct(v, total), root_count[k]) for k, v in spend.items()}
    assert {c["customer_id"]: Decimal(c["retry_cost_usd"]) for c in got["by_customer"]} == retry

    runs: dict[str, list[Decimal]] = defaultdict(list)
    for t in tasks:
        runs[t["task_type"]].append(Decimal(t["total_cost_usd"]))
    assert {
        t["task_type"]: (t["runs"], Decimal(t["avg_cost_per_run_usd"])) for t in got["by_task_type"]
    } == {
        k: (len(v), (sum(v) / len(v)).quantize(Decimal("1e-12"), ROUND_HALF_EVEN))
        for k, v in runs.items()
    }

    retried = [e for e in events if e["is_retry"]]
    retry_total = sum((Decimal(e["cost_usd"]) for e in retried), Decimal(0))
    assert got["retries"]["event_count"] == len(retried)
    assert Decimal(got["retries"]["cost_usd"]) == retry_total
    assert got["retries"]["pct_of_spend"] == pct(retry_total, total)
    by_reason: dict[Any, Decimal] = defaultdict(Decimal)
    for e in retried:
        by_reason[e["retry_reason"]] += Decimal(e["cost_usd"])
    assert {r["reason"]: Decimal(r["cost_usd"]) for r in got["retries"]["by_reason"]} == by_reason

    unknown = [e for e in events if e["cost_confidence"] == "unknown"]
    assert got["unknown_cost"]["event_count"] == len(unknown) > 0
    assert got["unknown_cost"]["input_tokens"] == sum(e["input_tokens"] for e in unknown)
    assert [(m["model"], m["event_count"]) for m in got["unknown_cost"]["models"]] == [
        ("gpt-9-preview", len(unknown))
    ]


def test_report_text_shows_the_figures(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "--db", str(db), "--since", "90d")
    assert code == 0
    events = raw(db, "events")
    total = sum((Decimal(e["cost_usd"]) for e in events), Decimal(0))
    shown = total.quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    assert f"Total spend         ${shown:,f}".rstrip("0") in out
    assert "Spend by customer" in out
    assert "(none)" in out  # the unattributed spend is shown, not dropped
    assert "gpt-9-preview" in out
    assert "NOT in the totals" in out
    assert "rate_limit" in out


def test_tasks_json_filters_and_orders(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "tasks",
        "--db",
        str(db),
        "--json",
        "--customer",
        "acme",
        "--type",
        "resolve_ticket",
        "--status",
        "success",
        "--limit",
        "0",
    )
    assert code == 0
    got = json.loads(out)["tasks"]
    want = sorted(
        (
            t
            for t in raw(db, "tasks")
            if (t["customer_id"], t["task_type"], t["status"])
            == ("acme", "resolve_ticket", "success")
        ),
        key=lambda t: (t["started_at"], t["task_id"]),
        reverse=True,
    )
    assert [t["task_id"] for t in got] == [t["task_id"] for t in want]
    assert [t["total_cost_usd"] for t in got] == [str(Decimal(t["total_cost_usd"])) for t in want]
    assert all(t["started_at"].endswith("Z") for t in got)


def test_tasks_table_lists_the_newest_first(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "--db", str(db), "--limit", "5", "--roots")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["STARTED", "(UTC)", "TYPE"]
    assert len(lines) == 6
    newest = max(
        (t for t in raw(db, "tasks") if t["parent_task_id"] is None),
        key=lambda t: t["started_at"],
    )
    assert newest["task_id"] in lines[1]


@pytest.mark.parametrize("what", ["events", "tasks"])
def test_export_csv_has_every_column_exactly(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    target = tmp_path / f"{what}.csv"
    code, _, err = run(
        capsys, "export", "--db", str(db), "--what", what, "--format", "csv", "-o", str(target)
    )
    assert code == 0
    rows = raw(db, what)
    assert f"wrote {len(rows)}" in err
    with target.open(newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert list(exported[0]) == list(rows[0])
    key = "event_id" if what == "events" else "task_id"
    by_key = {r[key]: r for r in rows}
    for line in exported:
        stored = by_key[line[key]]
        assert line == {k: "" if v is None else str(v) for k, v in stored.items()}


def test_export_jsonl_keeps_types(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "--db", str(db), "--since", "7d")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    stored = {
        e["event_id"]: e for e in raw(db, "events") if e["occurred_at"] >= since(7) + ".000000Z"
    }
    assert {e["event_id"] for e in lines} == set(stored)
    for e in lines:
        s = stored[e["event_id"]]
        assert e["cost_usd"] == s["cost_usd"]  # the exact decimal text
        assert e["is_retry"] is bool(s["is_retry"])
        assert e["details"] == json.loads(s["details"])
    times = [e["occurred_at"] for e in lines]
    assert times == sorted(times)


def test_default_store_comes_from_the_environment(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEXCOST_BUFFER_PATH", str(db))
    code, out, _ = run(capsys, "tasks", "--json", "--limit", "1")
    assert code == 0
    assert len(json.loads(out)["tasks"]) == 1


def test_missing_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing-here.db"
    for command in ("tasks", "report", "export"):
        code, out, err = run(capsys, command, "--db", str(missing))
        assert code == 2
        assert out == ""
        assert str(missing) in err
        assert "--db PATH" in err
    assert not missing.exists()


def test_store_from_a_newer_dexcost_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "future.db"
    LocalStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    code, _, err = run(capsys, "report", "--db", str(path))
    assert code == 2
    assert "upgrade dexcost" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--since", "yesterday"],
        ["tasks", "--status", "done"],
        ["tasks", "--limit", "-1"],
        ["export", "--format", "xml"],
        [],
    ],
)
def test_usage_errors_exit_2(db: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv, *(["--db", str(db)] if argv else []))
    assert code == 2
    assert out == ""
    assert err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "--help")
    assert code == 0
    assert "--since" in out


def test_module_entry_point_and_a_closed_pipe(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-m", "dexcost.cli", "report", "--db", str(db), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "total_spend_usd" in json.loads(done.stdout)
    # A reader that stops early (``| head -1``) gets no traceback on stderr.
    proc = subprocess.Popen(
        [sys.executable, "-m", "dexcost.cli", "export", "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert json.loads(first)["event_id"]
    assert "Traceback" not in err


def test_csv_to_stdout_round_trips(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "--db", str(db), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(raw(db, "events"))
