"""Value (spend) metrics for LTV models, vectorized numpy.

All take the actual spend and a prediction for the same customers, and are
measured over every customer of the cohort, zeros included (most customers spend
nothing in a holdout, so the ties at zero dominate the rank statistics).

- :func:`spearman`: rank correlation, ties at average ranks.
- :func:`normalized_gini`: Gini of the cumulative-spend curve ordered by prediction,
  divided by the Gini of the perfect ordering (1 = perfect ranking, 0 = random).
- :func:`top_decile_capture`: share of actual spend held by the top 10% by prediction.
- :func:`total_ratio`: total predicted / total actual spend.
- :func:`decile_table`: counts, mean predicted and actual spend, share and lift per decile.

Tied predictions are treated as a random order among themselves (in expectation),
so a constant prediction scores Gini 0 and captures 10% in its top decile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from training.evaluation.classification import tie_averaged


def _check(actual: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    actual = np.asarray(actual, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if actual.shape != pred.shape:
        raise ValueError(f"actual and predicted differ in length: {len(actual)} vs {len(pred)}")
    if not (np.isfinite(actual).all() and np.isfinite(pred).all()):
        raise ValueError("actual and predicted values must be finite")
    return actual, pred


def spearman(actual: np.ndarray, pred: np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of average ranks."""
    actual, pred = _check(actual, pred)
    ra, rp = rankdata(actual), rankdata(pred)
    ra, rp = ra - ra.mean(), rp - rp.mean()
    denom = np.sqrt((ra**2).sum() * (rp**2).sum())
    return float((ra * rp).sum() / denom) if denom > 0 else float("nan")


def _gini(sorted_actual: np.ndarray) -> float:
    n = len(sorted_actual)
    total = sorted_actual.sum()
    if n == 0 or total <= 0:
        return float("nan")
    captured = np.cumsum(sorted_actual) / total
    return float(captured.mean() - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, pred: np.ndarray) -> float:
    """Gini of ``actual`` ordered by ``pred`` (highest first) over the Gini of the ideal order."""
    actual, pred = _check(actual, pred)
    ideal = _gini(np.sort(actual)[::-1])
    return _gini(tie_averaged(actual, pred)) / ideal if ideal > 0 else float("nan")


def top_share_capture(actual: np.ndarray, pred: np.ndarray, share: float = 0.1) -> float:
    """Share of total actual spend held by the top ``share`` of customers by prediction."""
    actual, pred = _check(actual, pred)
    if actual.sum() <= 0:
        return float("nan")
    k = share * len(actual)
    cum = np.r_[0.0, np.cumsum(tie_averaged(actual, pred))]
    lo = int(np.floor(k))
    frac = k - lo
    top = cum[lo] + (frac * (cum[lo + 1] - cum[lo]) if lo < len(actual) else 0.0)
    return float(top / actual.sum())


def top_decile_capture(actual: np.ndarray, pred: np.ndarray) -> float:
    """Share of total actual spend held by the 10% of customers predicted highest."""
    return top_share_capture(actual, pred, 0.1)


def total_ratio(actual: np.ndarray, pred: np.ndarray) -> float:
    """Total predicted over total actual spend (1 = unbiased in aggregate)."""
    actual, pred = _check(actual, pred)
    return float(pred.sum() / actual.sum()) if actual.sum() > 0 else float("nan")


def decile_table(actual: np.ndarray, pred: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Deciles by prediction (1 = highest): n, mean predicted, mean actual, share of spend, lift."""
    actual, pred = _check(actual, pred)
    n = len(actual)
    order = np.argsort(-pred, kind="stable")
    b = np.empty(n, dtype=np.int64)
    b[order] = np.arange(n) * n_bins // max(n, 1)
    v_b = np.arange(n) * n_bins // max(n, 1)  # bins along the tie-averaged order
    act = np.bincount(v_b, weights=tie_averaged(actual, pred), minlength=n_bins)
    cnt = np.bincount(b, minlength=n_bins)
    prd = np.bincount(b, weights=pred, minlength=n_bins)
    mean_all = actual.mean() if n else np.nan
    return pd.DataFrame({
        "decile": np.arange(1, n_bins + 1),
        "n": cnt,
        "mean_predicted": prd / np.maximum(cnt, 1),
        "mean_actual": act / np.maximum(cnt, 1),
        "share_of_actual": act / max(actual.sum(), 1e-12),
        "lift": (act / np.maximum(cnt, 1)) / mean_all if mean_all > 0 else np.nan,
    })


def value_report(actual: np.ndarray, pred: np.ndarray, p_buy: np.ndarray | None = None) -> dict[str, float]:
    """The customer-value benchmark's figures: AUC (if ``p_buy``), Spearman, Gini, top-decile, total ratio."""
    from training.evaluation.classification import roc_auc

    actual, pred = _check(actual, pred)
    out = {}
    out["auc"] = roc_auc(actual > 0, pred if p_buy is None else p_buy)
    out.update(spearman=spearman(actual, pred), gini=normalized_gini(actual, pred),
               top_decile_capture=top_decile_capture(actual, pred), total_ratio=total_ratio(actual, pred))
    return out
