"""A seeded, realistic workload: a month of tasks for customers of very different sizes.

For tests, benchmarks and ``dexcost demo-data``: customers follow a Zipf-like skew,
each task type has its own models, paid services and number of calls, about 5% of
LLM calls fail and are retried (rate limits, timeouts, parse errors), a few tasks
fail, some have a sub-task, and a few calls go to a model with no known price.
Optional planted anomalies: a customer's bulk job, a task type whose runs get
several times dearer, and a day of retry storms.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from dexcost._ids import uuid7
from dexcost._models import Event, Task

UTC = timezone.utc
D = Decimal

#: (provider, model, input price, output price per token); None prices: unpriced.
MODELS = {
    "gpt-4o": ("openai", "gpt-4o-2024-08-06", D("0.0000025"), D("0.00001")),
    "gpt-4o-mini": ("openai", "gpt-4o-mini-2024-07-18", D("0.00000015"), D("0.0000006")),
    "sonnet": ("anthropic", "claude-sonnet-4-5-20250929", D("0.000003"), D("0.000015")),
    "haiku": ("anthropic", "claude-haiku-4-5-20251001", D("0.000001"), D("0.000005")),
}
UNPRICED = ("acme-ai", "acme-llm-2")
#: Paid non-LLM services: (service_name, event type, price per call).
SERVICES = {
    "pinecone": ("pinecone", "external_cost", D("0.00033")),
    "maps": ("google_maps_api", "external_cost", D("0.005")),
    "clearbit": ("clearbit", "external_cost", D("0.1")),
    "lambda": ("aws_lambda", "compute_cost", D("0.0000166667")),
}
#: Task type → (models used, LLM calls range, services used, tokens in/out scale).
TASK_TYPES: dict[str, tuple[tuple[str, ...], tuple[int, int], tuple[str, ...], int]] = {
    "resolve_ticket": (("gpt-4o", "gpt-4o-mini"), (4, 9), ("pinecone", "lambda"), 3000),
    "generate_report": (("sonnet",), (3, 6), ("maps", "lambda"), 6000),
    "classify_lead": (("gpt-4o-mini",), (1, 3), ("clearbit",), 800),
    "summarize_call": (("haiku", "sonnet"), (2, 5), ("lambda",), 9000),
    "draft_email": (("gpt-4o",), (1, 4), (), 1500),
}
RETRY_REASONS = (("rate_limit", 0.55), ("timeout", 0.3), ("parse_error", 0.15))


@dataclass
class Planted:
    """An anomaly the workload was built with: what, for whom, on which UTC day."""

    kind: str
    subject: str | None
    day: date


@dataclass
class Workload:
    """The tasks and events of a generated workload, and what was planted in it."""

    tasks: list[Task] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)


def generate(
    *,
    seed: int = 7,
    days: int = 30,
    tasks_per_day: int = 200,
    customers: int = 30,
    end: datetime | None = None,
    anomalies: Iterable[str] = (),
) -> Workload:
    """Build a workload of ``days`` UTC days ending with the day of ``end`` (default now).

    ``anomalies`` names the anomalies to plant: ``"customer"`` (a mid-sized customer
    runs six times its usual tasks on the day before the last), ``"task_type"``
    (``generate_report`` runs cost four times more over the last three days) and
    ``"retries"`` (a day, a week before the end, where 45% of calls are retried).
    """
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).astimezone(UTC)
    last_day = end.date()
    first_day = last_day - timedelta(days=days - 1)
    names = [f"cust-{i:03d}" for i in range(customers)]
    weights = [1 / (i + 1) ** 1.2 for i in range(customers)]
    planted = set(anomalies)
    work = Workload(customers=names)
    bulk = names[min(4, customers - 1)]
    bulk_day = last_day - timedelta(days=1)
    storm_day = last_day - timedelta(days=7)
    pricey_from = last_day - timedelta(days=2)
    if "customer" in planted:
        work.planted.append(Planted("customer_spike", bulk, bulk_day))
    if "task_type" in planted:
        work.planted.append(Planted("task_type_cost", "generate_report", pricey_from))
    if "retries" in planted:
        work.planted.append(Planted("retry_spike", None, storm_day))
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        span = min(86400.0, (end - midnight).total_seconds()) if day == last_day else 86400.0
        count = max(1, round(tasks_per_day * rng.uniform(0.9, 1.1) * span / 86400))
        chosen = rng.choices(names, weights, k=count)
        if "customer" in planted and day == bulk_day:
            usual = round(count * weights[names.index(bulk)] / sum(weights))
            chosen += [bulk] * (5 * max(usual, 4))
        retry_rate = 0.45 if "retries" in planted and day == storm_day else 0.05
        for customer in chosen:
            started = midnight + timedelta(seconds=rng.uniform(0, max(span - 120, 1)))
            task_type = rng.choice(list(TASK_TYPES))
            scale = 4 if "task_type" in planted and task_type == "generate_report" else 1
            if day < pricey_from:
                scale = 1
            _task(work, rng, customer, task_type, started, retry_rate, scale)
    return work


def _task(
    work: Workload,
    rng: random.Random,
    customer: str,
    task_type: str,
    started: datetime,
    retry_rate: float,
    scale: int,
) -> None:
    failed = rng.random() < 0.03
    root = Task(
        task_id=uuid7(),
        task_type=task_type,
        started_at=started,
        customer_id=customer,
        project_id="default",
        status="failed" if failed else "success",
        error_type="timeout" if failed else None,
    )
    family = [root]
    if rng.random() < 0.2:
        family.append(
            Task(
                task_id=uuid7(),
                task_type="lookup",
                started_at=started + timedelta(seconds=1),
                customer_id=customer,
                project_id="default",
                parent_task_id=root.task_id,
                status="success",
            )
        )
    models, calls, services, tokens = TASK_TYPES[task_type]
    at = started
    events: list[Event] = []
    for _ in range(rng.randint(*calls)):
        at += timedelta(seconds=rng.uniform(0.5, 4))
        key = rng.choice(models)
        tin = int(tokens * scale * rng.uniform(0.5, 1.5))
        tout = int(tin * rng.uniform(0.05, 0.25))
        if rng.random() < retry_rate:
            reason = rng.choices([r for r, _ in RETRY_REASONS], [w for _, w in RETRY_REASONS])[0]
            first = _llm(root, key, tin, tout, at, error=reason)
            events.append(first)
            at += timedelta(seconds=rng.uniform(1, 8))
            events.append(_llm(root, key, tin, tout, at, retry=(reason, first.event_id)))
        else:
            events.append(_llm(family[-1] if rng.random() < 0.3 else root, key, tin, tout, at))
    if rng.random() < 0.01:
        events.append(_llm(root, None, tokens, tokens // 10, at + timedelta(seconds=1)))
    for service in services:
        name, kind, price = SERVICES[service]
        units = rng.randint(1, 3) if kind == "external_cost" else rng.randint(200, 3000)
        at += timedelta(seconds=rng.uniform(0.1, 1))
        events.append(_service(family[-1], name, kind, price * units, at))
    for task in family:
        task.ended_at = at + timedelta(seconds=1)
    _roll_up(family, events)
    work.tasks.extend(family)
    work.events.extend(events)


def _llm(
    task: Task,
    key: str | None,
    tin: int,
    tout: int,
    at: datetime,
    *,
    error: str | None = None,
    retry: tuple[str, uuid.UUID] | None = None,
) -> Event:
    if key is None:
        provider, model = UNPRICED
        cost, confidence, source = D(0), "unknown", "unknown"
    else:
        provider, model, p_in, p_out = MODELS[key]
        # A rate-limited call is refused before any work: it bills nothing.
        cost = D(0) if error == "rate_limit" else p_in * tin + (D(0) if error else p_out * tout)
        confidence, source = "computed", "litellm"
    return Event(
        event_id=uuid7(),
        task_id=task.task_id,
        event_type="llm_call",
        cost_usd=cost,
        cost_confidence=confidence,
        pricing_source=source,
        occurred_at=at,
        provider=provider,
        model=model,
        input_tokens=tin,
        output_tokens=0 if error else tout,
        cached_tokens=0,
        latency_ms=1200,
        is_retry=retry is not None,
        retry_reason=retry[0] if retry else None,
        retry_of=retry[1] if retry else None,
        error_type=error,
        customer_id=task.customer_id,
        project_id=task.project_id,
        task_type=task.task_type,
    )


def _service(task: Task, name: str, kind: str, cost: Decimal, at: datetime) -> Event:
    return Event(
        event_id=uuid7(),
        task_id=task.task_id,
        event_type=kind,
        cost_usd=cost,
        cost_confidence="exact",
        pricing_source="service_catalog",
        occurred_at=at,
        service_name=name,
        customer_id=task.customer_id,
        project_id=task.project_id,
        task_type=task.task_type,
    )


def _roll_up(family: list[Task], events: list[Event]) -> None:
    """Set totals as the tracker does: each task's own events plus its sub-tasks'."""
    by_id = {t.task_id: t for t in family}
    for e in events:
        task: Task | None = by_id[e.task_id]
        while task is not None:
            task.total_cost_usd += e.cost_usd
            if e.event_type == "llm_call":
                task.llm_cost_usd += e.cost_usd
                task.total_input_tokens += e.input_tokens or 0
                task.total_output_tokens += e.output_tokens or 0
            elif e.event_type == "compute_cost":
                task.compute_cost_usd += e.cost_usd
            else:
                task.external_cost_usd += e.cost_usd
            task.event_count += 1
            if e.is_retry:
                task.retry_count += 1
                task.retry_cost_usd += e.cost_usd
            task = by_id.get(task.parent_task_id) if task.parent_task_id else None


def write(work: Workload, store: object) -> None:
    """Put every task and event of ``work`` into ``store`` (a :class:`LocalStore`) and flush."""
    put_task = store.put_task  # type: ignore[attr-defined]
    put_event = store.put_event  # type: ignore[attr-defined]
    for task in work.tasks:
        put_task(task)
    for event in work.events:
        put_event(event)
    store.flush()  # type: ignore[attr-defined]
