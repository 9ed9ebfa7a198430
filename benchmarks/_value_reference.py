"""The CDNOW benchmarks' holdout-fitted reference: LightGBM by 5-fold CV on the holdout labels.

Not a model (it learns from the outcomes it is scored on): it measures how much the calibration
histories can tell about the holdout. ``benchmarks.customer_value`` reports ``ceiling()`` beside
portrait at each date; ``benchmarks.customer_value_sequence`` stacks ``reference_oof()``'s
predictions with a sequence model. Nothing here runs on import; there is no CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SIZES = ((7, 200, 300), (15, 100, 400), (31, 50, 600))  # (leaves, min child samples, rounds)
FOLDS_SEED = 0  # KFold(5, shuffle=True, random_state=0): every reference and sequence model uses these folds
BOOT = 200  # bootstrap resamples over customers, seed 0


def _sequence_features(cal: pd.DataFrame, end: pd.Timestamp, customers: pd.Series) -> pd.DataFrame:
    """Per customer, beyond portrait's features: the last 6 purchase days (age, gap, spend, units),
    purchase days and spend in the last 14-180 days, and the gaps' mean / spread / maximum."""
    d = (cal.assign(day=cal["ts"].dt.floor("D")).groupby(["customer_id", "day"], observed=True)
         .agg(amt=("amount", "sum"), q=("quantity", "sum")).reset_index().sort_values(["customer_id", "day"]))
    d["age"] = (end - d["day"]).dt.days
    d["gap"] = d.groupby("customer_id")["day"].diff().dt.days
    d["k"] = d.groupby("customer_id").cumcount(ascending=False)
    out = pd.DataFrame(index=pd.Index(customers.astype(str).unique()))
    for j in range(6):
        last = d[d["k"] == j].set_index("customer_id")
        for col in ("age", "gap", "amt", "q"):
            out[f"{col}{j}"] = last[col]
    for w in (14, 30, 60, 90, 120, 180):
        recent = d[d["age"] <= w].groupby("customer_id")
        out[f"days{w}"], out[f"spend{w}"] = recent.size(), recent["amt"].sum()
    out = out.fillna({c: 0.0 for c in out if c.startswith(("days", "spend"))})
    gaps = d.groupby("customer_id")["gap"]
    out["gap_mean"], out["gap_std"], out["gap_max"] = gaps.mean(), gaps.std(), gaps.max()
    return out.reindex(customers.astype(str)).reset_index(drop=True)


@dataclass(frozen=True)
class Reference:
    """One calibration date: customers in portrait's snapshot order, their features and holdout spend."""

    customers: pd.Series  # customer ids (str)
    cal: pd.DataFrame  # transactions before the calibration end (ts < end)
    end: pd.Timestamp  # calibration end + 1 day (exclusive)
    features: pd.DataFrame  # portrait's snapshot features + _sequence_features
    spend: np.ndarray  # holdout spend (net of returns); a buyer is spend > 0

    @property
    def buy(self) -> np.ndarray:
        return (self.spend > 0).astype(float)


def reference_data(tx: pd.DataFrame, end: str, weeks: int) -> Reference:
    """Everything portrait computes as of the calibration end ``end``, plus sequence features."""
    from features.transactions import labels_after
    from training.customer_value import ValueConfig, snapshot

    E = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    cal = tx[tx["ts"] < E]
    X = snapshot(cal, E, weeks * 7, ValueConfig())
    y = labels_after(tx, X[["customer_id", "cutoff"]], weeks * 7)["spend"].to_numpy()
    F = pd.concat([X.drop(columns=["customer_id", "cutoff"]).astype(float).reset_index(drop=True),
                   _sequence_features(cal, E, X["customer_id"])], axis=1)
    return Reference(X["customer_id"].astype(str).reset_index(drop=True), cal, E, F, y)


def folds(n: int):
    from sklearn.model_selection import KFold

    return KFold(5, shuffle=True, random_state=FOLDS_SEED).split(np.zeros((n, 1)))


def reference_oof(ref: Reference, size: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of one tree size: ``buy`` (binary), ``rank`` (spend rank), ``spend`` (tweedie)."""
    import lightgbm as lgb
    from scipy.stats import rankdata

    leaves, min_child, rounds = size
    targets = {"buy": (ref.buy, "binary"), "rank": (rankdata(ref.spend) / len(ref.spend), "regression"),
               "spend": (ref.spend, "tweedie")}
    out = {}
    for head, (target, objective) in targets.items():
        pred = np.zeros(len(target))
        for tr, te in folds(len(target)):
            params = dict(objective=objective, learning_rate=0.03, num_leaves=leaves, min_child_samples=min_child,
                          verbose=-1, num_threads=1, seed=0)
            data = lgb.Dataset(ref.features.iloc[tr], target[tr])
            pred[te] = lgb.train(params, data, rounds).predict(ref.features.iloc[te])
        out[head] = pred
    return out


def one_purchase_day(ref: Reference) -> np.ndarray:
    """True for customers with exactly one purchase day before the calibration end."""
    days = ref.cal.assign(day=ref.cal["ts"].dt.floor("D"), cid=ref.cal["customer_id"].astype(str))
    n = days.groupby("cid")["day"].nunique()
    return (n.reindex(ref.customers).fillna(0).to_numpy() == 1)


def bootstrap(spend: np.ndarray, p_buy: np.ndarray, p_rank: np.ndarray, n: int = BOOT) -> dict[str, tuple]:
    """95% percentile intervals over customers (``n`` resamples, seed 0) of AUC and Spearman."""
    from training.evaluation.classification import roc_auc
    from training.evaluation.value import spearman

    rng = np.random.default_rng(0)
    auc, sp = [], []
    for _ in range(n):
        i = rng.integers(0, len(spend), len(spend))
        auc.append(roc_auc(spend[i] > 0, p_buy[i]))
        sp.append(spearman(spend[i], p_rank[i]))
    return {"auc_ci": tuple(np.percentile(auc, [2.5, 97.5])), "spearman_ci": tuple(np.percentile(sp, [2.5, 97.5]))}


def groups(ref: Reference, p_buy: np.ndarray) -> dict[str, float]:
    """Share of one-purchase-day customers, holdout buy rate and AUC within each group."""
    from training.evaluation.classification import roc_auc

    one, buy = one_purchase_day(ref), ref.buy
    return {"one_day_share": float(one.mean()), "buy_rate_one_day": float(buy[one].mean()),
            "buy_rate_multi_day": float(buy[~one].mean()), "auc_one_day": roc_auc(buy[one], p_buy[one]),
            "auc_multi_day": roc_auc(buy[~one], p_buy[~one])}


def ceiling(tx: pd.DataFrame, end: str, weeks: int) -> dict:
    """Holdout-fitted reference: LightGBM by 5-fold CV on the holdout labels themselves (not a model).

    Features are everything portrait computes as of the calibration end plus purchase-sequence
    features (``_sequence_features``); the folds split customers, so each customer is scored by a
    model that saw other customers' holdout outcomes; each figure is the best of three tree sizes
    (Spearman: best of the buy, rank and tweedie heads). A model trained before the calibration end
    cannot expect to beat it on this information. ``details`` holds, for the best AUC and Spearman,
    bootstrap intervals over customers and the one-purchase-day split (from the out-of-fold predictions).
    """
    from training.evaluation.classification import roc_auc
    from training.evaluation.value import normalized_gini, spearman

    ref = reference_data(tx, end, weeks)
    y = ref.spend
    best = {"auc": (-1.0, None, None), "spearman": (-1.0, None, None), "gini": (-1.0, None, None)}
    for size in SIZES:
        oof = reference_oof(ref, size)
        scores = {"auc": [(roc_auc(y > 0, oof["buy"]), "buy")],
                  "spearman": [(spearman(y, oof[h]), h) for h in ("rank", "buy", "spend")],
                  "gini": [(normalized_gini(y, oof[h]), h) for h in ("spend", "rank")]}
        for metric, cands in scores.items():
            v, head = max(cands)
            if v > best[metric][0]:
                best[metric] = (v, size[0], oof[head] if metric != "gini" else None)
    (auc, auc_leaves, p_buy), (sp, sp_leaves, p_rank) = best["auc"], best["spearman"]
    details = {"auc_leaves": auc_leaves, "spearman_leaves": sp_leaves, **bootstrap(y, p_buy, p_rank),
               **groups(ref, p_buy)}
    return {"auc": auc, "spearman": sp, "gini": best["gini"][0], "top_decile_capture": None, "total_ratio": None,
            "details": details}


def details_table(rows: list[tuple[str, int, dict]]) -> str:
    """Markdown table of ``ceiling()``'s details, one row per (end, weeks, result)."""
    out = ["| calibration end (holdout) | AUC [95% CI] | Spearman [95% CI] | customers with 1 purchase day | "
           "holdout buy rate: 1 day / more | AUC within: 1 day / more |", "|---|---|---|---|---|---|"]
    for end, weeks, r in rows:
        d = r["details"]
        out.append(f"| {end} (+{weeks} w) | {r['auc']:.3f} [{d['auc_ci'][0]:.3f}, {d['auc_ci'][1]:.3f}] | "
                   f"{r['spearman']:.3f} [{d['spearman_ci'][0]:.3f}, {d['spearman_ci'][1]:.3f}] | "
                   f"{d['one_day_share']:.1%} | {d['buy_rate_one_day']:.1%} / {d['buy_rate_multi_day']:.1%} | "
                   f"{d['auc_one_day']:.3f} / {d['auc_multi_day']:.3f} |")
    return "\n".join(out)
