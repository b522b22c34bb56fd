"""A small PDF writer: pages of text, lines and filled boxes, no dependency.

Text uses the standard Helvetica fonts every PDF reader has (nothing embedded), in
WinAnsi encoding; characters outside it print as ``?``. Widths come from the fonts'
published metrics, so text can be right-aligned and measured.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

# Advance widths (1/1000 em) of ASCII 32..126: the Adobe AFM metrics of the fonts.
_HELVETICA = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
]  # fmt: skip
_HELVETICA_BOLD = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
]  # fmt: skip
_SUBSTITUTES = {"→": "->", "–": "-", "—": "-", "≤": "<=", "≥": ">=", "×": "x", "…": "..."}

#: A4 in points.
A4 = (595.0, 842.0)


def _encode(text: str) -> bytes:
    for char, plain in _SUBSTITUTES.items():
        text = text.replace(char, plain)
    return text.encode("cp1252", errors="replace")


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width of ``text`` in points at ``size`` (non-ASCII counts as an average glyph)."""
    table = _HELVETICA_BOLD if bold else _HELVETICA
    units = sum(table[b - 32] if 32 <= b <= 126 else 556 for b in _encode(text))
    return units * size / 1000


def _escape(data: bytes) -> bytes:
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


@dataclass
class Page:
    """One page's drawing operations, in points from the bottom-left corner."""

    width: float = A4[0]
    height: float = A4[1]
    ops: list[bytes] = field(default_factory=list)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 10,
        bold: bool = False,
        align: str = "left",
        grey: float = 0.0,
    ) -> None:
        """Write ``text`` with its baseline at ``y``; ``align`` left, right or center at ``x``."""
        if align == "right":
            x -= text_width(text, size, bold=bold)
        elif align == "center":
            x -= text_width(text, size, bold=bold) / 2
        font = b"/F2" if bold else b"/F1"
        self.ops.append(
            b"BT %s %.2f Tf %.3f g %.2f %.2f Td (%s) Tj ET"
            % (font, size, grey, x, y, _escape(_encode(text)))
        )

    def line(
        self, x1: float, y1: float, x2: float, y2: float, *, width: float = 0.5, grey: float = 0.0
    ) -> None:
        """A straight line."""
        self.ops.append(b"%.3f G %.2f w %.2f %.2f m %.2f %.2f l S" % (grey, width, x1, y1, x2, y2))

    def box(self, x: float, y: float, w: float, h: float, *, grey: float = 0.9) -> None:
        """A filled rectangle with its lower-left corner at ``(x, y)``."""
        self.ops.append(b"%.3f g %.2f %.2f %.2f %.2f re f" % (grey, x, y, w, h))


def render(pages: list[Page], *, title: str = "") -> bytes:
    """The bytes of a PDF file holding ``pages``."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title (%s) /Producer (dexcost) >>" % _escape(_encode(title)),
    ]
    kids = []
    for page in pages:
        content = zlib.compress(b"\n".join(page.ops))
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
            % (len(content), content)
        )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R"
            b" /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>"
            % (page.width, page.height, len(objects))
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
