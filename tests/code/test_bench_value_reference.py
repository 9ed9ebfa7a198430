"""The CDNOW benchmark's holdout-fitted reference reads purchase sequences correctly (hand-computed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.customer_value import _sequence_features


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
