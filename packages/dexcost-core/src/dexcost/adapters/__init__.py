"""Capture layers that need no framework: :mod:`dexcost.adapters.http` (paid HTTP APIs)."""

__all__: list[str] = []
