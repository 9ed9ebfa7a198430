"""The recommender's temporal holdout (training.recommender_holdout): what it scores and on what."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.recommenders import make
from training.recommender_holdout import Holdout


def events(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": rng.integers(0, 30, n).astype(str), "item": rng.integers(0, 40, n).astype(str),
                         "timestamp": pd.Timestamp("2026-01-01", tz="UTC")
                         + pd.to_timedelta(rng.integers(0, 60, n), unit="D"),
                         "weight": np.ones(n, np.float32)})


def test_a_weighting_that_keeps_nothing_before_the_cut_scores_zero():
    """A champion whose event weights keep no event before the cut learned nothing: nDCG 0, not a crash.

    (The gate refits the champion's configuration on its own weighting of the events; when that
    weighting drops every event before the cut, the window model's fit raised on an empty matrix.)
    """
    df = events()
    holdout = Holdout.build(df, 14, 10)
    own = holdout.score(lambda: make("window_ease"), df)
    assert own["n_users"] == len(holdout.rows) > 0 and own["ndcg"] > 0
    after_cut_only = df[df["timestamp"] >= holdout.cut]
    scored = holdout.score(lambda: make("window_ease"), after_cut_only)
    assert scored["n_users"] == own["n_users"]
    assert scored["ndcg"] == scored["map"] == scored["hit_rate"] == 0.0
