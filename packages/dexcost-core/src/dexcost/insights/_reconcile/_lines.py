"""What every invoice parser produces: line items in one shape, and model-name keys.

Providers spell one model many ways (``gpt-4o-2024-08-06``, ``Claude Sonnet 4.5``,
``USE1-Claude4.6Sonnet-input-tokens``, ``anthropic.claude-sonnet-4-6-v1:0``); a model
key drops dates, versions, regions and vendor prefixes and sorts the remaining words
and numbers, so all of them meet the names dexcost recorded.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

UTC = timezone.utc

#: The charge categories a line can have; only ``usage`` is compared with tracked cost.
CATEGORIES = ("usage", "tax", "credit", "refund", "fee", "adjustment", "other")

_PREFIXES = re.compile(
    r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:openai|anthropic|amazon|meta|mistral|cohere|"
    r"google|models|ai21|deepseek|qwen)[./]"
)
_SUFFIXES = (
    re.compile(r"[-:@]v\d+(?::\d+)?$"),
    re.compile(r":\d+$"),
    re.compile(r"[-@]\d{4}-\d{2}-\d{2}$"),
    re.compile(r"[-@]\d{8}$"),
)


def model_key(name: str | None) -> str:
    """A spelling-independent key for a model name ('' when there is no model)."""
    if not name:
        return ""
    if name == "*":
        return "*"  # a line for every model of the provider
    text = name.strip().lower()
    for _ in range(2):
        text = _PREFIXES.sub("", text)
    for _ in range(3):
        for pattern in _SUFFIXES:
            text = pattern.sub("", text)
    words = re.findall(r"[a-z]+|\d+", text)
    return "-".join(sorted(words))


class InvoiceFormatError(ValueError):
    """The file is not in a format the chosen provider's parser reads."""


@dataclass(frozen=True)
class InvoiceLine:
    """One line of a provider's invoice, cost export or usage export, normalised.

    ``day`` to ``end_day`` (exclusive) are UTC days. ``amount_usd`` is None for a usage
    export (tokens only). Token counts follow dexcost's convention: ``input_tokens``
    includes cached tokens. ``identity`` names the line within its file, so importing
    the same export again replaces it instead of adding it twice.
    """

    day: date
    end_day: date
    provider: str
    model: str | None
    component: str | None
    category: str
    description: str | None
    amount_usd: Decimal | None
    currency: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    requests: int | None = None
    identity: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ParsedInvoice:
    """The lines read from one file, its format, and the rows skipped (with why)."""

    provider: str
    format: str
    lines: tuple[InvoiceLine, ...]
    skipped: int = 0
    notes: tuple[str, ...] = ()


def read_text(path: str | Path) -> str:
    """The text of ``path``; ``.gz`` files are decompressed (AWS CUR exports are)."""
    p = Path(path)
    data = p.read_bytes()
    if p.suffix == ".gz" or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8-sig")


def load_json(text: str) -> Any:
    """JSON with exact decimals; also JSON Lines (one page per line) as a list."""
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        pass
    try:
        return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    except ValueError:
        raise InvoiceFormatError("the file is neither JSON nor JSON Lines") from None


def csv_rows(text: str) -> tuple[list[str], Iterator[dict[str, str]]]:
    """The header (stripped) and rows of a CSV text."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    return header, iter(reader)


def pages(document: Any) -> Iterable[dict[str, Any]]:
    """The pages of an API response saved as one page, a list of pages, or JSON Lines."""
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list) and all(isinstance(p, dict) for p in document):
        if document and "data" not in document[0] and "results" in document[0]:
            return [{"data": document}]  # a bare list of buckets
        return document
    raise InvoiceFormatError("expected an API response object (or a list of them)")


def decimal(value: object, what: str = "amount") -> Decimal:
    """An exact Decimal from a JSON number, a Decimal or text; InvoiceFormatError if not."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip().lstrip("$")
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
            text = text.replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvoiceFormatError(f"the {what} {value!r} is not a number") from None
        if number.is_finite():
            return number
    raise InvoiceFormatError(f"the {what} {value!r} is not a number")


def integer(value: object) -> int | None:
    """A token count from a number or text (``59200.0`` too); None when empty."""
    if value is None or value == "":
        return None
    try:
        return int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        return None


def utc_day(value: object) -> date:
    """The UTC day of a unix timestamp, an ISO date or an ISO datetime."""
    if isinstance(value, (int, Decimal)) or (isinstance(value, str) and value.strip().isdigit()):
        return datetime.fromtimestamp(int(value), UTC).date()
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                raise InvoiceFormatError(f"{value!r} is not a date or time") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.date()
    raise InvoiceFormatError(f"{value!r} is not a date or time")
