"""Schema version 2: the daily roll-up the insights read, and the finance tables.

``event_days`` holds, per UTC day and attribution, the count, exact cost and tokens of
the events; triggers keep it equal to ``events`` on every insert, upsert and delete,
so a month of spend is read from a few thousand rows instead of a million. Key
columns are NOT NULL (``''`` stands for a missing value) so upserts can match them.

``revenue``, ``adjustments``, ``invoices``/``invoice_lines`` and ``anomaly_state``
hold what ``dexcost revenue import``, statements, ``dexcost reconcile`` and the
anomaly notifier write.
"""

from __future__ import annotations

#: The attribution columns of ``event_days`` (its key, after ``day``).
ROLLUP_KEYS: tuple[str, ...] = (
    "customer_id",
    "task_type",
    "event_type",
    "provider",
    "model",
    "service_name",
    "is_retry",
    "retry_reason",
    "unknown",
)


def _values(row: str) -> str:
    """The key and measure values of one event row (``NEW`` or ``OLD``) for the roll-up."""
    return (
        f"substr({row}.occurred_at, 1, 10), COALESCE({row}.customer_id, ''),"
        f" COALESCE({row}.task_type, ''), {row}.event_type, COALESCE({row}.provider, ''),"
        f" COALESCE({row}.model, ''), COALESCE({row}.service_name, ''), {row}.is_retry != 0,"
        f" COALESCE({row}.retry_reason, ''), {row}.cost_confidence = 'unknown',"
    )


def _measures(row: str, sign: str) -> str:
    """The measure values of one event row, added (``+``) or removed (``-``)."""
    return (
        f" {sign}1, {sign}COALESCE({row}.cost_pico / 1000000, 0),"
        f" {sign}COALESCE({row}.cost_pico % 1000000, 0), {sign}({row}.cost_pico IS NULL),"
        f" {sign}COALESCE({row}.input_tokens, 0), {sign}COALESCE({row}.output_tokens, 0),"
        f" {sign}COALESCE({row}.cached_tokens, 0), {sign}COALESCE({row}.cache_creation_tokens, 0)"
    )


#: ``INSERT INTO event_days (...)``: the head of every roll-up upsert.
INTO_EVENT_DAYS = (
    f"INSERT INTO event_days ({', '.join(('day', *ROLLUP_KEYS))}, n, cost_hi, cost_lo, big,"
    " input_tokens, output_tokens, cached_tokens, cache_creation_tokens)"
)
#: The tail of every roll-up upsert: an existing key row gets the measures added.
ADD_ON_CONFLICT = (
    f" ON CONFLICT ({', '.join(('day', *ROLLUP_KEYS))}) DO UPDATE SET n = n + excluded.n,"
    " cost_hi = cost_hi + excluded.cost_hi, cost_lo = cost_lo + excluded.cost_lo,"
    " big = big + excluded.big, input_tokens = input_tokens + excluded.input_tokens,"
    " output_tokens = output_tokens + excluded.output_tokens,"
    " cached_tokens = cached_tokens + excluded.cached_tokens,"
    " cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens"
)


def _apply(row: str, sign: str) -> str:
    """An upsert adding (``sign`` ``+``) or removing (``-``) one event from the roll-up."""
    return f"{INTO_EVENT_DAYS} VALUES ({_values(row)}{_measures(row, sign)}){ADD_ON_CONFLICT};"


#: The attribution columns of ``task_days`` (its key, after ``day``).
TASK_ROLLUP_KEYS: tuple[str, ...] = ("customer_id", "task_type", "is_root", "status")


def _task_apply(row: str, sign: str) -> str:
    """An upsert adding or removing one task (``NEW``/``OLD``) from ``task_days``."""
    keys = ", ".join(("day", *TASK_ROLLUP_KEYS))
    sums = ("n", "cost_hi", "cost_lo", "big", "retry_hi", "retry_lo", "retried", "retries")
    return (
        f"INSERT INTO task_days ({keys}, {', '.join(sums)})"
        f" VALUES (substr({row}.started_at, 1, 10), COALESCE({row}.customer_id, ''),"
        f" {row}.task_type, {row}.parent_task_id IS NULL, {row}.status, {sign}1,"
        f" {sign}COALESCE({row}.total_cost_pico / 1000000, 0),"
        f" {sign}COALESCE({row}.total_cost_pico % 1000000, 0),"
        f" {sign}({row}.total_cost_pico IS NULL OR {row}.retry_cost_pico IS NULL),"
        f" {sign}COALESCE({row}.retry_cost_pico / 1000000, 0),"
        f" {sign}COALESCE({row}.retry_cost_pico % 1000000, 0),"
        f" {sign}({row}.retry_count > 0), {sign}{row}.retry_count)"
        f" ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"{c} = {c} + excluded.{c}" for c in sums)
        + ";"
    )


_TASK_WATCHED = (
    "started_at, customer_id, task_type, parent_task_id, status, total_cost_pico,"
    " retry_cost_pico, retry_count"
)

# The columns whose change moves an event in the roll-up (synced_at is not one).
_WATCHED = (
    "occurred_at, customer_id, task_type, event_type, provider, model, service_name,"
    " is_retry, retry_reason, cost_confidence, cost_pico, input_tokens, output_tokens,"
    " cached_tokens, cache_creation_tokens"
)

V2: list[str] = [
    f"""
    CREATE TABLE event_days (
        day                   TEXT NOT NULL,
        customer_id           TEXT NOT NULL,
        task_type             TEXT NOT NULL,
        event_type            TEXT NOT NULL,
        provider              TEXT NOT NULL,
        model                 TEXT NOT NULL,
        service_name          TEXT NOT NULL,
        is_retry              INTEGER NOT NULL,
        retry_reason          TEXT NOT NULL,
        unknown               INTEGER NOT NULL,
        n                     INTEGER NOT NULL,
        cost_hi               INTEGER NOT NULL,
        cost_lo               INTEGER NOT NULL,
        big                   INTEGER NOT NULL,
        input_tokens          INTEGER NOT NULL,
        output_tokens         INTEGER NOT NULL,
        cached_tokens         INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        PRIMARY KEY (day, {", ".join(ROLLUP_KEYS)})
    ) WITHOUT ROWID
    """,
    f"""
    INSERT INTO event_days
    SELECT substr(occurred_at, 1, 10), COALESCE(customer_id, ''), COALESCE(task_type, ''),
           event_type, COALESCE(provider, ''), COALESCE(model, ''), COALESCE(service_name, ''),
           is_retry != 0, COALESCE(retry_reason, ''), cost_confidence = 'unknown',
           count(*), COALESCE(SUM(cost_pico / 1000000), 0), COALESCE(SUM(cost_pico % 1000000), 0),
           SUM(cost_pico IS NULL), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
           COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cache_creation_tokens), 0)
    FROM events GROUP BY {", ".join(str(i) for i in range(1, 11))}
    """,
    f"CREATE TRIGGER event_days_insert AFTER INSERT ON events BEGIN {_apply('NEW', '+')} END",
    f"CREATE TRIGGER event_days_update AFTER UPDATE OF {_WATCHED} ON events"
    f" BEGIN {_apply('OLD', '-')} {_apply('NEW', '+')} END",
    f"CREATE TRIGGER event_days_delete AFTER DELETE ON events BEGIN {_apply('OLD', '-')} END",
    f"""
    CREATE TABLE task_days (
        day         TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        task_type   TEXT NOT NULL,
        is_root     INTEGER NOT NULL,
        status      TEXT NOT NULL,
        n           INTEGER NOT NULL,
        cost_hi     INTEGER NOT NULL,
        cost_lo     INTEGER NOT NULL,
        big         INTEGER NOT NULL,
        retry_hi    INTEGER NOT NULL,
        retry_lo    INTEGER NOT NULL,
        retried     INTEGER NOT NULL,
        retries     INTEGER NOT NULL,
        PRIMARY KEY (day, {", ".join(TASK_ROLLUP_KEYS)})
    ) WITHOUT ROWID
    """,
    """
    INSERT INTO task_days
    SELECT substr(started_at, 1, 10), COALESCE(customer_id, ''), task_type,
           parent_task_id IS NULL, status, count(*),
           COALESCE(SUM(total_cost_pico / 1000000), 0), COALESCE(SUM(total_cost_pico % 1000000), 0),
           SUM(total_cost_pico IS NULL OR retry_cost_pico IS NULL),
           COALESCE(SUM(retry_cost_pico / 1000000), 0), COALESCE(SUM(retry_cost_pico % 1000000), 0),
           SUM(retry_count > 0), SUM(retry_count)
    FROM tasks GROUP BY 1, 2, 3, 4, 5
    """,
    f"CREATE TRIGGER task_days_insert AFTER INSERT ON tasks BEGIN {_task_apply('NEW', '+')} END",
    f"CREATE TRIGGER task_days_update AFTER UPDATE OF {_TASK_WATCHED} ON tasks"
    f" BEGIN {_task_apply('OLD', '-')} {_task_apply('NEW', '+')} END",
    f"CREATE TRIGGER task_days_delete AFTER DELETE ON tasks BEGIN {_task_apply('OLD', '-')} END",
    # Percentiles of the cost per run walk this index in cost order; failures are few.
    "CREATE INDEX tasks_type_cost ON tasks (task_type, total_cost_pico, started_at)",
    "CREATE INDEX tasks_failed ON tasks (started_at) WHERE status = 'failed'",
    """
    CREATE TABLE revenue (
        customer_id   TEXT NOT NULL,
        period_start  TEXT NOT NULL,
        period_end    TEXT NOT NULL,
        currency      TEXT NOT NULL,
        amount        TEXT NOT NULL,
        source        TEXT,
        imported_at   TEXT NOT NULL,
        PRIMARY KEY (customer_id, period_start, period_end, currency)
    )
    """,
    """
    CREATE TABLE adjustments (
        adjustment_id TEXT PRIMARY KEY NOT NULL,
        month         TEXT NOT NULL,
        customer_id   TEXT,
        amount_usd    TEXT NOT NULL,
        description   TEXT NOT NULL,
        created_at    TEXT NOT NULL
    )
    """,
    "CREATE INDEX adjustments_month ON adjustments (month, customer_id)",
    """
    CREATE TABLE invoices (
        source_id     TEXT PRIMARY KEY NOT NULL,
        provider      TEXT NOT NULL,
        format        TEXT NOT NULL,
        file_name     TEXT,
        first_day     TEXT,
        last_day      TEXT,
        line_count    INTEGER NOT NULL,
        imported_at   TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE invoice_lines (
        line_id       TEXT PRIMARY KEY NOT NULL,
        source_id     TEXT NOT NULL,
        provider      TEXT NOT NULL,
        format        TEXT NOT NULL,
        day           TEXT NOT NULL,
        end_day       TEXT NOT NULL,
        model         TEXT,
        model_key     TEXT NOT NULL,
        component     TEXT,
        category      TEXT NOT NULL,
        description   TEXT,
        amount_usd    TEXT,
        currency      TEXT,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        cached_tokens INTEGER,
        requests      INTEGER,
        occurrence    INTEGER NOT NULL DEFAULT 0,
        imported_at   TEXT NOT NULL
    )
    """,
    "CREATE INDEX invoice_lines_day ON invoice_lines (provider, day)",
    """
    CREATE TABLE anomaly_state (
        anomaly_id    TEXT PRIMARY KEY NOT NULL,
        kind          TEXT NOT NULL,
        subject       TEXT,
        day           TEXT NOT NULL,
        first_seen_at TEXT NOT NULL,
        notified_at   TEXT
    )
    """,
]
