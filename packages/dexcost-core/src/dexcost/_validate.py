"""Argument checks shared by the recording API; each error says what to pass instead."""

from __future__ import annotations

from typing import Any

from ._types import COST_CONFIDENCES, PRICING_SOURCES


def tokens(value: object, name: str) -> int:
    """A token count: a non-negative int."""
    if type(value) is int:
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__} ({value!r})")
    return tokens(int(value), name)


def confidence(value: str) -> str:
    """One of the :class:`CostConfidence` values."""
    if value not in COST_CONFIDENCES:
        raise ValueError(
            f"cost_confidence must be one of {sorted(COST_CONFIDENCES)}, got {value!r}"
        )
    return str(value)


def pricing_source(value: str) -> str:
    """One of the :class:`PricingSource` values."""
    if value not in PRICING_SOURCES:
        raise ValueError(f"pricing_source must be one of {sorted(PRICING_SOURCES)}, got {value!r}")
    return str(value)


def name(value: object, what: str) -> str:
    """A non-empty string such as a service, provider or model name."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def details(value: object) -> dict[str, Any]:
    """An optional details mapping, copied so later changes by the caller do not leak in."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"details must be a dict, not {type(value).__name__}")
    return dict(value)
