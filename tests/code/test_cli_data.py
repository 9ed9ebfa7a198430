"""`portrait data import|validate|load` through the real CLI app."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from portrait.cli import app

runner = CliRunner()


def test_import_with_mapping_and_rejects(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "pos.csv"
    src.write_text("OrderNo,Cust,PaidAt,Total\nA1,c1,2026-03-01 10:00,12.5\nA2,c2,yesterday,3\nA3,c3,2026-03-02,n/a\n")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("table: orders\ncolumns: {order_id: OrderNo, record_id: Cust, ts: PaidAt, amount: Total}\n"
                       "constants: {source: pos}\n")
    res = runner.invoke(app, ["data", "import", str(src), "--mapping", str(mapping)])
    assert res.exit_code == 0, res.output
    out = pd.read_parquet(tmp_path / "data" / "raw" / "orders.parquet")
    assert out["order_id"].tolist() == ["A1"] and out["source"].tolist() == ["pos"]
    rejects = pd.read_csv(tmp_path / "data" / "rejects" / "orders.csv")
    assert sorted(rejects["_reason"].str.split(":").str[0]) == ["amount", "ts"]


def test_import_missing_column_is_clear_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "x.csv"
    src.write_text("order_id,source\no1,pos\n")
    res = runner.invoke(app, ["data", "import", str(src), "--table", "orders"])
    assert res.exit_code == 2
    assert "x.csv" in res.output and "record_id" in res.output
    assert not (tmp_path / "data" / "raw").exists()


def test_import_cli_options_and_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "items.tsv"
    src.write_text("sku\tcat\tprice\nk1\tshoes\t99\nk2\tbags\tabc\n")
    res = runner.invoke(app, ["data", "import", str(src), "-t", "items", "--map", "item_id=sku", "--map", "category=cat"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["data", "validate"]).exit_code == 0
    res = runner.invoke(app, ["data", "import", str(src), "-t", "itemz"])
    assert res.exit_code == 2 and "unknown table 'itemz'" in res.output


def test_load_movielens(tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    res = runner.invoke(app, ["data", "load", "movielens", "--path", str(shared_data / "movielens-100k")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(tmp_path / "data" / "raw" / "events.parquet")) == 100_000


CDNOW = " customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n 00002 19970112  2   12.00\n"


def test_load_warns_about_tables_it_does_not_replace(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "CDNOW_master.txt"
    src.write_text(CDNOW)
    res = runner.invoke(app, ["data", "load", "cdnow", "--path", str(src)])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output  # an empty folder: nothing left over
    items = tmp_path / "items.csv"  # an earlier import of another table, then the same load again
    items.write_text("item_id,category\ni1,books\n")
    assert runner.invoke(app, ["data", "import", str(items), "-t", "items"]).exit_code == 0
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "data" / "raw" / "events.parquet")
    res = runner.invoke(app, ["data", "load", "cdnow", "--path", str(src)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    warning = " ".join(res.output.split())
    assert "warning:" in warning and "still holds events, items from an earlier" in warning, res.output
    assert "orders" not in warning.split("still holds")[1].split("from")[0]  # cdnow replaced its own tables
    assert len(pd.read_parquet(tmp_path / "data" / "raw" / "orders.parquet")) == 2
