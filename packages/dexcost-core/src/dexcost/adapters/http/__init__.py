"""HTTP capture: calls to paid APIs become ``external_cost`` events, with no code change.

``dexcost.init(track_http=True)`` (the default) calls :func:`track_http`. Every call
that requests, httpx, httpx2, aiohttp, botocore or urllib3 sends to a host with a
price (a rate registered with :func:`register_domain_rate`, else the bundled service
catalog) is recorded in the current task, or in the session task outside one. Hosts
without a price cost a lookup and nothing else; LLM provider endpoints are left to the
provider instrumentation; a call seen by two layers (requests over urllib3, an SDK over
httpx, httpx over aiohttp) is recorded once. :func:`untrack_http` restores everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from dexcost.catalog import clear_domain_rates, register_domain_rate, unregister_domain_rate

from ._track import ALL_HTTP_LIBRARIES, is_tracking, track, untrack

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = [
    "ALL_HTTP_LIBRARIES",
    "clear_domain_rates",
    "is_tracking_http",
    "register_domain_rate",
    "track_http",
    "unregister_domain_rate",
    "untrack_http",
]


def track_http(
    tracker: CostTracker | None = None, *, libraries: Iterable[str] | None = None
) -> list[str]:
    """Record priced HTTP calls into ``tracker`` (default: the one ``dexcost.init()`` made).

    ``libraries`` limits capture to some of :data:`ALL_HTTP_LIBRARIES`; by default
    every installed one is captured and missing ones are skipped. A named library that
    is not installed raises ModuleNotFoundError with the install command; an unknown
    name raises ValueError. Each library is patched when it is imported (at once if it
    already is). Calling again switches the tracker and adds libraries. Returns the
    names of the libraries captured.
    """
    return track(tracker, libraries)


def untrack_http() -> None:
    """Stop capturing and restore the original methods of every HTTP library."""
    untrack()


def is_tracking_http() -> bool:
    """True while HTTP capture is on (between :func:`track_http` and :func:`untrack_http`)."""
    return is_tracking()
