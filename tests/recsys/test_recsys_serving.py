"""Serving behaviour: exclusions, business filters, cold start, fresh events, similar items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.recommenders import make
from models.recommenders.serving import ItemFilters, RecommenderBundle
from training.recommender import RecommenderConfig, build_bundle

T0 = pd.Timestamp("2024-01-01", tz="UTC")
ITEMS = pd.DataFrame({
    "item_id": [f"s{i}" for i in range(12)],
    "category": ["shoes"] * 6 + ["books"] * 6,
    "price": [10.0, 20, 30, 40, 50, 60, 5, 6, 7, 8, 9, np.nan],
    "in_stock": [True, False] * 6,
    "launch_date": pd.to_datetime(["2023-01-01"] * 10 + ["2025-01-01"] * 2),
})


def events() -> pd.DataFrame:
    """Women 25-34 (users u0-u5) take shoes s0-s5; men 35-44 (u6-u11) take books s6-s11."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(12):
        base = 0 if u < 6 else 6
        for j, item in enumerate(rng.choice(6, size=4, replace=False) + base):
            kind = "purchase" if j == 0 else "view"
            rows.append((f"u{u}", f"s{item}", kind, T0 + pd.Timedelta(days=u + j), 1.0))
    return pd.DataFrame(rows, columns=["user", "item", "event_type", "timestamp", "weight"])


def profiles() -> pd.DataFrame:
    return pd.DataFrame({"user": [f"u{u}" for u in range(12)],
                         "age_band": ["25-34"] * 6 + ["35-44"] * 6, "gender": ["F"] * 6 + ["M"] * 6,
                         "city": ["Shanghai"] * 12, "lifecycle": ["active"] * 12})


@pytest.fixture(scope="module")
def bundle() -> RecommenderBundle:
    return build_bundle(events(), make("window_ease"), RecommenderConfig(segment_shrinkage=1.0), ITEMS, profiles())


def test_bought_items_never_come_back_but_viewed_may(bundle):
    df = events()
    for u in df["user"].unique():
        got = {i for i, _ in bundle.recommend(u, k=12)}
        bought = set(df[(df.user == u) & (df.event_type == "purchase")]["item"])
        assert not got & bought
    assert bundle.last_source == "history"


def test_exclude_seen_drops_the_whole_history(bundle):
    df = events()
    got = {i for i, _ in bundle.recommend("u0", k=12, exclude_seen=True)}
    assert not got & set(df[df.user == "u0"]["item"])


def test_cold_start_uses_the_profile_segment(bundle):
    women = bundle.recommend("nobody", k=3, profile={"age_band": "25-34", "gender": "F", "city": "Beijing"})
    assert bundle.last_source == "segment"  # city unknown -> the broader (age band, gender) segment
    assert all(i in {f"s{j}" for j in range(6)} for i, _ in women)
    men = bundle.recommend("nobody", k=3, profile={"age_band": "35-44", "gender": "M", "city": "Shanghai",
                                                     "lifecycle": "active"})
    assert all(i in {f"s{j}" for j in range(6, 12)} for i, _ in men)
    bundle.recommend("nobody", k=3)
    assert bundle.last_source == "popular"


def test_fresh_events_change_the_result_and_purchases_are_excluded(bundle):
    before = bundle.recommend("u0", k=5)
    fresh = [("s7", "view", T0 + pd.Timedelta(days=40)), ("s8", "add_to_cart", T0 + pd.Timedelta(days=40)),
             ("s9", "purchase", T0 + pd.Timedelta(days=41)), ("unknown-sku", "view", None)]
    after = bundle.recommend("u0", k=5, recent=fresh)
    assert after != before
    assert "s9" not in {i for i, _ in after}
    new_user = bundle.recommend("brand-new", k=3, recent=[("s7", "view", None)])
    assert bundle.last_source == "history" and len(new_user) == 3


def test_similar_items_and_unknown_item(bundle):
    got = bundle.similar_items("s0", k=3)
    assert len(got) == 3 and "s0" not in {i for i, _ in got}
    assert {i for i, _ in bundle.similar_items("s0", k=3, filters=ItemFilters(categories_allow=("books",)))} <= {
        f"s{j}" for j in range(6, 12)}
    with pytest.raises(KeyError, match="unknown item"):
        bundle.similar_items("nope")


def test_faiss_item_index_recall_and_use(bundle):
    vecs = np.random.default_rng(1).normal(size=(len(bundle.items), 8)).astype(np.float32)
    assert bundle.attach_ann(vecs, kind="flat") >= 0.99
    got = bundle.similar_items("s3", k=4, filters=ItemFilters(in_stock_only=True))
    assert "s3" not in {i for i, _ in got}
    assert all(ITEMS.set_index("item_id").loc[i, "in_stock"] for i, _ in got)
    bundle.ann = None


@settings(max_examples=60, deadline=None)
@given(
    allow=st.one_of(st.none(), st.sets(st.sampled_from(["shoes", "books", "toys"]), max_size=2)),
    deny=st.sets(st.sampled_from(["shoes", "books"]), max_size=1),
    pmin=st.one_of(st.none(), st.floats(0, 40)), pmax=st.one_of(st.none(), st.floats(5, 70)),
    stock=st.booleans(), before=st.one_of(st.none(), st.sampled_from(["2024-06-01", "2026-01-01"])),
    user=st.sampled_from(["u0", "u7", "nobody"]), k=st.integers(1, 12),
)
def test_business_filters_are_never_violated(bundle, allow, deny, pmin, pmax, stock, before, user, k):
    f = ItemFilters(categories_allow=None if allow is None else tuple(allow), categories_deny=tuple(deny),
                    price_min=pmin, price_max=pmax, in_stock_only=stock, launched_before=before,
                    exclude_items=("s1",))
    items = ITEMS.set_index("item_id")
    got = bundle.recommend(user, k=k, filters=f, profile={"age_band": "25-34", "gender": "F"})
    assert len(got) <= k
    for item, _ in got:
        row = items.loc[item]
        assert item != "s1"
        assert allow is None or row.category in allow
        assert row.category not in deny
        assert pmin is None or row.price >= pmin
        assert pmax is None or row.price <= pmax
        assert not stock or row.in_stock
        assert before is None or row.launch_date <= pd.Timestamp(before)


def test_batch_recommend_matches_single_and_skips_unknown_ids(bundle):
    ids, scores = bundle.recommend_batch(["u0", "ghost", "u7"], k=4)
    assert (ids[1] == -1).all() and np.isneginf(scores[1]).all()
    single = [i for i, _ in bundle.recommend("u7", k=4)]
    assert [str(bundle.items[j]) for j in ids[2] if j >= 0] == single
    bought = set(events().query("user == 'u0' and event_type == 'purchase'")["item"])
    assert not {str(bundle.items[j]) for j in ids[0] if j >= 0} & bought
