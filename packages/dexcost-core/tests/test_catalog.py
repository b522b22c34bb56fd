"""ServiceCatalog behaviour: validation errors, URL matching, cost extraction, domain rates."""

from __future__ import annotations

import copy
import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from dexcost.catalog import (
    LLM_PROVIDER_HOSTS,
    CatalogError,
    DomainRateRegistry,
    ServiceCatalog,
    is_llm_provider_url,
    resolve_service,
)


def _doc(*services: dict[str, Any], updated: str = "2026-11-22") -> dict[str, Any]:
    return {"format": 1, "version": "test", "updated": updated, "services": list(services)}


def _svc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "service": "acme",
        "name": "Acme API",
        "category": "search",
        "hosts": ["api.acme.test"],
        "pricing": {"kind": "per_request", "price": "0.01"},
        "source": "https://acme.test/pricing",
        "price_date": "2026-11-01",
        "confidence": "estimated",
    }
    base.update(over)
    return base


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("source"), r"services\[0\]: source: is required"),
        (lambda s: s.pop("hosts"), r"hosts: is required"),
        (lambda s: s["pricing"].update(price=0.01), r"\(acme\): pricing.price: .*float"),
        (lambda s: s["pricing"].update(price="1,5"), r"\(acme\): pricing.price: .*decimal"),
        (lambda s: s["pricing"].update(price="-1"), r"pricing.price"),
        (
            lambda s: s["pricing"].update(kind="per_minute"),
            r"\(acme\): pricing.kind: must be one of",
        ),
        (lambda s: s.update(confidence="exact"), r"\(acme\): confidence: must be 'estimated'"),
        (lambda s: s.update(category="misc"), r"\(acme\): category"),
        (lambda s: s.update(hosts=["API.acme.test"]), r"hosts\[0\]: .*lower case"),
        (lambda s: s.update(hosts=["https://api.acme.test"]), r"hosts\[0\]"),
        (lambda s: s.update(hosts=["*.com"]), r"hosts\[0\]"),
        (lambda s: s.update(hosts=["api.acme.test:443"]), r"hosts\[0\]: .*port"),
        (lambda s: s.update(price_date="2027-01-01"), r"price_date: .*after"),
        (lambda s: s.update(price_verified=False), r"notes: must say"),
        (lambda s: s.update(extra=1), r"extra: is not a known field"),
    ],
)
def test_invalid_documents_are_rejected_naming_entry_and_field(change: Any, message: str) -> None:
    svc = _svc()
    change(svc)
    with pytest.raises(CatalogError, match=message):
        ServiceCatalog(_doc(svc))


def test_reported_rule_must_be_exact_and_money_in_nested_rules_is_checked() -> None:
    svc = _svc(pricing={"kind": "reported", "amount": {"body": "cost"}})
    with pytest.raises(CatalogError, match="confidence: must be 'exact'"):
        ServiceCatalog(_doc(svc))
    svc = _svc(
        pricing={
            "kind": "reported",
            "amount": {"body": "cost"},
            "fallback": {"kind": "per_request", "price": 3},
        },
        confidence="exact",
    )
    with pytest.raises(CatalogError, match=r"pricing.fallback.price: .*int"):
        ServiceCatalog(_doc(svc))


def test_two_services_claiming_one_host_are_rejected() -> None:
    with pytest.raises(CatalogError, match="already claimed by acme"):
        ServiceCatalog(_doc(_svc(), _svc(service="other")))


def test_json_numbers_parsed_as_decimal_are_still_refused() -> None:
    text = json.dumps(_doc(_svc())).replace('"price": "0.01"', '"price": 0.01')
    with pytest.raises(CatalogError, match="money is never a JSON number"):
        ServiceCatalog.from_json(text)


# --- matching -------------------------------------------------------------------------------


@pytest.fixture
def catalog() -> ServiceCatalog:
    return ServiceCatalog(
        _doc(
            _svc(),
            _svc(service="wild", hosts=["*.wild.test"]),
            _svc(service="region", hosts=["svc.*.region.test"]),
            _svc(
                service="pathed",
                hosts=["shared.test/v1/priced"],
                pricing={"kind": "per_request", "price": "2"},
            ),
            _svc(
                service="variants",
                hosts=["v.test"],
                variants=[
                    {"path": "/cheap", "pricing": {"kind": "per_request", "price": "0.001"}},
                    {"methods": ["GET"], "pricing": {"kind": "per_request", "price": "0"}},
                ],
            ),
            _svc(service="idna", hosts=["xn--bcher-kva.test"]),
        )
    )


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("https://api.acme.test/search", "acme"),
        ("HTTPS://API.ACME.TEST/search", "acme"),
        ("https://api.acme.test:8443/x", "acme"),
        ("https://user:pw@api.acme.test/x", "acme"),
        ("https://api.acme.test./x", "acme"),
        ("https://api.acme.test?q=1", "acme"),
        ("https://a.wild.test/", "wild"),
        ("https://a.b.c.wild.test/", "wild"),
        ("https://wild.test/", None),
        ("https://notwild.test/", None),
        ("https://svc.eu-1.region.test/", "region"),
        ("https://svc.a.b.region.test/", None),
        ("https://shared.test/v1/priced", "pathed"),
        ("https://shared.test/v1/priced/sub?x=1", "pathed"),
        ("https://shared.test/v1/pricedx", None),
        ("https://shared.test/v1/other", None),
        ("https://bücher.test/x", "idna"),
        ("https://evil.test/api.acme.test", None),
        ("https://api.acme.test.evil.test/", None),
        ("https://[::1]:8080/", None),
        ("not a url", None),
        ("", None),
    ],
)
def test_lookup_matches_hosts_and_paths(
    catalog: ServiceCatalog, url: str, service: str | None
) -> None:
    found = catalog.lookup(url)
    assert (found.service if found else None) == service


def test_variants_by_path_and_method(catalog: ServiceCatalog) -> None:
    assert catalog.lookup("https://v.test/x", "POST").rule.price == Decimal("0.01")  # type: ignore[union-attr]
    assert catalog.lookup("https://v.test/cheap/1", "POST").rule.price == Decimal("0.001")  # type: ignore[union-attr]
    assert catalog.lookup("https://v.test/x", "get").rule.price == Decimal(0)  # type: ignore[union-attr]
    assert catalog.lookup("https://v.test/x").rule.price == Decimal("0.01")  # type: ignore[union-attr]


def test_exact_host_beats_wildcard() -> None:
    cat = ServiceCatalog(_doc(_svc(service="any", hosts=["*.acme.test"]), _svc()))
    assert cat.lookup("https://api.acme.test/").service == "acme"  # type: ignore[union-attr]
    assert cat.lookup("https://eu.acme.test/").service == "any"  # type: ignore[union-attr]


def test_llm_provider_endpoints_are_not_in_the_bundled_catalog() -> None:
    bundled = ServiceCatalog.load_bundled()
    for url in [
        "https://api.openai.com/v1/chat/completions",
        "https://api.anthropic.com/v1/messages",
        "https://generativelanguage.googleapis.com/v1beta/models/x:generateContent",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke",
        "https://api.cohere.com/v2/chat",
        "https://my.openai.azure.com/openai/deployments/x/chat/completions",
    ]:
        assert is_llm_provider_url(url), url
        assert bundled.lookup(url, "POST") is None, url
    assert not is_llm_provider_url("https://api.cohere.com/v2/rerank")
    assert bundled.lookup("https://api.cohere.com/v2/rerank").service == "cohere_rerank"  # type: ignore[union-attr]
    assert "api.openai.com" in LLM_PROVIDER_HOSTS


# --- extraction -----------------------------------------------------------------------------


def _entry(pricing: dict[str, Any], confidence: str = "estimated") -> tuple[ServiceCatalog, Any]:
    cat = ServiceCatalog(_doc(_svc(pricing=pricing, confidence=confidence)))
    return cat, cat.lookup("https://api.acme.test/")


def test_reported_amount_is_exact_and_falls_back_to_the_estimate() -> None:
    cat, entry = _entry(
        {
            "kind": "reported",
            "amount": {"body": "cost.total"},
            "fallback": {"kind": "per_request", "price": "0.007"},
        },
        "exact",
    )
    ok = cat.extract_cost(entry, {}, b'{"cost": {"total": 0.0123}}')
    assert (ok.amount, ok.confidence) == (Decimal("0.0123"), "exact")
    for body in (None, b"<html>not json", b'{"other": 1}', b"\xff\xfe"):
        res = cat.extract_cost(entry, {}, body)
        assert (res.amount, res.confidence) == (Decimal("0.007"), "estimated")


def test_body_is_read_as_one_json_document_whatever_surrounds_it() -> None:
    cat, entry = _entry(
        {
            "kind": "reported",
            "amount": {"body": "cost.total"},
            "fallback": {"kind": "per_request", "price": "0.007"},
        },
        "exact",
    )
    exact = (Decimal("1234567.123456789012"), "exact")
    for body in (
        b'{"cost": {"total": 1234567.123456789012}}',  # every digit kept (a float would not)
        b' \r\n\t{"cost": {"total": 1234567.123456789012}} \n',
        ' {"cost": {"total": 1234567.123456789012}}',
    ):
        res = cat.extract_cost(entry, {}, body)
        assert (res.amount, res.confidence) == exact
    for body in (
        b'{"cost": {"total": 1}} {"cost": {"total": 2}}',  # two documents: not JSON
        b'{"cost": {"total": 1}} x',
        "\ufeff" + '{"cost": {"total": 1}}',  # json.loads refuses a BOM in text too
        b'{"cost": {"total": 1}',
        b"   ",
    ):
        res = cat.extract_cost(entry, {}, body)
        assert (res.amount, res.confidence) == (Decimal("0.007"), "estimated")


def test_no_usable_data_gives_unknown_zero_never_an_exception() -> None:
    cat, entry = _entry(
        {
            "kind": "per_unit",
            "unit": "page",
            "quantity": {"body": "pages"},
            "price": "1",
            "per": "1000",
        }
    )
    for body in (None, b"", b"[]", b'{"pages": "many"}', {"pages": None}, 42):
        res = cat.extract_cost(entry, None, body)
        assert (res.amount, res.confidence, res.pricing_source) == (
            Decimal(0),
            "unknown",
            "service_catalog",
        )


def test_unpriced_rule_recognises_the_call_but_prices_it_unknown() -> None:
    cat, entry = _entry({"kind": "unpriced", "note": "billed per cluster hour"}, "unknown")
    assert entry.confidence == "unknown"
    assert not entry.needs_body
    assert entry.header_fields == ()
    for headers, body in ((None, None), ({"x": "1"}, b'{"cost": 3}'), ({}, b"not json")):
        res = cat.extract_cost(entry, headers, body)
        assert (res.amount, res.confidence, res.service_name) == (Decimal(0), "unknown", "acme")


def test_unpriced_rule_is_checked_like_any_other() -> None:
    with pytest.raises(CatalogError, match="confidence: must be 'unknown' for a 'unpriced' rule"):
        ServiceCatalog(_doc(_svc(pricing={"kind": "unpriced"})))
    with pytest.raises(CatalogError, match="confidence: must be 'estimated'"):
        ServiceCatalog(_doc(_svc(confidence="unknown")))
    for extra in ({"price": "0.01"}, {"when": {"body": "x", "present": True}}, {"fallback": {}}):
        with pytest.raises(CatalogError, match=r"pricing\.\w+: is not a known field"):
            ServiceCatalog(_doc(_svc(pricing={"kind": "unpriced", **extra}, confidence="unknown")))


def test_unpriced_variant_beside_a_free_base_rule() -> None:
    svc = _svc(
        pricing={"kind": "unpriced"},
        confidence="unknown",
        variants=[{"methods": ["GET"], "pricing": {"kind": "per_request", "price": "0"}}],
    )
    cat = ServiceCatalog(_doc(svc))
    create = cat.lookup("https://api.acme.test/sandboxes", "POST")
    poll = cat.lookup("https://api.acme.test/sandboxes/1", "GET")
    assert create is not None
    assert poll is not None
    assert cat.extract_cost(create).confidence == "unknown"
    polled = cat.extract_cost(poll)
    assert (polled.amount, polled.confidence) == (Decimal(0), "estimated")


def test_headers_are_read_in_any_case_from_dicts_and_pairs() -> None:
    cat, entry = _entry(
        {"kind": "per_unit", "unit": "credit", "quantity": {"header": "Spb-Cost"}, "price": "0.5"}
    )
    assert not entry.needs_body
    assert entry.header_fields == ("spb-cost",)
    assert cat.extract_cost(entry, {"SPB-COST": "4"}, None).amount == Decimal(2)
    assert cat.extract_cost(entry, [(b"spb-cost", b"3")], None).amount == Decimal("1.5")


def test_fee_formula_with_currency_and_status_condition() -> None:
    pricing = {
        "kind": "fee",
        "amount": {"body": "amount"},
        "scale": "0.01",
        "percent": "2.9",
        "fixed": "0.30",
        "currency": {"body": "currency"},
        "when": {"body": "status", "in": ["succeeded"]},
    }
    cat, entry = _entry(pricing)
    paid = cat.extract_cost(entry, {}, {"amount": 10000, "currency": "usd", "status": "succeeded"})
    assert paid.amount == Decimal("3.20")
    pending = cat.extract_cost(
        entry, {}, {"amount": 10000, "currency": "usd", "status": "requires_action"}
    )
    assert (pending.amount, pending.confidence) == (Decimal(0), "estimated")
    euro = cat.extract_cost(entry, {}, {"amount": 10000, "currency": "eur", "status": "succeeded"})
    assert euro.confidence == "unknown"


def test_sum_over_lists_and_count() -> None:
    cat, entry = _entry(
        {
            "kind": "per_unit",
            "terms": [
                {"unit": "char", "quantity": {"body": "items.*.chars"}, "price": "1", "per": "100"},
                {"unit": "page", "quantity": {"body": "pages", "count": True}, "price": "0.5"},
            ],
        }
    )
    res = cat.extract_cost(entry, {}, '{"items": [{"chars": 100}, {"chars": 50}], "pages": [1, 2]}')
    assert res.amount == Decimal("2.5")


def test_bundled_examples_price_real_shaped_responses() -> None:
    cat = ServiceCatalog.load_bundled()
    twilio = cat.lookup("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", "POST")
    assert twilio is not None
    rated = cat.extract_cost(
        twilio, {}, {"price": "-0.00830", "price_unit": "USD", "num_segments": "1"}
    )
    assert (rated.amount, rated.confidence) == (Decimal("0.00830"), "exact")
    unrated = cat.extract_cost(
        twilio, {}, {"price": None, "price_unit": "USD", "num_segments": "2"}
    )
    assert (unrated.amount, unrated.confidence) == (Decimal("0.0166"), "estimated")
    maps = cat.lookup("https://maps.googleapis.com/maps/api/staticmap?center=x")
    assert maps is not None
    assert not maps.needs_body
    assert cat.extract_cost(maps, {}, None).amount == Decimal("0.002")


def test_a_broken_rule_is_logged_once_and_reports_unknown(caplog: pytest.LogCaptureFixture) -> None:
    cat, entry = _entry({"kind": "per_request", "price": "1"})
    object.__setattr__(entry, "rule", object())  # corrupt it on purpose
    with caplog.at_level(logging.WARNING, logger="dexcost.catalog"):
        first = cat.extract_cost(entry, {}, None)
        cat.extract_cost(entry, {}, None)
    assert first.confidence == "unknown"
    assert len([r for r in caplog.records if "acme" in r.getMessage()]) == 1


# --- domain rates and resolve_service ------------------------------------------------------


def test_domain_rates_take_precedence_and_reject_floats() -> None:
    reg = DomainRateRegistry()
    cat = ServiceCatalog(_doc(_svc()))
    assert (
        resolve_service("https://api.acme.test/", catalog=cat, registry=reg).pricing_source
        == "service_catalog"
    )  # type: ignore[union-attr]
    reg.register("API.Acme.test", "0.05")
    priced = resolve_service("https://api.acme.test/x", catalog=cat, registry=reg)
    assert priced is not None
    assert priced.pricing_source == "rate_registry"
    assert priced.extract_cost({}, b"ignored").amount == Decimal("0.05")
    assert not priced.needs_body
    with pytest.raises(TypeError, match="float"):
        reg.register("api.other.test", 0.01)
    with pytest.raises(ValueError, match="per must be one of"):
        reg.register("api.other.test", "1", per="minute")
    with pytest.raises(ValueError, match="not a URL"):
        reg.register("https://api.other.test", "1")
    assert reg.unregister("api.acme.test") is True
    assert reg.unregister("api.acme.test") is False


def test_wildcard_domain_rates_match_subdomains_but_skip_llm_endpoints() -> None:
    reg = DomainRateRegistry()
    cat = ServiceCatalog(_doc(_svc()))
    reg.register("*.pinecone.io", "0.001")
    assert (
        resolve_service("https://idx.svc.x.pinecone.io/query", catalog=cat, registry=reg)
        is not None
    )
    assert resolve_service("https://pinecone.io/", catalog=cat, registry=reg) is None
    reg.register("*.openai.com", "1")
    assert (
        resolve_service("https://api.openai.com/v1/chat/completions", catalog=cat, registry=reg)
        is None
    )
    reg.register("api.openai.com", "2")
    exact = resolve_service("https://api.openai.com/v1/chat/completions", catalog=cat, registry=reg)
    assert exact is not None
    assert exact.extract_cost().amount == Decimal(2)
    reg.clear()
    assert len(reg) == 0


def test_module_level_register_domain_rate_uses_the_default_registry() -> None:
    from dexcost.catalog import clear_domain_rates, register_domain_rate

    try:
        register_domain_rate("api.example.com", cost_usd="0.01", per="request")
        priced = resolve_service("https://api.example.com/v1")
        assert priced is not None
        assert priced.extract_cost().amount == Decimal("0.01")
    finally:
        clear_domain_rates()
    assert resolve_service("https://api.example.com/v1") is None


def test_document_copy_is_not_mutated() -> None:
    doc = _doc(_svc())
    before = copy.deepcopy(doc)
    ServiceCatalog(doc)
    assert doc == before
