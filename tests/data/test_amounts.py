"""Money columns as shops export them: one decimal mark per column, currency and grouping removed."""

from __future__ import annotations

import pandas as pd
import pytest

from features.amounts import parse_amounts


@pytest.mark.parametrize("values, expected", [
    (["$1,234.50", "12.00", "(3.50)"], [1234.5, 12.0, -3.5]),
    (["12,50 €", "1.234,50", "7"], [12.5, 1234.5, 7.0]),
    (["1 234,5", "3"], [1234.5, 3.0]),
    (["1\u00a0234,50", "2"], [1234.5, 2.0]),  # no-break space groups thousands in French exports
    (["1'234.50", "CHF 3"], [1234.5, 3.0]),
    (["USD 5", "12.50-", "EUR -3", "5 kr", "88元", "CN¥88", "-$4.00", "$-4"], [5, -12.5, -3, 5, 88, 88, -4, -4]),
    (["1,234", "$2,000"], [1234.0, 2000.0]),  # commas grouping three digits, no decimal evidence
    (["1.234", "2.000"], [1.234, 2.0]),  # no evidence either way: a point is decimal
    (["1.234.567", "2"], [1234567.0, 2.0]),  # two points can only group
    ([" 7 ", "+8"], [7.0, 8.0]),
])
def test_money_text_reads_as_numbers(values, expected) -> None:
    assert parse_amounts(pd.Series(values)).tolist() == pytest.approx(expected)


def test_numbers_pass_through_unchanged() -> None:
    s = pd.Series([1.5, 2.0, -3.25])
    assert parse_amounts(s).tolist() == [1.5, 2.0, -3.25]


def test_a_column_mixing_decimal_marks_names_both_rows() -> None:
    with pytest.raises(ValueError) as err:
        parse_amounts(pd.Series(["1,234.50", "8", "12,50"]), "tx.csv", "total")
    msg = str(err.value)
    assert "tx.csv" in msg and "'total'" in msg and "data row 1" in msg and "data row 3" in msg


@pytest.mark.parametrize("bad, row", [
    (["1", "12 units"], 2),  # a word is not a currency code
    (["1", None], 2),  # an amount nobody recorded is not zero
    (["--3", "1"], 1),
    (["1.2.3", "4"], 1),
    (["abc", "4"], 1),
    (["", "4"], 1),
])
def test_unreadable_amounts_name_the_column_row_and_value(bad, row) -> None:
    with pytest.raises(ValueError) as err:
        parse_amounts(pd.Series(bad, dtype="object"), "tx.csv", "amount")
    msg = str(err.value)
    assert "tx.csv" in msg and "'amount'" in msg and f"data row {row}" in msg


def test_inf_and_nan_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="data row 2"):
        parse_amounts(pd.Series([1.0, float("inf")]))
    with pytest.raises(ValueError, match="data row 1"):
        parse_amounts(pd.Series([float("nan"), 1.0]))


def test_amounts_too_large_to_hold_to_the_cent_are_refused_as_the_import_refuses_them() -> None:
    """1e300 read fine and summed to inf in the holdout spend; the import already refused from 2**46 on."""
    assert parse_amounts(pd.Series(["70,368,744,177,663.99", "-5"])).tolist() == [70368744177663.99, -5.0]
    with pytest.raises(ValueError, match=r"'total' holds 1 amount\(s\) too large to hold to the cent .*"
                                         r"at data row 2"):
        parse_amounts(pd.Series([12.0, 1e300]), "tx.csv", "total")  # a Parquet float column


@pytest.mark.parametrize("values, expected", [
    (["12.-", "3"], [12.0, 3.0]),  # Swiss/German whole amounts are not negatives
    (["12,- €", "3,50"], [12.0, 3.5]),
    (["1.385,- €", "7"], [1385.0, 7.0]),  # the mark before the dash is decimal: 1.385,- is 1385
    (["US$5", "HK$ 1,000", "R$ 7", "RMB 3", "12 Kč"], [5.0, 1000.0, 7.0, 3.0, 12.0]),
])
def test_whole_amounts_and_country_prefixed_symbols(values, expected) -> None:
    assert parse_amounts(pd.Series(values)).tolist() == pytest.approx(expected)


@pytest.mark.parametrize("word", ["12 kg", "12 pcs", "12 x", "12 PCS", "BOX 12"])
def test_units_are_not_currencies(word) -> None:
    with pytest.raises(ValueError, match="data row 2"):
        parse_amounts(pd.Series(["1", word]), "tx.csv", "amount")
