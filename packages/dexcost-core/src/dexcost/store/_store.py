"""The local store: an in-memory queue in front of one writer thread per file.

``put_event`` only appends to a :class:`queue.SimpleQueue`; a daemon thread drains it
in batches, one transaction each. The thread sleeps in ``SimpleQueue.get`` while there
is nothing to write, so an idle store costs nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

from dexcost._models import Event, Task

from ._connect import open_write_connection
from ._paths import default_buffer_path
from ._rows import task_row
from ._values import Row
from ._writer import BATCH_SIZE, BatchWriter

log = logging.getLogger("dexcost.store")

#: How long ``close()`` keeps retrying a store locked by another process.
CLOSE_TIMEOUT = 30.0

_NOT_STARTED = "not started"
_RUNNING = "running"
_CLOSED = "closed"


class _TaskRow:
    __slots__ = ("row",)

    def __init__(self, row: Row) -> None:
        self.row = row


class _Flush:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = True


_STOP = object()


class LocalStore:
    """The SQLite ledger and outbox of one process for one file.

    Create it through :func:`get_store` so a process has one writer per file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: Path = Path(path).expanduser().resolve()
        # Open (and create, and migrate) now so a bad path fails the caller, not a thread.
        self._conn: Any = open_write_connection(self.path)
        self._lock = threading.Lock()
        self._queue: SimpleQueue[object] = SimpleQueue()
        self._put = self._queue.put
        self._state = _NOT_STARTED
        self._thread: threading.Thread | None = None
        self._give_up_at: float | None = None
        # Set when a write failed; reported (and cleared) by the next flush marker.
        self._failed = False
        _all_stores.add(self)
        self._start()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r}, {self._state})"

    # --- the hot path ----------------------------------------------------------------

    def put_event(self, event: Event) -> None:
        """Queue ``event`` for writing (an upsert by ``event_id``); never touches disk."""
        self._put(event)
        if self._state is not _RUNNING:
            self._not_running()

    def put_task(self, task: Task) -> None:
        """Queue an upsert of ``task`` as it is now (its fields are copied at once)."""
        now = datetime.now(timezone.utc)
        try:
            row = task_row(task, now)
        except Exception:
            try:
                row = task_row(task, now, lenient=True)
            except Exception:
                log.exception("dexcost could not convert task %r; it was not stored", task)
                return
        self._put(_TaskRow(row))
        if self._state is not _RUNNING:
            self._not_running()

    # --- control ---------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything put before this call is committed; True on success."""
        if self._state is not _RUNNING:
            self._not_running()
            return self._state is not _RUNNING or self._wait_marker(timeout)
        return self._wait_marker(timeout)

    def close(self) -> None:
        """Write everything queued and stop the writer; idempotent.

        Records put after ``close()`` are written synchronously by the caller.
        """
        with self._lock:
            state, self._state = self._state, _CLOSED
            thread = self._thread
            if self._give_up_at is None:
                self._give_up_at = time.monotonic() + CLOSE_TIMEOUT
        if state is _RUNNING and thread is not None:
            self._put(_STOP)
            thread.join()
        self._drain_sync()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._state is _CLOSED

    # --- internals -------------------------------------------------------------------

    def _wait_marker(self, timeout: float | None) -> bool:
        marker = _Flush()
        self._put(marker)
        if self._state is not _RUNNING:
            self._not_running()
        return marker.done.wait(timeout) and marker.ok

    def _not_running(self) -> None:
        """Slow path of a put: start the writer (in a forked child) or write now (closed)."""
        if self._state is _NOT_STARTED:
            self._start()
        if self._state is _CLOSED:
            self._drain_sync()

    def _start(self) -> None:
        with self._lock:
            if self._state is not _NOT_STARTED:
                return
            if sys.is_finalizing():
                self._state = _CLOSED
                return
            thread = threading.Thread(
                target=self._run, name=f"dexcost-store-writer:{self.path.name}", daemon=True
            )
            self._thread = thread
            self._state = _RUNNING
            _ensure_exit_hooks()
            thread.start()

    def _give_up(self) -> bool:
        deadline = self._give_up_at
        return deadline is not None and time.monotonic() > deadline

    def _run(self) -> None:
        queue = self._queue
        try:
            if self._conn is None:
                self._conn = open_write_connection(self.path)
            writer = BatchWriter(self._conn, self.path)
        except Exception:
            log.exception("dexcost could not open its store %s; writing synchronously", self.path)
            with self._lock:
                self._state = _CLOSED
            self._drain_sync()
            return
        get, get_nowait = queue.get, queue.get_nowait
        while True:
            batch = [get()]
            try:
                while len(batch) < BATCH_SIZE:
                    batch.append(get_nowait())
            except Empty:
                pass
            try:
                if self._process(batch, writer):
                    return
            except Exception:  # pragma: no cover - a bug; keep the writer alive
                log.exception("dexcost store writer failed on a batch")

    def _process(self, batch: list[object], writer: BatchWriter) -> bool:
        """Write one drained batch; return True when it held the stop sentinel."""
        events: list[Event] = []
        tasks: list[Row] = []
        markers: list[_Flush] = []
        stop = False
        for item in batch:
            kind = type(item)
            if kind is _TaskRow:
                tasks.append(item.row)  # type: ignore[attr-defined]
            elif kind is _Flush:
                markers.append(item)  # type: ignore[arg-type]
            elif item is _STOP:
                stop = True
            else:
                events.append(item)  # type: ignore[arg-type]
        if (events or tasks) and not writer.write(events, tasks, self._give_up):
            self._failed = True
        if markers:
            failed, self._failed = self._failed, False
            for marker in markers:
                marker.ok = not failed
                marker.done.set()
        return stop

    def _drain_sync(self) -> None:
        """Write whatever is queued on the calling thread (used once closed)."""
        with self._lock:
            batch: list[object] = []
            try:
                while True:
                    batch.append(self._queue.get_nowait())
            except Empty:
                pass
            if not batch:
                return
            try:
                conn = open_write_connection(self.path)
            except Exception:
                log.exception(
                    "dexcost could not open its store %s: %d records not written",
                    self.path,
                    len(batch),
                )
                return
            try:
                self._process(batch, BatchWriter(conn, self.path))
            finally:
                conn.close()

    def _after_fork_in_child(self) -> None:
        # The parent's connection must never be used or closed here (SQLite's locks are
        # per process): keep it referenced forever. Queued records belong to the parent.
        _fork_orphans.append(self._conn)
        self._conn = None
        self._lock = threading.Lock()
        self._queue = SimpleQueue()
        self._put = self._queue.put
        self._thread = None
        if self._state is _RUNNING:
            self._state = _NOT_STARTED


# --- the process-wide registry ------------------------------------------------------

_registry: dict[Path, LocalStore] = {}
_registry_lock = threading.Lock()
_all_stores: weakref.WeakSet[LocalStore] = weakref.WeakSet()
_fork_orphans: list[object] = []
_hooked_pid: int | None = None


def get_store(path: str | os.PathLike[str] | None = None) -> LocalStore:
    """Return this process's store for ``path`` (default :func:`default_buffer_path`).

    One :class:`LocalStore`, hence one writer thread, per resolved path; a closed one
    is replaced by a new one.
    """
    resolved = Path(default_buffer_path() if path is None else path).expanduser().resolve()
    with _registry_lock:
        store = _registry.get(resolved)
        if store is None or store.closed:
            store = LocalStore(resolved)
            _registry[resolved] = store
        return store


def close_all_stores() -> None:
    """Flush and close every store of this process (runs at interpreter exit)."""
    for store in list(_all_stores):
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
            mp_util.Finalize(None, close_all_stores, exitpriority=0)
    except Exception:  # pragma: no cover - multiprocessing internals changed
        log.debug("could not register the multiprocessing exit hook", exc_info=True)


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for store in list(_all_stores):
        store._after_fork_in_child()


atexit.register(close_all_stores)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
