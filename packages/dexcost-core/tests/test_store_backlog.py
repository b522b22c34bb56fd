"""A busy thread cannot starve the store's writer: the queue stays bounded, and a put
that finds the writer overdue hands it the GIL."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dexcost.store import LocalStore
from dexcost.store import _store as store_module

from .test_store import make_event, read_events


class _CountingEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait(timeout)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = LocalStore(tmp_path / "backlog.db")
    yield s
    s.close()


def test_a_busy_thread_cannot_starve_the_writer(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop that keeps the GIL and lets go of it only for an instant (here the random
    bytes an SDK takes for a request id) restarts the writer's wait for the GIL each
    time. Without the catch-up the writer never ran again and the queue grew with every
    event put."""
    # A 5,000-event batch takes 50-110 ms here, but a slow host or a collection of a
    # large heap mid-batch can pass the 0.25 s cap, after which puts stop waiting by
    # design (test_a_stuck_writer_is_waited_for_once). This test is about starvation.
    monkeypatch.setattr(store_module, "CATCH_UP_WAIT", 10.0)
    events = [make_event() for _ in range(3 * store_module.HIGH_WATER)]
    deepest = 0
    for event in events:
        os.urandom(16)  # a system call made without the GIL
        sum(range(3000))  # Python work: holds the GIL
        store.put_event(event)
        deepest = max(deepest, store._queue.qsize())
    assert deepest <= store_module.HIGH_WATER + 1
    assert store.flush(timeout=30)
    assert set(read_events(store.path)) == {e.event_id for e in events}


def test_a_stuck_writer_is_waited_for_once(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer held up (here: its connection lock taken, as a locked database would)
    costs a recording thread one short wait, not one per event; nothing is lost."""
    monkeypatch.setattr(store_module, "HIGH_WATER", 8)
    monkeypatch.setattr(store_module, "CATCH_UP_WAIT", 0.05)
    written = store._written = _CountingEvent()
    events = [make_event() for _ in range(100)]
    with store._conn_lock:
        for event in events:
            store.put_event(event)
        assert written.waits == 1
        assert store._stalled
    assert store.flush(timeout=30)
    assert not store._stalled
    assert set(read_events(store.path)) == {e.event_id for e in events}
    store.put_event(make_event())  # the writer wrote: a new backlog is waited for again
    assert store.flush(timeout=30)


def test_a_put_that_finds_the_writer_overdue_waits_for_its_batch(store: LocalStore) -> None:
    """Without a flush, the put returns once the writer has written what was queued."""
    first, second = make_event(), make_event()
    store.put_event(first)
    store._due = 0.0  # as if the writer's batch were overdue (it is lingering)
    store.put_event(second)
    assert set(read_events(store.path)) == {first.event_id, second.event_id}


def test_a_put_on_time_does_not_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer is not due: the put only queues (nothing is written before a flush)."""
    monkeypatch.setattr(store_module, "LINGER_SECONDS", 60.0)
    store = LocalStore(tmp_path / "on-time.db")
    try:
        assert store.flush(timeout=30)  # the writer is running, and lingering for a minute
        event = make_event()
        store.put_event(event)
        assert read_events(store.path) == {}
        assert store.flush(timeout=30)
        assert set(read_events(store.path)) == {event.event_id}
    finally:
        store.close()


def _wait_until(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def quick_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "LINGER_SECONDS", 0.01)
    monkeypatch.setattr(store_module, "IDLE_AFTER", 2)


@pytest.mark.usefixtures("quick_idle")
def test_an_idle_writer_sleeps_until_a_put_wakes_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "idle.db")
    try:
        assert _wait_until(lambda: store._idle), "the writer never went idle"
        event = make_event()
        store.put_event(event)
        assert not store._idle
        assert store._due != float("inf")  # the put published the writer's due time
        assert _wait_until(lambda: event.event_id in read_events(store.path))
    finally:
        store.close()


def _writer_frames(store: LocalStore) -> list[str]:
    """The writer thread's Python frames, innermost first."""
    thread = store._thread
    assert thread is not None
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


@pytest.mark.usefixtures("quick_idle")
def test_the_put_that_wakes_the_writer_hands_it_the_gil(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A woken writer needs the GIL once to start its linger. Left to win it from a busy
    caller, it woke at each of the caller's brief GIL releases and found the GIL taken
    again, for as long as the caller stayed busy. The put that wakes it waits until the
    writer waits again."""
    store = LocalStore(tmp_path / "handover.db")
    try:
        assert _wait_until(lambda: store._idle), "the writer never went idle"
        monkeypatch.setattr(store_module, "LINGER_SECONDS", 30.0)  # its next linger
        monkeypatch.setattr(store_module, "WAKE_WAIT", 30.0)
        started = time.monotonic()
        store.put_event(make_event())
        frames = _writer_frames(store)  # no GIL release since the put returned
        assert time.monotonic() - started < 10, "the put waited for nothing"
        assert frames[:3] == ["wait", "wait", "_run"], frames  # Event.wait, in its linger
        assert store.flush(timeout=30)
    finally:
        store.close()


@pytest.mark.usefixtures("quick_idle")
def test_a_busy_thread_cannot_starve_a_writer_it_woke(tmp_path: Path) -> None:
    """The same busy loop, started while the writer sleeps in the queue: the first put
    wakes it, and it must still get the GIL to write."""
    store = LocalStore(tmp_path / "woken.db")
    try:
        assert _wait_until(lambda: store._idle), "the writer never went idle"
        events = [make_event() for _ in range(2000)]
        for event in events:
            os.urandom(16)
            sum(range(3000))
            store.put_event(event)
        # Written while the loop ran, not only at the flush below.
        assert len(read_events(store.path)) >= len(events) // 2
        assert store.flush(timeout=30)
        assert set(read_events(store.path)) == {e.event_id for e in events}
    finally:
        store.close()
