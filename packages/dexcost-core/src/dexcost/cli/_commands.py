"""The subcommands: ``tasks``, ``report`` and ``export``."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from typing import TextIO

from dexcost.insights import (
    Period,
    SpendReport,
    list_tasks,
    spend_report,
    to_jsonable,
    write_export,
    write_focus,
)

from . import _render as r
from ._insight_cmds import CommandError, run_view


def run_tasks(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost tasks``: recent tasks with cost and status."""
    tasks = list_tasks(
        conn,
        period=args.period,
        customer_id=args.customer,
        task_type=args.type,
        status=args.status,
        root_only=args.roots,
        limit=args.limit,
    )
    if args.json:
        _dump(out, {"tasks": to_jsonable(tasks)})
        return 0
    if not tasks:
        out.write("No tasks match.\n")
        return 0
    rows = _columns(
        [r.when(t.started_at) for t in tasks],
        [("↳ " if t.parent_task_id else "") + t.task_type for t in tasks],
        [r.label(t.customer_id) for t in tasks],
        [t.status for t in tasks],
        r.money_cells([t.total_cost_usd for t in tasks]),
        [r.count(t.event_count) for t in tasks],
        [r.count(t.retry_count) for t in tasks],
        [r.duration(t.started_at, t.ended_at) for t in tasks],
        [str(t.task_id) for t in tasks],
    )
    headers = ["STARTED (UTC)", "TYPE", "CUSTOMER", "STATUS", "COST", "EVENTS", "RETRIES"]
    out.write(r.table([*headers, "TIME", "TASK"], rows, right=(4, 5, 6, 7)) + "\n")
    return 0


def run_report(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost report``: spend, customers, task types, retries and unpriced calls; or a view."""
    if args.view is not None:
        return run_view(conn, args, out)
    report = spend_report(conn, args.period)
    if args.json:
        _dump(out, to_jsonable(report))
        return 0
    out.write(render_report(report, top=args.top))
    return 0


def run_export(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost export``: every column of events or tasks as JSON Lines or CSV."""
    fmt = "jsonl" if args.json else args.format
    if fmt == "focus":
        if args.what != "events":
            raise CommandError("the FOCUS format holds costs: use it with --what events")
        if args.output in (None, "-"):
            write_focus(out, conn, args.period)
        else:
            with open(args.output, "w", encoding="utf-8", newline="") as f:
                count = write_focus(f, conn, args.period)
            print(f"dexcost: wrote {count:,} FOCUS rows to {args.output}", file=sys.stderr)
        return 0
    if args.output in (None, "-"):
        count = write_export(out, conn, args.what, fmt, args.period)
    else:
        newline = "" if fmt == "csv" else None
        with open(args.output, "w", encoding="utf-8", newline=newline) as f:
            count = write_export(f, conn, args.what, fmt, args.period)
        print(f"dexcost: wrote {count:,} {args.what} to {args.output}", file=sys.stderr)
    return 0


def render_report(report: SpendReport, top: int | None = 10) -> str:
    """The text form of a :class:`SpendReport`; tables show the ``top`` rows (None: all)."""
    parts = [f"dexcost report: {report.period.describe()}\n"]
    retries = report.retries
    failed = f"  ({r.count(report.failed_task_count)} failed)" if report.failed_task_count else ""
    summary = [
        ("Total spend", r.money(report.total_spend_usd)),
        ("Tasks (top level)", r.count(report.task_count) + failed),
        ("Avg cost per task", r.money(report.avg_cost_per_task_usd)),
        ("Events", r.count(report.event_count)),
        ("Retry cost", f"{r.money(retries.cost_usd)}  ({r.pct(retries.pct_of_spend)} of spend)"),
    ]
    parts.append("\n".join(f"{k:<20}{v}" for k, v in summary) + "\n")
    if not report.event_count and not report.task_count:
        parts.append("Nothing was recorded in this period.\n")

    customers = report.by_customer[:top]
    if customers:
        table = _columns(
            [r.label(c.customer_id) for c in customers],
            r.money_cells([c.spend_usd for c in customers]),
            [r.pct(c.share_pct) for c in customers],
            [r.count(c.task_count) for c in customers],
            r.money_cells([c.retry_cost_usd for c in customers]),
            [r.pct(c.retry_pct) for c in customers],
        )
        headers = ["CUSTOMER", "SPEND", "SHARE", "TASKS", "RETRY COST", "RETRY %"]
        parts.append(
            "Spend by customer"
            + _more(len(report.by_customer), len(customers))
            + r.table(headers, table, right=(1, 2, 3, 4, 5))
            + "\n"
        )

    types = report.by_task_type[:top]
    if types:
        table = _columns(
            [r.label(t.task_type) for t in types],
            r.money_cells([t.spend_usd for t in types]),
            [r.count(t.runs) for t in types],
            [r.count(t.failed_runs) for t in types],
            r.money_cells([t.avg_cost_per_run_usd for t in types]),
            r.money_cells([t.retry_cost_usd for t in types]),
        )
        headers = ["TASK TYPE", "SPEND", "RUNS", "FAILED", "AVG PER RUN", "RETRY COST"]
        parts.append(
            "Spend by task type (a run's cost includes its sub-tasks)"
            + _more(len(report.by_task_type), len(types))
            + r.table(headers, table, right=(1, 2, 3, 4, 5))
            + "\n"
        )

    reasons = retries.by_reason[:top]
    if reasons:
        table = _columns(
            [r.label(x.reason) for x in reasons],
            [r.count(x.event_count) for x in reasons],
            r.money_cells([x.cost_usd for x in reasons]),
        )
        parts.append(
            f"Retries: {r.plural(retries.event_count, 'retried call')} cost "
            f"{r.money(retries.cost_usd)}, {r.pct(retries.pct_of_spend)} of spend"
            + _more(len(retries.by_reason), len(reasons))
            + r.table(["REASON", "CALLS", "COST"], table, right=(1, 2))
            + "\n"
        )

    unknown = report.unknown_cost
    if unknown.event_count:
        models = unknown.models[:top]
        table = _columns(
            [r.label(m.provider) for m in models],
            [r.label(m.model or m.service_name) for m in models],
            [r.count(m.event_count) for m in models],
            [r.count(m.input_tokens) for m in models],
            [r.count(m.output_tokens) for m in models],
        )
        headers = ["PROVIDER", "MODEL / SERVICE", "CALLS", "INPUT TOKENS", "OUTPUT TOKENS"]
        parts.append(
            f"Unknown cost: {r.plural(unknown.event_count, 'call')} had no known price. They "
            "are NOT in the totals above, and they were not free."
            + _more(len(unknown.models), len(models))
            + r.table(headers, table, right=(2, 3, 4))
            + "\n"
        )
    elif report.event_count:
        parts.append("Unknown cost: none, every call in the period was priced.\n")
    return "\n".join(parts)


def _columns(*columns: list[str]) -> list[list[str]]:
    return [list(row) for row in zip(*columns, strict=True)]


def _more(total: int, shown: int) -> str:
    if total > shown:
        return f" (top {shown} of {total}; --top 0 shows all)\n"
    return "\n"


def _dump(out: TextIO, value: object) -> None:
    json.dump(value, out, indent=2, ensure_ascii=False)
    out.write("\n")


def period_of(args: argparse.Namespace) -> Period:
    """The :class:`Period` the ``--since``/``--until`` options describe."""
    return Period.parse(args.since, args.until)
