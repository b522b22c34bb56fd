"""What the default catalog and domain rates say about hosts and URLs, learnt per call.

Every HTTP call asks whether anyone may price its host (:data:`hosts`, which the gates
compiled into the patched methods read directly) and, if so, who prices its URL
(:data:`resolved`). Each answer is worked out once and kept. Both caches are emptied the
moment the default catalog or a domain rate changes (the catalog calls :func:`forget`),
so a call never has to check whether they are current, and an answer worked out from
the old prices while they changed is dropped, not kept.
"""

from __future__ import annotations

from typing import TypeVar

from dexcost._money import ZERO, to_money
from dexcost._tracked_task import is_free
from dexcost.catalog import CostExtractionResult, PricedService, resolve_service
from dexcost.catalog import _resolve as _catalog_state
from dexcost.catalog._domain_rates import default_registry
from dexcost.catalog._match import normalize_host, split_url, url_path

__all__ = ["LIMIT", "PricedURL", "forget", "hosts", "may_price", "resolve", "resolved"]

_K = TypeVar("_K")
_V = TypeVar("_V")

#: Entries a cache holds before it is emptied (a process calling ever new hosts or URLs).
LIMIT = 4096


class PricedURL:
    """Who prices one URL, the host and path (no query) for the details, what pricing reads."""

    __slots__ = (
        "amount",
        "fixed",
        "free",
        "from_body",
        "host",
        "needs_body",
        "path",
        "priced",
        "version",
    )

    def __init__(self, url: str, priced: PricedService) -> None:
        authority, end = split_url(url)
        self.priced = priced
        self.host = normalize_host(authority) or authority.rpartition("@")[2]
        self.path = url_path(url, end)
        self.needs_body = priced.needs_body
        #: The result for every response when pricing reads neither body nor headers (a
        #: flat per-request price, a domain rate): computed once instead of per call.
        self.fixed: CostExtractionResult | None = None
        #: The fixed result's amount, checked; whether it is free (then no event).
        self.amount = ZERO
        self.free = False
        entry = priced.entry
        if entry is None or not (entry.needs_body or entry.header_fields):
            fixed = self.fixed = priced.extract_cost(None, None)
            self.amount = to_money(fixed.amount)
            self.free = is_free(self.amount, fixed.confidence)
        #: Priced from the body alone: the body is all a later pricing needs to keep.
        self.from_body = entry is not None and entry.needs_body and not entry.header_fields
        #: The catalog version the events carry (None for a domain rate).
        catalog = priced.catalog if entry is not None else None
        self.version = catalog.version if catalog is not None else None


#: Whether any catalog entry or domain rate names a host (``host[:port]``, as read from
#: the call). Never replaced: the gates hold this very dict.
hosts: dict[str, bool] = {}
#: Who prices a call, by ``(method, url)``: the URL as the call gave it and without its
#: query string (:func:`resolve` fills the latter). None: nobody.
resolved: dict[tuple[str, str], PricedURL | None] = {}

# Replaced by every forget(): a learner that sees it change while it worked drops what
# it learnt (the prices it read may be the old ones).
_epoch: list[object] = [object()]


def forget() -> None:
    """Empty both caches: the catalog or the rates have changed."""
    _epoch[0] = object()
    hosts.clear()
    resolved.clear()


def _keep(cache: dict[_K, _V], key: _K, value: _V, epoch: object) -> None:
    if len(cache) >= LIMIT:
        cache.clear()
    cache[key] = value
    if _epoch[0] is not epoch:  # the prices changed meanwhile: this answer may be old
        cache.clear()


def may_price(host: str) -> bool:
    """Whether any catalog entry or domain rate names ``host`` (a URL's authority, maybe
    with the query or fragment of a URL without a path; its paths and methods aside);
    learnt into :data:`hosts`."""
    epoch = _epoch[0]
    catalog = _catalog_state.get_default_catalog()
    name = split_url(host)[0]
    known = bool(catalog._index.candidates(name) or default_registry._index.candidates(name))
    _keep(hosts, host, known, epoch)
    return known


def resolve(url: str, method: str) -> PricedURL | None:
    """:func:`~dexcost.catalog.resolve_service` for ``url``, learnt into :data:`resolved`
    without its query string."""
    key = (method, url.partition("?")[0].partition("#")[0])
    try:
        return resolved[key]
    except KeyError:
        pass
    epoch = _epoch[0]
    priced = resolve_service(url, method)
    found = PricedURL(key[1], priced) if priced is not None else None
    _keep(resolved, key, found, epoch)
    return found


_catalog_state.on_pricing_change(forget)
