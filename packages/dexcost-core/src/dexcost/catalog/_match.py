"""Hostname and path matching for URLs, built once and answered from a per-host cache.

A *pattern* is a hostname with an optional path prefix: ``api.exa.ai``,
``*.pinecone.io``, ``textract.*.amazonaws.com``, ``maps.googleapis.com/maps/api/geocode``.

* A leading ``*.`` matches one or more labels (``*.pinecone.io`` matches
  ``a.svc.b.pinecone.io`` but not ``pinecone.io``).
* Any other ``*`` matches within one label (``textract.*.amazonaws.com``,
  ``*-vector.upstash.io``).
* A path prefix matches the path itself and everything below it (``/v1/ocr`` matches
  ``/v1/ocr`` and ``/v1/ocr/x``, not ``/v1/ocrx``); one ending in ``/`` matches any path
  that starts with it. A ``*`` in a path prefix matches within one segment
  (``/2010-04-01/Accounts/*/Messages.json``).

An exact host beats a wildcard, a wildcard with more literal labels beats one with fewer,
and a longer path prefix beats a shorter one. Matching a URL costs a string split and a
dict hit; the pattern walk runs once per distinct host and is cached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_Item = tuple["HostPattern", "frozenset[str] | None", T]
_Ranked = tuple["HostPattern", "frozenset[str] | None", T, int]

_LABEL_RE = re.compile(r"^[a-z0-9*](?:[a-z0-9*_-]*[a-z0-9*])?$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_CACHE_LIMIT = 4096


class PatternError(ValueError):
    """A host pattern or path prefix that is not well formed."""


@dataclass(frozen=True)
class HostPattern:
    """A parsed pattern: host labels, optional path prefix, and how specific it is."""

    text: str
    host: str
    path: str | None
    wildcard: bool

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key, larger is more specific: exact host, literal labels, labels, path length."""
        labels = self.host.split(".")
        literal = sum(1 for label in labels if "*" not in label)
        fixed = len(labels) - (1 if labels[0] == "*" else 0)
        return (0 if self.wildcard else 1, literal, fixed, len(self.path or ""))


def parse_pattern(text: str) -> HostPattern:
    """Parse and check ``host[/path]``; raise :class:`PatternError` saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise PatternError(f"host pattern must be a non-empty string, got {text!r}")
    if text != text.strip() or "://" in text:
        raise PatternError(f"host pattern {text!r} must be a bare hostname, no scheme or spaces")
    host, slash, path = text.partition("/")
    path_prefix = "/" + path if slash else None
    if host != host.lower():
        raise PatternError(f"host pattern {text!r} must be lower case")
    if ":" in host or "@" in host:
        raise PatternError(f"host pattern {text!r} must not carry a port or user info")
    if host.endswith("."):
        raise PatternError(f"host pattern {text!r} must not end with a dot")
    labels = host.split(".")
    if len(labels) < 2:
        raise PatternError(f"host pattern {text!r} needs at least two labels")
    for i, label in enumerate(labels):
        if not _LABEL_RE.match(label) or "**" in label:
            raise PatternError(f"host pattern {text!r} has an invalid label {label!r}")
        if "*" in label and i == len(labels) - 1:
            raise PatternError(f"host pattern {text!r} must not wildcard the top-level domain")
    if labels[-2] == "*":
        raise PatternError(f"host pattern {text!r} must name its registered domain")
    if path_prefix is not None:
        if not _PATH_RE.match(path_prefix) or "//" in path_prefix or "?" in path_prefix:
            raise PatternError(f"host pattern {text!r} has an invalid path prefix")
        if path_prefix == "/":
            raise PatternError(f"host pattern {text!r}: drop the lone '/' path")
    return HostPattern(text=text, host=host, path=path_prefix, wildcard="*" in host)


def _label_regex(label: str) -> str:
    return "[^.]*".join(re.escape(part) for part in label.split("*"))


def _host_matcher(pattern: HostPattern) -> Callable[[str], bool]:
    labels = pattern.host.split(".")
    if labels[0] == "*":
        head = r"(?:[^.]+\.)+"
        labels = labels[1:]
    else:
        head = ""
    rx = re.compile(head + r"\.".join(_label_regex(label) for label in labels) + r"\Z")
    return lambda host: rx.match(host) is not None


def _index_key(pattern: HostPattern) -> str:
    """The literal labels right of the rightmost wildcard: the bucket a host is looked in."""
    labels = pattern.host.split(".")
    last = max(i for i, label in enumerate(labels) if "*" in label)
    return ".".join(labels[last + 1 :])


def path_matcher(prefix: str | None) -> Callable[[str], bool] | None:
    """Return a test for paths under ``prefix`` (None when any path matches)."""
    if prefix is None:
        return None
    if "*" in prefix:
        body = "[^/]*".join(re.escape(part) for part in prefix.split("*"))
        tail = "" if prefix.endswith("/") else r"(?:/|\Z)"
        rx = re.compile(body + tail)
        return lambda path: rx.match(path) is not None
    if prefix.endswith("/"):
        return lambda path: path.startswith(prefix)
    n = len(prefix)
    return lambda path: path.startswith(prefix) and (len(path) == n or path[n] == "/")


def split_url(url: str) -> tuple[str, int]:
    """Return the raw authority (``user@host:port``) of ``url`` and where it ends."""
    i = url.find("://")
    start = 0 if i < 0 else i + 3
    end = len(url)
    for ch in "/?#":
        j = url.find(ch, start, end)
        if j >= 0:
            end = j
    return url[start:end], end


def url_path(url: str, start: int) -> str:
    """The path of ``url`` from ``start`` (the end of the authority), without query."""
    end = len(url)
    for ch in "?#":
        j = url.find(ch, start, end)
        if j >= 0:
            end = j
    return url[start:end] or "/"


def normalize_host(authority: str) -> str | None:
    """Lower-case ASCII hostname of an authority, or None if it is not a hostname.

    Drops user info, port and a trailing dot, and encodes internationalized names with
    IDNA so ``bücher.example`` and ``xn--bcher-kva.example`` are the same host.
    """
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return None  # an IPv6 literal is never a catalogued service
    host = host.partition(":")[0].rstrip(".").lower()
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return host


@dataclass(frozen=True)
class Candidate(Generic[T]):
    """One way a host can match: a path test, an optional method set, and its payload."""

    path: Callable[[str], bool] | None
    methods: frozenset[str] | None
    payload: T


class PatternIndex(Generic[T]):
    """Maps URLs to payloads through host patterns; exact hosts in a dict, wildcards by suffix.

    The index is immutable once built; its per-authority cache is a plain dict (safe to
    share between threads) cleared when it outgrows a few thousand hosts.
    """

    def __init__(
        self,
        items: Iterable[_Item[T]],
    ) -> None:
        """Index ``(pattern, methods, payload)`` items; on a tie the later item wins."""
        self._exact: dict[str, list[_Ranked[T]]] = {}
        self._wild: dict[str, list[tuple[Callable[[str], bool], _Ranked[T]]]] = {}
        for rank, (pattern, methods, payload) in enumerate(items):
            item = (pattern, methods, payload, rank)
            if pattern.wildcard:
                bucket = self._wild.setdefault(_index_key(pattern), [])
                bucket.append((_host_matcher(pattern), item))
            else:
                self._exact.setdefault(pattern.host, []).append(item)
        self._cache: dict[str, tuple[Candidate[T], ...]] = {}

    def candidates(self, authority: str) -> tuple[Candidate[T], ...]:
        """All candidates for a raw authority, most specific first (cached)."""
        found = self._cache.get(authority)
        if found is None:
            host = normalize_host(authority)
            found = self._resolve(host) if host is not None else ()
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache = {}
            self._cache[authority] = found
        return found

    def _resolve(self, host: str) -> tuple[Candidate[T], ...]:
        hits: list[_Ranked[T]] = list(self._exact.get(host, ()))
        if self._wild:
            labels = host.split(".")
            for i in range(1, len(labels)):
                for test, item in self._wild.get(".".join(labels[i:]), ()):
                    if test(host):
                        hits.append(item)
        hits.sort(key=lambda h: (h[0].specificity, h[1] is not None, h[3]), reverse=True)
        return tuple(Candidate(path_matcher(p.path), m, payload) for p, m, payload, _ in hits)

    def match(self, url: str, method: str | None = None) -> T | None:
        """The payload of the most specific pattern matching ``url`` (and ``method``)."""
        authority, end = split_url(url)
        found = self._cache.get(authority)
        if found is None:
            found = self.candidates(authority)
        if not found:
            return None
        path: str | None = None
        for cand in found:
            if cand.methods is not None and (method is None or method.upper() not in cand.methods):
                continue
            if cand.path is not None:
                if path is None:
                    path = url_path(url, end)
                if not cand.path(path):
                    continue
            return cand.payload
        return None


def matches_any(patterns: Sequence[str], url: str) -> bool:
    """True if ``url`` matches one of ``patterns`` (for small, rarely used lists)."""
    index: PatternIndex[bool] = PatternIndex((parse_pattern(p), None, True) for p in patterns)
    return index.match(url) is not None
