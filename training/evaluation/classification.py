"""Binary classification metrics (churn, propensity, "any purchase"), vectorized numpy.

Ties in the score are handled exactly: AUC uses average ranks (the Mann-Whitney
statistic), lift and gain average over the ways tied scores could be ordered.

- :func:`roc_auc`, :func:`roc_curve`, :func:`pr_curve`, :func:`average_precision`
- :func:`calibration_curve`, :func:`brier`, :func:`log_loss`
- :func:`lift_table`: deciles by score with rate, lift and cumulative gain
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def _check(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(np.float64).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != score.shape:
        raise ValueError(f"labels and scores differ in length: {len(y)} vs {len(score)}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1")
    if not np.isfinite(score).all():
        raise ValueError("scores must be finite")
    return y, score


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (probability a random positive outranks a random negative; ties count 1/2)."""
    y, score = _check(y, score)
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)  # average ranks for ties
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _curve_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct threshold, highest first."""
    order = np.argsort(-score, kind="stable")
    s, yy = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each tied block
    tp = np.cumsum(yy)[last]
    fp = (last + 1) - tp
    return tp, fp, s[last]


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False positive rate, true positive rate and thresholds (starting at (0, 0))."""
    y, score = _check(y, score)
    tp, fp, thr = _curve_points(y, score)
    tpr = np.r_[0.0, tp / max(tp[-1], 1)]
    fpr = np.r_[0.0, fp / max(fp[-1], 1)]
    return fpr, tpr, np.r_[np.inf, thr]


def pr_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and thresholds, from the highest threshold down."""
    y, score = _check(y, score)
    tp, fp, thr = _curve_points(y, score)
    return tp / (tp + fp), tp / max(y.sum(), 1), thr


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the PR curve as the step sum of precision over recall increments."""
    precision, recall, _ = pr_curve(y, score)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def calibration_curve(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability vs observed rate in ``n_bins`` equal-count bins of ``prob``."""
    y, prob = _check(y, prob)
    order = np.argsort(prob, kind="stable")
    bins = np.empty(len(y), dtype=np.int64)
    bins[order] = np.arange(len(y)) * n_bins // max(len(y), 1)
    df = pd.DataFrame({"bin": bins, "p": prob, "y": y})
    out = df.groupby("bin").agg(n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    return out.reset_index()


def brier(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared error of probabilities."""
    y, prob = _check(y, prob)
    return float(np.mean((prob - y) ** 2))


def log_loss(y: np.ndarray, prob: np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of probabilities (clipped to [eps, 1 - eps])."""
    y, prob = _check(y, prob)
    p = np.clip(prob, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def tie_averaged(values: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``values`` ordered by ``score`` descending, each tied block replaced by its mean.

    Any metric that sums ``values`` down this order then equals its expectation over
    random orderings of tied scores (so a constant score gets the "random" curve).
    """
    order = np.argsort(-score, kind="stable")
    v, s = np.asarray(values, dtype=np.float64)[order], score[order]
    block = np.r_[0, np.cumsum(np.diff(s) != 0)]
    sums = np.bincount(block, weights=v)
    counts = np.bincount(block)
    return (sums / counts)[block]


def lift_table(y: np.ndarray, score: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Deciles by score (1 = highest): count, positives, rate, lift over the base rate, cumulative gain."""
    y, score = _check(y, score)
    n = len(y)
    v = tie_averaged(y, score)
    b = np.arange(n) * n_bins // max(n, 1)
    pos = np.bincount(b, weights=v, minlength=n_bins)
    cnt = np.bincount(b, minlength=n_bins)
    base = y.mean() if n else np.nan
    rate = pos / np.maximum(cnt, 1)
    return pd.DataFrame({
        "decile": np.arange(1, n_bins + 1),
        "n": cnt,
        "positives": pos,
        "rate": rate,
        "lift": rate / base if base > 0 else np.nan,
        "cumulative_gain": np.cumsum(pos) / max(y.sum(), 1e-12),
    })
