"""Instrumented calls are priced and rolled up after the call returns, yet every read
of a task's totals is current, and each call keeps the prices of the moment it was made.

The real openai SDK talks to the fake API on 127.0.0.1; nothing inside dexcost is
replaced except where a test makes pricing fail on purpose.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

import dexcost
from dexcost import DexcostConfig
from dexcost.pricing import PricingEngine

MODEL = "gpt-4o-2024-08-06"
MESSAGES = [{"role": "user", "content": "Summarise the ticket in one line."}]
PROMPT, COMPLETION, CACHED = 1117, 346, 1024


def _completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-deferred",
        "object": "chat.completion",
        "created": 1741570283,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Refund issued.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT,
            "completion_tokens": COMPLETION,
            "total_tokens": PROMPT + COMPLETION,
            "prompt_tokens_details": {"cached_tokens": CACHED},
        },
    }


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[dexcost.CostTracker]:
    t = dexcost.CostTracker(
        DexcostConfig(redact_fields=["response_id"], hash_customer_id=True),
        auto_instrument=["openai"],
        buffer_path=str(tmp_path / "deferred.db"),
    )
    yield t
    t.close()


@pytest.fixture
def client(fake_api: Any) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(api_key="sk-test", base_url=fake_api.url + "/v1", max_retries=0)
    yield c
    c.close()


def _price(tracker: dexcost.CostTracker) -> Decimal:
    return tracker.get_cost(MODEL, PROMPT, COMPLETION, CACHED).cost_usd


def _call(client: openai.OpenAI, fake_api: Any) -> None:
    fake_api.reply_json(_completion())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def _rows(path: Path, table: str, task_id: Any) -> list[dict[str, Any]]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        query = f"SELECT * FROM {table} WHERE task_id = ? ORDER BY rowid"
        return [dict(r) for r in con.execute(query, (str(task_id),))]
    finally:
        con.close()


def test_totals_are_current_when_read_right_after_the_call(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    price = _price(tracker)
    assert price > 0
    with tracker.task("ticket") as parent, tracker.task("draft") as child:
        _call(client, fake_api)
        for task in (child.task, parent.task):
            assert task.total_cost_usd == price
            assert task.llm_cost_usd == price
            assert (task.event_count, task.total_input_tokens) == (1, PROMPT)
            assert (task.total_output_tokens, task.total_cached_tokens) == (COMPLETION, CACHED)
        _call(client, fake_api)
        assert parent.task.total_cost_usd == 2 * price
    tracker.flush()
    (row,) = _rows(tracker.store.path, "tasks", parent.task_id)
    assert Decimal(row["total_cost_usd"]) == 2 * price


def test_the_event_is_the_one_record_llm_call_records(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    """Redaction, hashed customer ids, pricing: the deferred path and the public method
    give the same event and the same task totals."""
    dexcost.set_context(customer_id="acme")
    try:
        with tracker.task("ticket") as captured:
            _call(client, fake_api)
        with tracker.task("ticket") as by_hand:
            by_hand.record_llm_call(
                "openai", MODEL, PROMPT, COMPLETION, cached_tokens=CACHED, latency_ms=0
            )
    finally:
        dexcost.set_context()
    tracker.flush()
    path = tracker.store.path
    (got,) = _rows(path, "events", captured.task_id)
    (want,) = _rows(path, "events", by_hand.task_id)
    own = ("event_id", "task_id", "occurred_at", "latency_ms", "details")
    assert {k: v for k, v in got.items() if k not in own} == {
        k: v for k, v in want.items() if k not in own
    }
    assert got["customer_id"] not in (None, "acme")  # hashed
    assert "response_id" not in (got["details"] or "")  # redacted
    for field in ("total_cost_usd", "llm_cost_usd", "event_count", "total_input_tokens"):
        assert getattr(captured.task, field) == getattr(by_hand.task, field)


def test_a_call_keeps_the_prices_of_the_moment_it_was_made(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    before = _price(tracker)
    with tracker.task("ticket") as t:
        _call(client, fake_api)  # not read, so not settled yet
        tracker.set_custom_pricing(MODEL, "1", "2")  # $1 / $2 per 1k tokens from now on
        after = _price(tracker)
        assert after != before
        assert t.task.total_cost_usd == before
        _call(client, fake_api)
        assert t.task.total_cost_usd == before + after
    tracker.flush()
    costs = [Decimal(r["cost_usd"]) for r in _rows(tracker.store.path, "events", t.task_id)]
    assert sorted(costs) == sorted([before, after])


def test_the_writer_settles_calls_nobody_read(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    """A program that never reads a total still gets priced rows, within the writer's
    next batch, and the totals read afterwards count each call once."""
    with tracker.task("ticket") as t:
        _call(client, fake_api)
        _call(client, fake_api)
        assert tracker.store.flush(5)  # the writer's batch, not the tracker's flush()
        rows = _rows(tracker.store.path, "events", t.task_id)
        assert [Decimal(r["cost_usd"]) for r in rows] == [_price(tracker)] * 2
        assert {r["cost_confidence"] for r in rows} == {"computed"}
        assert t.task.total_cost_usd == 2 * _price(tracker)
        assert t.task.event_count == 2


def test_totals_read_on_other_threads_are_exact(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    """Calls on four threads, totals read all along on a fifth: every read sees whole
    calls, totals never go backwards, and the end result is exact."""
    threads, calls = 4, 15
    for _ in range(threads * calls):
        fake_api.reply_json(_completion())
    price = _price(tracker)
    seen: list[tuple[Decimal, int, int]] = []
    done = threading.Event()
    with tracker.task("batch") as t:
        parent = t.task

        def reader() -> None:
            while not done.is_set():
                seen.append((parent.total_cost_usd, parent.total_input_tokens, parent.event_count))

        def worker(context: Any) -> None:
            for _ in range(calls):
                context.run(client.chat.completions.create, model="gpt-4o", messages=MESSAGES)

        watcher = threading.Thread(target=reader)
        watcher.start()
        workers = [
            threading.Thread(target=worker, args=(contextvars.copy_context(),))
            for _ in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done.set()
        watcher.join()
        assert parent.total_cost_usd == threads * calls * price
        assert parent.event_count == threads * calls
    assert seen
    for cost, tokens, _ in seen:  # whole calls only (the three reads are not one step)
        assert cost % price == 0
        assert tokens % PROMPT == 0
    for column in zip(*seen, strict=True):
        assert list(column) == sorted(column)  # never backwards


def test_a_pricing_failure_records_the_call_at_zero(
    tracker: dexcost.CostTracker,
    client: openai.OpenAI,
    fake_api: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pricing runs after the call returned: if it fails, the call's answer was already
    the user's, the event is kept at cost 0 (unknown) and later events are unaffected."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("price data corrupt")

    with tracker.task("ticket") as t:
        monkeypatch.setattr(PricingEngine, "_price", broken)
        fake_api.reply_json(_completion())
        answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert answer.choices[0].message.content == "Refund issued."
        with caplog.at_level(logging.ERROR, logger="dexcost"):
            assert t.task.total_cost_usd == 0
        monkeypatch.undo()
        _call(client, fake_api)
        assert t.task.total_cost_usd == _price(tracker)
        assert t.task.event_count == 2
    assert "could not price a gpt-4o-2024-08-06 call" in caplog.text
    tracker.flush()
    rows = _rows(tracker.store.path, "events", t.task_id)
    assert [(Decimal(r["cost_usd"]), r["cost_confidence"]) for r in rows] == [
        (Decimal(0), "unknown"),
        (_price(tracker), "computed"),
    ]


def test_a_call_waiting_to_be_priced_keeps_nothing_of_the_response_alive(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    """A pending record holds plain values only: the response and its SDK objects are
    freed with the caller's last reference (kept until the writer's batch, they cost
    memory and slowed the calls after them), and the call is still priced in full."""
    with tracker.task("ticket") as t:
        fake_api.reply_json(_completion())
        answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert answer.usage is not None
        kept = [weakref.ref(answer), weakref.ref(answer.usage)]
        del answer
        gc.collect()
        assert len(tracker._pending) == 1  # recorded, not settled yet
        assert [ref() for ref in kept] == [None, None]
        assert (t.task.total_input_tokens, t.task.total_cached_tokens) == (PROMPT, CACHED)
        assert t.task.total_cost_usd == _price(tracker)


@pytest.mark.parametrize("written_by", ["child.end()", "the writer's next batch"])
def test_a_child_that_outlives_its_parent_still_rolls_up_into_its_row(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, written_by: str
) -> None:
    """The ended parent's stored row is rewritten with the child's later call, whether
    the child ends or nothing but the store's writer runs (no read, no flush())."""
    parent = tracker.start_task("ticket")
    child = tracker.start_task("follow_up", parent=parent)
    parent.end()
    with dexcost.task_context(child.task):
        _call(client, fake_api)
    if written_by == "child.end()":
        child.end()
    assert tracker.store.flush(5)
    (row,) = _rows(tracker.store.path, "tasks", parent.task_id)
    assert Decimal(row["total_cost_usd"]) == _price(tracker)
    assert row["event_count"] == 1
    assert parent.task.total_cost_usd == _price(tracker)
    if written_by != "child.end()":
        child.end()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_during_a_settle_leaves_the_child_a_working_tracker(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, child_exit_code: Any
) -> None:
    """The store's writer settles on its own thread; a fork at that moment must not hand
    the child a lock held by a thread it does not have."""
    with tracker.task("ticket") as t:
        _call(client, fake_api)
        holding = threading.Event()

        def settle_slowly() -> None:  # stands in for a long settle on the writer thread
            with tracker._settle_lock:
                holding.set()
                time.sleep(0.3)

        busy = threading.Thread(target=settle_slowly)
        busy.start()
        holding.wait()
        pid = os.fork()
        if pid == 0:  # the child: record, read the totals and report by exit code
            t.record_cost("search", Decimal("0.01"))  # takes the settle lock
            code = 0 if t.task.total_cost_usd == _price(tracker) + Decimal("0.01") else 1
            os._exit(code)
        busy.join()
        assert child_exit_code(pid, 10, "a lock") == 0
        assert t.task.total_cost_usd == _price(tracker)
