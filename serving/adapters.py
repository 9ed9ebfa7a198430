"""What serving calls on each registered model, built once when a version loads.

The MLflow pyfunc of each champion is unwrapped to the Python object it holds and
adapted to two shapes with array-only hot paths (no DataFrame per request):

* :class:`PredictorAdapter` (churn, ltv, propensity): ``predict(X)`` on a float
  matrix whose columns are the model's ``feature_names``. It accepts the
  training area's pyfunc (``PredictorModel`` with ``predictor`` and
  ``feature_names``) and, slower, any pyfunc with an input signature.
* the recommender: the recsys area's ``RecommenderBundle`` (ids, filters, cold
  start, fresh events) taken from the pyfunc's ``bundle`` attribute.

Predicted tags come from scores with cut points fitted on the whole customer
population once per model version and feature snapshot (:meth:`PredictorAdapter.calibrate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# predicted tag and score names per model: the columns of Feast's predicted_tags view (features/store.py)
TAG_NAMES = {"churn": "churn_tier", "ltv": "ltv_tier", "propensity": "propensity_decile"}
SCORE_NAMES = {"churn": "churn_risk", "ltv": "ltv", "propensity": "propensity"}


class PredictorAdapter:
    """A supervised champion: float matrix in, scores out (1-D, or 2-D with ``outputs`` names)."""

    def __init__(self, kind: str, fn: Any, feature_names: list[str], frame: bool = False) -> None:
        self.kind = kind
        self.fn = fn  # callable(ndarray or DataFrame) -> array-like
        self.feature_names = list(feature_names)
        self.frame = frame  # the model is called with a DataFrame (named columns)
        self.fast: Any = None  # array-only call, used once verified equal to the frame call (see calibrate)
        self.outputs: list[str] | None = None  # column names when the model returns several scores
        self.cuts: np.ndarray | None = None  # population quantile cut points for the tag
        self._calibrated_on: int | None = None

    @classmethod
    def from_model(cls, kind: str, obj: Any) -> "PredictorAdapter":
        inner, names = getattr(obj, "predictor", None), getattr(obj, "feature_names", None)
        if inner is not None and names is not None:
            adapter = cls(kind, inner.predict, list(names), frame=True)
            booster = getattr(inner, "booster_", None)
            if booster is not None and not getattr(inner, "categories_", None) \
                    and list(getattr(inner, "feature_names_", names)) == list(names):
                # a LightGBM model on numeric features: call the booster on the array, one thread
                it = getattr(inner, "best_iteration_", None)
                adapter.fast = lambda X: booster.predict(X, num_iteration=it, num_threads=1)  # noqa: E731
            else:  # any other predictor: try arrays first, keep frames if it refuses them
                adapter.fast = inner.predict
            return adapter
        schema = getattr(getattr(obj, "metadata", None), "get_input_schema", lambda: None)()
        if schema is None or not schema.input_names():
            raise TypeError(f"{kind}: the pyfunc has neither predictor/feature_names nor an input signature")
        return cls(kind, obj.predict, list(schema.input_names()), frame=True)

    def columns_in(self, features: Any) -> np.ndarray:
        """Positions of this model's features in the snapshot matrix (cached per snapshot)."""
        cached = getattr(self, "_cols", None)
        if cached is None or cached[0] != id(features):
            cached = (id(features), features.col_index(self.feature_names))
            self._cols = cached
        return cached[1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores for the rows of ``X`` (columns in ``feature_names`` order)."""
        if self.frame:
            import pandas as pd

            out = self.fn(pd.DataFrame(X, columns=self.feature_names))
        else:
            out = self.fn(X)
        return self._array(out)

    def _array(self, out: Any) -> np.ndarray:
        cols = getattr(out, "columns", None)
        if cols is not None:
            if len(cols) > 1:
                self.outputs = [str(c) for c in cols]
            out = out.to_numpy()
        out = np.asarray(out, dtype=np.float64)
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    def calibrate(self, X: np.ndarray, snapshot: int) -> None:
        """Fit the tag cut points on the population's scores (once per feature snapshot)."""
        if self._calibrated_on == snapshot or len(X) == 0:
            return
        s = self.predict(X)
        if self.fast is not None and self.frame:  # switch to arrays only if they give the same scores
            try:
                same = np.allclose(self._array(self.fast(X[:256])), s[:256], equal_nan=True)
            except Exception:  # noqa: BLE001 - the model wants frames: keep them
                same = False
            if same:
                self.fn, self.frame = self.fast, False
        top = s.max(axis=1) if s.ndim == 2 else s
        qs = np.linspace(0.1, 0.9, 9) if self.kind == "propensity" else [0.5, 0.9]  # deciles / ltv tiers
        self.cuts = np.quantile(top[np.isfinite(top)], qs) if np.isfinite(top).any() else None
        self._calibrated_on = snapshot

    def tags(self, scores: np.ndarray) -> list[str | None]:
        """The predicted tag for each row of ``scores``: churn tier (fixed thresholds on the probability),
        LTV tier (population median / 90th percentile), propensity decile (population deciles)."""
        if scores.ndim == 2:  # several outputs (e.g. one propensity per category): the strongest one
            names = self.outputs or [str(i) for i in range(scores.shape[1])]
            return [names[int(i)] for i in np.nanargmax(np.nan_to_num(scores, nan=-np.inf), axis=1)]
        if self.kind == "churn":  # a probability: fixed, documented thresholds
            return ["high" if s >= 0.5 else "medium" if s >= 0.2 else "low" for s in scores.tolist()]
        if self.cuts is None:
            return [None] * len(scores)
        if self.kind == "propensity":  # decile of the population, 10 = most likely
            return [str(d) for d in (np.searchsorted(self.cuts, scores, side="right") + 1).tolist()]
        lo, hi = self.cuts.tolist()
        return ["high" if s >= hi else "medium" if s >= lo else "low" for s in scores.tolist()]

    def score_of(self, scores: np.ndarray) -> np.ndarray:
        return scores.max(axis=1) if scores.ndim == 2 else scores


def recommender_bundle(obj: Any) -> Any:
    """The recsys area's ``RecommenderBundle`` inside the recommender pyfunc (``python_model.bundle``)."""
    bundle = getattr(obj, "bundle", None)
    if bundle is None and all(hasattr(obj, m) for m in ("recommend", "recommend_cold", "similar_items")):
        bundle = obj
    if bundle is None:
        raise TypeError("the recommender pyfunc holds no RecommenderBundle (expected python_model.bundle)")
    return bundle
