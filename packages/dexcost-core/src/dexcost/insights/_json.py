"""Machine output: insight results as plain JSON values, money as exact strings."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from dexcost.store._values import format_ts, money_text

from ._period import Period


def to_jsonable(value: object) -> Any:
    """Convert a result (dataclasses, Decimal, datetime, UUID, ...) for ``json.dumps``.

    Decimal becomes its exact fixed-point string, datetimes UTC ISO text, a
    :class:`Period` ``{"since": ..., "until": ...}``. Fields starting with ``_`` are left out.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Period):
        return {
            "since": to_jsonable(value.start),
            "until": to_jsonable(value.end),
            "tz": value.tz,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return str(value)
