"""``/lookalike`` writes the members' ``lookalike_audiences`` predicted tag to a real Feast repo.

Its own small world (the shared one has no feature store), with portrait's Feast repo applied
(SQLite online store): the expansion's members carry the new audience's name online, their
churn scores written before stay, and the seeds are not tagged.
"""

from __future__ import annotations

import pandas as pd
import pytest

from serving.schemas import LookalikeRequest

pytestmark = pytest.mark.slow  # trains the small world's models + Feast apply


@pytest.fixture(scope="module")
def feast_lal_world(tmp_path_factory):  # noqa: ANN201
    from datetime import datetime, timezone

    from benchmarks._serving_world import build_world
    from features.feast_ext.sample import item_table
    from features.io import write_parquet
    from features.store import open_store

    world = build_world(tmp_path_factory.mktemp("lalworld"))
    cutoff = datetime(2026, 4, 1, tzinfo=timezone.utc)
    write_parquet(item_table(20, [cutoff]), world.data_dir / "features" / "item_features.parquet")  # the repo declares it
    open_store(world.data_dir).apply()
    return world


def test_lookalike_endpoint_tags_found_customers_and_keeps_their_scores(feast_lal_world) -> None:  # noqa: ANN001
    from features.store import open_store
    from serving import audiences, logic
    from serving.config import ServeConfig
    from serving.loader import Loader

    world = feast_lal_world
    store = open_store(world.data_dir)
    ids = list(world.one_ids)
    store.push_predicted_tags(pd.DataFrame({"one_id": ids, "churn_risk": 0.5, "churn_tier": "mid",
                                            "scored_at": pd.Timestamp.now(tz="UTC").floor("s")}))  # fresh: within the 30-day TTL
    cfg = ServeConfig(data_dir=world.data_dir, mlflow_uri=world.uri, poll_seconds=0)
    loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=logic.prepare)
    loader.refresh()
    seeds = ids[:10]
    res = audiences.lookalike(loader.bundle, LookalikeRequest(ids=seeds, reach=15, method="centroid"), world.data_dir)
    assert res.lookalike_tags.startswith("lookalike_audiences: 15 customer(s) updated"), res.lookalike_tags
    found = [m.one_id for m in res.members]
    got = store.fs.get_online_features(
        features=["predicted_tags:lookalike_audiences", "predicted_tags:churn_risk"],
        entity_rows=[{"one_id": i} for i in found + seeds]).to_dict()
    assert got["lookalike_audiences"] == [res.audience_id] * 15 + [None] * 10  # seeds are not "found"
    assert got["churn_risk"] == [0.5] * 25
    off = audiences.lookalike(loader.bundle, LookalikeRequest(ids=seeds, reach=5, method="centroid"), world.data_dir,
                              push=False)
    assert off.lookalike_tags == "skipped: Feast push turned off"


def test_deleting_a_lookalike_audience_takes_its_name_off_the_tag(feast_lal_world) -> None:  # noqa: ANN001
    from features.store import open_store
    from serving import audiences, logic
    from serving.config import ServeConfig
    from serving.loader import Loader

    world = feast_lal_world
    store = open_store(world.data_dir)
    cfg = ServeConfig(data_dir=world.data_dir, mlflow_uri=world.uri, poll_seconds=0)
    loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=logic.prepare)
    loader.refresh()
    ids = list(world.one_ids)
    first = audiences.lookalike(loader.bundle, LookalikeRequest(ids=ids[:10], reach=12, method="centroid"),
                                world.data_dir)
    second = audiences.lookalike(loader.bundle, LookalikeRequest(ids=ids[-10:], reach=12, method="centroid"),
                                 world.data_dir)
    both = sorted({m.one_id for m in first.members} | {m.one_id for m in second.members})

    def tags() -> dict[str, str | None]:
        got = store.fs.get_online_features(features=["predicted_tags:lookalike_audiences"],
                                           entity_rows=[{"one_id": i} for i in both]).to_dict()
        return dict(zip(both, got["lookalike_audiences"]))

    assert any(first.audience_id in (v or "") for v in tags().values())
    res = audiences.delete(world.data_dir, first.audience_id)
    assert res.deleted and res.lookalike_tags.startswith("lookalike_audiences:"), res.lookalike_tags
    after = tags()
    assert not any(first.audience_id in (v or "") for v in after.values())  # the deleted name is gone
    for m in second.members:  # the other audience's members keep theirs
        assert second.audience_id in after[m.one_id].split(",")
    assert not (world.data_dir / "audiences" / f"{first.audience_id}.json").exists()
