"""Per-request rates users register for hosts the catalog does not price (or prices wrongly).

A registered rate takes precedence over the service catalog. Patterns follow the catalog's
syntax: ``api.example.com`` or ``*.example.com`` (any subdomain).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from dexcost._money import to_money
from dexcost.catalog._match import PatternError, PatternIndex, normalize_host, parse_pattern

#: The billing units a domain rate may use.
DOMAIN_RATE_UNITS = ("request",)


@dataclass(frozen=True)
class DomainRate:
    """A user's price for every call to hosts matching ``pattern``."""

    pattern: str
    cost_usd: Decimal
    per: str = "request"

    @property
    def wildcard(self) -> bool:
        """True for ``*.example.com`` patterns."""
        return "*" in self.pattern


def _normalize_pattern(host: str) -> str:
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    text = host.strip()
    if "://" in text:
        raise ValueError(f"host must be a hostname like 'api.example.com', not a URL: {host!r}")
    wildcard = text.startswith("*.")
    bare = normalize_host(text[2:] if wildcard else text)
    if bare is None:
        raise ValueError(f"host is not a valid hostname: {host!r}")
    pattern = ("*." if wildcard else "") + bare
    try:
        parsed = parse_pattern(pattern)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    if parsed.path is not None:
        raise ValueError(f"host must not carry a path: {host!r}")
    return pattern


class DomainRateRegistry:
    """Thread-safe store of :class:`DomainRate` by host pattern, matched like the catalog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: dict[str, DomainRate] = {}
        self._index: PatternIndex[DomainRate] = PatternIndex(())
        self._changed: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (no arguments; it must not raise) after every change of the rates."""
        self._changed.append(callback)

    def register(self, host: str, cost_usd: object, per: str = "request") -> DomainRate:
        """Price every call to ``host`` at ``cost_usd`` (a Decimal, str or int; never a float)."""
        if per not in DOMAIN_RATE_UNITS:
            raise ValueError(f"per must be one of {DOMAIN_RATE_UNITS}, got {per!r}")
        rate = DomainRate(_normalize_pattern(host), to_money(cost_usd, name="cost_usd"), per)
        with self._lock:
            self._rates[rate.pattern] = rate
            self._rebuild()
        return rate

    def unregister(self, host: str) -> bool:
        """Forget the rate for exactly this pattern; True if there was one."""
        pattern = _normalize_pattern(host)
        with self._lock:
            removed = self._rates.pop(pattern, None) is not None
            if removed:
                self._rebuild()
        return removed

    def clear(self) -> None:
        """Forget every registered rate."""
        with self._lock:
            self._rates.clear()
            self._rebuild()

    def _rebuild(self) -> None:
        # Readers use whichever index is current; a new one replaces it in one assignment.
        self._index = PatternIndex((parse_pattern(p), None, r) for p, r in self._rates.items())
        for callback in self._changed:
            callback()

    def rates(self) -> tuple[DomainRate, ...]:
        """Every registered rate."""
        return tuple(self._rates.values())

    def lookup(self, url: str) -> DomainRate | None:
        """The most specific rate matching ``url``'s host, or None."""
        if not self._rates:
            return None
        return self._index.match(url)

    def __len__(self) -> int:
        return len(self._rates)


#: The process-wide registry used by :func:`register_domain_rate` and ``resolve_service``.
default_registry = DomainRateRegistry()


def register_domain_rate(host: str, cost_usd: object, per: str = "request") -> DomainRate:
    """Record ``cost_usd`` for every HTTP call to ``host`` (``*.example.com`` for subdomains).

    Takes precedence over the service catalog. Floats are refused: pass ``"0.01"``.
    """
    return default_registry.register(host, cost_usd, per)


def unregister_domain_rate(host: str) -> bool:
    """Remove the rate registered for ``host``; True if one was registered."""
    return default_registry.unregister(host)


def clear_domain_rates() -> None:
    """Remove every registered domain rate."""
    default_registry.clear()
