"""Answers from the local store: what tasks and customers cost, retries, unpriced calls.

Every function takes a connection from :func:`dexcost.store.connect_readonly`,
aggregates in SQL and returns typed results with exact :class:`~decimal.Decimal`
money. :func:`to_jsonable` turns any result into JSON-ready values.
"""

from ._export import EXPORT_FORMATS, EXPORT_TABLES, export_rows, write_export
from ._json import to_jsonable
from ._period import Period
from ._report import (
    CustomerSpend,
    RetryReason,
    RetrySummary,
    SpendReport,
    TaskTypeSpend,
    spend_report,
)
from ._tasks import list_tasks
from ._unknown import UnknownCostModel, UnknownCostSummary

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_TABLES",
    "CustomerSpend",
    "Period",
    "RetryReason",
    "RetrySummary",
    "SpendReport",
    "TaskTypeSpend",
    "UnknownCostModel",
    "UnknownCostSummary",
    "export_rows",
    "list_tasks",
    "spend_report",
    "to_jsonable",
    "write_export",
]
