"""The write-back's Feast frame fits the feature store's predicted_tags contract (without importing Feast)."""

from __future__ import annotations

import datetime as dt

import pandas as pd


def test_feast_frame_matches_the_push_contract(world, client) -> None:  # noqa: ANN001
    from features.store import PREDICTED_COLUMNS
    from serving.writeback import feast_frame, history_path

    r = client.post("/tags/writeback", json={"models": ["churn", "ltv", "propensity"], "date": "2024-09-05"},
                    headers={"X-API-Key": "test-key-123"})
    assert r.status_code == 200 and {b["status"] for b in r.json()["batches"]} <= {"written", "skipped"}
    hist = pd.read_parquet(history_path(world.data_dir))
    wide = feast_frame(hist)
    assert set(wide.columns) - {"one_id", "scored_at"} <= set(PREDICTED_COLUMNS)
    assert wide["one_id"].is_unique and len(wide) == len(world.one_ids)
    for col, dtype in PREDICTED_COLUMNS.items():  # the casts push_predicted_tags applies must succeed
        if col in wide.columns:
            wide[col].astype(dtype)
    assert wide["propensity_decile"].between(1, 10).all()
    assert set(wide["churn_tier"]) <= {"low", "medium", "high"}
    assert pd.to_datetime(wide["scored_at"], utc=True).max() <= pd.Timestamp(dt.datetime.now(dt.timezone.utc))
