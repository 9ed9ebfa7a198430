"""Ground truth of the synthetic generator: it is consistent with the raw tables, and the traps are there.

Identity resolution, churn, LTV, propensity and lookalike are scored against these truth tables, so a
wrong truth would silently mis-score every model: these tests tie each truth column to the raw rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.sources.synthetic import GeneratorConfig, generate

PEOPLE = 3000
NOW = pd.Timestamp("2026-07-01", tz="UTC")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("truth")
    generate(GeneratorConfig(people=PEOPLE, seed=21, block_size=1000), root)
    raw = root / "raw"
    out = {p.stem: pd.read_parquet(p) for p in raw.glob("*.parquet")}
    out |= {p.stem: pd.read_parquet(p) for p in (raw / "_truth").glob("*.parquet")}
    out["meta"] = json.loads((raw / "_truth" / "meta.json").read_text())
    tr = out["truth_records"]
    out["rec_person"] = pd.Series(tr["person_id"].to_numpy(), index=pd.MultiIndex.from_frame(tr[["source", "record_id"]]))
    return out


def _person(d: dict, df: pd.DataFrame) -> pd.Series:
    return pd.Series(d["rec_person"].reindex(pd.MultiIndex.from_frame(df[["source", "record_id"]])).to_numpy(),
                     index=df.index)


def test_every_record_has_a_person_and_every_person_records(data):
    tr, ir, tp = data["truth_records"], data["identity_records"], data["truth_people"]
    assert len(tp) == PEOPLE and tp["person_id"].is_unique
    assert len(tr) == len(ir)
    assert set(zip(tr.source, tr.record_id)) == set(zip(ir.source, ir.record_id))
    assert tr["person_id"].isin(tp["person_id"]).all()
    assert set(tr["person_id"]) == set(tp["person_id"])
    n_rec = tr.groupby("person_id").size()
    assert (tp.set_index("person_id")["n_records"] == n_rec.reindex(tp["person_id"]).to_numpy()).all()
    assert (n_rec > 1).mean() > 0.5  # people are fragmented over sources


@pytest.mark.parametrize("table", ["profiles", "events", "orders", "campaign_contacts"])
def test_fact_rows_reference_existing_records(data, table):
    assert _person(data, data[table]).notna().all()


def test_references_to_orders_and_items_exist(data):
    items = set(data["items"]["item_id"])
    purchases = data["orders"][data["orders"]["amount"] >= 0]
    assert set(data["order_lines"]["order_id"]) == set(purchases["order_id"])  # a refund has no lines
    assert data["order_lines"]["item_id"].isin(items).all()
    ev = data["events"]["item_id"].dropna()
    assert ev.isin(items).all()
    assert data["truth_campaigns"][["campaign_id", "source", "record_id"]].equals(
        data["campaign_contacts"][["campaign_id", "source", "record_id"]])


def test_raw_history_stops_at_now_and_spans_a_year(data):
    for table in ("events", "orders"):
        ts = data[table]["ts"]
        assert ts.max() < NOW
        assert (NOW - ts.min()).days >= 365
    assert (data["campaign_contacts"]["sent_at"] < NOW).all()
    assert (data["campaign_contacts"]["responded_at"].dropna() < NOW + pd.Timedelta(days=8)).all()


def test_order_amounts_add_up(data):
    lines = data["order_lines"].assign(v=lambda d: d.quantity * d.unit_price).groupby("order_id")["v"].sum()
    o = data["orders"][data["orders"]["amount"] >= 0].set_index("order_id")
    assert np.allclose(o["amount"] + o["discount"], lines.reindex(o.index), atol=0.011)
    assert (o.loc[o["discount"] > 0, "coupon_used"]).all()
    assert (o["amount"] > 0).all()


def test_observed_behaviour_in_truth_matches_the_raw_tables(data):
    tp = data["truth_people"].set_index("person_id")
    orders = data["orders"].assign(person=_person(data, data["orders"]))
    orders = orders[orders["amount"] >= 0]  # the truth counts purchases, gross
    events = data["events"].assign(person=_person(data, data["events"]))
    n_orders = orders.groupby("person").size().reindex(tp.index, fill_value=0)
    spend = orders.groupby("person")["amount"].sum().reindex(tp.index, fill_value=0.0)
    n_events = events.groupby("person").size().reindex(tp.index, fill_value=0)
    assert (tp["orders_observed"] == n_orders).all()
    assert np.allclose(tp["spend_observed"], spend, atol=0.01)
    assert (tp["events_observed"] == n_events).all()
    last = orders.groupby("person")["ts"].max().reindex(tp.index)
    assert (tp["last_order_at"].isna() == last.isna()).all()
    assert (tp["last_order_at"].dropna() == last.dropna()).all()


def test_future_outcomes_are_consistent(data):
    tp = data["truth_people"]
    assert (tp["future_purchases_30d"] <= tp["future_purchases_90d"]).all()
    assert (tp["future_spend_90d"] <= tp["future_spend_180d"] + 1e-6).all()
    assert (tp["future_active_90d"] == (tp["future_purchases_90d"] > 0)).all()
    assert ((tp["future_purchases_90d"] > 0) == (tp["future_spend_90d"] > 0)).all()
    buy = tp[[f"future_buy_30d_{c}" for c in data["meta"]["categories"]]]
    assert (buy.any(axis=1) == (tp["future_purchases_30d"] > 0)).all()
    # who has gone dormant does not come back; nobody buys before they start
    assert (tp.loc[tp["dormant"], "future_purchases_90d"] == 0).all()
    dormant_soon = tp["dormant_since"].notna() & (tp["dormant_since"] <= NOW + pd.Timedelta(days=30))
    assert (tp.loc[dormant_soon, "future_spend_180d"] <= tp.loc[dormant_soon, "future_spend_90d"] + 1e-6).all()
    # the outcome classes are neither empty nor everyone: there is something to predict
    for col in ("future_active_90d", "dormant", "churn_next_90d", "night_owl"):
        assert 0.02 < tp[col].mean() < 0.9, col


def test_traits_drive_behaviour(data):
    tp = data["truth_people"].set_index("person_id")
    events = data["events"].assign(person=_person(data, data["events"]))
    hour = events["ts"].dt.hour
    night_share = (hour.isin([23, 0, 1, 2])).groupby(events["person"]).mean()
    owl = tp["night_owl"].reindex(night_share.index)
    assert night_share[owl].mean() > 1.5 * night_share[~owl].mean()
    active = tp["orders_observed"] > 0
    assert np.corrcoef(tp.loc[active, "purchase_rate"], tp.loc[active, "orders_observed"])[0, 1] > 0.3
    orders = data["orders"].assign(person=_person(data, data["orders"]))
    coupon = orders.groupby("person")["coupon_used"].mean()
    ps = tp["price_sensitivity"].reindex(coupon.index)
    assert coupon[ps > ps.median()].mean() > coupon[ps <= ps.median()].mean()
    # future buying follows the interest mix: the top category is bought far more often than others
    cats = data["meta"]["categories"]
    top_hits = np.mean([tp.loc[tp["top_category"] == c, f"future_buy_30d_{c}"].mean() for c in cats
                        if (tp["top_category"] == c).sum() > 20])
    all_hits = tp[[f"future_buy_30d_{c}" for c in cats]].to_numpy().mean()
    assert top_hits > 3 * all_hits


def test_seasonality_and_promotion_peaks(data):
    daily = data["orders"].set_index("ts").resample("D").size()
    median = daily.median()
    assert daily[pd.Timestamp("2025-11-11", tz="UTC")] > 2.5 * median
    assert daily[pd.Timestamp("2026-06-18", tz="UTC")] > 2 * median
    weekend = daily[daily.index.dayofweek >= 5].median()
    assert weekend > daily[daily.index.dayofweek < 4].median()


def test_campaign_responses_follow_the_true_probability(data):
    tc = data["truth_campaigns"]
    cc = data["campaign_contacts"]
    assert (tc["responded"] == cc["responded_at"].notna()).all()
    assert (cc.loc[cc["converted"], "responded_at"].notna()).all()
    hi = tc["p_respond"] > tc["p_respond"].median()
    assert tc.loc[hi, "responded"].mean() > 1.5 * tc.loc[~hi, "responded"].mean()
    assert abs(tc["responded"].mean() - tc["p_respond"].mean()) < 0.03


def test_identity_traps_are_present_in_the_expected_proportions(data):
    ir = data["identity_records"].merge(data["truth_records"], on=["source", "record_id"])
    noise = ir["noise"].fillna("")

    def share(label: str) -> float:
        return noise.str.contains(label, regex=False).mean()

    assert 0.15 < share("phone_format") < 0.35
    assert 0.02 < share("placeholder") < 0.10
    assert 0.01 < share("email_case") < 0.08
    for label in ("phone_typo", "phone_invalid", "email_space", "email_typo", "household_device", "kiosk_device",
                  "device_zero", "phone_recycled"):
        assert 0 < share(label) < 0.05, label
    # the labels say what the values show
    phone = ir["phone"].fillna("")
    formatted = noise.str.contains("phone_format")
    assert phone[formatted].str.contains(r"[+\- ]").all()
    clean_phone = ~noise.str.contains("phone|placeholder") & phone.ne("")
    assert phone[clean_phone].str.fullmatch(r"1\d{10}").all()
    assert ir["phone"].isin(["00000000000", "null", "N/A", "-1", "11111111111"]).any()
    assert ir["email"].isin(["test@test.com", "null", "anonymous", "N/A", "none@none.com"]).any()
    email = ir["email"].fillna("")
    assert email[noise.str.contains("email_case")].str.contains(r"[A-Z]").all()
    assert (email[noise.str.contains("email_space")] != email[noise.str.contains("email_space")].str.strip()).all()
    # shared devices: one device_id, several true persons
    dev = ir.dropna(subset=["device_id"]).groupby("device_id")["person_id"].nunique()
    assert (dev > 1).sum() > 5
    kiosk = ir[noise.str.contains("kiosk_device")].groupby("device_id")["person_id"].nunique()
    assert kiosk.max() > 10
    # recycled phones: a normalized number shared by two different persons
    digits = phone.str.replace(r"\D", "", regex=True).str[-11:]
    owners = ir.assign(d=digits)[clean_phone | formatted].groupby("d")["person_id"].nunique()
    assert (owners > 1).sum() >= 1


def test_a_few_orders_are_refunded_later_some_naming_their_order(data):
    o = data["orders"]
    back, buys = o[o["amount"] < 0], o[o["amount"] >= 0].set_index("order_id")
    assert 0.01 < len(back) / len(buys) < 0.03
    assert back["order_id"].str.startswith("R").all() and back["discount"].eq(0).all()
    named = back.dropna(subset=["refund_of"])
    assert 0.6 < len(named) / len(back) < 0.95
    orig = buys.loc[named["refund_of"]]
    assert (orig["record_id"].to_numpy() == named["record_id"].to_numpy()).all()
    assert (named["ts"].to_numpy() > orig["ts"].to_numpy()).all()
    assert (-named["amount"].to_numpy() <= orig["amount"].to_numpy() + 1e-9).all()
    assert ((-named["amount"].to_numpy()) == orig["amount"].to_numpy()).mean() > 0.6  # mostly refunded in full
