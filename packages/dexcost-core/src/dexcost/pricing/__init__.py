"""LLM prices and non-LLM service rates.

:class:`PricingEngine` prices an LLM call from its model name and token counts with the
bundled LiteLLM price data; :class:`RateRegistry` holds per-unit rates for other paid services.
"""

from ._engine import CostResult, PricingEngine
from ._prices import ModelPrice, TokenRates
from ._rates import RateEntry, RateRegistry

__all__ = [
    "CostResult",
    "ModelPrice",
    "PricingEngine",
    "RateEntry",
    "RateRegistry",
    "TokenRates",
]
