"""Propensity: P(purchase in the next 30 days), overall and for each top category.

``train(PropensityConfig(paths=...)) -> run_id``. One calibrated LightGBM per output
(``propensity`` for any purchase, ``propensity_<category>`` for "buys the category in the same
30 days" — ``dataset.horizon_days`` for both — for the top categories by units sold), trained on
the Feast training set with the same time-based split, early stopping and calibration as churn
(``training.churn.fit_binary``). The registered pyfunc returns one column per output. Metrics and plots (ROC, PR,
calibration, lift/gain, importance, SHAP) are logged for the overall model; AUC, lift and
base rate for each category. The promotion gate compares the overall AUC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.churn import GBMConfig, binary_metrics, fit_binary, log_binary_run
from training.datasets import DatasetConfig, Paths, task_params


@dataclass(frozen=True)
class PropensityConfig:
    paths: Paths  # data dir and MLflow store (from Settings)
    dataset: DatasetConfig = field(default_factory=lambda: DatasetConfig(service="propensity_v1", horizon_days=30))
    gbm: GBMConfig = field(default_factory=lambda: GBMConfig(num_leaves=15, min_child_samples=100))
    categories: tuple[str, ...] | None = None  # None: the top n_categories by units sold before the newest cutoff
    n_categories: int = 5
    calibration: str = "platt"
    negatives_per_positive: float | None = 20.0  # category models: keep this many non-buyers per buyer in training
    # (a random subset; rare categories otherwise cost full-size fits) — calibration on the full validation slice
    # restores the probabilities
    monotone: tuple[tuple[str, int], ...] = (("recency_days", -1),)  # a more recent order never lowers P(buy)
    exclude: tuple[str, ...] = ()
    model_name: str = "propensity"
    promote: bool = True

    def __post_init__(self) -> None:  # nonsense stops before a model version is registered
        if self.calibration not in ("platt", "isotonic"):
            raise ValueError(f"calibration must be platt or isotonic, got {self.calibration!r}")
        if self.n_categories < 0:
            raise ValueError(f"n_categories must be 0 or more, got {self.n_categories!r}")
        if self.negatives_per_positive is not None and not self.negatives_per_positive > 0:
            raise ValueError(f"negatives_per_positive must be above 0 (or null: keep all), got {self.negatives_per_positive!r}")
        bad = [m for m in self.monotone if len(m) != 2 or m[1] not in (-1, 0, 1)]
        if bad:
            raise ValueError(f"monotone: each entry is [feature, -1|0|1], got {list(bad[0])!r}")


def train(config: PropensityConfig) -> str:
    """Train overall and per-category models, evaluate, register and gate; returns the MLflow run id."""
    from models.calibration import MultiOutput
    from training import datasets, registry
    from training.evaluation.classification import roc_auc

    cfg = config
    registry.setup(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts)  # a bad store stops before any training
    check_categories(cfg)
    ts = datasets.build(cfg.paths, cfg.dataset, categories=list(cfg.categories) if cfg.categories else None,
                        n_categories=cfg.n_categories)
    feats = [c for c in ts.features if c in ts.frame.columns and c not in cfg.exclude]
    h = cfg.dataset.horizon_days
    targets = output_labels(ts.labels, h)
    train_df, val_df, test_df = ts.split()
    y = lambda df, col: df[col].astype(bool).to_numpy().astype(float)  # noqa: E731
    datasets.check_names(ts, cfg.exclude, cfg.monotone)
    datasets.check_holdout(y(test_df, targets["propensity"]), ts.cutoffs[-1], "buyers")
    models, skipped = fit_outputs(train_df, val_df, feats, targets, cfg)
    if "propensity" not in models:
        raise ValueError("no purchases in the training window: cannot train the overall propensity model")
    with registry.start_run(cfg.model_name, run_name=f"propensity H={h}d, {len(models) - 1} categories") as run:
        registry.log_config(cfg, {"feature_service": cfg.dataset.service, "outputs": ",".join(models),
                                  "skipped_rare": ",".join(skipped),
                                  "cutoffs": ",".join(str(c.date()) for c in ts.cutoffs), "rows": len(ts.frame)})
        metrics = log_binary_run(models["propensity"], test_df, feats, y(test_df, targets["propensity"]),
                                 "propensity 30 d (holdout)")
        metrics["baseline_recency_auc"] = roc_auc(y(test_df, targets["propensity"]),
                                                  -test_df["recency_days"].fillna(1e6).to_numpy())
        for out, m in models.items():
            if out != "propensity":
                cm = binary_metrics(y(test_df, targets[out]), m.predict(test_df[feats]), prefix=f"{out}.")
                metrics.update({k: v for k, v in cm.items() if k.endswith(("auc", "top_decile_lift", "base_rate"))})
        metrics.update(truth_scores(cfg, models, feats))
        multi = MultiOutput(models)
        version = registry.log_and_register(cfg.model_name, multi, feats, output="propensity", metrics=metrics)
        y_test = y(test_df, targets["propensity"])
        if cfg.promote:
            registry.gate_and_tag(cfg.model_name, version,
                                  lambda m: roc_auc(y_test, m.predict(test_df)["propensity"].to_numpy()), metric="auc",
                                  task=task_params(cfg.dataset))
        return run.info.run_id


def output_labels(labels: list[str], horizon_days: int) -> dict[str, str]:
    """Output name -> label column: ``propensity`` (any purchase in H days) and ``propensity_<category>``
    (a purchase in the category in the same H days; with H = 60 the category models learnt 30-day labels,
    and with H = 14 they read 30-day windows the data check had not covered)."""
    prefix = f"buy_{int(horizon_days)}d_"
    out = {"propensity": f"purchased_{int(horizon_days)}d"}
    out.update({"propensity_" + c.removeprefix(prefix): c for c in labels if c.startswith(prefix)})
    return out


def check_categories(cfg: PropensityConfig) -> None:
    """ValueError naming a configured category the data does not have (it became an all-negative label,
    skipped as 'rare', and the run said nothing)."""
    import difflib

    from features.build import read_meta

    if not cfg.categories:
        return
    known = [str(c) for c in read_meta(cfg.paths.features_dir).get("categories") or []]
    for c in cfg.categories:
        if known and c not in known:
            close = difflib.get_close_matches(c, known, n=3)
            raise ValueError(f"config field 'categories': no category {c!r} in the data; "
                             + (f"did you mean {close}?" if close else f"categories: {known}"))


def fit_outputs(train_df: pd.DataFrame, val_df: pd.DataFrame, feats: list[str], targets: dict[str, str],
                cfg: PropensityConfig) -> tuple[dict[str, Any], list[str]]:
    """One calibrated classifier per output (``name -> label column``); too-rare outputs are skipped."""
    rng = np.random.default_rng(cfg.gbm.seed)
    models, skipped = {}, []
    for out, col in targets.items():
        y_tr = train_df[col].astype(bool).to_numpy()
        y_va = val_df[col].astype(bool).to_numpy()
        if min(y_tr.sum(), y_va.sum()) < 5:  # too rare to learn or calibrate
            skipped.append(out)
            continue
        rows = np.arange(len(train_df))
        if out != "propensity" and cfg.negatives_per_positive:
            neg = np.flatnonzero(~y_tr)
            keep = int(min(len(neg), cfg.negatives_per_positive * y_tr.sum()))
            rows = np.sort(np.r_[np.flatnonzero(y_tr), rng.choice(neg, keep, replace=False)])
        models[out] = fit_binary(train_df.iloc[rows], val_df, feats, y_tr[rows].astype(float), y_va.astype(float),
                                 cfg.gbm, dict(cfg.monotone), cfg.calibration)
    return models, skipped


def truth_scores(cfg: PropensityConfig, models: dict, feats: list[str]) -> dict[str, float]:
    """On synthetic data: AUC at the newest snapshot vs the generator's true purchases in the next 30 days."""
    from training import datasets
    from training.evaluation.classification import roc_auc

    truth = datasets.truth_by_one_id(cfg.paths)
    if truth is None or cfg.dataset.as_of is not None or cfg.dataset.horizon_days != 30:
        return {}
    df = datasets.scoring_frame(cfg.paths, cfg.dataset.service).merge(truth, on="one_id", how="inner")
    out = {}
    y = (df["future_purchases_30d"].fillna(0) > 0).to_numpy().astype(float)
    out["truth_auc"] = roc_auc(y, models["propensity"].predict(df[feats]))
    out["truth_baseline_recency_auc"] = roc_auc(y, -df["recency_days"].fillna(1e6).to_numpy())
    for name, m in models.items():
        col = "future_buy_30d_" + name.removeprefix("propensity_")
        if name != "propensity" and col in df.columns:
            yc = df[col].fillna(False).astype(bool).to_numpy().astype(float)
            out[f"truth_{name}_auc"] = roc_auc(yc, m.predict(df[feats]))
    out["truth_rows"] = float(len(df))
    return out
