"""Profile of an audience against the population: share per tag value and the TGI index.

TGI (target group index) = share of the audience with a tag value / share of the
population with it x 100: 100 = as common as everywhere, 200 = twice as common.
Categorical, string and boolean columns (the ``tag_*`` rule tags, gender, city, ...)
are profiled per value; numeric features are cut into population quantile bins
(``bins``, default 5) so "affinity_skincare in its top fifth" shows up as a row.

Example::

    table = profile(members, features, columns=["tag_rfm_segment", "gender", "age"])
    table.sort_values("tgi", ascending=False).head(10)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.audience import AudienceError, latest_snapshot

SKIP = ("one_id", "event_timestamp")
MAX_VALUES = 30  # categorical columns with more distinct values keep their 30 most common


def default_columns(features: pd.DataFrame) -> list[str]:
    """Columns worth profiling: tags first, then other categorical/boolean, then numeric."""
    cols = [c for c in features.columns if c not in SKIP]
    tags = [c for c in cols if c.startswith("tag_")]
    rest = [c for c in cols if c not in tags]
    return tags + rest


def _labels(col: pd.Series, bins: int) -> pd.Series:
    """A categorical label per row: the value itself, or a quantile bin for numbers."""
    if pd.api.types.is_bool_dtype(col.dtype) or not pd.api.types.is_numeric_dtype(col.dtype):
        lab = col.astype("string")
        top = lab.value_counts().index[:MAX_VALUES]
        return lab.where(lab.isin(top), other="(other)").fillna("(missing)")
    values = col.astype("float64")
    uniq = values.dropna().unique()
    if len(uniq) <= bins:  # a few distinct numbers: keep them as values
        return values.map(lambda v: "(missing)" if pd.isna(v) else f"{v:g}").astype("string")
    edges = np.unique(np.nanquantile(values, np.linspace(0, 1, bins + 1)))
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    names = np.array([f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}"
                      for i in range(len(edges) - 1)], dtype=object)
    out = pd.Series(names[codes], index=col.index, dtype="string")
    return out.where(values.notna(), "(missing)")


def profile(members: Iterable[str], features: pd.DataFrame, columns: Iterable[str] | None = None,
            bins: int = 5, min_count: int = 1) -> pd.DataFrame:
    """TGI table of ``members`` (one_ids) against the latest snapshot of ``features``.

    Parameters
    ----------
    members : iterable of one_id
    features : DataFrame with ``one_id`` (and ``event_timestamp``; the latest snapshot is used)
    columns : columns to profile (default :func:`default_columns`)
    bins : quantile bins for numeric columns
    min_count : drop values held by fewer audience members than this

    Returns
    -------
    DataFrame with ``column, value, audience_count, audience_share, population_share, tgi``,
    one row per (column, value), ordered by column then TGI descending.
    """
    snap = latest_snapshot(features)
    inside = snap["one_id"].astype(str).isin(pd.Index(list(map(str, members)))).to_numpy()
    n_in = int(inside.sum())
    if n_in == 0:
        raise AudienceError("none of the audience's members are in the features table")
    cols = list(columns) if columns is not None else default_columns(snap)
    missing = [c for c in cols if c not in snap.columns]
    if missing:
        raise AudienceError(f"unknown column(s) to profile: {', '.join(missing)}")
    frames = []
    for c in cols:
        lab = _labels(snap[c], bins)
        pop = lab.value_counts()
        aud = lab[inside].value_counts()
        t = pd.DataFrame({"population_count": pop}).join(pd.DataFrame({"audience_count": aud}), how="left")
        t["audience_count"] = t["audience_count"].fillna(0).astype("int64")
        t["audience_share"] = t["audience_count"] / n_in
        t["population_share"] = t["population_count"] / len(snap)
        t["tgi"] = 100.0 * t["audience_share"] / t["population_share"]
        t.index.name = "value"
        t = t.reset_index()
        t.insert(0, "column", c)
        frames.append(t[t["audience_count"] >= min_count].sort_values("tgi", ascending=False))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out[["column", "value", "audience_count", "audience_share", "population_share", "tgi"]]


def top_traits(table: pd.DataFrame, n: int = 10, min_share: float = 0.05) -> pd.DataFrame:
    """The ``n`` most over-represented values (highest TGI) held by at least ``min_share`` of the audience."""
    keep = table[(table["audience_share"] >= min_share) & (table["value"] != "(missing)")]
    return keep.sort_values("tgi", ascending=False).head(n).reset_index(drop=True)
