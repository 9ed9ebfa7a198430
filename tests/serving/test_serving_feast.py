"""``/score`` on features read from Feast online (``PORTRAIT_SCORE_FEATURES=feast``) against a real repo.

The world (``benchmarks/_serving_world.build_feast_world``) applies portrait's Feast repo to a
contract-shaped feature table, materializes it into the SQLite online store and registers real
LightGBM models trained on the FeatureServices' columns. Checked: the in-memory snapshot holds
what Feast serves online (value for value), both modes give the same scores, and a newly built
and materialized snapshot is picked up by both after a refresh.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from serving.schemas import ScoreRequest

pytestmark = pytest.mark.slow  # Feast import + apply + materialize


@pytest.fixture(scope="module")
def feast_world(tmp_path_factory):  # noqa: ANN201
    from benchmarks._serving_world import build_feast_world

    return build_feast_world(tmp_path_factory.mktemp("feastworld"), n_users=120)


def _loader(world, mode: str):  # noqa: ANN001, ANN202
    from serving import logic
    from serving.config import ServeConfig
    from serving.loader import Loader

    cfg = ServeConfig(data_dir=world.data_dir, mlflow_uri=world.uri, poll_seconds=0, score_features=mode)
    loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=logic.prepare)
    loader.refresh()
    return loader


def _scores(loader, ids: list[str]) -> list[dict]:  # noqa: ANN001
    from serving import logic

    return [r.model_dump() for r in logic.score(loader.bundle, ScoreRequest(ids=ids)).results]


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and np.isnan(a)):
        return b is None or (isinstance(b, float) and np.isnan(b)) or b is pd.NA
    return a == b or (isinstance(a, float) and np.isclose(a, float(b)))


def _assert_same_scores(snap: list[dict], online: list[dict]) -> None:
    assert len(snap) == len(online)
    for s, o in zip(snap, online):
        assert (s["one_id"], s["found"]) == (o["one_id"], o["found"])
        assert s["predictions"].keys() == o["predictions"].keys()
        for kind, p in s["predictions"].items():
            q = o["predictions"][kind]
            assert np.isclose(p["score"], q["score"], rtol=1e-9), (s["one_id"], kind)
            assert p["tag"] == q["tag"]


def test_feast_mode_scores_what_snapshot_mode_scores(feast_world) -> None:  # noqa: ANN001
    online, snap = _loader(feast_world, "feast"), _loader(feast_world, "snapshot")
    res = online.bundle.resources
    assert res.store is not None and snap.bundle.resources.store is None
    ids = feast_world.one_ids[:40]
    # the snapshot in memory is what Feast serves online, value for value
    got = res.store.online_dict("churn_v1", ids)
    frame = res.features.frame.set_index("one_id")
    for col, values in got.items():
        if col == "one_id":
            continue
        for one_id, v in zip(ids, values):
            assert _same(v, frame.at[one_id, col]), (one_id, col, v, frame.at[one_id, col])
    request = ids + ["crm:m3", "nobody-known"]  # a source identifier resolves; an unknown id is not found
    a, b = _scores(snap, request), _scores(online, request)
    _assert_same_scores(a, b)
    assert all(r["found"] for r in b[:-1]) and not b[-1]["found"] and b[-2]["one_id"] == feast_world.one_ids[3]
    assert set(b[0]["predictions"]) == {"churn", "ltv", "propensity"}
    for kind in ("churn", "ltv", "propensity"):  # online rows took the encoder + one-row C API, not a DataFrame
        assert online.bundle.model(kind).model._row_encoder is not None, kind
    from serving.writeback import score_all

    now = datetime.now(timezone.utc)
    for kind in ("churn", "ltv", "propensity"):  # online tags are the batch's cohorts (isotonic churn: by raw score)
        batch = score_all(online.bundle, kind, now, now.date()).set_index("one_id")["value"]
        assert [r["predictions"][kind]["tag"] for r in b[:40]] == [batch[i] for i in ids], kind


def test_new_materialized_snapshot_reaches_both_modes(feast_world) -> None:  # noqa: ANN001
    from features.io import write_parquet
    from features.store import open_store

    online, snap = _loader(feast_world, "feast"), _loader(feast_world, "snapshot")
    path = feast_world.data_dir / "features" / "customer_features.parquet"
    table = pd.read_parquet(path)
    latest = table[table["event_timestamp"] == table["event_timestamp"].max()].copy()
    new_cut = pd.Timestamp("2026-04-15", tz="UTC").as_unit("us")
    latest["event_timestamp"] = new_cut
    num = latest.select_dtypes("number").columns
    latest[num[0]] = latest[num[0]].fillna(0) * 3 + 7  # a visibly different week
    write_parquet(pd.concat([table, latest], ignore_index=True), path)
    # a rebuilt snapshot dated before the last materialization end: materialize from its cutoff on
    open_store(feast_world.data_dir).materialize(end=datetime(2026, 5, 2, tzinfo=timezone.utc),
                                                 start=datetime(2026, 4, 14, tzinfo=timezone.utc))
    online.refresh()
    snap.refresh()
    assert snap.bundle.resources.features.as_of == new_cut.isoformat()
    assert online.bundle.resources.features.as_of == new_cut.isoformat()
    one = feast_world.one_ids[5]
    v = online.bundle.resources.store.online_dict("churn_v1", [one])[num[0]][0]
    assert np.isclose(v, latest.set_index("one_id").at[one, num[0]])
    ids = feast_world.one_ids[:30]
    _assert_same_scores(_scores(snap, ids), _scores(online, ids))
