"""Predicted tags reach portrait's online store through its bulk ``write_arrow``: read back as Feast's push stores them.

``push_predicted_tags`` used Feast's push (every cell a Python protobuf object: ~70% of a 200k-row
write-back); portrait's stores now take the rows through the vectorized encoder materialization uses.
The same rows pushed into a stock Feast store (its own SQLite store and push) must read back the same:
floats, NaN, null strings, a null Int64, the scored_at timestamp, and a row that is null everywhere.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from features.store import open_store

COLUMNS = ["churn_risk", "churn_tier", "ltv", "ltv_tier", "propensity", "propensity_decile", "lookalike_audiences",
           "model_name", "model_version", "scored_at"]


def _rows() -> pd.DataFrame:
    t = pd.Timestamp("2026-05-02T10:00:00Z")
    return pd.DataFrame({
        "one_id": ["c0000001", "c0000002", "c0000003", "c0000004"],
        "churn_risk": [0.25, np.nan, 1e-300, None], "churn_tier": ["high", None, "low", None],
        "ltv": [120.5, 0.0, -3.0, None], "ltv_tier": ["top", "mid", None, None],
        "propensity": [0.5, 0.1, np.nan, None],
        "propensity_decile": pd.array([10, None, 1, None], dtype="Int64"),
        "lookalike_audiences": ["a_lal,b_lal", None, "中文_lal", None],
        "model_name": ["churn", "churn", None, None], "model_version": ["churn=3", "churn=3", None, None],
        "scored_at": [t, t, t, pd.NaT], "event_timestamp": [t] * 4,
    })


def test_bulk_push_reads_back_as_feasts_own_push(feast_data, tmp_path, monkeypatch) -> None:
    stores = []
    for name, stock in (("bulk", False), ("stock", True)):
        data = tmp_path / name
        shutil.copytree(feast_data / "features", data / "features")
        store = open_store(data, stock=stock)
        store.apply()
        if not stock:  # the bulk path never goes through Feast's per-cell push
            monkeypatch.setattr(store.fs, "push", lambda *a, **k: (_ for _ in ()).throw(AssertionError("push")))
        assert store.push_predicted_tags(_rows()) == 4
        monkeypatch.undo()
        stores.append(store)
    bulk, stock = stores
    assert type(bulk.fs._get_provider().online_store).__name__ == "PortraitSqliteOnlineStore"
    assert not hasattr(stock.fs._get_provider().online_store, "write_arrow")  # the anchor is Feast's own path
    features = [f"predicted_tags:{c}" for c in COLUMNS]
    ids = [{"one_id": i} for i in [*_rows()["one_id"], "nobody"]]
    got = bulk.fs.get_online_features(features=features, entity_rows=ids).to_dict()
    want = stock.fs.get_online_features(features=features, entity_rows=ids).to_dict()
    assert got.keys() == want.keys()
    for col in want:
        assert pd.Series(got[col], dtype=object).equals(pd.Series(want[col], dtype=object)), (col, got[col], want[col])
    assert got["churn_tier"][:3] == ["high", None, "low"] and got["lookalike_audiences"][2] == "中文_lal"
