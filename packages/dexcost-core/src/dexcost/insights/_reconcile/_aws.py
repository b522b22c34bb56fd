"""AWS: Cost and Usage Report rows for Amazon Bedrock (CUR 2.0, and legacy CUR headers).

CUR 2.0 columns are ``line_item_usage_start_date``, ``line_item_usage_type``,
``line_item_unblended_cost``, ``line_item_line_item_type``, ``product_product_family``,
...; the legacy CUR names them ``lineItem/UsageStartDate`` and so on. Only Bedrock
rows are read (product family ``Amazon Bedrock``, product code ``AmazonBedrock``, or
a Bedrock token usage type): Anthropic models on Bedrock are billed through AWS
Marketplace under an opaque product code. The model comes from the ``product`` map's
``model`` when present, else from the usage type (``USE1-Claude4.6Sonnet-input-tokens``).
Exports may be gzip-compressed CSV; Parquet is not read (export CSV instead).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta

from ._lines import InvoiceFormatError, InvoiceLine, ParsedInvoice, csv_rows, decimal, utc_day

PROVIDER = "bedrock"
_USAGE = re.compile(
    r"^(?:[A-Z]{2,4}\d?-)?(?P<model>.+?)-(?:mantle-)?(?P<part>input-tokens|output-tokens|"
    r"cache-read-input-token-count|cache-write-input-token-count|cache-write-tokens|"
    r"cache-read-tokens)(?P<rest>.*)$",
    re.IGNORECASE,
)
_CATEGORY = {
    "usage": "usage",
    "discountedusage": "usage",
    "savingsplancoveredusage": "usage",
    "tax": "tax",
    "credit": "credit",
    "refund": "refund",
    "fee": "fee",
    "rifee": "fee",
    "savingsplannegation": "credit",
    "bundleddiscount": "credit",
}


def _column(row: dict[str, str], *names: str) -> str:
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name].strip()
    return ""


def split_usage_type(usage_type: str) -> tuple[str | None, str | None]:
    """``USE1-Claude4.6Sonnet-input-tokens-batch`` → (``Claude4.6Sonnet``, ``input batch``)."""
    match = _USAGE.match(usage_type.strip())
    if not match:
        return None, None
    part = match.group("part").lower()
    component = {"input-tokens": "input", "output-tokens": "output"}.get(part, part)
    rest = match.group("rest").strip("-").replace("-", " ")
    return match.group("model"), f"{component} {rest}".strip()


def _product_model(text: str) -> str | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text).get("model")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def parse(text: str) -> ParsedInvoice:
    """Read the Bedrock rows of a CUR export (CSV text)."""
    header, records = csv_rows(text)
    names = {h.lower().replace("/", "_") for h in header}
    if "line_item_unblended_cost" not in names and "lineitem_unblendedcost" not in names:
        raise InvoiceFormatError(
            "not an AWS Cost and Usage Report: expected line_item_unblended_cost "
            "(CUR 2.0) or lineItem/UnblendedCost (legacy CUR) columns"
        )
    return _lines(
        {k.lower().replace("/", "_"): v for k, v in record.items() if k} for record in records
    )


def _lines(records: Iterable[dict[str, str]]) -> ParsedInvoice:
    lines, skipped = [], 0
    for number, row in enumerate(records):
        usage_type = _column(row, "line_item_usage_type", "lineitem_usagetype")
        family = _column(row, "product_product_family", "product_productfamily")
        code = _column(row, "line_item_product_code", "lineitem_productcode")
        model, component = split_usage_type(usage_type)
        if family != "Amazon Bedrock" and code != "AmazonBedrock" and model is None:
            skipped += 1
            continue
        model = _product_model(_column(row, "product")) or model
        kind = _column(row, "line_item_line_item_type", "lineitem_lineitemtype")
        start = _column(row, "line_item_usage_start_date", "lineitem_usagestartdate")
        end = _column(row, "line_item_usage_end_date", "lineitem_usageenddate")
        if not start:
            raise InvoiceFormatError(f"row {number + 2} has no usage start date")
        day = utc_day(start)
        last = utc_day(end) if end else day + timedelta(days=1)
        if end and end[11:19] not in ("", "00:00:00"):
            last += timedelta(days=1)  # an hourly row ending inside a day
        lines.append(
            InvoiceLine(
                day=day,
                end_day=max(last, day + timedelta(days=1)),
                provider=PROVIDER,
                model=model,
                component=component,
                category=_CATEGORY.get(kind.lower(), "other"),
                description=_column(
                    row, "line_item_line_item_description", "lineitem_lineitemdescription"
                )
                or usage_type
                or None,
                amount_usd=decimal(
                    _column(row, "line_item_unblended_cost", "lineitem_unblendedcost") or "0"
                ),
                currency=_column(row, "line_item_currency_code", "lineitem_currencycode") or "USD",
                identity=(
                    start,
                    end,
                    kind,
                    usage_type,
                    code,
                    _column(row, "line_item_resource_id", "lineitem_resourceid"),
                    _column(row, "line_item_iam_principal"),
                    _column(row, "line_item_usage_account_id", "lineitem_usageaccountid"),
                    _column(row, "line_item_operation", "lineitem_operation"),
                ),
            )
        )
    return ParsedInvoice(PROVIDER, "aws-cur", tuple(lines), skipped)
