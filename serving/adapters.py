"""What serving calls on each registered model, built once when a version loads.

The MLflow pyfunc of each champion is unwrapped to the Python object it holds and
adapted to two shapes with array-only hot paths (no DataFrame per request):

* :class:`PredictorAdapter` (churn, ltv, propensity): scores customers by their
  row in the feature snapshot. It accepts the training area's pyfunc
  (``PredictorModel`` with ``predictor`` and ``feature_names``) and, slower, any
  pyfunc with an input signature.
* the recommender: the recsys area's ``RecommenderBundle`` (ids, filters, cold
  start, fresh events) taken from the pyfunc's ``bundle`` attribute.

Predicted tags come from scores with cut points fitted on the whole customer
population once per model version and feature snapshot (:meth:`PredictorAdapter.prepare`).
A calibrated classifier is run as its base model then its calibrator, so every path has the
raw score too: the cohorts rank by it (``training.tags.Cohorts`` keys), which breaks the ties of
isotonic calibration's flat steps without a second model call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# predicted tag and score names per model: the columns of Feast's predicted_tags view (features/store.py)
TAG_NAMES = {"churn": "churn_tier", "ltv": "ltv_tier", "propensity": "propensity_decile"}
SCORE_NAMES = {"churn": "churn_risk", "ltv": "ltv", "propensity": "propensity"}


class PredictorAdapter:
    """A supervised champion scored by customer rows of the feature snapshot.

    At load (:meth:`prepare`, once per version and snapshot) the model's input for
    every customer is built as one float matrix ``X_`` when that is possible: a
    LightGBM model from ``models.gbm`` (text columns encoded with its own learned
    categories) or any model on numeric columns only. A request then slices rows
    of ``X_`` and calls the booster on one thread. Otherwise each request builds the
    small DataFrame the model wants (correct, slower). The array path is used only
    after it reproduced the model's own predictions on a sample.
    """

    def __init__(self, kind: str, predictor: Any, feature_names: list[str]) -> None:
        self.kind = kind
        self.predictor = predictor  # has predict(DataFrame) -> array or DataFrame
        self.feature_names = list(feature_names)
        base, calibrator = getattr(predictor, "base", None), getattr(predictor, "calibrator", None)
        calibrated = base is not None and hasattr(calibrator, "transform")
        self._raw_model = base if calibrated else None  # gives the raw score; the calibrator maps it
        self._calibrator = calibrator if calibrated else None
        self._cal1: Any = None  # the calibrator on one float (one customer), when it reproduces transform
        self.outputs: list[str] | None = None  # column names when the model returns several scores
        self.cohorts: Any = None  # training.tags.Cohorts over the snapshot's scores: the batch write-back's tags
        self.X_: np.ndarray | None = None  # encoded inputs of every customer (rows of the snapshot)
        self._fast: Any = None  # array call used with X_
        self._one: Any = None  # one-row call (row index of X_ -> scores), LightGBM's single-row C API
        self.scratch: np.ndarray | None = None  # write a customer's encoded row here, then one_row(len(X_))
        self._prepared_on: int | None = None

    @classmethod
    def from_model(cls, kind: str, obj: Any) -> "PredictorAdapter":
        inner, names = getattr(obj, "predictor", None), getattr(obj, "feature_names", None)
        if inner is not None and names is not None:
            return cls(kind, inner, list(names))
        schema = getattr(getattr(obj, "metadata", None), "get_input_schema", lambda: None)()
        if schema is None or not schema.input_names():
            raise TypeError(f"{kind}: the pyfunc has neither predictor/feature_names nor an input signature")
        return cls(kind, obj, list(schema.input_names()))

    # ---- load time ----------------------------------------------------------------------------

    def _encoded(self, frame: Any) -> tuple[np.ndarray, Any, Any, Any] | None:
        """(X for every row, array call, one-row call or None, X plus a scratch row or None) when the model
        can be fed one float matrix; the one-row call also reads the scratch row (index ``len(X)``)."""
        import pandas as pd

        model = self._raw_model if self._raw_model is not None else self.predictor  # calibrated: raw scores
        compiled = _compile(model, frame, self.feature_names)
        if compiled is not None:
            return compiled
        if all(pd.api.types.is_numeric_dtype(frame[c]) for c in self.feature_names):
            X = frame[self.feature_names].to_numpy(np.float64, na_value=np.nan)
            return np.ascontiguousarray(X), model.predict, None, None
        return None

    def prepare(self, features: Any, snapshot: int) -> None:
        """Encode every customer's inputs, check the array path, fit the tag cut points."""
        if self._prepared_on == snapshot:
            return
        frame = features.frame
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise KeyError(f"{self.kind}: feature snapshot lacks column(s) {missing}")
        self.X_, self._fast, self._one, self.scratch = None, None, None, None
        s, keys = self._frame_scores(frame, np.arange(len(frame)))
        enc = self._encoded(frame)
        if enc is not None:
            sample = np.arange(min(256, len(frame)))
            try:
                ok = np.allclose(self._calibrated(self._array(enc[1](enc[0][sample])))[0], s[sample], equal_nan=True)
            except Exception:  # noqa: BLE001 - the model refuses arrays: keep frames
                ok = False
            if ok:
                self.X_, self._fast = enc[0], enc[1]
                one = enc[2]
                self._cal1 = _calibrator_1(self._calibrator) if self._calibrator is not None else None
                if self._calibrator is not None and self._cal1 is None:
                    one = None  # no scalar calibrator: one customer takes the batch path
                try:  # the one-row path must give the model's own predictions too
                    one_ok = one is not None and all(
                        np.allclose(self._calibrated_one(one(int(i)))[0], s[i], equal_nan=True) for i in sample[:64])
                except Exception:  # noqa: BLE001
                    one_ok = False
                self._one = one if one_ok else None
                if self._one is not None and enc[3] is not None:
                    self.scratch = enc[3][-1]  # a row the one-row call reads at index len(X_): online features
        from training.tags import Cohorts

        # one sorted float array (8 bytes per customer), ranked by the raw score when calibrated
        self.cohorts = Cohorts.fit(self.kind, self.score_of(s), keys=keys)
        self._prepared_on = snapshot

    # ---- request time -------------------------------------------------------------------------
    # score_* return (scores, keys): keys are the raw scores of a calibrated model (the cohorts'
    # ranking, see tags), None otherwise; predict_* return the scores alone.

    def _calibrated(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self._calibrator is None:
            return raw, None
        return np.asarray(self._calibrator.transform(raw), dtype=np.float64), raw

    def _calibrated_one(self, out: Any) -> tuple[np.ndarray, np.ndarray | None]:
        out = np.asarray(out, dtype=np.float64)
        raw = out[None, :] if out.ndim else out.reshape(1)
        if self._calibrator is None:
            return raw, None
        return np.array([self._cal1(float(raw[0]))]), raw

    def _frame_scores(self, frame: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        X = frame.iloc[rows][self.feature_names]
        if self._raw_model is None:
            return self._array(self.predictor.predict(X)), None
        return self._calibrated(self._array(self._raw_model.predict(X)))  # = the calibrated model's predict

    def score_frame(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and keys of the rows of ``frame`` (any DataFrame holding the model's columns), by the model itself."""
        return self._frame_scores(frame, np.arange(len(frame)))

    def score_scratch(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and keys (1 row) of the encoded values written to :attr:`scratch`."""
        return self._calibrated_one(self._one(len(self.X_)))

    def score_rows(self, features: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and keys of the customers at ``rows`` of the snapshot."""
        if self.X_ is not None and self._prepared_on == id(features):
            if self._one is not None and len(rows) == 1:  # one customer: no batch machinery
                return self._calibrated_one(self._one(int(rows[0])))
            return self._calibrated(self._array(self._fast(self.X_[rows])))
        return self._frame_scores(features.frame, rows)

    def predict_frame(self, frame: Any) -> np.ndarray:
        return self.score_frame(frame)[0]

    def predict_scratch(self) -> np.ndarray:
        return self.score_scratch()[0]

    def predict_rows(self, features: Any, rows: np.ndarray) -> np.ndarray:
        return self.score_rows(features, rows)[0]

    def _array(self, out: Any) -> np.ndarray:
        cols = getattr(out, "columns", None)
        if cols is not None:
            if len(cols) > 1:
                self.outputs = [str(c) for c in cols]
            out = out.to_numpy()
        out = np.asarray(out, dtype=np.float64)
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    def tags(self, scores: np.ndarray, keys: np.ndarray | None = None) -> list[str | None]:
        """The predicted tag for each row of ``scores`` (with the ``keys`` a ``score_*`` call gave), exactly as the
        batch write-back tags it: the percentile cohort the score joins in the snapshot's scored population
        (``training.tags.Cohorts``: churn tier top 20/30/50 %, LTV tier top 10/20/30/40 %, propensity decile
        1 = most likely)."""
        scores = self.score_of(scores)  # several outputs: the headline one is tagged, the rest is detail
        if self.cohorts is None:
            return [None] * len(scores)
        if len(scores) == 1:  # one customer: the scalar path (the same cohort, a tenth of the time)
            return [self.cohorts.tag_one(float(scores[0]), None if keys is None else float(keys[0]))]
        return self.cohorts.tag(scores, keys)

    def score_of(self, scores: np.ndarray) -> np.ndarray:
        """The headline score: the output named like the model (e.g. overall propensity), else the best one."""
        if scores.ndim == 1:
            return scores
        if self.outputs and self.kind in self.outputs:
            return scores[:, self.outputs.index(self.kind)]
        return scores.max(axis=1)

    def detail(self, scores: np.ndarray) -> list[dict[str, float] | None]:
        """The other outputs of a several-output model (e.g. propensity per category), per row."""
        if scores.ndim == 1 or not self.outputs:
            return [None] * len(scores)
        return [dict(zip(self.outputs, map(float, r))) for r in scores]


def _compile(p: Any, frame: Any, names: list[str], shared: np.ndarray | None = None) -> tuple | None:
    """One float matrix + an array call for the value area's model shapes, or None.

    ``models.gbm`` LightGBM models (text columns encoded with the model's learned
    categories, booster on one thread), ``CalibratedClassifier`` (base + calibrator)
    and ``MultiOutput`` (one column per output; all outputs must share one encoding).
    """
    booster = getattr(p, "booster_", None)
    if booster is not None:
        if list(getattr(p, "feature_names_", names)) != list(names):
            return None
        from models.gbm import numeric_frame  # the model's own encoding of text columns

        X = numeric_frame(frame[names], getattr(p, "categories_", None)).to_numpy(np.float64)
        if shared is None:  # every customer's row plus one scratch row (online features), one C-contiguous block
            full = np.full((len(X) + 1, X.shape[1]), np.nan)
            full[:-1] = X
        elif shared.shape == (len(X) + 1, X.shape[1]) and np.array_equal(shared[:-1], X, equal_nan=True):
            full = shared  # several outputs with one encoding share one block (and one scratch row)
        else:
            return None
        it = getattr(p, "best_iteration_", None)
        return (full[:-1], lambda A: booster.predict(A, num_iteration=it, num_threads=1),
                _one_row(booster, full, it), full)
    base, calibrator = getattr(p, "base", None), getattr(p, "calibrator", None)
    if base is not None and calibrator is not None and hasattr(calibrator, "transform"):
        inner = _compile(base, frame, names, shared)
        if inner is None:
            return None
        cal1, one = _calibrator_1(calibrator), inner[2]
        return (inner[0], lambda A: calibrator.transform(inner[1](A)),
                None if one is None or cal1 is None else lambda i: cal1(one(i)), inner[3])
    outputs = getattr(p, "outputs", None)
    if isinstance(outputs, dict) and outputs:
        parts = []
        for m in outputs.values():
            parts.append(_compile(m, frame, names, shared if not parts else parts[0][3]))
            if parts[-1] is None:
                return None
        fns = [x[1] for x in parts]  # columns in ``outputs`` order, as the model's own DataFrame has them
        ones = [x[2] for x in parts]
        return (parts[0][0], lambda A: np.column_stack([np.asarray(f(A), dtype=np.float64) for f in fns]),
                None if any(o is None for o in ones) else lambda i: np.array([o(i) for o in ones]), parts[0][3])
    return None


class _OneRow:
    """LightGBM's single-row fast C API (``LGBM_BoosterPredictForMatSingleRowFast``) on rows of ``X``.

    ``Booster.predict`` on one row costs ~0.1-0.3 ms of fixed Python work (parameter strings,
    array checks, an inner predictor per call); the fast API is set up once per model and
    snapshot and then reads the row in place. Same predictions (checked in ``prepare``);
    one thread; calls are serialized by a lock (a fast config is not thread-safe).
    """

    def __init__(self, booster: Any, X: np.ndarray, num_iteration: int | None) -> None:
        import ctypes
        import threading

        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._X, self._booster, self._lib, self._safe = X, booster, _LIB, _safe_call  # keep both alive
        self._handle = ctypes.c_void_p()
        it = booster.best_iteration if num_iteration is None else num_iteration  # as Booster.predict resolves it
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(it or -1), ctypes.c_int(1),
            ctypes.c_int32(X.shape[1]), _c_str("num_threads=1"), ctypes.byref(self._handle)))
        self._out = np.zeros(1, np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._len = ctypes.c_int64()
        self._len_ref = ctypes.byref(self._len)
        self._base, self._stride = X.ctypes.data, X.strides[0]
        self._ptr = ctypes.c_void_p
        self._call = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._lock = threading.Lock()

    def __call__(self, i: int) -> float:
        if not 0 <= i < len(self._X):
            raise IndexError(i)
        with self._lock:
            self._safe(self._call(self._handle, self._ptr(self._base + i * self._stride), self._len_ref, self._out_ptr))
            return float(self._out[0])

    def __del__(self) -> None:
        try:
            self._lib.LGBM_FastConfigFree(self._handle)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _one_row(booster: Any, X: np.ndarray, num_iteration: int | None) -> Any:
    """A :class:`_OneRow` for single-output boosters on a C-contiguous float64 ``X``; None otherwise."""
    try:
        if booster.num_model_per_iteration() != 1 or not X.flags.c_contiguous or X.dtype != np.float64:
            return None
        return _OneRow(booster, X, num_iteration)
    except Exception:  # noqa: BLE001 - an older LightGBM: the batch path answers
        return None


def _calibrator_1(calibrator: Any) -> Any:
    """A scalar version of the value area's ``Calibrator.transform`` (isotonic or Platt), or None.

    Same formulas as scikit-learn's ``IsotonicRegression(out_of_bounds="clip").predict`` and
    ``LogisticRegression.predict_proba`` on the score's logit, without their input checks;
    ``PredictorAdapter.prepare`` keeps it only if it reproduces the model's predictions.
    """
    m, method = getattr(calibrator, "model_", None), getattr(calibrator, "method", None)
    if method == "isotonic" and hasattr(m, "X_thresholds_"):
        xs, ys = np.asarray(m.X_thresholds_, np.float64), np.asarray(m.y_thresholds_, np.float64)
        lo, hi = float(m.X_min_), float(m.X_max_)
        if len(xs) < 2:
            return None
        return lambda v: float(np.interp(min(max(v, lo), hi), xs, ys))
    if method == "platt" and hasattr(m, "coef_") and m.coef_.shape == (1, 1):
        a, b = float(m.coef_[0, 0]), float(m.intercept_[0])

        def platt(v: float) -> float:
            p = min(max(v, 1e-6), 1 - 1e-6)
            return 1.0 / (1.0 + math.exp(-(a * math.log(p / (1 - p)) + b)))
        return platt
    return None


def recommender_bundle(obj: Any) -> Any:
    """The recsys area's ``RecommenderBundle`` inside the recommender pyfunc (``python_model.bundle``)."""
    bundle = getattr(obj, "bundle", None)
    if bundle is None and all(hasattr(obj, m) for m in ("recommend", "recommend_cold", "similar_items")):
        bundle = obj
    if bundle is None:
        raise TypeError("the recommender pyfunc holds no RecommenderBundle (expected python_model.bundle)")
    return bundle
