"""Turning HTTP capture on and off: which libraries, patched when, removed how.

A library is patched as soon as it is imported: at once if it already is, otherwise
by a post-import hook, so ``track_http()`` never imports an HTTP library the program
does not use. Hooks cannot be unregistered from the import system; each one checks
whether capture is still on and does nothing otherwise, and is registered once per
process. Every patch goes through :mod:`dexcost.instrument._patch` under the owner
``"http"``, so :func:`untrack` restores exactly the original methods.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import wrapt

from dexcost import _guard
from dexcost.instrument import _patch

from ._capture import LAYER, set_tracker

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker

__all__ = ["ALL_HTTP_LIBRARIES", "is_tracking", "patched", "track", "untrack"]

_log = logging.getLogger("dexcost.http")

#: library name -> (import name, pip package, dexcost module patching it)
_LIBRARIES: dict[str, tuple[str, str, str]] = {
    "requests": ("requests", "requests", "._requests"),
    "httpx": ("httpx", "httpx", "._httpx"),
    "httpx2": ("httpx2", "httpx2", "._httpx2"),
    "aiohttp": ("aiohttp", "aiohttp", "._aiohttp"),
    "botocore": ("botocore", "botocore", "._botocore"),
    "urllib3": ("urllib3", "urllib3", "._urllib3"),
}

#: Every name ``track_http(libraries=...)`` accepts.
ALL_HTTP_LIBRARIES: tuple[str, ...] = tuple(_LIBRARIES)

_lock = threading.RLock()
_active = False
_wanted: set[str] = set()
_patches: dict[str, list[_patch.Patch]] = {}
_hooked: set[str] = set()


def _installed(import_name: str) -> bool:
    if import_name in sys.modules:  # None there means the import is blocked
        return sys.modules[import_name] is not None
    try:
        return importlib.util.find_spec(import_name) is not None
    except (ImportError, ValueError):
        return False


def _choose(libraries: Iterable[str] | None) -> list[str]:
    """The libraries to capture: the named ones (all must be installed), else all installed."""
    if libraries is None:
        return [name for name, (module, _, _) in _LIBRARIES.items() if _installed(module)]
    if isinstance(libraries, str):
        raise TypeError(f"libraries must be a list of names, not a str: use [{libraries!r}]")
    names = list(dict.fromkeys(libraries))
    for name in names:
        if name not in _LIBRARIES:
            raise ValueError(
                f"unknown HTTP library {name!r}; choose from {list(ALL_HTTP_LIBRARIES)}"
            )
        module, pip, _ = _LIBRARIES[name]
        if not _installed(module):
            raise ModuleNotFoundError(
                f"cannot capture {name}: the {pip} package is not installed (pip install {pip})",
                name=module,
            )
    return names


def _patch_library(name: str) -> None:
    with _lock:
        if not _active or name not in _wanted or name in _patches:
            return
        module = importlib.import_module(_LIBRARIES[name][2], __package__)
        done: list[_patch.Patch] = []
        try:
            for target, path, wrapper, gate in module.targets():
                patch = _patch.wrap(LAYER, target, path, wrapper, gate)
                if patch is not None:
                    done.append(patch)
        except BaseException:
            for patch in reversed(done):
                _patch.unwrap(patch)
            raise
        _patches[name] = done
        _log.debug("dexcost: capturing HTTP calls made with %s", name)


def _on_import(name: str) -> Any:
    def hook(module: object) -> None:
        # Runs inside the user's import: an error here must not fail their import.
        _guard.call(f"http.patch.{name}", None, _patch_library, name)

    return hook


def track(tracker: CostTracker | None, libraries: Iterable[str] | None) -> list[str]:
    """Capture calls made with ``libraries`` (all installed ones when None); see track_http."""
    global _active
    names = _choose(libraries)
    with _lock:
        set_tracker(tracker)
        _active = True
        _wanted.update(names)
        for name in names:
            import_name = _LIBRARIES[name][0]
            if name not in _hooked:  # runs the hook at once if the library is imported
                _hooked.add(name)
                wrapt.register_post_import_hook(_on_import(name), import_name)
            elif sys.modules.get(import_name) is not None:
                _patch_library(name)  # imported earlier, hooked by an earlier track()
        return sorted(_wanted)


def untrack() -> None:
    """Remove every HTTP patch, restoring the original methods, and stop capturing."""
    global _active
    with _lock:
        _active = False
        _wanted.clear()
        groups = list(_patches.values())
        _patches.clear()
        for group in groups:
            for patch in reversed(group):
                _patch.unwrap(patch)
        set_tracker(None)


def is_tracking() -> bool:
    """True between :func:`track` and :func:`untrack`."""
    return _active


def patched() -> list[str]:
    """The libraries whose methods are patched now (imported and wanted)."""
    with _lock:
        return sorted(_patches)
