"""The time window an insight covers: ``7d``/``30d``/``90d`` or explicit dates, in a time zone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dexcost.store._values import format_ts

UTC = timezone.utc
_MONTH = re.compile(r"^\s*(\d{4})-(\d{2})\s*$")
_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class Period:
    """A half-open window ``[start, end)``; ``None`` leaves a side unbounded.

    ``tz`` is the IANA time zone (``"Europe/Paris"``) in which dates are read, days are
    counted and times are shown; the bounds themselves are instants (aware datetimes).
    """

    start: datetime | None = None
    end: datetime | None = None
    tz: str = "UTC"

    def __post_init__(self) -> None:
        zone = get_zone(self.tz)  # fails early on an unknown zone
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=zone))
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"the period starts ({self.start}) after it ends ({self.end})")

    @property
    def zone(self) -> tzinfo:
        """The :class:`~datetime.tzinfo` of :attr:`tz`."""
        return get_zone(self.tz)

    @classmethod
    def all_time(cls) -> Period:
        """No bound at all."""
        return cls()

    @classmethod
    def last(cls, days: int, *, now: datetime | None = None, tz: str = "UTC") -> Period:
        """The ``days`` days up to ``now`` (a rolling window, not calendar days)."""
        if days <= 0:
            raise ValueError(f"days must be positive, got {days}")
        end = now or datetime.now(UTC)
        return cls(end - timedelta(days=days), None, tz)

    @classmethod
    def month(cls, month: str, *, tz: str = "UTC") -> Period:
        """The calendar month ``YYYY-MM`` from its first midnight to the next, in ``tz``."""
        match = _MONTH.match(month)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{month!r} is not a month: use YYYY-MM, like 2026-10")
        year, number = int(match.group(1)), int(match.group(2))
        zone = get_zone(tz)
        first = datetime(year, number, 1, tzinfo=zone)
        after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
        return cls(first.astimezone(UTC), after.astimezone(UTC), tz)

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        *,
        now: datetime | None = None,
        tz: str = "UTC",
    ) -> Period:
        """Build a period from command-line style text.

        ``since`` is ``7d``/``30d``/``90d`` (any number of ``h``ours, ``d``ays or
        ``w``eeks before ``now``), a date (``2026-01-31``: from its midnight in ``tz``)
        or an ISO datetime (naive means in ``tz``). ``until`` is a date (that day
        included) or a datetime (excluded). Raises :class:`ValueError` with what is
        accepted, or for an unknown time zone.
        """
        now = now or datetime.now(UTC)
        zone = get_zone(tz)
        start = None if since is None else _parse_bound(since, now, zone, is_end=False)
        end = None if until is None else _parse_bound(until, now, zone, is_end=True)
        return cls(start, end, tz)

    def resolved(self, now: datetime | None = None) -> Period:
        """The same period with an open end closed at ``now`` (default: the current time)."""
        if self.end is not None:
            return self
        return Period(self.start, now or datetime.now(UTC), self.tz)

    def previous(self, now: datetime | None = None) -> Period | None:
        """The period of equal length just before this one (None when it has no start)."""
        current = self.resolved(now)
        if current.start is None or current.end is None:
            return None
        return Period(current.start - (current.end - current.start), current.start, self.tz)

    def days(self, now: datetime | None = None) -> Iterator[tuple[date, Period]]:
        """Each calendar day (in :attr:`tz`) the period touches, clipped to the period.

        The period needs a start; an open end stops at ``now``.
        """
        current = self.resolved(now)
        if current.start is None or current.end is None:
            raise ValueError("a period needs a start to be split into days")
        zone = self.zone
        day = current.start.astimezone(zone).date()
        while True:
            lo = max(_midnight(day, zone), current.start)
            hi = min(_midnight(day + timedelta(days=1), zone), current.end)
            if lo >= hi:
                break
            yield day, Period(lo, hi, self.tz)
            day += timedelta(days=1)

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
        start = "the beginning" if self.start is None else self.local_text(self.start)
        end = "now" if self.end is None else self.local_text(self.end)
        return f"{start} → {end}"

    def local_text(self, value: datetime) -> str:
        """``value`` as ``2026-01-31 12:00 CET`` in the period's time zone."""
        local = value.astimezone(self.zone)
        name = "UTC" if self.tz == "UTC" else (local.tzname() or self.tz)
        return local.strftime("%Y-%m-%d %H:%M ") + name


def get_zone(name: str) -> tzinfo:
    """The time zone called ``name`` (``UTC`` or an IANA name); ValueError when unknown."""
    if name in ("UTC", "utc", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Paris "
            "(pip install tzdata where the system has no time zone database)"
        ) from None


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _parse_bound(text: str, now: datetime, zone: tzinfo, *, is_end: bool) -> datetime:
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
        return _midnight(day + timedelta(days=1) if is_end else day, zone)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a period: use 7d, 30d, 90d (or any Nh/Nd/Nw), "
            f"a date like 2026-01-31 or a datetime like 2026-01-31T12:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
