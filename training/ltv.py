"""LTV: predicted spend in the next H days (default 180), LightGBM tweedie vs PyTorch ZILN.

``train(LTVConfig(paths=...)) -> run_id``. Both candidates learn on the older cutoffs of
the Feast training set and early-stop on the next slice; the one with the better
normalized Gini on that validation slice is kept.

The LightGBM candidate is monotone in past spend: every cumulative spend feature
(``monetary_30d/90d/365d/total`` and ``aov_365d``, see :data:`PAST_SPEND`) is constrained +1, so
a customer who spent more (every window up, as more or bigger orders raise them all) never gets a
lower prediction (``tests/value`` checks it on hand-built and on synthetic customers). The rule tags
derived from spend by population thresholds (``tag_value_tier``, ``tag_rfm_segment``) are excluded:
as text codes they cannot be constrained, and they only restate recency, frequency and
``monetary_365d``. ZILN is an MLP and cannot be constrained; when it wins, the run's
``monotone_guaranteed`` tag says so.

A ZILN champion's pyfunc also returns ``ltv_p_buy`` (P(spend > 0) in the horizon) and the spend
quantiles ``ltv_p10``, ``ltv_p50``, ``ltv_p90`` next to ``ltv`` (``models.ziln.ZILNRegressor.predict_outputs``);
a LightGBM champion returns ``ltv`` only. Metrics on the newest slice (the promotion holdout):
normalized Gini, Spearman, top-decile capture, total ratio, vs the recency-only and past-spend
baselines, and ZILN's P(buy) AUC (``candidate_ziln_p_buy_auc``); on synthetic data also Spearman
vs the generator's true future spend (the champion's, and each candidate's).

ZILN sees the numeric features clipped to their range on the training slice (``models.ziln``): on
synthetic data the campaign counts are all 0 on the older cutoffs, and before the clip (and the
scale of 1 for a constant column) they reached the network as ~1e6 on the newer rows, so ZILN's
outputs exploded on the holdout and on today's customers (holdout Gini 0.33-0.37, below the
past-spend baseline; 0.66-0.72 since).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.churn import GBMConfig
from training.datasets import DatasetConfig, Paths, task_params

# Cumulative past spend: a customer who spent more has each of these at least as high (aov_365d =
# monetary_365d / frequency_365d rises with the spend at the same number of orders, and the order
# counts are features of their own). Ratios of spend windows (trend_spend_30d, refund and discount
# shares) do not move when all spend scales and are left free.
PAST_SPEND = ("monetary_30d", "monetary_90d", "monetary_365d", "monetary_total", "aov_365d")
# Rule tags cut from spend by population thresholds: text codes a monotone constraint cannot order.
SPEND_TAGS = ("tag_value_tier", "tag_rfm_segment")


@dataclass(frozen=True)
class LTVConfig:
    paths: Paths  # data dir and MLflow store (from Settings)
    dataset: DatasetConfig = field(default_factory=lambda: DatasetConfig(service="ltv_v1", horizon_days=180))
    gbm: GBMConfig = field(default_factory=lambda: GBMConfig(num_leaves=15, min_child_samples=100))
    candidates: tuple[str, ...] = ("lgbm", "ziln")  # chosen by normalized Gini on the validation slice
    monotone: tuple[tuple[str, int], ...] = tuple((f, 1) for f in PAST_SPEND)  # LightGBM only: more past spend never lowers LTV
    ziln_epochs: int = 40  # upper bound; early stopping on the validation slice
    exclude: tuple[str, ...] = SPEND_TAGS  # features left out; replacing this list brings the spend tags back
    model_name: str = "ltv"
    promote: bool = True

    def __post_init__(self) -> None:  # nonsense stops before a model version is registered
        if not self.candidates or set(self.candidates) - {"lgbm", "ziln"}:
            raise ValueError(f"candidates must be some of ['lgbm', 'ziln'], got {list(self.candidates)!r}")
        if self.ziln_epochs < 1:
            raise ValueError(f"ziln_epochs must be at least 1, got {self.ziln_epochs!r}")
        bad = [m for m in self.monotone if len(m) != 2 or m[1] not in (-1, 0, 1)]
        if bad:
            raise ValueError(f"monotone: each entry is [feature, -1|0|1], got {list(bad[0])!r}")


def _candidate(name: str, cfg: LTVConfig, feats: list[str]) -> Any:
    from models.gbm import GBMRegressor
    from models.ziln import ZILNRegressor

    if name == "lgbm":
        g = cfg.gbm
        mono = {k: v for k, v in cfg.monotone if k in feats}
        return GBMRegressor(n_estimators=g.n_estimators, learning_rate=g.learning_rate, num_leaves=g.num_leaves,
                            min_child_samples=g.min_child_samples, early_stopping_rounds=g.early_stopping_rounds,
                            monotone=mono or None, num_threads=g.num_threads, seed=g.seed)
    if name == "ziln":
        return ZILNRegressor(epochs=cfg.ziln_epochs, seed=cfg.gbm.seed)
    raise ValueError(f"unknown LTV candidate {name!r}; choose from ('lgbm', 'ziln')")


def fit_candidates(train_df: pd.DataFrame, val_df: pd.DataFrame, feats: list[str], y_train: np.ndarray,
                   y_val: np.ndarray, cfg: LTVConfig) -> tuple[dict[str, Any], dict[str, float], str]:
    """Fit every candidate with early stopping on the validation slice; returns (fitted, val Gini, best name)."""
    from training.evaluation.value import normalized_gini

    fitted, val_gini = {}, {}
    for name in cfg.candidates:
        fitted[name] = _candidate(name, cfg, feats).fit(train_df[feats], y_train, eval_set=(val_df[feats], y_val))
        val_gini[name] = normalized_gini(y_val, fitted[name].predict(val_df[feats]))
    return fitted, val_gini, max(val_gini, key=val_gini.get)


def value_metrics(actual: np.ndarray, pred: np.ndarray, prefix: str = "") -> dict[str, float]:
    from training.evaluation.value import normalized_gini, spearman, top_decile_capture, total_ratio

    return {f"{prefix}gini": normalized_gini(actual, pred), f"{prefix}spearman": spearman(actual, pred),
            f"{prefix}top_decile_capture": top_decile_capture(actual, pred), f"{prefix}total_ratio": total_ratio(actual, pred)}


def decile_plot(table: pd.DataFrame, title: str) -> Any:
    from training.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    x = table["decile"].to_numpy()
    ax.bar(x - 0.2, table["mean_predicted"], width=0.4, label="mean predicted")
    ax.bar(x + 0.2, table["mean_actual"], width=0.4, label="mean actual")
    ax.set(xlabel="decile by prediction (1 = highest)", ylabel="spend", title=f"LTV deciles — {title}")
    ax.legend()
    return fig


def train(config: LTVConfig) -> str:
    """Train both candidates, keep the better, evaluate, register and gate; returns the MLflow run id."""
    import torch

    from training import datasets, registry
    from training.evaluation.classification import roc_auc
    from training.evaluation.value import decile_table, normalized_gini

    torch.set_num_threads(max(1, config.gbm.num_threads))
    cfg = config
    registry.setup(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts)  # a bad store stops before any training
    ts = datasets.build(cfg.paths, cfg.dataset)
    feats = [c for c in ts.features if c in ts.frame.columns and c not in cfg.exclude]
    label = f"spend_{cfg.dataset.horizon_days}d"
    train_df, val_df, test_df = ts.split()
    y = lambda df: df[label].to_numpy(np.float64)  # noqa: E731
    datasets.check_names(ts, cfg.exclude, cfg.monotone)
    datasets.check_holdout(y(test_df) > 0, ts.cutoffs[-1], "buyers")
    fitted, val_gini, best = fit_candidates(train_df, val_df, feats, y(train_df), y(val_df), cfg)
    model = fitted[best]
    with registry.start_run(cfg.model_name, run_name=f"ltv H={cfg.dataset.horizon_days}d ({best})") as run:
        registry.log_config(cfg, {"feature_service": cfg.dataset.service, "label": label, "chosen": best,
                                  "cutoffs": ",".join(str(c.date()) for c in ts.cutoffs), "rows": len(ts.frame),
                                  "n_features": len(feats)})
        import mlflow

        mlflow.set_tag("monotone_guaranteed", str(best == "lgbm" and bool(cfg.monotone)))
        metrics = {f"val_gini_{n}": g for n, g in val_gini.items()}
        pred = model.predict(test_df[feats])
        metrics.update(value_metrics(y(test_df), pred))
        for n, m in fitted.items():
            metrics[f"candidate_{n}_gini"] = normalized_gini(y(test_df), m.predict(test_df[feats]))
        if "ziln" in fitted:  # the ltv_p_buy a ZILN champion serves, scored on who bought in the holdout horizon
            metrics["candidate_ziln_p_buy_auc"] = roc_auc(y(test_df) > 0, fitted["ziln"].predict_proba(test_df[feats]))
        rec = -test_df["recency_days"].fillna(1e6).to_numpy()
        metrics["baseline_recency_gini"] = normalized_gini(y(test_df), rec)
        metrics["baseline_past_spend_gini"] = normalized_gini(y(test_df), test_df["monetary_total"].fillna(0).to_numpy())
        metrics.update(truth_scores(cfg, model, feats, fitted))
        table = decile_table(y(test_df), pred)
        registry.log_frame(table, "tables/deciles.csv")
        registry.log_figure(decile_plot(table, "holdout"), "plots/deciles.png")
        if "lgbm" in fitted:
            from training.plots import log_importance

            log_importance(fitted["lgbm"], test_df[feats], "LTV (LightGBM)")
        version = registry.log_and_register(cfg.model_name, model, feats, output="ltv", metrics=metrics)
        y_test = y(test_df)
        if cfg.promote:
            registry.gate_and_tag(cfg.model_name, version,
                                  lambda m: normalized_gini(y_test, m.predict(test_df)["ltv"].to_numpy()), metric="gini",
                                  task=task_params(cfg.dataset))
        return run.info.run_id


def truth_scores(cfg: LTVConfig, model: Any, feats: list[str], candidates: dict[str, Any] | None = None) -> dict[str, float]:
    """On synthetic data: Spearman/Gini at the newest snapshot vs the generator's true future spend
    (the champion's, and each candidate's as ``truth_candidate_{name}_spearman``)."""
    from training import datasets
    from training.evaluation.value import normalized_gini, spearman

    truth = datasets.truth_by_one_id(cfg.paths)
    col = f"future_spend_{cfg.dataset.horizon_days}d"
    if truth is None or cfg.dataset.as_of is not None or col not in truth.columns:
        return {}
    df = datasets.scoring_frame(cfg.paths, cfg.dataset.service).merge(truth, on="one_id", how="inner")
    actual = df[col].fillna(0).to_numpy(np.float64)
    pred = model.predict(df[feats])
    rec = -df["recency_days"].fillna(1e6).to_numpy()
    return {"truth_spearman": spearman(actual, pred), "truth_gini": normalized_gini(actual, pred),
            "truth_baseline_recency_spearman": spearman(actual, rec),
            "truth_baseline_past_spend_spearman": spearman(actual, df["monetary_total"].fillna(0).to_numpy()),
            "truth_rows": float(len(df)),
            **{f"truth_candidate_{n}_spearman": spearman(actual, pred if m is model else m.predict(df[feats]))
               for n, m in (candidates or {}).items()}}  # the champion is one of them: predicted once
