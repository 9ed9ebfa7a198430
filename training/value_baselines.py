"""The customer-value benchmark's peers: BG/NBD + Gamma-Gamma by ``lifetimes``, recency, past spend rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def simple_peers(X: pd.DataFrame, horizon_days: float, actual: np.ndarray) -> dict[str, dict[str, Any]]:
    """Peers scored on features as of the calibration end ``X`` against holdout spend ``actual``."""
    from training.evaluation.value import value_report

    out: dict[str, dict[str, Any]] = {"bgnbd_gg_lifetimes": lifetimes_report(X, horizon_days, actual)}
    recency = -X["recency_days"].to_numpy()
    rec = value_report(actual, recency - recency.min(), recency)
    rec["total_ratio"] = None  # a rank, not an amount
    out["recency_only"] = rec
    rate = X["monetary_total"].to_numpy() / np.maximum(X["tenure_days"].to_numpy(), 1.0) * horizon_days
    out["past_spend_rate"] = value_report(actual, rate)
    return out


def lifetimes_report(X: pd.DataFrame, horizon_days: float, actual: np.ndarray) -> dict[str, Any]:
    """The ``lifetimes`` peer's figures; a peer that cannot be fitted is reported, never fatal.

    Unpenalized as in the literature; when that does not converge (small samples), once more with a
    small penalty, said in the entry. ``lifetimes`` prints optimizer dumps to stdout: they go to
    stderr so ``--json`` output stays JSON.
    """
    import contextlib
    import sys

    from training.evaluation.value import value_report

    for penalizer in (0.0, 0.01):
        try:
            with contextlib.redirect_stdout(sys.stderr):
                n, v = lifetimes_baseline(X, horizon_days, penalizer)
        except Exception as exc:  # lifetimes' ConvergenceError, or a singular fit on degenerate data
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            continue
        report: dict[str, Any] = value_report(actual, v, n)
        if penalizer:
            report["penalizer"] = penalizer
        return report
    return {"error": f"lifetimes did not fit: {error}"}


def lifetimes_baseline(X: pd.DataFrame, horizon_days: float, penalizer: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD + Gamma-Gamma fitted by the ``lifetimes`` package: (expected purchases, expected spend)."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bgf = BetaGeoFitter(penalizer_coef=penalizer).fit(X["frequency"], X["active_span_days"], X["tenure_days"])
    n = bgf.conditional_expected_number_of_purchases_up_to_time(horizon_days, X["frequency"], X["active_span_days"],
                                                                X["tenure_days"]).to_numpy()
    rep = (X["frequency"] > 0) & (X["repeat_monetary_mean"] > 0)
    ggf = GammaGammaFitter(penalizer_coef=penalizer).fit(X.loc[rep, "frequency"], X.loc[rep, "repeat_monetary_mean"])
    m = ggf.conditional_expected_average_profit(X["frequency"], X["repeat_monetary_mean"].fillna(0.0)).to_numpy()
    # with q <= 1 the Gamma-Gamma mean does not exist and lifetimes' formula turns negative: a total ratio
    # of -3 was reported as the peer's figure; it is a failed fit (retried with a penalty, else reported)
    q = float(ggf.params_["q"])
    if q <= 1 or not np.isfinite(m).all() or (m < 0).any():
        raise ValueError(f"Gamma-Gamma has no finite mean spend (q = {q:.3g} <= 1 or negative predictions)")
    return n, n * m
