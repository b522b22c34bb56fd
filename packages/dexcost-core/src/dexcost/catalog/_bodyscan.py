"""The few values a price needs from a JSON body, read without parsing the rest of it.

A rule reads one or two members of the top-level object (``usage``, ``costDollars``,
``results``); a search or scraping response may carry megabytes of results beside
them. A small document is parsed whole (that is as fast as anything). In a larger one a
member is found by a byte search for its key near either end of the document, where
providers put their usage and charges, and only its value is parsed; a key found only
in the middle has the document parsed whole after all.

The search is exact for valid JSON: a quote that is not escaped always starts or ends a
string, so ``"key"`` followed by a colon can only be a key, and it belongs to the
top-level object when the brackets outside strings between it and the nearer end of the
document leave exactly one open.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "MISSING",
    "PARSE_LIMIT",
    "SCAN_FROM",
    "UNKNOWN",
    "WINDOW",
    "Document",
    "decode_json",
    "find_member",
    "step",
]

#: Returned for a member the document does not have.
MISSING: Any = object()
#: Returned for a member that cannot be told apart from missing: the body was not kept
#: whole, or is too large to parse and has the key only in its middle.
UNKNOWN: Any = object()
#: Documents smaller than this (in bytes) are parsed whole.
SCAN_FROM = 16 * 1024
#: Larger documents are never parsed whole (a member only in their middle reads as missing).
PARSE_LIMIT = 4 * 1024 * 1024
#: How far from either end of a larger document a key is looked for and checked.
WINDOW = 16 * 1024

# One scanner for every body (json.loads would build a decoder per call). Numbers with a
# fraction are read as Decimal: a reported charge keeps every digit the provider sent.
_decoder = json.JSONDecoder(parse_float=Decimal)
# (typeshed has make_scanner's argument as the scanner type; any decoder is what it takes)
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]
_BLANK = " \t\n\r"
_BLANK_B = b" \t\n\r"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_UNREAD: Any = object()
#: find_member's answer when the key is only in the middle: parse the whole document.
_UNDECIDED: Any = object()
#: Bytes decoded at first to read one value; the rest only if the value goes on.
_VALUE_PEEK = 4096


def decode_json(text: str) -> Any:
    """``json.loads(text, parse_float=Decimal)``, without its per-call set-up."""
    start = len(text) - len(text.lstrip(_BLANK)) if text[:1] in _BLANK else 0
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if end != len(text) and text[end:].strip(_BLANK):
        raise ValueError("extra data after the JSON document")
    return value


def _net_open(data: bytes, start: int, end: int) -> int:
    """Brackets opened minus closed in ``data[start:end]``, outside strings.

    ``start`` must not be inside a string (the document's start, or a key's quote).
    """
    part = data[start:end]
    if b'"' in part:
        part = _STRING.sub(b"", part)
    return part.count(b"{") + part.count(b"[") - part.count(b"}") - part.count(b"]")


def _value_at(data: bytes, at: int, after: int) -> int:
    """Where the value of the key whose quote is at ``at`` starts, or -1 if not a key.

    -1 also when the quote or the backslashes before it reach back to the start of
    ``data`` (the tail of a body whose beginning was not kept): it may be escaped.
    """
    back = at - 1
    while back >= 0 and data[back] == 0x5C:  # backslash
        back -= 1
    if (at - 1 - back) % 2 or back < 0:  # escaped, or cannot tell
        return -1
    n = len(data)
    while after < n and data[after] in _BLANK_B:
        after += 1
    if after >= n or data[after] != 0x3A:  # colon
        return -1
    after += 1
    while after < n and data[after] in _BLANK_B:
        after += 1
    return after


def _parse_value(data: bytes, start: int) -> Any:
    """The JSON value at ``start``; raises ``ValueError`` if there is none.

    A value reaching the end of ``data`` is refused: in a whole document the closing
    brace comes after it, and in a kept head of a body the value may go on.
    """
    peek = data[start : start + _VALUE_PEEK]
    if len(peek) < len(data) - start:  # decode a little first: most values are short
        text = peek.decode("utf-8", "ignore")
        try:
            value, end = _scan(text, 0)
        except (StopIteration, ValueError):
            pass
        else:
            if end < len(text):  # ended before the peek did (a number might go on)
                return value
    try:
        text = data[start:].decode("utf-8")
        value, end = _scan(text, 0)
    except (StopIteration, UnicodeDecodeError) as exc:
        raise ValueError("no JSON value here") from exc
    if end >= len(text):
        raise ValueError("the value may go on past the bytes kept")
    return value


def _from_start(data: bytes, needle: bytes, stop: int) -> Any:
    """The top-level value of the key ``needle`` starting before ``stop``, else MISSING.

    ``data`` starts where the document starts.
    """
    size = len(needle)
    at = data.find(needle, 0, stop + size - 1)
    while at >= 0:
        start = _value_at(data, at, at + size)
        if start >= 0 and _net_open(data, 0, at) == 1:
            return _parse_value(data, start)
        at = data.find(needle, at + size, stop + size - 1)
    return MISSING


def _from_end(data: bytes, needle: bytes, lo: int) -> Any:
    """The top-level value of the key ``needle`` starting at ``lo`` or later, else MISSING.

    ``data`` ends where the document ends.
    """
    size = len(needle)
    n = len(data)
    at = data.rfind(needle, lo, n)
    while at >= 0:
        start = _value_at(data, at, at + size)
        if start >= 0 and _net_open(data, at, n) == -1:
            return _parse_value(data, start)
        at = data.rfind(needle, lo, at + size - 1)
    return MISSING


def _needle(key: str) -> bytes:
    return b'"' + key.encode("utf-8") + b'"'


def find_member(data: bytes, key: str) -> Any:
    """The value of ``key`` in the top-level object ``data``, or :data:`MISSING`.

    ``data`` must be a whole document starting with ``{``. A key found only farther than
    :data:`WINDOW` from both ends gives ``_UNDECIDED``. Raises ``ValueError`` when the
    value found is not valid JSON.
    """
    needle = _needle(key)
    n = len(data)
    # The end first: that is where most providers put usage and charges.
    tail_start = max(0, n - WINDOW)  # keys starting here or later: checked from the end
    found = _from_end(data, needle, tail_start)
    if found is MISSING and tail_start:
        head_end = min(WINDOW, tail_start)  # keys starting before this: from the start
        found = _from_start(data, needle, head_end)
        middle = tail_start + len(needle) - 1
        if found is MISSING and data.find(needle, head_end, middle) >= 0:
            return _UNDECIDED
    return found


class Document:
    """One JSON response body; members of its top-level object are read on demand."""

    __slots__ = ("_data", "_members", "_tail", "_value")

    def __init__(
        self, data: bytes | None = None, value: Any = _UNREAD, tail: bytes | None = None
    ) -> None:
        self._data = data
        #: For an excerpt: the last bytes of the body (``data`` holding the first ones).
        self._tail = tail
        self._value = value
        self._members: dict[str, Any] | None = None

    @classmethod
    def parse(cls, body: bytes | str) -> Document | None:
        """A document for ``body``, or None when it is not a JSON object or array.

        A small document is parsed here and must be valid as a whole; a larger object is
        only checked to start and end like one.
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        if data[:64].lstrip(_BLANK_B)[:1] not in (b"{", b"["):
            return None  # not JSON (an HTML page, an image): nothing is decoded
        if len(data) >= SCAN_FROM:
            data = data.strip(_BLANK_B)
            if data[:1] == b"{" and data[-1:] == b"}":
                return cls(data)
            if len(data) > PARSE_LIMIT:
                return None
        try:
            return cls(value=decode_json(data.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            return None

    @classmethod
    def excerpt(cls, head: bytes, tail: bytes) -> Document | None:
        """A document known by its first and last bytes only (the middle was not kept).

        Members are found near either end; anything else reads as missing.
        """
        head, tail = head.lstrip(_BLANK_B), tail.rstrip(_BLANK_B)
        if head[:1] != b"{" or tail[-1:] != b"}":
            return None
        return cls(head, tail=tail)

    def value(self) -> Any:
        """The whole document, parsed (once); None if it is not valid JSON or an excerpt."""
        if self._tail is not None or len(self._data or b"") > PARSE_LIMIT:
            return None
        if self._value is _UNREAD:
            try:
                self._value = decode_json((self._data or b"").decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self._value = None
        return self._value

    def member(self, key: str) -> Any:
        """The top-level member ``key`` (a list index for an array), :data:`MISSING`, or
        :data:`UNKNOWN` when this document cannot tell."""
        if self._value is not _UNREAD:
            return step(self._value, key)
        members = self._members
        if members is None:
            members = self._members = {}
        elif key in members:
            return members[key]
        found = _UNDECIDED
        if '"' not in key and "\\" not in key:  # else not found by a plain search
            try:
                if self._tail is None:
                    found = find_member(self._data or b"", key)
                else:
                    found = _from_end(self._tail, _needle(key), 0)
                    if found is MISSING:
                        head = self._data or b""
                        found = _from_start(head, _needle(key), len(head))
                    if found is MISSING:
                        found = UNKNOWN
            except ValueError:  # not a JSON value there, or cut off at the end of the head
                found = MISSING if self._tail is None else UNKNOWN
        if found is _UNDECIDED:
            whole = self.value()
            found = step(whole, key) if whole is not None else UNKNOWN
        members[key] = found
        return found


def step(value: Any, key: str) -> Any:
    """``value[key]`` for an object, ``value[int(key)]`` for a list; else :data:`MISSING`."""
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(key, MISSING)
    if isinstance(value, list) and key.isdigit():
        idx = int(key)
        return value[idx] if idx < len(value) else MISSING
    return MISSING
