"""The catalog document: typed rules and entries, and the validator that builds them.

The document is JSON (``data/services.json``, described by ``data/services.schema.json``).
Validation is done here, by hand, so that every error names the entry and the field and so
that no JSON Schema library is needed at run time. Money is always a decimal *string*.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

from dexcost.catalog._match import HostPattern, PatternError, parse_pattern

#: The format version of the document this code reads.
FORMAT = 1

CATEGORIES = frozenset(
    {
        "vector_database",
        "search",
        "scraping",
        "payments",
        "messaging",
        "email",
        "speech",
        "maps",
        "document_ai",
        "enrichment",
        "generation",
        "embeddings",
        "translation",
        "moderation",
        "cloud_ai",
        "compute",
    }
)
RULE_KINDS = ("per_request", "per_unit", "reported", "fee", "unpriced")
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

_MONEY_RE = re.compile(r"^(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$")
_SERVICE_RE = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")
_PATH_SEGMENT_RE = re.compile(r"^(?:\*|[0-9]+|[A-Za-z_$][A-Za-z0-9_$@:-]*)$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class CatalogError(ValueError):
    """A catalog document that does not follow the schema; the message names the field."""


@dataclass(frozen=True)
class FieldRef:
    """Where a value is read: a response header, or a dotted path into the JSON body.

    In a body path a ``*`` step visits every element of a list (the values are summed);
    with ``count`` the value is the number of values a path ending in ``*`` reaches, or
    the length of the list the path points at.
    """

    header: str | None = None
    body: tuple[str, ...] | None = None
    count: bool = False

    @property
    def dotted(self) -> str:
        """The path or header name as written in the document."""
        return self.header if self.header is not None else ".".join(self.body or ())

    @cached_property
    def fans_out(self) -> bool:
        """Whether the body path has a ``*`` step (it may reach several values)."""
        return self.body is not None and "*" in self.body


@dataclass(frozen=True)
class Condition:
    """Apply a rule only if a field's value is one of ``values`` (or, for ``present``, exists).

    When the condition is false the call is priced by the rule's ``otherwise`` rule, or is
    not billed at all (amount 0) when there is none.
    """

    field: FieldRef
    values: frozenset[str] | None = None
    present: bool | None = None


@dataclass(frozen=True)
class Term:
    """One priced quantity of a per-unit rule: ``quantity * price / per``."""

    unit: str
    quantity: FieldRef
    price: Decimal
    per: Decimal


class _RuleBase:
    """What every rule kind answers about itself (computed once, then kept)."""

    when: Condition | None

    def _own_fields(self) -> tuple[FieldRef, ...]:
        return ()

    @cached_property
    def reads_body(self) -> bool:
        """Whether this rule itself (not its fallback) reads the response body."""
        refs = self._own_fields()
        if self.when is not None:
            refs = (self.when.field, *refs)
        return any(ref.body is not None for ref in refs)


@dataclass(frozen=True)
class PerRequestRule(_RuleBase):
    """A flat price for each call."""

    price: Decimal
    when: Condition | None = None
    otherwise: Rule | None = None
    fallback: Rule | None = None
    kind: str = "per_request"


@dataclass(frozen=True)
class PerUnitRule(_RuleBase):
    """A price per unit of quantities read from the response; terms found are summed."""

    terms: tuple[Term, ...]
    when: Condition | None = None
    otherwise: Rule | None = None
    fallback: Rule | None = None
    kind: str = "per_unit"

    def _own_fields(self) -> tuple[FieldRef, ...]:
        return tuple(term.quantity for term in self.terms)


@dataclass(frozen=True)
class ReportedRule(_RuleBase):
    """The response states the charge itself; ``scale`` converts its unit to USD."""

    amount: FieldRef
    scale: Decimal = Decimal(1)
    absolute: bool = False
    currency: FieldRef | None = None
    when: Condition | None = None
    otherwise: Rule | None = None
    fallback: Rule | None = None
    kind: str = "reported"

    def _own_fields(self) -> tuple[FieldRef, ...]:
        return (self.amount,) if self.currency is None else (self.amount, self.currency)


@dataclass(frozen=True)
class FeeRule(_RuleBase):
    """A fee formula: ``amount * scale * percent / 100 + fixed``, within optional bounds."""

    amount: FieldRef
    percent: Decimal
    fixed: Decimal = Decimal(0)
    scale: Decimal = Decimal(1)
    minimum: Decimal | None = None
    cap: Decimal | None = None
    currency: FieldRef | None = None
    when: Condition | None = None
    otherwise: Rule | None = None
    fallback: Rule | None = None
    kind: str = "fee"

    def _own_fields(self) -> tuple[FieldRef, ...]:
        return (self.amount,) if self.currency is None else (self.amount, self.currency)


@dataclass(frozen=True)
class UnpricedRule(_RuleBase):
    """A call the catalog recognises but cannot price on its own (capacity, storage or
    per-hour billing, a price that depends on what the response does not say).

    It yields amount 0 with confidence ``unknown``, so reports count the call as unpriced
    rather than free.
    """

    when: None = None
    otherwise: None = None
    fallback: None = None
    kind: str = "unpriced"


Rule = PerRequestRule | PerUnitRule | ReportedRule | FeeRule | UnpricedRule


def rule_fields(rule: Rule | None) -> tuple[FieldRef, ...]:
    """Every field a rule chain may read, fallbacks included, in order."""
    out: list[FieldRef] = []
    while rule is not None:
        if rule.when is not None:
            out.append(rule.when.field)
        if rule.otherwise is not None:
            out.extend(rule_fields(rule.otherwise))
        if isinstance(rule, PerUnitRule):
            out.extend(t.quantity for t in rule.terms)
        elif isinstance(rule, (ReportedRule, FeeRule)):
            out.append(rule.amount)
            if rule.currency is not None:
                out.append(rule.currency)
        rule = rule.fallback
    return tuple(out)


def rule_confidence(rule: Rule) -> str:
    """``exact`` when the provider reports the charge, ``unknown`` for an unpriced call,
    ``estimated`` otherwise."""
    if isinstance(rule, ReportedRule):
        return "exact"
    return "unknown" if isinstance(rule, UnpricedRule) else "estimated"


@dataclass(frozen=True)
class CatalogEntry:
    """One priced service (or one priced variant of it) as :meth:`ServiceCatalog.lookup` returns it.

    ``needs_body`` tells the HTTP layer whether the response body must be read at all, and
    ``body_fields`` which JSON paths the rule reads; ``header_fields`` names the headers.
    """

    service: str
    name: str
    category: str
    hosts: tuple[str, ...]
    rule: Rule
    source: str
    price_date: str
    confidence: str
    notes: str = ""
    price_verified: bool = True
    methods: frozenset[str] | None = None
    path: str | None = None
    needs_body: bool = field(init=False)
    body_fields: tuple[str, ...] = field(init=False)
    header_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        fields = rule_fields(self.rule)
        body = tuple(dict.fromkeys(f.dotted for f in fields if f.body is not None))
        headers = tuple(dict.fromkeys(f.dotted for f in fields if f.header is not None))
        object.__setattr__(self, "body_fields", body)
        object.__setattr__(self, "header_fields", headers)
        object.__setattr__(self, "needs_body", bool(body))


@dataclass(frozen=True)
class ServiceSpec:
    """A service as written in the document: its base entry and its variants."""

    service: str
    patterns: tuple[HostPattern, ...]
    entries: tuple[CatalogEntry, ...]


@dataclass(frozen=True)
class CatalogDocument:
    """A validated catalog document."""

    version: str
    updated: _dt.date
    services: tuple[ServiceSpec, ...]


# --- validation ---------------------------------------------------------------------------


class _Ctx:
    """Where in the document we are, for error messages."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, message: str) -> CatalogError:
        return CatalogError(f"{self.where}: {path}: {message}")


def _obj(ctx: _Ctx, value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.fail(path, f"must be an object, got {type(value).__name__}")
    return value


def _keys(
    ctx: _Ctx, obj: Mapping[str, Any], path: str, required: set[str], allowed: set[str]
) -> None:
    for key in sorted(required):
        if key not in obj:
            raise ctx.fail(f"{path}.{key}" if path else key, "is required")
    for key in obj:
        if key not in required and key not in allowed:
            raise ctx.fail(f"{path}.{key}" if path else str(key), "is not a known field")


def _str(ctx: _Ctx, value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(path, f"must be a non-empty string, got {value!r}")
    return value


def _money(ctx: _Ctx, value: object, path: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str):
        kind = type(value).__name__
        raise ctx.fail(
            path,
            f'must be a decimal string like "0.005", got {kind} {value!r} '
            "(money is never a JSON number)",
        )
    if not _MONEY_RE.match(value):
        raise ctx.fail(path, f"must be a plain non-negative decimal string, got {value!r}")
    d = Decimal(value)
    if positive and d == 0:
        raise ctx.fail(path, "must be greater than zero")
    return d


def _bool(ctx: _Ctx, value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(path, f"must be true or false, got {value!r}")
    return value


def _field(ctx: _Ctx, value: object, path: str) -> FieldRef:
    obj = _obj(ctx, value, path)
    if ("header" in obj) == ("body" in obj):
        raise ctx.fail(path, "must name exactly one of 'header' or 'body'")
    _keys(ctx, obj, path, set(), {"header", "body", "count"})
    if "header" in obj:
        name = _str(ctx, obj["header"], f"{path}.header")
        if not _HEADER_RE.match(name):
            raise ctx.fail(f"{path}.header", f"is not a valid header name: {name!r}")
        if "count" in obj:
            raise ctx.fail(f"{path}.count", "applies to body fields only")
        return FieldRef(header=name.lower())
    dotted = _str(ctx, obj["body"], f"{path}.body")
    steps = tuple(dotted.split("."))
    for step in steps:
        if not _PATH_SEGMENT_RE.match(step):
            raise ctx.fail(f"{path}.body", f"has an invalid step {step!r} in {dotted!r}")
    count = _bool(ctx, obj["count"], f"{path}.count") if "count" in obj else False
    return FieldRef(body=steps, count=count)


def _condition(ctx: _Ctx, value: object, path: str) -> Condition:
    obj = _obj(ctx, value, path)
    _keys(ctx, obj, path, set(), {"header", "body", "in", "present"})
    ref = _field(ctx, {k: v for k, v in obj.items() if k in ("header", "body")}, path)
    if ("in" in obj) == ("present" in obj):
        raise ctx.fail(path, "must have exactly one of 'in' or 'present'")
    if "in" in obj:
        values = obj["in"]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            raise ctx.fail(f"{path}.in", "must be a non-empty list of strings")
        return Condition(field=ref, values=frozenset(values))
    return Condition(field=ref, present=_bool(ctx, obj["present"], f"{path}.present"))


_COMMON = {"when", "otherwise", "fallback", "note"}


def _rule(ctx: _Ctx, value: object, path: str, depth: int = 0) -> Rule:
    obj = _obj(ctx, value, path)
    kind = obj.get("kind")
    if kind not in RULE_KINDS:
        raise ctx.fail(f"{path}.kind", f"must be one of {', '.join(RULE_KINDS)}; got {kind!r}")
    if depth > 4:
        raise ctx.fail(path, "fallback chain is nested too deeply (at most 4)")
    if kind == "unpriced":
        _keys(ctx, obj, path, {"kind"}, {"note"})
        return UnpricedRule()
    when = _condition(ctx, obj["when"], f"{path}.when") if "when" in obj else None
    if "otherwise" in obj and when is None:
        raise ctx.fail(f"{path}.otherwise", "needs a 'when' condition")
    otherwise = (
        _rule(ctx, obj["otherwise"], f"{path}.otherwise", depth + 1) if "otherwise" in obj else None
    )
    fallback = (
        _rule(ctx, obj["fallback"], f"{path}.fallback", depth + 1) if "fallback" in obj else None
    )
    common: dict[str, Any] = {"when": when, "otherwise": otherwise, "fallback": fallback}
    if kind == "per_request":
        _keys(ctx, obj, path, {"kind", "price"}, _COMMON)
        return PerRequestRule(price=_money(ctx, obj["price"], f"{path}.price"), **common)
    if kind == "per_unit":
        if "terms" in obj:
            _keys(ctx, obj, path, {"kind", "terms"}, _COMMON)
            raw_terms = obj["terms"]
            if not isinstance(raw_terms, list) or not raw_terms:
                raise ctx.fail(f"{path}.terms", "must be a non-empty list")
            terms = tuple(_term(ctx, t, f"{path}.terms[{i}]") for i, t in enumerate(raw_terms))
        else:
            _keys(ctx, obj, path, {"kind", "unit", "quantity", "price"}, _COMMON | {"per"})
            terms = (_term(ctx, {k: v for k, v in obj.items() if k in _TERM_KEYS}, path),)
        return PerUnitRule(terms=terms, **common)
    if kind == "reported":
        _keys(ctx, obj, path, {"kind", "amount"}, _COMMON | {"scale", "absolute", "currency"})
        return ReportedRule(
            amount=_field(ctx, obj["amount"], f"{path}.amount"),
            scale=_money(ctx, obj["scale"], f"{path}.scale", positive=True)
            if "scale" in obj
            else Decimal(1),
            absolute=_bool(ctx, obj["absolute"], f"{path}.absolute")
            if "absolute" in obj
            else False,
            currency=_field(ctx, obj["currency"], f"{path}.currency")
            if "currency" in obj
            else None,
            **common,
        )
    _keys(
        ctx,
        obj,
        path,
        {"kind", "amount", "percent"},
        _COMMON | {"fixed", "scale", "minimum", "cap", "currency"},
    )
    return FeeRule(
        amount=_field(ctx, obj["amount"], f"{path}.amount"),
        percent=_money(ctx, obj["percent"], f"{path}.percent"),
        fixed=_money(ctx, obj["fixed"], f"{path}.fixed") if "fixed" in obj else Decimal(0),
        scale=_money(ctx, obj["scale"], f"{path}.scale", positive=True)
        if "scale" in obj
        else Decimal(1),
        minimum=_money(ctx, obj["minimum"], f"{path}.minimum") if "minimum" in obj else None,
        cap=_money(ctx, obj["cap"], f"{path}.cap") if "cap" in obj else None,
        currency=_field(ctx, obj["currency"], f"{path}.currency") if "currency" in obj else None,
        **common,
    )


_TERM_KEYS = {"unit", "quantity", "price", "per"}


def _term(ctx: _Ctx, value: object, path: str) -> Term:
    obj = _obj(ctx, value, path)
    _keys(ctx, obj, path, {"unit", "quantity", "price"}, {"per"})
    return Term(
        unit=_str(ctx, obj["unit"], f"{path}.unit"),
        quantity=_field(ctx, obj["quantity"], f"{path}.quantity"),
        price=_money(ctx, obj["price"], f"{path}.price"),
        per=_money(ctx, obj["per"], f"{path}.per", positive=True) if "per" in obj else Decimal(1),
    )


def _date(ctx: _Ctx, value: object, path: str) -> _dt.date:
    text = _str(ctx, value, path)
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise ctx.fail(path, f"must be a date YYYY-MM-DD, got {text!r}") from None


_ENTRY_REQUIRED = {
    "service",
    "name",
    "category",
    "hosts",
    "pricing",
    "source",
    "price_date",
    "confidence",
}


def _entry(ctx: _Ctx, value: object, updated: _dt.date) -> ServiceSpec:
    obj = _obj(ctx, value, "")
    _keys(ctx, obj, "", _ENTRY_REQUIRED, {"variants", "notes", "price_verified"})
    service = _str(ctx, obj["service"], "service")
    if not _SERVICE_RE.match(service):
        raise ctx.fail(
            "service", f"must be a lower-case id like 'google_maps_geocoding', got {service!r}"
        )
    ctx.where = f"{ctx.where} ({service})"
    name = _str(ctx, obj["name"], "name")
    category = _str(ctx, obj["category"], "category")
    if category not in CATEGORIES:
        raise ctx.fail(
            "category", f"must be one of {', '.join(sorted(CATEGORIES))}; got {category!r}"
        )
    source = _str(ctx, obj["source"], "source")
    if not source.startswith("https://"):
        raise ctx.fail("source", f"must be an https:// URL of the price page, got {source!r}")
    price_date = _date(ctx, obj["price_date"], "price_date")
    if price_date > updated:
        raise ctx.fail("price_date", f"{price_date} is after the document's updated date {updated}")
    notes = _str(ctx, obj["notes"], "notes") if "notes" in obj else ""
    verified = (
        _bool(ctx, obj["price_verified"], "price_verified") if "price_verified" in obj else True
    )
    if not verified and not notes:
        raise ctx.fail("notes", "must say what is unconfirmed when price_verified is false")
    raw_hosts = obj["hosts"]
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise ctx.fail("hosts", "must be a non-empty list of host patterns")
    patterns: list[HostPattern] = []
    for i, raw in enumerate(raw_hosts):
        try:
            patterns.append(parse_pattern(raw))
        except PatternError as exc:
            raise ctx.fail(f"hosts[{i}]", str(exc)) from None
    if len({p.text for p in patterns}) != len(patterns):
        raise ctx.fail("hosts", "lists the same pattern twice")
    rule = _rule(ctx, obj["pricing"], "pricing")
    confidence = _str(ctx, obj["confidence"], "confidence")
    if confidence != rule_confidence(rule):
        raise ctx.fail(
            "confidence",
            f"must be {rule_confidence(rule)!r} for a {rule.kind!r} rule "
            "('exact' only when the provider reports the charge itself, "
            "'unknown' for an 'unpriced' rule)",
        )
    hosts = tuple(p.text for p in patterns)

    def make(rule: Rule, methods: frozenset[str] | None, path: str | None) -> CatalogEntry:
        return CatalogEntry(
            service=service,
            name=name,
            category=category,
            hosts=hosts,
            rule=rule,
            source=source,
            price_date=price_date.isoformat(),
            confidence=rule_confidence(rule),
            notes=notes,
            price_verified=verified,
            methods=methods,
            path=path,
        )

    entries = [make(rule, None, None)]
    raw_variants = obj.get("variants", [])
    if not isinstance(raw_variants, list):
        raise ctx.fail("variants", "must be a list")
    seen: set[tuple[str | None, frozenset[str] | None]] = set()
    for i, raw in enumerate(raw_variants):
        where = f"variants[{i}]"
        vobj = _obj(ctx, raw, where)
        _keys(ctx, vobj, where, {"pricing"}, {"path", "methods", "note"})
        if "path" not in vobj and "methods" not in vobj:
            raise ctx.fail(where, "needs a 'path' or 'methods' to tell it apart")
        path: str | None = None
        if "path" in vobj:
            path = _str(ctx, vobj["path"], f"{where}.path")
            try:
                parse_pattern("example.com" + path)
            except PatternError:
                raise ctx.fail(f"{where}.path", f"is not a valid path prefix: {path!r}") from None
            if not any(compatible(p, path) for p in patterns):
                raise ctx.fail(f"{where}.path", f"{path!r} is under none of the host patterns")
        methods: frozenset[str] | None = None
        if "methods" in vobj:
            raw_m = vobj["methods"]
            if (
                not isinstance(raw_m, list)
                or not raw_m
                or not all(m in HTTP_METHODS for m in raw_m)
            ):
                raise ctx.fail(
                    f"{where}.methods", f"must be a non-empty list of {sorted(HTTP_METHODS)}"
                )
            methods = frozenset(raw_m)
        if (path, methods) in seen:
            raise ctx.fail(where, "repeats the path and methods of an earlier variant")
        seen.add((path, methods))
        vrule = _rule(ctx, vobj["pricing"], f"{where}.pricing")
        entries.append(make(vrule, methods, path))
    return ServiceSpec(service=service, patterns=tuple(patterns), entries=tuple(entries))


def compatible(pattern: HostPattern, path: str | None) -> bool:
    """Whether a variant path lies under a host pattern (and so applies to it)."""
    return path is None or pattern.path is None or path.startswith(pattern.path)


def routes(spec: ServiceSpec) -> list[tuple[HostPattern, CatalogEntry]]:
    """Every (host pattern with its effective path, entry) pair a service claims."""
    out: dict[tuple[str, str | None, frozenset[str] | None], tuple[HostPattern, CatalogEntry]] = {}
    for pattern in spec.patterns:
        for entry in spec.entries:  # variants come after the base entry and replace it
            if compatible(pattern, entry.path):
                path = entry.path if entry.path is not None else pattern.path
                out[(pattern.host, path, entry.methods)] = (replace(pattern, path=path), entry)
    return list(out.values())


def parse_document(doc: object) -> CatalogDocument:
    """Validate a catalog document (already decoded from JSON) and build its typed form.

    Raises :class:`CatalogError` naming the entry and the field at the first problem.
    """
    ctx = _Ctx("catalog")
    obj = _obj(ctx, doc, "document")
    _keys(ctx, obj, "", {"format", "version", "updated", "services"}, {"$schema", "description"})
    if obj["format"] != FORMAT or isinstance(obj["format"], bool):
        raise ctx.fail("format", f"must be {FORMAT}, got {obj['format']!r}")
    version = _str(ctx, obj["version"], "version")
    updated = _date(ctx, obj["updated"], "updated")
    raw = obj["services"]
    if not isinstance(raw, list):
        raise ctx.fail("services", "must be a list")
    specs: list[ServiceSpec] = []
    ids: set[str] = set()
    for i, item in enumerate(raw):
        spec = _entry(_Ctx(f"services[{i}]"), item, updated)
        if spec.service in ids:
            raise CatalogError(f"services[{i}] ({spec.service}): service: the id is used twice")
        ids.add(spec.service)
        specs.append(spec)
    _check_unique_routes(specs)
    return CatalogDocument(version=version, updated=updated, services=tuple(specs))


def _check_unique_routes(specs: Sequence[ServiceSpec]) -> None:
    """No two entries may claim the same host pattern and path."""
    owner: dict[tuple[str, str | None], str] = {}
    for spec in specs:
        claimed = {(p.host, p.path) for p, _ in routes(spec)}
        for key in sorted(claimed, key=str):
            other = owner.get(key)
            if other is not None:
                where = key[0] + (key[1] or "")
                raise CatalogError(
                    f"catalog: {spec.service}: host {where!r} is already claimed by {other}"
                )
            owner[key] = spec.service
