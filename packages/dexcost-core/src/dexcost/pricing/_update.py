"""Background refresh of the price data from the control layer (``auto_update=True``).

A daemon timer fetches ``{endpoint}/v1/pricing`` (a LiteLLM-shaped JSON document) now and then
every interval. Any failure keeps the prices in use and says why in the log; recording costs
never waits for it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger("dexcost.pricing")

DEFAULT_ENDPOINT = "https://api.dexcost.io"
#: Seconds between refreshes; ``DEXCOST_PRICING_UPDATE_INTERVAL`` overrides it.
UPDATE_INTERVAL_SECONDS = 6 * 3600.0
FETCH_TIMEOUT_SECONDS = 10.0
#: A larger answer is refused rather than read into memory (the bundled document is ~3 MB).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def pricing_url() -> str:
    """``{DEXCOST_ENDPOINT}/v1/pricing``, the endpoint defaulting to the hosted control layer."""
    endpoint = os.environ.get("DEXCOST_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
    return endpoint.rstrip("/") + "/v1/pricing"


def update_interval() -> float:
    """The refresh interval in seconds, from the environment if set to a positive number."""
    raw = os.environ.get("DEXCOST_PRICING_UPDATE_INTERVAL", "").strip()
    if not raw:
        return UPDATE_INTERVAL_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value > 0:
        return value
    logger.warning(
        "DEXCOST_PRICING_UPDATE_INTERVAL=%r is not a positive number of seconds; using %s",
        raw,
        UPDATE_INTERVAL_SECONDS,
    )
    return UPDATE_INTERVAL_SECONDS


class PriceUpdater:
    """Fetches the price document periodically and hands it to ``apply(raw, origin)``.

    ``apply`` raises ValueError for a document it refuses; the current prices then stay.
    """

    def __init__(
        self,
        apply: Callable[[bytes, str], None],
        *,
        api_key: str | None,
        url: str,
        interval: float,
        timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self._apply = apply
        self._api_key = api_key
        self.url = url
        self._interval = interval
        self._timeout = timeout
        self._etag: str | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def start(self) -> None:
        """Fetch once soon, in the background, then every interval."""
        self._schedule(0.0)

    def close(self) -> None:
        """Cancel the timer; a fetch already under way finishes but schedules nothing more."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    @property
    def running(self) -> bool:
        with self._lock:
            return not self._closed and self._timer is not None

    def _schedule(self, delay: float) -> None:
        with self._lock:
            if self._closed:
                return
            timer = threading.Timer(delay, self._run)
            timer.daemon = True
            timer.name = "dexcost-pricing-update"
            self._timer = timer
            timer.start()

    def _run(self) -> None:
        try:
            self.update_once()
        finally:
            self._schedule(self._interval)

    def update_once(self) -> bool:
        """Fetch and apply the document once; True if new prices are in use."""
        import http.client  # imported here: most processes never fetch prices

        try:
            fetched = self._fetch()
        except (OSError, ValueError, http.client.HTTPException) as exc:
            logger.warning(
                "dexcost: could not fetch price data from %s; keeping the current prices: %s",
                self.url,
                exc,
            )
            return False
        if fetched is None:
            return False
        raw, etag = fetched
        try:
            self._apply(raw, self.url)
        except ValueError as exc:
            logger.warning(
                "dexcost: price data from %s was refused; keeping the current prices: %s",
                self.url,
                exc,
            )
            return False
        self._etag = etag
        return True

    def _fetch(self) -> tuple[bytes, str | None] | None:
        import urllib.error
        import urllib.request

        headers = {"Accept": "application/json", "User-Agent": "dexcost-pricing"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self._etag:
            headers["If-None-Match"] = self._etag
        request = urllib.request.Request(self.url, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
                etag = response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                logger.debug("dexcost: price data at %s unchanged", self.url)
                return None
            raise
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"answer larger than {MAX_DOCUMENT_BYTES} bytes")
        return raw, etag
