"""The one place where dexcost swallows its own errors.

dexcost's bookkeeping runs inside the user's calls (an LLM request, an HTTP send, a
framework callback). A bug there must never change what the user's call returns or
raises, so every piece of bookkeeping goes through :func:`call`, which catches any
``Exception``, logs it once per site and hands back a fallback value.

Nothing else in dexcost catches broad exceptions. Swallowed errors are also kept in a
small ring buffer (:func:`swallowed`) so a test suite can fail when the guard hid an
internal error instead of letting it pass silently.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["call", "clear", "report", "swallowed"]

_log = logging.getLogger("dexcost.guard")
_T = TypeVar("_T")

_lock = threading.Lock()
_logged_sites: set[str] = set()
_recent: deque[tuple[str, BaseException]] = deque(maxlen=64)


def report(site: str, exc: BaseException) -> None:
    """Record that ``exc`` was swallowed at ``site``; log it the first time per site."""
    with _lock:
        _recent.append((site, exc))
        first = site not in _logged_sites
        _logged_sites.add(site)
    if first:
        _log.warning(
            "dexcost: internal error in %s; the call it observed was not affected "
            "(further errors at this site are logged at debug level)",
            site,
            exc_info=exc,
        )
    else:
        _log.debug("dexcost: internal error in %s: %r", site, exc)


def call(site: str, fallback: _T, fn: Callable[..., _T], *args: Any) -> _T:
    """Return ``fn(*args)``, or ``fallback`` if it raised (the error is reported)."""
    try:
        return fn(*args)
    except Exception as exc:
        report(site, exc)
        return fallback


def swallowed() -> list[tuple[str, BaseException]]:
    """The most recent swallowed errors as ``(site, exception)`` pairs, oldest first."""
    with _lock:
        return list(_recent)


def clear() -> None:
    """Forget swallowed errors and which sites were logged (for tests)."""
    with _lock:
        _recent.clear()
        _logged_sites.clear()
