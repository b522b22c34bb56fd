"""OpenAI: the Costs API and Usage API responses, and the usage dashboard's CSV exports.

Costs API (``/v1/organization/costs``): daily buckets of ``results`` whose
``amount.value`` is in dollars (a JSON number, read exactly) and ``amount.currency``
lowercase; with ``group_by=line_item`` each result names ``"<model>, <component>"``
and its ``quantity``. Usage API (``/v1/organization/usage/completions``): tokens only;
``input_tokens`` already includes cached tokens. The dashboard exports are the same
fields flattened into CSV columns (``amount_value``, ``line_item``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
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

PROVIDER = "openai"
_TIER = re.compile(r"^\s*([a-z_]+)\s*\|\s*")
_DIMENSIONS = ("project_id", "api_key_id", "user_id", "organization_id", "batch", "service_tier")
_SCALE = {"tokens": 1, "1000_tokens": 1000}


def split_line_item(text: str | None) -> tuple[str | None, str | None]:
    """``"gpt-4o-2024-08-06, cached input"`` → model and component; non-model items
    (``"web search tool calls"``) have no model; a tier prefix (``"priority | "``) joins
    the component."""
    if not text:
        return None, None
    tier = _TIER.match(text)
    rest = text[tier.end() :] if tier else text
    model, _, tail = rest.partition(",")
    component = tail.strip() or None
    if tier:
        component = f"{tier.group(1)} {component or ''}".strip()
    if not _is_model(model.strip()):
        return None, text.strip()
    return model.strip(), component


def _is_model(name: str) -> bool:
    return bool(re.search(r"\d", name)) and " " not in name.replace(" audio", "")


def parse(text: str) -> ParsedInvoice:
    """Read any of the OpenAI shapes (JSON response or CSV export)."""
    if text.lstrip().startswith(("{", "[")):
        return _parse_json(load_json(text))
    header, rows = csv_rows(text)
    if "amount_value" in header:
        return _cost_lines(rows, "openai-cost-csv", csv=True)
    if "input_tokens" in header and "model" in header:
        return _usage_lines(rows, "openai-usage-csv")
    raise InvoiceFormatError(
        "not an OpenAI export: expected a Costs/Usage API response (JSON) or a dashboard "
        "CSV with amount_value (cost) or input_tokens and model (usage) columns"
    )


def _parse_json(document: Any) -> ParsedInvoice:
    buckets = [b for page in pages(document) for b in page.get("data", [])]
    results = [(b, r) for b in buckets for r in b.get("results") or []]
    kinds = {str(r.get("object", "")) for _, r in results}
    if any(k.endswith("costs.result") for k in kinds) or any("amount" in r for _, r in results):
        return _cost_lines(_flatten(results), "openai-costs-api", csv=False)
    if results:
        return _usage_lines(_flatten(results), "openai-usage-api")
    return ParsedInvoice(PROVIDER, "openai-costs-api", ())


def _flatten(results: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for bucket, result in results:
        row = dict(result)
        row["start_time"], row["end_time"] = bucket.get("start_time"), bucket.get("end_time")
        amount = result.get("amount")
        if isinstance(amount, dict):
            row["amount_value"], row["amount_currency"] = (
                amount.get("value"),
                amount.get("currency"),
            )
        rows.append(row)
    return rows


def _span(row: dict[str, Any]) -> tuple[Any, Any]:
    start = row.get("start_time") or row.get("start_time_iso")
    if start in (None, ""):
        raise InvoiceFormatError("a row has no start_time")
    day = utc_day(start)
    end = row.get("end_time") or row.get("end_time_iso")
    last = utc_day(end) if end not in (None, "") else day + timedelta(days=1)
    return day, max(last, day + timedelta(days=1))


def _identity(row: dict[str, Any], *extra: object) -> tuple[str, ...]:
    return tuple(str(row.get(k) or "") for k in ("start_time", *_DIMENSIONS)) + tuple(
        str(e or "") for e in extra
    )


def _cost_lines(rows: Iterable[dict[str, Any]], fmt: str, *, csv: bool) -> ParsedInvoice:
    lines, skipped = [], 0
    for row in rows:
        value = row.get("amount_value")
        if value in (None, ""):
            skipped += 1  # an empty bucket
            continue
        day, end = _span(row)
        model, component = split_line_item(row.get("line_item"))
        quantity = integer(row.get("quantity"))
        scale = _SCALE.get(str(row.get("quantity_unit") or "").lower())
        tokens = quantity * scale if quantity is not None and scale else None
        kind = (component or "").lower()
        lines.append(
            InvoiceLine(
                day=day,
                end_day=end,
                provider=PROVIDER,
                model=model,
                component=component,
                category="credit" if "credit" in kind else "usage",
                description=row.get("line_item") or None,
                amount_usd=decimal(value),
                currency=str(row.get("amount_currency") or "usd").upper(),
                input_tokens=tokens if model and "input" in kind else None,
                output_tokens=tokens if model and "output" in kind else None,
                cached_tokens=tokens if model and "cached" in kind else None,
                identity=_identity(row, row.get("line_item")),
            )
        )
    return ParsedInvoice(PROVIDER, fmt, tuple(lines), skipped)


def _usage_lines(rows: Iterable[dict[str, Any]], fmt: str) -> ParsedInvoice:
    lines, skipped = [], 0
    for row in rows:
        if integer(row.get("input_tokens")) is None and integer(row.get("output_tokens")) is None:
            skipped += 1
            continue
        day, end = _span(row)
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
                input_tokens=integer(row.get("input_tokens")),
                output_tokens=integer(row.get("output_tokens")),
                cached_tokens=integer(row.get("input_cached_tokens")),
                requests=integer(row.get("num_model_requests")),
                identity=_identity(row, row.get("model")),
            )
        )
    return ParsedInvoice(PROVIDER, fmt, tuple(lines), skipped)
