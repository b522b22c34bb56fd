"""The hot path's host reader agrees with the catalog's URL splitting on any URL."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dexcost.adapters.http._capture import authority
from dexcost.catalog._match import split_url

_PART = st.text(alphabet="aZ09.-_~%@:[]", max_size=12)
_TAIL = st.text(alphabet="aZ/?#=&.:@", max_size=12)


@given(
    scheme=st.sampled_from(["http://", "https://", "HTTP://", "", "//", ":/", "a:"]),
    host=_PART,
    tail=st.lists(st.tuples(st.sampled_from("/?#"), _TAIL), max_size=3),
)
def test_authority_is_split_urls_authority(scheme: str, host: str, tail: list) -> None:
    url = scheme + host + "".join(sep + rest for sep, rest in tail)
    assert authority(url) == split_url(url)[0]


def test_authority_examples() -> None:
    assert authority("https://user@api.exa.ai:8443/search?q=1") == "user@api.exa.ai:8443"
    assert authority("http://serpapi.com?q=1") == "serpapi.com"
    assert authority("http://serpapi.com#top") == "serpapi.com"
    assert authority("serpapi.com/search") == "serpapi.com"
    assert authority("http://[::1]:80/x") == "[::1]:80"
