"""The common shape of a provider instrumentation: an Instrumentor and call wrappers.

An :class:`Instrumentor` owns the patches of one SDK. Each patched method gets a
wrapper built by :func:`sync_wrapper` or :func:`async_wrapper` around a
:class:`CallHandler`, which knows how to read that method's results. The wrappers do
the same thing for every provider: call straight through when nothing is to be
recorded (not instrumented, or an outer layer owns the call), otherwise own the call
(:mod:`dexcost._scope`), time it, and hand the result or the exception to the handler
under the guard (:func:`dexcost._guard.report`), so the user's call returns and raises
exactly what it would have.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import wrapt

from dexcost import _guard, _scope

from . import _patch
from ._record import Usage, elapsed_ms, record_failure, record_llm

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["CallHandler", "Instrumentor", "ResultHandler", "async_wrapper", "sync_wrapper"]

_perf_ns = time.perf_counter_ns


class Instrumentor:
    """Patches one provider SDK for one tracker; :meth:`uninstrument` restores it."""

    #: The name used by ``CostTracker.instrument`` and ``auto_instrument``.
    name: ClassVar[str] = ""
    #: The module whose presence means the SDK is installed.
    import_name: ClassVar[str] = ""
    #: What to ``pip install`` when it is not.
    pip_name: ClassVar[str] = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._patches: list[_patch.Patch] = []
        self._installed = False
        self._pending = False  # waiting for the SDK to be imported
        self._hooked = False  # the import hook is registered (it cannot be removed)
        self._hooked_parts: set[str] = set()  # modules of optional parts, hooked likewise
        self.tracker: CostTracker | None = None

    @property
    def is_instrumented(self) -> bool:
        """True while the SDK is patched for a tracker (or will be, once imported)."""
        return self.tracker is not None

    @property
    def patched(self) -> list[str]:
        """``module:path`` of every method currently patched."""
        return [p.target for p in self._patches]

    def is_available(self) -> bool:
        """True when the SDK is installed (checked without importing it)."""
        try:
            return importlib.util.find_spec(self.import_name) is not None
        except (ImportError, ValueError):
            return False

    def instrument(self, tracker: CostTracker) -> None:
        """Patch the SDK so its calls are recorded by ``tracker``.

        Raises RuntimeError when it is already instrumented (call :meth:`uninstrument`
        first) and ModuleNotFoundError, with the install command, when the SDK is
        missing.
        """
        with self._lock:
            if self.tracker is not None:
                raise RuntimeError(
                    f"{self.name} is already instrumented; call uninstrument_{self.name}() "
                    f"(or tracker.uninstrument({self.name!r})) first"
                )
            self.ensure_patched()
            self.tracker = tracker

    def ensure_patched(self) -> None:
        """Install the patches without a tracker (for clients that bring their own).

        When the program has not imported the SDK yet, the patches are installed when it
        does (an import hook), so ``init()`` imports no SDK the program does not use.
        """
        with self._lock:
            if self._installed or self._pending:
                return
            if not self.is_available():
                raise ModuleNotFoundError(
                    f"cannot instrument {self.name}: the {self.pip_name} package is not "
                    f"installed (pip install {self.pip_name})",
                    name=self.import_name,
                )
            if self.import_name in sys.modules:
                self._install_now()
                return
            self._pending = True
            if not self._hooked:
                self._hooked = True
                wrapt.register_post_import_hook(self._on_import, self.import_name)

    def uninstrument(self) -> None:
        """Restore every patched method; does nothing when not instrumented."""
        with self._lock:
            self.tracker = None
            self._pending = False
            if not self._installed:
                return
            self._installed = False
            self._remove_patches()
            self._teardown()

    def _install_now(self) -> None:
        # Installed from the start: an optional part whose import completes while
        # _install() registers its hook is then patched at once (_on_import_part).
        self._installed = True
        try:
            self._install()
        except BaseException:
            self._installed = False
            self._remove_patches()
            raise

    def _on_import(self, module: Any) -> None:
        """The SDK was just imported: install the patches if still wanted."""
        with self._lock:
            if not self._pending:
                return
            self._pending = False
            _guard.call(f"instrument.{self.name}.install", None, self._install_now)

    def tracker_for(self, instance: Any) -> CostTracker | None:
        """The tracker that records a call on ``instance`` (None: do not record)."""
        return self.tracker

    # -- for subclasses -------------------------------------------------------------

    def _install(self) -> None:
        """Patch the SDK (with :meth:`_wrap`); runs once per instrument."""
        raise NotImplementedError

    def _teardown(self) -> None:
        """Undo anything :meth:`_install` did besides patches (callbacks, hooks)."""

    def _install_on_import(self, module: str, install: Callable[[], None]) -> None:
        """From :meth:`_install`: patch an optional part of the SDK living in ``module``.

        ``install`` runs now if the program has imported ``module``, else when it does,
        provided the SDK is still instrumented then; its :meth:`_wrap` patches are removed
        with the others. Nothing here imports ``module``.
        """
        if module in sys.modules:
            if sys.modules[module] is not None:  # None: the import is blocked
                install()
            return
        if module not in self._hooked_parts:
            self._hooked_parts.add(module)
            wrapt.register_post_import_hook(partial(self._on_import_part, install), module)

    def _on_import_part(self, install: Callable[[], None], module: Any) -> None:
        with self._lock:
            if self._installed:
                _guard.call(f"instrument.{self.name}.install", None, install)

    def _wrap(self, module: str, path: str, wrapper: _patch.WrapperFn) -> bool:
        patch = _patch.wrap(self.name, module, path, wrapper)
        if patch is not None and patch not in self._patches:
            self._patches.append(patch)
        return patch is not None

    def _remove_patches(self) -> None:
        patches, self._patches = self._patches, []
        for patch in reversed(patches):
            _patch.unwrap(patch)

    def __repr__(self) -> str:
        state = "instrumented" if self.tracker is not None else "not instrumented"
        return f"<{type(self).__name__} {self.name!r} {state}>"


class CallHandler:
    """Reads one patched method's results and records them (one per method family)."""

    #: ``details["operation"]`` and the guard site suffix: "chat", "embeddings", ...
    operation: ClassVar[str] = "call"

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        """Record ``result`` (or wrap it when it is a stream) and return what the user gets."""
        return result

    def on_error(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started_ns: int,
    ) -> None:
        """Record a call that raised ``exc`` (which is then re-raised unchanged)."""


class ResultHandler(CallHandler):
    """A method recorded from the result it returns (no stream): embeddings and the like.

    Subclasses say where the call went (:meth:`provider`, :meth:`model`) and read the
    tokens (:meth:`usage`, which may add facts to ``details``); recording and failures
    are the same for every provider.
    """

    def provider(self, instance: Any) -> str:
        """The provider name of the client ``instance``."""
        raise NotImplementedError

    def model(self, kwargs: dict[str, Any]) -> str | None:
        """The model asked for (responses of these methods do not name one)."""
        model = kwargs.get("model")
        return model if isinstance(model, str) else None

    def usage(self, kwargs: dict[str, Any], result: Any, details: dict[str, Any]) -> Usage:
        """The tokens of ``result``, estimated from the request when it reports none."""
        raise NotImplementedError

    def on_result(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        started_ns: int,
    ) -> Any:
        details: dict[str, Any] = {"operation": self.operation}
        usage = self.usage(kwargs, result, details)
        provider, model = self.provider(instance), self.model(kwargs)
        record_llm(tracker, provider, model, usage, elapsed_ms(started_ns), details)
        return result

    def on_error(
        self,
        tracker: CostTracker,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started_ns: int,
    ) -> None:
        details = {"operation": self.operation}
        provider, model = self.provider(instance), self.model(kwargs)
        record_failure(tracker, provider, model, exc, started_ns, details)


def sync_wrapper(inst: Instrumentor, handler: CallHandler) -> _patch.WrapperFn:
    """The wrapper for a synchronous method recorded by ``handler``."""
    layer = inst.name
    site = f"instrument.{layer}.{handler.operation}"
    on_result = handler.on_result
    on_error = handler.on_error
    claim = _scope.claim
    release = _scope.release
    report = _guard.report

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        tracker = inst.tracker_for(instance)
        if tracker is None:
            return wrapped(*args, **kwargs)
        token = claim(layer)
        if token is None:
            return wrapped(*args, **kwargs)
        started = _perf_ns()
        try:
            result = wrapped(*args, **kwargs)
        except Exception as exc:
            try:
                on_error(tracker, instance, args, kwargs, exc, started)
            except Exception as error:  # the guard, inline: a frame less per call
                report(site, error)
            raise
        finally:
            release(token)
        try:
            return on_result(tracker, instance, args, kwargs, result, started)
        except Exception as error:
            report(site, error)
            return result

    return wrapper


def async_wrapper(inst: Instrumentor, handler: CallHandler) -> _patch.WrapperFn:
    """The wrapper for a coroutine method recorded by ``handler``."""
    layer = inst.name
    site = f"instrument.{layer}.{handler.operation}"
    on_result = handler.on_result
    on_error = handler.on_error
    claim = _scope.claim
    release = _scope.release
    report = _guard.report

    async def wrapper(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        tracker = inst.tracker_for(instance)
        if tracker is None:
            return await wrapped(*args, **kwargs)
        token = claim(layer)
        if token is None:
            return await wrapped(*args, **kwargs)
        started = _perf_ns()
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            try:
                on_error(tracker, instance, args, kwargs, exc, started)
            except Exception as error:  # the guard, inline: a frame less per call
                report(site, error)
            raise
        finally:
            release(token)
        try:
            return on_result(tracker, instance, args, kwargs, result, started)
        except Exception as error:
            report(site, error)
            return result

    return wrapper
