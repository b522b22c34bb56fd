"""A documented CSV for any other invoice: one row per day, provider and model.

Columns (header required, any order): ``date`` (``YYYY-MM-DD``, UTC), ``provider``
(as dexcost records it: ``openai``, ``anthropic``, ``bedrock``, ``pinecone``...),
``model`` (empty for a non-model charge), ``amount`` (decimal), and optionally
``currency`` (default USD), ``end_date`` (exclusive; default the next day),
``category`` (usage, tax, credit, refund, fee, adjustment; default usage),
``input_tokens``, ``output_tokens``, ``description``.
"""

from __future__ import annotations

from datetime import date, timedelta

from ._lines import (
    CATEGORIES,
    InvoiceFormatError,
    InvoiceLine,
    ParsedInvoice,
    csv_rows,
    decimal,
    integer,
    utc_day,
)

REQUIRED = ("date", "provider", "amount")


def parse(text: str) -> ParsedInvoice:
    """Read a generic invoice CSV; raise InvoiceFormatError naming the bad line."""
    header, records = csv_rows(text)
    lowered = [h.lower() for h in header]
    missing = [c for c in REQUIRED if c not in lowered]
    if missing:
        raise InvoiceFormatError(
            f"the generic invoice CSV needs the columns {', '.join(REQUIRED)}; "
            f"missing: {', '.join(missing)}"
        )
    lines = []
    for number, record in enumerate(records, start=2):
        row = {k.lower(): (v or "").strip() for k, v in record.items() if k}
        try:
            day = utc_day(row["date"])
            end = date.fromisoformat(row["end_date"]) if row.get("end_date") else None
            category = (row.get("category") or "usage").lower()
            if category not in CATEGORIES:
                raise InvoiceFormatError(f"category must be one of {', '.join(CATEGORIES)}")
            if not row["provider"]:
                raise InvoiceFormatError("the provider is empty")
            lines.append(
                InvoiceLine(
                    day=day,
                    end_day=end or day + timedelta(days=1),
                    provider=row["provider"].lower(),
                    model=row.get("model") or None,
                    component=None,
                    category=category,
                    description=row.get("description") or None,
                    amount_usd=decimal(row["amount"]),
                    currency=(row.get("currency") or "USD").upper(),
                    input_tokens=integer(row.get("input_tokens")),
                    output_tokens=integer(row.get("output_tokens")),
                    identity=tuple(
                        row.get(k, "")
                        for k in (
                            "date",
                            "end_date",
                            "provider",
                            "model",
                            "category",
                            "description",
                        )
                    ),
                )
            )
        except (InvoiceFormatError, ValueError) as exc:
            raise InvoiceFormatError(f"line {number}: {exc}") from None
    return ParsedInvoice(lines[0].provider if lines else "generic", "generic-csv", tuple(lines))
