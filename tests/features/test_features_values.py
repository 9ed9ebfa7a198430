"""Feature values on a hand-built customer, computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def alice(tmp_path_factory, h):
    w = h.World(tmp_path_factory.mktemp("alice") / "data")
    w.person("alice", birth_year=1990, first_seen=h.ago(300))
    for d in (1, 5, 20, 60, 100):
        w.event("alice", "view", h.ago(d, hour=10), item="I1", session=f"v{d}")
    w.event("alice", "add_to_cart", h.ago(3, hour=22), item="I3", session="s1")
    w.event("alice", "purchase", h.ago(3, hour=23), item="I3", session="s1")
    w.event("alice", "add_to_cart", h.ago(4, hour=22), item="I1", session="s2")
    w.event("alice", "search", h.ago(2, hour=2), session="s3")
    w.order("alice", h.ago(10, hour=12), 100.0, items=("I3",), discount=20.0, coupon=True, channel="store")
    w.order("alice", h.ago(40, hour=12), 50.0, items=("I1",))
    w.order("alice", h.ago(200, hour=12), 25.0, items=("I2",))
    w.event("bob", "view", h.ago(2))
    cust, item = h.compute(*w.write())
    return cust.set_index("one_id").loc["alice"], item.set_index("item_id")


def test_rfm_and_counts(alice):
    a, _ = alice
    assert a["recency_days"] == pytest.approx(9.5)  # 10 days ago at 12:00
    assert (a["frequency_30d"], a["frequency_90d"], a["frequency_365d"]) == (1, 2, 3)
    assert (a["monetary_30d"], a["monetary_90d"], a["monetary_365d"]) == (100.0, 150.0, 175.0)
    assert a["aov_365d"] == pytest.approx(175 / 3)
    assert (a["n_view_7d"], a["n_view_30d"], a["n_view_90d"]) == (2, 3, 4)
    assert (a["n_add_to_cart_7d"], a["n_purchase_7d"], a["n_search_7d"]) == (2, 1, 1)
    assert a["events_90d"] == 8


def test_sessions_days_and_abandonment(alice):
    a, _ = alice
    assert a["sessions_30d"] == 6  # v1, v5, v20, s1, s2, s3
    assert a["cart_abandon_rate_90d"] == pytest.approx(0.5)  # s2 carted without buying, s1 bought
    # event days 1,2,3,4,5,20 + order day 10 -> 7 in 30 d; + day 40 order, day 60 view -> 9 in 90 d
    assert (a["active_days_30d"], a["active_days_90d"]) == (7, 9)


def test_inter_purchase_time_trend_and_discounts(alice):
    a, _ = alice
    assert a["ipt_mean_days"] == pytest.approx(95.0)  # gaps of 30 and 160 days
    assert a["ipt_std_days"] == pytest.approx(math.sqrt(((30 - 95) ** 2 + (160 - 95) ** 2) / 1))
    assert a["trend_spend_30d"] == pytest.approx((100 - 50) / 150)
    assert a["discount_share_365d"] == pytest.approx(1 / 3)
    assert a["discount_rate_365d"] == pytest.approx(20 / 195)


def test_time_channel_and_affinity_shares(alice):
    a, _ = alice
    n = 9 + 3  # events and orders within 365 days
    assert a["activity_365d"] == n
    assert a["night_share"] == pytest.approx(3 / n)  # 22:00, 23:00, 22:00
    assert a["late_night_share"] == pytest.approx(1 / n)
    assert a["channel_store_share"] == pytest.approx(3 / n)
    assert a["channel_app_share"] == pytest.approx(9 / n)
    # weights: view 1 (I1 shoes x5), cart 4 (I3 books, I1 shoes), purchase 5 (I3 books)
    assert a["affinity_shoes"] == pytest.approx(9 / 18)
    assert a["affinity_books"] == pytest.approx(9 / 18)
    assert a["top_category"] == "books"  # tie: the first in alphabetical order
    assert a["n_categories_365d"] == 2


def test_profile_and_tenure(alice):
    a, _ = alice
    assert a["age"] == 36
    assert a["gender"] == "F" and a["city"] == "Shanghai"
    assert a["tenure_days"] == pytest.approx(300.0)  # golden first_seen is the earliest sighting


def test_item_features(alice):
    _, items = alice
    i1, i3 = items.loc["I1"], items.loc["I3"]
    assert (i1["views_7d"], i1["views_30d"], i1["views_90d"]) == (3, 4, 5)  # alice's + bob's
    assert i1["category"] == "shoes" and i1["price_band"] in ("low", "mid", "high")
    assert items.loc["I1", "price_band"] == "low" and items.loc["I2", "price_band"] == "mid"  # terciles of 2
    assert i3["units_30d"] == 1 and i3["buyers_90d"] == 1
    assert i3["conversion_rate_90d"] == 0.0  # no views of I3
    assert i1["popularity_rank_30d"] == 1  # alice and bob viewed I1
    assert items.loc["I3", "age_days"] == pytest.approx(12.0)
