"""Cost health: how much of the spend went to retries and failed tasks, and why.

The verdict follows the dashboard guide: a retry rate of 6–8% of spend is normal,
above 15% is burning money.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from ._facts import SPEND, groups, spend_where
from ._period import Period
from ._sql import money, percent, query, tidy
from ._taskfacts import failure_cost
from ._unknown import UnknownCostSummary, unknown_summary

#: Retry % of spend: up to NORMAL_MAX is normal, above BURNING it burns money.
NORMAL_MIN, NORMAL_MAX, BURNING = Decimal(6), Decimal(8), Decimal(15)

_ADVICE = {
    "rate_limit": "you hit the API's rate limit: batch requests, add backoff, or upgrade "
    "your API tier",
    "timeout": "calls took too long: check that the model suits the task (a smaller, "
    "faster one?) and that timeouts are not too short",
    "parse_error": "the model's output could not be parsed: tighten the prompt or use "
    "structured output",
}
_OTHER = "look at the error types of these calls to see what made them fail"

_VERDICTS = {
    "none": ("No retries were recorded.", "Nothing to do."),
    "low": (
        "Retries are below the usual 6–8% of spend.",
        "Nothing to do; keep an eye on it after changes to prompts or models.",
    ),
    "normal": ("Retries are in the normal 6–8% of spend.", "Nothing urgent."),
    "elevated": (
        "Retries are above the normal 6–8% of spend.",
        "Look at the top retry reason below before it reaches 15%.",
    ),
    "burning": (
        "Retries are above 15% of spend: you are burning money.",
        "Fix the top retry reason below first; it is where the waste is.",
    ),
}


@dataclass(frozen=True)
class RetryCause:
    """Retried calls for one reason, their share of retry cost and what to do."""

    reason: str | None
    event_count: int
    cost_usd: Decimal
    pct_of_retry_cost: Decimal | None
    advice: str


@dataclass(frozen=True)
class CostHealth:
    """Retry and failure cost of a period, with the guide's verdict.

    ``verdict`` is ``none`` (no spend or no retries), ``low`` (below 6%), ``normal``
    (6–8%), ``elevated`` (8–15%) or ``burning`` (above 15%).
    """

    period: Period
    total_spend_usd: Decimal
    retry_cost_usd: Decimal
    retry_event_count: int
    retry_pct: Decimal | None
    failure_cost_usd: Decimal
    failed_task_count: int
    wasted_usd: Decimal
    waste_pct: Decimal | None
    by_reason: tuple[RetryCause, ...]
    verdict: str
    verdict_text: str
    advice: str
    unknown_cost: UnknownCostSummary


def verdict_for(retry_pct: Decimal | None) -> str:
    """The verdict for a retry share of spend (None: nothing was spent or retried)."""
    if not retry_pct:
        return "none"
    if retry_pct < NORMAL_MIN:
        return "low"
    if retry_pct <= NORMAL_MAX:
        return "normal"
    if retry_pct <= BURNING:
        return "elevated"
    return "burning"


def cost_health(conn: sqlite3.Connection, period: Period | None = None) -> CostHealth:
    """The :class:`CostHealth` of ``period`` (default: all time)."""
    period = period or Period.all_time()
    retry_sum = spend_where("is_retry", "retry")
    with groups(conn, period) as g:
        (row,) = query(
            conn,
            f"SELECT {SPEND}, {retry_sum},"
            f" COALESCE(SUM(CASE WHEN is_retry THEN n END), 0) AS retry_n FROM {g}",
        )
        reasons = query(
            conn,
            f"SELECT retry_reason, SUM(n) AS n, {SPEND} FROM {g} WHERE is_retry"
            " GROUP BY retry_reason",
        )
        unknown = unknown_summary(conn, g)
    total, retry = money(row, "spend"), money(row, "retry")
    failed = failure_cost(conn, period)
    wasted = tidy(retry + failed.cost_usd - failed.retry_cost_usd)
    causes = sorted(
        (
            RetryCause(
                reason=r["retry_reason"],
                event_count=r["n"],
                cost_usd=money(r, "spend"),
                pct_of_retry_cost=percent(money(r, "spend"), retry),
                advice=_ADVICE.get(r["retry_reason"] or "", _OTHER),
            )
            for r in reasons
        ),
        key=lambda c: (-c.cost_usd, -c.event_count, c.reason or ""),
    )
    retry_pct = percent(retry, total)
    verdict = verdict_for(retry_pct)
    text, advice = _VERDICTS[verdict]
    if verdict in ("elevated", "burning") and causes:
        advice = f"{advice} Top reason: {causes[0].reason or 'not given'}: {causes[0].advice}."
    return CostHealth(
        period=period,
        total_spend_usd=total,
        retry_cost_usd=retry,
        retry_event_count=row["retry_n"],
        retry_pct=retry_pct,
        failure_cost_usd=failed.cost_usd,
        failed_task_count=failed.task_count,
        wasted_usd=wasted,
        waste_pct=percent(wasted, total),
        by_reason=tuple(causes),
        verdict=verdict,
        verdict_text=text,
        advice=advice,
        unknown_cost=unknown,
    )
