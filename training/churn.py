"""Churn: P(no purchase in the next H days) for customers active in a look-back window.

``train(ChurnConfig(paths=...)) -> run_id``. Steps: Feast training set over rolling
cutoffs (``training.datasets``), LightGBM with early stopping on the next time slice and
a monotone constraint (an older last purchase never lowers the risk), Platt or isotonic
calibration on that slice, metrics and plots on the newest slice (the holdout), the
recency-only baseline and — on synthetic data — the generator's true future activity,
then register in MLflow as ``churn@challenger`` and gate against the champion.

:func:`fit_binary` and :func:`log_binary_run` are shared with ``training.propensity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.datasets import DatasetConfig, Paths, task_params


@dataclass(frozen=True)
class GBMConfig:
    n_estimators: int = 500  # upper bound; early stopping on the validation slice picks the count
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_child_samples: int = 50
    early_stopping_rounds: int = 30
    num_threads: int = 1  # OpenMP threads; >1 only on an idle machine (spin-waits under contention)
    seed: int = 0

    def __post_init__(self) -> None:
        # LightGBM takes most nonsense silently (num_leaves 0 becomes its default); refuse it at the config
        for name, low in (("n_estimators", 1), ("num_leaves", 2), ("min_child_samples", 1),
                          ("early_stopping_rounds", 1), ("num_threads", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be above 0, got {self.learning_rate!r}")


@dataclass(frozen=True)
class ChurnConfig:
    paths: Paths  # data dir and MLflow store (from Settings)
    dataset: DatasetConfig = field(default_factory=lambda: DatasetConfig(
        service="churn_v1", horizon_days=90, active_window_days=180))  # H = 90 d; active = ordered in the last 180 d
    gbm: GBMConfig = field(default_factory=GBMConfig)
    # churn risk never decreases as the last order / activity gets older (all else equal)
    monotone: tuple[tuple[str, int], ...] = (("recency_days", 1), ("days_since_last_activity", 1))
    calibration: str = "platt"  # "platt" keeps the ranking strictly; "isotonic" is non-parametric
    exclude: tuple[str, ...] = ()  # feature columns not to use
    model_name: str = "churn"  # registered model and experiment name
    promote: bool = True  # run the promotion gate after registering

    def __post_init__(self) -> None:  # nonsense stops before a model version is registered
        if self.calibration not in ("platt", "isotonic"):
            raise ValueError(f"calibration must be platt or isotonic, got {self.calibration!r}")
        bad = [m for m in self.monotone if len(m) != 2 or m[1] not in (-1, 0, 1)]
        if bad:
            raise ValueError(f"monotone: each entry is [feature, -1|0|1], got {list(bad[0])!r}")


def fit_binary(train: pd.DataFrame, val: pd.DataFrame, features: list[str], y_train: np.ndarray, y_val: np.ndarray,
               gbm: GBMConfig, monotone: dict[str, int], calibration: str) -> Any:
    """LightGBM with early stopping on ``val``, then a calibrator fitted on ``val``."""
    from models.calibration import CalibratedClassifier, Calibrator
    from models.gbm import GBMClassifier

    mono = {k: v for k, v in monotone.items() if k in features}
    base = GBMClassifier(n_estimators=gbm.n_estimators, learning_rate=gbm.learning_rate, num_leaves=gbm.num_leaves,
                         min_child_samples=gbm.min_child_samples, early_stopping_rounds=gbm.early_stopping_rounds,
                         monotone=mono or None, num_threads=gbm.num_threads, seed=gbm.seed)
    base.fit(train[features], y_train, eval_set=(val[features], y_val))
    cal = Calibrator(calibration).fit(base.predict(val[features]), y_val)
    return CalibratedClassifier(base, cal)


def binary_metrics(y: np.ndarray, prob: np.ndarray, prefix: str = "") -> dict[str, float]:
    from training.evaluation.classification import average_precision, brier, lift_table, log_loss, roc_auc

    y = np.asarray(y, dtype=np.float64)
    top = lift_table(y, prob)
    return {f"{prefix}auc": roc_auc(y, prob), f"{prefix}average_precision": average_precision(y, prob),
            f"{prefix}brier": brier(y, prob), f"{prefix}log_loss": log_loss(y, prob),
            f"{prefix}top_decile_lift": float(top["lift"].iloc[0]), f"{prefix}base_rate": float(y.mean())}


def log_binary_run(model: Any, test: pd.DataFrame, features: list[str], y_test: np.ndarray, title: str,
                   prefix: str = "") -> dict[str, float]:
    """Metrics, ROC/PR/calibration/lift plots and importance/SHAP of one classifier into the active run."""
    from training.plots import log_classifier_plots, log_importance

    prob = model.predict(test[features])
    metrics = binary_metrics(y_test, prob, prefix)
    log_classifier_plots(y_test, prob, title, prefix, raw=model.predict_raw(test[features]))
    log_importance(model.base, test[features], title, prefix)
    return metrics


def _features(frame: pd.DataFrame, names: list[str], exclude: tuple[str, ...]) -> list[str]:
    return [c for c in names if c in frame.columns and c not in exclude]


def train(config: ChurnConfig) -> str:
    """Train, evaluate, register and gate the churn model; returns the MLflow run id."""
    from training import datasets, registry
    from training.evaluation.classification import roc_auc

    cfg = config
    registry.setup(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts)  # a bad store stops before any training
    ts = datasets.build(cfg.paths, cfg.dataset)
    feats = _features(ts.frame, ts.features, cfg.exclude)
    label = f"purchased_{cfg.dataset.horizon_days}d"
    train_df, val_df, test_df = ts.split()
    churned = lambda df: (~df[label].astype(bool)).to_numpy().astype(float)  # noqa: E731
    datasets.check_names(ts, cfg.exclude, cfg.monotone)
    datasets.check_holdout(churned(test_df), ts.cutoffs[-1], "churners")
    model = fit_binary(train_df, val_df, feats, churned(train_df), churned(val_df), cfg.gbm, dict(cfg.monotone),
                       cfg.calibration)
    with registry.start_run(cfg.model_name, run_name=f"churn H={cfg.dataset.horizon_days}d") as run:
        registry.log_config(cfg, {"feature_service": cfg.dataset.service, "label": f"not {label}",
                                  "cutoffs": ",".join(str(c.date()) for c in ts.cutoffs), "rows": len(ts.frame),
                                  "n_features": len(feats), "best_iteration": model.base.best_iteration_})
        metrics = log_binary_run(model, test_df, feats, churned(test_df), "churn (holdout)")
        metrics["baseline_recency_auc"] = roc_auc(churned(test_df), test_df["recency_days"].fillna(1e6).to_numpy())
        metrics.update(truth_scores(cfg, model, feats))
        version = registry.log_and_register(cfg.model_name, model, feats, output="churn_risk", metrics=metrics)
        y_test = churned(test_df)
        if cfg.promote:
            registry.gate_and_tag(cfg.model_name, version,
                                  lambda m: roc_auc(y_test, m.predict(test_df)["churn_risk"].to_numpy()), metric="auc",
                                  task=task_params(cfg.dataset))
        return run.info.run_id


def truth_scores(cfg: ChurnConfig, model: Any, feats: list[str]) -> dict[str, float]:
    """On synthetic data: AUC of the risk at the newest snapshot vs the generator's true future activity."""
    from training import datasets
    from training.evaluation.classification import roc_auc

    truth = datasets.truth_by_one_id(cfg.paths)
    if truth is None or cfg.dataset.as_of is not None or cfg.dataset.horizon_days != 90:
        return {}
    now = datasets.scoring_frame(cfg.paths, cfg.dataset.service)
    if cfg.dataset.active_window_days is not None:
        now = now[now["recency_days"] <= cfg.dataset.active_window_days]
    df = now.merge(truth, on="one_id", how="inner")
    y = (~df["future_active_90d"].astype(bool)).to_numpy().astype(float)
    return {"truth_auc": roc_auc(y, model.predict(df[feats])),
            "truth_baseline_recency_auc": roc_auc(y, df["recency_days"].fillna(1e6).to_numpy()),
            "truth_rows": float(len(df))}
