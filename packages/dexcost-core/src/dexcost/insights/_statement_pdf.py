"""A monthly statement as a PDF a finance team can read: amounts rounded to the cent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from ._pdf import Page, render, text_width
from ._statements import Statement, service_label

_LEFT, _RIGHT, _TOP, _BOTTOM = 50.0, 545.0, 792.0, 60.0
_ROW = 15.0


def cents(value: Decimal | None) -> str:
    """``$1,234.57``; a non-zero amount under half a cent shows as ``<$0.01``."""
    if value is None:
        return "-"
    shown = value.quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    if value and not shown:
        return "<$0.01" if value > 0 else "-<$0.01"
    return f"-${-shown:,.2f}" if shown < 0 else f"${shown:,.2f}"


class _Writer:
    """Lays out rows top to bottom, starting a new page when one is full."""

    def __init__(self, heading: str) -> None:
        self.heading = heading
        self.pages: list[Page] = []
        self.y = 0.0
        self.new_page()

    def new_page(self) -> None:
        page = Page()
        self.pages.append(page)
        if len(self.pages) > 1:
            page.text(_LEFT, _TOP, self.heading + " (continued)", size=9, grey=0.4)
            self.y = _TOP - 25
        else:
            self.y = _TOP

    @property
    def page(self) -> Page:
        return self.pages[-1]

    def need(self, height: float) -> None:
        if self.y - height < _BOTTOM:
            self.new_page()

    def gap(self, height: float = 10) -> None:
        self.y -= height

    def title(self, text: str) -> None:
        self.need(40)
        self.y -= 8
        self.page.text(_LEFT, self.y, text, size=12, bold=True)
        self.y -= 6
        self.page.line(_LEFT, self.y, _RIGHT, self.y, width=0.8)
        self.y -= _ROW

    def table(
        self,
        columns: Sequence[tuple[str, float, str]],
        rows: Sequence[Sequence[str]],
        *,
        bold_last: bool = False,
    ) -> None:
        """``columns`` are (header, x, align); x is the left or right edge by alignment."""
        self.need(_ROW * 2)
        self._row(columns, [c[0] for c in columns], bold=True, grey=0.35, size=8)
        for i, row in enumerate(rows):
            if self.y - _ROW < _BOTTOM:  # a new page repeats the column headers
                self.new_page()
                self._row(columns, [c[0] for c in columns], bold=True, grey=0.35, size=8)
            if i % 2 == 1:
                self.page.box(_LEFT - 4, self.y - 4, _RIGHT - _LEFT + 8, _ROW, grey=0.95)
            last = bold_last and i == len(rows) - 1
            if last:
                self.page.line(_LEFT, self.y + _ROW - 4, _RIGHT, self.y + _ROW - 4)
            self._row(columns, row, bold=last)

    def _row(
        self,
        columns: Sequence[tuple[str, float, str]],
        cells: Sequence[str],
        *,
        bold: bool = False,
        grey: float = 0.0,
        size: float = 9,
    ) -> None:
        for (_, x, align), cell in zip(columns, cells, strict=True):
            self.page.text(x, self.y, cell, size=size, bold=bold, align=align, grey=grey)
        self.y -= _ROW

    def pairs(self, items: Sequence[tuple[str, str]], *, bold_first: bool = True) -> None:
        for i, (label, value) in enumerate(items):
            self.need(_ROW + 4)
            big = bold_first and i == 0
            self.page.text(_LEFT, self.y, label, size=11 if big else 10, bold=big)
            self.page.text(
                _LEFT + 260, self.y, value, size=11 if big else 10, bold=big, align="right"
            )
            self.y -= _ROW + (4 if big else 0)


def _fit(text: str, width: float, size: float = 9) -> str:
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "...", size) > width:
        text = text[:-1]
    return text + "..."


def statement_pdf(statement: Statement) -> bytes:
    """The PDF bytes of ``statement``."""
    who = statement.customer_id or "Whole workspace"
    first = date.fromisoformat(statement.month + "-01")
    month = first.strftime("%B %Y")
    heading = f"AI cost statement - {who} - {month}"
    w = _Writer(heading)
    page = w.page
    page.text(_LEFT, w.y, "AI cost statement", size=20, bold=True)
    page.text(_RIGHT, w.y, month, size=14, bold=True, align="right")
    w.y -= 22
    page.text(_LEFT, w.y, f"Customer: {who}", size=11)
    page.text(_RIGHT, w.y, f"Time zone: {statement.period.tz}", size=9, align="right", grey=0.4)
    w.y -= 14
    generated = statement.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    page.text(_LEFT, w.y, f"Generated {generated} by dexcost", size=9, grey=0.4)
    w.gap(20)

    w.title("Summary")
    w.pairs(
        [
            ("Total for the month", cents(statement.total_usd)),
            ("Usage", cents(statement.usage_usd)),
            ("Credits and adjustments", cents(statement.adjustments_usd)),
            ("Tasks", f"{statement.task_count:,}"),
            ("Average cost per task", cents(statement.avg_cost_per_task_usd)),
            ("Of which retries", cents(statement.retry_cost_usd)),
        ]
    )
    w.gap()

    w.title("Usage by service")
    columns = [
        ("SERVICE", _LEFT, "left"),
        ("MODEL", _LEFT + 110, "left"),
        ("CALLS", _LEFT + 300, "right"),
        ("TOKENS IN", _LEFT + 365, "right"),
        ("TOKENS OUT", _LEFT + 430, "right"),
        ("AMOUNT", _RIGHT, "right"),
    ]
    rows = []
    for line in statement.lines:
        tokens = line.kind == "llm"
        rows.append(
            [
                _fit(line.service, 105),
                _fit(line.model or "", 150),
                f"{line.calls:,}",
                f"{line.input_tokens:,}" if tokens else "",
                f"{line.output_tokens:,}" if tokens else "",
                cents(line.amount_usd),
            ]
        )
    rows.append(["Usage subtotal", "", "", "", "", cents(statement.usage_usd)])
    w.table(columns, rows, bold_last=True)
    w.gap()

    w.title("Credits and adjustments")
    if statement.adjustments:
        adj_cols = [
            ("DESCRIPTION", _LEFT, "left"),
            ("CUSTOMER", _LEFT + 300, "left"),
            ("AMOUNT", _RIGHT, "right"),
        ]
        adj_rows = [
            [_fit(a.description, 290), a.customer_id or "", cents(a.amount_usd)]
            for a in statement.adjustments
        ]
        adj_rows.append(["Total adjustments", "", cents(statement.adjustments_usd)])
        w.table(adj_cols, adj_rows, bold_last=True)
    else:
        w.need(_ROW)
        w.page.text(_LEFT, w.y, "None this month.", size=9, grey=0.4)
        w.y -= _ROW
    w.gap()

    if statement.by_task_type:
        w.title("Tasks by type")
        type_cols = [
            ("TASK TYPE", _LEFT, "left"),
            ("RUNS", _LEFT + 300, "right"),
            ("SPEND", _RIGHT, "right"),
        ]
        w.table(
            type_cols,
            [
                [_fit(t.task_type or "(none)", 280), f"{t.runs:,}", cents(t.amount_usd)]
                for t in statement.by_task_type
            ],
        )
        w.gap()

    w.need(_ROW * 3)
    w.page.line(_LEFT, w.y + 6, _RIGHT, w.y + 6, width=1.2)
    w.page.text(_LEFT, w.y - 10, "TOTAL", size=13, bold=True)
    w.page.text(_RIGHT, w.y - 10, cents(statement.total_usd), size=13, bold=True, align="right")
    w.y -= 30
    unknown = statement.unknown_cost
    if unknown.event_count:
        names = ", ".join(
            f"{service_label(m.provider)} {m.model or m.service_name or ''}".strip()
            for m in unknown.models[:4]
        )
        note = (
            f"Not included: {unknown.event_count:,} calls had no known price ({names}). "
            "They are not free; price them to complete this statement."
        )
        w.need(_ROW)
        w.page.text(_LEFT, w.y, _fit(note, _RIGHT - _LEFT, 8), size=8, grey=0.2)
        w.y -= _ROW
    for number, p in enumerate(w.pages, start=1):
        p.text(
            _LEFT,
            35,
            "Amounts are rounded to the cent; the CSV statement has exact amounts.",
            size=7,
            grey=0.45,
        )
        p.text(_RIGHT, 35, f"Page {number} of {len(w.pages)}", size=7, grey=0.45, align="right")
    return render(w.pages, title=heading)
