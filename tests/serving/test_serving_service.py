"""Level 1: the service class itself (no HTTP) with real small models from a real registry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest

from serving.errors import NotFound, ServingError
from serving.schemas import ItemFilters, RecommendRequest, ScoreRequest, SimilarItemsRequest, WritebackRequest


def _run(method, *args):  # noqa: ANN001, ANN202 - the async endpoints, awaited
    return asyncio.run(method(*args))


@pytest.fixture(scope="module")
def svc(world) -> Iterator[object]:  # noqa: ANN001
    mp = pytest.MonkeyPatch()
    for k, v in {"PORTRAIT_DATA_DIR": str(world.data_dir), "PORTRAIT_MLFLOW_URI": world.uri,
                 "PORTRAIT_API_KEY": "k", "PORTRAIT_POLL_SECONDS": "0", "PORTRAIT_FEAST_PUSH": "false"}.items():
        mp.setenv(k, v)
    from serving.service import Portrait

    s = Portrait()
    yield s
    s.loader.stop()
    mp.undo()


def test_ready_with_every_model(svc) -> None:  # noqa: ANN001
    assert svc.__is_ready__()
    assert set(svc.loader.bundle.versions()) == {"churn", "ltv", "propensity", "recommender", "lookalike"}


def test_recommend_known_user_follows_taste(svc, world) -> None:  # noqa: ANN001
    r = _run(svc.recommend, RecommendRequest(user_id=world.one_ids[1], k=5))
    assert r.fallback is None and r.one_id == world.one_ids[1] and len(r.items) == 5
    assert r.model == "recommender" and r.model_version == "1"
    seen = set(pd.read_parquet(world.data_dir / "features" / "interactions.parquet")
               .query("one_id == @world.one_ids[1]")["item_id"])
    assert not seen & {i.item_id for i in r.items}  # exclude_seen
    assert all(int(i.item_id[1:]) % 4 == 1 for i in r.items[:3])  # user 1 buys category c1 only
    by_alias = _run(svc.recommend, RecommendRequest(user_id="crm:m1", k=5))  # a source identifier resolves
    assert by_alias.items == r.items


def test_recommend_filters_exclude_and_fallbacks(svc, world) -> None:  # noqa: ANN001
    u = world.one_ids[2]
    r = _run(svc.recommend, RecommendRequest(user_id=u, k=10, filters=ItemFilters(categories=["c0"], in_stock=True),
                                       exclude=["I000", "I004"]))
    ids = [i.item_id for i in r.items]
    assert ids and all(int(i[1:]) % 4 == 0 and int(i[1:]) % 7 != 0 for i in ids)
    assert "I004" not in ids
    cold = _run(svc.recommend, RecommendRequest(user_id=world.one_ids[-1], k=3))
    assert cold.fallback == "cold_start" and len(cold.items) == 3
    unknown = _run(svc.recommend, RecommendRequest(user_id="13800138000", k=3))
    assert unknown.fallback == "unknown_user" and unknown.one_id is None and len(unknown.items) == 3


def test_similar_items(svc) -> None:  # noqa: ANN001
    r = _run(svc.similar_items, SimilarItemsRequest(item_id="I001", k=4))
    assert len(r.items) == 4 and "I001" not in [i.item_id for i in r.items]
    assert all(int(i.item_id[1:]) % 4 == 1 for i in r.items)  # co-bought items share the category
    assert _run(svc.similar_items, SimilarItemsRequest(item_id="nope", k=2)).fallback == "unknown_item"


def test_score_known_and_unknown(svc, world) -> None:  # noqa: ANN001
    r = _run(svc.score, ScoreRequest(ids=[world.one_ids[0], "crm:m3", "nobody"]))
    assert [x.found for x in r.results] == [True, True, False]
    assert set(r.results[0].predictions) == {"churn", "ltv", "propensity"}
    assert r.results[1].one_id == world.one_ids[3]
    assert 0 <= r.results[0].predictions["churn"].score <= 1
    assert r.results[0].predictions["churn"].tag in ("low", "medium", "high")
    assert r.results[0].predictions["ltv"].tag in ("top", "high", "mid", "low")
    prop = r.results[0].predictions["propensity"]
    assert prop.tag in [str(d) for d in range(1, 11)] and set(prop.detail) == {"propensity", "propensity_c0"}
    assert prop.score == prop.detail["propensity"]
    for kind in ("churn", "ltv", "propensity"):  # calibrated, plain and multi-output LightGBM: the array path
        assert svc.loader.bundle.model(kind).model.X_ is not None, kind
    assert r.results[2].predictions == {}
    assert r.models == {"churn": "1", "ltv": "1", "propensity": "1"}


def test_writeback_is_idempotent_and_shows_in_profile(svc, world) -> None:  # noqa: ANN001
    day = dt.date(2024, 9, 2)
    first = svc.tags_writeback(WritebackRequest(models=["churn"], date=day)).batches
    assert [(b.status, b.rows) for b in first] == [("written", len(world.one_ids))]
    again = svc.tags_writeback(WritebackRequest(models=["churn"], date=day)).batches
    assert again[0].status == "skipped"
    hist = pd.read_parquet(world.data_dir / "tags" / "history.parquet")
    batch = hist[(hist["date"] == day.isoformat()) & (hist["model"] == "churn") & (hist["version"] == "1")]
    assert len(batch) == len(world.one_ids) and set(batch["tag"]) == {"churn_tier"}  # once, not twice
    p = _run(svc.profile, world.one_ids[0])
    tags = {t.name: t for t in p.tags}
    assert tags["churn_tier"].source == "model" and tags["churn_tier"].version == "1"
    assert tags["tag_lifecycle_stage"].source == "rule" and tags["tag_lifecycle_stage"].value in ("active", "dormant")
    assert p.attributes["city"] in ("Shanghai", "Beijing")
    assert p.behaviour["events"] == 5


def test_profile_unknown_is_404(svc) -> None:  # noqa: ANN001
    with pytest.raises(NotFound):
        _run(svc.profile, "someone@example.com")
    assert issubclass(NotFound, ServingError)


def test_single_row_predictions_equal_the_models_own(svc) -> None:  # noqa: ANN001
    """LightGBM's single-row fast C API (+ scalar calibrator) == each model's own DataFrame predict."""
    import numpy as np

    b = svc.loader.bundle
    feats = b.resources.features
    assert b.model("recommender").model._fast is not None  # the recommender's one-customer path is on too
    for kind in ("churn", "ltv", "propensity"):
        a = b.model(kind).model
        assert a._one is not None, f"{kind}: the single-row path is off"
        own = a._array(a.predictor.predict(feats.frame[a.feature_names]))
        one = np.concatenate([a.predict_rows(feats, np.array([i])) for i in range(len(feats.frame))])
        np.testing.assert_allclose(one, own, rtol=1e-9, atol=1e-12, err_msg=kind)


def test_profile_shows_the_lookalike_audiences_that_found_the_customer(svc, world) -> None:  # noqa: ANN001
    """/lookalike saves an audience; its members' /profile lists it at once (seeds are not tagged)."""
    from serving.schemas import LookalikeRequest

    seeds = list(world.one_ids[:6])
    res = svc.lookalike(LookalikeRequest(ids=seeds, reach=10, method="centroid"))
    assert not hasattr(res, "body"), bytes(res.body)  # an error response
    found = [m.one_id for m in res.members]
    assert found and not set(found) & set(seeds)
    tags = {t.name: t for t in _run(svc.profile, found[0]).tags}
    assert res.audience_id in tags["lookalike_audiences"].value.split(",")
    assert tags["lookalike_audiences"].source == "lookalike"
    assert "lookalike_audiences" not in {t.name for t in _run(svc.profile, seeds[0]).tags}
