"""The local store: an in-memory queue in front of one writer thread per file.

``put_event`` only appends to a :class:`queue.SimpleQueue`; a daemon thread drains it
every ``LINGER_SECONDS``, one transaction per batch. A put does not wake the writer: a
thread woken at an arbitrary moment must then win the GIL from the recording threads,
which a busy thread can deny it for good (see ``_catch_up``). Instead the writer
publishes when its next batch is due, and a put that finds it overdue hands it the GIL.
After ``IDLE_AFTER`` empty drains the writer sleeps in the queue, so an idle store costs
nothing; the next put wakes it, publishes the due time for it and hands it the GIL
until it waits again (see ``WAKE_WAIT``).

Fork safety: SQLite forbids carrying a connection across ``fork()`` (its locks are per
process, its lock bookkeeping is not). So the connection is closed just before a fork
(once the current batch is committed) and reopened on demand on both sides; the child
starts with a fresh queue and starts its own writer on its first record.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
import weakref
from pathlib import Path
from queue import Empty, SimpleQueue

from dexcost._deferred import PENDING, Record, settle
from dexcost._models import Event, Task

from ._connect import open_write_connection
from ._rows import TaskSnapshot
from ._writer import BATCH_SIZE, BatchWriter

log = logging.getLogger("dexcost.store")

#: How long ``close()`` keeps retrying a store locked by another process.
CLOSE_TIMEOUT = 30.0
#: How long a ``fork()`` waits for the batch being written to commit.
FORK_WAIT = 10.0

_NOT_STARTED = "not started"
_RUNNING = "running"
_CLOSED = "closed"


class _Flush:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = True


_STOP = object()
#: How often the writer drains the queue (flush() and close() wake it at once). Each
#: batch takes the GIL from the recording threads, and where it runs on another core the
#: busy thread comes back to cold caches: a second between batches measured a smaller
#: share of the calling thread than 100 ms (see docs/store.md).
LINGER_SECONDS = 1.0
#: How long a batch may take before a put waits for it (see ``_catch_up``).
GRACE_SECONDS = 0.002
#: Empty drains in a row after which the writer sleeps until the next put.
IDLE_AFTER = 1
#: Records queued past which a put waits for the writer.
HIGH_WATER = BATCH_SIZE
#: The longest a put waits; a writer that misses it is not waited for again until it writes.
CATCH_UP_WAIT = 0.25
#: The longest the put that wakes a sleeping writer waits for it to start its linger.
#: A woken thread needs the GIL once to get there; left to win it from a busy thread, it
#: wakes at each of that thread's brief GIL releases (a system call per SDK request) and
#: finds the GIL taken again, which cost the busy thread about 20 µs per openai call for
#: as long as it stayed busy (up to the writer's next batch, a second later).
WAKE_WAIT = 0.005
_NEVER = float("inf")
#: The due time of a writer asleep in the queue: long past, so the next put acts on it.
_ASLEEP = float("-inf")
_monotonic = time.monotonic


def take_snapshot(task: Task) -> TaskSnapshot | None:
    """A copy of ``task``'s fields as they are now, for :meth:`LocalStore.put_snapshot`;
    None (logged) when it cannot be copied."""
    try:
        return TaskSnapshot(task)
    except Exception:
        log.exception("dexcost could not copy task %r; it was not stored", task)
        return None


def _next_due() -> float:
    """When a batch the writer starts waiting for now should be written by."""
    return _monotonic() + LINGER_SECONDS + GRACE_SECONDS


class LocalStore:
    """The SQLite ledger and outbox of one process for one file.

    Create it through :func:`get_store` so a process has one writer per file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: Path = Path(path).expanduser().resolve()
        # Open (and create, and migrate) now so a bad path fails the caller, not a thread.
        self._conn: sqlite3.Connection | None = open_write_connection(self.path)
        self._conn_lock = threading.Lock()  # held while a batch is written
        self._fork_held = False
        self._lock = threading.Lock()  # guards state changes
        self._queue: SimpleQueue[object] = SimpleQueue()
        self._put = self._queue.put
        self._size = self._queue.qsize
        # Cuts the writer's linger short: set by flush(), close() and _catch_up().
        self._urgent = threading.Event()
        # Set by the writer after each batch; cleared by a thread waiting in _catch_up().
        self._written = threading.Event()
        # Set by the writer once woken from its sleep in the queue (see WAKE_WAIT).
        self._awake = threading.Event()
        self._stalled = False  # a _catch_up() wait timed out and the writer has not written since
        # When the writer's current batch should be written by (monotonic seconds);
        # _ASLEEP while it sleeps in the queue.
        self._due = _NEVER
        self._state = _NOT_STARTED
        self._thread: threading.Thread | None = None
        self._give_up_at: float | None = None
        self._closing = 0  # close() calls in progress
        # Set when a write failed; reported (and cleared) by the next flush marker.
        self._failed = False
        _all_stores.add(self)
        self._start()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r}, {self._state})"

    # --- the hot path ----------------------------------------------------------------

    def put_event(self, event: Event | Record) -> None:
        """Queue ``event`` for writing (an upsert by ``event_id``); never touches disk.

        dexcost's own instrumentation puts a deferred record instead (the event's values
        as a tuple; see ``dexcost._deferred``), which the writer converts the same way.
        It waits only when the writer has fallen behind (see :meth:`_catch_up`).
        """
        self._put(event)
        if self._state is not _RUNNING:
            self._not_running()
        elif _monotonic() > self._due or self._size() >= HIGH_WATER:
            self._catch_up()

    def put_task(self, task: Task) -> None:
        """Queue an upsert of ``task`` as it is now (its fields are copied at once)."""
        snapshot = take_snapshot(task)
        if snapshot is not None:
            self.put_snapshot(snapshot)

    def put_snapshot(self, snapshot: TaskSnapshot, *, wait: bool = True) -> None:
        """Queue an upsert of a task copied with :func:`take_snapshot`. With ``wait``
        False it never waits for the writer (see :meth:`_catch_up`)."""
        self._put(snapshot)
        if self._state is not _RUNNING:
            self._not_running()
        elif wait and (_monotonic() > self._due or self._size() >= HIGH_WATER):
            self._catch_up()

    # --- control ---------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything put before this call is committed; True on success."""
        marker = _Flush()
        self._put(marker)
        self._urgent.set()
        if self._state is not _RUNNING:
            self._not_running()
        return marker.done.wait(timeout) and marker.ok

    def close(self) -> None:
        """Write everything queued, stop the writer and close the file; idempotent.

        A record put after ``close()`` starts a new writer, so nothing is lost; once the
        interpreter is exiting, such records are written synchronously instead.
        """
        with self._lock:
            state, self._state = self._state, _CLOSED
            thread = self._thread
            self._closing += 1
            if self._give_up_at is None:
                self._give_up_at = time.monotonic() + CLOSE_TIMEOUT
        try:
            if state is _RUNNING and thread is not None:
                self._put(_STOP)
                self._urgent.set()
            if thread is not None and thread is not threading.current_thread():
                thread.join()  # also when another thread is closing: wait for the writer
            self._drain_sync()
            with self._conn_lock:
                conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
        finally:
            with self._lock:
                self._closing -= 1

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._state is _CLOSED

    # --- the writer ------------------------------------------------------------------

    def _not_running(self) -> None:
        """Slow path of a put: start the writer (first use, forked child, after close),
        or write synchronously when the interpreter is exiting."""
        if self._state is _CLOSED and not (_exiting or sys.is_finalizing()):
            self._reopen()
        if self._state is _NOT_STARTED:
            self._start()
        if self._state is _CLOSED:
            self._drain_sync()

    @property
    def _idle(self) -> bool:
        """True while the writer sleeps in the queue until the next put."""
        return self._due == _ASLEEP

    def _catch_up(self) -> None:
        """Slow path of a put: the writer sleeps, is overdue, or ``HIGH_WATER`` records
        are queued.

        A put wakes a sleeping writer and publishes its due time for it, since a busy
        thread may keep the woken writer from the GIL long enough that it cannot; then it
        waits, at most ``WAKE_WAIT``, until the writer has taken the GIL and let go of it.

        The writer needs the GIL to turn records into rows, and its batch releases the GIL
        around every SQLite step. A thread that keeps the interpreter busy and lets go of
        the GIL only for an instant (a short system call per request, such as the random
        bytes SDKs take for request ids) restarts the writer's wait for it every time:
        the writer crawls through its batch a step per handover, each costing the busy
        thread system calls, or never gets the GIL back at all, and the queue (the
        process's memory) grows without bound. Blocking here hands the writer the GIL
        until its batch is written. Never longer than ``CATCH_UP_WAIT``: a writer held up
        (a database locked by another process) is not waited for again until it has
        written. A program that waits on the network leaves the writer the GIL and never
        waits here.
        """
        if self._due == _ASLEEP:
            self._due = _next_due()
            self._awake.wait(WAKE_WAIT)
            return
        if self._stalled:
            return
        written = self._written
        written.clear()
        self._urgent.set()
        # The writer publishes its next due time before it sets ``written``: after the
        # clear, either the batch is still owed (and sets ``written`` when done) or the
        # checks below see the writer has moved on.
        if _monotonic() <= self._due and self._size() < HIGH_WATER:
            return
        if not written.wait(CATCH_UP_WAIT):
            self._stalled = True
            log.debug("dexcost store writer is behind by %d records", self._size())

    def _reopen(self) -> None:
        with self._lock:
            thread = self._thread
            if self._state is not _CLOSED or self._closing:
                return  # a close() in progress writes what is queued
            if thread is not None and thread.is_alive():
                return
            self._give_up_at = None
            self._state = _NOT_STARTED

    def _start(self) -> None:
        with self._lock:
            if self._state is not _NOT_STARTED:
                return
            if _exiting or sys.is_finalizing():
                self._state = _CLOSED
                return
            thread = threading.Thread(
                target=self._run, name=f"dexcost-store-writer:{self.path.name}", daemon=True
            )
            self._thread = thread
            self._state = _RUNNING
            _ensure_exit_hooks()
            thread.start()

    def _run(self) -> None:
        queue = self._queue
        get, get_nowait, size = queue.get, queue.get_nowait, queue.qsize
        urgent = self._urgent
        empty = 0
        while True:
            # Wait between batches so a trickle of events is written as one: waking the
            # writer (and committing) per event costs the recording threads far more than
            # the write itself. flush(), close() and a waiting put cut the wait short.
            self._due = _next_due()
            self._written.set()  # the previous batch is written
            batch: list[object] = []
            if empty >= IDLE_AFTER:
                self._awake.clear()
                self._due = _ASLEEP
                batch.append(get())  # no GIL needed while it sleeps here
                self._due = _next_due()
                self._awake.set()  # the put that woke it may go on (see WAKE_WAIT)
            if size() < BATCH_SIZE:
                urgent.wait(LINGER_SECONDS)
            urgent.clear()
            try:
                while len(batch) < BATCH_SIZE:
                    batch.append(get_nowait())
            except Empty:
                pass
            if not batch:
                empty += 1
                continue
            empty = 0
            try:
                if self._process(batch):
                    self._due = _NEVER
                    self._written.set()
                    return
            except Exception:  # pragma: no cover - a bug; keep the writer alive
                log.exception("dexcost store writer failed on a batch")

    def _process(self, batch: list[object]) -> bool:
        """Write one drained batch, then release its flush markers; True at the stop."""
        events: list[Event | Record] = []
        tasks: list[TaskSnapshot] = []
        markers: list[_Flush] = []
        stop = False
        for item in batch:
            kind = type(item)
            if kind is TaskSnapshot:
                tasks.append(item)  # type: ignore[arg-type]
            elif kind is _Flush:
                markers.append(item)  # type: ignore[arg-type]
            elif item is _STOP:
                stop = True
            else:  # an Event, or a deferred record (a list)
                if kind is list:
                    if len(item) == PENDING:  # type: ignore[arg-type]
                        try:
                            for task in settle(item):  # ended ancestors it rolled into
                                snapshot = take_snapshot(task)
                                if snapshot is not None:
                                    tasks.append(snapshot)
                        except Exception:  # pragma: no cover - settling logs its failures
                            log.exception("dexcost could not settle a recorded event")
                    if item[2] is None:  # type: ignore[index]
                        continue  # settling found a free call: no event
                events.append(item)  # type: ignore[arg-type]
        if (events or tasks) and not self._write(events, tasks):
            self._failed = True
        self._stalled = False  # it wrote (or gave up on) this batch: puts may wait again
        if markers:
            failed, self._failed = self._failed, False
            for marker in markers:
                marker.ok = not failed
                marker.done.set()
        return stop

    def _write(self, events: list[Event | Record], tasks: list[TaskSnapshot]) -> bool:
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                try:
                    conn = self._conn = open_write_connection(self.path)
                except Exception as exc:
                    log.error(
                        "dexcost could not open its store %s (%s): %d events and %d tasks "
                        "not written",
                        self.path,
                        exc,
                        len(events),
                        len(tasks),
                    )
                    return False
            ok = BatchWriter(conn, self.path).write(events, tasks, self._give_up)
            if self._state is _CLOSED and threading.current_thread() is not self._thread:
                # A synchronous write after close(): do not keep the file open.
                self._conn = None
                conn.close()
            return ok

    def _give_up(self) -> bool:
        deadline = self._give_up_at
        return deadline is not None and time.monotonic() > deadline

    def _drain_sync(self) -> None:
        """Write whatever is queued, on the calling thread (used once closed).

        While the writer is still finishing, it is left alone: ``close()`` drains what
        is left after joining it.
        """
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            return
        with self._lock:
            batch: list[object] = []
            try:
                while True:
                    batch.append(self._queue.get_nowait())
            except Empty:
                pass
            if batch:
                self._process(batch)

    # --- fork ------------------------------------------------------------------------

    def _before_fork(self) -> None:
        self._fork_held = self._conn_lock.acquire(timeout=FORK_WAIT)
        if self._fork_held and self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - nothing more to do about it
                log.debug("closing the store before fork failed", exc_info=True)

    def _after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._conn_lock.release()

    def _after_fork_in_child(self) -> None:
        if self._conn is not None:
            # The batch in flight did not commit in time: the inherited connection must
            # never be used or closed here, so keep it referenced for good.
            log.warning("dexcost store %s was busy at fork; the child reopens it", self.path)
            _fork_orphans.append(self._conn)
            self._conn = None
        self._fork_held = False
        self._closing = 0
        self._conn_lock = threading.Lock()
        self._lock = threading.Lock()
        # Queued records belong to the parent, which writes them.
        self._queue = SimpleQueue()
        self._put = self._queue.put
        self._size = self._queue.qsize
        self._urgent = threading.Event()
        self._written = threading.Event()
        self._awake = threading.Event()
        self._stalled = False
        self._due = _NEVER
        self._thread = None
        if self._state is _RUNNING:
            self._state = _NOT_STARTED


_fork_orphans: list[sqlite3.Connection] = []
_all_stores: weakref.WeakSet[LocalStore] = weakref.WeakSet()
_hooked_pid: int | None = None
_exiting = False


def close_at_exit() -> None:
    """Close every store for good: records put from now on are written synchronously."""
    global _exiting
    _exiting = True
    close_all_stores()


def all_stores() -> list[LocalStore]:
    """Every store of this process that is still referenced."""
    return list(_all_stores)


def close_all_stores() -> None:
    """Flush and close every store of this process (also done at interpreter exit)."""
    for store in all_stores():
        try:
            store.close()
        except Exception:
            log.exception("dexcost could not close its store %s", store.path)


def _ensure_exit_hooks() -> None:
    """In a multiprocessing child, also close the stores when it exits.

    Such children end with ``os._exit`` and skip :mod:`atexit`; multiprocessing's own
    finalizers still run.
    """
    global _hooked_pid
    pid = os.getpid()
    if _hooked_pid == pid:
        return
    _hooked_pid = pid
    mp_util = sys.modules.get("multiprocessing.util")
    mp = sys.modules.get("multiprocessing")
    if mp_util is None or mp is None:
        return
    try:
        if mp.parent_process() is not None:
            mp_util.Finalize(None, close_at_exit, exitpriority=0)
    except Exception:  # pragma: no cover - multiprocessing internals changed
        log.debug("could not register the multiprocessing exit hook", exc_info=True)
