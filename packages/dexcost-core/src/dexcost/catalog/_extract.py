"""Turn a catalog rule and one HTTP response into a cost, without ever raising."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from dexcost._money import ZERO
from dexcost.catalog._bodyscan import MISSING as _MISSING
from dexcost.catalog._bodyscan import UNKNOWN as _UNKNOWN
from dexcost.catalog._bodyscan import Document, step
from dexcost.catalog._schema import (
    CatalogEntry,
    Condition,
    FeeRule,
    FieldRef,
    PerRequestRule,
    PerUnitRule,
    ReportedRule,
    Rule,
    rule_confidence,
)

logger = logging.getLogger("dexcost.catalog")

PRICING_SOURCE = "service_catalog"
_PLACES = Decimal("1e-12")
_warned: set[str] = set()
_UNREAD: Any = object()


@dataclass(frozen=True, slots=True)
class CostExtractionResult:
    """The cost of one call: amount in USD, how sure it is, and what priced it."""

    amount: Decimal
    confidence: str
    pricing_source: str
    service_name: str


class _Response:
    """Headers and a lazily read body; the body is looked at once per call, and only the
    members the rule names are parsed (:mod:`._bodyscan`)."""

    __slots__ = ("_body", "_doc", "_headers", "_lower")

    def __init__(self, headers: object, body: object) -> None:
        self._headers = headers
        self._lower: dict[str, str] | None = None
        self._body = body
        self._doc: Document | None = _UNREAD

    def document(self) -> Document | None:
        """The body as a JSON document, or None when it is none."""
        doc = self._doc
        if doc is _UNREAD:
            raw = self._body
            if isinstance(raw, (bytearray, memoryview)):
                raw = bytes(raw)
            if isinstance(raw, Document):  # what the HTTP layer kept of a streamed body
                doc = raw
            elif isinstance(raw, (bytes, str)):
                doc = Document.parse(raw)
            else:
                doc = Document(value=raw) if raw is not None else None
            self._doc = doc
        return doc

    def header(self, name: str) -> str | None:
        headers = self._headers
        if headers is None:
            return None
        if self._lower is None:
            if isinstance(headers, Mapping):
                getter = getattr(headers, "get", None)
                value = getter(name) if getter is not None else None
                if value is not None:
                    return str(value)
                items: Iterable[tuple[Any, Any]] = headers.items()
            else:
                items = headers  # type: ignore[assignment]  # an iterable of (name, value)
            self._lower = {}
            for key, value in items:
                key_s = key.decode("latin-1") if isinstance(key, bytes) else str(key)
                val_s = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                self._lower.setdefault(key_s.lower(), val_s)
        return self._lower.get(name)


def _walk(doc: Document | None, steps: tuple[str, ...]) -> list[Any] | None:
    """All values at a dotted path; ``*`` fans out over a list.

    None when the body cannot tell: no JSON document, or one whose part holding the path
    was not kept or is too large to parse (a count of what it cannot see is no count).
    """
    if doc is None:
        return None
    if steps[0] == "*":
        whole = doc.value()
        if whole is None:
            return None
        current = [whole]
    else:
        first = doc.member(steps[0])
        if first is _UNKNOWN:
            return None
        if first is _MISSING:
            return []
        current, steps = [first], steps[1:]
    for key in steps:
        nxt: list[Any] = []
        for item in current:
            if key == "*":
                if isinstance(item, list):
                    nxt.extend(item)
            else:
                found = step(item, key)
                if found is not _MISSING:
                    nxt.append(found)
        current = nxt
        if not current:
            break
    return current


def _at(doc: Document | None, steps: tuple[str, ...]) -> Any:
    """The one value at a dotted path without ``*`` steps, or _MISSING (:func:`_walk`, faster)."""
    if doc is None:
        return _MISSING
    value = doc.member(steps[0])
    for key in steps[1:]:
        if value is _MISSING or value is _UNKNOWN:
            break
        value = step(value, key)
    return value


def _number(value: Any) -> Decimal | None:
    if type(value) is Decimal:  # what the JSON decoder gives for a number with a fraction
        return value if value.is_finite() else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    elif isinstance(value, str) and value.endswith("s"):
        value = value[:-1]  # a protobuf Duration in JSON, e.g. Google's "15.5s"
    try:
        d = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return d if d.is_finite() else None


def _raw(ref: FieldRef, resp: _Response) -> Any:
    """The raw value of a field, _MISSING, or _UNKNOWN when the body cannot tell."""
    if ref.header is not None:
        value = resp.header(ref.header)
        return _MISSING if value is None else value
    if not ref.fans_out:
        return _at(resp.document(), ref.body or ())
    found = _walk(resp.document(), ref.body or ())
    return _UNKNOWN if found is None else found or _MISSING


def _quantity(ref: FieldRef, resp: _Response) -> Decimal | None:
    """A field's numeric value; lists reached through ``*`` are summed, ``count`` counts."""
    if ref.header is not None:
        return _number(resp.header(ref.header))
    if not ref.fans_out:
        value = _at(resp.document(), ref.body or ())
        if ref.count:
            return Decimal(len(value)) if isinstance(value, list) else None
        return None if value is _MISSING or value is _UNKNOWN else _number(value)
    found = _walk(resp.document(), ref.body or ())
    if found is None:
        return None
    if ref.count:
        if (ref.body or ())[-1] == "*":
            return Decimal(len(found))
        return Decimal(len(found[0])) if len(found) == 1 and isinstance(found[0], list) else None
    if not found:
        return None
    numbers = [_number(v) for v in found]
    valid = [n for n in numbers if n is not None]
    return sum(valid, ZERO) if valid else None


def _condition(cond: Condition, resp: _Response) -> bool | None:
    """True/False, or None when the field cannot be read at all."""
    value = _raw(cond.field, resp)
    if cond.present is not None:
        if value is _UNKNOWN or (cond.field.body is not None and resp.document() is None):
            return None
        return (value is not _MISSING and value is not None) == cond.present
    if value is _MISSING or value is _UNKNOWN or value is None:
        return None
    return str(value) in (cond.values or ())


def _currency_ok(ref: FieldRef | None, resp: _Response) -> bool:
    if ref is None:
        return True
    value = _raw(ref, resp)
    return isinstance(value, str) and value.strip().upper() == "USD"


def _apply(rule: Rule, resp: _Response) -> Decimal | None:
    """The amount one rule yields, or None if its inputs are not in the response."""
    if isinstance(rule, PerRequestRule):
        return rule.price
    if isinstance(rule, PerUnitRule):
        total, seen = ZERO, False
        for term in rule.terms:
            qty = _quantity(term.quantity, resp)
            if qty is None or qty < 0:
                continue
            seen = True
            total += qty * term.price / term.per
        return total if seen else None
    if isinstance(rule, ReportedRule):
        value = _quantity(rule.amount, resp)
        if value is None or not _currency_ok(rule.currency, resp):
            return None
        if rule.absolute:
            value = abs(value)
        return value * rule.scale if value >= 0 else None
    if isinstance(rule, FeeRule):
        base = _quantity(rule.amount, resp)
        if base is None or base < 0 or not _currency_ok(rule.currency, resp):
            return None
        fee = base * rule.scale * rule.percent / 100 + rule.fixed
        if rule.minimum is not None:
            fee = max(fee, rule.minimum)
        if rule.cap is not None:
            fee = min(fee, rule.cap)
        return fee
    # An UnpricedRule: the call is recognised but not priceable one by one ("unknown").
    return None


def _round(amount: Decimal) -> Decimal:
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -12:
        return amount.quantize(_PLACES)
    return amount


# Results by (amount, rule kind, service): a service's charges repeat (the same flat or
# reported price call after call), and a result is immutable, so it is built once.
_results: dict[tuple[Decimal, str, str], CostExtractionResult] = {}
_RESULTS_LIMIT = 4096


def _result(amount: Decimal, rule: Rule, service: str) -> CostExtractionResult:
    key = (amount, rule.kind, service)
    found = _results.get(key)
    if found is None:
        found = CostExtractionResult(_round(amount), rule_confidence(rule), PRICING_SOURCE, service)
        if len(_results) >= _RESULTS_LIMIT:
            _results.clear()
        _results[key] = found
    return found


def evaluate(entry: CatalogEntry, headers: object, body: object) -> CostExtractionResult:
    """Price one response with ``entry``'s rule chain; never raises.

    Rules whose inputs are absent hand over to their ``fallback``; a rule whose ``when``
    condition is false means the call is not billed (amount 0, estimated). With nothing
    usable the result is amount 0 with confidence ``unknown``.
    """
    try:
        resp = _Response(headers, body)
        rule: Rule | None = entry.rule
        while rule is not None:
            if rule.reads_body and resp.document() is None:
                rule = rule.fallback
                continue
            if rule.when is not None:
                ok = _condition(rule.when, resp)
                if ok is None:
                    rule = rule.fallback
                    continue
                if not ok:
                    if rule.otherwise is None:
                        return CostExtractionResult(
                            ZERO, "estimated", PRICING_SOURCE, entry.service
                        )
                    rule = rule.otherwise
                    continue
            amount = _apply(rule, resp)
            if amount is not None:
                return _result(amount, rule, entry.service)
            rule = rule.fallback
    except Exception:  # the user's call must never break because of pricing
        if entry.service not in _warned:
            _warned.add(entry.service)
            logger.warning("pricing a %s response failed", entry.service, exc_info=True)
    return CostExtractionResult(ZERO, "unknown", PRICING_SOURCE, entry.service)
