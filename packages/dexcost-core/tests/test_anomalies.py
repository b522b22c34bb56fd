"""Anomalies on seeded workloads: the planted ones are found, a steady month is quiet;
the webhook notifier against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dexcost.insights import NotifyError, Period, find_anomalies, notify_anomalies
from dexcost.insights._notify import post_json
from dexcost.insights._workload import generate, write
from dexcost.store import LocalStore, connect_readonly
from dexcost.store._connect import open_write_connection

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 18, 5, tzinfo=UTC)


def make_store(path: Path, **kwargs: Any) -> Any:
    work = generate(end=NOW, days=40, tasks_per_day=160, customers=16, **kwargs)
    store = LocalStore(path)
    write(work, store)
    store.close()
    return work


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("anomalies") / "dexcost.db"
    work = make_store(path, seed=3, anomalies=("customer", "task_type", "retries"))
    return path, work


def test_the_planted_anomalies_are_found(planted: tuple[Path, Any]) -> None:
    path, work = planted
    with closing(connect_readonly(path)) as conn:
        report = find_anomalies(conn, Period.last(30, now=NOW), now=NOW)
    found = {(a.kind, a.subject, a.first_day) for a in report.anomalies}
    for p in work.planted:
        assert (p.kind, p.subject, p.day) in found, (p, found)
    assert len(report.anomalies) == len(work.planted)
    for a in report.anomalies:
        assert a.after_usd > 2 * a.before_usd
        assert a.excess_usd > 0
        assert a.share_of_monthly_pct is not None
        assert a.affected
        assert a.summary
        assert a.advice
        assert a.detected_at is None  # never notified


def test_what_changed_is_measured(planted: tuple[Path, Any]) -> None:
    path, work = planted
    with closing(connect_readonly(path)) as conn:
        report = find_anomalies(conn, Period.last(30, now=NOW), now=NOW)
    spike = next(a for a in report.anomalies if a.kind == "customer_spike")
    day = spike.first_day
    mine = [t for t in work.tasks if t.customer_id == spike.subject and t.parent_task_id is None]
    on_day = sum((t.total_cost_usd for t in mine if t.started_at.date() == day), Decimal(0))
    assert spike.after_usd == on_day
    assert spike.ratio is not None
    assert spike.ratio > 3
    assert spike.affected[0].split(":")[0] in {t.task_type for t in mine}
    dearer = next(a for a in report.anomalies if a.kind == "task_type_cost")
    assert dearer.ratio is not None
    assert Decimal(3) < dearer.ratio < Decimal(5)
    assert dearer.last_day == NOW.date()  # it lasts until today


@pytest.mark.parametrize("seed", [1, 2, 5])
@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles"])
def test_a_steady_workload_is_quiet(tmp_path: Path, seed: int, tz: str) -> None:
    make_store(tmp_path / "d.db", seed=seed)
    with closing(connect_readonly(tmp_path / "d.db")) as conn:
        report = find_anomalies(conn, Period.last(30, now=NOW, tz=tz), now=NOW)
    assert report.anomalies == ()
    assert report.days_checked == 31


@pytest.mark.parametrize("minutes", [45, 165, 600])
def test_a_day_just_begun_is_not_an_anomaly(tmp_path: Path, minutes: int) -> None:
    """Its few tasks may cost more per run, or retry more, by chance alone."""
    now = datetime(2026, 12, 6, tzinfo=UTC) + timedelta(minutes=minutes)
    work = generate(end=now, days=30, tasks_per_day=120, customers=10,
                    anomalies=("customer", "task_type", "retries"))  # fmt: skip
    store = LocalStore(tmp_path / "d.db")
    write(work, store)
    store.close()
    with closing(connect_readonly(tmp_path / "d.db")) as conn:
        report = find_anomalies(conn, now=now)
    found = sorted((a.kind, a.subject or "", a.first_day) for a in report.anomalies)
    assert found == sorted((p.kind, p.subject or "", p.day) for p in work.planted)


def test_a_short_history_is_not_judged(tmp_path: Path) -> None:
    work = generate(end=NOW, days=5, tasks_per_day=100, customers=5, anomalies=("retries",))
    store = LocalStore(tmp_path / "d.db")
    write(work, store)
    store.close()
    with closing(connect_readonly(tmp_path / "d.db")) as conn:
        assert find_anomalies(conn, Period.last(5, now=NOW), now=NOW).anomalies == ()
        with pytest.raises(ValueError, match="window"):
            find_anomalies(conn, window=3)


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"type": self.headers["Content-Type"], "body": json.loads(body)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("H", (Hook,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_notifier_sends_each_anomaly_once(
    planted: tuple[Path, Any], hook: tuple[str, type[Hook]], tmp_path: Path
) -> None:
    src, _ = planted
    path = tmp_path / "copy.db"
    path.write_bytes(src.read_bytes())
    url, handler = hook
    period = Period.last(30, now=NOW)
    with closing(connect_readonly(path)) as conn:
        report = find_anomalies(conn, period, now=NOW)
    with closing(open_write_connection(path)) as w:
        dry = notify_anomalies(w, report, url, dry_run=True)
        assert dry.dry_run
        assert len(dry.sent) == 3
        assert handler.received == []
        first = notify_anomalies(w, report, url, now=NOW)
        again = notify_anomalies(w, report, url, now=NOW + timedelta(hours=1))
    assert len(first.sent) == 3
    assert again.sent == ()
    assert again.already_sent == 3
    assert len(handler.received) == 1
    message = handler.received[0]
    assert message["type"] == "application/json"
    body = message["body"]
    assert body["text"].startswith("dexcost: 3 cost anomalies")
    assert body["blocks"][0]["type"] == "header"
    sections = [b["text"]["text"] for b in body["blocks"][1:]]
    assert len(sections) == 3
    assert all("What to do" in s for s in sections)
    with closing(connect_readonly(path)) as conn:
        seen = find_anomalies(conn, period, now=NOW)
    assert all(a.detected_at == NOW for a in seen.anomalies)


def test_a_failing_webhook_keeps_anomalies_unsent(
    planted: tuple[Path, Any], hook: tuple[str, type[Hook]], tmp_path: Path
) -> None:
    src, _ = planted
    path = tmp_path / "copy.db"
    path.write_bytes(src.read_bytes())
    url, handler = hook
    handler.status = 500
    with closing(connect_readonly(path)) as conn:
        report = find_anomalies(conn, Period.last(30, now=NOW), now=NOW)
    with closing(open_write_connection(path)) as w:
        with pytest.raises(NotifyError, match="500"):
            notify_anomalies(w, report, url)
        handler.status = 200
        retried = notify_anomalies(w, report, url)
    assert len(retried.sent) == 3
    with pytest.raises(NotifyError, match="http"):
        post_json("ftp://example.invalid/", {})
    with pytest.raises(NotifyError, match="cannot reach"):
        post_json("http://127.0.0.1:9/", {}, timeout=2)
