"""Every report on a seeded month of activity, against plain Python over the same records.

The workload is written through the real store (LocalStore, triggers, roll-ups); the
expected figures are computed here from the Task and Event objects alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

from dexcost._models import Event, Task
from dexcost.insights import (
    Period,
    cost_health,
    customer_detail,
    customer_report,
    overview,
    spend_report,
    task_type_report,
)
from dexcost.insights._facts import TASKS, groups
from dexcost.insights._sql import money
from dexcost.insights._workload import Workload, generate, write
from dexcost.store import LocalStore, connect_readonly

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 15, 37, 12, 345678, tzinfo=UTC)
CENT = Decimal("0.01")
PICO = Decimal("1e-12")


@pytest.fixture(scope="module")
def work() -> Workload:
    return generate(seed=11, days=35, tasks_per_day=40, customers=12, end=NOW)


@pytest.fixture(scope="module")
def db(work: Workload, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "dexcost.db"
    store = LocalStore(path)
    write(work, store)
    store.close()
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[Any]:
    with closing(connect_readonly(db)) as c:
        yield c


PERIODS = [
    Period.all_time(),
    Period.last(7, now=NOW),
    Period.last(30, now=NOW, tz="Europe/Paris"),
    Period.parse("2026-11-01", "2026-11-10", tz="Asia/Kolkata"),
    Period.month("2026-11", tz="America/New_York"),
    Period(NOW - timedelta(hours=30), NOW - timedelta(hours=2)),
]
IDS = ["all", "7d", "30d-paris", "kolkata-dates", "month-ny", "hours"]


# --- the independent computation ----------------------------------------------------------


def inside(p: Period, when: datetime) -> bool:
    return (p.start is None or when >= p.start) and (p.end is None or when < p.end)


def pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * 100 / whole).quantize(CENT, ROUND_HALF_EVEN)


def avg(total: Decimal, n: int) -> Decimal | None:
    return None if not n else (total / n).quantize(PICO, ROUND_HALF_EVEN).normalize()


def same(a: Decimal | None, b: Decimal | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a == b)


def picked(work: Workload, p: Period) -> tuple[list[Event], list[Task]]:
    return (
        [e for e in work.events if inside(p, e.occurred_at)],
        [t for t in work.tasks if inside(p, t.started_at)],
    )


def failures(tasks: list[Task]) -> tuple[int, Decimal, Decimal]:
    failed = {t.task_id: t for t in tasks if t.status == "failed"}
    every = {t.task_id: t for t in tasks}
    n, cost, retry = 0, Decimal(0), Decimal(0)
    for t in failed.values():
        parent, covered = t.parent_task_id, False
        while parent is not None:
            if parent in failed:
                covered = True
            up = every.get(parent)
            parent = up.parent_task_id if up else None
        if not covered:
            n, cost, retry = n + 1, cost + t.total_cost_usd, retry + t.retry_cost_usd
    return n, cost, retry


def expected_totals(work: Workload, p: Period) -> dict[str, Any]:
    events, tasks = picked(work, p)
    total = sum((e.cost_usd for e in events), Decimal(0))
    retry = sum((e.cost_usd for e in events if e.is_retry), Decimal(0))
    llm = sum((e.cost_usd for e in events if e.event_type == "llm_call"), Decimal(0))
    roots = [t for t in tasks if t.parent_task_id is None]
    _, fail_cost, fail_retry = failures(tasks)
    wasted = retry + fail_cost - fail_retry
    return {
        "total": total,
        "events": len(events),
        "tasks": len(roots),
        "failed": sum(t.status == "failed" for t in roots),
        "avg": avg(total, len(roots)),
        "llm": llm,
        "retry": retry,
        "failure": fail_cost,
        "wasted": wasted,
        "productive": total - wasted,
        "efficiency": pct(total - wasted, total),
    }


# --- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("period", PERIODS, ids=IDS)
def test_overview_matches(conn: Any, work: Workload, period: Period) -> None:
    result = overview(conn, period, now=NOW)
    resolved = period.resolved(NOW)
    want = expected_totals(work, resolved)
    c = result.current
    assert c.total_spend_usd == want["total"]
    assert c.event_count == want["events"]
    assert (c.task_count, c.failed_task_count) == (want["tasks"], want["failed"])
    assert same(c.avg_cost_per_task_usd, want["avg"])
    assert (c.llm_cost_usd, c.non_llm_cost_usd) == (want["llm"], want["total"] - want["llm"])
    assert (c.retry_cost_usd, c.failure_cost_usd) == (want["retry"], want["failure"])
    assert (c.wasted_usd, c.productive_usd) == (want["wasted"], want["productive"])
    assert same(c.cost_efficiency_pct, want["efficiency"])
    before = resolved.previous(NOW)
    if before is None:
        assert result.previous is None
        return
    prev = expected_totals(work, before)
    assert result.previous is not None
    assert result.change is not None
    assert result.previous.total_spend_usd == prev["total"]
    assert same(result.change.spend_pct, pct(want["total"] - prev["total"], prev["total"]))
    assert same(
        result.change.task_count_pct,
        pct(Decimal(want["tasks"] - prev["tasks"]), Decimal(prev["tasks"])),
    )


def test_overview_sees_spend_and_waste(conn: Any, work: Workload) -> None:
    result = overview(conn, Period.last(30, now=NOW), now=NOW)
    c = result.current
    assert c.total_spend_usd > 0
    assert c.retry_cost_usd > 0
    assert c.failure_cost_usd > 0
    assert c.cost_efficiency_pct is not None
    assert Decimal(80) < c.cost_efficiency_pct < 100
    assert result.previous is not None
    assert result.previous.total_spend_usd > 0


@pytest.mark.parametrize("period", PERIODS, ids=IDS)
def test_cost_health_matches(conn: Any, work: Workload, period: Period) -> None:
    health = cost_health(conn, period)
    want = expected_totals(work, period)
    events, _ = picked(work, period)
    assert health.total_spend_usd == want["total"]
    assert health.retry_cost_usd == want["retry"]
    assert health.retry_event_count == sum(e.is_retry for e in events)
    assert same(health.retry_pct, pct(want["retry"], want["total"]))
    assert health.failure_cost_usd == want["failure"]
    assert health.wasted_usd == want["wasted"]
    reasons: dict[str | None, list[Decimal]] = defaultdict(list)
    for e in events:
        if e.is_retry:
            reasons[e.retry_reason].append(e.cost_usd)
    got = {c.reason: (c.event_count, c.cost_usd) for c in health.by_reason}
    assert got == {k: (len(v), sum(v, Decimal(0))) for k, v in reasons.items()}
    costs = [c.cost_usd for c in health.by_reason]
    assert costs == sorted(costs, reverse=True)
    rate = pct(want["retry"], want["total"])
    expected = (
        "none"
        if not rate
        else "low"
        if rate < 6
        else "normal"
        if rate <= 8
        else "elevated"
        if rate <= 15
        else "burning"
    )
    assert health.verdict == expected
    assert health.advice


def expected_customers(work: Workload, p: Period) -> dict[str | None, dict[str, Any]]:
    events, tasks = picked(work, p)
    out: dict[str | None, dict[str, Any]] = defaultdict(
        lambda: {"total": Decimal(0), "llm": Decimal(0), "retry": Decimal(0), "n": 0, "tasks": 0}
    )
    for e in events:
        row = out[e.customer_id]
        row["total"] += e.cost_usd
        row["n"] += 1
        if e.event_type == "llm_call":
            row["llm"] += e.cost_usd
        if e.is_retry:
            row["retry"] += e.cost_usd
    for t in tasks:
        if t.parent_task_id is None:
            out[t.customer_id]["tasks"] += 1
    return dict(out)


@pytest.mark.parametrize("period", PERIODS, ids=IDS)
def test_customer_report_matches(conn: Any, work: Workload, period: Period) -> None:
    rep = customer_report(conn, period)
    want = expected_customers(work, period)
    total = sum((w["total"] for w in want.values()), Decimal(0))
    assert rep.total_spend_usd == total
    assert {c.customer_id for c in rep.customers} == set(want)
    named = sorted((k for k in want if k is not None), key=lambda k: (-want[k]["total"], k))
    assert [c.customer_id for c in rep.customers if c.customer_id is not None] == named
    running = Decimal(0)
    for rank, c in enumerate((c for c in rep.customers if c.customer_id is not None), 1):
        w = want[c.customer_id]
        assert (c.total_usd, c.llm_usd, c.retry_usd) == (w["total"], w["llm"], w["retry"])
        assert c.non_llm_usd == w["total"] - w["llm"]
        assert (c.event_count, c.task_count, c.rank) == (w["n"], w["tasks"], rank)
        assert same(c.avg_cost_per_task_usd, avg(w["total"], w["tasks"]))
        assert same(c.retry_pct, pct(w["retry"], w["total"]))
        share = pct(w["total"], total)
        assert same(c.share_pct, share)
        running += share or 0
        assert c.cumulative_pct == (running if share is not None else None)
        assert c.revenue_usd is None
        assert c.margin_usd is None
        assert c.unprofitable is None
    attributed = sum((want[k]["total"] for k in named), Decimal(0))
    assert same(rep.avg_cost_per_customer_usd, avg(attributed, len(named)))
    assert rep.customer_count == len(named)
    needed, acc = 0, Decimal(0)
    for k in named:
        if attributed <= 0:
            break
        needed += 1
        acc += want[k]["total"]
        if acc * 100 >= attributed * 80:
            break
    assert rep.customers_for_80pct == needed
    if named and want[named[0]]["total"]:
        assert rep.top_customer == named[0]
    assert not rep.has_revenue
    assert rep.revenue_note
    assert "revenue import" in rep.revenue_note


def test_customers_are_skewed_like_a_real_business(conn: Any) -> None:
    rep = customer_report(conn, Period.last(30, now=NOW))
    assert rep.customer_count == 12
    assert rep.top_customer == "cust-000"
    assert rep.customers_for_80pct <= rep.customer_count / 2
    assert rep.top_customer_share_pct is not None
    assert rep.top_customer_share_pct > 20


@pytest.mark.parametrize("period", PERIODS[:3], ids=IDS[:3])
def test_customer_detail_matches(conn: Any, work: Workload, period: Period) -> None:
    who = "cust-002"
    d = customer_detail(conn, who, period)
    events, tasks = picked(work, period)
    mine = [e for e in events if e.customer_id == who]
    assert d.customer.total_usd == sum((e.cost_usd for e in mine), Decimal(0))
    by_type: dict[str | None, Decimal] = defaultdict(Decimal)
    for e in mine:
        by_type[e.task_type] += e.cost_usd
    runs: dict[str | None, list[Task]] = defaultdict(list)
    for t in tasks:
        if t.customer_id == who:
            runs[t.task_type].append(t)
    got = {t.task_type: t for t in d.by_task_type}
    assert set(got) == set(by_type) | set(runs)
    for name, t in got.items():
        assert t.spend_usd == by_type.get(name, Decimal(0))
        assert t.runs == len(runs.get(name, []))
        cost = sum((r.total_cost_usd for r in runs.get(name, [])), Decimal(0))
        assert same(t.avg_cost_per_run_usd, avg(cost, len(runs.get(name, []))))
    assert sum((s.spend_usd for s in d.by_service), Decimal(0)) == d.customer.total_usd
    assert {s.name for s in d.by_service} >= {"OpenAI", "Anthropic"}
    assert all(t.customer_id == who and t.parent_task_id is None for t in d.recent_tasks)
    starts = [t.started_at for t in d.recent_tasks]
    assert starts == sorted(starts, reverse=True)


def test_customer_detail_of_a_stranger_is_empty(conn: Any) -> None:
    d = customer_detail(conn, "nobody", Period.last(7, now=NOW))
    assert d.customer.total_usd == 0
    assert d.customer.rank is None
    assert d.by_task_type == ()
    assert d.recent_tasks == ()


def nearest_rank(values: list[Decimal], p: int) -> Decimal:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1]


@pytest.mark.parametrize("period", PERIODS, ids=IDS)
def test_task_type_report_matches(conn: Any, work: Workload, period: Period) -> None:
    rep = task_type_report(conn, period)
    events, tasks = picked(work, period)
    spend: dict[str | None, Decimal] = defaultdict(Decimal)
    retry: dict[str | None, Decimal] = defaultdict(Decimal)
    reasons: dict[str | None, dict[str | None, list[Decimal]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for e in events:
        spend[e.task_type] += e.cost_usd
        if e.is_retry:
            retry[e.task_type] += e.cost_usd
            reasons[e.task_type][e.retry_reason].append(e.cost_usd)
    runs: dict[str | None, list[Task]] = defaultdict(list)
    for t in tasks:
        runs[t.task_type].append(t)
    got = {t.task_type: t for t in rep.task_types}
    assert set(got) == set(spend) | set(runs)
    for name, t in got.items():
        mine = runs.get(name, [])
        totals = [r.total_cost_usd for r in mine]
        assert t.spend_usd == spend.get(name, Decimal(0))
        assert t.retry_cost_usd == retry.get(name, Decimal(0))
        assert (t.runs, t.failed_runs) == (len(mine), sum(r.status == "failed" for r in mine))
        assert t.total_run_cost_usd == sum(totals, Decimal(0))
        assert same(t.avg_cost_per_run_usd, avg(sum(totals, Decimal(0)), len(mine)))
        if mine:
            assert t.p50_cost_per_run_usd == nearest_rank(totals, 50)
            assert t.p95_cost_per_run_usd == nearest_rank(totals, 95)
            assert t.max_cost_per_run_usd == max(totals)
        else:
            assert t.p50_cost_per_run_usd is None
        retried = sum(r.retry_count > 0 for r in mine)
        assert t.runs_with_retries == retried
        assert same(t.runs_with_retries_pct, pct(Decimal(retried), Decimal(len(mine))))
        want_reasons = {k: (len(v), sum(v, Decimal(0))) for k, v in reasons[name].items()}
        assert {r.reason: (r.event_count, r.cost_usd) for r in t.retry_reasons} == want_reasons


def test_spend_report_agrees_with_the_overview(conn: Any) -> None:
    period = Period.last(30, now=NOW)
    assert spend_report(conn, period).total_spend_usd == (
        overview(conn, period, now=NOW).current.total_spend_usd
    )


def test_local_days_match_python(conn: Any, work: Workload) -> None:
    """The day slices the anomalies use: roll-up days plus signed raw hours, per zone."""
    for tz in ("UTC", "Europe/Paris", "Asia/Kolkata", "America/St_Johns"):
        period = Period.last(12, now=NOW, tz=tz)
        slots = [(d.isoformat(), p) for d, p in period.days(NOW)]
        with groups(conn, source=TASKS, slots=slots) as g:
            rows = conn.execute(
                f"SELECT slot, SUM(n), SUM(cost_hi), SUM(cost_lo) FROM {g} GROUP BY slot"
            ).fetchall()
        got = {r[0]: (r[1], money({"cost_hi": r[2], "cost_lo": r[3]}, "cost")) for r in rows}
        for label, span in slots:
            mine = [t for t in work.tasks if inside(span, t.started_at)]
            want = (len(mine), sum((t.total_cost_usd for t in mine), Decimal(0)))
            assert got.get(label, (0, Decimal(0))) == want, (tz, label)
