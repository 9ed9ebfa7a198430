"""The feature store end to end on a small table: online equals offline, point in time, push write-back."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from features.store import SERVICES, open_store


def _latest(data) -> pd.DataFrame:
    table = pd.read_parquet(data / "features" / "customer_features.parquet")
    return table[table["event_timestamp"] == table["event_timestamp"].max()].set_index("one_id")


def _assert_same(got: pd.DataFrame, want: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        g, w = got[col].to_numpy(dtype=object), want[col].to_numpy(dtype=object)
        g_null, w_null = pd.isna(got[col]).to_numpy(), pd.isna(want[col]).to_numpy()
        assert (g_null == w_null).all(), f"{col}: nulls differ"
        if want[col].dtype.kind == "f":
            np.testing.assert_allclose(g[~g_null].astype(float), w[~w_null].astype(float), err_msg=col)
        else:
            assert list(g[~g_null]) == list(w[~w_null]), col


@pytest.fixture(scope="module")
def store(feast_data, snap):
    store = open_store(feast_data)
    store.apply()
    store.materialize(snap.end)
    return store


def test_services_are_registered(store):
    assert {s.name for s in store.fs.list_feature_services()} == set(SERVICES)
    with pytest.raises(KeyError, match="churn_v9"):
        store.service("churn_v9")


def test_online_equals_offline_latest_snapshot(store, feast_data, snap):
    latest = _latest(feast_data)
    ids = list(latest.index[:50]) + ["nobody"]
    online = store.online("churn_v1", ids).set_index("one_id")
    entity = pd.DataFrame({"one_id": ids, "event_timestamp": snap.end})
    offline = store.historical("churn_v1", entity).set_index("one_id").loc[ids]
    columns = [c for c in latest.columns if c != "event_timestamp"]
    assert list(online.columns) == columns  # service order: features then tags, as in the table
    _assert_same(online.loc[ids[:-1]], latest.loc[ids[:-1]], columns)
    _assert_same(offline.loc[ids[:-1]], latest.loc[ids[:-1]], columns)
    assert online.loc["nobody"].isna().all() and offline.loc["nobody", columns].isna().all()


def test_fast_online_response_equals_feasts_generic_path(store, monkeypatch):
    """The wide store's read hook answers every service exactly as Feast's generic per-view path does."""
    from feast.infra.online_stores.online_store import OnlineStore

    online_store = store.fs._get_provider().online_store
    rows = [["c0000007"], ["c0000008", "nobody", "c0000008", "c0000009"]]
    for service in SERVICES:
        for ids in rows:
            for full in (False, True):
                kw = dict(features=store.service(service), entity_rows={"one_id": ids}, full_feature_names=full)
                fast = store.fs.get_online_features(**kw)
                with monkeypatch.context() as m:
                    m.setattr(type(online_store), "_read_features_per_fv", OnlineStore._read_features_per_fv)
                    generic = store.fs.get_online_features(**kw)
                assert fast.proto == generic.proto, (service, ids, full)
                assert fast.to_dict() == generic.to_dict()


def test_historical_is_point_in_time(store, feast_data, snap):
    table = pd.read_parquet(feast_data / "features" / "customer_features.parquet").set_index(["one_id", "event_timestamp"])
    ids = ["c0000001", "c0000002"]
    mid = datetime(2026, 2, 15, tzinfo=timezone.utc)  # between the two snapshots
    entity = pd.DataFrame({"one_id": ids * 3, "event_timestamp": [snap.cutoffs[0]] * 2 + [mid] * 2 + [snap.end] * 2,
                           "label": range(6)})
    got = store.historical("ltv_v1", entity).sort_values("label").reset_index(drop=True)
    assert list(got["label"]) == list(range(6))  # extra entity columns are carried through
    first = table.xs(pd.Timestamp(snap.cutoffs[0]), level="event_timestamp").loc[ids]
    second = table.xs(pd.Timestamp(snap.cutoffs[1]), level="event_timestamp").loc[ids]
    for rows, want in (([0, 1], first), ([2, 3], first), ([4, 5], second)):
        np.testing.assert_allclose(got.loc[rows, "monetary_90d"].to_numpy(float), want["monetary_90d"].to_numpy(float))
        assert list(got.loc[rows, "frequency_90d"]) == list(want["frequency_90d"])
    before = store.historical("ltv_v1", pd.DataFrame({"one_id": ids, "event_timestamp": datetime(2025, 12, 31, tzinfo=timezone.utc)}))
    assert before["monetary_90d"].isna().all()  # nothing is known before the first cutoff


def test_push_predicted_tags_online_and_offline(store, snap):
    scored = pd.Timestamp("2026-05-02T10:00:00Z")
    tags = pd.DataFrame({"one_id": ["c0000003", "c0000004"], "churn_risk": [0.9, 0.1], "churn_tier": ["high", "low"],
                         "propensity_decile": [10, 1], "lookalike_audiences": ["vip_like", None],
                         "model_name": "churn", "model_version": "3", "scored_at": scored})
    assert store.push_predicted_tags(tags) == 2
    fv = store.fs.get_online_features(features=["predicted_tags:churn_risk", "predicted_tags:churn_tier",
                                                "predicted_tags:propensity_decile", "predicted_tags:lookalike_audiences",
                                                "predicted_tags:ltv", "predicted_tags:model_version"],
                                      entity_rows=[{"one_id": "c0000003"}, {"one_id": "c0000004"}]).to_dict()
    assert fv["churn_risk"] == [0.9, 0.1] and fv["churn_tier"] == ["high", "low"]
    assert fv["propensity_decile"] == [10, 1] and fv["lookalike_audiences"] == ["vip_like", None]
    assert fv["ltv"] == [None, None] and fv["model_version"] == ["3", "3"]
    offline = pd.read_parquet(store.predicted_path)
    assert sorted(offline["one_id"]) == ["c0000003", "c0000004"]
    hist = store.fs.get_historical_features(
        entity_df=pd.DataFrame({"one_id": ["c0000003"], "event_timestamp": [pd.Timestamp("2026-05-03T00:00:00Z")]}),
        features=["predicted_tags:churn_risk", "predicted_tags:churn_tier"]).to_df()
    assert hist["churn_risk"].tolist() == [0.9] and hist["churn_tier"].tolist() == ["high"]
    with pytest.raises(ValueError, match="unknown column"):
        store.push_predicted_tags(tags.assign(churn_score=1.0))


def test_rematerialize_keeps_latest(store, feast_data, snap):
    store.materialize(snap.end)  # nothing new: the online values stay those of the latest snapshot
    latest = _latest(feast_data)
    got = store.online("lookalike_v1", ["c0000005"]).set_index("one_id")
    assert got.loc["c0000005", "aov_365d"] == pytest.approx(latest.loc["c0000005", "aov_365d"])
    assert len(latest) == snap.n


def test_bulk_sqlite_write_keeps_the_newest_row(store):
    """Duplicate keys in one bulk write, or an older row than stored: the newest value wins."""
    import pyarrow as pa

    fv = store.fs.get_feature_view("customer_features")
    online_store = store.fs._get_provider().online_store
    base = store.online("lookalike_v1", ["c0000200"]).drop(columns="one_id").iloc[0]
    ts = pd.Timestamp("2026-06-01T00:00:00Z")
    rows = pd.DataFrame([base.to_dict()] * 3)
    rows.insert(0, "one_id", "c0000200")
    rows["event_timestamp"] = pd.Series([ts, ts + pd.Timedelta(days=2), ts + pd.Timedelta(days=1)]).astype("datetime64[us, UTC]")
    rows["monetary_90d"] = [1.0, 2.0, 3.0]
    table = pa.Table.from_pandas(rows, preserve_index=False)
    online_store.write_arrow(store.fs.config, fv, table)
    assert store.online("lookalike_v1", ["c0000200"])["monetary_90d"].tolist() == [2.0]
    online_store.write_arrow(store.fs.config, fv, table.slice(0, 1))  # older than what is stored
    assert store.online("lookalike_v1", ["c0000200"])["monetary_90d"].tolist() == [2.0]
