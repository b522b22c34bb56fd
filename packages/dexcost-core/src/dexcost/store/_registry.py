"""One store per file and process, all closed at exit, all told about forks."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from ._paths import default_buffer_path
from ._store import LocalStore, all_stores, close_at_exit

_registry: dict[Path, LocalStore] = {}
_registry_lock = threading.Lock()


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


_fork_stores: list[LocalStore] = []


def _before_fork() -> None:
    _fork_stores[:] = [s for s in all_stores() if not s.closed]
    for store in _fork_stores:
        store._before_fork()


def _after_fork_in_parent() -> None:
    for store in _fork_stores:
        store._after_fork_in_parent()
    _fork_stores.clear()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for store in all_stores():
        store._after_fork_in_child()
    _fork_stores.clear()


atexit.register(close_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
