"""Money is Decimal end to end: floats, NaN, infinities and negatives are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dexcost
from dexcost._money import to_money


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.005", Decimal("0.005")), (Decimal("1.25"), Decimal("1.25")), (3, Decimal(3))],
)
def test_accepts_decimal_str_and_int(value: object, expected: Decimal) -> None:
    assert to_money(value) == expected
    assert type(to_money(value)) is Decimal


def test_float_is_refused_with_what_to_pass_instead() -> None:
    with pytest.raises(TypeError, match=r"not float .*Decimal\('0.1'\)"):
        to_money(0.1)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", Decimal("NaN")])
def test_non_finite_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_money(value)


@pytest.mark.parametrize("value", ["-0.01", Decimal("-1"), -5])
def test_negative_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="negative"):
        to_money(value)


@pytest.mark.parametrize("value", ["abc", "", "1,5"])
def test_garbage_string_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        to_money(value)


def test_bool_and_other_types_are_refused() -> None:
    with pytest.raises(TypeError):
        to_money(True)
    with pytest.raises(TypeError):
        to_money([1])


def test_float_cost_records_nothing(sdk: dexcost.CostTracker, read) -> None:  # type: ignore[no-untyped-def]
    with dexcost.task("t") as t:
        with pytest.raises(TypeError, match="float"):
            t.record_cost("svc", 0.5)  # type: ignore[arg-type]
        t.record_cost("svc", "0.25")
    assert t.task.total_cost_usd == Decimal("0.25")
    assert [r["cost_usd"] for r in read("SELECT cost_usd FROM events")] == ["0.25"]


amounts = st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False)


@given(st.lists(amounts, max_size=30))
def test_totals_are_exact_decimal_sums(values: list[Decimal]) -> None:
    tracker = dexcost.CostTracker(auto_instrument=[])
    with tracker.task("sum") as t:
        for value in values:
            t.record_cost("svc", value)
    assert t.task.total_cost_usd == sum(values, Decimal(0))
    assert t.task.external_cost_usd == t.task.total_cost_usd
