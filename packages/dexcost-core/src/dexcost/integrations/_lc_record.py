"""Recording an LLM call from what LangChain reported about it.

Used for the calls no provider patch covered (models dexcost does not patch). The
token convention is LangChain's and dexcost's: input includes cache reads and writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dexcost._money import ZERO
from dexcost.instrument._record import _billed_nothing, classify_error, elapsed_ms

from ._lc_runs import LLMRun
from ._lc_usage import Reading, read_result

if TYPE_CHECKING:
    from dexcost._tracked_task import TrackedTask
    from dexcost._tracker import CostTracker

__all__ = ["ABANDONED", "record_call", "record_lost"]

ABANDONED = "abandoned"  # error type of a task whose run never reported its end


def _target(run: LLMRun, tracker: CostTracker | None) -> TrackedTask | None:
    task = run.task
    if task is not None and not task.ended:
        return task
    return tracker.current() if tracker is not None else None


def record_call(
    run: LLMRun, tracker: CostTracker | None, response: Any, error: BaseException | None
) -> None:
    """Record an LLM run no billing layer covered, from what LangChain reported."""
    task = _target(run, tracker)
    if task is None:
        return
    reading = read_result(response) if response is not None else Reading()
    model = reading.model or run.model or "unknown"
    provider = run.provider or reading.provider or "unknown"
    details: dict[str, Any] = {"integration": "langchain", "run_id": str(run.run_id)}
    latency = elapsed_ms(run.started_ns)
    usage = reading.usage
    if error is not None:
        # No usage for a failed call; a provider that answered with an error status
        # bills nothing, after a timeout or broken connection we cannot know.
        details["error"] = type(error).__name__
        exact = _billed_nothing(error, None)
        task.record_llm_call(
            provider,
            model,
            0,
            0,
            ZERO,
            cost_confidence="exact" if exact else "unknown",
            pricing_source="provider" if exact else "unknown",
            latency_ms=latency,
            details=details,
            error_type=classify_error(error),
        )
    elif reading.cache_hit:
        details["cache_hit"] = True
        if usage is not None:
            details["cached_answer_tokens"] = usage.input_tokens + usage.output_tokens
        task.record_llm_call(
            provider,
            model,
            0,
            0,
            ZERO,
            cost_confidence="exact",
            pricing_source="provider",
            latency_ms=latency,
            details=details,
        )
    elif usage is None:
        details["usage"] = "missing"
        task.record_llm_call(
            provider,
            model,
            0,
            0,
            ZERO,
            cost_confidence="unknown",
            pricing_source="unknown",
            latency_ms=latency,
            details=details,
        )
    else:
        task.record_llm_call(
            provider,
            model,
            usage.input_tokens,
            usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            service_tier=reading.service_tier,
            latency_ms=latency,
            details=details,
        )


def record_lost(run: LLMRun) -> None:
    """An LLM run that never ended: a call happened, its cost is unknown.

    Recorded in the run's task while it is open; once that ended, nothing is left
    that the call could be attributed to honestly.
    """
    task = run.task
    if task is None or task.ended:
        return
    task.record_llm_call(
        run.provider or "unknown",
        run.model or "unknown",
        0,
        0,
        ZERO,
        cost_confidence="unknown",
        pricing_source="unknown",
        details={"integration": "langchain", "run_id": str(run.run_id), "usage": ABANDONED},
    )
