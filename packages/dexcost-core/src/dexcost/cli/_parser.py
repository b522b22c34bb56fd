"""The command line: ``dexcost {tasks,report,export}`` and their options."""

from __future__ import annotations

import argparse
import os
from importlib import metadata

from dexcost._types import TASK_STATUSES
from dexcost.insights import EXPORT_TABLES

from ._commands import run_export, run_report, run_tasks
from ._insight_cmds import (
    VIEWS,
    run_adjust,
    run_demo,
    run_reconcile,
    run_revenue,
    run_statement,
)

_PERIOD_HELP = "7d, 30d, 90d (any Nh/Nd/Nw), a date (2026-01-31) or an ISO datetime"


def _version() -> str:
    try:
        return metadata.version("dexcost")
    except metadata.PackageNotFoundError:
        return "unknown"


def _limit(text: str) -> int | None:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value or None


def build_parser() -> argparse.ArgumentParser:
    """The ``dexcost`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help="the store to read (default: $DEXCOST_BUFFER_PATH or the user data directory)",
    )
    common.add_argument(
        "--tz",
        default=os.environ.get("DEXCOST_TZ", "UTC"),
        metavar="ZONE",
        help="time zone for dates and days, e.g. Europe/Paris (default $DEXCOST_TZ or UTC)",
    )

    def period(p: argparse.ArgumentParser, since: str | None) -> None:
        default = f" (default {since})" if since else " (default: all time)"
        p.add_argument("--since", default=since, metavar="WHEN", help=_PERIOD_HELP + default)
        p.add_argument(
            "--until", metavar="WHEN", help="end of the period; a date is included (default now)"
        )

    parser = argparse.ArgumentParser(
        prog="dexcost",
        description="What your AI agents cost, per task and per customer, from the local store.",
    )
    parser.add_argument("--version", action="version", version=f"dexcost {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tasks = sub.add_parser(
        "tasks",
        parents=[common],
        help="recent tasks with cost and status",
        description="Recent tasks, newest first, with their cost (sub-tasks included) and status.",
    )
    tasks.add_argument("--json", action="store_true", help='JSON output: {"tasks": [...]}')
    tasks.add_argument("--customer", help="only this customer_id")
    tasks.add_argument("--type", help="only this task type")
    tasks.add_argument("--status", choices=sorted(TASK_STATUSES), help="only this status")
    tasks.add_argument("--roots", action="store_true", help="only top-level tasks")
    tasks.add_argument(
        "--limit", type=_limit, default=20, metavar="N", help="at most N tasks; 0 for all (20)"
    )
    period(tasks, None)
    tasks.set_defaults(run=run_tasks)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="spend report, or one view: overview, health, customers, customer ID, tasks, "
        "anomalies",
        description="Without a view: total spend, spend by customer and task type, retry cost "
        "and the calls whose cost is unknown, over a period. Views: overview (totals, "
        "efficiency, change against the previous period), health (retry and failure cost, "
        "verdict), customers (Pareto, margins), customer ID (one customer), tasks (task types, "
        "p50/p95, retry lineage), anomalies.",
    )
    report.add_argument("view", nargs="?", choices=VIEWS, help="the view to show")
    report.add_argument("target", nargs="?", metavar="ID", help="the customer id (customer view)")
    report.add_argument("--json", action="store_true", help="JSON output, amounts as strings")
    report.add_argument(
        "--top", type=_limit, default=10, metavar="N", help="rows per table; 0 for all (10)"
    )
    report.add_argument(
        "--window", type=int, default=14, metavar="DAYS", help="anomalies: baseline days (14)"
    )
    report.add_argument("--webhook", metavar="URL", help="anomalies: send new ones to this URL")
    report.add_argument(
        "--dry-run", action="store_true", help="anomalies: show the webhook message, send nothing"
    )
    period(report, "30d")
    report.set_defaults(run=run_report)

    statement = sub.add_parser(
        "statement", parents=[common], help="a month's statement as CSV or PDF"
    )
    statement.add_argument("--json", action="store_true", help="JSON output, amounts as strings")
    statement.add_argument("--month", required=True, metavar="YYYY-MM", help="e.g. 2026-10")
    statement.add_argument("--customer", metavar="ID", help="one customer (default: workspace)")
    statement.add_argument("--format", choices=("csv", "pdf"), default="csv")
    statement.add_argument("-o", "--output", metavar="FILE", help="write to FILE ('-' for stdout)")
    statement.set_defaults(run=run_statement)

    recon = sub.add_parser(
        "reconcile",
        parents=[common],
        help="import a provider invoice or usage export and compare it with what was tracked",
    )
    recon.add_argument("--json", action="store_true", help="JSON output, amounts as strings")
    recon.add_argument("invoice", nargs="?", metavar="FILE", help="the export (CSV or JSON)")
    recon.add_argument(
        "--provider", required=True, choices=("openai", "anthropic", "aws", "generic")
    )
    recon.add_argument(
        "--threshold", type=float, default=5.0, metavar="PCT", help="flag lines over PCT% (5)"
    )
    recon.add_argument(
        "--top", type=_limit, default=20, metavar="N", help="rows per table; 0 for all (20)"
    )
    period(recon, None)
    recon.set_defaults(run=run_reconcile, writes=True)

    revenue = sub.add_parser("revenue", parents=[common], help="import revenue for margins")
    revenue.add_argument("--json", action="store_true", help="JSON output, amounts as strings")
    revenue.add_argument("action", choices=("import",))
    revenue.add_argument("file", metavar="FILE.csv", help="customer,period,amount,currency")
    revenue.set_defaults(run=run_revenue, writes=True)

    adjust = sub.add_parser(
        "adjust", parents=[common], help="record a credit or charge on a month's statement"
    )
    adjust.add_argument("--json", action="store_true", help="JSON output, amounts as strings")
    adjust.add_argument("--month", required=True, metavar="YYYY-MM")
    adjust.add_argument("--amount", required=True, help="USD; negative for a credit")
    adjust.add_argument("--note", required=True, help="what it is for")
    adjust.add_argument("--customer", metavar="ID", help="one customer (default: workspace)")
    adjust.set_defaults(run=run_adjust, writes=True)

    demo = sub.add_parser(
        "demo-data", parents=[common], help="write a seeded month of realistic demo activity"
    )
    demo.add_argument("--days", type=int, default=30)
    demo.add_argument("--tasks-per-day", type=int, default=200)
    demo.add_argument("--customers", type=int, default=30)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--anomalies",
        action="store_true",
        help="plant a customer spike, a dearer task type and a retry storm",
    )
    demo.set_defaults(run=run_demo, creates=True)

    export = sub.add_parser(
        "export",
        parents=[common],
        help="every column of events or tasks as JSON Lines or CSV",
        description="Every column of the events or tasks table, oldest first; amounts as "
        "exact decimal strings.",
    )
    export.add_argument(
        "--what", choices=list(EXPORT_TABLES), default="events", help="the table (events)"
    )
    export.add_argument(
        "--format",
        choices=("jsonl", "csv", "focus"),
        default="jsonl",
        help="output format (jsonl); focus: FinOps FOCUS 1.2 CSV of tracked costs per day "
        "(events only)",
    )
    export.add_argument("--json", action="store_true", help="the same as --format jsonl")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    period(export, None)
    export.set_defaults(run=run_export)
    return parser
