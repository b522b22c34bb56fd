"""Anomalies: a customer's daily cost, a task type's cost per run or a day's retry cost
far above its own recent baseline.

Each day is compared with the ``window`` days before it using robust statistics: the
baseline is their median and the spread their median absolute deviation (MAD), so one
odd day in the baseline does not hide the next one. A day is flagged when it is
several times its baseline, many spreads above it, and large enough to matter for the
workspace. Consecutive flagged days of one subject make one anomaly. Days are calendar
days in the period's time zone; costs are those of tasks started that day.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from dexcost.store._values import parse_ts

from ._facts import TASKS, groups, sum_of
from ._period import Period
from ._sql import money, query, tidy

_CENT = Decimal("0.01")
_K = Decimal("1.4826")  # MAD to standard deviation, for normal data


@dataclass(frozen=True)
class Rule:
    """When a day counts as anomalous for one kind of series."""

    min_ratio: Decimal  # at least this many times the baseline
    min_score: Decimal  # at least this many robust spreads above it
    rel_spread: Decimal  # the spread is at least this share of the baseline
    min_share: Decimal  # the excess is at least this share of a usual day's spend


RULES = {
    "customer_spike": Rule(Decimal(2), Decimal(6), Decimal("0.25"), Decimal("0.02")),
    "task_type_cost": Rule(Decimal("2.5"), Decimal(6), Decimal("0.15"), Decimal("0.01")),
    "retry_spike": Rule(Decimal(2), Decimal(6), Decimal("0.25"), Decimal("0.01")),
}
#: Days of history a subject needs before its days are judged.
MIN_HISTORY = 7
#: Runs a task type needs on a day for its cost per run to count.
MIN_RUNS = 3
#: Below this many tasks on a usual day, a customer's jump must be SMALL_SHARE of a
#: usual day's spend: with a handful of tasks, doubling happens by chance.
MIN_CUSTOMER_RUNS = 5
SMALL_SHARE = Decimal("0.1")
#: The relative spread of a day of n tasks is at least this / sqrt(n).
POISSON_SPREAD = Decimal("1.5")


@dataclass(frozen=True)
class Anomaly:
    """One anomaly: what changed, for whom, when, and how much it matters.

    ``before_usd`` is the baseline (median of the trailing days) and ``after_usd`` the
    mean of the flagged days; ``excess_usd`` what those days cost above the baseline
    and ``share_of_monthly_pct`` that excess against the 30 days ending with the last
    flagged day. ``detected_at`` is when the notifier first saw it (None if never).
    """

    anomaly_id: str
    kind: str
    subject: str | None
    metric: str
    first_day: date
    last_day: date
    before_usd: Decimal
    after_usd: Decimal
    ratio: Decimal | None
    score: Decimal | None
    excess_usd: Decimal
    share_of_monthly_pct: Decimal | None
    affected: tuple[str, ...]
    summary: str
    advice: str
    detected_at: datetime | None


@dataclass(frozen=True)
class AnomalyReport:
    """The anomalies found in a period, largest excess first."""

    period: Period
    window_days: int
    days_checked: int
    anomalies: tuple[Anomaly, ...]


@dataclass
class _Day:
    cost: dict[str, Decimal]
    runs: dict[str, int]


def find_anomalies(
    conn: sqlite3.Connection,
    period: Period | None = None,
    *,
    window: int = 14,
    now: datetime | None = None,
) -> AnomalyReport:
    """Look for anomalies on each day of ``period`` (default: the last 30 days)."""
    if window < MIN_HISTORY:
        raise ValueError(f"window must be at least {MIN_HISTORY} days, got {window}")
    period = (period or Period.last(30, now=now)).resolved(now)
    days = [d for d, _ in period.days(now)]
    if not days:
        return AnomalyReport(period, window, 0, ())
    zone = period.zone
    history = Period(
        datetime(*(days[0] - timedelta(days=window)).timetuple()[:3], tzinfo=zone),
        period.end,
        period.tz,
    )
    slots = [(d.isoformat(), p) for d, p in history.days(now)]
    customer: dict[str, _Day] = defaultdict(_empty)
    ctypes: dict[str, _Day] = defaultdict(_empty)
    type_cost: dict[str, _Day] = defaultdict(_empty)
    type_runs: dict[str, _Day] = defaultdict(_empty)
    retry: dict[str, _Day] = defaultdict(_empty)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    day_runs: dict[str, int] = {}  # top-level tasks a day
    with groups(conn, source=TASKS, slots=slots, table="temp.dexcost_anomaly_days") as tg:
        for r in query(
            conn,
            f"SELECT slot, customer_id, task_type, is_root, SUM(n) AS n, {sum_of('cost')},"
            f" {sum_of('retry')} FROM {tg} GROUP BY 1, 2, 3, 4",
        ):
            day, cost = r["slot"], money(r, "cost")
            type_cost[r["task_type"]].cost[day] = type_cost[r["task_type"]].cost.get(day, 0) + cost
            type_runs[r["task_type"]].runs[day] = (
                type_runs[r["task_type"]].runs.get(day, 0) + r["n"]
            )
            if r["is_root"]:
                name = r["customer_id"] or "(none)"
                customer[name].cost[day] = customer[name].cost.get(day, Decimal(0)) + cost
                customer[name].runs[day] = customer[name].runs.get(day, 0) + r["n"]
                key = f"{name}\t{r['task_type']}"
                ctypes[key].cost[day] = ctypes[key].cost.get(day, Decimal(0)) + cost
                ctypes[key].runs[day] = ctypes[key].runs.get(day, 0) + r["n"]
                day_runs[day] = day_runs.get(day, 0) + r["n"]
                retried = money(r, "retry")
                retry["all"].cost[day] = retry["all"].cost.get(day, Decimal(0)) + retried
                retry[name].cost[day] = retry[name].cost.get(day, Decimal(0)) + retried
                spend[day] += cost
    labels = [label for label, _ in slots]
    usual = _median([spend.get(d, Decimal(0)) for d in labels]) if labels else Decimal(0)
    ctx = _Ctx(labels, {d.isoformat() for d in days}, window, spend, usual)
    found: list[Anomaly] = []
    dearer: dict[tuple[str, str], Decimal] = {}  # (task type, day) → cost per run above usual
    for name, series in type_cost.items():
        per_run = {
            d: tidy(series.cost[d] / type_runs[name].runs[d])
            for d in series.cost
            if type_runs[name].runs.get(d, 0) >= MIN_RUNS
        }
        note = _top_note(ctypes, lambda key, n=name: key.split("\t")[1] == n, 0, "runs")
        flagged = ctx.scan("task_type_cost", name, per_run, type_runs[name].runs, note)
        for a in flagged:
            for d in per_run:
                if a.first_day.isoformat() <= d <= a.last_day.isoformat():
                    dearer[(name, d)] = per_run[d] - a.before_usd
        found += flagged
    for name, series in customer.items():
        # A customer's rise that a dearer task type explains is reported once, there.
        adjusted = dict(series.cost)
        for key, mix in ctypes.items():
            who, task_type = key.split("\t", 1)
            if who != name:
                continue
            for d, runs in mix.runs.items():
                if (task_type, d) in dearer:
                    adjusted[d] -= dearer[(task_type, d)] * runs
        note = _customer_note(name, ctypes)
        found += ctx.scan("customer_spike", name, adjusted, series.runs, note, shown=series.cost)
    everyone = {k: v for k, v in retry.items() if k != "all"}
    note = _top_note(everyone, lambda key: True, None, "retry cost")
    # Retries are judged by their share of the day's spend: a busier day has more
    # retries at the same rate, which is not a retry problem.
    rate = {d: v / spend[d] for d, v in retry["all"].cost.items() if spend.get(d)}
    found += ctx.scan("retry_spike", None, rate, day_runs, note, dollars=retry["all"].cost)
    seen = _first_seen(conn)
    found = [
        a if a.anomaly_id not in seen else _with_detected(a, seen[a.anomaly_id]) for a in found
    ]
    found.sort(key=lambda a: (-a.excess_usd, a.first_day, a.kind, a.subject or ""))
    return AnomalyReport(period, window, len(days), tuple(found))


def _pico(value: Decimal) -> Decimal:
    return tidy(value.quantize(Decimal("1e-12"), ROUND_HALF_EVEN))


def _empty() -> _Day:
    return _Day({}, {})


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


#: A flagged day: (index, day, value, baseline, score, excess).
_Flag = tuple[int, str, Decimal, Decimal, Decimal, Decimal]


@dataclass
class _Ctx:
    labels: list[str]
    checked: set[str]
    window: int
    spend: dict[str, Decimal]
    usual: Decimal

    def scan(
        self,
        kind: str,
        subject: str | None,
        series: dict[str, Decimal],
        runs: dict[str, int] | None,
        note: object,
        dollars: dict[str, Decimal] | None = None,
        shown: dict[str, Decimal] | None = None,
    ) -> list[Anomaly]:
        """Flag the days of ``series``; merge consecutive ones into anomalies."""
        rule, flagged = RULES[kind], []
        first = next((i for i, d in enumerate(self.labels) if d in series), None)
        if first is None:
            return []
        for i, day in enumerate(self.labels):
            if day not in self.checked or i - first < MIN_HISTORY:
                continue
            past = self.labels[max(first, i - self.window) : i]
            if kind == "task_type_cost":
                base = [series[d] for d in past if d in series]
                if len(base) < MIN_HISTORY or day not in series:
                    continue
            else:
                base = [series.get(d, Decimal(0)) for d in past]
            value = series.get(day, Decimal(0))
            med = _median(base)
            mad = _median([abs(v - med) for v in base])
            floor = rule.min_share * self.usual
            spread = max(_K * mad, rule.rel_spread * med, Decimal("1e-9"))
            excess = value - med
            if kind == "task_type_cost" and runs is not None:
                excess *= runs.get(day, 0)
            if kind != "customer_spike" and runs is not None:
                # A cost per run or a share of n tasks varies by about 1/sqrt(n) from which
                # tasks they were (a day just begun has a few): never expect less spread.
                n = Decimal(max(runs.get(day, 0), 1))
                spread = max(spread, POISSON_SPREAD / n.sqrt() * med)
            if dollars is not None:  # a rate: its excess in dollars on that day's spend
                excess *= self.spend.get(day, Decimal(0))
            score = (value - med) / spread
            if kind == "customer_spike" and runs is not None:
                usual_runs = _median([Decimal(runs.get(d, 0)) for d in past])
                # A day of n tasks varies by about 1/sqrt(n) from their number alone,
                # more with a mix of cheap and dear tasks: never expect less spread.
                counting = POISSON_SPREAD / max(usual_runs, Decimal(1)).sqrt()
                spread = max(spread, counting * med)
                score = (value - med) / spread
                if usual_runs < MIN_CUSTOMER_RUNS:  # a few tasks a day: chance dominates
                    floor = max(floor, SMALL_SHARE * self.usual)
            if value >= rule.min_ratio * med and score >= rule.min_score and excess >= floor:
                if shown is not None:
                    value = shown.get(day, Decimal(0))
                if dollars is not None:
                    value = dollars.get(day, Decimal(0))
                    med = _median([dollars.get(d, Decimal(0)) for d in past])
                    if value <= med:  # a higher share of a smaller sum (a day just begun)
                        continue
                flagged.append((i, day, value, med, score, excess))
        return [self._merge(kind, subject, run, note) for run in _consecutive(flagged)]

    def _merge(self, kind: str, subject: str | None, run: list[_Flag], note: object) -> Anomaly:
        i_last, first, last = run[-1][0], run[0][1], run[-1][1]
        before = _pico(run[0][3])
        after = _pico(sum((r[2] for r in run), Decimal(0)) / len(run))
        excess = _pico(sum((r[5] for r in run), Decimal(0)))
        month = sum(
            (self.spend.get(d, Decimal(0)) for d in self.labels[max(0, i_last - 29) : i_last + 1]),
            Decimal(0),
        )
        share = None if not month else (excess * 100 / month).quantize(_CENT, ROUND_HALF_EVEN)
        ratio = None if not before else (after / before).quantize(_CENT, ROUND_HALF_EVEN)
        score = max(r[4] for r in run).quantize(_CENT, ROUND_HALF_EVEN)
        days = [r[1] for r in run]
        affected = note(days) if callable(note) else ()
        summary, metric, advice = _describe(kind, subject, before, after, ratio, first, last)
        ident = hashlib.sha256(f"{kind}\0{subject}\0{first}".encode()).hexdigest()[:16]
        return Anomaly(
            anomaly_id=ident,
            kind=kind,
            subject=subject,
            metric=metric,
            first_day=date.fromisoformat(first),
            last_day=date.fromisoformat(last),
            before_usd=before,
            after_usd=after,
            ratio=ratio,
            score=score,
            excess_usd=excess,
            share_of_monthly_pct=share,
            affected=tuple(affected),
            summary=summary,
            advice=advice,
            detected_at=None,
        )


def _consecutive(flagged: list[_Flag]) -> list[list[_Flag]]:
    runs: list[list[_Flag]] = []
    for item in flagged:
        if runs and item[0] == runs[-1][-1][0] + 1:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _customer_note(name: str, ctypes: dict[str, _Day]) -> object:
    def note(days: list[str]) -> list[str]:
        rows = []
        for key, series in ctypes.items():
            customer, task_type = key.split("\t", 1)
            if customer != name:
                continue
            cost = sum((series.cost.get(d, Decimal(0)) for d in days), Decimal(0))
            runs = sum(series.runs.get(d, 0) for d in days)
            others = [v for d, v in series.runs.items() if d not in days]
            usual = _median([Decimal(v) for v in others]) if others else Decimal(0)
            if runs:
                rows.append((cost, f"{task_type}: {runs} runs (usually {usual:.0f} a day)"))
        return [text for _, text in sorted(rows, reverse=True)[:3]]

    return note


def _top_note(series: dict[str, _Day], keep: object, part: int | None, what: str) -> object:
    """Who is affected: the three largest matching series on the flagged days."""

    def note(days: list[str]) -> list[str]:
        rows = []
        for key, s in series.items():
            if not keep(key):  # type: ignore[operator]
                continue
            cost = sum((s.cost.get(d, Decimal(0)) for d in days), Decimal(0))
            runs = sum(s.runs.get(d, 0) for d in days)
            name = key.split("\t")[part] if part is not None else key
            if cost:
                extra = f", {runs} runs" if what == "runs" else ""
                rows.append((cost, f"{name}: ${tidy(cost):,.2f}{extra}"))
        return [text for _, text in sorted(rows, reverse=True)[:3]]

    return note


def _describe(
    kind: str,
    subject: str | None,
    before: Decimal,
    after: Decimal,
    ratio: Decimal | None,
    first: str,
    last: str,
) -> tuple[str, str, str]:
    when = first if first == last else f"{first} to {last}"
    times = f"{ratio}x" if ratio is not None else "up from nothing"
    b, a = f"${tidy(before):,.2f}", f"${tidy(after):,.2f}"
    if kind == "customer_spike":
        return (
            f"{subject}'s daily cost jumped to {a} ({times} its usual {b}) on {when}",
            "daily cost",
            f"Check whether {subject} ran a bulk job or a loop; consider per-customer quotas.",
        )
    if kind == "task_type_cost":
        return (
            f"{subject} costs {a} per run ({times} its usual {b}) since {first}",
            "cost per run",
            f"Compare recent runs (dexcost tasks --type {subject}): a longer prompt, a bigger "
            "model, or more calls per run?",
        )
    return (
        f"Retries cost {a} on {when} ({times} the usual {b} a day)",
        "daily retry cost",
        f"See the retry reasons of that day: dexcost report health --since {first} --until {last}.",
    )


def _first_seen(conn: sqlite3.Connection) -> dict[str, datetime]:
    return {
        r["anomaly_id"]: parse_ts(r["first_seen_at"])
        for r in query(conn, "SELECT anomaly_id, first_seen_at FROM anomaly_state")
    }


def _with_detected(a: Anomaly, when: datetime) -> Anomaly:
    from dataclasses import replace

    return replace(a, detected_at=when)
