"""The one patch mechanism: wrappers that dexcost installs, knows and removes.

Every dexcost patch (provider SDKs, HTTP libraries) goes through :func:`wrap` and
:func:`unwrap`. Installing is idempotent and thread-safe; removing restores the exact
object that was there before, and only when dexcost's wrapper is still the outermost
one. If another tool wrapped on top of ours since, removing ours would drop theirs, so
our wrapper stays in the chain switched off (it calls straight through) and is switched
back on, not stacked again, if the same target is patched later.

Every wrapper has wrapt's signature, ``wrapper(wrapped, instance, args, kwargs)``. A
plain Python function (a method in a class, or a module's function; ``async def`` ones
too) is replaced by a function of the same kind that calls it: Python binds it as it
bound the original, with no proxy object built per attribute access, which is most of
what a wrapt wrapper costs a call that dexcost then leaves alone (a request to a host
nobody prices). It carries the original's name, docstring, annotations and
``__wrapped__``, so ``inspect.signature`` and wrapt-based tools see through it, and
``inspect.iscoroutinefunction`` answers as for the original. Everything else (generator
functions, static and class methods, builtins, another tool's wrapt proxy) is wrapped by
wrapt's ``FunctionWrapper``, which proxies all of that. A patch given a gate (HTTP
capture's, which leaves most calls alone) is compiled with the method's exact signature
and calls the wrapper only when the gate lets it (see ``_gated``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import threading
import types
from collections.abc import Callable
from typing import Any

import wrapt

from ._gated import InlineGate, gated_patch

__all__ = ["GateSpec", "InlineGate", "Patch", "WrapperFn", "installed", "unwrap", "wrap"]

_log = logging.getLogger("dexcost.instrument")

#: A wrapt wrapper: ``fn(wrapped, instance, args, kwargs)``.
WrapperFn = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]
#: ``(gate, n, wrapper)``: the gate compiled into the patched method, how many of the
#: method's first parameters it reads, and the wrapper to call when it lets a call
#: through (which may then skip what the gate checked; the plain wrapper is called where
#: the gate does not apply).
GateSpec = tuple[InlineGate, int, WrapperFn]

_lock = threading.RLock()
_installed: dict[tuple[int, str], Patch] = {}

# Code flags of generator functions: a plain function in their place would not be one.
_GENERATOR = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


def _plain(value: Any) -> bool:
    """Whether ``value`` is a plain Python function (sync or ``async def``), no generator."""
    return type(value) is types.FunctionType and not value.__code__.co_flags & _GENERATOR


def _function_patch(
    func: types.FunctionType, wrapper: WrapperFn, on: list[bool], method: bool
) -> tuple[types.FunctionType, Callable[[WrapperFn], None]]:
    """A function of the same kind as ``func`` (``async def`` for a coroutine function)
    calling ``wrapper`` around it while ``on`` is non-empty, as wrapt would (``method``:
    bound to an instance, which is ``instance``), and a setter for its wrapper."""
    bind = types.MethodType
    patched: Any
    if inspect.iscoroutinefunction(func):
        if method:

            async def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
                if on:
                    return await wrapper(bind(func, self), self, args, kwargs)
                return await func(self, *args, **kwargs)

        else:

            async def patched(*args: Any, **kwargs: Any) -> Any:
                if on:
                    return await wrapper(func, None, args, kwargs)
                return await func(*args, **kwargs)

    elif method:

        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            if on:
                return wrapper(bind(func, self), self, args, kwargs)
            return func(self, *args, **kwargs)

    else:

        def patched(*args: Any, **kwargs: Any) -> Any:
            if on:
                return wrapper(func, None, args, kwargs)
            return func(*args, **kwargs)

    def set_wrapper(new: WrapperFn) -> None:
        nonlocal wrapper
        wrapper = new

    functools.update_wrapper(patched, func)
    return patched, set_wrapper


class Patch:
    """One dexcost wrapper on ``module:path``, and what it replaced."""

    __slots__ = (
        "_on",
        "_set_wrapper",
        "attribute",
        "created",
        "gated",
        "module",
        "original",
        "owner",
        "parent",
        "path",
        "proxy",
        "wrapper",
    )

    def __init__(
        self,
        owner: str,
        module: str,
        path: str,
        parent: Any,
        attribute: str,
        original: Any,
        created: bool,
        wrapper: WrapperFn,
        gate: GateSpec | None = None,
    ) -> None:
        self.owner = owner
        self.module = module
        self.path = path
        self.parent = parent
        self.attribute = attribute
        self.original = original  # the raw attribute value (descriptor) that was replaced
        self.created = created  # the attribute was inherited: removal deletes our slot
        self.wrapper: WrapperFn  # the wrapper the proxy calls
        # The switch, read on every call: a non-empty list is on. wrapt tests its truth
        # in C, where a method here would cost every call a Python frame.
        self._on = [True]
        self._set_wrapper: Callable[[WrapperFn], None] | None = None
        proxy: Any
        method = inspect.isclass(parent)
        gated = None
        if gate is not None and method and _plain(original):
            check, count, self.wrapper = gate
            gated = gated_patch(original, self.wrapper, self._on, check, count)
        #: Whether the gate applies (then ``wrapper`` is the gate's).
        self.gated = gated is not None
        if gated is not None:
            proxy, self._set_wrapper = gated
            functools.update_wrapper(proxy, original)
        elif _plain(original):
            self.wrapper = wrapper
            proxy, self._set_wrapper = _function_patch(original, wrapper, self._on, method)
        else:
            switch: Any = self._on  # wrapt's stubs want a bool-like; a list's truth is its length
            self.wrapper = wrapper
            proxy = wrapt.FunctionWrapper(original, wrapper, enabled=switch)
        proxy._self_dexcost_patch = self
        self.proxy = proxy

    @property
    def target(self) -> str:
        """``module:path`` of the patched attribute."""
        return f"{self.module}:{self.path}"

    @property
    def active(self) -> bool:
        """Whether the wrapper runs (else the wrapped method is called straight)."""
        return bool(self._on)

    @active.setter
    def active(self, on: bool) -> None:
        self._on[:] = [True] if on else []

    def replace_wrapper(self, wrapper: WrapperFn, gate: GateSpec | None = None) -> None:
        """Have the installed proxy call ``wrapper`` from now on (``gate``'s wrapper if
        given and this patch is gated; its check stays the first one).

        The proxy keeps its identity (a wrapt proxy is re-initialised in place), so a
        wrapper another tool installed on top of ours keeps calling into the same object.
        """
        if self.gated and gate is not None:
            wrapper = gate[2]
        if wrapper is not self.wrapper:
            self.wrapper = wrapper
            if self._set_wrapper is not None:
                self._set_wrapper(wrapper)
            else:
                type(self.proxy).__init__(self.proxy, self.original, wrapper, self._on)

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<Patch {self.owner} {self.target} {state}>"


def _resolve(module: str, path: str) -> tuple[Any, str, Any, bool] | None:
    try:
        parent: Any = importlib.import_module(module)
    except ImportError:
        _log.debug("dexcost: cannot import %s; %s not patched", module, path)
        return None
    *owners, attribute = path.split(".")
    try:
        for name in owners:
            parent = getattr(parent, name)
        if inspect.isclass(parent):
            for cls in inspect.getmro(parent):
                if attribute in vars(cls):
                    return parent, attribute, vars(cls)[attribute], cls is not parent
            raise AttributeError(attribute)
        return parent, attribute, getattr(parent, attribute), False
    except AttributeError:
        _log.debug("dexcost: %s has no %s in this version; not patched", module, path)
        return None


def _find_ours(value: Any, parent: Any, attribute: str) -> Patch | None:
    """Our patch for (parent, attribute) if it sits anywhere in value's wrapper chain."""
    for _ in range(32):
        patch = getattr(value, "_self_dexcost_patch", None)
        if isinstance(patch, Patch) and patch.parent is parent and patch.attribute == attribute:
            return patch
        try:
            value = object.__getattribute__(value, "__wrapped__")
        except AttributeError:
            return None
    return None


def wrap(
    owner: str, module: str, path: str, wrapper: WrapperFn, gate: GateSpec | None = None
) -> Patch | None:
    """Install ``wrapper`` around ``module:path`` for ``owner``; None if not present.

    ``gate``, ``(inline_gate, n, gated_wrapper)``: for a method with plain parameters,
    patch it with its exact signature and call ``gated_wrapper`` only when the gate,
    reading the instance and its first n parameters, lets the call through (see
    ``_gated``).
    Where that does not apply, ``wrapper`` runs on every call and decides for itself.

    Idempotent: patching a target that already carries this owner's wrapper returns
    that patch (re-activated if it had been switched off, with its first gate).
    """
    with _lock:
        resolved = _resolve(module, path)
        if resolved is None:
            return None
        parent, attribute, current, created = resolved
        key = (id(parent), attribute)
        patch = _installed.get(key) or _find_ours(current, parent, attribute)
        if patch is not None:
            if patch.owner != owner:
                raise RuntimeError(f"{patch.target} is already patched by dexcost {patch.owner}")
            patch.replace_wrapper(wrapper, gate)
            patch.active = True
            _installed[key] = patch
            return patch
        patch = Patch(owner, module, path, parent, attribute, current, created, wrapper, gate)
        setattr(parent, attribute, patch.proxy)
        _installed[key] = patch
        return patch


def unwrap(patch: Patch) -> bool:
    """Remove ``patch``; True if the original object is back in place.

    False when another wrapper was installed on top of ours since: ours then stays in
    the chain, switched off, so the other tool's wrapper keeps working.
    """
    with _lock:
        patch.active = False
        key = (id(patch.parent), patch.attribute)
        if _installed.get(key) is patch:
            del _installed[key]
        try:
            current = vars(patch.parent).get(patch.attribute)
        except TypeError:
            current = getattr(patch.parent, patch.attribute, None)
        if current is not patch.proxy:
            _log.debug(
                "dexcost: %s was wrapped again by another tool; leaving dexcost's wrapper "
                "in place, switched off",
                patch.target,
            )
            return False
        if patch.created:
            delattr(patch.parent, patch.attribute)
        else:
            setattr(patch.parent, patch.attribute, patch.original)
        return True


def installed(owner: str | None = None) -> list[Patch]:
    """The active dexcost patches, optionally only ``owner``'s."""
    with _lock:
        return [p for p in _installed.values() if owner is None or p.owner == owner]
