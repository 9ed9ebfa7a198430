"""Zero-inflated lognormal (ZILN) value model in PyTorch (Wang, Liu & Miao 2019).

A small MLP maps customer features to three numbers: the logit of P(spend > 0), and
the mean ``mu`` and scale ``sigma`` of log-spend given a purchase. The loss is the
ZILN negative log-likelihood: binary cross-entropy on "bought at all" plus the
lognormal NLL on the positive rows. The model therefore gives

- :meth:`predict_proba`: P(buy) (for AUC and propensity-style use),
- :meth:`predict`: expected spend ``p * exp(mu + sigma^2 / 2)``,
- :meth:`predict_quantiles`: quantiles of the spend distribution,
- :meth:`predict_outputs`: all three as named columns (what the registered pyfunc returns).

Inputs are non-negative-ish tabular features: each column is ``sign(x) * log1p(|x|)``
transformed, clipped to its training range (no extrapolation), standardized with training
statistics (a column constant in training gets scale 1, i.e. it is always 0), NaN set to 0 with
a missing indicator; text columns are left out. Training uses Adam with early stopping on a validation set (time-based,
given by the caller) or on a held-out tail of the training rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.base import Predictor


class ZILNRegressor(Predictor):
    """ZILN spend model.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer sizes of the MLP.
    epochs, batch_size, learning_rate, weight_decay : training schedule (Adam).
    patience : int
        Epochs without validation improvement before stopping (best weights are kept).
    seed : int
        Torch and numpy seed.
    num_threads : int
        Torch intra-op threads (set globally for the process during ``fit``).
    """

    def __init__(self, hidden: tuple[int, ...] = (64, 32), epochs: int = 60, batch_size: int = 2048,
                 learning_rate: float = 3e-3, weight_decay: float = 1e-5, patience: int = 5, seed: int = 0,
                 num_threads: int = 1) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.num_threads = num_threads  # torch intra-op threads; 1 avoids spin-waiting on a busy machine

    # -- preprocessing -------------------------------------------------------------
    def _matrix(self, X: Any, fit: bool = False) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):  # an array: columns in fit's order
            arr = np.asarray(X, dtype=object)
            X = pd.DataFrame(arr, columns=self.input_names_ if not fit else range(arr.shape[1]))
        if fit:
            self.input_names_ = list(X.columns)  # numeric and boolean columns only; text columns (city, tags) are left to the tree models
            self.feature_names_ = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])
                                   or pd.api.types.is_bool_dtype(X[c])]
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise KeyError(f"missing feature column(s) {missing}")
        a = X[self.feature_names_].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        nan = ~np.isfinite(a)
        a = np.where(nan, 0.0, a)
        a = np.sign(a) * np.log1p(np.abs(a))
        if fit:  # statistics of the training rows only (never the eval_set's)
            self.mean_ = a.mean(axis=0)
            std = a.std(axis=0)
            # a column constant in training carries no information; a scale of 1 (not ~0) keeps it at 0 below
            self.std_ = np.where(std > 1e-6, std, 1.0)
            self.lo_, self.hi_ = a.min(axis=0), a.max(axis=0)
            self.nan_cols_ = np.flatnonzero(nan.any(axis=0))
        # no extrapolation: values outside the training range are clipped to it. Without this, a column that
        # was constant on the training rows (a campaign that started later: contacts all 0) reached the network
        # as (1 - 0) / 1e-6 ~ 1e6 on newer rows, and its outputs exploded on exactly the rows being scored.
        lo, hi = getattr(self, "lo_", None), getattr(self, "hi_", None)
        if lo is not None:
            a = np.clip(a, lo, hi)
        a = (a - self.mean_) / self.std_
        a[nan] = 0.0
        return np.hstack([a, nan[:, self.nan_cols_].astype(np.float64)]).astype(np.float32)

    def _net(self, n_in: int) -> Any:
        import torch.nn as nn

        layers: list[Any] = []
        for h in self.hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU()]
            n_in = h
        layers.append(nn.Linear(n_in, 3))
        return nn.Sequential(*layers)

    @staticmethod
    def _loss(out: Any, y: Any) -> Any:
        import torch
        import torch.nn.functional as F

        logit, mu, sigma = out[:, 0], out[:, 1], F.softplus(out[:, 2]) + 1e-3
        pos = (y > 0).float()
        bce = F.binary_cross_entropy_with_logits(logit, pos, reduction="sum")
        logy = torch.log(torch.clamp(y, min=1e-6))
        nll = pos * (torch.log(sigma) + 0.5 * ((logy - mu) / sigma) ** 2)
        return (bce + nll.sum()) / len(y)

    # -- fit / predict -------------------------------------------------------------
    def fit(self, X: Any, y: Any, eval_set: tuple[Any, Any] | None = None, **kwargs: Any) -> "ZILNRegressor":
        """Train with early stopping on ``eval_set`` (or the last 10% of rows when absent)."""
        import torch

        y = np.asarray(y, dtype=np.float64)
        if np.any(y < 0) or not np.all(np.isfinite(y)):
            raise ValueError("ZILN targets must be finite and non-negative")
        A = self._matrix(X, fit=True)
        if eval_set is None:
            cut = int(len(A) * 0.9)
            Av, yv, A, y = A[cut:], y[cut:], A[:cut], y[:cut]
        else:
            Av, yv = self._matrix(eval_set[0]), np.asarray(eval_set[1], dtype=np.float64)
        torch.manual_seed(self.seed)
        torch.set_num_threads(self.num_threads)
        rng = np.random.default_rng(self.seed)
        net = self._net(A.shape[1])
        # start mu at the mean log-spend of buyers so early epochs are not spent shifting the scale
        with torch.no_grad():
            net[-1].bias[1] = float(np.log(y[y > 0]).mean()) if (y > 0).any() else 0.0
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        At, yt = torch.from_numpy(A), torch.from_numpy(y.astype(np.float32))
        Avt, yvt = torch.from_numpy(Av), torch.from_numpy(yv.astype(np.float32))
        best, best_state, stale = np.inf, None, 0
        self.history_ = []
        for _ in range(self.epochs):
            net.train()
            for idx in np.array_split(rng.permutation(len(A)), max(1, len(A) // self.batch_size)):
                opt.zero_grad()
                loss = self._loss(net(At[idx]), yt[idx])
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                val = float(self._loss(net(Avt), yvt))
            self.history_.append(val)
            if val < best - 1e-5:
                best, stale = val, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.net_ = net
        self.best_val_loss_ = best
        return self

    def _params_out(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        self._check_fitted("net_")
        A = torch.from_numpy(self._matrix(X))
        with torch.no_grad():
            out = self.net_(A).numpy().astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-out[:, 0]))
        sigma = np.logaddexp(0.0, out[:, 2]) + 1e-3
        return p, out[:, 1], sigma

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(spend > 0)."""
        return self._params_out(X)[0]

    def predict(self, X: Any) -> np.ndarray:
        """Expected spend ``p * exp(mu + sigma^2 / 2)``."""
        return _mean(*self._params_out(X))

    def predict_quantiles(self, X: Any, q: tuple[float, ...] = (0.1, 0.5, 0.9)) -> np.ndarray:
        """Quantiles of spend (zero-inflated): shape (n_rows, len(q))."""
        return _quantiles(*self._params_out(X), q)

    def predict_outputs(self, X: Any, name: str = "ltv", q: tuple[float, ...] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """Expected spend, P(buy) and spend quantiles as columns, from one pass of the network.

        Columns: ``name`` (= :meth:`predict`), ``{name}_p_buy`` (= :meth:`predict_proba`) and
        ``{name}_p10``, ``{name}_p50``, ``{name}_p90`` for the default ``q``. The quantile at level ``q``
        is 0 when P(no purchase) >= ``q`` (``p10`` whenever P(buy) <= 0.9): zero inflation, not a bug.
        """
        p, mu, sigma = self._params_out(X)
        out = {name: _mean(p, mu, sigma), f"{name}_p_buy": p}
        qs = _quantiles(p, mu, sigma, q)
        for j, qq in enumerate(q):
            out[f"{name}_p{round(qq * 100):d}"] = qs[:, j]
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(out, index=index)


def _mean(p: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return p * np.exp(np.minimum(mu + sigma**2 / 2, 50.0))


def _quantiles(p: np.ndarray, mu: np.ndarray, sigma: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    from scipy.stats import norm

    out = np.zeros((len(p), len(q)))
    for j, qq in enumerate(q):
        # P(spend <= s) = (1 - p) + p * Phi((log s - mu) / sigma) for s > 0
        cond = (qq - (1 - p)) / np.maximum(p, 1e-12)
        pos = cond > 0
        out[pos, j] = np.exp(np.minimum(mu[pos] + sigma[pos] * norm.ppf(np.clip(cond[pos], 1e-9, 1 - 1e-9)), 50.0))
    return out
