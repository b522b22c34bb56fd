"""The command line: ``dexcost {tasks,report,export}`` and their options."""

from __future__ import annotations

import argparse
from importlib import metadata

from dexcost._types import TASK_STATUSES
from dexcost.insights import EXPORT_FORMATS, EXPORT_TABLES

from ._commands import run_export, run_report, run_tasks

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
        help="spend, customers, task types, retries and unpriced calls",
        description="Total spend, spend by customer and task type, retry cost and the calls "
        "whose cost is unknown, over a period.",
    )
    report.add_argument("--json", action="store_true", help="JSON output, amounts as strings")
    report.add_argument(
        "--top", type=_limit, default=10, metavar="N", help="rows per table; 0 for all (10)"
    )
    period(report, "30d")
    report.set_defaults(run=run_report)

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
        "--format", choices=EXPORT_FORMATS, default="jsonl", help="output format (jsonl)"
    )
    export.add_argument("--json", action="store_true", help="the same as --format jsonl")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    period(export, None)
    export.set_defaults(run=run_export)
    return parser
