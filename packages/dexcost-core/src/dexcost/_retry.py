"""Heuristic retry detection.

A call is flagged as a retry when an earlier call for the same model in the same task
failed with a transient error (rate limit, timeout, 5xx, ...) within a sliding window.
Each failure is consumed by the first call after it, so one failure makes at most one
retry; a retry that fails again is itself retried by the next call (a retry chain).
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass

from ._types import TRANSIENT_ERROR_TYPES

DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class RetryVerdict:
    """The heuristic's decision for one call."""

    is_retry: bool
    confidence: float
    reason: str | None = None
    retry_of: uuid.UUID | None = None


_NOT_RETRY = RetryVerdict(False, 0.0)
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-latest)$")


@functools.lru_cache(maxsize=1024)  # a handful of model names, asked on every call
def model_key(model: str) -> str:
    """The name a retry is matched on: the requested ``gpt-4o-mini`` and the reported
    ``gpt-4o-mini-2024-07-18`` are the same model."""
    return _DATE_SUFFIX.sub("", model.strip().lower())


class RetryHeuristicEngine:
    """Scores how likely a call is a retry of a recent failed call.

    The score is 1.0 right after a transient failure and falls linearly to 0.5 at the
    edge of the window; a non-transient failure (e.g. an invalid request) scores 0.25,
    since such calls are usually corrected rather than retried. A call is flagged when
    its score reaches ``threshold``.
    """

    __slots__ = ("threshold", "window")

    def __init__(self, window: float | None = None, threshold: float | None = None) -> None:
        self.window = DEFAULT_WINDOW_SECONDS if window is None else float(window)
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not self.window > 0:
            raise ValueError(f"retry_heuristic_window must be positive seconds, got {window!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(
                f"retry_heuristic_threshold must be between 0.0 and 1.0, got {threshold!r}"
            )

    def score(self, error_type: str, elapsed: float) -> float:
        """Confidence that a call ``elapsed`` seconds after a failure retries it."""
        if elapsed < 0 or elapsed > self.window:
            return 0.0
        if error_type in TRANSIENT_ERROR_TYPES:
            return 1.0 - 0.5 * (elapsed / self.window)
        return 0.25

    def judge(self, failure: tuple[uuid.UUID, str, float] | None, now: float) -> RetryVerdict:
        """Judge a call made at ``now`` given the last unconsumed failure for its model."""
        if failure is None:
            return _NOT_RETRY
        event_id, error_type, failed_at = failure
        confidence = self.score(error_type, now - failed_at)
        if confidence > 0 and confidence >= self.threshold:
            return RetryVerdict(True, confidence, error_type, event_id)
        return RetryVerdict(False, confidence)
