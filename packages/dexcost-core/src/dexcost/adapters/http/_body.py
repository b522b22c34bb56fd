"""Pricing a streamed response from the bytes the user reads, without reading any for them.

When the price is in the body and the library has not loaded it (``stream=True``,
aiohttp), the library module puts a tee in front of the user's reads. The tee hands
each chunk the user reads to a :class:`BodyWatch`, which keeps a copy up to
:data:`BODY_LIMIT` bytes; past that it keeps only the first and the last
:data:`~dexcost.catalog._bodyscan.WINDOW` bytes, where providers put usage and charges,
so a download of any size costs a bounded copy. The call is recorded once: when the user
has read to the end (priced from the body), or when the response is closed or collected
before that (priced from headers, i.e. the entry's fallback, usually its per-request
estimate). Nothing is ever read that the user did not read.
"""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Any

from dexcost import _guard
from dexcost.catalog._bodyscan import WINDOW, Document
from dexcost.instrument._stream import StreamObserver

if TYPE_CHECKING:
    from ._capture import Call

__all__ = ["BODY_LIMIT", "BodyWatch", "decode"]

#: Bodies up to this size are kept whole while the user reads them (and, compressed,
#: inflated up to it); past it, an uncompressed body is kept by its two ends.
BODY_LIMIT = 4 * 1024 * 1024


def _coding(encoding: str | None) -> str:
    """A ``Content-Encoding`` header's value as compared here ("" for none)."""
    coding = (encoding or "").strip().lower()
    return "" if coding == "identity" else coding


def decode(data: bytes, encoding: str | None) -> bytes | None:
    """Undo a ``Content-Encoding`` (identity, gzip, deflate); None when it cannot be undone."""
    coding = _coding(encoding)
    if not coding:
        return data
    if coding in ("gzip", "x-gzip", "deflate"):
        wbits = zlib.MAX_WBITS | 32 if coding != "deflate" else zlib.MAX_WBITS
        for bits in (wbits, -zlib.MAX_WBITS):  # deflate is sent with and without zlib header
            try:
                inflater = zlib.decompressobj(bits)
                out = inflater.decompress(data, BODY_LIMIT + 1)
            except zlib.error:
                continue
            return out if len(out) <= BODY_LIMIT and not inflater.unconsumed_tail else None
        return None
    return None  # br, zstd, or several codings: price from headers instead


class BodyWatch(StreamObserver):
    """Keeps the body bytes the user reads; records the call once (see module doc)."""

    __slots__ = (
        "_call",
        "_chunks",
        "_encoded",
        "_head",
        "_headers",
        "_size",
        "_status",
        "_tail",
        "encoding",
    )

    site = "http.body"

    def __init__(self, call: Call, status: int, headers: object, encoding: str | None) -> None:
        super().__init__(time.perf_counter_ns())
        self._call = call
        self._status = status
        self._headers = headers
        #: The response's Content-Encoding, for bytes fed still encoded.
        self.encoding = encoding
        self._chunks: list[bytes] | None = []
        self._size = 0
        self._encoded = False
        #: Past BODY_LIMIT: the first WINDOW bytes, and (growing, trimmed) the last ones.
        self._head: bytes | None = None
        self._tail = bytearray()

    def feed(self, data: Any, *, encoded: bool = False) -> None:
        """Keep a copy of one chunk the user read (``encoded``: not yet decompressed).

        Never raises: the chunk is the user's, whatever happens to dexcost's copy.
        """
        if self._chunks is not None:
            _guard.call(self.site, None, self._keep, data, encoded)

    def _keep(self, data: Any, encoded: bool) -> None:
        chunks = self._chunks
        if chunks is None or not data:
            return
        if not isinstance(data, (bytes, bytearray, memoryview)):
            self._chunks = None  # text or something else: not ours to interpret
            return
        self._encoded = self._encoded or encoded
        if self._head is not None:  # only the two ends are kept now
            tail = self._tail
            tail += data
            if len(tail) > 2 * WINDOW:
                del tail[:-WINDOW]
            return
        self._size += len(data)
        chunks.append(bytes(data))
        if self._size > BODY_LIMIT:
            if self._encoded and _coding(self.encoding):
                self._chunks = None  # a compressed stream cannot be read from its end
                return
            whole = b"".join(chunks)
            self._head = whole[:WINDOW]
            self._tail = bytearray(whole[-WINDOW:])
            chunks.clear()

    def done(self) -> None:
        """The user read the body to its end: price it from the body."""
        self.completed = True
        self.finish()

    def record(self) -> None:
        body: bytes | Document | None = None
        chunks = self._chunks
        if self.completed and chunks is not None:
            if self._head is not None:
                body = Document.excerpt(self._head, bytes(self._tail[-WINDOW:]))
            else:
                raw = b"".join(chunks)
                body = decode(raw, self.encoding) if self._encoded else raw
        self._chunks = None
        self._head = None
        self._call.record(self._status, self._headers, body)
