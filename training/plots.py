"""Figures logged to MLflow for every value model: ROC, PR, calibration, lift/gain, importance, SHAP.

Each function takes arrays and returns a matplotlib figure (Agg backend, no display);
:func:`log_classifier_plots` and :func:`log_importance` log a full set into the active run
under ``plots/`` (and the decile table under ``tables/``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc(y: np.ndarray, score: np.ndarray, title: str) -> Any:
    from training.evaluation.classification import roc_auc, roc_curve

    plt = _plt()
    fpr, tpr, _ = roc_curve(y, score)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc(y, score):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC — {title}")
    ax.legend(loc="lower right")
    return fig


def pr(y: np.ndarray, score: np.ndarray, title: str) -> Any:
    from training.evaluation.classification import average_precision, pr_curve

    plt = _plt()
    precision, recall, _ = pr_curve(y, score)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, label=f"AP {average_precision(y, score):.3f}")
    ax.axhline(np.mean(y), color="k", ls="--", lw=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title=f"precision-recall — {title}", ylim=(0, 1.02))
    ax.legend()
    return fig


def calibration(y: np.ndarray, prob: np.ndarray, title: str, raw: np.ndarray | None = None) -> Any:
    from training.evaluation.classification import calibration_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in (("calibrated", prob), ("raw", raw)):
        if p is not None:
            c = calibration_curve(y, p)
            ax.plot(c["mean_predicted"], c["observed_rate"], "o-", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=f"calibration — {title}")
    ax.legend()
    return fig


def lift_gain(table: pd.DataFrame, title: str) -> Any:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.bar(table["decile"], table["lift"])
    a1.axhline(1.0, color="k", lw=0.8)
    a1.set(xlabel="decile (1 = highest score)", ylabel="lift", title=f"lift — {title}")
    a2.plot(np.r_[0, table["decile"] / len(table)], np.r_[0, table["cumulative_gain"]], "o-", label="model")
    a2.plot([0, 1], [0, 1], "k--", lw=0.8, label="random")
    a2.set(xlabel="share of customers targeted", ylabel="share of positives captured", title="cumulative gain")
    a2.legend()
    return fig


def importance(gain: pd.Series, title: str, top: int = 20) -> Any:
    plt = _plt()
    g = gain.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(g) + 1))
    ax.barh(g.index, g.to_numpy())
    ax.set(xlabel="total gain", title=f"feature importance — {title}")
    fig.tight_layout()
    return fig


def shap_summary(shap_values: np.ndarray, X: pd.DataFrame, title: str, top: int = 15) -> Any:
    """Beeswarm-style summary: one row per feature, SHAP value on x, colour = feature value rank."""
    plt = _plt()
    order = np.argsort(-np.abs(shap_values).mean(axis=0))[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1))
    rng = np.random.default_rng(0)
    for row, j in enumerate(order):
        col = pd.to_numeric(X.iloc[:, j], errors="coerce") if X.iloc[:, j].dtype != object else pd.Series(np.nan, index=X.index)
        colour = col.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(shap_values[:, j], row + rng.uniform(-0.3, 0.3, len(colour)), c=colour, cmap="coolwarm", s=3)
    ax.set_yticks(range(len(order)), [X.columns[j] for j in order])
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="SHAP value (impact on the model's raw output)", title=f"SHAP summary — {title} (red = high value)")
    fig.tight_layout()
    return fig


def log_classifier_plots(y: np.ndarray, prob: np.ndarray, title: str, prefix: str = "", raw: np.ndarray | None = None) -> None:
    """ROC, PR, calibration, lift/gain figures and the decile table into the active run."""
    from training.evaluation.classification import lift_table
    from training.registry import log_figure, log_frame

    y = np.asarray(y, dtype=np.float64)
    log_figure(roc(y, prob, title), f"plots/{prefix}roc.png")
    log_figure(pr(y, prob, title), f"plots/{prefix}pr.png")
    log_figure(calibration(y, prob, title, raw), f"plots/{prefix}calibration.png")
    table = lift_table(y, prob)
    log_figure(lift_gain(table, title), f"plots/{prefix}lift_gain.png")
    log_frame(table, f"tables/{prefix}deciles.csv")


def log_importance(model: Any, X: pd.DataFrame, title: str, prefix: str = "", sample: int = 2000) -> None:
    """Gain importance and a SHAP summary (on up to ``sample`` rows) for a LightGBM model."""
    from training.registry import log_figure, log_frame

    gain = model.feature_importance("gain")
    log_frame(gain.rename_axis("feature").reset_index(name="gain"), f"tables/{prefix}importance_gain.csv")
    log_figure(importance(gain, title), f"plots/{prefix}importance_gain.png")
    Xs = X.sample(min(sample, len(X)), random_state=0) if len(X) else X
    if len(Xs):
        Xs = Xs[model.feature_names_]
        log_figure(shap_summary(model.shap_values(Xs), Xs, title), f"plots/{prefix}shap_summary.png")
