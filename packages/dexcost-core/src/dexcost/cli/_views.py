"""Text forms of the insight reports: overview, cost health, customers, task types,
anomalies. Each takes a typed result and returns the text to print."""

from __future__ import annotations

from decimal import Decimal

from dexcost.insights import (
    AnomalyReport,
    CostHealth,
    CustomerDetail,
    CustomerReport,
    Overview,
    TaskTypeReport,
    UnknownCostSummary,
)

from . import _render as r
from ._charts import bar, gauge


def _cols(*columns: list[str]) -> list[list[str]]:
    return [list(row) for row in zip(*columns, strict=True)]


def _pairs(items: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in items) + 2
    return "\n".join(f"{k:<{width}}{v}" for k, v in items) + "\n"


def _change(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return f"  ({'+' if not text.startswith('-') else ''}{text}% vs previous period)"


def unknown_note(unknown: UnknownCostSummary, top: int | None = 5) -> str:
    """The unpriced-calls paragraph every report ends with."""
    if not unknown.event_count:
        return "Unknown cost: none, every call in the period was priced.\n"
    models = unknown.models[:top]
    table = _cols(
        [r.label(m.provider) for m in models],
        [r.label(m.model or m.service_name) for m in models],
        [r.count(m.event_count) for m in models],
        [r.count(m.input_tokens) for m in models],
        [r.count(m.output_tokens) for m in models],
    )
    return (
        f"Unknown cost: {r.plural(unknown.event_count, 'call')} "
        f"({r.count(unknown.input_tokens)} input and {r.count(unknown.output_tokens)} output "
        "tokens) had no known price. They are NOT in the totals above, and they were not free.\n"
        + r.table(
            ["PROVIDER", "MODEL / SERVICE", "CALLS", "INPUT TOKENS", "OUTPUT TOKENS"],
            table,
            right=(2, 3, 4),
        )
        + "\n"
    )


def render_overview(o: Overview) -> str:
    c, ch = o.current, o.change
    lines = [
        ("Total spend", r.money(c.total_spend_usd) + _change(ch and ch.spend_pct)),
        ("Tasks (top level)", r.count(c.task_count) + _change(ch and ch.task_count_pct)),
        (
            "Avg cost per task",
            r.money(c.avg_cost_per_task_usd) + _change(ch and ch.avg_cost_per_task_pct),
        ),
        (
            "Cost efficiency",
            f"{r.pct(c.cost_efficiency_pct)} productive"
            + (
                f"  ({ch.efficiency_points:+} points)"
                if ch and ch.efficiency_points is not None
                else ""
            ),
        ),
        ("  Retry cost", r.money(c.retry_cost_usd)),
        (
            "  Failed tasks",
            f"{r.money(c.failure_cost_usd)}  ({r.count(c.failed_task_count)} failed)",
        ),
        ("  Wasted", r.money(c.wasted_usd)),
        ("LLM / other", f"{r.money(c.llm_cost_usd)} / {r.money(c.non_llm_cost_usd)}"),
    ]
    head = f"dexcost overview: {c.period.describe()}\n"
    if o.previous is not None:
        p = o.previous
        head += (
            f"previous period: {p.period.describe()}: {r.money(p.total_spend_usd)}, "
            f"{r.count(p.task_count)} tasks\n"
        )
    return head + "\n" + _pairs(lines) + "\n" + unknown_note(o.unknown_cost)


def render_health(h: CostHealth) -> str:
    lines = [
        ("Total spend", r.money(h.total_spend_usd)),
        (
            "Retry cost",
            f"{r.money(h.retry_cost_usd)}  ({r.pct(h.retry_pct)} of spend, "
            f"{r.plural(h.retry_event_count, 'retried call')})",
        ),
        (
            "Failure cost",
            f"{r.money(h.failure_cost_usd)}  ({r.plural(h.failed_task_count, 'failed task')})",
        ),
        ("Wasted in all", f"{r.money(h.wasted_usd)}  ({r.pct(h.waste_pct)} of spend)"),
    ]
    parts = [f"dexcost cost health: {h.period.describe()}\n", _pairs(lines)]
    parts.append(f"Verdict: {h.verdict.upper()}. {h.verdict_text}\n{h.advice}\n")
    if h.by_reason:
        top = max(x.cost_usd for x in h.by_reason)
        table = _cols(
            [r.label(x.reason) for x in h.by_reason],
            r.money_cells([x.cost_usd for x in h.by_reason]),
            [r.pct(x.pct_of_retry_cost) for x in h.by_reason],
            [r.count(x.event_count) for x in h.by_reason],
            [bar(x.cost_usd, top) for x in h.by_reason],
        )
        parts.append(
            "Retry cost by reason\n"
            + r.table(["REASON", "COST", "SHARE", "CALLS", ""], table, right=(1, 2, 3))
            + "\n"
        )
        parts.append("\n".join(f"  {r.label(x.reason)}: {x.advice}" for x in h.by_reason) + "\n")
    parts.append(unknown_note(h.unknown_cost))
    return "\n".join(parts)


def render_customers(rep: CustomerReport, top: int | None = 10) -> str:
    lines = [
        ("Total AI spend", r.money(rep.total_spend_usd)),
        ("Customers", r.count(rep.customer_count)),
        (
            "Top customer",
            f"{r.label(rep.top_customer)} ({r.pct(rep.top_customer_share_pct)} of total)",
        ),
        ("Avg cost per customer", r.money(rep.avg_cost_per_customer_usd)),
        ("Avg cost per task", r.money(rep.avg_cost_per_task_usd)),
        (
            "80% of cost from",
            f"{r.count(rep.customers_for_80pct)} customers "
            f"({r.pct(rep.customers_for_80pct_pct)} of them)",
        ),
    ]
    if rep.unattributed_usd:
        lines.append(("No customer", r.money(rep.unattributed_usd)))
    parts = [f"dexcost customers: {rep.period.describe()}\n", _pairs(lines)]
    rows = rep.customers[:top]
    if rows:
        largest = max((c.total_usd for c in rows), default=Decimal(0))
        margin = rep.has_revenue
        table = _cols(
            [r.label(c.customer_id) for c in rows],
            r.money_cells([c.total_usd for c in rows]),
            [r.pct(c.share_pct) for c in rows],
            [r.pct(c.cumulative_pct) for c in rows],
            [r.count(c.task_count) for c in rows],
            r.money_cells([c.avg_cost_per_task_usd for c in rows]),
            [r.pct(c.retry_pct) for c in rows],
            [_margin(c.margin_usd, c.unprofitable) if margin else "n/a" for c in rows],
            [bar(c.total_usd, largest, 16) for c in rows],
            [gauge(c.cumulative_pct) for c in rows],
        )
        heads = [
            "CUSTOMER",
            "COST",
            "SHARE",
            "CUM %",
            "TASKS",
            "AVG/TASK",
            "RETRY %",
            "MARGIN",
            "COST",
            "CUMULATIVE (| = 80%)",
        ]
        more = (
            f" (top {len(rows)} of {len(rep.customers)}; --top 0 shows all)"
            if len(rep.customers) > len(rows)
            else ""
        )
        parts.append(
            f"Customers by cost (Pareto){more}\n"
            + r.table(heads, table, right=(1, 2, 3, 4, 5, 6, 7))
            + "\n"
        )
    if rep.revenue_note:
        parts.append(f"Margin: {rep.revenue_note}\n")
    elif rep.unprofitable_count:
        losers = [c.customer_id or "" for c in rep.customers if c.unprofitable]
        parts.append(f"Costs more than it pays: {', '.join(losers[:10])}\n")
    parts.append(unknown_note(rep.unknown_cost))
    return "\n".join(parts)


def _margin(value: object, losing: bool | None) -> str:
    if value is None:
        return "no revenue"
    text = r.money(value)  # type: ignore[arg-type]
    return text + (" LOSS" if losing else "")


def render_customer(d: CustomerDetail) -> str:
    c = d.customer
    lines = [
        (
            "Total cost",
            f"{r.money(c.total_usd)}  (rank {c.rank or '-'}, {r.pct(c.share_pct)} of all)",
        ),
        ("LLM / other", f"{r.money(c.llm_usd)} / {r.money(c.non_llm_usd)}"),
        ("Retry cost", f"{r.money(c.retry_usd)}  ({r.pct(c.retry_pct)})"),
        ("Tasks", r.count(c.task_count)),
        ("Avg cost per task", r.money(c.avg_cost_per_task_usd)),
        ("Revenue", r.money(c.revenue_usd) if c.revenue_usd is not None else "no revenue imported"),
        ("Margin", _margin(c.margin_usd, c.unprofitable)),
    ]
    parts = [f"dexcost customer {r.label(c.customer_id)}: {d.period.describe()}\n", _pairs(lines)]
    if d.by_task_type:
        types = d.by_task_type
        top = max(t.spend_usd for t in types)
        table = _cols(
            [r.label(t.task_type) for t in types],
            r.money_cells([t.spend_usd for t in types]),
            [r.count(t.runs) for t in types],
            r.money_cells([t.avg_cost_per_run_usd for t in types]),
            r.money_cells([t.retry_cost_usd for t in types]),
            [bar(t.spend_usd, top, 16) for t in types],
        )
        parts.append(
            "Cost by task type\n"
            + r.table(
                ["TASK TYPE", "SPEND", "RUNS", "AVG PER RUN", "RETRY COST", ""],
                table,
                right=(1, 2, 3, 4),
            )
            + "\n"
        )
    if d.by_service:
        top_s = max(s.spend_usd for s in d.by_service)
        table = _cols(
            [s.name for s in d.by_service],
            [s.kind for s in d.by_service],
            r.money_cells([s.spend_usd for s in d.by_service]),
            [r.count(s.event_count) for s in d.by_service],
            [bar(s.spend_usd, top_s, 16) for s in d.by_service],
        )
        parts.append(
            "Cost by service\n"
            + r.table(["SERVICE", "KIND", "SPEND", "CALLS", ""], table, right=(2, 3))
            + "\n"
        )
    if d.recent_tasks:
        t = d.recent_tasks
        table = _cols(
            [r.when(x.started_at) for x in t],
            [x.task_type for x in t],
            [x.status for x in t],
            r.money_cells([x.total_cost_usd for x in t]),
            [str(x.task_id) for x in t],
        )
        parts.append(
            "Recent tasks\n"
            + r.table(["STARTED (UTC)", "TYPE", "STATUS", "COST", "TASK"], table, right=(3,))
            + "\n"
        )
    parts.append(unknown_note(d.unknown_cost))
    return "\n".join(parts)


def render_task_types(rep: TaskTypeReport, top: int | None = 10) -> str:
    rows = rep.task_types[:top]
    parts = [
        f"dexcost task types: {rep.period.describe()}\n",
        f"Total spend {r.money(rep.total_spend_usd)}\n",
    ]
    if rows:
        largest = max(t.spend_usd for t in rows)
        table = _cols(
            [r.label(t.task_type) for t in rows],
            r.money_cells([t.spend_usd for t in rows]),
            [r.count(t.runs) for t in rows],
            r.money_cells([t.avg_cost_per_run_usd for t in rows]),
            r.money_cells([t.p50_cost_per_run_usd for t in rows]),
            r.money_cells([t.p95_cost_per_run_usd for t in rows]),
            r.money_cells([t.retry_cost_usd for t in rows]),
            [r.pct(t.runs_with_retries_pct) for t in rows],
            [bar(t.spend_usd, largest, 16) for t in rows],
        )
        heads = [
            "TASK TYPE",
            "SPEND",
            "RUNS",
            "AVG/RUN",
            "P50",
            "P95",
            "RETRY COST",
            "RUNS RETRIED",
            "",
        ]
        parts.append(r.table(heads, table, right=(1, 2, 3, 4, 5, 6, 7)) + "\n")
        lineage = [
            f"  {r.label(t.task_type)}: "
            + ", ".join(
                f"{r.label(x.reason)} {r.count(x.event_count)} ({r.money(x.cost_usd)})"
                for x in t.retry_reasons
            )
            for t in rows
            if t.retry_reasons
        ]
        if lineage:
            parts.append("Retry lineage (why runs retried)\n" + "\n".join(lineage) + "\n")
    parts.append(unknown_note(rep.unknown_cost))
    return "\n".join(parts)


def render_anomalies(rep: AnomalyReport) -> str:
    head = (
        f"dexcost anomalies: {rep.period.describe()} ({rep.days_checked} days, each "
        f"against the {rep.window_days} days before it)\n"
    )
    if not rep.anomalies:
        return head + "\nNo anomalies: every day was within its usual range.\n"
    parts = [head]
    for a in rep.anomalies:
        seen = f"first detected {r.when(a.detected_at)} UTC" if a.detected_at else "new"
        share = r.pct(a.share_of_monthly_pct)
        lines = [
            f"● {a.summary}",
            f"  {a.metric}: before {r.money(a.before_usd)} → after {r.money(a.after_usd)}"
            f"{f' ({a.ratio}x)' if a.ratio is not None else ''}; excess {r.money(a.excess_usd)}, "
            f"{share} of the month's spend; {seen}",
        ]
        if a.affected:
            lines.append("  affected: " + "; ".join(a.affected))
        lines.append(f"  what to do: {a.advice}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
