"""Development console: one readable line per event and per ended task, on stderr.

Enabled by ``environment="development"`` (or ``DEXCOST_ENV=development``) so a developer
sees costs as they happen without opening a report.
"""

from __future__ import annotations

import sys
from decimal import Decimal

from ._models import Event, Task


def _money(value: Decimal) -> str:
    return f"${value:.6f}" if value < 1 else f"${value:,.4f}"


def print_event(event: Event) -> None:
    """Write one line describing ``event``."""
    if event.event_type == "llm_call":
        what = f"{event.provider}/{event.model} in={event.input_tokens} out={event.output_tokens}"
        if event.cached_tokens:
            what += f" cached={event.cached_tokens}"
    else:
        what = str(event.service_name)
    flags = ""
    if event.is_retry:
        flags += f" retry({event.retry_reason})"
    if event.error_type:
        flags += f" error={event.error_type}"
    sys.stderr.write(
        f"[dexcost] {event.event_type:<13} {_money(event.cost_usd):>12} "
        f"{event.cost_confidence:<9} {what}{flags} task={str(event.task_id)[:8]}\n"
    )


def print_task(task: Task) -> None:
    """Write one line summarising an ended ``task``."""
    who = f" customer={task.customer_id}" if task.customer_id else ""
    sys.stderr.write(
        f"[dexcost] task {task.task_type!r} {task.status} total={_money(task.total_cost_usd)} "
        f"events={task.event_count} retries={task.retry_count}{who} id={str(task.task_id)[:8]}\n"
    )
