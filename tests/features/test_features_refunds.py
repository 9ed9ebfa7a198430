"""Refunds in the customer features: net spend, no purchase for an order refunded in full, point in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

DAY = pd.Timedelta(days=1)


def test_a_full_refund_cancels_the_order_from_its_own_time_on(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.person("a", first_seen=h.ago(300))
    bought = w.order("a", h.ago(40, hour=10), 100.0)
    w.refund("a", h.ago(10, hour=12), 100.0, of=bought)
    w.order("b", h.ago(50), 80.0)
    before, after = h.CUTOFF - 20 * DAY, h.CUTOFF
    cust, _ = h.compute(*w.write(), cutoffs=(before, after))
    a = cust[cust["one_id"] == "a"].set_index("event_timestamp")
    # before the refund the order stands: a refund after the cutoff never reaches its features
    assert a.loc[before, "orders_total"] == 1 and a.loc[before, "monetary_total"] == 100.0
    assert a.loc[before, "recency_days"] == pytest.approx(20 - 10 / 24)
    # after it, the order is gone: no order, no spend, no recency, no purchase tag
    assert a.loc[after, "orders_total"] == 0 and a.loc[after, "frequency_365d"] == 0
    assert a.loc[after, "monetary_total"] == 0.0 and a.loc[after, "monetary_30d"] == 0.0
    assert np.isnan(a.loc[after, "recency_days"]) and a.loc[after, "aov_365d"] == 0.0
    assert a.loc[after, "tag_rfm_segment"] == "no_purchase" and a.loc[after, "tag_value_tier"] == "none"
    assert a.loc[after, "tag_aipl_stage"] != "purchase"


def test_a_partial_refund_lowers_spend_at_its_time_and_keeps_the_order(tmp_path, h):
    w = h.World(tmp_path / "data")
    bought = w.order("a", h.ago(40), 100.0)
    w.refund("a", h.ago(10), 30.0, of=bought)
    cust, _ = h.compute(*w.write())
    a = cust.set_index("one_id").loc["a"]
    assert a["orders_total"] == 1 and a["frequency_90d"] == 1 and a["monetary_total"] == 70.0
    assert a["monetary_90d"] == 70.0
    assert a["monetary_30d"] == 0.0  # the window holds the refund, not the purchase: never below 0
    assert a["trend_spend_30d"] == -1.0  # 0 spent in the last 30 days against 100 the 30 before


def test_a_refund_naming_an_order_belongs_to_its_buyer(tmp_path, h):
    w = h.World(tmp_path / "data")
    bought = w.order("buyer", h.ago(40), 60.0)
    w.order("clerk", h.ago(30), 25.0)
    w.refund("clerk", h.ago(5), 60.0, of=bought)  # refunded at another record (a store's POS account)
    cust, _ = h.compute(*w.write())
    c = cust.set_index("one_id")
    assert c.loc["buyer", "orders_total"] == 0 and c.loc["buyer", "monetary_total"] == 0.0
    assert c.loc["clerk", "orders_total"] == 1 and c.loc["clerk", "monetary_total"] == 25.0


def test_refunds_without_an_order_follow_the_same_day_rule(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.order("a", h.ago(5, hour=9), 50.0)
    w.order("a", h.ago(5, hour=10), 20.0)
    w.refund("a", h.ago(5, hour=15), 20.0)  # exactly one order's amount, the same day: that order is cancelled
    w.order("b", h.ago(9, hour=9), 40.0)
    w.refund("b", h.ago(9, hour=18), 40.0)  # the whole day refunded: no purchase day
    w.order("b", h.ago(3), 10.0)
    w.refund("c", h.ago(60), 30.0)  # before c's first purchase: something bought before the data began
    w.order("c", h.ago(50), 45.0)
    cust, _ = h.compute(*w.write())
    c = cust.set_index("one_id")
    assert c.loc["a", "orders_total"] == 1 and c.loc["a", "monetary_total"] == 50.0
    assert c.loc["b", "orders_total"] == 1 and c.loc["b", "recency_days"] == pytest.approx(3.0)
    assert np.isnan(c.loc["b", "ipt_mean_days"])  # one purchase day left
    assert c.loc["c", "monetary_total"] == 45.0


def test_the_feature_build_and_evaluate_customer_value_agree_on_refunds(tmp_path, h):
    """Both read refunds by features.returns: same orders and net spend per customer, random refunds."""
    from features.transactions import features_as_of, prepare

    rng = np.random.default_rng(3)
    w = h.random_world(tmp_path / "data", n_people=40, seed=5)
    for o in list(w.orders):
        pid = o["record_id"][2:]
        if rng.random() < 0.3:  # same day, later, or a different amount: every branch of the rule
            when = o["ts"] + pd.Timedelta(hours=float(rng.choice([0.5, 30, 24 * 20])))
            w.refund(pid, min(when, h.CUTOFF - pd.Timedelta(hours=1)), o["amount"] * float(rng.choice([1.0, 0.5])))
    w.refund("p001", h.ago(399.5), 12.0)  # before p001's first purchase
    raw, ident = w.write()
    cust, _ = h.compute(raw, ident)
    orders = pd.read_parquet(raw / "orders.parquet")
    tx = prepare(orders.assign(customer_id=orders["record_id"].str[2:]), amount="amount")
    ref = features_as_of(tx, [h.CUTOFF]).set_index("customer_id")
    assert (ref["returned_share"] > 0).sum() >= 5 and (tx["amount"] < 0).sum() >= 15  # the refunds are there
    got = cust.set_index("one_id").loc[ref.index]
    assert (got["orders_total"].to_numpy() == ref["n_orders"].to_numpy()).all()
    assert got["monetary_total"].to_numpy() == pytest.approx(ref["monetary_total"].to_numpy())
    assert got["monetary_90d"].to_numpy() == pytest.approx(ref["monetary_90d"].to_numpy())


def test_items_sold_do_not_count_an_order_refunded_in_full(tmp_path, h):
    w = h.World(tmp_path / "data")
    kept = w.order("a", h.ago(20), 30.0, items=("I2",))
    gone = w.order("b", h.ago(20), 30.0, items=("I2",))
    w.refund("b", h.ago(15), 30.0, of=gone)
    w.refund("a", h.ago(2), 10.0, of=kept)  # partly refunded: the unit was still sold
    _, item = h.compute(*w.write(), cutoffs=(h.ago(16), h.CUTOFF))
    i2 = item[item["item_id"] == "I2"].set_index("event_timestamp")
    assert i2.loc[h.ago(16), "units_30d"] == 2 and i2.loc[h.ago(16), "buyers_90d"] == 2  # the refund came later
    assert i2.loc[h.CUTOFF, "units_30d"] == 1 and i2.loc[h.CUTOFF, "buyers_90d"] == 1


def test_refund_count_and_share_over_365_days(tmp_path, h):
    w = h.World(tmp_path / "data")
    first = w.order("a", h.ago(100), 100.0)
    w.order("a", h.ago(60), 100.0)
    w.refund("a", h.ago(50), 100.0, of=first)
    w.refund("a", h.ago(20), 50.0)
    w.order("b", h.ago(30), 80.0)
    old = w.order("c", h.ago(400), 90.0)  # bought before the window, refunded inside it
    w.order("c", h.ago(30), 10.0)
    w.refund("c", h.ago(10), 90.0, of=old)
    before = h.CUTOFF - 55 * DAY
    cust, _ = h.compute(*w.write(), cutoffs=(before, h.CUTOFF))
    c = cust.set_index(["one_id", "event_timestamp"])
    assert c.loc[("a", h.CUTOFF), "refunds_365d"] == 2
    assert c.loc[("a", h.CUTOFF), "refund_share_365d"] == pytest.approx(150 / 200)
    assert c.loc[("a", before), "refunds_365d"] == 0 and c.loc[("a", before), "refund_share_365d"] == 0.0
    assert c.loc[("b", h.CUTOFF), "refunds_365d"] == 0 and c.loc[("b", h.CUTOFF), "refund_share_365d"] == 0.0
    assert c.loc[("c", h.CUTOFF), "refunds_365d"] == 1 and c.loc[("c", h.CUTOFF), "refund_share_365d"] == 1.0


def test_a_zero_amount_row_naming_an_order_is_a_refund_not_a_purchase(tmp_path, h):
    """The import accepts refund_of on a zero amount (a refund of a free order): it is no order, no recency."""
    w = h.World(tmp_path / "data")
    free = w.order("a", h.ago(40), 0.0)
    w.order("a", h.ago(30), 50.0)
    back = w.refund("a", h.ago(5), 0.0, of=free)  # amount -0.0: nothing paid back, but a refund row all the same
    w.lines.append({"order_id": back, "item_id": "I1", "quantity": 1, "unit_price": 0.0})  # the refunded line
    cust, item = h.compute(*w.write())
    a = cust.set_index("one_id").loc["a"]
    assert a["orders_total"] == 1 and a["frequency_90d"] == 1  # the free order is refunded in full, the refund no order
    assert a["recency_days"] == pytest.approx(30.0) and a["refunds_365d"] == 1
    assert item.set_index("item_id").loc["I1", "units_30d"] == 1  # the refund row's lines are no sale


def test_a_refund_naming_no_order_is_not_linked_to_a_purchase_without_an_order_id():
    """refund_of null is no name: a table written by another tool with a null order id on a purchase must not
    draw every unnamed refund to that purchase's buyer (pandas matches None to NaN on reindex)."""
    from features.returns import stand_orders

    day = 86_400_000_000
    cid, amount, cancel = stand_orders(np.array([0, 1]), np.array([day, 5 * day]), np.array([5.0, -5.0]),
                                       np.array([None, "R1"], dtype=object), np.array([None, None], dtype=object))
    assert cid.tolist() == [0, 1]  # the refund stays with its own customer
    assert cancel.tolist() == [-1, -1]  # and cancels nobody's purchase


def test_a_refund_from_an_account_oneid_does_not_know_still_cancels_the_order_it_names(tmp_path, h):
    w = h.World(tmp_path / "data")
    bought = w.order("buyer", h.ago(40), 60.0)
    w.order("buyer", h.ago(30), 25.0)
    w.refund("desk", h.ago(5), 60.0, of=bought)  # the store's service desk: no identity record
    w.refund("desk", h.ago(5), 25.0)  # naming no order: nobody's, dropped
    del w.people["desk"]
    raw, ident = w.write()
    cust, _ = h.compute(raw, ident)
    c = cust.set_index("one_id")
    assert "desk" not in c.index
    assert c.loc["buyer", "orders_total"] == 1 and c.loc["buyer", "monetary_total"] == 25.0


def test_a_kept_refund_from_an_unknown_account_is_not_reported_as_lost(tmp_path, h):
    from features.build import FeatureConfig, stage

    w = h.World(tmp_path / "data")
    bought = w.order("buyer", h.ago(40), 60.0)
    w.refund("desk", h.ago(5), 60.0, of=bought)  # kept: it cancels the buyer's order
    w.refund("desk", h.ago(5), 25.0)  # naming no order: dropped
    del w.people["desk"]
    con, staged = stage(*w.write(), FeatureConfig())
    con.close()
    # the per-source warning counts the rows dropped, as the total does: not the refund that counts for its buyer
    assert staged.unmapped["orders"] == 1 and staged.unmapped_sources["orders"] == {"app": (1, 3)}


def _interactions(raw, ident, out, cutoff) -> list[tuple]:
    """``(one_id, item_id, event_type, weight)`` rows of a real build's interactions as of ``cutoff``, sorted."""
    from features.build import build

    res = build(raw, ident, out, [cutoff])
    inter = pd.read_parquet(res.paths["interactions"])
    return sorted(map(tuple, inter[["one_id", "item_id", "event_type", "weight"]].values.tolist()))


def test_interactions_demote_a_purchase_refunded_in_full_to_a_view_from_the_refund_on(tmp_path, h):
    """An order refunded in full was no purchase: the recommender learns a view of its items (not an item
    to leave out as bought), once the refund happened; a cutoff before the refund still sees the purchase."""
    from features.build import FeatureConfig

    w = h.World(tmp_path / "data")
    gone = w.order("a", h.ago(20), 40.0, items=("I1", "I2"))
    w.event("a", "purchase", h.ago(20), item="I1")  # the same purchase also seen as an event: one row, demoted too
    w.refund("a", h.ago(10), 15.0, of=gone)
    w.refund("a", h.ago(8), 25.0, of=gone)  # refunded in full from here on
    w.order("d", h.ago(30, hour=9), 20.0, items=("I3",))
    w.refund("d", h.ago(30, hour=15), 20.0)  # no order named: the same-day rule cancels it (features.returns)
    w.event("c", "purchase", h.ago(20), item="I3")  # a purchase no order tells about stays one
    raw, ident = w.write()
    p, v = FeatureConfig().weights["purchase"], FeatureConfig().weights["view"]
    assert _interactions(raw, ident, tmp_path / "before", h.ago(9)) == [
        ("a", "I1", "purchase", p), ("a", "I2", "purchase", p), ("c", "I3", "purchase", p), ("d", "I3", "view", v)]
    assert _interactions(raw, ident, tmp_path / "after", h.CUTOFF) == [
        ("a", "I1", "view", v), ("a", "I2", "view", v), ("c", "I3", "purchase", p), ("d", "I3", "view", v)]


def test_interactions_keep_a_purchase_refunded_in_part(tmp_path, h):
    from features.build import FeatureConfig

    w = h.World(tmp_path / "data")
    kept = w.order("b", h.ago(20), 30.0, items=("I2",))
    w.event("b", "purchase", h.ago(20), item="I2")
    w.refund("b", h.ago(10), 29.99, of=kept)
    p = FeatureConfig().weights["purchase"]
    assert _interactions(*w.write(), tmp_path / "features", h.CUTOFF) == [("b", "I2", "purchase", p)]
