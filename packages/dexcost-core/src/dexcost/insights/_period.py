"""The time window an insight covers: ``7d``/``30d``/``90d`` or explicit dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from dexcost.store._values import format_ts

UTC = timezone.utc
_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class Period:
    """A half-open UTC window ``[start, end)``; ``None`` leaves a side unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"the period starts ({self.start}) after it ends ({self.end})")

    @classmethod
    def all_time(cls) -> Period:
        """No bound at all."""
        return cls()

    @classmethod
    def last(cls, days: int, *, now: datetime | None = None) -> Period:
        """The ``days`` days up to ``now`` (a rolling window, not calendar days)."""
        if days <= 0:
            raise ValueError(f"days must be positive, got {days}")
        end = now or datetime.now(UTC)
        return cls(end - timedelta(days=days), None)

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Period:
        """Build a period from command-line style text.

        ``since`` is ``7d``/``30d``/``90d`` (any number of ``h``ours, ``d``ays or
        ``w``eeks before ``now``), a date (``2026-01-31``: from its midnight UTC) or an
        ISO datetime (naive means UTC). ``until`` is a date (that day included) or a
        datetime (excluded). Raises :class:`ValueError` with what is accepted.
        """
        now = now or datetime.now(UTC)
        start = None if since is None else _parse_bound(since, now, is_end=False)
        end = None if until is None else _parse_bound(until, now, is_end=True)
        return cls(start, end)

    def clause(self, column: str) -> tuple[str, list[str]]:
        """An SQL condition on a timestamp ``column`` and its parameters."""
        parts, params = [], []
        if self.start is not None:
            parts.append(f"{column} >= ?")
            params.append(format_ts(self.start))
        if self.end is not None:
            parts.append(f"{column} < ?")
            params.append(format_ts(self.end))
        return (" AND ".join(parts) or "1"), params

    def describe(self) -> str:
        """A short human description, e.g. ``2026-01-01 00:00 UTC → now``."""
        if self.start is None and self.end is None:
            return "all time"
        start = "the beginning" if self.start is None else _short(self.start)
        end = "now" if self.end is None else _short(self.end)
        return f"{start} → {end}"


def _short(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _parse_bound(text: str, now: datetime, *, is_end: bool) -> datetime:
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        if amount <= 0:
            raise ValueError(f"{text!r}: the number must be positive")
        return now - amount * _UNITS[unit]
    stripped = text.strip()
    try:
        day = date.fromisoformat(stripped)
    except ValueError:
        pass
    else:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return midnight + timedelta(days=1) if is_end else midnight
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a period: use 7d, 30d, 90d (or any Nh/Nd/Nw), "
            f"a date like 2026-01-31 or a datetime like 2026-01-31T12:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
