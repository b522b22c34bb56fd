"""The insight commands: report views, statements, reconciliation, revenue, adjustments,
demo data."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from contextlib import closing
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from dexcost.insights import (
    AnomalyReport,
    Period,
    Reconciliation,
    add_adjustment,
    cost_health,
    customer_detail,
    customer_report,
    find_anomalies,
    import_invoice,
    import_revenue,
    monthly_statement,
    notify_anomalies,
    overview,
    parse_invoice,
    parse_revenue_csv,
    reconcile,
    statement_csv,
    statement_pdf,
    task_type_report,
    to_jsonable,
)
from dexcost.store._connect import open_write_connection

from . import _render as r
from ._views import (
    render_anomalies,
    render_customer,
    render_customers,
    render_health,
    render_overview,
    render_task_types,
)

VIEWS = ("overview", "health", "customers", "customer", "tasks", "anomalies")


class CommandError(Exception):
    """A usage problem found while running a command (exit status 2)."""


def _dump(out: TextIO, value: object) -> None:
    json.dump(to_jsonable(value), out, indent=2, ensure_ascii=False)
    out.write("\n")


def run_view(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost report VIEW``: one of the insight reports."""
    view, period = args.view, args.period
    result: object
    if view == "overview":
        report = overview(conn, period)
        result, text = report, render_overview(report)
    elif view == "health":
        health = cost_health(conn, period)
        result, text = health, render_health(health)
    elif view == "customers":
        customers = customer_report(conn, period)
        result, text = customers, render_customers(customers, args.top)
    elif view == "customer":
        if not args.target:
            raise CommandError("dexcost report customer needs a customer id: report customer ID")
        detail = customer_detail(conn, args.target, period)
        result, text = detail, render_customer(detail)
    elif view == "tasks":
        types = task_type_report(conn, period)
        result, text = types, render_task_types(types, args.top)
    else:
        found = find_anomalies(conn, period, window=args.window)
        if args.webhook or args.dry_run:
            return _notify(conn, args, found, out)
        result, text = found, render_anomalies(found)
    if args.json:
        _dump(out, result)
    else:
        out.write(text)
    return 0


def _notify(
    conn: sqlite3.Connection, args: argparse.Namespace, report: AnomalyReport, out: TextIO
) -> int:
    url = args.webhook or os.environ.get("DEXCOST_WEBHOOK_URL")
    if not url and not args.dry_run:
        raise CommandError("--webhook URL (or DEXCOST_WEBHOOK_URL) is needed to notify")
    with closing(open_write_connection(args.db_path)) as wconn:
        result = notify_anomalies(wconn, report, url, dry_run=args.dry_run)
    if args.json:
        _dump(out, result)
        return 0
    if result.payload is None:
        out.write(f"Nothing new to send ({result.already_sent} already sent).\n")
    elif result.dry_run:
        out.write(f"Dry run: would send {len(result.sent)} anomalies to {url or '(no URL)'}:\n")
        out.write(json.dumps(result.payload, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(f"Sent {len(result.sent)} anomalies to the webhook.\n")
    return 0


def run_statement(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost statement --month YYYY-MM``: a month's statement as CSV or PDF."""
    try:
        statement = monthly_statement(conn, args.month, customer_id=args.customer, tz=args.tz)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        _dump(out, statement)
        return 0
    if args.format == "csv":
        text = statement_csv(statement)
        if args.output in (None, "-"):
            out.write(text)
        else:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
            print(f"dexcost: wrote the statement to {args.output}", file=sys.stderr)
        return 0
    data = statement_pdf(statement)
    target = args.output
    if target == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        return 0
    if target is None:
        suffix = f"-{args.customer}" if args.customer else ""
        target = f"dexcost-statement-{args.month}{suffix}.pdf"
    Path(target).write_bytes(data)
    print(f"dexcost: wrote the statement to {target}", file=sys.stderr)
    return 0


def run_reconcile(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost reconcile [FILE] --provider P``: import an invoice and compare it."""
    period = args.period if args.since or args.until else None
    if args.invoice:
        try:
            parsed = parse_invoice(args.invoice, args.provider)
        except (ValueError, OSError) as exc:
            raise CommandError(f"cannot read {args.invoice}: {exc}") from None
        with closing(open_write_connection(args.db_path)) as wconn:
            done = import_invoice(
                wconn,
                parsed,
                file_name=Path(args.invoice).name,
                content=Path(args.invoice).read_bytes(),
            )
        print(
            f"dexcost: {parsed.format}: {done.added} new lines, {done.replaced} updated, "
            f"{done.unchanged} already imported"
            + (
                f", {done.skipped} rows skipped (empty or not this provider's)"
                if done.skipped
                else ""
            ),
            file=sys.stderr,
        )
        provider = parsed.provider
        if period is None and done.first_day and done.last_day:
            period = Period(_utc(done.first_day), _utc(done.last_day))
    else:
        provider = "bedrock" if args.provider == "aws" else args.provider
        if provider == "generic":
            raise CommandError("name the provider the stored lines are for, not generic")
    result = reconcile(
        conn, provider, period, threshold_pct=Decimal(str(args.threshold)).normalize()
    )
    if args.json:
        _dump(out, result)
    else:
        out.write(render_reconciliation(result, args.top))
    return 0


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def render_reconciliation(rec: Reconciliation, top: int | None = 10) -> str:
    """The text form of a :class:`Reconciliation`."""
    if not rec.lines:
        return f"No invoice lines stored for {rec.provider} in this period.\n"
    span = f"{rec.first_day} → {rec.last_day} (UTC days, end excluded)"
    head = [
        f"dexcost reconcile {rec.provider}: {span}\n",
        f"{'Tracked':<12}{r.money(rec.tracked_usd)}\n{'Invoiced':<12}{r.money(rec.invoiced_usd)}"
        f"  (usage lines)\n{'Variance':<12}{r.money(rec.variance_usd)}  ({r.pct(rec.variance_pct)})"
        "   = (tracked - invoiced) / invoiced x 100\n",
    ]
    for c in rec.other_charges:
        head.append(
            f"Also on the invoice: {c.category} {r.money(c.amount_usd)} ({c.line_count} lines)\n"
        )
    models = rec.by_model[:top]
    table = [
        [
            m.model or m.description or "(no model)",
            r.money(m.tracked_usd),
            r.money(m.invoiced_usd),
            r.pct(m.variance_pct)
            if m.invoiced_usd is not None
            else "tokens " + r.pct(m.token_variance_pct),
            "!" if m.flagged else "",
        ]
        for m in models
    ]
    head.append(
        "By model\n"
        + r.table(["MODEL", "TRACKED", "INVOICED", "VARIANCE", ""], table, right=(1, 2, 3))
        + "\n"
    )
    flagged = rec.flagged[:top]
    if flagged:
        lines = [
            f"  {x.day} {x.model or x.description or '(no model)'}: tracked "
            f"{r.money(x.tracked_usd)}, invoiced {r.money(x.invoiced_usd)}"
            f" ({r.pct(x.variance_pct)})\n    likely cause: {x.cause}"
            for x in flagged
        ]
        more = f" (first {len(flagged)})" if len(rec.flagged) > len(flagged) else ""
        head.append(
            f"{len(rec.flagged)} of {len(rec.lines)} lines differ by more than "
            f"{rec.threshold_pct}%{more}:\n" + "\n".join(lines) + "\n"
        )
    else:
        head.append(f"Every line is within {rec.threshold_pct}%.\n")
    for w in rec.warnings:
        head.append(f"Warning: {w}\n")
    return "\n".join(head)


def run_revenue(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost revenue import FILE.csv``."""
    try:
        rows = parse_revenue_csv(Path(args.file).read_text(encoding="utf-8-sig"))
    except (ValueError, OSError) as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    done = import_revenue(conn, rows, source=Path(args.file).name)
    if args.json:
        _dump(out, done)
    else:
        out.write(
            f"Imported {len(rows)} revenue rows: {done.added} new, {done.replaced} replaced.\n"
        )
    return 0


def run_adjust(conn: sqlite3.Connection, args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost adjust --month M --amount A --note TEXT``: a credit or charge."""
    try:
        amount = Decimal(args.amount)
        made = add_adjustment(conn, args.month, amount, args.note, customer_id=args.customer)
    except (ValueError, InvalidOperation) as exc:
        raise CommandError(f"cannot record the adjustment: {exc}") from None
    if args.json:
        _dump(out, made)
    else:
        out.write(f"Recorded {r.money(made.amount_usd)} for {made.month}: {made.description}\n")
    return 0


def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    """``dexcost demo-data``: write a seeded month of realistic activity to a store."""
    from dexcost.insights._workload import generate, write
    from dexcost.store import LocalStore

    anomalies = ("customer", "task_type", "retries") if args.anomalies else ()
    work = generate(
        seed=args.seed,
        days=args.days,
        tasks_per_day=args.tasks_per_day,
        customers=args.customers,
        anomalies=anomalies,
    )
    store = LocalStore(args.db_path)
    try:
        write(work, store)
    finally:
        store.close()
    out.write(
        f"Wrote {len(work.tasks):,} tasks and {len(work.events):,} events over "
        f"{args.days} days to {args.db_path}\n"
    )
    for p in work.planted:
        out.write(f"  planted: {p.kind} {p.subject or ''} on {p.day}\n")
    return 0
