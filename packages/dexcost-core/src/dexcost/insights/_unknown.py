"""Calls whose price was unknown: counted and named in every report, never taken as free."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ._sql import query


@dataclass(frozen=True)
class UnknownCostModel:
    """Calls to one model or service whose price was unknown."""

    provider: str | None
    model: str | None
    service_name: str | None
    event_count: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class UnknownCostSummary:
    """Calls recorded with ``cost_confidence == "unknown"``: not in any total."""

    event_count: int
    input_tokens: int
    output_tokens: int
    models: tuple[UnknownCostModel, ...]


def unknown_summary(conn: sqlite3.Connection, table: str) -> UnknownCostSummary:
    """The unpriced calls of a groups table (see :func:`~._facts.groups`)."""
    (total,) = query(
        conn,
        "SELECT COALESCE(SUM(n), 0) AS n, COALESCE(SUM(tin), 0) AS tin,"
        f" COALESCE(SUM(tout), 0) AS tout FROM {table} WHERE unknown",
    )
    models = tuple(
        UnknownCostModel(r["provider"], r["model"], r["service_name"], r["n"], r["tin"], r["tout"])
        for r in query(
            conn,
            "SELECT provider, model, service_name, SUM(n) AS n, COALESCE(SUM(tin), 0) AS tin,"
            f" COALESCE(SUM(tout), 0) AS tout FROM {table} WHERE unknown"
            " GROUP BY provider, model, service_name ORDER BY n DESC, provider, model",
        )
    )
    return UnknownCostSummary(total["n"], total["tin"], total["tout"], models)
