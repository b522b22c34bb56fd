"""Reconciliation: provider exports shaped as published, matched with tracked events."""

from __future__ import annotations

import gzip
from contextlib import closing
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost.insights import (
    InvoiceFormatError,
    Period,
    import_invoice,
    parse_invoice,
    reconcile,
)
from dexcost.insights._reconcile import model_key
from dexcost.insights._reconcile._aws import split_usage_type
from dexcost.insights._reconcile._openai import split_line_item
from dexcost.store import LocalStore, connect_readonly
from dexcost.store._connect import open_write_connection

UTC = timezone.utc
DATA = Path(__file__).parent / "data" / "invoices"
D = Decimal


def day(n: int) -> datetime:
    return datetime(2026, 11, n, 12, 0, tzinfo=UTC)


def llm(n: int, provider: str, model: str, tin: int, tout: int, cost: str | None) -> Event:
    task = uuid7()
    return Event(
        event_id=uuid7(),
        task_id=task,
        event_type="llm_call",
        cost_usd=D(cost or 0),
        cost_confidence="unknown" if cost is None else "computed",
        pricing_source="unknown" if cost is None else "litellm",
        occurred_at=day(n),
        provider=provider,
        model=model,
        input_tokens=tin,
        output_tokens=tout,
        customer_id="acme",
        task_type="t",
    )


def store_with(path: Path, events: list[Event]) -> Path:
    store = LocalStore(path)
    store.put_task(Task(task_id=uuid7(), task_type="t", started_at=day(3)))
    for e in events:
        store.put_event(e)
    store.close()
    return path


def openai_events() -> list[Event]:
    events = []
    for n in (3, 4, 5, 6):
        events += [llm(n, "openai", "gpt-4o-2024-08-06", 100_000, 12_500, "0.375")] * 1
        events += [
            llm(n, "openai", "gpt-4o-2024-08-06", 100_000, 12_500, "0.375") for _ in range(3)
        ]
        events += [llm(n, "openai", "gpt-4o-mini", 100_000, 10_000, "0.021") for _ in range(10)]
    events += [llm(4, "openai", "gpt-9-preview", 100_000, 0, None) for _ in range(3)]
    events.append(llm(4, "anthropic", "claude-sonnet-4-5", 1000, 10, "0.5"))  # another provider
    return events


def load(db: Path, file: str, provider: str) -> Any:
    parsed = parse_invoice(DATA / file, provider)
    with closing(open_write_connection(db)) as w:
        return import_invoice(w, parsed, file_name=file, content=(DATA / file).read_bytes())


def pct(tracked: Decimal, invoiced: Decimal) -> Decimal:
    return ((tracked - invoiced) * 100 / invoiced).quantize(D("0.01"), ROUND_HALF_EVEN)


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
        ("anthropic.claude-sonnet-4-6-v1:0", "Claude4.6Sonnet"),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("openai/gpt-4.1", "gpt-4.1-2025-04-14"),
    ],
)
def test_model_keys_meet(a: str, b: str) -> None:
    assert model_key(a) == model_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("gpt-4o", "gpt-4o-mini"), ("o1", "o1-mini"), ("claude-3-5-sonnet", "claude-3-sonnet")],
)
def test_model_keys_keep_models_apart(a: str, b: str) -> None:
    assert model_key(a) != model_key(b)


def test_openai_line_items() -> None:
    assert split_line_item("gpt-4o-mini-2024-07-18, cached input") == (
        "gpt-4o-mini-2024-07-18",
        "cached input",
    )
    assert split_line_item("web search tool calls") == (None, "web search tool calls")
    assert split_line_item("priority | gpt-5.6-sol, output, long context") == (
        "gpt-5.6-sol",
        "priority output, long context",
    )


def test_openai_costs_api_pages() -> None:
    parsed = parse_invoice(DATA / "openai_costs_api.json", "openai")
    assert parsed.format == "openai-costs-api"
    assert len(parsed.lines) == 19
    first = parsed.lines[0]
    assert (first.day, first.end_day) == (date(2026, 11, 3), date(2026, 11, 4))
    assert first.amount_usd == D("1.0")
    assert first.currency == "USD"
    assert first.input_tokens == 400_000
    mini = parsed.lines[2]  # quantity in 1000_tokens, amount with float noise kept exactly
    assert mini.input_tokens == 1_000_000
    assert mini.amount_usd == D("0.15000000000000002220446049250313080847263336181640625")
    search = [x for x in parsed.lines if x.description == "web search tool calls"]
    assert search
    assert search[0].model is None
    assert search[0].input_tokens is None


def test_openai_dashboard_exports() -> None:
    cost = parse_invoice(DATA / "openai_cost_export.csv", "openai")
    assert cost.format == "openai-cost-csv"
    assert len(cost.lines) == 6
    assert cost.skipped == 1
    assert cost.lines[0].amount_usd == D("1.000000000000000000000000000000")
    assert cost.lines[4].day == date(2026, 11, 4)  # ISO time without an offset is UTC
    usage = parse_invoice(DATA / "openai_usage_export.csv", "openai")
    assert usage.format == "openai-usage-csv"
    assert usage.skipped == 1
    (line,) = usage.lines
    assert (line.input_tokens, line.output_tokens, line.requests) == (400_000, 50_000, 4)
    assert line.amount_usd is None
    api = parse_invoice(DATA / "openai_usage_completions.json", "openai")
    assert api.format == "openai-usage-api"
    assert [x.input_tokens for x in api.lines] == [
        400_000,
        480_000,
    ]


def test_anthropic_exports() -> None:
    cost = parse_invoice(DATA / "anthropic_cost_report.json", "anthropic")
    assert cost.format == "anthropic-cost-api"
    assert [x.amount_usd for x in cost.lines] == [D(3), D("7.5"), D(1), D("3.305"), D("8.25")]
    assert cost.lines[2].model is None
    assert cost.lines[2].component == "web_search"
    ungrouped = parse_invoice(DATA / "anthropic_cost_report_ungrouped.json", "anthropic")
    assert ungrouped.lines[0].model == "*"
    assert ungrouped.lines[0].amount_usd == D("10.5")
    usage = parse_invoice(DATA / "anthropic_usage_report.json", "anthropic")
    (u,) = usage.lines
    assert (u.input_tokens, u.output_tokens, u.cached_tokens) == (1_000_000, 500_000, 50_000)
    console = parse_invoice(DATA / "anthropic_console_cost.csv", "anthropic")
    assert console.format == "anthropic-console-cost-csv"
    assert sum((x.amount_usd or 0 for x in console.lines), D(0)) == D("10.50")
    assert model_key(console.lines[0].model) == model_key("claude-sonnet-4-5-20250929")
    console_usage = parse_invoice(DATA / "anthropic_console_usage.csv", "anthropic")
    assert console_usage.lines[0].input_tokens == 1_000_000


def test_aws_cur_bedrock_rows() -> None:
    parsed = parse_invoice(DATA / "aws_cur2.csv", "aws")
    assert parsed.format == "aws-cur"
    assert parsed.skipped == 1
    usage = [x for x in parsed.lines if x.category == "usage"]
    assert [x.model for x in usage] == ["Claude4.6Sonnet"] * 3 + ["Llama4-Maverick-17B"]
    assert [x.component for x in usage] == [
        "input",
        "output",
        "cache-read-input-token-count",
        "input batch",
    ]
    (tax,) = [x for x in parsed.lines if x.category == "tax"]
    assert tax.amount_usd == D("0.85")
    assert tax.end_day == date(2026, 12, 1)
    assert split_usage_type("USE1-Claude4.6Opus-input-tokens-cross-region-global") == (
        "Claude4.6Opus",
        "input cross region global",
    )


def test_legacy_cur_gzip(tmp_path: Path) -> None:
    text = (DATA / "aws_cur2.csv").read_text()
    header, *rows = text.splitlines()
    legacy = {
        "line_item_usage_start_date": "lineItem/UsageStartDate",
        "line_item_usage_end_date": "lineItem/UsageEndDate",
        "line_item_line_item_type": "lineItem/LineItemType",
        "line_item_product_code": "lineItem/ProductCode",
        "line_item_usage_type": "lineItem/UsageType",
        "line_item_unblended_cost": "lineItem/UnblendedCost",
        "line_item_currency_code": "lineItem/CurrencyCode",
        "product_product_family": "product/productFamily",
    }
    for new, old in legacy.items():
        header = header.replace(new, old)
    path = tmp_path / "cur-00001.csv.gz"
    path.write_bytes(gzip.compress("\n".join([header, *rows]).encode()))
    parsed = parse_invoice(path, "aws")
    assert len(parsed.lines) == 5
    assert parsed.lines[0].amount_usd == D("3.0")


def test_generic_csv_and_its_errors(tmp_path: Path) -> None:
    parsed = parse_invoice(DATA / "generic_invoice.csv", "generic")
    assert [x.provider for x in parsed.lines] == ["openai", "pinecone", "openai"]
    assert parsed.lines[2].category == "tax"
    bad = tmp_path / "bad.csv"
    bad.write_text("date,provider,amount\n2026-11-03,openai,abc\n")
    with pytest.raises(InvoiceFormatError, match="line 2"):
        parse_invoice(bad, "generic")
    bad.write_text("day,amount\n")
    with pytest.raises(InvoiceFormatError, match="missing: date, provider"):
        parse_invoice(bad, "generic")


def test_the_wrong_file_says_what_was_expected() -> None:
    with pytest.raises(InvoiceFormatError, match="not an OpenAI export"):
        parse_invoice(DATA / "anthropic_console_cost.csv", "openai")
    with pytest.raises(InvoiceFormatError, match="Cost and Usage Report"):
        parse_invoice(DATA / "openai_cost_export.csv", "aws")
    with pytest.raises(InvoiceFormatError, match="provider must be"):
        parse_invoice(DATA / "openai_cost_export.csv", "azure")


# --- matching -----------------------------------------------------------------------------


def test_openai_reconciliation(tmp_path: Path) -> None:
    db = store_with(tmp_path / "d.db", openai_events())
    done = load(db, "openai_costs_api.json", "openai")
    assert (done.added, done.replaced, done.unchanged) == (19, 0, 0)
    with closing(connect_readonly(db)) as conn:
        rec = reconcile(conn, "openai")
    assert (rec.first_day, rec.last_day) == (date(2026, 11, 3), date(2026, 11, 7))
    with localcontext(Context(prec=100)):
        tracked = D("0.375") * 16 + D("0.021") * 40
        invoiced = D("1.5") * 3 + D("1.8") + D("0.21") + D("0.105") * 2
        invoiced += D("0.21000000000000002220446049250313080847263336181640625")
        invoiced += D("0.8") + D("0.4") + D("0.25")
        assert rec.tracked_usd == tracked
        assert rec.invoiced_usd == invoiced
        assert rec.variance_pct == pct(tracked, invoiced)
    lines = {(x.day.day, model_key(x.model)): x for x in rec.lines}
    ok = lines[(3, model_key("gpt-4o"))]
    assert ok.variance_pct == 0
    assert not ok.flagged
    assert ok.tracked_calls == 4
    assert not lines[(3, model_key("gpt-4o-mini"))].flagged  # float noise in the amount
    short = lines[(6, model_key("gpt-4o"))]
    assert short.variance_pct == pct(D("1.5"), D("1.8"))
    assert short.flagged
    assert short.cause is not None
    assert short.cause.startswith("missing events")
    unpriced = lines[(4, model_key("gpt-9-preview"))]
    assert unpriced.unpriced_calls == 3
    assert "unpriced model" in (unpriced.cause or "")
    absent = lines[(5, model_key("o3-mini"))]
    assert absent.tracked_calls == 0
    assert "missing events" in (absent.cause or "")
    for n in (5, 6):
        moved = lines[(n, model_key("gpt-4o-mini"))]
        assert moved.flagged
        assert moved.variance_pct == D("100.00")
        assert (moved.cause or "").startswith("price change from 2026-11-05")
    assert all(x.provider == "openai" for x in rec.lines)
    assert {x.model for x in rec.flagged} >= {"gpt-9-preview", "o3-mini-2025-01-31"}
    by_model = {model_key(x.model): x for x in rec.by_model}
    assert by_model[model_key("gpt-4o")].tracked_usd == D("0.375") * 16


def test_importing_twice_does_not_double(tmp_path: Path) -> None:
    db = store_with(tmp_path / "d.db", openai_events())
    load(db, "openai_costs_api.json", "openai")
    with closing(connect_readonly(db)) as conn:
        before = reconcile(conn, "openai")
    again = load(db, "openai_costs_api.json", "openai")
    assert (again.added, again.replaced, again.unchanged) == (0, 0, 19)
    with closing(connect_readonly(db)) as conn:
        after = reconcile(conn, "openai")
        count = conn.execute("SELECT count(*) FROM invoice_lines").fetchone()[0]
    assert after.invoiced_usd == before.invoiced_usd
    assert count == 19
    # A corrected export of the same day replaces the amount.
    changed = (DATA / "openai_costs_api.json").read_text().replace('"value":0.8,', '"value":0.9,')
    path = tmp_path / "corrected.json"
    path.write_text(changed)
    with closing(open_write_connection(db)) as w:
        done = import_invoice(
            w, parse_invoice(path, "openai"), file_name=None, content=path.read_bytes()
        )
    assert (done.added, done.replaced) == (0, 1)
    with closing(connect_readonly(db)) as conn, localcontext(Context(prec=100)):
        assert reconcile(conn, "openai").invoiced_usd == before.invoiced_usd + D("0.1")


def test_two_kinds_of_cost_export_are_flagged(tmp_path: Path) -> None:
    db = store_with(tmp_path / "d.db", openai_events())
    load(db, "openai_costs_api.json", "openai")
    load(db, "openai_cost_export.csv", "openai")
    with closing(connect_readonly(db)) as conn:
        rec = reconcile(conn, "openai")
    assert rec.warnings
    assert "more than one kind of export" in rec.warnings[0]


def test_usage_export_compares_tokens(tmp_path: Path) -> None:
    db = store_with(tmp_path / "d.db", openai_events())
    load(db, "openai_usage_completions.json", "openai")
    with closing(connect_readonly(db)) as conn:
        rec = reconcile(conn, "openai", Period.parse("2026-11-03", "2026-11-06"))
    lines = {x.day.day: x for x in rec.lines if model_key(x.model) == model_key("gpt-4o")}
    assert lines[3].invoiced_usd is None
    assert lines[3].token_variance_pct == 0
    assert lines[6].token_variance_pct == pct(D(450_000), D(540_000))
    assert lines[6].flagged


def test_anthropic_reconciliation(tmp_path: Path) -> None:
    events = [
        llm(3, "anthropic", "claude-sonnet-4-5-20250929", 1_000_000, 500_000, "10.5"),
        llm(4, "anthropic", "claude-sonnet-4-5-20250929", 1_100_000, 550_000, "11.55"),
    ]
    db = store_with(tmp_path / "d.db", events)
    load(db, "anthropic_cost_report.json", "anthropic")
    with closing(connect_readonly(db)) as conn:
        rec = reconcile(conn, "anthropic")
    assert rec.tracked_usd == D("22.05")
    assert rec.invoiced_usd == D("23.055")
    sonnet = [x for x in rec.lines if x.model and "sonnet" in x.model]
    assert [x.flagged for x in sonnet] == [False, False]
    (search,) = [x for x in rec.lines if x.model is None]
    assert search.invoiced_usd == 1
    assert search.flagged
    assert "missing events" in (search.cause or "")
    db2 = store_with(tmp_path / "e.db", events[:1])
    load(db2, "anthropic_cost_report_ungrouped.json", "anthropic")
    with closing(connect_readonly(db2)) as conn:
        whole = reconcile(conn, "anthropic")
    (line,) = whole.lines
    assert line.model is None
    assert line.tracked_usd == line.invoiced_usd == D("10.5")


def test_aws_reconciliation_with_tax(tmp_path: Path) -> None:
    events = [llm(3, "bedrock", "anthropic.claude-sonnet-4-6-v1:0", 1_000_000, 500_000, "10.5")]
    db = store_with(tmp_path / "d.db", events)
    load(db, "aws_cur2.csv", "aws")
    with closing(connect_readonly(db)) as conn:
        rec = reconcile(conn, "aws")
    claude = next(x for x in rec.lines if x.model == "Claude4.6Sonnet")
    assert claude.tracked_usd == D("10.5")
    assert claude.invoiced_usd == D("10.536")
    assert not claude.flagged  # 0.34%: cache reads priced apart, within 5%
    assert [(c.category, c.amount_usd) for c in rec.other_charges] == [("tax", D("0.85"))]
    assert rec.invoice_total_usd == rec.invoiced_usd + D("0.85")
