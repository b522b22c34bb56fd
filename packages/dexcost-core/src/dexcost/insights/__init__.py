"""Answers from the local store: what tasks and customers cost, waste, margins,
anomalies, statements and reconciliation with provider invoices.

Every function takes a connection from :func:`dexcost.store.connect_readonly` (the
importers a write connection), aggregates in SQL and returns typed results with exact
:class:`~decimal.Decimal` money. :func:`to_jsonable` turns any result into JSON-ready
values.
"""

from ._anomalies import Anomaly, AnomalyReport, find_anomalies
from ._customers import (
    CustomerCost,
    CustomerDetail,
    CustomerReport,
    CustomerTaskType,
    ServiceCost,
    customer_detail,
    customer_report,
)
from ._export import EXPORT_FORMATS, EXPORT_TABLES, export_rows, write_export
from ._focus import FOCUS_COLUMNS, write_focus
from ._health import CostHealth, RetryCause, cost_health
from ._json import to_jsonable
from ._notify import NotifyError, NotifyResult, notify_anomalies, slack_payload
from ._overview import Change, Overview, PeriodTotals, overview
from ._period import Period
from ._reconcile import (
    Charge,
    InvoiceFormatError,
    InvoiceImport,
    InvoiceLine,
    ParsedInvoice,
    Reconciliation,
    ReconLine,
    import_invoice,
    parse_invoice,
    reconcile,
)
from ._report import (
    CustomerSpend,
    RetryReason,
    RetrySummary,
    SpendReport,
    TaskTypeSpend,
    spend_report,
)
from ._revenue import (
    RevenueImport,
    RevenueImportError,
    RevenueRow,
    import_revenue,
    parse_revenue_csv,
)
from ._statement_pdf import statement_pdf
from ._statements import (
    Adjustment,
    Statement,
    StatementLine,
    TaskTypeLine,
    add_adjustment,
    monthly_statement,
    statement_csv,
)
from ._tasks import list_tasks
from ._tasktypes import TaskTypeReport, TaskTypeStats, task_type_report
from ._unknown import UnknownCostModel, UnknownCostSummary

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_TABLES",
    "FOCUS_COLUMNS",
    "Adjustment",
    "Anomaly",
    "AnomalyReport",
    "Change",
    "Charge",
    "CostHealth",
    "CustomerCost",
    "CustomerDetail",
    "CustomerReport",
    "CustomerSpend",
    "CustomerTaskType",
    "InvoiceFormatError",
    "InvoiceImport",
    "InvoiceLine",
    "NotifyError",
    "NotifyResult",
    "Overview",
    "ParsedInvoice",
    "Period",
    "PeriodTotals",
    "ReconLine",
    "Reconciliation",
    "RetryCause",
    "RetryReason",
    "RetrySummary",
    "RevenueImport",
    "RevenueImportError",
    "RevenueRow",
    "ServiceCost",
    "SpendReport",
    "Statement",
    "StatementLine",
    "TaskTypeLine",
    "TaskTypeReport",
    "TaskTypeSpend",
    "TaskTypeStats",
    "UnknownCostModel",
    "UnknownCostSummary",
    "add_adjustment",
    "cost_health",
    "customer_detail",
    "customer_report",
    "export_rows",
    "find_anomalies",
    "import_invoice",
    "import_revenue",
    "list_tasks",
    "monthly_statement",
    "notify_anomalies",
    "overview",
    "parse_invoice",
    "parse_revenue_csv",
    "reconcile",
    "slack_payload",
    "spend_report",
    "statement_csv",
    "statement_pdf",
    "task_type_report",
    "to_jsonable",
    "write_export",
    "write_focus",
]
