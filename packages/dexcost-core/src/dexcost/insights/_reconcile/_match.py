"""Tracked against invoiced, per day (or billing range), provider and model.

Variance % = (tracked - invoiced) / invoiced x 100, per line and in total. Lines over
the threshold (5%) are flagged with the likely cause where the data shows it: calls
without a price, no events at all, fewer tokens tracked than billed, tokens that
match at a different price (and from which day the price moved).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from itertools import pairwise

from dexcost.insights._facts import groups
from dexcost.insights._period import Period
from dexcost.insights._sql import money, percent, query, tidy

from ._lines import model_key

UTC = timezone.utc
#: Which providers' tracked events an invoice of each provider covers.
TRACKED = {"aws": ("bedrock",), "bedrock": ("bedrock",)}


@dataclass(frozen=True)
class ReconLine:
    """One day (or billing range) and model: tracked against invoiced."""

    day: date
    end_day: date
    provider: str
    model: str | None
    description: str | None
    tracked_usd: Decimal
    invoiced_usd: Decimal | None
    variance_usd: Decimal | None
    variance_pct: Decimal | None
    tracked_calls: int
    unpriced_calls: int
    tracked_input_tokens: int
    tracked_output_tokens: int
    invoiced_input_tokens: int | None
    invoiced_output_tokens: int | None
    token_variance_pct: Decimal | None
    flagged: bool
    cause: str | None


@dataclass(frozen=True)
class Charge:
    """Invoice lines that are not usage (tax, credit, refund, fee...), by category."""

    category: str
    amount_usd: Decimal
    line_count: int


@dataclass(frozen=True)
class Reconciliation:
    """A provider's invoice against what dexcost tracked, line by line and in total."""

    provider: str
    first_day: date | None
    last_day: date | None
    threshold_pct: Decimal
    tracked_usd: Decimal
    invoiced_usd: Decimal
    variance_usd: Decimal
    variance_pct: Decimal | None
    other_charges: tuple[Charge, ...]
    invoice_total_usd: Decimal
    by_model: tuple[ReconLine, ...]
    lines: tuple[ReconLine, ...]
    flagged: tuple[ReconLine, ...]
    warnings: tuple[str, ...] = field(default=())


@dataclass
class _Acc:
    model: str | None = None
    description: str | None = None
    tracked: Decimal = Decimal(0)
    invoiced: Decimal | None = None
    calls: int = 0
    unpriced: int = 0
    tin: int = 0
    tout: int = 0
    iin: int | None = None
    iout: int | None = None
    uin: int | None = None  # from usage exports (tokens only), preferred when present
    uout: int | None = None


def reconcile(
    conn: sqlite3.Connection,
    provider: str,
    period: Period | None = None,
    *,
    threshold_pct: Decimal = Decimal(5),
) -> Reconciliation:
    """Reconcile the stored invoice lines of ``provider`` in ``period`` (UTC days; by
    default every day the stored lines cover) with the events dexcost recorded.

    Sums are exact (providers send amounts with up to ~50 digits); percentages are
    rounded to 0.01.
    """
    with localcontext(Context(prec=100, rounding=ROUND_HALF_EVEN)):
        return _reconcile(conn, provider, period, threshold_pct)


def _reconcile(
    conn: sqlite3.Connection, provider: str, period: Period | None, threshold_pct: Decimal
) -> Reconciliation:
    provider = "bedrock" if provider == "aws" else provider
    where, params = "provider = ?", [provider]
    if period is not None and period.start is not None:
        where += " AND day >= ?"
        params.append(period.start.astimezone(UTC).date().isoformat())
    if period is not None and period.end is not None:
        where += " AND day < ?"
        params.append(period.end.astimezone(UTC).date().isoformat())
    rows = query(conn, f"SELECT * FROM invoice_lines WHERE {where} ORDER BY day, model", params)
    ranges = sorted({(r["day"], r["end_day"]) for r in rows if r["category"] == "usage"})
    acc: dict[tuple[str, str, str], _Acc] = defaultdict(_Acc)
    charges: dict[str, list[Decimal]] = defaultdict(list)
    for r in rows:
        if r["category"] != "usage":
            charges[r["category"]].append(Decimal(r["amount_usd"] or 0))
            continue
        a = acc[(r["day"], r["end_day"], r["model_key"])]
        a.model = a.model or r["model"]
        if not r["model_key"] or r["model_key"] == "*":
            a.description = a.description or r["description"] or r["component"]
        if r["amount_usd"] is not None:
            a.invoiced = (a.invoiced or Decimal(0)) + Decimal(r["amount_usd"])
        pair = ("iin", "iout") if r["amount_usd"] is not None else ("uin", "uout")
        for name, column in zip(pair, ("input_tokens", "output_tokens"), strict=True):
            if r[column] is not None:
                setattr(a, name, (getattr(a, name) or 0) + r[column])
    for a in acc.values():
        if a.uin is not None or a.uout is not None:
            a.iin, a.iout = a.uin, a.uout
    warnings = _overlaps(ranges) + _mixed(rows)
    _add_tracked(conn, provider, ranges, acc)
    lines = [_line(provider, key, a, threshold_pct) for key, a in acc.items()]
    lines = _explain(lines, threshold_pct)
    by_model = _by_model(provider, lines, threshold_pct)
    tracked = tidy(sum((x.tracked_usd for x in lines), Decimal(0)))
    invoiced = tidy(sum((x.invoiced_usd or Decimal(0) for x in lines), Decimal(0)))
    other = tuple(
        Charge(category, tidy(sum(amounts, Decimal(0))), len(amounts))
        for category, amounts in sorted(charges.items())
    )
    return Reconciliation(
        provider=provider,
        first_day=date.fromisoformat(ranges[0][0]) if ranges else None,
        last_day=date.fromisoformat(max(e for _, e in ranges)) if ranges else None,
        threshold_pct=threshold_pct,
        tracked_usd=tracked,
        invoiced_usd=invoiced,
        variance_usd=tidy(tracked - invoiced),
        variance_pct=percent(tracked - invoiced, invoiced),
        other_charges=other,
        invoice_total_usd=tidy(invoiced + sum((c.amount_usd for c in other), Decimal(0))),
        by_model=tuple(by_model),
        lines=tuple(lines),
        flagged=tuple(x for x in lines if x.flagged),
        warnings=tuple(warnings),
    )


def _overlaps(ranges: list[tuple[str, str]]) -> list[str]:
    for (a0, a1), (b0, _) in pairwise(ranges):
        if b0 < a1:
            return [
                f"invoice lines cover overlapping periods ({a0}..{a1} and {b0}..): an "
                "export of another granularity may have been imported too"
            ]
    return []


def _mixed(rows: list[sqlite3.Row]) -> list[str]:
    formats: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["amount_usd"] is not None and r["category"] == "usage":
            formats[r["day"]].add(r["format"])
    mixed = sorted(day for day, f in formats.items() if len(f) > 1)
    if not mixed:
        return []
    kinds = ", ".join(sorted(set().union(*(formats[d] for d in mixed))))
    return [
        f"{len(mixed)} days ({mixed[0]}...) have costs from more than one kind of export "
        f"({kinds}): their amounts are added together; import one kind per provider"
    ]


def _add_tracked(
    conn: sqlite3.Connection,
    provider: str,
    ranges: list[tuple[str, str]],
    acc: dict[tuple[str, str, str], _Acc],
) -> None:
    if not ranges:
        return
    names = TRACKED.get(provider, (provider,))
    slots = [(f"{lo}/{hi}", Period(_midnight(lo), _midnight(hi))) for lo, hi in ranges]
    marks = ", ".join("?" for _ in names)
    with groups(conn, slots=slots, table="temp.dexcost_recon") as g:
        tracked = query(
            conn,
            f"SELECT slot, model, unknown, SUM(n) AS n, {_spend()}, COALESCE(SUM(tin), 0) AS tin,"
            f" COALESCE(SUM(tout), 0) AS tout FROM {g} WHERE provider IN ({marks})"
            f" OR (provider IS NULL AND service_name IN ({marks})) GROUP BY 1, 2, 3",
            [*names, *names],
        )
    keyed = defaultdict(set)
    for day, end, key in acc:
        keyed[(day, end)].add(key)
    for r in tracked:
        day, end = r["slot"].split("/")
        key = model_key(r["model"])
        if key not in keyed[(day, end)] and "*" in keyed[(day, end)]:
            key = "*"  # the invoice has one line for every model of the provider
        a = acc[(day, end, key)]
        a.model = a.model or r["model"]
        a.tracked += money(r, "spend")
        a.calls += r["n"]
        a.unpriced += r["n"] if r["unknown"] else 0
        a.tin += r["tin"]
        a.tout += r["tout"]


def _spend() -> str:
    return "SUM(spend_hi) AS spend_hi, SUM(spend_lo) AS spend_lo"


def _midnight(day: str) -> datetime:
    d = date.fromisoformat(day)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _line(provider: str, key: tuple[str, str, str], a: _Acc, threshold: Decimal) -> ReconLine:
    tracked = tidy(a.tracked)
    invoiced = None if a.invoiced is None else tidy(a.invoiced)
    variance = None if invoiced is None else tidy(tracked - invoiced)
    pct = None if invoiced is None else percent(tracked - invoiced, invoiced)
    billed = None if a.iin is None and a.iout is None else (a.iin or 0) + (a.iout or 0)
    token_pct = None
    if billed is not None:
        token_pct = percent(Decimal(a.tin + a.tout - billed), Decimal(billed))
    if invoiced is not None:
        flagged = (pct is None and bool(tracked)) or (pct is not None and abs(pct) > threshold)
    else:
        flagged = token_pct is not None and abs(token_pct) > threshold
    if invoiced is None and billed is None and tracked:
        flagged = True  # tracked, but not on the invoice at all
    return ReconLine(
        day=date.fromisoformat(key[0]),
        end_day=date.fromisoformat(key[1]),
        provider=provider,
        model=None if key[2] == "*" else a.model,
        description=a.description,
        tracked_usd=tracked,
        invoiced_usd=invoiced,
        variance_usd=variance,
        variance_pct=pct,
        tracked_calls=a.calls,
        unpriced_calls=a.unpriced,
        tracked_input_tokens=a.tin,
        tracked_output_tokens=a.tout,
        invoiced_input_tokens=a.iin,
        invoiced_output_tokens=a.iout,
        token_variance_pct=token_pct,
        flagged=bool(flagged),
        cause=None,
    )


def _explain(lines: list[ReconLine], threshold: Decimal) -> list[ReconLine]:
    """Give each flagged line its likely cause; detect a price change from one day on."""
    from dataclasses import replace

    moved = _price_moves(lines)
    out = []
    for x in sorted(lines, key=lambda x: (x.day, x.model or "")):
        if x.flagged:
            x = replace(x, cause=moved.get((x.model, x.day)) or _cause(x))
        out.append(x)
    return out


def _cause(x: ReconLine) -> str:
    billed = None
    if x.invoiced_input_tokens is not None or x.invoiced_output_tokens is not None:
        billed = (x.invoiced_input_tokens or 0) + (x.invoiced_output_tokens or 0)
    tracked_tokens = x.tracked_input_tokens + x.tracked_output_tokens
    if x.unpriced_calls:
        return (
            f"unpriced model: {x.unpriced_calls:,} calls had no known price, so dexcost "
            "counted $0 for them; add a custom price"
        )
    if not x.tracked_calls:
        return (
            "missing events: nothing was tracked for this model on these days (calls made "
            "outside dexcost: another API key, a direct SDK call, a batch job, the console?)"
        )
    if (x.invoiced_usd is None and billed is None) or x.invoiced_usd == 0:
        return (
            "not on the invoice: tracked but not billed (free tier or credits, another "
            "account or organisation, or billed under another line)"
        )
    if billed:
        gap = Decimal(tracked_tokens - billed) * 100 / Decimal(billed)
        if gap < -2:
            return f"missing events: {-gap:.1f}% fewer tokens tracked than billed"
        if gap > 2:
            return f"calls recorded twice or not billed: {gap:.1f}% more tokens tracked than billed"
        if x.invoiced_usd is not None:
            return (
                "price change or different rate: the tokens match but the cost does not "
                "(outdated price table, batch or priority tier, negotiated discount)"
            )
    side = "higher" if (x.variance_usd or 0) > 0 else "lower"
    return (
        f"tracked {side} than invoiced; the invoice has no token counts to tell why "
        "(check prices, discounts, cached-token pricing and untracked traffic)"
    )


def _price_moves(lines: list[ReconLine]) -> dict[tuple[str | None, date], str]:
    """Lines of a model flagged from one day on (after at least two clean days)."""
    by_model: dict[str | None, list[ReconLine]] = defaultdict(list)
    for x in lines:
        if x.invoiced_usd and x.tracked_calls and not x.unpriced_calls:
            by_model[x.model].append(x)
    causes = {}
    for model, items in by_model.items():
        items.sort(key=lambda x: x.day)
        flags = [x.flagged for x in items]
        if True not in flags:
            continue
        cut = flags.index(True)
        if cut < 2 or not all(flags[cut:]) or len(flags) - cut < 2:
            continue
        before = [x.tracked_usd / x.invoiced_usd for x in items[:cut]]  # type: ignore[operator]
        after = [x.tracked_usd / x.invoiced_usd for x in items[cut:]]  # type: ignore[operator]
        if max(after) - min(after) > Decimal("0.05"):
            continue  # not a steady new ratio
        day = items[cut].day
        text = (
            f"price change from {day}: tracked/invoiced went from "
            f"{sum(before) / len(before):.2f} to {sum(after) / len(after):.2f}; "
            "update the price (custom pricing) from that day"
        )
        for x in items[cut:]:
            causes[(model, x.day)] = text
    return causes


def _by_model(provider: str, lines: list[ReconLine], threshold: Decimal) -> list[ReconLine]:
    from dataclasses import replace

    acc: dict[str | None, _Acc] = defaultdict(_Acc)
    span: dict[str | None, tuple[date, date]] = {}
    for x in lines:
        a = acc[x.model]
        a.description = a.description or x.description
        a.tracked += x.tracked_usd
        if x.invoiced_usd is not None:
            a.invoiced = (a.invoiced or Decimal(0)) + x.invoiced_usd
        a.calls += x.tracked_calls
        a.unpriced += x.unpriced_calls
        a.tin += x.tracked_input_tokens
        a.tout += x.tracked_output_tokens
        if x.invoiced_input_tokens is not None:
            a.iin = (a.iin or 0) + x.invoiced_input_tokens
        if x.invoiced_output_tokens is not None:
            a.iout = (a.iout or 0) + x.invoiced_output_tokens
        lo, hi = span.get(x.model, (x.day, x.end_day))
        span[x.model] = (min(lo, x.day), max(hi, x.end_day))
    out = []
    for model, a in acc.items():
        lo, hi = span[model]
        line = _line(provider, (lo.isoformat(), hi.isoformat(), model or "*"), a, threshold)
        line = replace(line, model=model)
        if line.flagged:
            line = replace(line, cause=_cause(line))
        out.append(line)
    return sorted(out, key=lambda x: (-(x.invoiced_usd or x.tracked_usd), x.model or ""))
