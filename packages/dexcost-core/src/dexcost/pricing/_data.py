"""Reading a LiteLLM-shaped price document into Decimal prices and a name index.

The document maps a model name to an entry of per-token USD prices (``input_cost_per_token``
and friends). Only the fields dexcost prices with are kept, so the parsed data stays small;
prices are parsed as Decimal straight from the JSON text, never through float.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

#: Entry fields whose names start with one of these carry a per-token price.
PRICE_PREFIXES = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
)
_KEEP = frozenset({"litellm_provider", "tiered_pricing"})
#: LiteLLM's documentation entry: it describes the fields, it is not a model.
_NOT_MODELS = frozenset({"sample_spec"})
BUNDLED_FILE = "model_prices.json"

# Prices in the JSON carry binary-float noise (``5.0000000000000004E-8``); 15 significant
# digits keep every real price and drop the noise.
_CLEAN = Context(prec=15)


def clean_price(value: object) -> Decimal | None:
    """Return a price field as a finite, non-negative, noise-free Decimal, or None if unusable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (int, str)):
        try:
            d = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            return None
    elif isinstance(value, float):
        d = Decimal(repr(value))
    else:
        return None
    if not d.is_finite() or d < 0:
        return None
    return _CLEAN.create_decimal(d).normalize(_CLEAN)


@dataclass(frozen=True)
class PriceData:
    """One loaded price document: entries by name plus the indexes name resolution uses."""

    entries: Mapping[str, Mapping[str, Any]]
    """Original entry name -> the entry's price fields (JSON numbers as Decimal)."""
    by_lower: Mapping[str, str]
    """Lower-case entry name -> original entry name."""
    bare: Mapping[str, tuple[str, ...]]
    """Lower-case name without its provider prefix -> entry names listed under that prefix."""
    prefixes: frozenset[str]
    """Lower-case first path segments of entry names and provider names (``openai``, ``azure``)."""
    sha256: str
    origin: str


def _provider_root(provider: str) -> str:
    """``vertex_ai-anthropic_models`` -> ``vertex_ai``; ``bedrock_converse`` stays as is."""
    return provider.split("-", 1)[0]


def parse_document(raw: bytes, origin: str) -> PriceData:
    """Parse a price document; raise ValueError (naming ``origin``) if it is not one."""
    try:
        doc = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{origin}: not a valid JSON price document: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"{origin}: a price document must be a JSON object of model entries, "
            f"got {type(doc).__name__}"
        )
    entries: dict[str, dict[str, Any]] = {}
    priced = 0
    for name, entry in doc.items():
        if not isinstance(entry, dict) or name in _NOT_MODELS or not name.strip():
            continue
        kept = {k: v for k, v in entry.items() if k in _KEEP or k.startswith(PRICE_PREFIXES)}
        entries[name] = kept
        if (
            kept.get("input_cost_per_token") is not None
            or kept.get("output_cost_per_token") is not None
            or kept.get("tiered_pricing")
        ):
            priced += 1
    if priced == 0:
        raise ValueError(f"{origin}: no model in the document has a per-token price")
    return _index(entries, hashlib.sha256(raw).hexdigest(), origin)


def _index(entries: dict[str, dict[str, Any]], sha256: str, origin: str) -> PriceData:
    by_lower: dict[str, str] = {}
    bare: dict[str, list[str]] = {}
    prefixes: set[str] = set()
    for name, entry in entries.items():
        lower = name.strip().lower()
        by_lower.setdefault(lower, name)
        provider = entry.get("litellm_provider")
        root = _provider_root(provider.lower()) if isinstance(provider, str) else ""
        if root:
            prefixes.add(root)
        head, sep, rest = lower.partition("/")
        if sep and rest:
            prefixes.add(head)
            # Only the provider's own listing (``deepseek/deepseek-chat`` by deepseek) makes
            # a bare name resolvable; a reseller's listing is its own price.
            if head == root:
                bare.setdefault(rest, []).append(name)
    return PriceData(
        entries=entries,
        by_lower=by_lower,
        bare={k: tuple(v) for k, v in bare.items()},
        prefixes=frozenset(prefixes),
        sha256=sha256,
        origin=origin,
    )


def load_file(path: str | Path) -> PriceData:
    """Load a user-provided price document; a missing or invalid file raises a clear error."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"price data file not found: {p}") from None
    except IsADirectoryError:
        raise ValueError(f"price data path is a directory, not a JSON file: {p}") from None
    return parse_document(raw, str(p))


_bundled: PriceData | None = None
_bundled_lock = threading.Lock()


def bundled() -> PriceData:
    """The price data shipped with dexcost, parsed once per process."""
    global _bundled
    data = _bundled
    if data is None:
        with _bundled_lock:
            data = _bundled
            if data is None:
                raw = (
                    resources.files("dexcost.pricing")
                    .joinpath("data")
                    .joinpath(BUNDLED_FILE)
                    .read_bytes()
                )
                data = _bundled = parse_document(raw, f"bundled {BUNDLED_FILE}")
    return data
