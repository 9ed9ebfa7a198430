"""The same online reads and write-back against a real Redis server (the scale-out online store)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.store import open_store

pytestmark = pytest.mark.redis


@pytest.fixture()
def redis_store(feast_data, redis_url, snap):
    import redis

    host, port = redis_url.split(":")
    redis.Redis(host=host, port=int(port)).flushall()
    store = open_store(feast_data, redis=redis_url)
    store.apply()
    store.materialize(snap.end, start=snap.cutoffs[0])  # a full load: Redis was flushed, the registry was not
    return store


def test_redis_online_equals_latest_snapshot(redis_store, feast_data):
    table = pd.read_parquet(feast_data / "features" / "customer_features.parquet")
    latest = table[table["event_timestamp"] == table["event_timestamp"].max()].set_index("one_id")
    ids = list(latest.index[:40]) + ["nobody"]
    got = redis_store.online("churn_v1", ids).set_index("one_id")
    columns = [c for c in latest.columns if c != "event_timestamp"]
    assert list(got.columns) == columns
    for col in columns:
        g, w = got.loc[ids[:-1], col], latest.loc[ids[:-1], col]
        assert (g.isna().to_numpy() == w.isna().to_numpy()).all(), col
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g.dropna().astype(float), w.dropna().astype(float), err_msg=col)
        else:
            assert list(g.dropna()) == list(w.dropna()), col
    assert got.loc["nobody"].isna().all()


def test_redis_bulk_write_is_readable_by_stock_feast(redis_store, feast_data, redis_url):
    """What the bulk path wrote equals what Feast's row-by-row writer writes for the same rows."""
    import redis

    ids = ["c0000007", "c0000008"]
    bulk = redis_store.online("lookalike_v1", ids)
    host, port = redis_url.split(":")
    redis.Redis(host=host, port=int(port)).flushall()
    assert redis_store.online("lookalike_v1", ids).drop(columns="one_id").isna().all().all()
    rows = pd.read_parquet(feast_data / "features" / "customer_features.parquet")
    rows = rows[rows["one_id"].isin(ids) & (rows["event_timestamp"] == rows["event_timestamp"].max())]
    view = redis_store.fs.get_feature_view("customer_features")
    redis_store.fs.write_to_online_store("customer_features", rows[["one_id", "event_timestamp",
                                                                    *[f.name for f in view.features]]])
    stock = redis_store.online("lookalike_v1", ids)
    pd.testing.assert_frame_equal(bulk, stock)


def test_redis_push_write_back(redis_store):
    tags = pd.DataFrame({"one_id": ["c0000009"], "ltv": [123.5], "ltv_tier": ["high"], "model_name": ["ltv"],
                         "model_version": ["1"], "scored_at": [pd.Timestamp("2026-05-02T00:00:00Z")]})
    redis_store.push_predicted_tags(tags)
    got = redis_store.fs.get_online_features(features=["predicted_tags:ltv", "predicted_tags:ltv_tier",
                                                       "predicted_tags:churn_risk"],
                                             entity_rows=[{"one_id": "c0000009"}]).to_dict()
    assert got["ltv"] == [123.5] and got["ltv_tier"] == ["high"] and got["churn_risk"] == [None]


def test_redis_bulk_write_keeps_the_newest_row(redis_store):
    """Duplicate keys in one write, or an older row than Redis holds: the newest value wins."""
    import pyarrow as pa

    fv = redis_store.fs.get_feature_view("customer_features")
    online_store = redis_store.fs._get_provider().online_store
    base = redis_store.online("lookalike_v1", ["c0000011"]).drop(columns="one_id").iloc[0]
    ts = pd.Timestamp("2026-06-01T00:00:00Z")
    rows = pd.DataFrame([base.to_dict()] * 3)
    rows.insert(0, "one_id", "c0000011")
    rows["event_timestamp"] = [ts, ts + pd.Timedelta(days=2), ts + pd.Timedelta(days=1)]
    rows["monetary_90d"] = [1.0, 2.0, 3.0]
    table = pa.Table.from_pandas(rows, preserve_index=False)
    table = table.cast(pa.schema([pa.field(f.name, pa.timestamp("us", tz="UTC")) if f.name == "event_timestamp"
                                  else f for f in table.schema]))
    assert online_store.write_arrow(redis_store.fs.config, fv, table) == 1
    assert redis_store.online("lookalike_v1", ["c0000011"])["monetary_90d"].tolist() == [2.0]
    older = table.slice(0, 1)  # 2026-06-01 < the stored 2026-06-03: skipped
    assert online_store.write_arrow(redis_store.fs.config, fv, older) == 0
    assert redis_store.online("lookalike_v1", ["c0000011"])["monetary_90d"].tolist() == [2.0]


def test_serving_write_back_goes_to_the_redis_store_serving_reads(redis_store, feast_data, redis_url):
    """With ``PORTRAIT_FEAST_REDIS`` (or ``PORTRAIT_REDIS``) serving reads Redis: its write-back must land there.

    It opened the data folder's SQLite store instead, so /tags/writeback and ``portrait score --write-back``
    wrote tags that a Redis-backed /score or /profile never saw.
    """
    from serving.config import ServeConfig
    from serving.writeback import push_to_feast

    assert ServeConfig.from_env({"PORTRAIT_REDIS": redis_url}).feast_redis == redis_url
    assert ServeConfig.from_env({"PORTRAIT_FEAST_REDIS": redis_url, "PORTRAIT_REDIS": "x:1"}).feast_redis == redis_url
    history = pd.DataFrame({"one_id": ["c0000021"], "tag": ["ltv_tier"], "value": ["high"], "score": [321.0],
                            "model": ["ltv"], "version": ["4"], "date": ["2026-05-02"],
                            "scored_at": [pd.Timestamp("2026-05-02T00:00:00Z")]})
    status = push_to_feast(feast_data, history, redis=ServeConfig.from_env({"PORTRAIT_REDIS": redis_url}).feast_redis)
    assert status.startswith("pushed 1 rows"), status
    got = redis_store.fs.get_online_features(features=["predicted_tags:ltv", "predicted_tags:ltv_tier"],
                                             entity_rows=[{"one_id": "c0000021"}]).to_dict()
    assert got["ltv"] == [321.0] and got["ltv_tier"] == ["high"]
