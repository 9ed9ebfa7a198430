"""Labels come only from the window after each cutoff, with exact boundaries."""

from __future__ import annotations

import pandas as pd
import pytest

from features.labels import future_labels
from features.schema import SchemaError

US = pd.Timedelta(microseconds=1)


@pytest.fixture()
def labelled(tmp_path, h):
    w = h.World(tmp_path / "data")
    c = h.CUTOFF
    for pid in ("before", "at", "edge30", "day30", "far"):
        w.person(pid, first_seen=c - pd.Timedelta(days=100))  # known before the cutoff
    w.order("before", c - US, 1000.0)  # the last microsecond before the cutoff: a feature, never a label
    w.order("at", c, 10.0, items=("I3",))  # books
    w.order("edge30", c + pd.Timedelta(days=30) - US, 20.0)
    w.order("day30", c + pd.Timedelta(days=30), 30.0, items=("I1",))
    w.order("far", c + pd.Timedelta(days=200), 40.0)
    w.event("tail", "view", c + pd.Timedelta(days=240))  # data runs 240 days past the cutoff
    return w.write()


def test_label_windows(labelled, h):
    y = future_labels(*labelled, [h.CUTOFF], horizons=(30, 90), categories=["books", "shoes"]).set_index("one_id")
    assert y.loc["before", "purchased_30d"] == False and y.loc["before", "spend_90d"] == 0.0  # noqa: E712
    assert y.loc["at", "purchased_30d"] and y.loc["at", "buy_30d_books"] and not y.loc["at", "buy_30d_shoes"]
    assert y.loc["edge30", "orders_30d"] == 1
    assert y.loc["day30", "orders_30d"] == 0 and y.loc["day30", "spend_90d"] == 30.0
    assert not y.loc["day30", "buy_30d_shoes"]
    assert y.loc["far", "purchased_90d"] == False  # noqa: E712
    assert y["complete_90d"].all() and y["observed_days"].iloc[0] == pytest.approx(240.0)


def test_category_labels_can_take_another_horizon(labelled, h):
    """Propensity trained with ``dataset.horizon_days: 60`` gave its category models 30-day labels."""
    y = future_labels(*labelled, [h.CUTOFF], horizons=(60,), categories=["books", "shoes"],
                      category_horizon_days=60).set_index("one_id")
    assert not any(c.startswith("buy_30d_") for c in y.columns)
    assert y.loc["day30", "buy_60d_shoes"] and y.loc["at", "buy_60d_books"] and not y.loc["far", "buy_60d_shoes"]


def test_entity_frame_and_errors(labelled, h):
    late = h.CUTOFF + pd.Timedelta(days=230)
    ent = pd.DataFrame({"one_id": ["at", "far", "nobody", "at"],
                        "cutoff": [h.CUTOFF, h.CUTOFF + pd.Timedelta(days=199), h.CUTOFF, late]})
    y = future_labels(*labelled, ent, horizons=(30,), categories=[])
    assert len(y) == 4
    y = y.set_index("one_id")
    assert y.loc["at", "spend_30d"].tolist() == [10.0, 0.0] and y.loc["far", "spend_30d"] == 40.0
    assert y.loc["nobody", "orders_30d"] == 0  # unknown one_id: no orders, not an error
    assert y.loc["far", "complete_30d"]  # 41 days of data after its cutoff
    assert y.loc["at", "complete_30d"].tolist() == [True, False]  # the late cutoff has 10 days of data: censored
    assert y.loc["at", "observed_days"].iloc[1] == pytest.approx(10.0)
    with pytest.raises(SchemaError, match="one_id"):
        future_labels(*labelled, pd.DataFrame({"cutoff": [h.CUTOFF]}))


def test_labels_are_net_of_refunds_and_a_purchase_refunded_in_the_horizon_is_none(tmp_path, h):
    w = h.World(tmp_path / "data")
    c = h.CUTOFF
    for pid in ("returned", "late_refund", "old_refund", "partial"):
        w.person(pid, first_seen=c - pd.Timedelta(days=100))
    o = w.order("returned", c + pd.Timedelta(days=2), 50.0, items=("I3",))
    w.refund("returned", c + pd.Timedelta(days=20), 50.0, of=o)  # bought and refunded in full inside 30 days
    o = w.order("late_refund", c + pd.Timedelta(days=2), 40.0, items=("I3",))
    w.refund("late_refund", c + pd.Timedelta(days=45), 40.0, of=o)  # refunded after the 30-day horizon
    o = w.order("old_refund", c - pd.Timedelta(days=10), 100.0)
    w.order("old_refund", c + pd.Timedelta(days=3), 30.0)
    w.refund("old_refund", c + pd.Timedelta(days=5), 100.0, of=o)  # refunds a purchase of the features' past
    o = w.order("partial", c + pd.Timedelta(days=1), 80.0)
    w.refund("partial", c + pd.Timedelta(days=4), 30.0, of=o)
    w.event("tail", "view", c + pd.Timedelta(days=240))
    y = future_labels(*w.write(), [c], horizons=(30, 90), categories=["books"]).set_index("one_id")
    assert not y.loc["returned", "purchased_30d"] and y.loc["returned", "orders_90d"] == 0
    assert y.loc["returned", "spend_30d"] == 0.0 and not y.loc["returned", "buy_30d_books"]
    assert y.loc["late_refund", "purchased_30d"] and y.loc["late_refund", "spend_30d"] == 40.0
    assert y.loc["late_refund", "buy_30d_books"]
    assert not y.loc["late_refund", "purchased_90d"] and y.loc["late_refund", "spend_90d"] == 0.0
    # 30 bought, 100 refunded: net spend is floored at 0, and the new purchase still counts
    assert y.loc["old_refund", "spend_30d"] == 0.0 and y.loc["old_refund", "purchased_30d"]
    assert y.loc["partial", "spend_30d"] == 50.0 and y.loc["partial", "orders_30d"] == 1


def test_label_categories_do_not_count_units_refunded_in_full(tmp_path, h):
    w = h.World(tmp_path / "data")
    c = h.CUTOFF
    for k in range(3):  # 3 toys bought and refunded in full, 2 books kept
        o = w.order(f"t{k}", c - pd.Timedelta(days=30), 20.0, items=("I4",))
        w.refund(f"t{k}", c - pd.Timedelta(days=25), 20.0, of=o)
    for k in range(2):
        w.order(f"b{k}", c - pd.Timedelta(days=30), 20.0, items=("I3",))
    w.order("s", c - pd.Timedelta(days=30), 20.0, items=("I1",))
    y = future_labels(*w.write(), [c], horizons=(30,), n_categories=2)
    assert {col for col in y.columns if col.startswith("buy_30d_")} == {"buy_30d_books", "buy_30d_shoes"}
