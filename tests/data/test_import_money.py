"""Money as shops export it: refunds as negative rows, repeated lines of an item in one order."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.schema import ORDER_LINES, ORDERS, validate


def _import(tmp_path, monkeypatch, *args: str):
    from portrait.cli import app

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner().invoke(app, ["data", "import", *args])


def _table(tmp_path, name: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "data" / "raw" / f"{name}.parquet")


def test_refunds_are_imported_with_the_order_they_name(tmp_path, monkeypatch):
    pos = tmp_path / "pos.csv"
    pos.write_text("order_id,record_id,ts,amount,Original Order ID\n"
                   "O1,c1,2026-01-02,100,\nO2,c1,2026-01-03,0,\nR1,c1,2026-01-05,-100,O1\n"
                   "R2,c1,2026-01-06,(20.00),O9\nR3,c2,2026-01-06,-5,\n"
                   "O3,c2,2026-01-07,30,O1\nR4,c2,2026-01-08,-1,R4\nR5,c3,2026-01-09,0,O2\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(pos), "-t", "orders", "--set", "source=pos")
    assert done.exit_code == 0, done.output
    got = _table(tmp_path, "orders").set_index("order_id")
    assert got["amount"].to_dict() == {"O1": 100.0, "O2": 0.0, "R1": -100.0, "R2": -20.0, "R3": -5.0, "R5": 0.0}
    assert got.loc["R1", "refund_of"] == "O1" and pd.isna(got.loc["R3", "refund_of"])
    out = " ".join(done.output.split())
    assert "read column 'Original Order ID' as refund_of" in out
    # R5 (0 naming O2) is a refund as the feature build reads it; O2 (0, naming nothing) is a purchase it can name
    assert "4 refund(s)" in out and "4 naming the order" not in out and "3 naming the order" in out and "1 refund(s) name an order not in the table (e.g. 'O9')" in out
    rejects = pd.read_csv(tmp_path / "data" / "rejects" / "orders.csv")
    assert rejects["_data_row"].tolist() == [6, 7]
    assert rejects["_reason"].tolist() == [
        "refund_of: set on a row with a positive amount (a refund's amount is negative)",
        "refund_of: names the row's own order_id"]


def test_a_refund_naming_an_order_imported_earlier_is_not_reported_unknown(tmp_path, monkeypatch):
    first, refunds = tmp_path / "orders.csv", tmp_path / "refunds.csv"
    first.write_text("order_id,record_id,ts,amount\nO1,c1,2026-01-02,100\n", encoding="utf-8")
    refunds.write_text("order_id,record_id,ts,amount,原订单号\nR1,c1,2026-01-05,-40,O1\n", encoding="utf-8")
    assert _import(tmp_path, monkeypatch, str(first), "-t", "orders", "--set", "source=pos").exit_code == 0
    done = _import(tmp_path, monkeypatch, str(refunds), "-t", "orders", "--set", "source=pos", "--append")
    assert done.exit_code == 0, done.output
    assert "not in the table" not in done.output
    assert _table(tmp_path, "orders")["refund_of"].isna().tolist() == [True, False]


LINES = "order_id,item_id,quantity,unit_price\nO1,I1,1,10\nO1,I1,2,13\nO1,I2,1,5\nO2,I1,1,\nO2,I1,1,9\n"


def test_repeated_lines_without_line_no_are_merged_and_said(tmp_path, monkeypatch):
    src = tmp_path / "lines.csv"
    src.write_text(LINES, encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(src), "-t", "order_lines")
    assert done.exit_code == 0, done.output
    assert "merged 2 repeated line(s)" in " ".join(done.output.split())
    got = _table(tmp_path, "order_lines").set_index(["order_id", "item_id"])
    assert got["quantity"].to_dict() == {("O1", "I1"): 3, ("O1", "I2"): 1, ("O2", "I1"): 2}  # no unit lost
    assert got.loc[("O1", "I1"), "unit_price"] == pytest.approx(12.0)  # (10 + 2 x 13) / 3
    assert pd.isna(got.loc[("O2", "I1"), "unit_price"])  # half unpriced: the revenue would be a guess
    assert not (tmp_path / "data" / "rejects" / "order_lines.csv").exists()


@pytest.mark.parametrize("how", [[], ["--append"]])
def test_importing_the_same_lines_again_does_not_double_count(tmp_path, monkeypatch, how):
    src, numbered = tmp_path / "lines.csv", tmp_path / "numbered.csv"
    src.write_text(LINES, encoding="utf-8")
    numbered.write_text("order_id,行号,item_id,quantity\nO1,1,I1,1\nO1,2,I1,2\nO3,1,I1,4\n", encoding="utf-8")
    for path in (src, src, numbered, numbered):
        done = _import(tmp_path, monkeypatch, str(path), "-t", "order_lines", *how)
        assert done.exit_code == 0, done.output
    got = _table(tmp_path, "order_lines")
    # O1 numbered replaces O1 merged: the file's lines of an order are all of its lines
    assert got.groupby("order_id")["quantity"].sum().to_dict() == {"O1": 3, "O2": 2, "O3": 4}
    assert sorted(got.loc[got["order_id"] == "O1", "line_no"]) == ["1", "2"]


def test_with_line_no_two_lines_of_an_item_are_kept_and_a_repeated_line_is_rejected():
    df = pd.DataFrame({"order_id": ["O1", "O1", "O1", "O2"], "line": ["1", "2", "2", "1"],
                       "item_id": ["I1", "I1", "I1", "I1"], "quantity": [1, 2, 2, 1]}).rename(columns={"line": "line_no"})
    res = validate(df, ORDER_LINES, "lines.csv")
    assert res.accepted["quantity"].tolist() == [1, 2, 1] and res.folded == 0
    assert res.rejects["_data_row"].tolist() == [3]
    assert res.rejects["_reason"].tolist() == ["duplicate key ['order_id', 'line_no']"]


def test_tables_written_before_the_new_columns_still_merge(tmp_path, monkeypatch):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    old = validate(pd.DataFrame({"order_id": ["O1"], "source": ["pos"], "record_id": ["c1"], "ts": ["2026-01-02"],
                                 "amount": [10]}), ORDERS).accepted.drop(columns="refund_of")
    old.to_parquet(raw / "orders.parquet", index=False)
    src = tmp_path / "web.csv"
    src.write_text("order_id,record_id,ts,amount,refund_of\nW1,c9,2026-01-03,-10,O1\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(src), "-t", "orders", "--set", "source=web")
    assert done.exit_code == 0, done.output
    got = _table(tmp_path, "orders")
    assert got["order_id"].tolist() == ["O1", "W1"] and got["refund_of"].isna().tolist() == [True, False]
