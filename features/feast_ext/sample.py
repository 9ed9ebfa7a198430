"""Synthetic feature tables in the shape ``portrait features build`` writes, for tests and benchmarks.

``customer_table`` follows ``features.build.customer_columns`` (names and dtypes, with
affinity columns for a few categories): ``one_id``, ``event_timestamp`` (µs, UTC, one snapshot
per cutoff, stacked), then the feature and ``tag_*`` columns, with some nulls so the
missing-value paths of every encoder run too. Values are random; only the shape matters.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

CATEGORIES = ("books", "electronics", "fashion", "food", "home", "sports", "toys", "beauty")


def _utc(ts: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _column(dtype: str, n: int, k: int, rng: np.random.Generator, null_share: float):
    if dtype == "float64":
        v = rng.gamma(2.0, 10.0, n).round(4)
        v[rng.random(n) < null_share] = np.nan
        return v
    if dtype == "int64":
        return rng.poisson(3 + k, n).astype("int64")
    if dtype == "bool":
        return rng.random(n) < 0.3
    values = np.asarray(["low", "mid", "high", "none", "active"], dtype=object)[rng.integers(0, 5, n)]
    values[rng.random(n) < null_share] = None
    return values


def customer_table(n: int, cutoffs: list[datetime], seed: int = 0, null_share: float = 0.02,
                   categories: tuple[str, ...] = CATEGORIES) -> pd.DataFrame:
    """``n`` customers x ``len(cutoffs)`` snapshots with the columns of ``customer_features.parquet``."""
    from features.build import customer_columns

    spec = customer_columns(list(categories))
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:07d}" for i in range(n)], dtype=object)
    frames = []
    for k, cutoff in enumerate(cutoffs):
        cols: dict[str, object] = {"one_id": ids, "event_timestamp": pd.Series(_utc(cutoff), index=range(n))
                                   .astype("datetime64[us, UTC]")}
        for name, dtype, _ in spec:
            cols[name] = _column(dtype, n, k, rng, null_share)
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)


def item_table(n: int, cutoffs: list[datetime], seed: int = 1) -> pd.DataFrame:
    """``n`` items x ``len(cutoffs)`` snapshots with the columns of ``item_features.parquet``."""
    from features.build import ITEM_COLUMNS

    rng = np.random.default_rng(seed)
    frames = []
    for k, cutoff in enumerate(cutoffs):
        cols: dict[str, object] = {"item_id": np.array([f"i{i:05d}" for i in range(n)], dtype=object),
                                   "event_timestamp": pd.Series(_utc(cutoff), index=range(n)).astype("datetime64[us, UTC]")}
        for name, dtype, _ in ITEM_COLUMNS:
            cols[name] = _column(dtype, n, k, rng, 0.0)
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)
