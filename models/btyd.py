"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma spend models in numpy/scipy.

portrait uses them as features ("buy till you die" summaries of a customer's
history) for its gradient-boosted and ZILN value models, and as a fallback when
a data set is too small to learn from. The formulas and the time rescaling follow
the ``lifetimes`` package, which the CDNOW benchmark uses as the reference
implementation (``tests/model/test_value_btyd.py`` checks both agree).

Inputs are per-customer sufficient statistics, as produced by
``features.transactions.features_as_of``: ``frequency`` (repeat purchase days, x),
``active_span_days`` (t_x) and ``tenure_days`` (T), all in days; Gamma-Gamma also
needs ``repeat_monetary_mean`` (m). :class:`AgeCurve` is the cohort's spend rate by customer
age (a power law fitted to ``features.transactions.spend_by_age``): portrait's horizon and
age scaling for value models trained on shorter windows than they predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from models.base import Predictor


def _cols(X: Any, names: tuple[str, ...]) -> list[np.ndarray]:
    if isinstance(X, pd.DataFrame):
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise KeyError(f"missing column(s) {missing}; found {list(X.columns)}")
        return [X[n].to_numpy(np.float64) for n in names]
    arr = np.asarray(X, dtype=np.float64)
    return [arr[:, i] for i in range(len(names))]


class BetaGeo(Predictor):
    """BG/NBD: purchases while alive follow a Poisson process, dropout after each purchase.

    Parameters
    ----------
    horizon_days : float
        Horizon of :meth:`predict` (expected purchase days in the next ``horizon_days``).
    penalizer : float
        L2 penalty on the parameters (as in ``lifetimes``); 0 is plain maximum likelihood.
    """

    columns = ("frequency", "active_span_days", "tenure_days")

    def __init__(self, horizon_days: float = 180.0, penalizer: float = 0.0) -> None:
        self.horizon_days = horizon_days
        self.penalizer = penalizer

    @staticmethod
    def _nll(log_params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray,
             penalizer: float) -> float:
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + tx), -np.inf)
        ll = a1 + a2 + np.logaddexp(a3, a4)
        return -(w * ll).sum() / w.sum() + penalizer * (np.exp(log_params) ** 2).sum()

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> "BetaGeo":
        """Fit r, alpha, a, b by maximum likelihood from ``frequency, active_span_days, tenure_days``."""
        x, tx, T = _cols(X, self.columns)
        if len(x) == 0 or np.any(tx > T + 1e-9) or np.any(x < 0):
            raise ValueError("BetaGeo.fit needs rows with frequency >= 0 and active_span_days <= tenure_days")
        # identical histories share one likelihood term: fit on the distinct patterns
        pat, w = np.unique(np.c_[x, tx, T], axis=0, return_counts=True)
        self.scale_ = 10.0 / max(T.max(), 1e-9)  # lifetimes' rescaling keeps the optimizer well conditioned
        args = (pat[:, 0], pat[:, 1] * self.scale_, pat[:, 2] * self.scale_, w.astype(np.float64), self.penalizer)
        best = None
        for start in (np.zeros(4), np.log([0.5, 1.0, 0.5, 2.0])):
            res = minimize(self._nll, start, args=args, method="Nelder-Mead",
                           options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-10})
            if best is None or res.fun < best.fun:
                best = res
        r, alpha, a, b = np.exp(best.x)
        self.params_ = {"r": r, "alpha": alpha / self.scale_, "a": a, "b": b}
        self.loglik_ = -best.fun
        return self

    def expected_purchases(self, X: Any, t: float) -> np.ndarray:
        """E[purchase days in (T, T + t] | history], t in days."""
        self._check_fitted("params_")
        x, tx, T = _cols(X, self.columns)
        p = self.params_
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        z = t / (alpha + T + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - hyp * ((alpha + T) / (alpha + t + T)) ** (r + x)
        out = first * second / self._odds_dead(x, tx, T)
        return np.nan_to_num(np.maximum(out, 0.0), nan=0.0, posinf=0.0)

    def _odds_dead(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        p = self.params_
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (p["a"] / np.maximum(p["b"] + x - 1, 1e-12)) * ((p["alpha"] + T) / (p["alpha"] + tx)) ** (p["r"] + x)
        return 1.0 + np.where(x > 0, odds, 0.0)

    def p_alive(self, X: Any) -> np.ndarray:
        """P(still alive | history)."""
        self._check_fitted("params_")
        x, tx, T = _cols(X, self.columns)
        return 1.0 / self._odds_dead(x, tx, T)

    def predict(self, X: Any) -> np.ndarray:
        """Expected purchase days in the next ``horizon_days``."""
        return self.expected_purchases(X, self.horizon_days)

    def population_expected(self, t: np.ndarray) -> np.ndarray:
        """E[X(t)] for a new customer (purchase days in (0, t]), t in days."""
        p = self.params_
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        t = np.asarray(t, dtype=np.float64)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


class GammaGamma(Predictor):
    """Gamma-Gamma spend model: expected spend per purchase day given the repeat average.

    Fitted on customers with repeat purchases (``frequency > 0`` and positive
    ``repeat_monetary_mean``); predicts the population mean for everyone else.
    """

    columns = ("frequency", "repeat_monetary_mean")

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    @staticmethod
    def _nll(log_params: np.ndarray, x: np.ndarray, m: np.ndarray, penalizer: float) -> float:
        p, q, v = np.exp(log_params)
        ll = (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
              + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
        return -ll.mean() + penalizer * (np.exp(log_params) ** 2).sum()

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> "GammaGamma":
        """Fit p, q, v on the customers with repeat purchases of positive value."""
        x, m = _cols(X, self.columns)
        ok = (x > 0) & np.isfinite(m) & (m > 0)
        if ok.sum() < 2:
            raise ValueError("GammaGamma.fit needs at least two customers with repeat purchases of positive value")
        self.scale_ = float(np.mean(m[ok]))  # fit in units of the mean spend for conditioning
        best = None
        for start in (np.zeros(3), np.log([2.0, 3.0, 2.0])):
            res = minimize(self._nll, start, args=(x[ok], m[ok] / self.scale_, self.penalizer), method="Nelder-Mead",
                           options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-12})
            if best is None or res.fun < best.fun:
                best = res
        p, q, v = np.exp(best.x)
        self.params_ = {"p": p, "q": q, "v": v * self.scale_}
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Expected spend per purchase day (population mean when there are no repeats)."""
        self._check_fitted("params_")
        x, m = _cols(X, self.columns)
        p, q, v = self.params_["p"], self.params_["q"], self.params_["v"]
        m = np.where(np.isfinite(m) & (x > 0), m, 0.0)
        pop = p * v / (q - 1) if q > 1 else np.nan
        cond = (p * (v + x * m)) / (p * x + q - 1)
        return np.where(x > 0, cond, pop)


class AgeCurve(Predictor):
    """Spend per customer-day as a power law of customer age: ``s(a) = c * (a / 7) ** k``.

    Fitted by weighted least squares of log rate on log age over age bins (weights: exposure),
    ignoring the first ``min_age_days`` (the acquisition burst) and bins observed for fewer than
    ``min_exposure_share`` of the best-observed bin's customer-days. :meth:`expected` integrates
    it over a customer's future ages: the expected spend in ``[age, age + horizon)`` of an average
    customer of that age, which extrapolates smoothly past the ages seen in training.

    Parameters
    ----------
    min_age_days : float
        Bins starting before this age are left out of the fit: a customer's first weeks hold the
        acquisition burst (the second and third purchases), which a power law of the later life
        does not follow; fitted from day 14 on, CDNOW's exponent is too steep and long horizons
        come out ~10-15% low.
    min_exposure_share : float
        Bins with less exposure than this share of the largest are left out (the oldest ages are
        seen only for the earliest customers).
    k_bounds : tuple of float
        Clip of the fitted exponent (k > -1 keeps the integral finite at age 0).
    """

    def __init__(self, min_age_days: float = 56.0, min_exposure_share: float = 0.5,
                 k_bounds: tuple[float, float] = (-0.95, 0.5)) -> None:
        self.min_age_days = min_age_days
        self.min_exposure_share = min_exposure_share
        self.k_bounds = k_bounds

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> "AgeCurve":
        """Fit from ``age_start_days, spend, exposure_days`` rows (``features.transactions.spend_by_age``)."""
        age, spend, expo = _cols(X, ("age_start_days", "spend", "exposure_days"))
        if not (spend.sum() > 0 and expo.sum() > 0):
            raise ValueError("no repeat spend to fit the age curve to")
        width = np.diff(age).min() if len(age) > 1 else 7.0
        ok = (age >= self.min_age_days) & (expo >= self.min_exposure_share * expo.max()) & (spend > 0)
        if ok.sum() < 2:  # too short a history: a flat rate over everything observed after day 0
            self.k_, self.c_ = 0.0, float(spend.sum() / max(expo.sum(), 1e-12))
            return self
        mid = (age[ok] + width / 2) / 7
        k, logc = np.polyfit(np.log(mid), np.log(spend[ok] / expo[ok]), 1, w=np.sqrt(expo[ok]))
        self.k_ = float(np.clip(k, *self.k_bounds))
        # refit the level with the clipped exponent: exposure-weighted mean of log(rate) - k log(age)
        w = expo[ok]
        self.c_ = float(np.exp(np.sum(w * (np.log(spend[ok] / expo[ok]) - self.k_ * np.log(mid))) / w.sum()))
        return self

    def rate(self, age_days: Any) -> np.ndarray:
        """Spend per customer-day at ``age_days``."""
        self._check_fitted("k_")
        return self.c_ * (np.maximum(np.asarray(age_days, dtype=np.float64), 1.0) / 7) ** self.k_

    def expected(self, age_days: Any, horizon_days: float) -> np.ndarray:
        """Expected spend of an average customer over ages ``[age_days, age_days + horizon_days)``."""
        self._check_fitted("k_")
        a = np.maximum(np.asarray(age_days, dtype=np.float64), 1.0)
        e = self.k_ + 1.0
        return self.c_ * 7.0 ** -self.k_ * ((a + horizon_days) ** e - a**e) / e

    def predict(self, X: Any) -> np.ndarray:
        """Expected spend over the next 180 days for rows with ``tenure_days`` (age at the cutoff)."""
        (age,) = _cols(X, ("tenure_days",))
        return self.expected(age, 180.0)
