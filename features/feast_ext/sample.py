"""Synthetic wide feature tables in the shape of ``customer_features.parquet``, for tests and benchmarks.

Columns: ``one_id``, ``event_timestamp`` (µs, UTC; one snapshot per cutoff, stacked), then
float, integer, boolean and ``tag_*`` string columns, with some nulls, so every encoder
path (and the missing-value path) is exercised.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

TAG_VALUES = {"tag_lifecycle": ["new", "active", "dormant", "churned"],
              "tag_rfm_segment": ["champions", "loyal", "at_risk", "hibernating", "new", "promising",
                                  "need_attention", "lost"],
              "tag_aipl": ["aware", "interest", "purchase", "loyal"]}


def _utc(ts: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def customer_table(n: int, cutoffs: list[datetime], n_float: int = 24, n_int: int = 4, seed: int = 0,
                   null_share: float = 0.02) -> pd.DataFrame:
    """``n`` customers x ``len(cutoffs)`` snapshots; ``n_float + n_int + 1 + 3`` feature columns."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:07d}" for i in range(n)], dtype=object)
    frames = []
    for k, cutoff in enumerate(cutoffs):
        cols: dict[str, object] = {"one_id": ids,
                                   "event_timestamp": pd.Series(_utc(cutoff), index=range(n))
                                   .astype("datetime64[us, UTC]")}
        for j in range(n_float):
            v = rng.gamma(2.0, 10.0, n).round(4)
            v[rng.random(n) < null_share] = np.nan
            cols[f"f{j:02d}"] = v
        for j in range(n_int):
            cols[f"n{j:02d}"] = rng.poisson(3 + k, n).astype("int64")
        cols["has_app"] = rng.random(n) < 0.5
        for name, values in TAG_VALUES.items():
            tag = np.asarray(values, dtype=object)[rng.integers(0, len(values), n)]
            tag[rng.random(n) < null_share] = None
            cols[name] = tag
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)


def item_table(n: int, cutoffs: list[datetime], seed: int = 1) -> pd.DataFrame:
    """``n`` items x ``len(cutoffs)`` snapshots with popularity, conversion and category columns."""
    rng = np.random.default_rng(seed)
    frames = []
    for cutoff in cutoffs:
        frames.append(pd.DataFrame({
            "item_id": [f"i{i:05d}" for i in range(n)],
            "event_timestamp": pd.Series(_utc(cutoff), index=range(n)).astype("datetime64[us, UTC]"),
            "popularity_30d": rng.poisson(20, n).astype("int64"),
            "conversion_rate": rng.random(n).round(4),
            "category": np.asarray(["books", "music", "toys"], dtype=object)[rng.integers(0, 3, n)],
        }))
    return pd.concat(frames, ignore_index=True)
