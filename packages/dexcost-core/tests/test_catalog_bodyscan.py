"""Reading single members of a large JSON body without parsing it whole.

The scanner must give exactly what a full parse gives, whatever the document holds:
the same key nested deeper, inside strings, after escaped quotes and brackets.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dexcost.catalog import _bodyscan, get_default_catalog
from dexcost.catalog._bodyscan import (
    _UNDECIDED,
    MISSING,
    SCAN_FROM,
    UNKNOWN,
    WINDOW,
    Document,
    find_member,
)

KEYS = ["usage", "cost", "a", "data", 'q"uote', "back\\slash"]
# Strings that look like keys, brackets and escapes to a naive scanner.
TRICKY = st.sampled_from(
    [
        *('"usage":', 'x"usage', '"cost', '{"cost": 1}', "usage"),
        *("\\", '\\"', '\\\\"cost\\\\":', "]", "}", "{["),
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text(max_size=8),
    TRICKY,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), TRICKY), inner, max_size=4),
    ),
    max_leaves=30,
)
DOCS = st.dictionaries(st.one_of(st.sampled_from(KEYS), TRICKY), VALUES, max_size=5)


def _dump(doc: Any, indent: int | None) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(value)

    return json.dumps(doc, indent=indent, default=default)


@settings(max_examples=600, deadline=None)
@given(DOCS, st.sampled_from([None, 0, 2]), st.sampled_from(KEYS), st.sampled_from([4, 32, WINDOW]))
def test_a_member_found_by_search_is_the_member_a_full_parse_gives(
    doc: dict[str, Any], indent: int | None, key: str, window: int
) -> None:
    """Windows of a few bytes put keys at the start, the end and in the middle."""
    with mock.patch.object(_bodyscan, "WINDOW", window):
        _check_member(doc, indent, key)


def _check_member(doc: dict[str, Any], indent: int | None, key: str) -> None:
    text = _dump(doc, indent)
    expected = json.loads(text, parse_float=Decimal).get(key, MISSING)
    data = text.encode()
    if '"' in key or "\\" in key:
        # keys needing escapes are read from the parsed document instead
        assert Document(data).member(key) == expected
        return
    found = find_member(data, key)
    if found is not _UNDECIDED:
        assert found == expected
    assert Document(data).member(key) == expected


def test_a_top_level_key_after_nested_copies_of_it_near_either_end() -> None:
    nested = [{"usage": {"units": i}, "text": '"usage": {"units": -1}'} for i in range(50)]
    head = _dump({"usage": {"units": 7}, "results": nested}, None).encode()
    tail = _dump({"results": nested, "usage": {"units": 9}}, None).encode()
    assert find_member(head, "usage") == {"units": 7}
    assert find_member(tail, "usage") == {"units": 9}
    assert find_member(_dump({"results": nested}, None).encode(), "usage") is MISSING


def test_a_key_only_in_the_middle_of_a_large_document_is_read_from_a_full_parse() -> None:
    nested = [{"usage": {"units": i}, "text": "x" * 100} for i in range(400)]
    middle = _dump({"results": nested, "usage": {"units": 5}, "more": nested}, None).encode()
    assert len(middle) > 4 * WINDOW
    assert find_member(middle, "usage") is _UNDECIDED
    doc = Document.parse(middle)
    assert doc is not None
    assert doc.member("usage") == {"units": 5}


def test_an_excerpt_reads_members_near_its_ends_and_knows_what_it_cannot_tell() -> None:
    # {"usage": 7, "x\"usage": 5} with its tail kept from just after the backslash: the
    # first quote the tail holds may be escaped, so that "usage" is not taken for a key
    doc = Document.excerpt(b'{"usage": 7, "x\\', b'"usage": 5}')
    assert doc is not None
    assert doc.member("usage") == 7
    assert doc.member("cost") is UNKNOWN  # perhaps in the middle that was not kept
    assert doc.value() is None
    head = Document.excerpt(b'{"usage": {"units": 3}, "results": [1, 2', b"3, 4]}")
    assert head is not None
    assert head.member("usage") == {"units": 3}
    assert head.member("results") is UNKNOWN  # its value runs into the part not kept
    assert Document.excerpt(b"<html>", b"</html>") is None


def test_a_small_document_is_parsed_whole_and_must_be_valid() -> None:
    assert Document.parse('{"usage": 1') is None
    assert Document.parse("not json") is None
    doc = Document.parse(' {"usage": {"units": 3}} ')
    assert doc is not None
    assert doc.member("usage") == {"units": 3}


def _large_search_body(results: int) -> bytes:
    items = [
        {"title": f"result {i}", "url": f"https://example.com/{i}", "text": "lorem " * 40}
        for i in range(results)
    ]
    return json.dumps({"results": items, "costDollars": {"total": 0.005}}).encode()


def test_a_large_body_prices_like_a_small_one() -> None:
    catalog = get_default_catalog()
    entry = catalog.lookup("https://api.exa.ai/search")
    assert entry is not None
    small = json.dumps({"results": [], "costDollars": {"total": 0.005}}).encode()
    large = _large_search_body(3000)
    assert len(large) > 50 * SCAN_FROM
    for body in (small, large):
        result = catalog.extract_cost(entry, {}, body)
        assert (result.amount, result.confidence) == (Decimal("0.005"), "exact")


def test_only_the_members_a_rule_names_are_parsed() -> None:
    """The rest of a large body is searched, never parsed: here it is not even JSON."""
    catalog = get_default_catalog()
    entry = catalog.lookup("https://api.exa.ai/search")
    assert entry is not None
    unparsable = b"[" + b"undefined, " * SCAN_FROM + b"undefined]"
    body = b'{"results": ' + unparsable + b', "costDollars": {"total": 0.007}}'
    with pytest.raises(ValueError):
        json.loads(body)
    result = catalog.extract_cost(entry, {}, body)
    assert (result.amount, result.confidence) == (Decimal("0.007"), "exact")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # the billed member present at the top level only after nested look-alikes
        (b'{"data": [{"costDollars": {"total": 9}}], "costDollars": {"total": 0.004}}', "0.004"),
        # the member only nested: not the top-level member the rule names
        (b'{"data": [{"costDollars": {"total": 9}}]}', None),
    ],
)
def test_only_the_top_level_member_prices_a_large_body(body: bytes, expected: str | None) -> None:
    catalog = get_default_catalog()
    entry = catalog.lookup("https://api.exa.ai/search")
    assert entry is not None
    padded = body[:1] + b'"pad": "' + b"x" * SCAN_FROM + b'", ' + body[1:]
    result = catalog.extract_cost(entry, {}, padded)
    if expected is None:
        assert result.amount != Decimal("9")
    else:
        assert result.amount == Decimal(expected)


def test_a_count_of_a_list_the_kept_ends_do_not_hold_is_unknown_not_zero() -> None:
    """Tavily extract counts ``results.*``: in a streamed body kept by its ends the list
    runs into the part not kept, and a count of 0 would make the call free."""
    catalog = get_default_catalog()
    entry = catalog.get("tavily_extract")
    assert entry is not None
    head = b'{"results": [' + b'{"url": "https://example.com/a"}, ' * 2000
    doc = Document.excerpt(head, b'{"url": "https://example.com/z"}], "response_time": 1.2}')
    result = catalog.extract_cost(entry, {}, doc)
    assert (result.amount, result.confidence) == (Decimal(0), "unknown")
    whole = b'{"results": [{"url": "https://example.com/a"}, {"url": "https://example.com/z"}]}'
    assert catalog.extract_cost(entry, {}, whole).amount == Decimal("0.0032")
