"""Money is Decimal: parsing and validation of USD amounts."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TypeAlias

MoneyInput: TypeAlias = "Decimal | str | int"

ZERO = Decimal(0)


def to_money(value: object, *, name: str = "cost_usd") -> Decimal:
    """Return ``value`` as a finite, non-negative Decimal.

    Accepts Decimal, str and int. Floats are refused because binary floating point
    cannot represent most prices exactly; pass ``Decimal("0.01")`` or ``"0.01"``.
    """
    if type(value) is Decimal:
        d = value
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a Decimal or a str, not bool")
    elif isinstance(value, float):
        raise TypeError(
            f"{name} must be a Decimal or a str, not float ({value!r}): floats cannot hold "
            f"prices exactly; pass Decimal({str(value)!r}) or the string {str(value)!r}"
        )
    elif isinstance(value, (Decimal, int)):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} is not a number: {value!r}") from None
    else:
        raise TypeError(f"{name} must be a Decimal or a str, not {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{name} must be a finite amount, got {value!r}")
    if d < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return d


def to_rate(value: object, *, name: str) -> Decimal:
    """Like :func:`to_money` but also accepts a float, converted through its shortest repr.

    Used where the contract allows floats for *prices* (``set_custom_pricing``), never for
    recorded costs.
    """
    if isinstance(value, float) and not isinstance(value, bool):
        value = repr(value)
    return to_money(value, name=name)
