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


def test_score_tags_a_customer_as_the_batch_write_back_did(world, client) -> None:  # noqa: ANN001
    """/score's tag of one customer is the cohort the write-back put them in (not a second rule)."""
    from serving.writeback import feast_frame, history_path

    r = client.post("/tags/writeback", json={"models": ["churn", "ltv", "propensity"], "date": "2024-09-05",
                                             "force": True}, headers={"X-API-Key": "test-key-123"})
    assert r.status_code == 200, r.text
    wide = feast_frame(pd.read_parquet(history_path(world.data_dir))).set_index("one_id")
    ids = list(world.one_ids)
    got = client.post("/score", json={"ids": ids, "models": ["churn", "ltv", "propensity"]}).json()["results"]
    names = {"churn": "churn_tier", "ltv": "ltv_tier", "propensity": "propensity_decile"}
    compared = 0
    for row in got:
        for kind, pred in row["predictions"].items():
            assert str(pred["tag"]) == str(wide.at[row["one_id"], names[kind]]), (row["one_id"], kind)
            compared += 1
    assert compared == 3 * len(ids)  # every customer of the world is scored by all three
    assert len({p["predictions"]["ltv"]["tag"] for p in got}) >= 3  # cohorts, not one value for everyone
    # churn is isotonic-calibrated (two probabilities in this world): ties broken by the raw score keep the
    # 20/30/50 % cohorts (they were 0/46/54 %), while the score shown stays the calibrated probability
    assert wide["churn_tier"].value_counts().to_dict() == {"high": 16, "medium": 24, "low": 40}
    churn = [p["predictions"]["churn"] for p in got]
    assert len({p["score"] for p in churn}) == 2 and {p["score"] for p in churn} == set(wide["churn_risk"])


def test_a_skipped_batch_says_how_to_force_it_in_the_http_field(client) -> None:  # noqa: ANN001
    body = {"models": ["ltv"], "date": "2024-09-05"}
    key = {"X-API-Key": "test-key-123"}
    client.post("/tags/writeback", json=body, headers=key)  # written now, or by an earlier test
    r = client.post("/tags/writeback", json=body, headers=key)
    assert r.status_code == 200, r.text
    (batch,) = r.json()["batches"]
    assert batch["status"] == "skipped" and batch["note"].endswith('send "force": true to rewrite it'), batch
    assert "--force" not in batch["note"] and "2024-09-05" in batch["note"]
    r = client.post("/tags/writeback", json={**body, "force": True}, headers=key)
    assert r.json()["batches"][0]["status"] == "written" and r.json()["batches"][0]["note"] is None
