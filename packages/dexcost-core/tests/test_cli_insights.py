"""The insight commands of ``dexcost``: each view, statements, reconcile, revenue, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from dexcost.cli import main
from dexcost.insights import (
    Period,
    cost_health,
    customer_report,
    find_anomalies,
    task_type_report,
    to_jsonable,
)
from dexcost.store import connect_readonly

DATA = Path(__file__).parent / "data" / "invoices"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "demo.db"
    code = main(["demo-data", "--db", str(path), "--days", "30", "--tasks-per-day", "120",
                 "--customers", "10", "--anomalies"])  # fmt: skip
    assert code == 0
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def conn(db: Path) -> Iterator[Any]:
    with closing(connect_readonly(db)) as c:
        yield c


def test_views_in_json_are_the_library_results(
    db: Path, conn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    period = Period.parse("2026-01-01")
    for view, result in (
        ("health", cost_health(conn, period)),
        ("customers", customer_report(conn, period)),
        ("tasks", task_type_report(conn, period)),
    ):
        code, out, _ = run(capsys, "report", view, "--db", str(db), "--since", "2026-01-01",
                           "--json")  # fmt: skip
        assert code == 0
        assert json.loads(out) == json.loads(json.dumps(to_jsonable(result)))


def test_each_view_reads_well(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "overview", "--db", str(db), "--since", "7d")
    assert code == 0
    assert "Cost efficiency" in out
    assert "vs previous period" in out
    code, out, _ = run(capsys, "report", "health", "--db", str(db))
    assert code == 0
    assert "Verdict:" in out
    assert "rate_limit" in out
    assert "█" in out
    code, out, _ = run(capsys, "report", "customers", "--db", str(db), "--top", "3")
    assert code == 0
    assert "Pareto" in out
    assert "●" in out
    assert "top 3 of 10" in out
    assert "no revenue imported" in out
    code, out, _ = run(capsys, "report", "customer", "cust-001", "--db", str(db))
    assert code == 0
    assert "Cost by task type" in out
    assert "Recent tasks" in out
    code, out, _ = run(capsys, "report", "tasks", "--db", str(db), "--tz", "Europe/Paris")
    assert code == 0
    assert "P95" in out
    assert "Retry lineage" in out
    code, out, _ = run(capsys, "report", "--db", str(db))  # the spend report, as before
    assert code == 0
    assert out.startswith("dexcost report:")


def test_anomalies_view_and_dry_run(
    db: Path, conn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "report", "anomalies", "--db", str(db))
    assert code == 0
    found = find_anomalies(conn)
    assert len(found.anomalies) == 3
    for a in found.anomalies:
        assert a.summary in out
    code, out, _ = run(capsys, "report", "anomalies", "--db", str(db), "--dry-run", "--json")
    payload = json.loads(out)
    assert code == 0
    assert payload["dry_run"] is True
    assert len(payload["sent"]) == 3
    assert payload["payload"]["blocks"][0]["type"] == "header"


def test_customer_view_needs_an_id(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "report", "customer", "--db", str(db))
    assert code == 2
    assert "needs a customer id" in err
    code, _, err = run(capsys, "report", "overview", "--db", str(db), "--tz", "Mars/Olympus")
    assert code == 2
    assert "unknown time zone" in err


def test_statement_commands(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with closing(connect_readonly(db)) as c:
        month = c.execute("SELECT substr(min(day), 1, 7) FROM event_days").fetchone()[0]
    code, out, _ = run(capsys, "statement", "--month", month, "--db", str(db))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert rows
    assert rows[0]["month"] == month
    pdf = tmp_path / "s.pdf"
    code, _, err = run(capsys, "statement", "--month", month, "--customer", "cust-000",
                       "--format", "pdf", "-o", str(pdf), "--db", str(db))  # fmt: skip
    assert code == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert str(pdf) in err
    code, _, err = run(capsys, "statement", "--month", "2026-13", "--db", str(db))
    assert code == 2
    assert "not a month" in err


def test_revenue_adjust_and_margins(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    revenue = tmp_path / "revenue.csv"
    revenue.write_text("customer,period,amount,currency\ncust-000,2026-11,0.01,USD\n")
    code, out, _ = run(capsys, "revenue", "import", str(revenue), "--db", str(copy))
    assert code == 0
    assert "1 new" in out
    code, out, _ = run(capsys, "report", "customers", "--db", str(copy), "--since", "2026-11-01",
                       "--until", "2026-11-30")  # fmt: skip
    assert code == 0
    assert "LOSS" in out
    assert "Costs more than it pays: cust-000" in out
    revenue.write_text("customer,period,amount\ncust-000,soon,1\n")
    code, _, err = run(capsys, "revenue", "import", str(revenue), "--db", str(copy))
    assert code == 2
    assert "line 2" in err
    code, out, _ = run(capsys, "adjust", "--month", "2026-11", "--amount", "-5", "--note",
                       "Goodwill credit", "--customer", "cust-000", "--db", str(copy))  # fmt: skip
    assert code == 0
    assert "Goodwill credit" in out
    code, out, _ = run(capsys, "adjust", "--month", "2026-11", "--amount", "lots", "--note",
                       "x", "--db", str(copy))  # fmt: skip
    assert code == 2


def test_reconcile_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    assert main(["demo-data", "--db", str(db), "--days", "3", "--tasks-per-day", "5"]) == 0
    capsys.readouterr()
    invoice = str(DATA / "openai_costs_api.json")
    code, out, err = run(capsys, "reconcile", invoice, "--provider", "openai", "--db", str(db))
    assert code == 0
    assert "19 new lines" in err
    assert "Variance" in out
    assert "likely cause: missing events" in out
    code, out, err = run(capsys, "reconcile", invoice, "--provider", "openai", "--db", str(db),
                         "--json")  # fmt: skip
    assert code == 0
    assert "19 already imported" in err
    data = json.loads(out)
    assert data["provider"] == "openai"
    assert len(data["lines"]) == 11
    code, out, _ = run(capsys, "reconcile", "--provider", "openai", "--db", str(db))
    assert code == 0
    assert "dexcost reconcile openai" in out
    code, _, err = run(capsys, "reconcile", invoice, "--provider", "aws", "--db", str(db))
    assert code == 2
    assert "Cost and Usage Report" in err


def test_export_focus(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "focus.csv"
    code, _, err = run(capsys, "export", "--format", "focus", "-o", str(target), "--db", str(db))
    assert code == 0
    assert "FOCUS rows" in err
    with target.open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    assert rows[0]["BillingCurrency"] == "USD"
    code, _, err = run(capsys, "export", "--format", "focus", "--what", "tasks", "--db", str(db))
    assert code == 2
    assert "--what events" in err
