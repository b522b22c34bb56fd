"""wrapt's ObjectProxy, typed: generic in wrapt 2's stubs, a plain class at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import wrapt

__all__ = ["ObjectProxy"]

if TYPE_CHECKING:
    ObjectProxy = wrapt.ObjectProxy[Any]
else:
    ObjectProxy = wrapt.ObjectProxy
