"""Anthropic: the Admin API cost and usage reports, and the Console's CSV exports.

Cost report (``/v1/organizations/cost_report``): daily buckets whose ``amount`` is a
decimal string in **cents** (``"123.45"`` is $1.2345). Usage report
(``/v1/organizations/usage_report/messages``): tokens only, with
``uncached_input_tokens`` excluding cache reads and writes, so dexcost's input
(everything) is their sum. Console CSVs: cost in **dollars** (``cost_usd``) with the
model's display name (``Claude Sonnet 4.5``); usage with ``usage_input_tokens_*``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ._lines import (
    InvoiceFormatError,
    InvoiceLine,
    ParsedInvoice,
    csv_rows,
    decimal,
    integer,
    load_json,
    pages,
    utc_day,
)

PROVIDER = "anthropic"
_CENTS = Decimal(100)
_DIMENSIONS = (
    "workspace_id",
    "api_key_id",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
    "account_id",
)


def parse(text: str) -> ParsedInvoice:
    """Read any of the Anthropic shapes (API response or Console CSV)."""
    if text.lstrip().startswith(("{", "[")):
        buckets = [b for page in pages(load_json(text)) for b in page.get("data", [])]
        rows = [(b, r) for b in buckets for r in b.get("results") or []]
        if any("amount" in r for _, r in rows):
            return _api_costs(rows)
        return _api_usage(rows)
    header, records = csv_rows(text)
    if "cost_usd" in header:
        return _console_costs(records)
    if "usage_output_tokens" in header:
        return _console_usage(records)
    raise InvoiceFormatError(
        "not an Anthropic export: expected a cost_report/usage_report response (JSON) or a "
        "Console CSV with cost_usd (cost) or usage_output_tokens (usage) columns"
    )


def _days(bucket: dict[str, Any]) -> tuple[Any, Any]:
    day = utc_day(bucket.get("starting_at"))
    end = bucket.get("ending_at")
    last = utc_day(end) if end else day + timedelta(days=1)
    return day, max(last, day + timedelta(days=1))


def _identity(bucket: dict[str, Any], row: dict[str, Any], *extra: object) -> tuple[str, ...]:
    keys = tuple(str(row.get(k) or "") for k in _DIMENSIONS)
    return (str(bucket.get("starting_at") or ""), *keys, *(str(e or "") for e in extra))


def _api_costs(rows: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> ParsedInvoice:
    lines = []
    for bucket, row in rows:
        day, end = _days(bucket)
        kind = row.get("cost_type") or "tokens"
        lines.append(
            InvoiceLine(
                day=day,
                end_day=end,
                provider=PROVIDER,
                # Token costs not grouped by description carry no model: all models.
                model=row.get("model") or ("*" if kind == "tokens" else None),
                component=row.get("token_type") or (kind if kind != "tokens" else None),
                category="usage",
                description=row.get("description") or None,
                amount_usd=decimal(row.get("amount")) / _CENTS,
                currency=str(row.get("currency") or "USD").upper(),
                identity=_identity(
                    bucket,
                    row,
                    row.get("model"),
                    row.get("token_type"),
                    kind,
                    row.get("description"),
                ),
            )
        )
    return ParsedInvoice(PROVIDER, "anthropic-cost-api", tuple(lines))


def _api_usage(rows: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> ParsedInvoice:
    lines = []
    for bucket, row in rows:
        day, end = _days(bucket)
        creation = row.get("cache_creation") or {}
        written = (
            sum(integer(v) or 0 for v in creation.values()) if isinstance(creation, dict) else 0
        )
        read = integer(row.get("cache_read_input_tokens")) or 0
        uncached = integer(row.get("uncached_input_tokens")) or 0
        lines.append(
            InvoiceLine(
                day=day,
                end_day=end,
                provider=PROVIDER,
                model=row.get("model") or None,
                component=None,
                category="usage",
                description=None,
                amount_usd=None,
                currency=None,
                input_tokens=uncached + written + read,
                output_tokens=integer(row.get("output_tokens")) or 0,
                cached_tokens=read,
                identity=_identity(bucket, row, row.get("model")),
            )
        )
    return ParsedInvoice(PROVIDER, "anthropic-usage-api", tuple(lines))


def _console_costs(records: Iterable[dict[str, str]]) -> ParsedInvoice:
    lines = []
    for row in records:
        day = utc_day(row.get("usage_date_utc") or "")
        kind = (row.get("cost_type") or "token").strip()
        lines.append(
            InvoiceLine(
                day=day,
                end_day=day + timedelta(days=1),
                provider=PROVIDER,
                model=(row.get("model") or "").strip() or None,
                component=(row.get("token_type") or "").strip() or kind,
                category="usage",
                description=None,
                amount_usd=decimal(row.get("cost_usd") or "0"),
                currency="USD",
                identity=tuple(
                    (row.get(k) or "").strip()
                    for k in (
                        "usage_date_utc",
                        "model",
                        "workspace",
                        "api_key",
                        "api_key_id",
                        "usage_type",
                        "context_window",
                        "token_type",
                        "cost_type",
                        "inference_geo",
                        "speed",
                    )
                ),
            )
        )
    return ParsedInvoice(PROVIDER, "anthropic-console-cost-csv", tuple(lines))


def _console_usage(records: Iterable[dict[str, str]]) -> ParsedInvoice:
    lines = []
    for row in records:
        day = utc_day(row.get("usage_date_utc") or "")
        parts = ("no_cache", "cache_write_5m", "cache_write_1h", "cache_read")
        tokens = [integer(row.get(f"usage_input_tokens_{p}")) or 0 for p in parts]
        lines.append(
            InvoiceLine(
                day=day,
                end_day=day + timedelta(days=1),
                provider=PROVIDER,
                model=(row.get("model_version") or "").strip() or None,
                component=None,
                category="usage",
                description=None,
                amount_usd=None,
                currency=None,
                input_tokens=sum(tokens),
                output_tokens=integer(row.get("usage_output_tokens")) or 0,
                cached_tokens=tokens[3],
                identity=tuple(
                    (row.get(k) or "").strip()
                    for k in (
                        "usage_date_utc",
                        "model_version",
                        "api_key",
                        "workspace",
                        "usage_type",
                        "context_window",
                        "inference_geo",
                        "speed",
                    )
                ),
            )
        )
    return ParsedInvoice(PROVIDER, "anthropic-console-usage-csv", tuple(lines))
