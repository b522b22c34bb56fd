"""Revenue and margins, monthly statements (CSV and PDF), and the FOCUS export."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

from dexcost.insights import (
    FOCUS_COLUMNS,
    Period,
    RevenueImportError,
    add_adjustment,
    customer_report,
    import_revenue,
    monthly_statement,
    parse_revenue_csv,
    statement_csv,
    statement_pdf,
    write_focus,
)
from dexcost.insights._workload import Workload, generate, write
from dexcost.store import LocalStore, connect_readonly
from dexcost.store._connect import open_write_connection

UTC = timezone.utc
NOW = datetime(2026, 11, 12, 9, 30, tzinfo=UTC)
D = Decimal


@pytest.fixture(scope="module")
def work() -> Workload:
    return generate(seed=21, days=45, tasks_per_day=30, customers=6, end=NOW)


@pytest.fixture
def db(work: Workload, tmp_path: Path) -> Path:
    path = tmp_path / "dexcost.db"
    store = LocalStore(path)
    write(work, store)
    store.close()
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[Any]:
    with closing(connect_readonly(db)) as c:
        yield c


REVENUE = """customer,period,amount,currency
cust-000,2026-10,"1,200.00",USD
cust-001,2026-10,1.00,USD
cust-002,2026-10-01..2026-10-15,300,USD
cust-003,2026-10,500,EUR
"""


def inside(p: Period, when: datetime) -> bool:
    return (p.start is None or when >= p.start) and (p.end is None or when < p.end)


# --- revenue ------------------------------------------------------------------------------


def test_revenue_csv_is_checked_line_by_line() -> None:
    rows = parse_revenue_csv(REVENUE)
    assert [r.amount for r in rows] == [D("1200.00"), D("1.00"), D(300), D(500)]
    assert rows[2].end.isoformat() == "2026-10-16"
    assert rows[3].currency == "EUR"
    bad = "customer,period,amount\n,2026-10,5\nacme,October,5\nacme,2026-10,five\n"
    with pytest.raises(RevenueImportError) as info:
        parse_revenue_csv(bad)
    message = str(info.value)
    assert "line 2" in message
    assert "line 3" in message
    assert "line 4" in message
    with pytest.raises(RevenueImportError, match="missing: amount"):
        parse_revenue_csv("customer,period\nacme,2026-10\n")


def test_margins_with_revenue(db: Path, work: Workload) -> None:
    with closing(open_write_connection(db)) as w:
        first = import_revenue(w, parse_revenue_csv(REVENUE), source="r.csv")
        again = import_revenue(w, parse_revenue_csv(REVENUE), source="r.csv")
    assert (first.added, first.replaced) == (4, 0)
    assert (again.added, again.replaced) == (0, 4)  # replaced, never doubled
    october = Period.month("2026-10")
    with closing(connect_readonly(db)) as conn:
        rep = customer_report(conn, october)
        half = customer_report(conn, Period.parse("2026-10-01", "2026-10-10"))
    cost: dict[str | None, Decimal] = defaultdict(Decimal)
    for e in work.events:
        if inside(october, e.occurred_at):
            cost[e.customer_id] += e.cost_usd
    got = {c.customer_id: c for c in rep.customers}
    assert rep.has_revenue
    assert got["cust-000"].revenue_usd == D("1200.00")
    assert got["cust-000"].margin_usd == D(1200) - cost["cust-000"]
    assert got["cust-000"].unprofitable is False
    assert got["cust-001"].margin_usd == D(1) - cost["cust-001"]
    assert got["cust-001"].unprofitable is True
    assert got["cust-002"].revenue_usd == D(300)  # its period lies inside October
    assert got["cust-003"].revenue_usd is None
    assert got["cust-003"].margin_usd is None
    assert rep.revenue_note is not None
    assert "cust-003 (EUR)" in rep.revenue_note
    assert got["cust-004"].revenue_usd is None
    assert got["cust-004"].unprofitable is None
    assert rep.unprofitable_count == sum(1 for c in rep.customers if c.unprofitable)
    # Ten days of a 31-day month get 10/31 of its revenue; 10 of 15 days of cust-002's.
    part = {c.customer_id: c for c in half.customers}
    assert part["cust-000"].revenue_usd == (D(1200) * 10 / 31).quantize(D("1e-12"), ROUND_HALF_EVEN)
    assert part["cust-002"].revenue_usd == D(200)


# --- statements ---------------------------------------------------------------------------


def test_statement_matches_the_events(conn: Any, work: Workload) -> None:
    month = Period.month("2026-10", tz="Europe/Berlin")
    st = monthly_statement(conn, "2026-10", customer_id="cust-001", tz="Europe/Berlin", now=NOW)
    events = [
        e for e in work.events if e.customer_id == "cust-001" and inside(month, e.occurred_at)
    ]
    priced = [e for e in events if e.cost_confidence != "unknown"]
    assert st.usage_usd == sum((e.cost_usd for e in events), D(0))
    by_line: dict[tuple[str | None, str | None], Decimal] = defaultdict(Decimal)
    for e in priced:
        key = (e.provider, e.model) if e.event_type == "llm_call" else (e.service_name, None)
        by_line[key] += e.cost_usd
    assert sum((x.amount_usd for x in st.lines), D(0)) == st.usage_usd
    assert len(st.lines) == len(by_line)
    assert {x.service for x in st.lines} >= {"OpenAI", "Anthropic", "Pinecone"}
    roots = [
        t
        for t in work.tasks
        if t.customer_id == "cust-001" and t.parent_task_id is None and inside(month, t.started_at)
    ]
    assert st.task_count == len(roots)
    assert st.retry_cost_usd == sum((e.cost_usd for e in events if e.is_retry), D(0))
    assert st.adjustments == ()
    assert st.total_usd == st.usage_usd


def test_statement_with_adjustments_as_csv(db: Path) -> None:
    with closing(open_write_connection(db)) as w:
        add_adjustment(w, "2026-10", D("-12.50"), "Credit for the outage", customer_id="cust-000")
        add_adjustment(w, "2026-10", D("3"), "Support plan")
        with pytest.raises(ValueError, match="description"):
            add_adjustment(w, "2026-10", D(1), "  ")
        with pytest.raises(ValueError, match="YYYY-MM"):
            add_adjustment(w, "2026-13", D(1), "x")
    with closing(connect_readonly(db)) as conn:
        mine = monthly_statement(conn, "2026-10", customer_id="cust-000", now=NOW)
        everyone = monthly_statement(conn, "2026-10", now=NOW)
    assert mine.adjustments_usd == D("-12.50")
    assert mine.total_usd == mine.usage_usd - D("12.50")
    assert everyone.adjustments_usd == D("-9.50")
    rows = list(csv.DictReader(io.StringIO(statement_csv(mine))))
    assert tuple(rows[0]) == ("month", "customer", "section", "item", "detail", "quantity",
                              "unit", "amount_usd")  # fmt: skip
    usage = [r for r in rows if r["section"] == "usage"]
    assert sum((D(r["amount_usd"]) for r in usage), D(0)) == mine.usage_usd
    (total,) = [r for r in rows if r["section"] == "total"]
    assert D(total["amount_usd"]) == mine.total_usd
    (adj,) = [r for r in rows if r["section"] == "adjustment"]
    assert adj["item"] == "Credit for the outage"
    assert adj["amount_usd"] == "-12.50"


def pdf_text(data: bytes) -> str:
    """The text shown by a PDF we wrote (Flate streams, literal strings)."""
    shown = []
    for stream in re.findall(rb"stream\n(.*?)\nendstream", data, re.S):
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", zlib.decompress(stream)):
            shown.append(re.sub(rb"\\(.)", rb"\1", literal).decode("cp1252"))
    return "\n".join(shown)


def test_statement_pdf_is_a_valid_file(conn: Any) -> None:
    st = monthly_statement(conn, "2026-10", customer_id="cust-000", now=NOW)
    data = statement_pdf(st)
    assert data.startswith(b"%PDF-1.4")
    assert data.rstrip().endswith(b"%%EOF")
    # Every object the cross-reference table points at starts there.
    xref = int(re.findall(rb"startxref\n(\d+)", data)[-1])
    table = data[xref:].split(b"trailer")[0].split(b"\n")[3:]
    offsets = [int(line[:10]) for line in table if line.strip()]
    for number, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(b"%d 0 obj" % number)
    text = pdf_text(data)
    assert "AI cost statement" in text
    assert "cust-000" in text
    assert "October 2026" in text
    total = st.total_usd.quantize(D("0.01"), ROUND_HALF_EVEN)
    assert f"${total:,.2f}" in text
    assert "OpenAI" in text
    assert "Page 1 of 1" in text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_statement_pdf_reads_in_poppler(conn: Any, tmp_path: Path) -> None:
    st = monthly_statement(conn, "2026-10", now=NOW)
    path = tmp_path / "s.pdf"
    path.write_bytes(statement_pdf(st))
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Whole workspace" in text
    assert "Usage by service" in text


def test_a_long_statement_breaks_pages(tmp_path: Path) -> None:
    from dexcost._ids import uuid7
    from dexcost._models import Event

    store = LocalStore(tmp_path / "d.db")
    for i in range(80):
        store.put_event(
            Event(
                event_id=uuid7(),
                task_id=uuid7(),
                event_type="llm_call",
                cost_usd=D("0.01") * (i + 1),
                cost_confidence="computed",
                pricing_source="litellm",
                occurred_at=datetime(2026, 10, 5, tzinfo=UTC),
                provider="openai",
                model=f"model-{i:02d}",
            )
        )
    store.close()
    with closing(connect_readonly(tmp_path / "d.db")) as conn:
        data = statement_pdf(monthly_statement(conn, "2026-10"))
    text = pdf_text(data)
    assert "Page 2 of" in text
    assert "model-79" in text
    assert "(continued)" in text


# --- FOCUS --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "period", [Period.all_time(), Period(datetime(2026, 10, 3, 7, tzinfo=UTC), NOW)]
)
def test_focus_export(conn: Any, work: Workload, period: Period) -> None:
    out = io.StringIO()
    count = write_focus(out, conn, period)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == count > 0
    mandatory = {"BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
                 "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
                 "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
                 "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
                 "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory",
                 "ServiceName"}  # fmt: skip
    assert mandatory <= set(FOCUS_COLUMNS) == set(rows[0])
    events = [e for e in work.events if inside(period, e.occurred_at)]
    assert sum((D(r["BilledCost"]) for r in rows), D(0)) == sum((e.cost_usd for e in events), D(0))
    assert sum(int(r["PricingQuantity"]) for r in rows) == len(events)
    for r in rows:
        assert r["BilledCost"] == r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00Z", r["ChargePeriodStart"])
        assert r["ChargeCategory"] == "Usage"
        assert r["BillingCurrency"] == "USD"
    unpriced = [r for r in rows if r["x_CostConfidence"] == "unknown"]
    assert unpriced
    assert all(D(r["BilledCost"]) == 0 for r in unpriced)
