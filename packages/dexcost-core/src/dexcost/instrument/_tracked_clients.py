"""TrackedOpenAI / TrackedAnthropic: provider clients that are recorded whatever the set-up.

``TrackedOpenAI(...)`` takes the arguments of ``openai.OpenAI`` plus ``tracker=`` and
returns a real ``openai.OpenAI`` (a subclass of it). Its calls are recorded into
``tracker`` when given, else into the global tracker of ``dexcost.init()`` as it is at
the time of each call, so a client created before ``init()`` (or with
``auto_instrument=[]``) is still tracked. Other clients are not affected.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = [
    "TrackedAnthropic",
    "TrackedAsyncAnthropic",
    "TrackedAsyncOpenAI",
    "TrackedOpenAI",
    "tracker_of_client",
]

_lock = threading.Lock()
_subclasses: dict[tuple[str, str], type] = {}
#: The client subclasses built here; looked up on every call of a patched method.
tracked_types: set[type] = set()


class _Resolver:
    """Finds the tracker of one tracked client at call time."""

    __slots__ = ("tracker",)

    def __init__(self, tracker: CostTracker | None) -> None:
        self.tracker = tracker

    def __call__(self) -> CostTracker | None:
        if self.tracker is not None:
            return self.tracker
        from dexcost._api import get_tracker

        return get_tracker()


def tracker_of_client(client: Any) -> CostTracker | None:
    """The tracker a tracked client's calls go to, or None for any other client."""
    if type(client) not in tracked_types:
        return None
    resolver = client.__dict__.get("_dexcost_resolver")
    return resolver() if resolver is not None else None


def _build(
    provider: str, class_name: str, kind: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    tracker = kwargs.pop("tracker", None)
    key = (provider, class_name)
    with _lock:
        subclass = _subclasses.get(key)
        if subclass is None:
            base = getattr(importlib.import_module(provider), class_name)
            subclass = type(kind.__name__, (base,), {"_dexcost_kind": kind})
            _subclasses[key] = subclass
            tracked_types.add(subclass)
    client = subclass(*args, **kwargs)
    client.__dict__["_dexcost_resolver"] = _Resolver(tracker)
    from . import get_instrumentor

    get_instrumentor(provider).ensure_patched()
    return client


class _TrackedMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return getattr(type(obj), "_dexcost_kind", None) is cls


class TrackedOpenAI(metaclass=_TrackedMeta):
    """An ``openai.OpenAI`` whose calls are recorded into ``tracker`` (or the global one)."""

    def __new__(cls, *args: Any, tracker: CostTracker | None = None, **kwargs: Any) -> Any:
        return _build("openai", "OpenAI", cls, args, {**kwargs, "tracker": tracker})


class TrackedAsyncOpenAI(metaclass=_TrackedMeta):
    """An ``openai.AsyncOpenAI`` whose calls are recorded into ``tracker`` (or the global one)."""

    def __new__(cls, *args: Any, tracker: CostTracker | None = None, **kwargs: Any) -> Any:
        return _build("openai", "AsyncOpenAI", cls, args, {**kwargs, "tracker": tracker})


class TrackedAnthropic(metaclass=_TrackedMeta):
    """An ``anthropic.Anthropic`` whose calls are recorded into ``tracker`` (or the global one)."""

    def __new__(cls, *args: Any, tracker: CostTracker | None = None, **kwargs: Any) -> Any:
        return _build("anthropic", "Anthropic", cls, args, {**kwargs, "tracker": tracker})


class TrackedAsyncAnthropic(metaclass=_TrackedMeta):
    """An ``anthropic.AsyncAnthropic`` recorded into ``tracker`` (or the global one)."""

    def __new__(cls, *args: Any, tracker: CostTracker | None = None, **kwargs: Any) -> Any:
        return _build("anthropic", "AsyncAnthropic", cls, args, {**kwargs, "tracker": tracker})
