"""Resolution quality against ground truth: pairwise precision/recall/F1 over source records.

A pair of records is "same person" in the prediction when they share a one_id (or a
group label) and in the truth when they share a ``person_id``. Counted exactly from
the contingency table (no pair enumeration): ``sum C(n, 2)`` over cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs(counts: np.ndarray) -> int:
    c = counts.astype(np.int64)
    return int((c * (c - 1) // 2).sum())


def pairwise_quality(predicted, truth) -> dict:
    """Precision, recall, F1 and cluster sizes of ``predicted`` labels vs ``truth`` labels (same order)."""
    p = pd.factorize(pd.Series(predicted))[0]
    t = pd.factorize(pd.Series(truth))[0]
    if (p < 0).any() or (t < 0).any():
        raise ValueError("pairwise_quality: labels must not be null")
    cell = np.unique(p.astype(np.int64) * (t.max() + 1) + t, return_counts=True)[1]
    tp = _pairs(cell)
    pred_pairs = _pairs(np.bincount(p))
    true_pairs = _pairs(np.bincount(t))
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"records": int(len(p)), "predicted_people": int(p.max() + 1) if len(p) else 0,
            "true_people": int(t.max() + 1) if len(t) else 0,
            "precision": precision, "recall": recall, "f1": f1,
            "largest_cluster": int(np.bincount(p).max()) if len(p) else 0,
            "largest_true_person": int(np.bincount(t).max()) if len(t) else 0}


def quality_vs_truth(record_map: pd.DataFrame, truth: pd.DataFrame, label: str = "one_id") -> dict:
    """Join a record map (source, record_id, ``label``) with truth (source, record_id, person_id)."""
    m = record_map[["source", "record_id", label]].merge(truth[["source", "record_id", "person_id"]],
                                                         on=["source", "record_id"], how="inner")
    if len(m) != len(truth):
        raise ValueError(f"quality_vs_truth: {len(truth) - len(m)} truth records have no prediction")
    return pairwise_quality(m[label].to_numpy(), m["person_id"].to_numpy())
