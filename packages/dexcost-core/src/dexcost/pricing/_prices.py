"""A model's per-token prices: service tiers, long-context thresholds, cache and reasoning rates.

Built once per model from a LiteLLM-shaped entry, so pricing a call is a lookup, not a parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Context, Decimal
from typing import Any

from ._data import clean_price

_IN = "input_cost_per_token"
_OUT = "output_cost_per_token"
_READ = "cache_read_input_token_cost"
_WRITE = "cache_creation_input_token_cost"
_WRITE_1H = "cache_creation_input_token_cost_above_1hr"
_REASON = "output_cost_per_reasoning_token"

# ``<base>[_above_<n>[k]_tokens][_<tier>]``,
# e.g. ``input_cost_per_token_above_200k_tokens_priority``.
# The 1h cache-write base comes first so ``..._above_1hr`` is not read as a threshold.
_KEY = re.compile(
    rf"^({_WRITE_1H}|{_WRITE}|{_READ}|{_REASON}|{_IN}|{_OUT})"
    r"(?:_above_(\d+)(k?)_tokens)?(?:_([a-z]+))?$"
)

# Providers that bill the long-context price once the prompt *reaches* the threshold
# (LiteLLM 1.106 treats xAI this way); everyone else once it exceeds it.
_INCLUSIVE_THRESHOLD_PROVIDERS = frozenset({"xai"})

# Names callers use for a service tier -> the suffix of the price fields in the data.
_TIER_ALIASES: Mapping[str, str | None] = {
    "": None,
    "default": None,
    "standard": None,
    "auto": None,
    "on_demand": None,
    "batch": "batches",
    "fast": "priority",
}

# Providers whose cached input is discounted by a published default when the data lists no
# cache-read price: Fireworks serverless bills cached prompt tokens at 50% of the input price
# (docs.fireworks.ai/guides/prompt-caching; LiteLLM 1.106 applies the same default).
_DEFAULT_CACHE_READ_RATIO: Mapping[str, Decimal] = {"fireworks_ai": Decimal("0.5")}

_SCALE = Context(prec=15)


def normalize_service_tier(service_tier: str | None) -> str | None:
    """Map a tier name (``flex``, ``priority``, ``batch``, ``default``) to a price-field suffix.

    None means the standard tier.
    """
    if service_tier is None:
        return None
    tier = service_tier.strip().lower()
    return _TIER_ALIASES.get(tier, tier)


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per token for each kind of token of one call."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal


# A ladder is ((threshold, rates), ...) from the highest threshold down to the base (-1):
# the first step whose threshold the call's input exceeds applies.
_Ladder = tuple[tuple[int, TokenRates], ...]


@dataclass(frozen=True)
class ModelPrice:
    """The price entry a model name resolves to.

    ``rates`` are the standard-tier, short-context prices; :meth:`rates_for` gives the ones
    that apply to a particular call.
    """

    name: str
    """The entry's name in the price data (or the name given to ``set_custom_pricing``)."""
    provider: str | None
    source: str
    """``"litellm"`` for the price data, ``"custom"`` for ``set_custom_pricing``."""
    rates: TokenRates
    service_tiers: frozenset[str] = frozenset()
    """Service tiers with their own prices (``flex``, ``priority``, ``batches``, ...)."""
    ladders: Mapping[str | None, _Ladder] = field(default_factory=dict, repr=False, compare=False)
    inclusive_threshold: bool = field(default=False, repr=False, compare=False)

    def rates_for(self, input_tokens: int = 0, service_tier: str | None = None) -> TokenRates:
        """The rates for a call with ``input_tokens`` (cache included) in ``service_tier``.

        A tier without prices of its own falls back to the standard prices.
        """
        return self.select(input_tokens, normalize_service_tier(service_tier))

    def select(self, input_tokens: int, tier: str | None) -> TokenRates:
        """Like :meth:`rates_for` with an already normalized tier."""
        ladder = self.ladders.get(tier) or self.ladders.get(None)
        if not ladder:
            return self.rates
        for threshold, rates in ladder:
            if input_tokens > threshold or (self.inclusive_threshold and input_tokens == threshold):
                return rates
        return ladder[-1][1]


def custom_price(
    name: str,
    input_per_token: Decimal,
    output_per_token: Decimal,
    cache_read_per_token: Decimal | None,
    cache_write_per_token: Decimal | None,
) -> ModelPrice:
    """A user-set price: cache reads and writes cost the input price unless given."""
    write = input_per_token if cache_write_per_token is None else cache_write_per_token
    rates = TokenRates(
        input=input_per_token,
        output=output_per_token,
        cache_read=input_per_token if cache_read_per_token is None else cache_read_per_token,
        cache_write=write,
        cache_write_1h=write,
        reasoning=output_per_token,
    )
    return ModelPrice(name=name, provider=None, source="custom", rates=rates)


def build_price(name: str, entry: Mapping[str, Any]) -> ModelPrice | None:
    """Build the price of one entry, or None if it has no per-token price."""
    provider = entry.get("litellm_provider")
    provider = provider if isinstance(provider, str) else None
    inclusive = provider in _INCLUSIVE_THRESHOLD_PROVIDERS
    tiered = entry.get("tiered_pricing")
    if isinstance(tiered, list) and tiered:
        ladder = _range_ladder(tiered, entry)
        if ladder:
            return ModelPrice(
                name=name,
                provider=provider,
                source="litellm",
                rates=ladder[-1][1],
                ladders={None: ladder},
            )
    table: dict[tuple[str, int | None, str | None], Decimal] = {}
    for key, value in entry.items():
        m = _KEY.match(key)
        price = clean_price(value) if m else None
        if m is None or price is None:
            continue
        base, number, kilo, tier = m.groups()
        threshold = None if number is None else int(number) * (1000 if kilo else 1)
        table[(base, threshold, tier)] = price
    if (_IN, None, None) not in table and (_OUT, None, None) not in table:
        return None
    tiers = frozenset(t for (_, _, t) in table if t is not None)
    ladders: dict[str | None, _Ladder] = {}
    for tier in (None, *sorted(tiers)):
        thresholds = sorted({th for (_, th, t) in table if th is not None and t in (None, tier)})
        steps = [(th, _rates(table, tier, thresholds[: i + 1])) for i, th in enumerate(thresholds)]
        steps.reverse()
        steps.append((-1, _rates(table, tier, [])))
        ladders[tier] = tuple(steps)
    ratio = _DEFAULT_CACHE_READ_RATIO.get(provider or "")
    if ratio is not None and not any(base == _READ for (base, _, _) in table):
        ladders = {
            tier: tuple((th, replace(r, cache_read=r.input * ratio)) for th, r in ladder)
            for tier, ladder in ladders.items()
        }
    return ModelPrice(
        name=name,
        provider=provider,
        source="litellm",
        rates=ladders[None][-1][1],
        service_tiers=tiers,
        ladders=ladders,
        inclusive_threshold=inclusive,
    )


def _rates(
    table: Mapping[tuple[str, int | None, str | None], Decimal],
    tier: str | None,
    crossed: list[int],
) -> TokenRates:
    """The rates in ``tier`` once the prompt has crossed ``crossed`` thresholds (ascending)."""

    def component(base: str) -> Decimal | None:
        for threshold in reversed(crossed):
            if tier is not None:
                exact = table.get((base, threshold, tier))
                if exact is not None:
                    return exact
                # The data often lists a tier's flat price and the standard long-context price
                # but not the tier's long-context price: the two multipliers compose (e.g.
                # Gemini 2.5 Pro flex above 200k = flex price x the standard 200k step).
                flat_tier = table.get((base, None, tier))
                above = table.get((base, threshold, None))
                standard = table.get((base, None, None))
                if flat_tier is not None and above is not None and standard:
                    return _SCALE.create_decimal(flat_tier * above / standard).normalize(_SCALE)
            above = table.get((base, threshold, None))
            if above is not None:
                return above
        if tier is not None:
            flat_tier = table.get((base, None, tier))
            if flat_tier is not None:
                return flat_tier
        return table.get((base, None, None))

    zero = Decimal(0)
    inp = component(_IN)
    out = component(_OUT)
    inp = zero if inp is None else inp
    out = zero if out is None else out
    read = component(_READ)
    write = component(_WRITE)
    write = inp if write is None else write
    write_1h = component(_WRITE_1H)
    # A tier that prices its output but not its reasoning bills reasoning at its output price,
    # not at the standard tier's reasoning price (as LiteLLM 1.106 does).
    if (
        tier is not None
        and (_REASON, None, tier) not in table
        and ((_OUT, None, tier) in table or any((_OUT, th, tier) in table for th in crossed))
    ):
        reasoning: Decimal | None = out
    else:
        reasoning = component(_REASON)
    return TokenRates(
        input=inp,
        output=out,
        cache_read=inp if read is None else read,
        cache_write=write,
        cache_write_1h=write if write_1h is None else write_1h,
        reasoning=out if reasoning is None else reasoning,
    )


def _range_ladder(tiers: list[Any], entry: Mapping[str, Any]) -> _Ladder:
    """Ladder for ``tiered_pricing`` ranges (Alibaba, Volcengine): one tier prices the whole call.

    A tier applies when ``start < input <= end``; above the last range the last tier applies;
    an empty prompt is priced at the first tier.
    """
    model_out = clean_price(entry.get(_OUT))
    model_reason = clean_price(entry.get(_REASON))
    steps: list[tuple[int, TokenRates]] = []
    for tier in tiers:
        if not isinstance(tier, dict):
            continue
        bounds = tier.get("range")
        inp = clean_price(tier.get(_IN))
        if not isinstance(bounds, list) or len(bounds) != 2 or inp is None:
            continue
        start = clean_price(bounds[0])
        if start is None:
            continue
        out = clean_price(tier.get(_OUT))
        out = out if out is not None else (model_out if model_out is not None else Decimal(0))
        write = clean_price(tier.get(_WRITE))
        write = inp if write is None else write
        write_1h = clean_price(tier.get(_WRITE_1H))
        read = clean_price(tier.get(_READ))
        reason = clean_price(tier.get(_REASON))
        if reason is None:
            reason = out if _OUT in tier or model_reason is None else model_reason
        rates = TokenRates(
            input=inp,
            output=out,
            cache_read=inp if read is None else read,
            cache_write=write,
            cache_write_1h=write if write_1h is None else write_1h,
            reasoning=reason,
        )
        steps.append((int(start), rates))
    if not steps:
        return ()
    steps.sort(key=lambda step: step[0])
    # The lowest tier takes every prompt below the second tier's start, an empty one included.
    steps[0] = (-1, steps[0][1])
    steps.reverse()
    return tuple(steps)
