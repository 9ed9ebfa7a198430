"""Canonical schemas: good rows pass typed, bad rows are rejected with a reason, counts reconcile."""

from __future__ import annotations

import pandas as pd
import pytest

from features.schema import EVENTS, IDENTITY_RECORDS, ORDERS, TABLES, SchemaError, validate


def test_good_rows_are_typed():
    df = pd.DataFrame({
        "order_id": ["o1", "o2"], "source": ["pos", "app"], "record_id": ["r1", " r2 "],
        "ts": ["2026-01-02T10:00:00+08:00", "2026-01-03"], "amount": ["10.5", 3],
    })
    res = validate(df, ORDERS)
    assert len(res.rejects) == 0 and len(res.accepted) == 2
    out = res.accepted
    assert str(out["ts"].dtype) == "datetime64[us, UTC]"
    assert out.loc[0, "ts"] == pd.Timestamp("2026-01-02T02:00:00Z")
    assert out.loc[1, "record_id"] == "r2"  # ids trimmed
    assert out["amount"].dtype == "float64"
    assert list(out.columns) == ORDERS.names  # optional columns added as nulls


def test_bad_rows_rejected_with_reasons_and_counts_reconcile():
    df = pd.DataFrame({
        "source": ["app", "app", "app", "web", "app", "app"],
        "record_id": ["a", "b", "c", "d", "e", "f"],
        "event_type": ["view", "teleport", "purchase", "view", "view", "click"],
        "item_id": ["i1", "i2", "i3", None, "i5", "i6"],
        "ts": ["2026-01-01", "2026-01-01", "not a date", "2026-01-01", None, "2026-01-01"],
        "value": ["1", "2", "3", "x", "5", "6"],
    })
    res = validate(df, EVENTS, "events.csv")
    assert res.n_input == len(res.accepted) + len(res.rejects) == 6
    reasons = dict(zip(res.rejects["_data_row"], res.rejects["_reason"]))  # 1-based, below the header
    assert set(reasons) == {2, 3, 4, 5}
    assert reasons[2].startswith("event_type: not one of")
    assert reasons[3].startswith("ts: not a valid timestamp")
    assert reasons[4].startswith("value: not a valid float")
    assert reasons[5] == "ts: missing value"
    assert res.reasons == {"event_type": 1, "ts": 2, "value": 1}


def test_duplicate_keys_rejected_after_first():
    df = pd.DataFrame({"source": ["crm", "crm", "crm"], "record_id": ["1", "1", "2"],
                       "phone": ["138", "139", None], "observed_at": ["2026-01-01"] * 3})
    res = validate(df, IDENTITY_RECORDS)
    assert list(res.accepted["phone"]) == ["138", None] or res.accepted["phone"].isna().iloc[1]
    assert res.rejects["_reason"].tolist() == ["duplicate key ['source', 'record_id']"]


def test_missing_required_column_names_file_and_column():
    df = pd.DataFrame({"order_id": ["o"], "source": ["pos"], "ts": ["2026-01-01"], "amount": [1.0]})
    with pytest.raises(SchemaError, match=r"orders.csv.*'orders'.*\['record_id'\]"):
        validate(df, ORDERS, "orders.csv")


def test_bounds_and_integers():
    df = pd.DataFrame({"order_id": ["o1", "o1", "o2"], "item_id": ["a", "b", "c"], "quantity": ["2", "0", "1.5"]})
    res = validate(df, TABLES["order_lines"])
    assert res.rejects["_reason"].tolist() == ["quantity: below minimum 1", "quantity: not a valid int: 1.5"]
    assert res.accepted["quantity"].tolist() == [2]


def test_a_timestamp_column_is_read_with_one_format():
    """Day-first exports: every row read day-first; element-wise guessing read 04/12 as April 12 beside 27/11."""
    df = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4"], "source": ["pos"] * 4, "record_id": ["r1", "r2", "r3", "r4"],
        "ts": ["04/12/2025 10:00", "27/11/2025 08:30", "05/12/2025 09:00", "32/13/2025 00:00"], "amount": [1, 2, 3, 4],
    })
    res = validate(df, ORDERS, "orders.csv")
    assert [(t.month, t.day) for t in res.accepted["ts"]] == [(12, 4), (11, 27), (12, 5)]
    assert res.reasons == {"ts": 1}  # the impossible date is that row's problem only


def test_a_date_in_another_format_is_rejected_naming_the_columns_format():
    """04/12 + 05/13 make a month-first column: 27/11 is a date, but not in it (it said "not a valid timestamp")."""
    df = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4"], "source": ["pos"] * 4, "record_id": ["r1", "r2", "r3", "r4"],
        "ts": ["04/12/2025 10:00", "05/13/2025 08:30", "27/11/2025 09:00", "not a date"], "amount": [1, 2, 3, 4],
    })
    res = validate(df, ORDERS, "orders.csv")
    reasons = dict(zip(res.rejects["_data_row"] - 1, res.rejects["_reason"]))
    assert reasons == {2: "ts: a date, but not in the column's format MM/DD/YYYY hh:mm (one format per column, "
                          "read from 2 of its values): 27/11/2025 09:00",
                       3: "ts: not a valid timestamp: not a date"}


def test_money_columns_read_shop_exports_and_reject_what_they_cannot():
    df = pd.DataFrame({
        "order_id": list("abcdef"), "source": ["pos"] * 6, "record_id": list("123456"),
        "ts": ["2026-01-01"] * 6,
        "amount": ["$1,234.50", "¥88", "12,50", "abc", "(5.00)", " 7 "],
        "discount": ["1.5", None, "0", "0", "0", "USD 2"],
    })
    res = validate(df, ORDERS, "orders.csv")
    assert res.accepted["amount"].tolist() == [1234.5, 88.0, -5.0, 7.0]  # (5.00): accounting's refund
    assert res.accepted["discount"].tolist()[::3] == [1.5, 2.0] and pd.isna(res.accepted["discount"][1])
    reasons = dict(zip(res.rejects["_data_row"] - 1, res.rejects["_reason"]))
    assert reasons == {2: "amount: not a valid amount: 12,50",  # a decimal comma in a column of decimal points
                       3: "amount: not a valid amount: abc"}


def test_money_too_large_to_hold_to_the_cent_is_rejected_naming_column_and_value():
    """From 2**46 a double skips cents and sums of such amounts run to inf: rejected, never garbage features."""
    df = pd.DataFrame({
        "order_id": list("abcd"), "source": ["pos"] * 4, "record_id": list("1234"), "ts": ["2026-01-01"] * 4,
        "amount": ["70,368,744,177,663.99", "70,368,744,177,664", "(90,000,000,000,000.00)", "12"],
        "discount": ["0", "0", "0", "1e300"],
    })
    res = validate(df, ORDERS, "orders.csv")
    assert res.accepted["amount"].tolist() == [70368744177663.99]
    reasons = dict(zip(res.rejects["_data_row"] - 1, res.rejects["_reason"]))
    too = "too large to hold to the cent (±70,368,744,177,664 or more)"
    assert reasons == {1: f"amount: {too}: 70,368,744,177,664", 2: f"amount: {too}: (90,000,000,000,000.00)",
                       3: "discount: not a valid amount: 1e300"}
    numbers = df.assign(amount=[1.0, 1.8e307, -2.0 ** 46, 5.5], discount=0.0)  # a Parquet file's float column
    res = validate(numbers, ORDERS, "orders.parquet")
    assert res.accepted["amount"].tolist() == [1.0, 5.5]
    assert res.rejects["_reason"].tolist() == [f"amount: {too}: 1.8e+307", f"amount: {too}: -70368744177664.0"]
