"""Insights against an independent computation in Python over the same records."""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost.insights import Period, list_tasks, spend_report, to_jsonable
from dexcost.store import LocalStore, connect_readonly

UTC = timezone.utc
T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PICO = Decimal("1e-12")


# --- data ----------------------------------------------------------------------------


@dataclass
class Dataset:
    tasks: list[Task]
    events: list[Event]


def rollup(tasks: list[Task], events: list[Event]) -> None:
    """Set each task's totals as the tracker would: own events plus all descendants'."""
    by_id = {t.task_id: t for t in tasks}
    for e in events:
        task: Task | None = by_id[e.task_id]
        while task is not None:
            task.total_cost_usd += e.cost_usd
            task.event_count += 1
            if e.is_retry:
                task.retry_count += 1
                task.retry_cost_usd += e.cost_usd
            task = by_id.get(task.parent_task_id) if task.parent_task_id else None


amounts = st.one_of(
    st.integers(0, 10**14).map(lambda n: Decimal(n).scaleb(-12)),  # up to $100, 12 places
    st.sampled_from([Decimal("0"), Decimal("0.01"), Decimal("2.5"), Decimal("0.0000025")]),
)
customers = st.sampled_from([None, "acme", "globex", "initech"])
task_types = st.sampled_from(["resolve_ticket", "generate_report", "classify_lead"])
offsets = st.integers(-90 * 24 * 60, 5 * 24 * 60).map(lambda m: T0 + timedelta(minutes=m))


@st.composite
def datasets(draw: Any) -> Dataset:
    tasks: list[Task] = []
    for _ in range(draw(st.integers(1, 8))):
        parent = draw(st.sampled_from([None, *tasks])) if tasks else None
        tasks.append(
            Task(
                task_id=uuid7(),
                task_type=draw(task_types),
                started_at=draw(offsets),
                customer_id=parent.customer_id if parent else draw(customers),
                parent_task_id=parent.task_id if parent else None,
                status=draw(st.sampled_from(["success", "failed", "pending"])),
            )
        )
    events = []
    for _ in range(draw(st.integers(0, 40))):
        task = draw(st.sampled_from(tasks))
        confidence = draw(st.sampled_from(["computed", "exact", "estimated", "unknown"]))
        retry = draw(st.booleans())
        events.append(
            Event(
                event_id=uuid7(),
                task_id=task.task_id,
                event_type="llm_call",
                cost_usd=Decimal(0) if confidence == "unknown" else draw(amounts),
                cost_confidence=confidence,
                pricing_source="unknown" if confidence == "unknown" else "litellm",
                occurred_at=draw(offsets),
                provider=draw(st.sampled_from([None, "openai", "mystery"])),
                model=draw(st.sampled_from([None, "gpt-x", "m-1"])),
                service_name=draw(st.sampled_from([None, "maps"])),
                input_tokens=draw(st.one_of(st.none(), st.integers(0, 10**6))),
                output_tokens=draw(st.one_of(st.none(), st.integers(0, 10**5))),
                is_retry=retry,
                retry_reason=draw(st.sampled_from([None, "rate_limit", "timeout"]))
                if retry
                else None,
                customer_id=task.customer_id,
                task_type=task.task_type,
            )
        )
    rollup(tasks, events)
    return Dataset(tasks, events)


periods = st.one_of(
    st.just(Period()),
    st.integers(1, 90).map(lambda d: Period.last(d, now=T0)),
    st.tuples(offsets, st.integers(1, 60 * 24 * 60)).map(
        lambda p: Period(p[0], p[0] + timedelta(minutes=p[1]))
    ),
)


@contextmanager
def stored(data: Dataset) -> Iterator[sqlite3.Connection]:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "d.db")
        for t in data.tasks:
            store.put_task(t)
        for e in data.events:
            store.put_event(e)
        store.close()
        with closing(connect_readonly(store.path)) as conn:
            yield conn


# --- the independent computation --------------------------------------------------------


def inside(period: Period, when: datetime) -> bool:
    return (period.start is None or when >= period.start) and (
        period.end is None or when < period.end
    )


def pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * 100 / whole).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def avg(total: Decimal, n: int) -> Decimal | None:
    return None if not n else (total / n).quantize(PICO, ROUND_HALF_EVEN)


def expected_report(data: Dataset, period: Period) -> dict[str, Any]:
    events = [e for e in data.events if inside(period, e.occurred_at)]
    tasks = [t for t in data.tasks if inside(period, t.started_at)]
    roots = [t for t in tasks if t.parent_task_id is None]
    total = sum((e.cost_usd for e in events), Decimal(0))

    customers: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"spend": Decimal(0), "n": 0, "retry": Decimal(0), "tasks": 0}
    )
    for e in events:
        c = customers[e.customer_id]
        c["spend"] += e.cost_usd
        c["n"] += 1
        c["retry"] += e.cost_usd if e.is_retry else 0
    for t in roots:
        customers[t.customer_id]["tasks"] += 1

    types: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"spend": Decimal(0), "n": 0, "retry": Decimal(0), "runs": [], "failed": 0}
    )
    for e in events:
        ty = types[e.task_type]
        ty["spend"] += e.cost_usd
        ty["n"] += 1
        ty["retry"] += e.cost_usd if e.is_retry else 0
    for t in tasks:
        types[t.task_type]["runs"].append(t.total_cost_usd)
        types[t.task_type]["failed"] += t.status == "failed"

    reasons: dict[Any, list[Decimal]] = defaultdict(list)
    for e in events:
        if e.is_retry:
            reasons[e.retry_reason].append(e.cost_usd)
    retry_total = sum((sum(v, Decimal(0)) for v in reasons.values()), Decimal(0))

    unknown: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        if e.cost_confidence == "unknown":
            u = unknown[(e.provider, e.model, e.service_name)]
            u[0] += 1
            u[1] += e.input_tokens or 0
            u[2] += e.output_tokens or 0
    return {
        "total": total,
        "events": len(events),
        "tasks": len(roots),
        "failed": sum(t.status == "failed" for t in roots),
        "avg": avg(total, len(roots)),
        "customers": {
            k: (v["spend"], pct(v["spend"], total), v["n"], v["tasks"], v["retry"])
            for k, v in customers.items()
        },
        "types": {
            k: (
                v["spend"],
                v["n"],
                len(v["runs"]),
                v["failed"],
                avg(sum(v["runs"], Decimal(0)), len(v["runs"])),
                v["retry"],
            )
            for k, v in types.items()
        },
        "retry": (sum(len(v) for v in reasons.values()), retry_total, pct(retry_total, total)),
        "reasons": {k: (len(v), sum(v, Decimal(0))) for k, v in reasons.items()},
        "unknown": {k: tuple(v) for k, v in unknown.items()},
    }


# --- tests -----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), periods)
def test_spend_report_matches_an_independent_computation(data: Dataset, period: Period) -> None:
    with stored(data) as conn:
        report = spend_report(conn, period)
    want = expected_report(data, period)
    assert report.period == period
    assert report.total_spend_usd == want["total"]
    assert (report.event_count, report.task_count, report.failed_task_count) == (
        want["events"],
        want["tasks"],
        want["failed"],
    )
    assert report.avg_cost_per_task_usd == want["avg"]
    assert {
        c.customer_id: (c.spend_usd, c.share_pct, c.event_count, c.task_count, c.retry_cost_usd)
        for c in report.by_customer
    } == want["customers"]
    assert {
        t.task_type: (
            t.spend_usd,
            t.event_count,
            t.runs,
            t.failed_runs,
            t.avg_cost_per_run_usd,
            t.retry_cost_usd,
        )
        for t in report.by_task_type
    } == want["types"]
    r = report.retries
    assert (r.event_count, r.cost_usd, r.pct_of_spend) == want["retry"]
    assert {x.reason: (x.event_count, x.cost_usd) for x in r.by_reason} == want["reasons"]
    u = report.unknown_cost
    assert {
        (m.provider, m.model, m.service_name): (m.event_count, m.input_tokens, m.output_tokens)
        for m in u.models
    } == want["unknown"]
    assert u.event_count == sum(v[0] for v in want["unknown"].values())
    # Biggest first.
    spends = [c.spend_usd for c in report.by_customer]
    assert spends == sorted(spends, reverse=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    datasets(),
    periods,
    st.one_of(st.none(), customers),
    st.one_of(st.none(), task_types),
    st.sampled_from([None, "success", "failed", "pending"]),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 5)),
)
def test_list_tasks_filters_and_orders_like_python(
    data: Dataset,
    period: Period,
    customer: str | None,
    task_type: str | None,
    status: str | None,
    roots: bool,
    limit: int | None,
) -> None:
    with stored(data) as conn:
        got = list_tasks(
            conn,
            period=period,
            customer_id=customer,
            task_type=task_type,
            status=status,
            root_only=roots,
            limit=limit,
        )
    want = [
        t
        for t in data.tasks
        if inside(period, t.started_at)
        and (customer is None or t.customer_id == customer)
        and (task_type is None or t.task_type == task_type)
        and (status is None or t.status == status)
        and (not roots or t.parent_task_id is None)
    ]
    want.sort(key=lambda t: (t.started_at, str(t.task_id)), reverse=True)
    want = want[:limit] if limit is not None else want
    assert [t.task_id for t in got] == [t.task_id for t in want]
    for g, w in zip(got, want, strict=True):
        assert (g.total_cost_usd, g.status, g.started_at) == (
            w.total_cost_usd,
            w.status,
            w.started_at,
        )


def test_totals_beyond_int64_picodollars_stay_exact() -> None:
    """$9.2 million is past what int64 holds in picodollars: sums stay exact anyway."""
    task = Task(task_id=uuid7(), task_type="bulk", started_at=T0)
    amounts = [Decimal("4000000.000000000001")] * 3 + [Decimal("10000000.5")]
    events = [
        Event(
            event_id=uuid7(),
            task_id=task.task_id,
            event_type="compute_cost",
            cost_usd=amount,
            cost_confidence="exact",
            pricing_source="manual",
            occurred_at=T0,
            customer_id="whale",
            task_type="bulk",
            is_retry=True,
        )
        for amount in amounts
    ]
    rollup([task], events)
    with stored(Dataset([task], events)) as conn:
        report = spend_report(conn)
    total = Decimal("22000000.500000000003")
    assert report.total_spend_usd == total
    assert report.by_customer[0].spend_usd == total
    assert report.retries.by_reason[0].cost_usd == total
    assert report.by_task_type[0].avg_cost_per_run_usd == total  # the task's own total


def test_amounts_finer_than_a_picodollar_are_summed_rounded() -> None:
    task = Task(task_id=uuid7(), task_type="t", started_at=T0)
    events = [
        Event(
            event_id=uuid7(),
            task_id=task.task_id,
            event_type="llm_call",
            cost_usd=Decimal("0.0000000000014"),  # 1.4 picodollars: stored text stays exact
            cost_confidence="computed",
            pricing_source="custom",
            occurred_at=T0,
        )
        for _ in range(5)
    ]
    with stored(Dataset([task], events)) as conn:
        report = spend_report(conn)
    assert report.total_spend_usd == Decimal("5e-12")  # each rounded to 1 pico


def test_report_results_serialise_with_exact_money() -> None:
    task = Task(task_id=uuid7(), task_type="t", started_at=T0, customer_id="acme")
    events = [
        Event(
            event_id=uuid7(),
            task_id=task.task_id,
            event_type="llm_call",
            cost_usd=Decimal("0.1"),
            cost_confidence="computed",
            pricing_source="litellm",
            occurred_at=T0,
            customer_id="acme",
            task_type="t",
        )
        for _ in range(3)
    ]
    rollup([task], events)
    with stored(Dataset([task], events)) as conn:
        data = to_jsonable(spend_report(conn, Period(T0 - timedelta(days=1), T0 + timedelta(1))))
    assert data["total_spend_usd"] == "0.3"
    assert data["avg_cost_per_task_usd"] == "0.3"
    assert data["period"] == {
        "since": "2026-06-14T12:00:00.000000Z",
        "until": "2026-06-16T12:00:00.000000Z",
        "tz": "UTC",
    }
    assert data["by_customer"][0]["share_pct"] == "100.00"


@pytest.mark.parametrize(
    ("since", "until", "start", "end"),
    [
        ("7d", None, T0 - timedelta(days=7), None),
        ("36h", None, T0 - timedelta(hours=36), None),
        ("2w", None, T0 - timedelta(weeks=2), None),
        (
            "2026-06-01",
            "2026-06-10",
            datetime(2026, 6, 1, tzinfo=UTC),
            datetime(2026, 6, 11, tzinfo=UTC),
        ),
        (
            "2026-06-01T08:30",
            "2026-06-02T00:00Z",
            datetime(2026, 6, 1, 8, 30, tzinfo=UTC),
            datetime(2026, 6, 2, tzinfo=UTC),
        ),
        ("2026-06-01T10:00+02:00", None, datetime(2026, 6, 1, 8, tzinfo=UTC), None),
        (None, None, None, None),
    ],
)
def test_period_parsing(
    since: str | None, until: str | None, start: datetime | None, end: datetime | None
) -> None:
    assert Period.parse(since, until, now=T0) == Period(start, end)


@pytest.mark.parametrize(
    ("since", "until"), [("3x", None), ("0d", None), ("7d", "2020-01-01"), (None, "soon")]
)
def test_period_parsing_refuses_nonsense(since: str | None, until: str | None) -> None:
    with pytest.raises(ValueError, match=r"period|positive|after"):
        Period.parse(since, until, now=T0)


def test_list_tasks_refuses_an_unknown_status(tmp_path: Path) -> None:
    LocalStore(tmp_path / "d.db").close()
    with closing(connect_readonly(tmp_path / "d.db")) as conn, pytest.raises(ValueError):
        list_tasks(conn, status="done")


def test_insights_leave_the_callers_connection_as_it_was(tmp_path: Path) -> None:
    LocalStore(tmp_path / "d.db").close()
    conn = sqlite3.connect(tmp_path / "d.db")
    try:
        spend_report(conn)
        list_tasks(conn)
        assert conn.row_factory is None
        assert conn.execute("SELECT name FROM temp.sqlite_master").fetchall() == []
    finally:
        conn.close()


def test_uuid_of_task_round_trips_through_list_tasks(tmp_path: Path) -> None:
    task = Task(task_id=uuid.UUID(int=7), task_type="t", started_at=T0)
    with stored(Dataset([task], [])) as conn:
        (got,) = list_tasks(conn)
    assert got.task_id == task.task_id


def test_public_names_are_pinned() -> None:
    import dexcost.insights

    assert dexcost.insights.__all__ == [
        "EXPORT_FORMATS",
        "EXPORT_TABLES",
        "FOCUS_COLUMNS",
        "Adjustment",
        "Anomaly",
        "AnomalyReport",
        "Change",
        "Charge",
        "CostHealth",
        "CustomerCost",
        "CustomerDetail",
        "CustomerReport",
        "CustomerSpend",
        "CustomerTaskType",
        "InvoiceFormatError",
        "InvoiceImport",
        "InvoiceLine",
        "NotifyError",
        "NotifyResult",
        "Overview",
        "ParsedInvoice",
        "Period",
        "PeriodTotals",
        "ReconLine",
        "Reconciliation",
        "RetryCause",
        "RetryReason",
        "RetrySummary",
        "RevenueImport",
        "RevenueImportError",
        "RevenueRow",
        "ServiceCost",
        "SpendReport",
        "Statement",
        "StatementLine",
        "TaskTypeLine",
        "TaskTypeReport",
        "TaskTypeSpend",
        "TaskTypeStats",
        "UnknownCostModel",
        "UnknownCostSummary",
        "add_adjustment",
        "cost_health",
        "customer_detail",
        "customer_report",
        "export_rows",
        "find_anomalies",
        "import_invoice",
        "import_revenue",
        "list_tasks",
        "monthly_statement",
        "notify_anomalies",
        "overview",
        "parse_invoice",
        "parse_revenue_csv",
        "reconcile",
        "slack_payload",
        "spend_report",
        "statement_csv",
        "statement_pdf",
        "task_type_report",
        "to_jsonable",
        "write_export",
        "write_focus",
    ]
