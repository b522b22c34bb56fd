"""``RateRegistry``: per-unit prices of non-LLM services (a search call, an SMS, a page of OCR)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from dexcost._money import to_money


@dataclass(frozen=True)
class RateEntry:
    """The price of one unit (``per``) of a service, in USD."""

    service: str
    per: str
    cost_usd: Decimal


@functools.lru_cache(maxsize=1)
def _loader() -> type[Any]:
    """A safe YAML loader that reads ``cost_usd: 0.01`` as the Decimal written, never a float.

    Built on first use so that importing dexcost does not import PyYAML.
    """
    import yaml

    def construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
        text = str(loader.construct_scalar(node)).replace("_", "")
        lowered = text.lower()
        if lowered == ".nan":
            return Decimal("NaN")
        if lowered.endswith(".inf"):
            return Decimal(lowered.replace(".", ""))
        return Decimal(text)

    class DecimalLoader(yaml.SafeLoader):
        pass

    DecimalLoader.add_constructor("tag:yaml.org,2002:float", construct_decimal)
    return DecimalLoader


def _entry(service: object, per: object, cost_usd: object) -> RateEntry:
    if not isinstance(service, str) or not service.strip():
        raise ValueError(f"service must be a non-empty string, got {service!r}")
    if not isinstance(per, str) or not per.strip():
        raise ValueError(f"per must be a non-empty string naming the unit, got {per!r}")
    return RateEntry(service=service, per=per, cost_usd=to_money(cost_usd, name="cost_usd"))


class RateRegistry:
    """Registry of per-service cost rates for non-LLM services. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: dict[str, RateEntry] = {}
        self._version: str | None = None

    def register(self, service: str, per: str, cost_usd: Decimal | str) -> None:
        """Register (or replace) the rate of ``service``: ``cost_usd`` per ``per``.

        ``cost_usd`` is a Decimal, a str or an int; a float raises TypeError.
        """
        entry = _entry(service, per, cost_usd)
        with self._lock:
            self._rates[service] = entry
            self._version = None

    def get(self, service: str) -> RateEntry | None:
        """Return the RateEntry for ``service``, or None."""
        return self._rates.get(service)

    def load(self, path: str | Path) -> None:
        """Load rates from YAML: ``rates.<service>.per`` and ``rates.<service>.cost_usd``.

        Nothing is registered unless the whole file is valid; errors name the file and service.
        """
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        import yaml

        try:
            doc = yaml.load(text, Loader=_loader())  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ValueError(f"{p}: invalid YAML: {exc}") from None
        rates = doc.get("rates") if isinstance(doc, dict) else None
        if not isinstance(rates, dict):
            raise ValueError(f"{p}: expected a top-level 'rates' mapping of service -> rate")
        entries: dict[str, RateEntry] = {}
        for service, spec in rates.items():
            entries[str(service)] = self._parse(p, service, spec)
        with self._lock:
            self._rates.update(entries)
            self._version = None

    @staticmethod
    def _parse(path: Path, service: object, spec: Any) -> RateEntry:
        where = f"{path}: rates.{service}"
        if not isinstance(service, str):
            raise ValueError(f"{where}: the service name must be a string")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a mapping with 'per' and 'cost_usd'")
        missing = [key for key in ("per", "cost_usd") if key not in spec]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        try:
            return _entry(service, spec["per"], spec["cost_usd"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def export(self, path: str | Path) -> None:
        """Write all rates to a YAML file sorted by service; ``cost_usd`` as exact strings."""
        with self._lock:
            entries = sorted(self._rates.values(), key=lambda e: e.service)
        doc = {"rates": {e.service: {"per": e.per, "cost_usd": str(e.cost_usd)} for e in entries}}
        import yaml

        text = yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True)
        p = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @property
    def pricing_version(self) -> str:
        """SHA-256 (hex) of all registered rates: equal rates give equal versions, in any order."""
        with self._lock:
            if self._version is None:
                canonical = [
                    [e.service, e.per, format(e.cost_usd.normalize(), "f")]
                    for e in sorted(self._rates.values(), key=lambda e: e.service)
                ]
                blob = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
                self._version = hashlib.sha256(blob.encode("utf-8")).hexdigest()
            return self._version
