"""The CDNOW benchmarks' holdout-fitted reference reads purchase sequences and day groups correctly (by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks._value_reference import Reference, _sequence_features, bootstrap, groups


def test_sequence_features_by_hand() -> None:
    ts = pd.to_datetime(["1997-01-01 10:00", "1997-01-01 18:00", "1997-01-11 00:00", "1997-01-31 09:00", "1997-01-20 12:00"], utc=True)
    cal = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b"], "ts": ts,
                        "amount": [10.0, 5.0, 20.0, 30.0, 7.0], "quantity": [1.0, 1.0, 2.0, 3.0, 1.0]})
    end = pd.Timestamp("1997-02-01", tz="UTC")
    out = _sequence_features(cal, end, pd.Series(["b", "a", "z"]))
    a, b, z = out.iloc[1], out.iloc[0], out.iloc[2]
    # a: purchase days 01-01 (two baskets: 15.0, 2 units), 01-11, 01-31 -> newest first
    assert (a["age0"], a["age1"], a["age2"]) == (1, 21, 31)
    assert (a["gap0"], a["gap1"]) == (20, 10) and np.isnan(a["gap2"]) and np.isnan(a["age3"])
    assert (a["amt2"], a["q2"]) == (15.0, 2.0)
    assert (a["days14"], a["spend14"], a["days30"], a["spend30"], a["days60"]) == (1, 30.0, 2, 50.0, 3)
    assert (a["gap_mean"], a["gap_max"]) == (15.0, 20.0)
    assert (b["age0"], b["days14"], b["days30"]) == (12, 1, 1) and np.isnan(b["gap_mean"])
    # a customer without purchases before the end: no history, zero counts
    assert np.isnan(z["age0"]) and z["days180"] == 0 and z["spend180"] == 0


def test_one_purchase_day_groups_by_hand() -> None:
    ts = pd.to_datetime(["1997-01-01 10:00", "1997-01-01 18:00", "1997-01-05 09:00", "1997-01-02 09:00",
                         "1997-01-03 09:00", "1997-01-04 09:00"], utc=True)
    cal = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c", "d"], "ts": ts})
    # a: two baskets on one day (one purchase day), b: two days, c and d: one day each
    ref = Reference(pd.Series(["a", "b", "c", "d"]), cal, pd.Timestamp("1997-01-06", tz="UTC"), pd.DataFrame(),
                    np.array([0.0, 12.0, 5.0, 0.0]))
    g = groups(ref, np.array([0.1, 0.9, 0.8, 0.2]))
    assert g["one_day_share"] == 0.75 and g["buy_rate_multi_day"] == 1.0 and g["buy_rate_one_day"] == 1 / 3
    assert g["auc_one_day"] == 1.0 and np.isnan(g["auc_multi_day"])  # the multi-day group has no non-buyer


def test_bootstrap_interval_holds_the_estimate() -> None:
    rng = np.random.default_rng(1)
    spend = np.where(rng.random(500) < 0.3, rng.gamma(2.0, 20.0, 500), 0.0)
    score = spend + rng.normal(0, 15, 500)
    ci = bootstrap(spend, score, score, n=50)
    assert ci["auc_ci"][0] < ci["auc_ci"][1] and 0.5 < ci["auc_ci"][0]
    assert ci["spearman_ci"][0] < ci["spearman_ci"][1]
