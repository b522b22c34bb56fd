"""SDK configuration: :class:`DexcostConfig`, API-key validation and environment fallbacks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_ENDPOINT = "https://api.dexcost.io"
_KEY_PREFIXES = {"dx_live_": "live", "dx_test_": "test"}
_STORAGE_MODES = (None, "local", "cloud")


class InvalidAPIKeyError(ValueError):
    """An API key that does not start with ``dx_live_`` or ``dx_test_``."""


def validate_api_key(key: str | None) -> str | None:
    """Return ``"live"``, ``"test"`` or ``None`` (no key); raise for a malformed key."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise InvalidAPIKeyError(f"API key must be a str, not {type(key).__name__}")
    for prefix, kind in _KEY_PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return kind
    shown = key[:8] + "..." if len(key) > 8 else key
    raise InvalidAPIKeyError(
        f"invalid dexcost API key {shown!r}: keys start with 'dx_live_' or 'dx_test_'. "
        "Check DEXCOST_API_KEY, or pass api_key=None to keep everything local."
    )


@dataclass
class DexcostConfig:
    """Global SDK configuration, created by :func:`dexcost.init`."""

    api_key: str | None = None
    storage: str | None = None
    batch_size: int = 100
    flush_interval_seconds: float = 5.0
    buffer_path: str | None = None
    redact_fields: list[str] = field(default_factory=list)
    hash_customer_id: bool = False
    environment: str | None = None
    enable_retry_heuristics: bool = False
    retry_heuristic_window: float | None = None
    retry_heuristic_threshold: float | None = None
    session_idle_timeout: float = 300.0

    def __post_init__(self) -> None:
        validate_api_key(self.api_key)
        if self.storage not in _STORAGE_MODES:
            raise ValueError(f"storage must be 'local', 'cloud' or None, got {self.storage!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise TypeError(f"batch_size must be an int, got {self.batch_size!r}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if not self.flush_interval_seconds > 0:
            raise ValueError(
                f"flush_interval must be a positive number of seconds, "
                f"got {self.flush_interval_seconds!r}"
            )
        if not self.session_idle_timeout > 0:
            raise ValueError(
                f"session_idle_timeout must be positive, got {self.session_idle_timeout!r}"
            )
        self.redact_fields = list(self.redact_fields or [])
        from ._retry import RetryHeuristicEngine

        RetryHeuristicEngine(self.retry_heuristic_window, self.retry_heuristic_threshold)

    @property
    def storage_mode(self) -> str:
        """``"cloud"`` when an API key is set and storage is not ``"local"``, else ``"local"``."""
        if self.api_key and self.storage != "local" and not self.is_dev:
            return "cloud"
        return "local"

    @property
    def key_type(self) -> str | None:
        """``"live"``, ``"test"`` or ``None``."""
        return validate_api_key(self.api_key)

    @property
    def is_sandbox(self) -> bool:
        """True with a ``dx_test_`` key."""
        return self.key_type == "test"

    @property
    def endpoint(self) -> str:
        """The control layer URL: ``DEXCOST_ENDPOINT`` or the hosted default."""
        return os.environ.get("DEXCOST_ENDPOINT") or DEFAULT_ENDPOINT

    @property
    def is_dev(self) -> bool:
        """True when ``environment == "development"`` (console output, no cloud push)."""
        return self.environment == "development"
