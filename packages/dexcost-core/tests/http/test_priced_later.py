"""A response body that alone sets the price is priced after the call returns, off the
calling thread, yet reads of the totals are current, a free call never becomes an event,
and a call keeps the catalog entry it was made under. Large bodies are kept for that
only within a bound (``held_bodies``); past it they are priced at once.

Real requests and httpx against the local server; the catalog is the bundled one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest
import requests

import dexcost
from dexcost._deferred import KEPT_FREELY, held_bodies
from dexcost.catalog import PricedService, ServiceCatalog, get_default_catalog, set_default_catalog

EXA = "api.exa.ai"


def _exa(server: Any, total: str | None, padding: int = 0) -> None:
    """Exa's answer: its results, then the charge it reports (``total``: as sent)."""
    results = json.dumps([{"text": "x" * padding}] if padding else [])
    charge = "" if total is None else f', "costDollars": {{"total": {total}}}'
    server.route("/search", f'{{"results": {results}{charge}}}'.encode())


def _exa_document(scale: str) -> dict[str, Any]:
    """A one-entry catalog whose Exa entry multiplies the reported charge by ``scale``."""
    return {
        "format": 1,
        "version": "2099.01.01",
        "updated": "2099-01-01",
        "services": [
            {
                "service": "exa_search",
                "name": "Exa Search",
                "category": "search",
                "hosts": [EXA],
                "pricing": {
                    "kind": "reported",
                    "amount": {"body": "costDollars.total"},
                    "scale": scale,
                },
                "confidence": "exact",
                "source": "https://exa.ai/pricing",
                "price_date": "2099-01-01",
                "notes": "test entry",
            }
        ],
    }


def test_totals_are_current_right_after_the_call(server: Any, tracker: Any, events: Any) -> None:
    _exa(server, "0.0123")
    with dexcost.task("research") as parent, dexcost.task("search") as child:
        requests.post(server.url(EXA, "/search"))
        with httpx.Client() as client:
            client.post(server.url(EXA, "/search"))
        for task in (child.task, parent.task):
            assert task.external_cost_usd == Decimal("0.0246")
            assert task.event_count == 2
    rows = events()
    assert [(e["service_name"], e["cost_usd"], e["cost_confidence"]) for e in rows] == [
        ("exa_search", "0.0123", "exact")
    ] * 2
    assert {e["pricing_version"] for e in rows} == {get_default_catalog().version}
    assert rows[0]["details"]["library"] == "requests"
    assert rows[1]["details"]["library"] == "httpx"


def test_a_free_call_is_no_event_even_when_only_the_writer_settles_it(
    server: Any, tracker: Any, events: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Exa reports a charge of 0: nothing is stored, nothing is counted, whether the
    store's writer settles the call (no read) or a read does, and nothing is logged."""
    caplog.set_level(logging.INFO, logger="dexcost")
    _exa(server, "0")
    with dexcost.task("research") as t:
        requests.post(server.url(EXA, "/search"))
        assert tracker.store.flush(5)  # the writer's batch alone
        assert events() == []
        requests.post(server.url(EXA, "/search"))
        assert (t.task.external_cost_usd, t.task.event_count) == (0, 0)
    assert events() == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_body_without_the_charge_falls_back_as_before(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    _exa(server, None)
    entry = get_default_catalog().get("exa_search")
    assert entry is not None
    fallback = entry.rule.fallback.price  # type: ignore[union-attr]
    with dexcost.task("research") as t:
        requests.post(server.url(EXA, "/search"))
        assert t.task.external_cost_usd == fallback
    (event,) = events()
    assert (event["cost_usd"], event["cost_confidence"]) == (str(fallback), "estimated")


def test_a_call_keeps_the_catalog_it_was_made_under(server: Any, tracker: Any, events: Any) -> None:
    """A catalog replaced before the call is settled does not price it."""
    _exa(server, "0.02")
    bundled = get_default_catalog()
    try:
        with dexcost.task("research") as t:
            requests.post(server.url(EXA, "/search"))  # not read, so not settled yet
            set_default_catalog(ServiceCatalog(_exa_document("10")))  # ten times as much
            assert t.task.external_cost_usd == Decimal("0.02")
            requests.post(server.url(EXA, "/search"))
            assert t.task.external_cost_usd == Decimal("0.22")
    finally:
        set_default_catalog(bundled)
    assert sorted(Decimal(e["cost_usd"]) for e in events()) == [Decimal("0.02"), Decimal("0.2")]


def test_a_large_body_is_kept_until_priced_and_then_let_go(
    server: Any, tracker: Any, events: Any
) -> None:
    _exa(server, "0.0042", padding=KEPT_FREELY)
    with dexcost.task("research") as t:
        response = requests.post(server.url(EXA, "/search"))
        size = len(response.content)
        assert size > KEPT_FREELY
        assert held_bodies.held == size  # pending, not priced on the calling thread
        assert t.task.external_cost_usd == Decimal("0.0042")  # the read settles it
        assert held_bodies.held == 0
        with httpx.Client() as client:
            client.post(server.url(EXA, "/search"))
        assert held_bodies.held == size
    assert held_bodies.held == 0  # the task's end settles it
    assert [e["cost_usd"] for e in events()] == ["0.0042", "0.0042"]


def test_large_bodies_past_the_hold_are_priced_at_once(
    server: Any, tracker: Any, events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of large answers holds no more than the limit; the rest are priced on the
    calling thread, and every call is recorded at its reported charge."""
    _exa(server, "0.0042", padding=KEPT_FREELY)
    size = len(requests.post(server.url(EXA, "/search")).content)  # outside a task: session
    tracker.flush()
    assert held_bodies.held == 0
    monkeypatch.setattr(held_bodies, "limit", size * 2)
    with dexcost.task("research") as t:
        for _ in range(5):
            requests.post(server.url(EXA, "/search"))
        assert held_bodies.held == size * 2
        assert (t.task.external_cost_usd, t.task.event_count) == (Decimal("0.021"), 5)
    assert held_bodies.held == 0
    assert [e["cost_usd"] for e in events()].count("0.0042") == 6


def test_a_held_body_that_fails_to_price_is_let_go(
    server: Any, tracker: Any, events: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _exa(server, "0.0042", padding=KEPT_FREELY)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("catalog data corrupt")

    with (
        dexcost.task("research") as t,
        pytest.MonkeyPatch.context() as patch,
        caplog.at_level(logging.ERROR, logger="dexcost"),
    ):
        patch.setattr(PricedService, "extract_cost", broken)
        requests.post(server.url(EXA, "/search"))
        assert held_bodies.held > 0
        assert (t.task.external_cost_usd, t.task.event_count) == (0, 1)
        assert held_bodies.held == 0
    assert "could not price a exa_search response" in caplog.text


def test_a_pricing_failure_after_the_call_keeps_the_event_at_zero(
    server: Any,
    tracker: Any,
    events: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pricing runs after the call returned: the answer is the user's, the call is kept
    at 0 (unknown) and logged, and later calls are priced."""
    _exa(server, "0.0123")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("catalog data corrupt")

    with dexcost.task("research") as t:
        with (
            pytest.MonkeyPatch.context() as patch,
            caplog.at_level(logging.ERROR, logger="dexcost"),
        ):
            patch.setattr(PricedService, "extract_cost", broken)
            response = requests.post(server.url(EXA, "/search"))
            assert response.json()["costDollars"] == {"total": 0.0123}
            assert (t.task.external_cost_usd, t.task.event_count) == (0, 1)  # settles now
        requests.post(server.url(EXA, "/search"))
        assert t.task.external_cost_usd == Decimal("0.0123")
    assert "could not price a exa_search response" in caplog.text
    assert [(e["cost_usd"], e["cost_confidence"]) for e in events()] == [
        ("0", "unknown"),
        ("0.0123", "exact"),
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_child_forked_while_another_thread_holds_the_hold_can_take_from_it(
    child_exit_code: Any,
) -> None:
    """The hold's lock taken by a thread the child does not have must not hang the
    child's next large answer."""
    taken, release = threading.Event(), threading.Event()

    def holder() -> None:
        with held_bodies._lock:
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert taken.wait(10)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                code = 0 if held_bodies.take(1) else 2
                held_bodies.give(1)
            finally:
                os._exit(code)
    finally:
        release.set()
        thread.join()
    assert child_exit_code(pid, 30, "the hold's lock") == 0


def test_an_open_tasks_row_after_flush_counts_the_calls_not_yet_priced(
    server: Any, tracker: Any, read: Any
) -> None:
    """flush() writes an open task's row as it is now: the calls waiting to be priced
    are in its totals."""
    _exa(server, "0.0123")
    with dexcost.task("research") as t:
        requests.post(server.url(EXA, "/search"))
        requests.post(server.url(EXA, "/search"))
        assert len(tracker._pending) == 2  # recorded, not priced yet
        assert tracker.flush()
        (row,) = read(
            "SELECT status, total_cost_usd, event_count FROM tasks WHERE task_id = ?",
            str(t.task_id),
        )
        assert tuple(row) == ("pending", "0.0246", 2)


def test_opening_a_task_leaves_the_calls_before_it_to_be_priced_later(
    server: Any, tracker: Any, events: Any
) -> None:
    """A new task has nothing to settle: opening one (a step of an agent, a framework's
    nested run) does not price the calls still pending on the calling thread."""
    _exa(server, "0.0123")
    with dexcost.task("research") as parent:
        requests.post(server.url(EXA, "/search"))
        with dexcost.task("summarise") as child:
            assert len(tracker._pending) == 1
            requests.post(server.url(EXA, "/search"))
        assert child.task.external_cost_usd == Decimal("0.0123")
        assert parent.task.external_cost_usd == Decimal("0.0246")
    assert [e["cost_usd"] for e in events()] == ["0.0123", "0.0123"]
