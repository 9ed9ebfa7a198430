"""A merged predicted-tags write never carries scores past the view's TTL (30 days).

Every push merges with the customer's stored row, and the new row's time is the write's: a lookalike
tag written 31 days after a churn batch would otherwise have stamped those scores as fresh, alive
online for another 30 days and read as current by the offline point-in-time join.
"""

from __future__ import annotations

import shutil

import pandas as pd

from features.store import open_store

T0 = pd.Timestamp("2026-05-02T10:00:00Z")
FEATURES = ["predicted_tags:churn_risk", "predicted_tags:churn_tier", "predicted_tags:scored_at",
            "predicted_tags:lookalike_audiences"]


def test_scores_older_than_the_ttl_are_not_carried_into_a_newer_row(feast_data, tmp_path) -> None:
    shutil.copytree(feast_data / "features", tmp_path / "data" / "features")
    store = open_store(tmp_path / "data")
    store.apply()
    assert store.fs.get_feature_view("predicted_tags").ttl == pd.Timedelta(days=30)
    store.push_predicted_tags(pd.DataFrame({"one_id": ["c0000001", "c0000002"], "churn_risk": [0.9, 0.4],
                                            "churn_tier": ["high", "mid"], "scored_at": T0}))
    tags = pd.DataFrame({"one_id": ["c0000001", "c0000002"], "lookalike_audiences": ["a_lal", "a_lal"],
                         "event_timestamp": [T0 + pd.Timedelta(days=29), T0 + pd.Timedelta(days=31)]})
    store.push_predicted_tags(tags)
    latest = store.latest_predicted(["c0000001", "c0000002"])
    assert latest.loc["c0000001", "churn_risk"] == 0.9 and latest.loc["c0000001", "scored_at"] == T0  # 29 days: kept
    assert pd.isna(latest.loc["c0000002", "churn_risk"]) and pd.isna(latest.loc["c0000002", "churn_tier"])
    assert pd.isna(latest.loc["c0000002", "scored_at"]) and latest.loc["c0000002", "lookalike_audiences"] == "a_lal"
    got = store.fs.get_online_features(features=FEATURES, entity_rows=[{"one_id": "c0000002"}]).to_dict()
    assert got["churn_risk"] == [None] and got["lookalike_audiences"] == ["a_lal"]
