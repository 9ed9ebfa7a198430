"""Probability calibration (isotonic or Platt) and a calibrated classifier.

Tree ensembles rank well but their probabilities drift with class balance and early
stopping. A :class:`Calibrator` is fitted on a validation set that the base model did
not train on (the next time slice), and :class:`CalibratedClassifier` chains the two.
Both mappings are non-decreasing, so calibration never changes the ranking and any
monotone constraint of the base model still holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import Predictor


class Calibrator:
    """Map raw scores to probabilities.

    Parameters
    ----------
    method : {"isotonic", "platt"}
        Isotonic regression (non-parametric, needs a few thousand rows) or Platt scaling
        (logistic regression on the logit of the score).
    """

    def __init__(self, method: str = "isotonic") -> None:
        if method not in ("isotonic", "platt"):
            raise ValueError(f"calibration method must be 'isotonic' or 'platt', not {method!r}")
        self.method = method

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def fit(self, score: np.ndarray, y: np.ndarray) -> "Calibrator":
        """Learn the mapping from scores to the observed 0/1 outcomes."""
        score, y = np.asarray(score, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(np.unique(y)) < 2:
            raise ValueError("calibration needs both outcomes in the validation set")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.model_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
        else:
            from sklearn.linear_model import LogisticRegression

            self.model_ = LogisticRegression(C=1e6).fit(self._logit(score)[:, None], y)
            if self.model_.coef_[0, 0] < 0:
                # scores that rank backwards on this slice would reverse the base model's ranking (and its
                # monotone constraints); flat at the base rate instead, as isotonic regression does
                self.model_.coef_[:] = 0.0
                self.model_.intercept_[:] = float(self._logit(np.array([y.mean()]))[0])
        return self

    def transform(self, score: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for ``score``."""
        if not hasattr(self, "model_"):
            raise RuntimeError("Calibrator is not fitted")
        score = np.asarray(score, dtype=np.float64)
        if self.method == "isotonic":
            return self.model_.predict(score)
        return self.model_.predict_proba(self._logit(score)[:, None])[:, 1]


class CalibratedClassifier(Predictor):
    """A fitted binary classifier followed by a fitted :class:`Calibrator`."""

    def __init__(self, base: Any, calibrator: Calibrator) -> None:
        self.base = base
        self.calibrator = calibrator

    def fit(self, X: Any, y: Any, **kwargs: Any) -> "CalibratedClassifier":
        """Refit only the calibrator on (``X``, ``y``); the base model is used as fitted."""
        self.calibrator.fit(self.base.predict(X), y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Calibrated P(y = 1)."""
        return self.calibrator.transform(self.base.predict(X))

    def predict_raw(self, X: Any) -> np.ndarray:
        """The base model's uncalibrated score."""
        return self.base.predict(X)


class MultiOutput(Predictor):
    """Several fitted predictors on the same features; :meth:`predict` returns one column each.

    Used by propensity (overall + one model per top category). ``fit`` is not supported:
    each output is trained by the caller and passed in fitted.
    """

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs

    def fit(self, X: Any, y: Any, **kwargs: Any) -> "MultiOutput":
        raise NotImplementedError("MultiOutput holds predictors fitted by the caller")

    def predict(self, X: Any) -> Any:
        """A DataFrame with one column per output (same row order as ``X``)."""
        import pandas as pd

        return pd.DataFrame({name: m.predict(X) for name, m in self.outputs.items()})
