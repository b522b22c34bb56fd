"""The service catalog: price rules for paid non-LLM APIs, matched by URL.

``ServiceCatalog.load_bundled()`` gives the catalog shipped with dexcost;
``resolve_service(url)`` consults user domain rates first, then the catalog.
"""

from __future__ import annotations

from dexcost.catalog._catalog import ServiceCatalog
from dexcost.catalog._domain_rates import (
    DomainRate,
    DomainRateRegistry,
    clear_domain_rates,
    register_domain_rate,
    unregister_domain_rate,
)
from dexcost.catalog._extract import CostExtractionResult
from dexcost.catalog._llm_hosts import LLM_PROVIDER_HOSTS, is_llm_provider_url
from dexcost.catalog._resolve import (
    PricedService,
    get_default_catalog,
    refresh_default_catalog,
    resolve_service,
    set_default_catalog,
)
from dexcost.catalog._schema import CATEGORIES, RULE_KINDS, CatalogEntry, CatalogError

__all__ = [
    "CATEGORIES",
    "LLM_PROVIDER_HOSTS",
    "RULE_KINDS",
    "CatalogEntry",
    "CatalogError",
    "CostExtractionResult",
    "DomainRate",
    "DomainRateRegistry",
    "PricedService",
    "ServiceCatalog",
    "clear_domain_rates",
    "get_default_catalog",
    "is_llm_provider_url",
    "refresh_default_catalog",
    "register_domain_rate",
    "resolve_service",
    "set_default_catalog",
    "unregister_domain_rate",
]
