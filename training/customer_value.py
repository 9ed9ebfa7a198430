"""Customer value from plain transactions: P(buy) and spend over a horizon, tuned only before a cutoff.

This is what ``portrait evaluate customer-value`` runs on any (customer, date, amount)
file, CDNOW included. Given a calibration end ``E`` and a horizon ``H`` it

1. plans rolling training cutoffs inside the calibration period: a training horizon
   ``h = min(H, span / 2)`` (the full ``H`` rarely fits before ``E``) and cutoffs
   ``c = E - h, E - h - step, ...`` each with at least ``min_history_days`` of data before it,
   so every label window ``[c, c + h)`` ends on or before ``E``;
2. builds one row per (customer, cutoff): features from ``features.transactions`` (strictly
   before ``c``) plus BG/NBD and Gamma-Gamma summaries fitted on that snapshot, label =
   spend in ``[c, c + h)``;
3. fits the cohort's **age curve** (spend per customer-day by days since the first purchase, a
   power law; ``models.btyd.AgeCurve``) on the calibration period, and gives each row a base =
   the curve's expected spend over the customer's ages ``[age, age + h)``;
4. trains each candidate (LightGBM tweedie on spend / base with weight base, i.e. a log offset,
   + a LightGBM P(buy) classifier; PyTorch ZILN on spend / base; their mean, "blend") on the
   older cutoffs, validates on the newest one, and picks the value model with the best mean of
   normalized Gini and Spearman there; buyers are ranked by an unweighted ensemble: the mean
   percentile rank of the candidates' mean P(buy) and BG/NBD's expected purchases
   (``buy="ensemble"``; ``buy="validated"`` picks one source by validation AUC instead, which on
   CDNOW always chose the tree model and ranked worse at every month end);
5. refits the winner on every cutoff and predicts as of ``E``: multiplier x base over
   ``[age, age + H)``, rescaled so the total equals the age curve's total. The curve, not the
   trees, sets the level: trees cannot extrapolate to customers older than any in training
   (a single cohort ages by ``E - c``), and a per-customer BG/NBD horizon ratio decays too fast
   on long horizons (total ratio 0.80 at 1997-06-30 + 52 weeks on CDNOW, 1.43 at 1997-12-31).

(``scaling="bgnbd"`` keeps the older scheme: BG/NBD ratio ``E[X(H)] / E[X(h)]``, with
``drift_correction=True`` a level correction measured on the validation cutoff.)

Nothing after ``E`` is read before the final scoring; :func:`evaluate` then compares
with the holdout and with the baselines (BG/NBD + Gamma-Gamma from ``lifetimes``,
recency-only, past spend rate, each candidate) in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.transactions import (TransactionFeatureConfig, features_as_of, labels_after, purchase_span,
                                   spend_by_age)
from models.btyd import AgeCurve, BetaGeo, GammaGamma
from training.value_baselines import simple_peers

ID_COLS = ("customer_id", "cutoff")
SCALINGS = ("age_curve", "bgnbd")  # ValueConfig.scaling: see the module docstring
BUY_RULES = ("ensemble", "validated")  # ValueConfig.buy


@dataclass(frozen=True)
class ValueConfig:
    min_history_days: int = 56  # a training cutoff needs this much history before it
    cutoff_step_days: int = 28  # spacing of the rolling training cutoffs
    max_cutoffs: int = 6  # newest first; the newest is the validation cutoff
    candidates: tuple[str, ...] = ("lgbm", "ziln")  # plus their blend; value by validation (Gini+Spearman)/2
    drift_correction: bool = False  # scale totals by actual / predicted on the validation cutoff
    scaling: str = "age_curve"  # "age_curve": learn spend relative to the cohort's age curve; "bgnbd": BG/NBD horizon ratio
    # "ensemble": buyers ranked by the mean percentile rank of the candidates' P(buy) and BG/NBD's expected
    # purchases (no choice made); "validated": the single score with the best AUC on the validation cutoff
    buy: str = "ensemble"
    features: TransactionFeatureConfig = field(default_factory=TransactionFeatureConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ValueError(f"ValueConfig(scaling={self.scaling!r}): choose from {SCALINGS}")
        if self.buy not in BUY_RULES:
            raise ValueError(f"ValueConfig(buy={self.buy!r}): choose from {BUY_RULES}")


@dataclass
class ValueFit:
    """A fitted transaction value model and what was decided on the way."""

    model: str  # the chosen value candidate
    train_horizon_days: int
    cutoffs: list[pd.Timestamp]
    validation: dict[str, dict[str, float]]  # candidate -> metrics on the validation cutoff
    level: dict[str, float]  # candidate -> drift correction factor
    fitted: dict[str, Any]  # candidate -> (value model, P(buy) model or None)
    feature_names: list[str]
    curve: AgeCurve | None = None  # the cohort's spend-by-age curve (scaling="age_curve")
    buy_model: str | None = None  # what ranks buyers: "<candidate or blend>[+bgnbd]" (ValueConfig.buy; None: model)


def plan(first: pd.Timestamp, end: pd.Timestamp, horizon_days: int, cfg: ValueConfig) -> tuple[int, list[pd.Timestamp]]:
    """Training horizon and cutoffs (newest first) fitting inside ``[first, end]``."""
    span = (end - first).days
    h = int(min(horizon_days, span // 2))
    if h < 7:
        raise ValueError(f"calibration period of {span} days is too short to learn from "
                         f"(need ~{2 * 7 + cfg.min_history_days}; a later --calibration-end)")
    cuts, c = [], end - pd.Timedelta(days=h)
    while c >= first + pd.Timedelta(days=cfg.min_history_days) and len(cuts) < cfg.max_cutoffs:
        cuts.append(c)
        c -= pd.Timedelta(days=cfg.cutoff_step_days)
    if len(cuts) < 2:
        raise ValueError(f"need at least two training cutoffs between {first.date()} + {cfg.min_history_days} days "
                         f"and {end.date()} - {h} days; lengthen the calibration period (a later --calibration-end)")
    return h, cuts


def snapshot(tx: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: float, cfg: ValueConfig) -> pd.DataFrame:
    """Features as of ``cutoff`` (transactions before it only) plus BG/NBD/Gamma-Gamma summaries."""
    X = features_as_of(tx[tx["ts"] < cutoff], cutoff, cfg.features)
    bg = BetaGeo().fit(X)
    try:
        spend = GammaGamma().fit(X).predict(X)
    except ValueError:  # too few repeat buyers: the plain mean spend per purchase day
        spend = X["monetary_mean"].to_numpy()
    X["bg_expected"] = bg.expected_purchases(X, horizon_days)
    X["bg_p_alive"] = bg.p_alive(X)
    X["gg_spend"] = spend
    X["bg_value"] = X["bg_expected"] * X["gg_spend"]
    X.attrs["bgnbd"] = bg
    return X


def _base(curve: AgeCurve | None, X: pd.DataFrame, horizon_days: float) -> np.ndarray:
    """Expected spend of an average customer of each row's age over the horizon (1 without a curve)."""
    if curve is None:
        return np.ones(len(X))
    return np.maximum(curve.expected(X["tenure_days"].to_numpy(np.float64), horizon_days), 1e-9)


def _candidate(name: str, seed: int) -> tuple[Any, Any]:
    from models.gbm import GBMClassifier, GBMRegressor
    from models.ziln import ZILNRegressor

    if name == "lgbm":
        # small data (CDNOW: 23k customers): a slower learning rate and full histograms are affordable
        gbm = dict(num_leaves=15, min_child_samples=100, learning_rate=0.05, n_estimators=1000,
                   early_stopping_rounds=50, max_bin=255, num_threads=1, seed=seed)
        return GBMRegressor(**gbm), GBMClassifier(**gbm)
    if name == "ziln":
        return ZILNRegressor(batch_size=1024, learning_rate=2e-3, patience=6, seed=seed), None
    raise ValueError(f"unknown candidate {name!r}; choose from ('lgbm', 'ziln')")


def _fit_pair(name: str, pair: tuple[Any, Any], X: pd.DataFrame, y: np.ndarray, base: np.ndarray,
              eval_set: tuple | None, rounds: tuple[int | None, int | None] = (None, None)) -> tuple[Any, Any]:
    """Fit the value model to spend / base (weights: base, i.e. a log offset for tweedie) and P(buy) to y > 0."""
    value, buy = pair
    rel_eval = None if eval_set is None else (eval_set[0], eval_set[1] / eval_set[2])
    if name == "ziln":
        value.fit(X, y / base, eval_set=rel_eval)
        return value, None
    value.fit(X, y / base, eval_set=rel_eval, sample_weight=base, n_estimators=rounds[0])
    buy.fit(X, (y > 0).astype(float), eval_set=None if eval_set is None else (eval_set[0], eval_set[1] > 0),
            n_estimators=rounds[1])
    return value, buy


def p_buy(pair: tuple[Any, Any], X: pd.DataFrame) -> np.ndarray:
    """P(any purchase in the horizon) from a fitted candidate."""
    value, buy = pair
    return buy.predict(X) if buy is not None else value.predict_proba(X)


def fit(tx: pd.DataFrame, end: pd.Timestamp, horizon_days: int, cfg: ValueConfig = ValueConfig(),
        progress: Any = None) -> ValueFit:
    """Train on rolling cutoffs before ``end`` (see the module docstring); reads only ``ts < end``."""
    import torch

    from training.evaluation.classification import roc_auc
    from training.evaluation.value import normalized_gini, spearman, total_ratio

    torch.set_num_threads(1)
    tx = tx[tx["ts"] < end]
    span = purchase_span(tx)  # returns, and purchases cancelled on their day, are no data start
    if span is None:
        raise ValueError(f"no purchases before {end.date()}" + (" that stand (only returns, or purchases refunded "
                         "on their day)" if len(tx) else "") + "; choose a later --calibration-end")
    h, cuts = plan(span[0].floor("D"), end, horizon_days, cfg)
    curve = None
    if cfg.scaling == "age_curve":
        try:
            curve = AgeCurve().fit(spend_by_age(tx, end))
        except ValueError as exc:  # e.g. nobody bought twice yet
            raise ValueError(f"age curve before {end.date()}: {exc}; choose a later --calibration-end") from exc
    frames = []
    for c in cuts:
        X = snapshot(tx, c, h, cfg)
        X["_y"] = labels_after(tx, X[list(ID_COLS)], h)["spend"].to_numpy()
        X["_base"] = _base(curve, X, h)
        frames.append(X)
        if progress:
            progress(1, f"features as of {c.date()}")
    val, train = frames[0], pd.concat(frames[1:], ignore_index=True)
    full = pd.concat(frames, ignore_index=True)
    # a column with one value everywhere (e.g. returned_share without returns) tells the learners nothing
    names = [c for c in frames[0].columns if c not in (*ID_COLS, "_y", "_base") and full[c].nunique(dropna=False) > 1]
    metrics, level, fitted, val_pred, val_buy = {}, {}, {}, {}, {}
    yv, bv = val["_y"].to_numpy(), val["_base"].to_numpy()
    if not full["_y"].sum() > 0:  # tweedie and P(buy) cannot learn from all-zero labels
        raise ValueError(f"no repeat purchases after any training cutoff before {end.date()}; "
                         "choose a later --calibration-end")

    def judge(name: str, pred: np.ndarray, buy: np.ndarray) -> None:
        val_pred[name], val_buy[name] = pred, buy
        metrics[name] = {"gini": normalized_gini(yv, pred), "spearman": spearman(yv, pred),
                         "auc": roc_auc(yv > 0, buy), "total_ratio": total_ratio(yv, pred)}
        metrics[name]["score"] = (metrics[name]["gini"] + metrics[name]["spearman"]) / 2
        level[name] = 1.0 / metrics[name]["total_ratio"] if cfg.drift_correction else 1.0

    for name in cfg.candidates:
        pair = _fit_pair(name, _candidate(name, cfg.seed), train[names], train["_y"].to_numpy(),
                         train["_base"].to_numpy(), (val[names], yv, bv))
        judge(name, pair[0].predict(val[names]) * bv, p_buy(pair, val[names]))
        rounds = (getattr(pair[0], "best_iteration_", None), getattr(pair[1], "best_iteration_", None))
        # refit on every cutoff; GBMs keep the validated number of rounds, ZILN early-stops on the newest cutoff
        eval_set = (val[names], yv, bv) if name == "ziln" else None
        fitted[name] = _fit_pair(name, _candidate(name, cfg.seed), full[names], full["_y"].to_numpy(),
                                 full["_base"].to_numpy(), eval_set, rounds)
        if progress:
            progress(1, f"trained {name}")
    if len(cfg.candidates) > 1:  # the mean of the (level-corrected) candidates often ranks better than each
        judge("blend", np.mean([val_pred[n] * level[n] for n in cfg.candidates], axis=0),
              np.mean([val_buy[n] for n in cfg.candidates], axis=0))
    for name in list(metrics):  # each P(buy) alone and averaged (percentile ranks) with BG/NBD's E[purchases]
        metrics[name]["auc_with_bgnbd"] = roc_auc(yv > 0, _rank_mean(val_buy[name], val["bg_expected"].to_numpy()))
    best = max(metrics, key=lambda n: metrics[n]["score"])
    if cfg.buy == "ensemble":
        # the validation cutoff sits inside the ages and horizon the trees were trained on, so it cannot
        # see what the holdout asks (older customers, a longer horizon) and favoured the single tree
        # model, which ranked buyers worse than the average at every CDNOW month end: average, do not pick
        buy = ("blend" if len(cfg.candidates) > 1 else cfg.candidates[0]) + "+bgnbd"
    else:
        buy = max([(metrics[n]["auc"], n) for n in metrics]
                  + [(metrics[n]["auc_with_bgnbd"], n + "+bgnbd") for n in metrics])[1]
    return ValueFit(best, h, cuts, metrics, level, fitted, names, curve, buy)


def _rank_mean(*scores: np.ndarray) -> np.ndarray:
    """Mean percentile rank (0-1] of several scores of the same rows: a scale-free ensemble."""
    from scipy.stats import rankdata

    return np.mean([rankdata(s) / len(s) for s in scores], axis=0)


def predict(fitted: ValueFit, tx: pd.DataFrame, end: pd.Timestamp, horizon_days: int, cfg: ValueConfig = ValueConfig(),
            model: str | None = None, X: pd.DataFrame | None = None) -> pd.DataFrame:
    """``customer_id, p_buy, buy_score, value`` as of ``end`` over ``horizon_days`` (default: the chosen models).

    ``p_buy`` is the P(buy) model's probability (trained over the training horizon); ``buy_score``
    ranks buyers: ``p_buy`` itself, or for a ``buy_model`` ``"<name>+bgnbd"`` (the default ensemble is
    ``"blend+bgnbd"``: ``p_buy`` is then the candidates' mean) the mean percentile rank of ``p_buy`` and
    BG/NBD's expected purchases over ``horizon_days`` (BG/NBD extrapolates to older customers and
    longer horizons than the trees saw).
    ``X`` may pass a precomputed ``snapshot(tx, end, fitted.train_horizon_days, cfg)``.
    """
    name = model or fitted.model
    buy_name = model or fitted.buy_model or name
    if X is None:
        X = snapshot(tx[tx["ts"] < end], end, fitted.train_horizon_days, cfg)
    if fitted.curve is not None:  # the models learned spend relative to the age curve over h: scale by it over H
        ratio = _base(fitted.curve, X, horizon_days)
    else:
        bg: BetaGeo = X.attrs["bgnbd"]
        ratio = bg.expected_purchases(X, horizon_days) / np.maximum(bg.expected_purchases(X, fitted.train_horizon_days), 1e-12)
    parts = [n for n in fitted.fitted if n != "blend"] if name == "blend" else [name]
    F = X[fitted.feature_names]
    value = np.mean([fitted.fitted[n][0].predict(F) * fitted.level[n] for n in parts], axis=0)
    value = value * (fitted.level[name] if name == "blend" else 1.0) * ratio
    if fitted.curve is not None and value.sum() > 0:
        # the level comes from the age curve (it extrapolates in age and horizon), the split between
        # customers from the model: trees cannot extrapolate to older customers than they trained on
        value = value * (ratio.sum() / value.sum())
    buy_base = buy_name.removesuffix("+bgnbd")
    buy_parts = [n for n in fitted.fitted if n != "blend"] if buy_base == "blend" else [buy_base]
    buy = np.mean([p_buy(fitted.fitted[n], F) for n in buy_parts], axis=0)
    score = buy
    if buy_name.endswith("+bgnbd"):
        score = _rank_mean(buy, X.attrs["bgnbd"].expected_purchases(X, horizon_days))
    return pd.DataFrame({"customer_id": X["customer_id"], "p_buy": buy, "buy_score": score, "value": value})


def evaluate(tx: pd.DataFrame, calibration_end: pd.Timestamp, holdout_weeks: int, cfg: ValueConfig = ValueConfig(),
             progress: Any = None) -> dict[str, Any]:
    """portrait's default model vs the holdout, with baselines, as the benchmark JSON."""
    from training.evaluation.value import value_report

    end = calibration_end + pd.Timedelta(days=1)  # the calibration end date is included
    H = int(holdout_weeks * 7)
    span = purchase_span(tx)  # the last purchase that stands: a late refund does not make a holdout observed
    if span is None:
        raise ValueError("no purchases in the file that stand (only returns, or purchases refunded on their day)")
    last = span[1]
    if last < end:
        raise ValueError(f"the calibration end {calibration_end.date()} is after the last transaction "
                         f"({last.date()}); choose an earlier --calibration-end")
    if last < end + pd.Timedelta(days=H - 1):
        raise ValueError(f"holdout of {holdout_weeks} weeks after {calibration_end.date()} runs past the last "
                         f"transaction ({last.date()}); shorten --holdout-weeks")
    fitted = fit(tx, end, H, cfg, progress)
    snap = snapshot(tx[tx["ts"] < end], end, fitted.train_horizon_days, cfg)
    ours = predict(fitted, tx, end, H, cfg, X=snap)
    actual = labels_after(tx, pd.DataFrame({"customer_id": ours["customer_id"], "cutoff": end}), H)["spend"].to_numpy()
    out: dict[str, Any] = value_report(actual, ours["value"].to_numpy(), ours["buy_score"].to_numpy())
    out["model"] = fitted.model if fitted.buy_model in (None, fitted.model) else f"{fitted.model}, p_buy {fitted.buy_model}"
    baselines: dict[str, dict[str, float]] = {}
    for name in fitted.validation:
        pr = predict(fitted, tx, end, H, cfg, model=name, X=snap)
        baselines[name] = value_report(actual, pr["value"].to_numpy(), pr["p_buy"].to_numpy())
    baselines.update(simple_peers(features_as_of(tx[tx["ts"] < end], end, cfg.features), H, actual))
    out["baselines"] = baselines
    out["setup"] = {
        "calibration_end": str(calibration_end.date()), "holdout_weeks": holdout_weeks, "customers": int(len(ours)),
        "holdout_buyers": int((actual > 0).sum()), "returns": int(((tx["amount"] < 0) & (tx["ts"] < end + pd.Timedelta(days=H))).sum()),
        "returns_ignored": int(tx.attrs.get("returns_ignored", 0)), "train_horizon_days": fitted.train_horizon_days,
        "train_cutoffs": [str(c.date()) for c in fitted.cutoffs], "validation": fitted.validation,
        "drift_correction": fitted.level,
        "age_curve": None if fitted.curve is None else {"c_per_day": fitted.curve.c_, "k": fitted.curve.k_},
    }
    return out
