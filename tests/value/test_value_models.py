"""Behavioural and leakage tests of the value models on small hand-built data (fast, no Feast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.transactions import features_as_of, labels_after, prepare
from models.calibration import Calibrator
from models.gbm import GBMRegressor
from models.ziln import ZILNRegressor
from training.churn import ChurnConfig, GBMConfig, fit_binary
from training.datasets import Paths
from training.ltv import LTVConfig
from training.tags import deciles, predicted_tags, tiers

PATHS = Paths("unused", "sqlite:///unused.db", "unused")


def _customers(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "recency_days": rng.exponential(60, n),
        "days_since_last_activity": rng.exponential(30, n),
        "monetary_total": rng.gamma(2.0, 100.0, n),
        "orders_total": rng.poisson(3, n).astype(float),
        "city": rng.choice(["bj", "sh", "gz"], n),
        "noise": rng.normal(size=n),
    })
    df["days_since_last_activity"] = np.minimum(df["days_since_last_activity"], df["recency_days"])
    return df


@pytest.mark.parametrize("calibration", ["platt", "isotonic"])  # platt: the default
def test_more_recent_purchase_never_raises_churn_risk(calibration: str) -> None:
    df = _customers()
    rng = np.random.default_rng(1)
    # churn grows with recency but the noise lets an unconstrained model wiggle
    churn = (rng.random(len(df)) < 1 / (1 + np.exp(-(df["recency_days"] - 60) / 30 + rng.normal(0, 1.5, len(df))))).astype(float)
    feats = list(df.columns)
    cut1, cut2 = 2000, 2500
    model = fit_binary(df[:cut1], df[cut1:cut2], feats, churn[:cut1], churn[cut1:cut2], GBMConfig(n_estimators=200),
                       dict(ChurnConfig(paths=PATHS).monotone), calibration)
    base = df[cut2:].reset_index(drop=True)
    risk = model.predict(base)
    for shrink in (0.9, 0.5, 0.1, 0.0):  # the last purchase moved closer to the cutoff
        recent = base.assign(recency_days=base["recency_days"] * shrink,
                             days_since_last_activity=np.minimum(base["days_since_last_activity"], base["recency_days"] * shrink))
        assert np.all(model.predict(recent) <= risk + 1e-12)
    assert model.predict(base.assign(recency_days=5.0)).mean() < model.predict(base.assign(recency_days=200.0)).mean()


def _spenders(n: int = 4000, seed: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers whose spend windows agree (30 d <= 90 d <= 365 d <= all history, aov = 365-d spend / orders)
    and a future spend that rises with past spend only through noise-blurred, overlapping windows."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(2.5, n).astype(float)
    aov = rng.gamma(2.0, 40.0, n)
    m365 = orders * aov * rng.uniform(0.7, 1.3, n)
    m90 = m365 * rng.beta(1.5, 2.5, n)
    m30 = m90 * rng.beta(1.5, 2.5, n)
    df = pd.DataFrame({
        "recency_days": np.where(orders > 0, rng.exponential(60, n), np.nan),
        "frequency_365d": orders, "orders_total": orders + rng.poisson(2, n),
        "monetary_30d": m30, "monetary_90d": m90, "monetary_365d": m365,
        "monetary_total": m365 + rng.gamma(1.5, 80.0, n), "aov_365d": np.where(orders > 0, m365 / np.maximum(orders, 1), 0.0),
        "trend_spend_30d": rng.uniform(-1, 1, n), "noise": rng.normal(size=n),
    })
    rate = 0.2 * m90 + 0.1 * m365 + 0.05 * df["monetary_total"] + 30 * np.abs(df["noise"])
    spend = np.where(rng.random(n) < 1 - np.exp(-(orders + 0.3) / 3), rng.gamma(1.5, 1, n) * rate, 0.0)
    return df, spend


@pytest.mark.parametrize("factor", [1.1, 2.0, 10.0])
def test_more_past_spend_never_lowers_lgbm_ltv(factor: float) -> None:
    """The customer who spent more, in every window at once (bigger orders, same order count), never gets a lower
    LTV. With only ``monetary_total`` constrained (the old default) the windows and AOV were free, and ~20% of
    synthetic holdout customers got a lower LTV for spending 10% more."""
    from training.ltv import PAST_SPEND

    df, spend = _spenders()
    mono = dict(LTVConfig(paths=PATHS).monotone)
    assert set(PAST_SPEND) <= set(mono) and all(mono[f] == 1 for f in PAST_SPEND)
    m = GBMRegressor(n_estimators=200, monotone=mono).fit(df[:3000], spend[:3000])
    base = df[3000:].reset_index(drop=True)
    richer = base.assign(**{f: base[f] * factor for f in PAST_SPEND})
    assert np.all(m.predict(richer) >= m.predict(base) - 1e-9)


def test_one_spend_window_constrained_is_not_enough() -> None:
    """The check above can fail: the old default (``monetary_total`` alone) lowers someone's LTV on the same data."""
    from training.ltv import PAST_SPEND

    df, spend = _spenders()
    m = GBMRegressor(n_estimators=200, monotone={"monetary_total": 1}).fit(df[:3000], spend[:3000])
    base = df[3000:].reset_index(drop=True)
    richer = base.assign(**{f: base[f] * 1.1 for f in PAST_SPEND})
    assert np.any(m.predict(richer) < m.predict(base) - 1e-9)


def test_transaction_features_never_see_the_label_window() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    tx = pd.DataFrame({"customer_id": rng.integers(0, 300, n).astype(str),
                       "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365 * 24, n), "h"),
                       "amount": rng.gamma(2, 20, n)})
    tx = prepare(tx)
    cutoff = pd.Timestamp("2024-07-01", tz="UTC")
    before = features_as_of(tx, cutoff)
    # rewrite everything at or after the cutoff: features must not move, labels must
    changed = tx.copy()
    after = changed["ts"] >= cutoff
    changed.loc[after, "amount"] *= 7.0
    changed = pd.concat([changed, pd.DataFrame({"customer_id": ["new"], "ts": [cutoff], "amount": [1.0]})], ignore_index=True)
    pd.testing.assert_frame_equal(before, features_as_of(prepare(changed), cutoff))
    y0 = labels_after(tx, before[["customer_id", "cutoff"]], 90)["spend"]
    y1 = labels_after(prepare(changed), before[["customer_id", "cutoff"]], 90)["spend"]
    assert (y1 >= y0).all() and (y1 > y0).any()
    # a purchase exactly at the cutoff is a label, never a feature
    assert not (before["recency_days"] <= 0).any()


def test_ziln_learns_probability_and_mean() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-2 * x))
    y = np.where(rng.random(n) < p, np.exp(1.0 + 0.5 * x + 0.3 * rng.normal(size=n)), 0.0)
    X = pd.DataFrame({"x": x, "z": rng.normal(size=n)})
    m = ZILNRegressor(hidden=(16,), epochs=40, batch_size=256, learning_rate=1e-2, seed=0).fit(X[:2500], y[:2500])
    prob = m.predict_proba(X[2500:])
    assert np.corrcoef(prob, p[2500:])[0, 1] > 0.95
    assert 0.8 < m.predict(X[2500:]).sum() / y[2500:].sum() < 1.25  # mean = p * exp(mu + sigma^2 / 2)
    q = m.predict_quantiles(X[2500:], (0.5, 0.9))
    assert np.all(q[:, 1] >= q[:, 0])


def test_ziln_inputs_use_training_statistics_and_never_extrapolate() -> None:
    """A column constant on the training rows (campaign contacts before the first campaign: all 0) became
    (x - 0) / 1e-6 ~ 1e6 on later rows and blew the network's outputs up (LTV holdout Gini 0.33-0.37 on the
    synthetic worlds, below the past-spend baseline). Inputs are now clipped to the training range, a constant
    column is always 0, and the statistics come from the training rows alone, never the validation rows."""
    rng = np.random.default_rng(5)
    n = 2000
    x = rng.normal(size=n)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-x)), np.exp(3.0 + 0.5 * x), 0.0)
    X = pd.DataFrame({"x": x, "contacts": 0.0, "share": rng.uniform(0, 0.3, n)})
    Xv = X.assign(x=X["x"] * 10, contacts=rng.integers(0, 5, n).astype(float), share=1.0)  # all shifted
    m = ZILNRegressor(hidden=(8,), epochs=5, batch_size=256, seed=0).fit(X, y, eval_set=(Xv, y))
    ref = ZILNRegressor(hidden=(8,), epochs=5, batch_size=256, seed=0)
    ref._matrix(X, fit=True)
    assert np.allclose(m.mean_, ref.mean_) and np.allclose(m.std_, ref.std_)  # eval_set rows play no part
    later = X.assign(contacts=rng.integers(1, 5, n).astype(float), x=X["x"] * 100)
    A = m._matrix(later)
    assert np.all(A[:, 1] == 0.0) and np.abs(A).max() <= np.abs(m._matrix(X)).max() + 1e-6
    pred = m.predict(later)
    assert np.all(np.isfinite(pred)) and pred.max() < 2 * m.predict(X).max()  # was ~exp(50)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_fixes_a_miscalibrated_score(method: str) -> None:
    rng = np.random.default_rng(5)
    true_p = rng.uniform(0.05, 0.6, 20000)
    y = (rng.random(20000) < true_p).astype(float)
    raw = true_p**0.3  # monotone but far too high
    cal = Calibrator(method).fit(raw[:10000], y[:10000])
    prob = cal.transform(raw[10000:])
    assert abs(prob.mean() - y[10000:].mean()) < 0.02
    assert abs(raw[10000:].mean() - y[10000:].mean()) > 0.2


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_never_reverses_the_ranking(method: str) -> None:
    """A validation slice on which the raw score ranks backwards (a weak category model, a noisy slice) gave
    Platt a negative slope: the calibrated risk then fell as the raw risk rose, undoing the monotone
    constraints (an older last order lowered churn risk) and the raw-score ranking the cohorts rely on."""
    rng = np.random.default_rng(6)
    raw = rng.uniform(0.1, 0.9, 4000)
    y = (rng.random(4000) < 1 - raw).astype(float)  # backwards on this slice
    grid = np.linspace(0.05, 0.95, 50)
    prob = Calibrator(method).fit(raw, y).transform(grid)
    assert np.all(np.diff(prob) >= 0)
    assert np.all((prob > 0) & (prob < 1)) and abs(prob.mean() - y.mean()) < 0.05  # flat at the base rate


def test_propensity_outputs_take_the_category_labels_of_their_horizon() -> None:
    """With ``dataset.horizon_days: 60`` the category models learnt 30-day labels (the prefix was fixed)."""
    from training.propensity import output_labels

    labels = ["purchased_60d", "buy_30d_books", "buy_60d_books", "buy_60d_shoes"]
    assert output_labels(labels, 60) == {"propensity": "purchased_60d", "propensity_books": "buy_60d_books",
                                         "propensity_shoes": "buy_60d_shoes"}
    assert output_labels(["purchased_30d", "buy_30d_books"], 30) == {"propensity": "purchased_30d",
                                                                    "propensity_books": "buy_30d_books"}


def test_predicted_tags_cohorts() -> None:
    score = np.linspace(0, 1, 1000)
    t = predicted_tags([str(i) for i in range(1000)], churn=score, ltv=score * 10, propensity=score,
                       versions={"churn": "3", "ltv": "2", "propensity": "1"}, scored_at=pd.Timestamp("2026-07-01"))
    assert (t["churn_tier"] == "high").sum() == 200 and t.loc[t["churn_tier"] == "high", "churn_risk"].min() > 0.79
    assert (t["ltv_tier"] == "top").sum() == 100
    assert t["propensity_decile"].value_counts().eq(100).all() and t.loc[999, "propensity_decile"] == 1
    assert t["model_version"].iloc[0] == "churn:3,ltv:2,propensity:1"
    assert str(t["scored_at"].dtype) == "datetime64[us, UTC]"
    assert list(deciles(np.array([3.0, 3.0, 1.0]), 10)) == [7, 7, 10]  # ties share a decile
    with pytest.raises(ValueError, match="add up to 1"):
        tiers(score, (("a", 0.5),))
