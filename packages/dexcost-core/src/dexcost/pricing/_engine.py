"""``PricingEngine``: the cost of an LLM call from its model name and token counts."""

from __future__ import annotations

import hashlib
import logging
import operator
import os
import threading
from dataclasses import dataclass
from decimal import Context, Decimal
from pathlib import Path

from dexcost._money import ZERO, to_rate

from ._data import PriceData, bundled, load_file, parse_document
from ._prices import ModelPrice, build_price, custom_price, normalize_service_tier
from ._resolve import bare_ambiguity, candidates, resolve_name
from ._update import PriceUpdater, pricing_url, update_interval

logger = logging.getLogger("dexcost.pricing")

# Wide enough that no product of a price and a token count is ever rounded, whatever the
# caller's thread-local decimal context says.
_EXACT = Context(prec=60)
# Bound once: looking a context method up builds a new bound method on every call.
_MUL = _EXACT.multiply
_ADD = _EXACT.add
_CACHE_LIMIT = 4096
_THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class CostResult:
    """Result of :meth:`PricingEngine.get_cost`."""

    cost_usd: Decimal
    cost_confidence: str
    """``"computed"`` from a known price, or ``"unknown"``."""
    pricing_source: str
    """``"litellm"``, ``"custom"`` or ``"unknown"``."""
    pricing_version: str
    """Hash of the price data (and custom prices) the cost was computed with."""


class _Once:
    """Remembers which keys were already logged, so a message is logged once, not per call."""

    def __init__(self, limit: int = 1024) -> None:
        self._seen: set[object] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def first(self, key: object) -> bool:
        if key in self._seen:
            return False
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen.add(key)
            return True


class _Snapshot:
    """The prices in use: replaced as a whole when data or custom prices change."""

    __slots__ = ("cache", "custom", "data", "version")

    def __init__(self, data: PriceData, custom: dict[str, ModelPrice]) -> None:
        self.data = data
        self.custom = custom
        digest = hashlib.sha256(data.sha256.encode())
        for name in sorted(custom):
            r = custom[name].rates
            parts = (r.input, r.output, r.cache_read, r.cache_write)
            digest.update(f"\n{name}|{'|'.join(f'{p.normalize():f}' for p in parts)}".encode())
        self.version = digest.hexdigest()[:16]
        self.cache: dict[tuple[str, str | None], ModelPrice | None] = {}


def _count(name: str, value: object) -> int:
    if isinstance(value, (bool, float)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__} ({value!r})")
    try:
        count = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    return count


class PricingEngine:
    """Calculates LLM costs from model name and token counts.

    Loads the bundled LiteLLM price data (or ``data_path``, a file of the same shape) on
    construction. With ``auto_update=True`` a daemon timer refreshes the data from the control
    layer; :meth:`close` stops it.
    """

    def __init__(
        self,
        data_path: str | Path | None = None,
        *,
        auto_update: bool = False,
        api_key: str | None = None,
    ) -> None:
        data = bundled() if data_path is None else load_file(data_path)
        self._lock = threading.Lock()
        self._snapshot = _Snapshot(data, {})
        self._once = _Once()
        self._updater: PriceUpdater | None = None
        if auto_update:
            self._updater = PriceUpdater(
                self._apply_document,
                api_key=api_key or os.environ.get("DEXCOST_API_KEY") or None,
                url=pricing_url(),
                interval=update_interval(),
            )
            self._updater.start()

    @property
    def pricing_version(self) -> str:
        """Short hash of the price data in use plus the custom prices."""
        return self._snapshot.version

    def get_cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        *,
        provider: str | None = None,
        reasoning_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> CostResult:
        """Calculate the cost of one LLM call.

        ``input_tokens`` counts every input token, cache reads and writes included;
        ``cached_tokens`` and ``cache_creation_tokens`` say how many of them were cache reads
        and cache writes (``cache_write_1h_tokens`` of the writes at the 1-hour price).
        ``output_tokens`` includes ``reasoning_tokens``. An unknown model costs 0 with
        ``cost_confidence="unknown"``; negative counts raise ValueError, non-int counts TypeError.
        """
        if not (
            type(input_tokens) is int
            and type(output_tokens) is int
            and type(cached_tokens) is int
            and type(cache_creation_tokens) is int
            and type(reasoning_tokens) is int
            and type(cache_write_1h_tokens) is int
            and (
                input_tokens
                | output_tokens
                | cached_tokens
                | cache_creation_tokens
                | reasoning_tokens
                | cache_write_1h_tokens
            )
            >= 0
        ):
            input_tokens = _count("input_tokens", input_tokens)
            output_tokens = _count("output_tokens", output_tokens)
            cached_tokens = _count("cached_tokens", cached_tokens)
            cache_creation_tokens = _count("cache_creation_tokens", cache_creation_tokens)
            reasoning_tokens = _count("reasoning_tokens", reasoning_tokens)
            cache_write_1h_tokens = _count("cache_write_1h_tokens", cache_write_1h_tokens)
        return CostResult(
            *self._price(
                self._snapshot,
                model,
                provider,
                input_tokens,
                output_tokens,
                cached_tokens,
                cache_creation_tokens,
                reasoning_tokens,
                service_tier,
                cache_write_1h_tokens,
            )
        )

    def _price(
        self,
        snapshot: _Snapshot,
        model: str,
        provider: str | None,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cache_creation_tokens: int,
        reasoning_tokens: int,
        service_tier: str | None,
        cache_write_1h_tokens: int,
    ) -> tuple[Decimal, str, str, str]:
        """:meth:`get_cost` for counts known to be non-negative ints, as a plain tuple.

        The recording path calls this directly: it has checked the counts already and
        needs the four values, not a :class:`CostResult` around them. ``snapshot`` is the
        engine's prices when the call was made (a call priced later keeps them).
        """
        try:
            price = snapshot.cache[(model, provider)]
        except KeyError:
            price = self._resolve(snapshot, model, provider)
        if price is None:
            return ZERO, "unknown", "unknown", snapshot.version

        uncached = input_tokens - cached_tokens - cache_creation_tokens
        text_output = output_tokens - reasoning_tokens
        write_5m = cache_creation_tokens - cache_write_1h_tokens
        if uncached < 0 or text_output < 0 or write_5m < 0:
            uncached, text_output, write_5m = self._clamp(
                model, uncached, text_output, write_5m, input_tokens, output_tokens
            )
        tier = None if service_tier is None else normalize_service_tier(service_tier)
        if tier is not None and tier not in price.service_tiers:
            self._unpriced_tier(price, tier)
            tier = None
        rates = price.select(uncached + cached_tokens + cache_creation_tokens, tier)

        mul, add = _MUL, _ADD
        cost = mul(rates.input, uncached)
        if text_output:
            cost = add(cost, mul(rates.output, text_output))
        if cached_tokens:
            cost = add(cost, mul(rates.cache_read, cached_tokens))
        if write_5m:
            cost = add(cost, mul(rates.cache_write, write_5m))
        if cache_write_1h_tokens:
            cost = add(cost, mul(rates.cache_write_1h, cache_write_1h_tokens))
        if reasoning_tokens:
            cost = add(cost, mul(rates.reasoning, reasoning_tokens))
        return cost, "computed", price.source, snapshot.version

    def resolve(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The price entry ``model`` maps to (custom prices first), or None if there is none."""
        snapshot = self._snapshot
        try:
            return snapshot.cache[(model, provider)]
        except KeyError:
            return self._resolve(snapshot, model, provider)

    def set_custom_pricing(
        self,
        model: str,
        input_per_1k: Decimal | str | float,
        output_per_1k: Decimal | str | float,
        *,
        cached_input_per_1k: Decimal | str | float | None = None,
        cache_write_per_1k: Decimal | str | float | None = None,
    ) -> None:
        """Price ``model`` per 1,000 tokens, ahead of the bundled data.

        Cache reads and writes cost the input price unless their own prices are given.
        The name matches the way bundled names do (any case, with a provider prefix or a
        date suffix).
        """
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        name = model.strip().lower()

        def per_token(value: object, label: str) -> Decimal:
            return _EXACT.divide(to_rate(value, name=label), _THOUSAND)

        price = custom_price(
            name,
            per_token(input_per_1k, "input_per_1k"),
            per_token(output_per_1k, "output_per_1k"),
            None
            if cached_input_per_1k is None
            else per_token(cached_input_per_1k, "cached_input_per_1k"),
            None
            if cache_write_per_1k is None
            else per_token(cache_write_per_1k, "cache_write_per_1k"),
        )
        with self._lock:
            custom = dict(self._snapshot.custom)
            custom[name] = price
            self._snapshot = _Snapshot(self._snapshot.data, custom)

    def close(self) -> None:
        """Cancel the background update timer, if running."""
        updater, self._updater = self._updater, None
        if updater is not None:
            updater.close()

    # -- internals ---------------------------------------------------------------------------

    def _apply_document(self, raw: bytes, origin: str) -> None:
        data = parse_document(raw, origin)
        with self._lock:
            old = self._snapshot
            if data.sha256 == old.data.sha256:
                return
            self._snapshot = _Snapshot(data, old.custom)
        logger.info(
            "dexcost: price data updated from %s (version %s)", origin, self.pricing_version
        )

    def _resolve(self, snapshot: _Snapshot, model: str, provider: str | None) -> ModelPrice | None:
        if not isinstance(model, str):
            raise TypeError(f"model must be a str, not {type(model).__name__}")
        if provider is not None and not isinstance(provider, str):
            raise TypeError(f"provider must be a str or None, not {type(provider).__name__}")
        price = self._lookup(snapshot, model, provider)
        if len(snapshot.cache) >= _CACHE_LIMIT:
            snapshot.cache.clear()
        snapshot.cache[(model, provider)] = price
        return price

    def _lookup(self, snapshot: _Snapshot, model: str, provider: str | None) -> ModelPrice | None:
        data = snapshot.data
        if snapshot.custom:
            variants, hints = candidates(data, model, provider)
            for name in (*variants, *(f"{h}/{v}" for h in hints for v in variants)):
                custom = snapshot.custom.get(name)
                if custom is not None:
                    return custom
        key = resolve_name(data, model, provider)
        price = None if key is None else build_price(key, data.entries[key])
        if price is None and self._once.first(("unknown", model.strip().lower())):
            if key is not None:
                reason = f"its entry {key!r} in the price data has no per-token price"
            elif listed := bare_ambiguity(data, model):
                reason = f"it is listed by several providers ({', '.join(listed)}); pass provider="
            else:
                reason = "it is not in the price data"
            logger.warning(
                "dexcost: no price for model %r (%s); its calls are recorded with "
                "cost_confidence='unknown'. Set one with set_custom_pricing().",
                model,
                reason,
            )
        return price

    def _clamp(
        self,
        model: str,
        uncached: int,
        text_output: int,
        write_5m: int,
        input_tokens: int,
        output_tokens: int,
    ) -> tuple[int, int, int]:
        if self._once.first(("inconsistent", model)):
            logger.warning(
                "dexcost: inconsistent token counts for %r (input %d, output %d): cache reads "
                "and writes must be part of input_tokens, reasoning part of output_tokens, "
                "1-hour cache writes part of cache_creation_tokens; the parts are billed as "
                "given and the remainder counted as 0",
                model,
                input_tokens,
                output_tokens,
            )
        return max(uncached, 0), max(text_output, 0), max(write_5m, 0)

    def _unpriced_tier(self, price: ModelPrice, service_tier: str) -> None:
        if self._once.first(("tier", price.name, service_tier)):
            logger.warning(
                "dexcost: no %r service-tier prices for %r; using its standard prices",
                service_tier,
                price.name,
            )
