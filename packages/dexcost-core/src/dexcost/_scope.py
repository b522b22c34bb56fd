"""The scope rule: which capture layer records a given LLM or API call, exactly once.

One call can be seen by several dexcost layers: a framework adapter (LangChain,
LlamaIndex, CrewAI, pydantic-ai), a provider patch (openai, litellm, ...) and HTTP
capture. Two rules decide who records it:

1. **The outermost billing layer records.** Provider patches and HTTP capture are
   *billing* layers. The first one entered takes ownership of the call for its duration
   (a context variable); layers entered underneath see an owner and stay silent. So a
   ``litellm.completion`` that calls the openai SDK, which sends through httpx, is
   recorded once, by litellm. Streams are owned by the layer that built them, even
   though they are consumed after the call returned.
2. **Framework adapters are attribution layers.** Around each framework LLM call an
   adapter activates a :class:`FrameworkCall` marker. A billing layer that takes
   ownership inside it marks it covered. When the framework reports the call finished,
   the adapter records it from the framework's own usage only if the marker is not
   covered, which is the case for providers dexcost does not patch.

Adapters whose end-of-call events arrive later on other threads, keyed by their own
ids, can register :func:`on_covered` to learn synchronously, in the caller's context,
that a billing layer took a call.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import FrameType, TracebackType

from . import _guard

__all__ = [
    "BillingScope",
    "FrameworkCall",
    "billing_scope",
    "current_billing_layer",
    "current_framework_call",
    "mark_covered",
    "on_covered",
]

_owner: ContextVar[str | None] = ContextVar("dexcost_billing_owner", default=None)
_framework_call: ContextVar[FrameworkCall | None] = ContextVar(
    "dexcost_framework_call", default=None
)
_listeners: tuple[Callable[[str], None], ...] = ()
_implicit: frozenset[str] = frozenset()  # top-level packages whose calls are owned
# The owners, and for each module name seen on the stack whether it is theirs: one
# tuple, replaced whole when the owners change, so no answer outlives them.
_owned_by: tuple[frozenset[str], dict[str, bool]] = (_implicit, {})
_NAMES = 4096  # module names remembered at most
_lock = threading.Lock()
_FRAMES = 8  # how many callers to inspect for an implicit owner


class FrameworkCall:
    """A marker an adapter puts in context around one framework LLM call.

    Use it as a context manager, or call :meth:`activate` and :meth:`deactivate` from
    start/end callbacks. After the call, ``covered`` says whether a billing layer
    (provider patch or HTTP capture) took it; if not, the adapter records it itself.
    ``key`` is free for the adapter (a run id, a span id).
    """

    __slots__ = ("_token", "covered", "covered_by", "key")

    def __init__(self, key: object = None) -> None:
        self.key = key
        self.covered = False
        self.covered_by: str | None = None
        self._token: Token[FrameworkCall | None] | None = None

    def mark_covered(self, layer: str) -> None:
        """Say that ``layer`` records this call (the first layer to say so is kept)."""
        if not self.covered:
            self.covered = True
            self.covered_by = layer

    def activate(self) -> Token[FrameworkCall | None]:
        """Make this the current framework call; pass the token to :meth:`deactivate`."""
        return _framework_call.set(self)

    def deactivate(self, token: Token[FrameworkCall | None]) -> None:
        """Restore the framework call that was current before :meth:`activate`."""
        _framework_call.reset(token)

    def __enter__(self) -> FrameworkCall:
        self._token = _framework_call.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            _framework_call.reset(token)

    def __repr__(self) -> str:
        return f"FrameworkCall(key={self.key!r}, covered_by={self.covered_by!r})"


class BillingScope:
    """Context manager returned by :func:`billing_scope`; ``__enter__`` says if we own."""

    __slots__ = ("_token", "covers", "layer")

    def __init__(self, layer: str, covers: bool = True) -> None:
        self.layer = layer
        self.covers = covers
        self._token: Token[str | None] | None = None

    def __enter__(self) -> bool:
        self._token = claim(self.layer, covers=self.covers)
        return self._token is not None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            _owner.reset(token)


def billing_scope(layer: str, *, covers: bool = True) -> BillingScope:
    """Enter a billing layer for one call: ``with billing_scope("mysdk") as owns: ...``.

    ``owns`` is True when no outer billing layer owns the call; the layer then records
    it, and every layer entered inside the block sees it as owned. It is False when an
    outer layer already records the call; record nothing then.

    Owning marks the active :class:`FrameworkCall` covered. A layer that decides only
    later whether it records anything (HTTP capture: is this host billable?) passes
    ``covers=False`` and calls :func:`mark_covered` once it records.
    """
    return BillingScope(layer, covers)


def current_billing_layer() -> str | None:
    """The billing layer that owns the call in progress, or None."""
    return _owner.get()


def current_framework_call() -> FrameworkCall | None:
    """The active :class:`FrameworkCall` marker, or None outside framework LLM calls."""
    return _framework_call.get()


def on_covered(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(layer)`` whenever a billing layer takes ownership of a call.

    It runs synchronously in the caller's thread and context, so it can read the
    framework's own context (for example its current call id). Returns a function that
    removes the listener. Errors in listeners are logged, never raised.
    """
    global _listeners
    with _lock:
        _listeners = (*_listeners, listener)

    def remove() -> None:
        global _listeners
        with _lock:
            _listeners = tuple(fn for fn in _listeners if fn is not listener)

    return remove


# -- used by dexcost's own billing layers (private) ------------------------------------


def mark_covered(layer: str) -> None:
    """Say that ``layer`` records the call in progress: the active :class:`FrameworkCall`
    (if any) is covered and :func:`on_covered` listeners are told."""
    marker = _framework_call.get()
    if marker is not None:
        marker.mark_covered(layer)
    if _listeners:
        for listener in _listeners:
            _guard.call("scope.on_covered", None, listener, layer)


def claim(layer: str, *, covers: bool = True) -> Token[str | None] | None:
    """Take ownership of the call for ``layer``; None when an outer layer owns it.

    The fast path for wrappers: pass a non-None result to :func:`release`. With
    ``covers`` (the default) the call is also marked covered (:func:`mark_covered`).
    """
    if _owner.get() is not None:
        return None
    if _implicit and _called_from_implicit_owner():
        return None
    token = _owner.set(layer)
    if covers and (_listeners or _framework_call.get() is not None):
        mark_covered(layer)
    return token


def release(token: Token[str | None]) -> None:
    """End ownership taken by :func:`claim`."""
    _owner.reset(token)


def hold(layer: str) -> Token[str | None]:
    """Mark ``layer`` as owner unconditionally (a stream re-entering its own scope)."""
    return _owner.set(layer)


def set_implicit_owner(package: str, owned: bool) -> None:
    """Treat calls made from code in the top-level ``package`` as already owned.

    For an outer layer that cannot always wrap its entry point (``from litellm import
    completion`` bound before dexcost patched ``litellm.completion``) but records every
    call through a callback of its own: inner layers must stay silent for its calls.
    """
    global _implicit, _owned_by
    with _lock:
        _implicit = _implicit | {package} if owned else _implicit - {package}
        _owned_by = (_implicit, {})


def _called_from_implicit_owner() -> bool:
    """Whether one of the caller's callers (up to ``_FRAMES``) is an implicit owner's.

    Runs on every call an outermost layer takes while an implicit owner is set, so a
    module's answer is remembered by name, and a run of frames of one module is asked
    about once.
    """
    roots, known = _owned_by
    frame: FrameType | None = sys._getframe(2)
    seen = None
    for _ in range(_FRAMES):
        if frame is None:
            return False
        scope = frame.f_globals
        if scope is not seen:
            seen = scope
            name = scope.get("__name__")
            if isinstance(name, str):
                owned = known.get(name)
                if owned is None:
                    owned = name.partition(".")[0] in roots
                    if len(known) < _NAMES:
                        known[name] = owned
                if owned:
                    return True
        frame = frame.f_back
    return False
