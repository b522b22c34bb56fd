"""One answer for the HTTP layer: who prices a call to this URL, and how."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from dexcost.catalog._catalog import ServiceCatalog
from dexcost.catalog._domain_rates import DomainRate, DomainRateRegistry, default_registry
from dexcost.catalog._extract import CostExtractionResult
from dexcost.catalog._llm_hosts import is_llm_provider_url
from dexcost.catalog._match import normalize_host, split_url
from dexcost.catalog._schema import CatalogEntry

_default_catalog: ServiceCatalog | None = None
_lock = threading.Lock()
_catalog_changed: list[Callable[[], None]] = []


@dataclass(frozen=True)
class PricedService:
    """A call that will be billed: by a user's domain rate or by a catalog entry."""

    service_name: str
    pricing_source: str
    entry: CatalogEntry | None = None
    rate: DomainRate | None = None
    catalog: ServiceCatalog | None = None

    @property
    def needs_body(self) -> bool:
        """Whether the response body must be read to price the call."""
        return self.entry.needs_body if self.entry is not None else False

    @property
    def body_fields(self) -> tuple[str, ...]:
        """The JSON body paths the pricing reads (empty when the body is not needed)."""
        return self.entry.body_fields if self.entry is not None else ()

    def extract_cost(self, headers: object = None, body: object = None) -> CostExtractionResult:
        """The cost of one response; never raises."""
        if self.rate is not None:
            return CostExtractionResult(
                self.rate.cost_usd, "computed", self.pricing_source, self.service_name
            )
        catalog = self.catalog if self.catalog is not None else get_default_catalog()
        if self.entry is None:
            raise ValueError("a PricedService needs an entry or a rate")
        return catalog.extract_cost(self.entry, headers, body)


def get_default_catalog() -> ServiceCatalog:
    """The catalog :func:`resolve_service` uses: the bundled one unless refreshed."""
    global _default_catalog
    if _default_catalog is None:
        with _lock:
            if _default_catalog is None:
                _default_catalog = ServiceCatalog.load_bundled()
    return _default_catalog


def set_default_catalog(catalog: ServiceCatalog | None) -> None:
    """Replace the catalog :func:`resolve_service` uses (None restores the bundled one)."""
    global _default_catalog
    _default_catalog = catalog
    for callback in _catalog_changed:
        callback()


def on_pricing_change(callback: Callable[[], None]) -> None:
    """Call ``callback`` (no arguments; it must not raise) after the default catalog or a
    default domain rate changes: whatever was worked out from them is out of date."""
    _catalog_changed.append(callback)
    default_registry.on_change(callback)


def refresh_default_catalog(url: str, *, timeout: float = 2.0) -> ServiceCatalog:
    """Fetch a newer catalog from ``url`` and use it; on failure keep the current one."""
    catalog = ServiceCatalog.from_url(url, timeout=timeout, fallback=get_default_catalog())
    set_default_catalog(catalog)
    return catalog


def resolve_service(
    url: str,
    method: str | None = None,
    *,
    catalog: ServiceCatalog | None = None,
    registry: DomainRateRegistry | None = None,
) -> PricedService | None:
    """Who prices a call to ``url``: a registered domain rate first, then the catalog.

    LLM provider endpoints are left to the provider instrumentation: they resolve to None
    unless the user registered a rate for that exact host.
    """
    reg = registry if registry is not None else default_registry
    rate = reg.lookup(url)
    if rate is not None and not (rate.wildcard and is_llm_provider_url(url)):
        host = normalize_host(split_url(url)[0]) or rate.pattern
        return PricedService(service_name=host, pricing_source="rate_registry", rate=rate)
    cat = catalog if catalog is not None else get_default_catalog()
    entry = cat.lookup(url, method)
    if entry is None:
        return None
    return PricedService(
        service_name=entry.service, pricing_source="service_catalog", entry=entry, catalog=cat
    )
