"""The one-customer fast paths give what the general paths give.

* ``RecommenderBundle.prepare_serving``: raw-array slices + the model's own query weights +
  a one-row product with ``B``, against ``model.recommend`` on a scipy row, for every known
  customer, with and without ``exclude_seen`` and with filters, for the item-item models
  portrait trains (EASE with a dense ``B``, WindowEASE with recency, pruned sparse ``B``).

The predictors' single-row path (LightGBM's fast C API) is checked on the loaded service
in ``test_serving_service.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.recommenders.serving import ItemFilters


def _bundle(world, name: str, **params):  # noqa: ANN001, ANN202
    from models.recommenders import make
    from training.recommender import RecommenderConfig, build_bundle, load_events

    cfg = RecommenderConfig(data_dir=str(world.data_dir), model=name)
    items = pd.read_parquet(world.data_dir / "raw" / "items.parquet")
    return build_bundle(load_events(cfg), make(name, **params), cfg, items)


def _general(bundle, pos: int, k: int, allowed, exclude_seen: bool):  # noqa: ANN001, ANN202
    t = bundle.times[pos] if bundle.times is not None else None
    return bundle._general(bundle.history[pos], t, bundle.bought[pos], k, allowed, exclude_seen)


@pytest.mark.parametrize("name,params", [("ease", {}), ("window_ease", {"lams": (4.0,), "half_lives": (10.0,)}),
                                         ("ease", {"prune": 8})])
def test_recommender_fast_path_matches_general_path(world, name, params) -> None:  # noqa: ANN001
    from models.recommenders.serving import _same_ranking

    b = _bundle(world, name, **params)
    assert b.prepare_serving(), "fast path refused a model it supports"
    if name == "window_ease":
        assert b.model.half_life_ == 10.0  # the recency weighting is exercised
    filters = ItemFilters(categories_allow=("c0", "c1", "c2"), in_stock_only=True, exclude_items=("I001",))
    allowed = b.catalog.mask(filters, b.items)
    compared = 0
    for pos in range(len(b.users)):
        for k, mask, seen in ((10, None, True), (5, None, False), (4, allowed, True)):
            fast = b._fast_topk(pos, k, mask, seen)
            if fast is None:  # too few candidates: the general path answers (allowed, not an error)
                continue
            assert _same_ranking(fast, _general(b, pos, k, mask, seen)), (name, pos, k)
            compared += 1
    assert compared > len(b.users)  # most requests take the fast path
    # the public call uses it and answers like the general path, item ids and all
    u = str(b.users[3])
    got = b.recommend(u, k=5, exclude_seen=True)
    ids, scores = _general(b, 3, 5, None, True)
    assert [i for i, _ in got] == [str(b.items[i]) for i in ids] and b.last_source == "history"
    np.testing.assert_allclose([s for _, s in got], scores, rtol=1e-5)


def test_recommender_fast_path_off_for_other_models(world) -> None:  # noqa: ANN001
    b = _bundle(world, "popularity")
    assert not b.prepare_serving()
    assert b.recommend(str(b.users[0]), k=3)  # the general path still answers


def test_recommender_fast_path_refuses_a_wrong_kernel(world, monkeypatch) -> None:  # noqa: ANN001
    b = _bundle(world, "ease")
    own = b.model._score
    monkeypatch.setattr(b.model, "_score", lambda X, users=None: -own(X, users))  # recommend() now disagrees
    assert not b.prepare_serving() and b._fast is None
