"""ServiceCatalog: the bundled price rules for paid non-LLM APIs, looked up by URL."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

from dexcost.catalog._extract import CostExtractionResult, evaluate
from dexcost.catalog._match import PatternIndex
from dexcost.catalog._schema import (
    CatalogDocument,
    CatalogEntry,
    CatalogError,
    parse_document,
    routes,
)

logger = logging.getLogger("dexcost.catalog")

_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
_bundled: ServiceCatalog | None = None
_bundled_lock = threading.Lock()


def _read_bundled() -> Any:
    text = resources.files("dexcost.catalog").joinpath("data/services.json").read_text("utf-8")
    return json.loads(text, parse_float=Decimal)


class ServiceCatalog:
    """Price rules for paid APIs keyed by hostname (and path where a host is shared).

    ``lookup(url)`` answers from a per-host cache, so a URL of a host that is not in the
    catalog costs a string split and a dict hit. ``extract_cost`` turns the matched entry
    and the response into a :class:`CostExtractionResult` and never raises.
    """

    def __init__(self, document: Mapping[str, Any] | CatalogDocument) -> None:
        """Build a catalog from a decoded JSON document; raises :class:`CatalogError` if invalid."""
        doc = document if isinstance(document, CatalogDocument) else parse_document(document)
        self._doc = doc
        self._by_service = {spec.service: spec.entries[0] for spec in doc.services}
        items = [(p, e.methods, e) for spec in doc.services for p, e in routes(spec)]
        self._index: PatternIndex[CatalogEntry] = PatternIndex(items)

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def load_bundled(cls) -> ServiceCatalog:
        """The catalog shipped with dexcost (parsed once, then shared: it is immutable)."""
        global _bundled
        if _bundled is None:
            with _bundled_lock:
                if _bundled is None:
                    _bundled = cls(_read_bundled())
        return _bundled

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceCatalog:
        """Build a catalog from JSON text (numbers are read as Decimal, then rejected as money)."""
        return cls(json.loads(text, parse_float=Decimal))

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 2.0, fallback: ServiceCatalog | None = None
    ) -> ServiceCatalog:
        """Fetch a catalog document from ``url``; on any failure keep ``fallback``.

        ``fallback`` defaults to the bundled catalog. An unreachable URL, a non-2xx answer,
        a body that is not JSON, an invalid document, or a document older than ``fallback``
        (by its ``updated`` date) all keep ``fallback`` and log a warning saying why.
        """
        keep = fallback if fallback is not None else cls.load_bundled()
        if not url.startswith(("http://", "https://")):
            logger.warning(
                "service catalog URL %r is not http(s); keeping the bundled catalog", url
            )
            return keep
        import urllib.request  # only when a URL is configured: keeps `import dexcost` light

        try:
            request = urllib.request.Request(url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read(_MAX_DOCUMENT_BYTES + 1)
            if len(raw) > _MAX_DOCUMENT_BYTES:
                raise CatalogError(f"document is larger than {_MAX_DOCUMENT_BYTES} bytes")
            fetched = cls.from_json(raw)
        except OSError as exc:  # URLError and TimeoutError are OSErrors
            logger.warning(
                "could not fetch the service catalog from %s (%s); keeping %s",
                url,
                exc,
                keep.version,
            )
            return keep
        except ValueError as exc:  # JSON errors and CatalogError
            logger.warning(
                "the service catalog at %s is invalid (%s); keeping %s", url, exc, keep.version
            )
            return keep
        if fetched.updated < keep.updated:
            logger.warning(
                "the service catalog at %s (updated %s) is older than the one in use (%s)",
                url,
                fetched.updated,
                keep.updated,
            )
            return keep
        logger.info(
            "loaded service catalog %s (%d services) from %s", fetched.version, len(fetched), url
        )
        return fetched

    # --- queries --------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The document's data version."""
        return self._doc.version

    @property
    def updated(self) -> str:
        """The date the document was last updated (ISO format)."""
        return self._doc.updated.isoformat()

    def __len__(self) -> int:
        return len(self._doc.services)

    def __iter__(self) -> Iterator[CatalogEntry]:
        """The base entry of every service, in document order."""
        return iter(self._by_service.values())

    def get(self, service: str) -> CatalogEntry | None:
        """The base entry of a service by its id."""
        return self._by_service.get(service)

    def variants(self, service: str) -> tuple[CatalogEntry, ...]:
        """The base entry and every variant of a service (empty if unknown)."""
        for spec in self._doc.services:
            if spec.service == service:
                return spec.entries
        return ()

    def lookup(self, url: str, method: str | None = None) -> CatalogEntry | None:
        """The entry pricing a call to ``url`` (with ``method``, when variants differ), or None."""
        return self._index.match(url, method)

    def extract_cost(
        self, entry: CatalogEntry, headers: object = None, body: object = None
    ) -> CostExtractionResult:
        """Price one response; never raises.

        ``headers`` is a mapping (looked up in any case); ``body`` is bytes, str, decoded JSON
        or None (then rules reading the body fall back, or the result is ``unknown``).
        """
        return evaluate(entry, headers, body)

    def __repr__(self) -> str:
        return f"<ServiceCatalog {self.version} updated {self.updated}: {len(self)} services>"
