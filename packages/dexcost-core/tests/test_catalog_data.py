"""The bundled catalog as data: it validates, and every rule prices a response built from it."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from dexcost.catalog import (
    CATEGORIES,
    CatalogEntry,
    ServiceCatalog,
    is_llm_provider_url,
)
from dexcost.catalog._schema import (
    FeeRule,
    FieldRef,
    PerRequestRule,
    PerUnitRule,
    ReportedRule,
    Rule,
    UnpricedRule,
    routes,
)

CATALOG = ServiceCatalog.load_bundled()
ALL_ENTRIES = [e for base in CATALOG for e in CATALOG.variants(base.service)]

REQUIRED_CATEGORIES = {
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
    "cloud_ai",
}


def _raw_document() -> dict[str, Any]:
    text = resources.files("dexcost.catalog").joinpath("data/services.json").read_text("utf-8")
    return json.loads(text)


def test_catalog_has_at_least_163_services_in_every_required_category() -> None:
    assert len(CATALOG) >= 163
    categories = {e.category for e in CATALOG}
    assert categories >= REQUIRED_CATEGORIES
    assert categories <= CATEGORIES


def test_the_guide_states_the_bundled_version_and_counts() -> None:
    guide = Path(__file__).parents[1] / "docs" / "service-catalog.md"
    text = guide.read_text("utf-8")
    assert f"Catalog version {CATALOG.version}: {len(CATALOG)} entries" in text
    for category in sorted({e.category for e in CATALOG}):
        count = sum(e.category == category for e in CATALOG)
        assert f"| `{category}` | {count} |" in text, category


def test_document_has_version_and_updated_date() -> None:
    doc = _raw_document()
    assert doc["version"] == CATALOG.version
    assert doc["updated"] == CATALOG.updated
    assert all(e.price_date <= CATALOG.updated for e in CATALOG)


def test_money_is_never_a_json_number() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        else:
            assert not isinstance(node, float), f"float at {path}"
            assert not (isinstance(node, int) and not isinstance(node, bool)) or path.endswith(
                ".format"
            ), f"number at {path}"

    walk(_raw_document(), "$")


def test_confidence_is_exact_only_for_reported_rules() -> None:
    for entry in ALL_ENTRIES:
        if isinstance(entry.rule, ReportedRule):
            expected = "exact"
        elif isinstance(entry.rule, UnpricedRule):
            expected = "unknown"
        else:
            expected = "estimated"
        assert entry.confidence == expected, entry.service


def test_no_two_entries_claim_the_same_host_and_path() -> None:
    seen: dict[tuple[str, str | None, frozenset[str] | None], str] = {}
    for spec in CATALOG._doc.services:
        for pattern, entry in routes(spec):
            key = (pattern.host, pattern.path, entry.methods)
            assert key not in seen, f"{spec.service} and {seen[key]} both claim {key}"
            seen[key] = spec.service


def _sample_host(pattern: str) -> str:
    host = pattern.partition("/")[0]
    labels = host.split(".")
    if labels[0] == "*":
        labels[0] = "a.b"
    return ".".join(label.replace("*", "x1") for label in labels)


def _sample_path(path: str | None) -> str:
    return (path or "/").replace("*", "x1")


@pytest.mark.parametrize("entry", ALL_ENTRIES, ids=lambda e: f"{e.service}{e.path or ''}")
def test_every_entry_is_reached_by_a_url_built_from_its_own_pattern(entry: CatalogEntry) -> None:
    spec = next(s for s in CATALOG._doc.services if s.service == entry.service)
    for pattern, routed in routes(spec):
        if routed is not entry:
            continue
        url = f"https://{_sample_host(pattern.text)}{_sample_path(pattern.path)}"
        method = sorted(entry.methods)[0] if entry.methods else "GET"
        found = CATALOG.lookup(url, method)
        assert found is not None, url
        assert found.service == entry.service, (url, found.service)
        assert not is_llm_provider_url(url), f"{url} is also listed as an LLM endpoint"


# --- build a response from a rule and compute its price independently -----------------------


def _put(body: dict[str, Any], steps: tuple[str, ...], value: Any) -> None:
    node: Any = body
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        nxt_is_list = not last and (steps[i + 1] == "*" or steps[i + 1].isdigit())
        if step in ("*",) or step.isdigit():
            # node is a list; fill element 0 (and, for "*", a second one)
            count = 2 if step == "*" else int(step) + 1
            while len(node) < count:
                node.append([] if nxt_is_list else ({} if not last else None))
            if last:
                for j in range(count if step == "*" else 1):
                    node[j if step == "*" else int(step)] = value
                return
            if step == "*":
                for j in range(1, count):
                    _put_into(node, j, steps[i + 1 :], value)
            node = node[0 if step == "*" else int(step)]
            continue
        if last:
            node[step] = value
            return
        node = node.setdefault(step, [] if nxt_is_list else {})


def _put_into(lst: list[Any], idx: int, rest: tuple[str, ...], value: Any) -> None:
    holder: dict[str, Any] = {"_": lst[idx]}
    _put(holder, ("_", *rest), value)
    lst[idx] = holder["_"]


def _sample(ref: FieldRef, body: dict[str, Any], headers: dict[str, str], value: str) -> Decimal:
    """Write ``value`` at ``ref``; return the quantity the rule should read back."""
    if ref.header is not None:
        headers[ref.header.title()] = value
        return Decimal(value)
    steps = ref.body or ()
    if ref.count:
        items = 3
        if steps[-1] == "*":
            if steps == ("*",):
                raise _RootList(items)
            fans = steps.count("*")
            _put(body, steps, {"n": 1})
            return Decimal(2**fans)
        _put(body, steps, [{"n": i} for i in range(items)])
        return Decimal(items)
    _put(body, steps, value)
    return Decimal(value) * (2 ** steps.count("*"))


class _RootList(Exception):
    def __init__(self, items: int) -> None:
        self.items = items


def _expected(rule: Rule, body: dict[str, Any], headers: dict[str, str]) -> Decimal:
    amount = _expected_amount(rule, body, headers)
    if rule.when is not None:
        ref = rule.when.field
        if ref.header is not None:
            headers[ref.header] = sorted(rule.when.values or {"yes"})[0]
        elif rule.when.values is not None:
            _put(body, ref.body or (), sorted(rule.when.values)[0])
        elif not _has(body, ref.body or ()):
            _put(body, ref.body or (), "yes")
    return amount


def _has(body: Any, steps: tuple[str, ...]) -> bool:
    for step in steps:
        if not isinstance(body, dict) or step not in body:
            return False
        body = body[step]
    return True


def _expected_amount(rule: Rule, body: dict[str, Any], headers: dict[str, str]) -> Decimal:
    if isinstance(rule, UnpricedRule):
        return Decimal(0)
    if isinstance(rule, PerRequestRule):
        return rule.price
    if isinstance(rule, PerUnitRule):
        total = Decimal(0)
        for i, term in enumerate(rule.terms):
            qty = _sample(term.quantity, body, headers, str(7 + i))
            total += qty * term.price / term.per
        return total
    if isinstance(rule, ReportedRule):
        if rule.currency is not None:
            _sample(rule.currency, body, headers, "0")
            _put_currency(rule.currency, body, headers)
        qty = _sample(rule.amount, body, headers, "0.0125")
        return qty * rule.scale
    assert isinstance(rule, FeeRule)
    if rule.currency is not None:
        _put_currency(rule.currency, body, headers)
    base = _sample(rule.amount, body, headers, "1234")
    return base * rule.scale * rule.percent / 100 + rule.fixed


def _put_currency(ref: FieldRef, body: dict[str, Any], headers: dict[str, str]) -> None:
    if ref.header is not None:
        headers[ref.header] = "usd"
    else:
        _put(body, ref.body or (), "usd")


@pytest.mark.parametrize("entry", ALL_ENTRIES, ids=lambda e: f"{e.service}{e.path or ''}")
def test_every_rule_prices_a_response_built_from_its_own_fields(entry: CatalogEntry) -> None:
    body: dict[str, Any] = {}
    headers: dict[str, str] = {}
    try:
        expected = _expected(entry.rule, body, headers)
        payload: Any = json.dumps(body).encode()
    except _RootList as root:
        term = entry.rule.terms[0]  # type: ignore[union-attr]
        expected = Decimal(root.items) * term.price / term.per
        payload = json.dumps([{"n": i} for i in range(root.items)]).encode()
    result = CATALOG.extract_cost(entry, headers, payload if entry.needs_body else None)
    assert result.pricing_source == "service_catalog"
    assert result.service_name == entry.service
    assert result.confidence == entry.confidence
    assert abs(result.amount - expected) <= Decimal("1e-12"), (result.amount, expected)
    if isinstance(entry.rule, UnpricedRule):
        assert (result.amount, result.confidence) == (0, "unknown")
    elif not (isinstance(entry.rule, PerRequestRule) and entry.rule.price == 0):
        assert result.amount > 0


def test_rules_that_read_no_body_say_so() -> None:
    for entry in ALL_ENTRIES:
        reads_body = any(f.body is not None for f in _fields(entry.rule))
        assert entry.needs_body is reads_body, entry.service
        assert set(entry.body_fields) == {f.dotted for f in _fields(entry.rule) if f.body}


def _fields(rule: Rule | None) -> list[FieldRef]:
    from dexcost.catalog._schema import rule_fields

    return list(rule_fields(rule))


def test_unverified_prices_are_flagged_with_a_note() -> None:
    unverified = [e for e in CATALOG if not e.price_verified]
    assert all(e.notes for e in unverified)
    assert all(e.confidence == "estimated" for e in unverified)


def test_bundled_document_follows_the_published_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is only a dev tool here")
    files = resources.files("dexcost.catalog").joinpath("data")
    schema = json.loads(files.joinpath("services.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(_raw_document())
