"""Real-data loaders: MovieLens 100K and CDNOW counts, and canonical tables that validate."""

from __future__ import annotations

from features.schema import TABLES, validate
from features.sources import cdnow, movielens


def test_movielens_counts(shared_data):
    folder = shared_data / "movielens-100k"
    inter = movielens.load_interactions(folder)
    assert len(inter) == 100_000
    assert inter["user"].nunique() == 943 and inter["item"].nunique() == 1_682
    items = movielens.load_items(folder)
    assert len(items) == 1_682 and items["category"].notna().all()
    for name, df in movielens.load_tables(folder).items():
        res = validate(df, TABLES[name], name)
        assert len(res.rejects) == 0, (name, res.reasons)
    assert len(movielens.load_users(folder)) == 943


def test_cdnow_counts(shared_data):
    tx = cdnow.load_transactions(shared_data / "cdnow" / "CDNOW_master.txt")
    assert len(tx) == 69_659 and tx["customer_id"].nunique() == 23_570
    assert tx["date"].min().year == 1997 and tx["date"].max().strftime("%Y-%m") == "1998-06"
    tables = cdnow.load_tables(shared_data / "cdnow" / "CDNOW_master.txt")
    orders = validate(tables["orders"], TABLES["orders"], "cdnow")
    assert len(orders.accepted) == 69_659 and len(orders.rejects) == 0
