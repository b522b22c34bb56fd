"""Storing invoice lines so that importing the same export twice never doubles it.

Each line gets an id from its provider, format and identity (the fields that name it
in its export: day, line item, project, API key, ...) plus how many identical lines
came before it in the same file. Importing it again replaces the stored amount, so a
later export of the same days (with corrected, final figures) wins.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone

from dexcost.store._values import format_ts, money_text

from ._lines import InvoiceLine, ParsedInvoice, model_key

UTC = timezone.utc


@dataclass(frozen=True)
class InvoiceImport:
    """What an import did: new lines, lines whose amount changed, lines already there."""

    source_id: str
    provider: str
    format: str
    added: int
    replaced: int
    unchanged: int
    skipped: int
    first_day: date | None
    last_day: date | None


def line_id(line: InvoiceLine, fmt: str, occurrence: int) -> str:
    """The stable id of ``line``: the same line of the same export always gets it."""
    text = "\0".join((fmt, line.provider, *line.identity, str(occurrence)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def import_invoice(
    conn: sqlite3.Connection, parsed: ParsedInvoice, *, file_name: str | None, content: bytes
) -> InvoiceImport:
    """Upsert the lines of ``parsed`` through a write connection, in one transaction."""
    source_id = hashlib.sha256(content).hexdigest()[:32]
    now = format_ts(datetime.now(UTC))
    seen: Counter[tuple[str, ...]] = Counter()
    added = replaced = unchanged = 0
    days = [line.day for line in parsed.lines]
    ends = [line.end_day for line in parsed.lines]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for line in parsed.lines:
            occurrence = seen[line.identity]
            seen[line.identity] += 1
            ident = line_id(line, parsed.format, occurrence)
            amount = None if line.amount_usd is None else money_text(line.amount_usd)
            before = conn.execute(
                "SELECT amount_usd, input_tokens, output_tokens FROM invoice_lines"
                " WHERE line_id = ?",
                (ident,),
            ).fetchone()
            if before is None:
                added += 1
            elif tuple(before) == (amount, line.input_tokens, line.output_tokens):
                unchanged += 1
            else:
                replaced += 1
            conn.execute(
                "INSERT INTO invoice_lines (line_id, source_id, provider, format, day, end_day,"
                " model, model_key, component, category, description, amount_usd, currency,"
                " input_tokens, output_tokens, cached_tokens, requests, occurrence, imported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (line_id) DO UPDATE SET source_id = excluded.source_id,"
                " amount_usd = excluded.amount_usd, currency = excluded.currency,"
                " input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,"
                " cached_tokens = excluded.cached_tokens, requests = excluded.requests,"
                " imported_at = excluded.imported_at",
                (
                    ident,
                    source_id,
                    line.provider,
                    parsed.format,
                    line.day.isoformat(),
                    line.end_day.isoformat(),
                    line.model,
                    model_key(line.model),
                    line.component,
                    line.category,
                    line.description,
                    amount,
                    line.currency,
                    line.input_tokens,
                    line.output_tokens,
                    line.cached_tokens,
                    line.requests,
                    occurrence,
                    now,
                ),
            )
        conn.execute(
            "INSERT INTO invoices (source_id, provider, format, file_name, first_day, last_day,"
            " line_count, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id)"
            " DO UPDATE SET imported_at = excluded.imported_at",
            (
                source_id,
                parsed.provider,
                parsed.format,
                file_name,
                min(days).isoformat() if days else None,
                max(ends).isoformat() if ends else None,
                len(parsed.lines),
                now,
            ),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return InvoiceImport(
        source_id=source_id,
        provider=parsed.provider,
        format=parsed.format,
        added=added,
        replaced=replaced,
        unchanged=unchanged,
        skipped=parsed.skipped,
        first_day=min(days) if days else None,
        last_day=max(ends) if ends else None,
    )
