"""Reconciliation: provider invoices and usage exports against what dexcost tracked.

One parser module per provider format turns a file into :class:`InvoiceLine` items;
:func:`import_invoice` stores them (idempotently); :func:`reconcile` matches them with
the tracked events by provider, model and day.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import _anthropic, _aws, _generic, _openai
from ._import import InvoiceImport, import_invoice
from ._lines import InvoiceFormatError, InvoiceLine, ParsedInvoice, model_key, read_text
from ._match import Charge, Reconciliation, ReconLine, reconcile

#: The providers whose files :func:`parse_invoice` reads, and their parsers.
PARSERS: dict[str, Callable[[str], ParsedInvoice]] = {
    "openai": _openai.parse,
    "anthropic": _anthropic.parse,
    "aws": _aws.parse,
    "generic": _generic.parse,
}


def parse_invoice(path: str | Path, provider: str) -> ParsedInvoice:
    """Read the invoice, cost or usage export at ``path`` as ``provider`` writes it.

    Raises :class:`InvoiceFormatError` (a ValueError) saying what was expected.
    """
    if provider not in PARSERS:
        raise InvoiceFormatError(f"provider must be one of {', '.join(PARSERS)}, not {provider!r}")
    return PARSERS[provider](read_text(path))


__all__ = [
    "PARSERS",
    "Charge",
    "InvoiceFormatError",
    "InvoiceImport",
    "InvoiceLine",
    "ParsedInvoice",
    "ReconLine",
    "Reconciliation",
    "import_invoice",
    "model_key",
    "parse_invoice",
    "reconcile",
]
