"""Human output: aligned tables, money with enough digits, numbers with separators."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

_MAX_PLACES = 6
_SHOWN = Decimal(1).scaleb(-_MAX_PLACES)


def places(values: Iterable[Decimal | None]) -> int:
    """How many decimals show ``values`` without loss: 2 to 6 (beyond 6 is rounded)."""
    needed = 2
    for value in values:
        if value:
            exponent = value.quantize(_SHOWN, ROUND_HALF_EVEN).normalize().as_tuple().exponent
            needed = max(needed, -exponent if isinstance(exponent, int) else 0)
    return min(needed, _MAX_PLACES)


def money(value: Decimal | None, decimals: int | None = None) -> str:
    """``$1,234.50``; small amounts keep up to six decimals (``$0.000125``).

    ``decimals`` fixes the number of decimals (to align a column, see :func:`places`).
    """
    if value is None:
        return "-"
    if decimals is None:
        decimals = places([value])
    if value and not value.quantize(_SHOWN, ROUND_HALF_EVEN):
        return "<$0.000001"
    shown = value.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_EVEN)
    if shown < 0:
        return f"-${-shown:,f}"
    return f"${shown:,f}"


def money_cells(values: Sequence[Decimal | None]) -> list[str]:
    """A money column: every amount with the same number of decimals."""
    decimals = places(values)
    return [money(v, decimals) for v in values]


def plural(n: int, word: str) -> str:
    """``1 call``, ``2 calls``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def pct(value: Decimal | None) -> str:
    """``12.50%`` or ``-`` when undefined (nothing to compare with)."""
    return "-" if value is None else f"{value}%"


def count(value: int) -> str:
    """``12,345``."""
    return f"{value:,}"


def when(value: datetime | None) -> str:
    """``2026-01-31 12:00:05`` in UTC."""
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: datetime, end: datetime | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h03m``; ``-`` while still running."""
    if end is None:
        return "-"
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def label(value: str | None) -> str:
    """A name, or ``(none)`` for a missing one."""
    return "(none)" if value is None else value


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """An aligned text table; columns listed in ``right`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])
