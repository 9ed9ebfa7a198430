"""What serving calls on each registered model, built once when a version loads.

The MLflow pyfunc of each champion is unwrapped to the Python object it holds and
adapted to two shapes with array-only hot paths (no DataFrame per request):

* :class:`PredictorAdapter` (churn, ltv, propensity): ``predict(X)`` on a float
  matrix whose columns are the model's ``feature_names``. It accepts the
  training area's pyfunc (``PredictorModel`` with ``predictor`` and
  ``feature_names``) and, slower, any pyfunc with an input signature.
* :class:`RecommenderAdapter`: a ``models.base.Recommender`` plus its id maps
  (``user_ids``, ``item_ids``: index -> id) and training matrix ``user_items``,
  read from attributes of the unwrapped pyfunc (names listed in ``_REC_NAMES``).

Predicted tags come from scores with cut points fitted on the whole customer
population once per model version and feature snapshot (:meth:`PredictorAdapter.calibrate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# attribute names tried, in order, on the unwrapped recommender pyfunc
_REC_NAMES = {
    "model": ("recommender", "model", "rec", "recommender_"),
    "user_ids": ("user_ids", "user_ids_", "users"),
    "item_ids": ("item_ids", "item_ids_", "items"),
    "user_items": ("user_items", "user_items_", "train_matrix", "matrix"),
}
# predicted tag and score names per model: the columns of Feast's predicted_tags view (features/store.py)
TAG_NAMES = {"churn": "churn_tier", "ltv": "ltv_tier", "propensity": "propensity_decile"}
SCORE_NAMES = {"churn": "churn_risk", "ltv": "ltv", "propensity": "propensity"}


def _first(obj: Any, names: tuple[str, ...]) -> Any:
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


class PredictorAdapter:
    """A supervised champion: float matrix in, scores out (1-D, or 2-D with ``outputs`` names)."""

    def __init__(self, kind: str, fn: Any, feature_names: list[str], frame: bool = False) -> None:
        self.kind = kind
        self.fn = fn  # callable(ndarray or DataFrame) -> array-like
        self.feature_names = list(feature_names)
        self.frame = frame  # the model needs a DataFrame (slow path, e.g. a sklearn pyfunc)
        self.outputs: list[str] | None = None  # column names when the model returns several scores
        self.cuts: np.ndarray | None = None  # population quantile cut points for the tag
        self._calibrated_on: int | None = None

    @classmethod
    def from_model(cls, kind: str, obj: Any) -> "PredictorAdapter":
        inner, names = getattr(obj, "predictor", None), getattr(obj, "feature_names", None)
        if inner is not None and names is not None:
            return cls(kind, inner.predict, list(names))
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

            X = pd.DataFrame(X, columns=self.feature_names)
        out = self.fn(X)
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


class RecommenderAdapter:
    """A recommender champion with its id maps; filters are boolean masks over its items."""

    def __init__(self, model: Any, user_ids: Any, item_ids: Any, user_items: Any) -> None:
        import scipy.sparse as sp

        self.model = model
        self.item_ids = np.asarray(item_ids, dtype=object).astype(str).astype(object)
        self.user_row = {str(u): i for i, u in enumerate(user_ids)}
        self.item_row = {i: k for k, i in enumerate(self.item_ids)}
        self.user_items = sp.csr_matrix(user_items)
        pop = np.asarray(self.user_items.getnnz(axis=0), dtype=np.float64)
        self.popular = np.argsort(-pop, kind="stable")
        self.pop_score = pop / max(pop.max(), 1.0)
        self._aligned: tuple[int, Any] | None = None

    @classmethod
    def from_model(cls, obj: Any) -> "RecommenderAdapter":
        parts = {k: _first(obj, names) for k, names in _REC_NAMES.items()}
        if parts["model"] is None and hasattr(obj, "recommend") and hasattr(obj, "similar_items"):
            parts["model"] = obj
        absent = [k for k, v in parts.items() if v is None]
        if absent:
            raise TypeError(f"recommender pyfunc lacks {absent} (serving needs the attributes {_REC_NAMES})")
        return cls(parts["model"], parts["user_ids"], parts["item_ids"], parts["user_items"])

    def aligned(self, items: Any) -> Any:
        """Item attributes (category, price, in_stock, launch) in this model's item order; cached."""
        if items is None:
            return None
        if self._aligned is not None and self._aligned[0] == id(items):
            return self._aligned[1]
        rows = np.array([items.row.get(i, -1) for i in self.item_ids], dtype=np.int64)
        known = rows >= 0
        r = np.where(known, rows, 0)
        cat = np.where(known, items.category[r], None)
        price = np.where(known, items.price[r], np.nan)
        stock = np.where(known, items.in_stock[r], True)
        launch = np.where(known, items.launch[r], np.datetime64("NaT"))
        out = (cat, price, stock, launch.astype("datetime64[D]"))
        self._aligned = (id(items), out)
        return out

    def history(self, one_id: str | None, recent: list[str]) -> Any:
        """The customer's row of the training matrix plus ``recent`` items (1 x n_items CSR)."""
        import scipy.sparse as sp

        u = self.user_row.get(one_id) if one_id is not None else None
        row = self.user_items[u] if u is not None else sp.csr_matrix((1, len(self.item_ids)), dtype=np.float32)
        extra = [self.item_row[i] for i in recent if i in self.item_row]
        if extra:
            add = sp.csr_matrix((np.ones(len(extra), np.float32), (np.zeros(len(extra), int), extra)),
                                shape=row.shape)
            row = (row + add).tocsr()
        return row
