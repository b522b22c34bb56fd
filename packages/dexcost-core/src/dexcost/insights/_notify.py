"""Send new anomalies to a webhook as Slack-compatible JSON, each one once.

The store remembers each anomaly it has seen (``anomaly_state``): when it was first
detected and when it was sent. A dry run builds the message and sends nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dexcost.store._values import format_ts

from ._anomalies import Anomaly, AnomalyReport

log = logging.getLogger("dexcost.insights")
UTC = timezone.utc


class NotifyError(Exception):
    """The webhook could not be reached or refused the message; nothing was marked sent."""


@dataclass(frozen=True)
class NotifyResult:
    """What a notification run did: the anomalies it sent (or would send) and the payload."""

    sent: tuple[Anomaly, ...]
    already_sent: int
    payload: dict[str, Any] | None
    dry_run: bool


def slack_payload(anomalies: tuple[Anomaly, ...] | list[Anomaly]) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` plus ``blocks``) listing ``anomalies``."""
    title = f"dexcost: {len(anomalies)} cost anomal{'y' if len(anomalies) == 1 else 'ies'}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}}
    ]
    for a in anomalies:
        share = (
            f" · {a.share_of_monthly_pct}% of monthly spend"
            if a.share_of_monthly_pct is not None
            else ""
        )
        lines = [
            f"*{a.summary}*",
            f"Excess cost ${a.excess_usd:,.2f}{share}",
        ]
        if a.affected:
            lines.append("Affected: " + "; ".join(a.affected))
        lines.append(f"_What to do:_ {a.advice}")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    text = title + "\n" + "\n".join(f"• {a.summary}" for a in anomalies)
    return {"text": text, "blocks": blocks}


def notify_anomalies(
    conn: sqlite3.Connection,
    report: AnomalyReport,
    url: str | None,
    *,
    dry_run: bool = False,
    timeout: float = 10.0,
    now: datetime | None = None,
) -> NotifyResult:
    """Record the anomalies of ``report`` and send those never sent to ``url``.

    ``conn`` is a write connection to the store. With ``dry_run`` nothing is recorded
    or sent. Raises :class:`NotifyError` when the webhook fails; the anomalies stay
    unsent, to be tried again next run.
    """
    stamp = format_ts(now or datetime.now(UTC))
    sent_before = {
        row[0]
        for row in conn.execute(
            "SELECT anomaly_id FROM anomaly_state WHERE notified_at IS NOT NULL"
        )
    }
    fresh = tuple(a for a in report.anomalies if a.anomaly_id not in sent_before)
    payload = slack_payload(fresh) if fresh else None
    if dry_run:
        return NotifyResult(fresh, len(report.anomalies) - len(fresh), payload, True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT INTO anomaly_state (anomaly_id, kind, subject, day, first_seen_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (anomaly_id) DO NOTHING",
            [
                (a.anomaly_id, a.kind, a.subject, a.first_day.isoformat(), stamp)
                for a in report.anomalies
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if payload is not None and url:
        post_json(url, payload, timeout=timeout)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE anomaly_state SET notified_at = ? WHERE anomaly_id = ?",
            [(stamp, a.anomaly_id) for a in fresh],
        )
        conn.execute("COMMIT")
    return NotifyResult(fresh, len(report.anomalies) - len(fresh), payload, False)


def post_json(url: str, payload: dict[str, Any], *, timeout: float = 10.0) -> None:
    """POST ``payload`` as JSON to ``url``; raise :class:`NotifyError` unless it answers 2xx."""
    import urllib.error  # only when sending: keeps importing the insights light
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise NotifyError(f"the webhook URL must start with http:// or https://, not {url!r}")
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise NotifyError(f"the webhook answered HTTP {exc.code}: {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotifyError(f"cannot reach the webhook: {exc}") from None
    if not 200 <= status < 300:
        raise NotifyError(f"the webhook answered HTTP {status}")
    log.info("dexcost sent %d bytes to the anomaly webhook", len(body))
