"""Scalar conversions shared by the store and the read side.

Timestamps are stored as UTC text in one sortable format, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
(naive datetimes are taken to be UTC); amounts as exact fixed-point decimal text plus an
integer number of picodollars (1e-12 USD) that SQL can sum exactly.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from enum import Enum
from typing import Any, cast

from dexcost._money import ZERO

UTC = timezone.utc
Row = tuple[Any, ...]

#: Bound in place of ``None`` on the fast path. SQLite stores a NaN double as NULL, and
#: CPython's sqlite3 binds a float directly while ``None`` goes through the adapter
#: lookup, which costs about as much as the rest of a row's columns together.
NULL: Any = float("nan")
EMPTY_JSON = "{}"
TS_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"

_PICO_CTX = Context(prec=80, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999)
_E12 = Decimal(10**12)
_MUL = _PICO_CTX.multiply
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_ZERO_PAIR = ("0", 0)


# --- time -------------------------------------------------------------------------------


def format_ts(value: datetime) -> str:
    """Return ``value`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (naive means UTC)."""
    tz = value.tzinfo
    if tz is not None and tz is not UTC:
        value = value.astimezone(UTC)
    return TS_FORMAT % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`format_ts`: an aware UTC datetime."""
    if text.endswith("Z"):
        text = text[:-1]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- money ------------------------------------------------------------------------------


def money_text(value: Decimal) -> str:
    """The exact decimal string of an amount, in fixed-point notation."""
    return format(value, "f")


def to_pico(value: Decimal) -> int | None:
    """The amount in picodollars (1e-12 USD), or ``None`` if it does not fit in int64.

    Exact when the amount has at most 12 decimal places (every bundled price does);
    otherwise rounded half-even to the nearest picodollar. The exact amount always
    stays in the text column.
    """
    try:
        scaled = _PICO_CTX.multiply(value, _E12)
        pico = int(scaled)
        if scaled != pico:
            pico = int(scaled.to_integral_value(ROUND_HALF_EVEN, _PICO_CTX))
    except (ValueError, OverflowError, InvalidOperation, TypeError):
        return None
    if _INT64_MIN <= pico <= _INT64_MAX:
        return pico
    return None


def pico_to_decimal(pico: int) -> Decimal:
    """Picodollars back to a Decimal amount of USD (exact)."""
    return Decimal(pico).scaleb(-12, _PICO_CTX)


def money_pair(value: object) -> tuple[str, int | None]:
    """``(text, picodollars)`` of an amount given as Decimal (or anything Decimal parses)."""
    if value is ZERO:  # most of a task's amounts are still the zero they started as
        return _ZERO_PAIR
    if type(value) is not Decimal:
        value = Decimal(str(value))
    return money_text(value), to_pico(value)


# --- JSON -------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Decimal):
        return money_text(value) if value.is_finite() else str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    # uuid.UUID, paths and everything else: their text.
    return str(value)


def _encoder() -> Callable[[object], str]:
    """``JSONEncoder(...).encode``, built once, without its per-call set-up.

    ``encode`` builds the C encoder anew on every call, which costs more than encoding a
    small ``details`` dict. The C encoder made here is the one it builds, except that
    it keeps no cycle markers (a cycle raises RecursionError, which ``to_json`` takes
    the safe way). Without the C accelerator, ``encode`` itself.
    """
    encoder = json.JSONEncoder(default=_json_default, allow_nan=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    try:
        one_shot = make(  # type: ignore[misc]
            None,
            _json_default,
            json.encoder.encode_basestring_ascii,
            None,
            ":",
            ",",
            False,
            False,
            False,
        )
    except Exception:
        return encoder.encode
    join = "".join
    return lambda value: join(one_shot(value, 0))


_ENCODE = _encoder()


def to_json(value: object) -> str:
    """Serialise ``details``/``metadata`` to JSON text; never raises.

    Values JSON does not know become strings (Decimal exactly, datetimes in ISO
    format); non-string keys, NaN and cycles are tolerated. A value that is not a
    mapping is wrapped as ``{"value": ...}``.
    """
    if not value:
        return EMPTY_JSON
    if not isinstance(value, Mapping):
        value = {"value": value}
    try:
        return _ENCODE(value)
    except (TypeError, ValueError, RecursionError, RuntimeError):
        pass
    try:
        return _ENCODE(_plain(value, 0))
    except Exception as exc:
        return json.dumps({"_dexcost_unserialisable": f"{type(exc).__name__}: {exc}"})


def _plain(value: object, depth: int) -> object:
    """A JSON-safe copy: string keys, no NaN, no cycles (cut at depth 32)."""
    if depth > 32:
        return "<too deep>"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (str, int)):
        return value
    return _json_default(value)


# --- plain columns ----------------------------------------------------------------------


def text(value: object) -> str | None:
    """A text column: ``None`` stays ``None``; enums give their value; the rest ``str()``."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def integer(value: object) -> int | None:
    """An integer column: ``None`` stays ``None``; bools and numeric text become ints."""
    if value is None or type(value) is int:
        return value
    return int(cast(Any, value))


def uuid_text(value: object) -> str | None:
    """The canonical text of a UUID (given as UUID or as any text ``uuid.UUID`` parses)."""
    if value is None:
        return None
    if type(value) is uuid.UUID:
        return str(value)
    return str(uuid.UUID(str(value)))


def sanitize_row(row: Row) -> Row:
    """Make every value bindable: text without lone surrogates, integers within int64."""
    out: list[Any] = []
    for value in row:
        if isinstance(value, str):
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        elif value is None or isinstance(value, (float, bytes)):
            pass
        elif not isinstance(value, int) or not _INT64_MIN <= value <= _INT64_MAX:
            value = text(value)
        out.append(value)
    return tuple(out)
