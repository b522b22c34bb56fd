"""SQL pieces shared by the insights: exact money sums over picodollar columns."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from dexcost.store._values import pico_to_decimal

# Each money sum is returned as two integer sums, whole microdollars and the remaining
# picodollars, so no SUM overflows SQLite's int64 (a plain SUM of picodollars would
# above $9.2 million); Python joins the two exactly.
_SPLIT = 1_000_000
_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)
_PCT = Decimal("0.01")
_PICO = Decimal("1e-12")


def query(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
    """Run ``sql`` and return its rows as :class:`sqlite3.Row` (the connection unchanged)."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    try:
        return cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()


def money_sum(expr: str, name: str) -> str:
    """Select-list fragment summing the picodollar expression ``expr`` as ``name``.

    Also counts, as ``name_big``, the rows whose picodollar value is NULL: amounts too
    large for int64, which the caller adds from their exact text (see
    :func:`split_amount`).
    """
    return (
        f"SUM(({expr}) / {_SPLIT}) AS {name}_hi, SUM(({expr}) % {_SPLIT}) AS {name}_lo,"
        f" SUM(({expr}) IS NULL) AS {name}_big"
    )


def split_amount(text: object) -> tuple[int, int] | None:
    """The ``(hi, lo)`` parts of an amount stored as text, for a row whose picodollar
    column is NULL (too large for int64); None when the text is not a finite number."""
    try:
        value = Decimal(str(text))
    except ArithmeticError:
        return None
    if not value.is_finite():
        return None
    pico = int(_CTX.multiply(value, Decimal(10**12)).to_integral_value(context=_CTX))
    hi = abs(pico) // _SPLIT * (1 if pico >= 0 else -1)  # truncated, as SQLite divides
    return hi, pico - hi * _SPLIT


def money(row: Mapping[str, Any] | sqlite3.Row, name: str) -> Decimal:
    """The exact USD amount of a :func:`money_sum` column pair (0 when no rows)."""
    hi, lo = row[f"{name}_hi"], row[f"{name}_lo"]
    return tidy(pico_to_decimal((hi or 0) * _SPLIT + (lo or 0)))


def tidy(value: Decimal) -> Decimal:
    """The same amount without trailing zeros, never in exponent notation."""
    value = value.normalize(_CTX)
    if value.as_tuple().exponent > 0:  # type: ignore[operator]
        value = value.quantize(Decimal(1), context=_CTX)
    return value


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole``, to 0.01 (None when ``whole`` is 0)."""
    if not whole:
        return None
    return _CTX.divide(_CTX.multiply(part, 100), whole).quantize(_PCT, context=_CTX)


def average(total: Decimal, count: int) -> Decimal | None:
    """``total / count`` rounded half-even to the picodollar (None when ``count`` is 0)."""
    if not count:
        return None
    return tidy(_CTX.divide(total, count).quantize(_PICO, context=_CTX))
