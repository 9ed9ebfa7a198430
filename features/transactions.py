"""Customer features and labels from plain transactions, as of one or many cutoffs.

Input is any frame of transactions with a customer id, a timestamp, an amount and
optionally a quantity (CDNOW, canonical ``orders`` joined to OneID, a client's CSV).
:func:`prepare` checks and normalizes it; then

- :func:`features_as_of` gives one row per (customer, cutoff) built only from the
  transactions strictly **before** the cutoff (``ts < cutoff``): recency, frequency,
  monetary value overall and over day windows, tenure, inter-purchase time mean/std,
  a spend trend, first/last purchase amounts, BG/NBD's sufficient statistics
  (``frequency``, ``active_span_days`` = t_x, ``tenure_days`` = T) and more; see ``FEATURES``.
- :func:`labels_after` gives what happened in ``[cutoff, cutoff + horizon)``.

Cutoffs are a timestamp, a list of timestamps (every customer seen before each one),
or an entity frame of ``(customer_id, cutoff)`` rows (Feast's entity-dataframe style).
Everything is vectorized with numpy over transactions sorted once by customer and
time: one pass per distinct cutoff, no per-customer Python. Purchases on the same
calendar day (UTC) count as one "purchase day", as in the BG/NBD literature.

Example::

    tx = prepare(orders, ts="ts", amount="amount")
    X = features_as_of(tx, [pd.Timestamp("2026-01-01", tz="UTC")])
    y = labels_after(tx, X[["customer_id", "cutoff"]], horizon_days=180)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.returns import settle_returns
from features.schema import SchemaError
from features.transactions_prepare import prepare

__all__ = ["FEATURES", "TransactionFeatureConfig", "features_as_of", "labels_after", "prepare", "purchase_span",
           "spend_by_age"]

DAY_US = 86_400 * 1_000_000  # microseconds per day


@dataclass(frozen=True)
class TransactionFeatureConfig:
    windows: tuple[int, ...] = (30, 90, 180, 365)  # day windows for orders_<w>d / monetary_<w>d
    trend_days: int = 30  # trend_<n>d compares spend in the last n days with the n days before


# name -> meaning; the frame returned by features_as_of has these columns (windows per config)
FEATURES: dict[str, str] = {
    "n_orders": "transactions before the cutoff",
    "n_days": "distinct purchase days before the cutoff",
    "frequency": "repeat purchase days (n_days - 1); BG/NBD's x",
    "recency_days": "days from the last purchase to the cutoff",
    "tenure_days": "days from the first purchase to the cutoff; BG/NBD's T",
    "active_span_days": "days from the first to the last purchase; BG/NBD's t_x",
    "recency_ratio": "recency_days / tenure_days (0 = bought just now, 1 = only the first purchase)",
    "monetary_total": "total spend",
    "monetary_mean": "mean spend per purchase day",
    "monetary_max": "largest purchase-day spend",
    "monetary_std": "std of purchase-day spend (0 with one day)",
    "returned_share": "share of gross spend refunded by returns (negative amounts) so far; monetary features are net of it",
    "first_amount": "spend on the first purchase day",
    "last_amount": "spend on the last purchase day",
    "repeat_monetary_mean": "mean spend per repeat purchase day (NaN without repeats); Gamma-Gamma's m",
    "ipt_mean_days": "mean days between purchase days (NaN with one day)",
    "ipt_std_days": "std of days between purchase days (NaN with fewer than three days)",
    "days_per_30d": "purchase days per 30 days of tenure",
    "orders_<w>d": "transactions in the last w days",
    "monetary_<w>d": "spend in the last w days",
    "trend_<n>d": "(spend last n days - spend the n days before) / their sum; 0 when both are 0",
    "quantity_total": "units bought (only when a quantity column is given)",
    "quantity_mean": "units per transaction (only when a quantity column is given)",
}


@dataclass
class _Sorted:
    """Transactions as numpy arrays sorted by (customer code, time): purchases, and returns apart."""

    ids: pd.Index  # customer id of each code
    code: np.ndarray
    t: np.ndarray  # days since the epoch (float)
    amount: np.ndarray
    quantity: np.ndarray | None
    r_code: np.ndarray  # returns (negative amounts): customer code, time, refunded amount (positive)
    r_t: np.ndarray
    r_amount: np.ndarray

    def refunds(self, lo: float, hi: float) -> np.ndarray:
        """Refunded amount per customer code with a return in ``[lo, hi)``."""
        m = (self.r_t >= lo) & (self.r_t < hi)
        return np.bincount(self.r_code[m], weights=self.r_amount[m], minlength=len(self.ids))


def _sort(tx: pd.DataFrame) -> _Sorted:
    codes, ids = pd.factorize(tx["customer_id"], sort=True)
    t = tx["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64) / DAY_US
    amt = tx["amount"].to_numpy(np.float64)
    back = amt < 0
    keep = ~back
    if back.any():
        amt, keep = settle_returns(codes, t, amt, back)
    order = np.flatnonzero(keep)[np.lexsort((t[keep], codes[keep]))]
    qty = tx["quantity"].to_numpy(np.float64)[order] if "quantity" in tx.columns else None
    # a return before the customer's first purchase refunds something bought before the data began: dropped
    first = np.full(len(ids), np.inf)
    np.minimum.at(first, codes[order], t[order])
    r = np.flatnonzero(back & (amt < 0))
    r = r[t[r] >= first[codes[r]]]
    return _Sorted(pd.Index(ids), codes[order], t[order], amt[order], qty, codes[r], t[r], -amt[r])


def purchase_span(tx: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last purchase that stands once returns are settled (None: nothing stands)."""
    s = _sort(tx)
    if not len(s.t):
        return None
    first, last = (pd.Timestamp(round(x * DAY_US), unit="us", tz="UTC") for x in (s.t.min(), s.t.max()))
    return first, last


def _days(ts: pd.Timestamp) -> float:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)


def _segment_starts(*keys: np.ndarray) -> np.ndarray:
    change = np.zeros(len(keys[0]), dtype=bool)
    if len(change):
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def _one_cutoff(s: _Sorted, c: float, cfg: TransactionFeatureConfig) -> pd.DataFrame:
    m = s.t < c
    code, t, amt = s.code[m], s.t[m], s.amount[m]
    n = len(s.ids)
    starts = _segment_starts(code)
    cust = code[starts]
    if not len(cust):
        return pd.DataFrame({"_code": cust})
    n_orders = np.diff(np.r_[starts, len(code)])
    last_idx = np.r_[starts[1:], len(code)] - 1
    # purchase days: same customer and same UTC calendar day
    day = np.floor(t)
    dstart = _segment_starts(code, day)
    d_amt = np.add.reduceat(amt, dstart)
    d_code, d_day = code[dstart], day[dstart]
    # returns before c take their share off every purchase day's spend (which purchase a refund
    # belongs to is unknown; a refund is only known from its own time on: point in time)
    gross = np.bincount(d_code, weights=d_amt, minlength=n)
    refund = s.refunds(-np.inf, c)
    kept = np.divide(np.maximum(gross - refund, 0.0), gross, out=np.ones(n), where=gross > 0)
    d_amt = d_amt * kept[d_code]
    n_days = np.bincount(d_code, minlength=n)[cust]
    d_first = _segment_starts(d_code)
    d_last = np.r_[d_first[1:], len(d_code)] - 1
    f = {
        "n_orders": n_orders.astype(np.float64),
        "n_days": n_days.astype(np.float64),
        "frequency": n_days - 1.0,
        "recency_days": c - t[last_idx],
        "tenure_days": c - t[starts],
        "active_span_days": d_day[d_last] - d_day[d_first],
    }
    f["recency_ratio"] = f["recency_days"] / np.maximum(f["tenure_days"], 1e-9)
    tot = np.bincount(d_code, weights=d_amt, minlength=n)[cust]
    sq = np.bincount(d_code, weights=d_amt**2, minlength=n)[cust]
    f["monetary_total"] = tot
    f["returned_share"] = np.minimum(np.divide(refund, gross, out=np.zeros(n), where=gross > 0), 1.0)[cust]
    f["monetary_mean"] = tot / n_days
    f["monetary_max"] = np.maximum.reduceat(d_amt, d_first)
    f["monetary_std"] = np.sqrt(np.maximum(sq / n_days - (tot / n_days) ** 2, 0.0))
    f["first_amount"] = d_amt[d_first]
    f["last_amount"] = d_amt[d_last]
    with np.errstate(invalid="ignore", divide="ignore"):
        f["repeat_monetary_mean"] = np.where(n_days > 1, (tot - d_amt[d_first]) / (n_days - 1), np.nan)
        same = d_code[1:] == d_code[:-1]
        gaps = np.diff(d_day)[same]
        g_code = d_code[1:][same]
        g_n = np.bincount(g_code, minlength=n)[cust]
        g_sum = np.bincount(g_code, weights=gaps, minlength=n)[cust]
        g_sq = np.bincount(g_code, weights=gaps**2, minlength=n)[cust]
        f["ipt_mean_days"] = np.where(g_n > 0, g_sum / g_n, np.nan)
        var = (g_sq - g_sum**2 / np.maximum(g_n, 1)) / np.maximum(g_n - 1, 1)
        f["ipt_std_days"] = np.where(g_n > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)
    f["days_per_30d"] = n_days * 30.0 / np.maximum(f["tenure_days"], 1.0)
    for w in cfg.windows:
        inw = t >= c - w
        f[f"orders_{w}d"] = np.bincount(code[inw], minlength=n)[cust].astype(np.float64)
        f[f"monetary_{w}d"] = _net(np.bincount(code[inw], weights=amt[inw], minlength=n), s.refunds(c - w, c))[cust]
    k = cfg.trend_days
    recent = _net(np.bincount(code[t >= c - k], weights=amt[t >= c - k], minlength=n), s.refunds(c - k, c))[cust]
    prev_m = (t >= c - 2 * k) & (t < c - k)
    prev = _net(np.bincount(code[prev_m], weights=amt[prev_m], minlength=n), s.refunds(c - 2 * k, c - k))[cust]
    both = recent + prev
    f[f"trend_{k}d"] = np.divide(recent - prev, both, out=np.zeros_like(both), where=both > 0)
    if s.quantity is not None:
        q = np.bincount(code, weights=s.quantity[m], minlength=n)[cust]
        f["quantity_total"] = q
        f["quantity_mean"] = q / n_orders
    return pd.DataFrame({"_code": cust, **f})


def _net(spend: np.ndarray, refunds: np.ndarray) -> np.ndarray:
    return np.maximum(spend - refunds, 0.0)


def _cutoff_rows(s: _Sorted, cutoffs: object) -> pd.DataFrame | None:
    """``None`` for 'every customer seen before each cutoff', else entity rows (_code, cutoff)."""
    if isinstance(cutoffs, pd.DataFrame):
        missing = [c for c in ("customer_id", "cutoff") if c not in cutoffs.columns]
        if missing:
            raise SchemaError(f"entity frame: missing column(s) {missing}; found {list(cutoffs.columns)}")
        rows = cutoffs[["customer_id", "cutoff"]].copy()
        rows["customer_id"] = rows["customer_id"].astype("string")
        rows["cutoff"] = _as_utc(rows["cutoff"])
        rows["_code"] = s.ids.get_indexer(rows["customer_id"])
        return rows
    return None


def _as_utc(x: pd.Series) -> pd.Series:
    x = pd.to_datetime(x, utc=True)
    return x.astype("datetime64[us, UTC]")


def _cutoff_list(cutoffs: object) -> list[pd.Timestamp]:
    if pd.api.types.is_scalar(cutoffs):
        cutoffs = [cutoffs]
    stamps = [pd.Timestamp(c) for c in cutoffs]  # type: ignore[union-attr]
    return [c.tz_localize("UTC") if c.tzinfo is None else c.tz_convert("UTC") for c in stamps]


def features_as_of(
    tx: pd.DataFrame,
    cutoffs: pd.Timestamp | Sequence[pd.Timestamp] | pd.DataFrame,
    config: TransactionFeatureConfig = TransactionFeatureConfig(),
) -> pd.DataFrame:
    """Features per (customer, cutoff) from transactions with ``ts < cutoff`` only.

    Parameters
    ----------
    tx : DataFrame
        Output of :func:`prepare` (``customer_id, ts, amount[, quantity]``).
    cutoffs : Timestamp, list of Timestamps, or DataFrame with ``customer_id, cutoff``
        With timestamps, every customer with a transaction before each cutoff gets a row.
        With an entity frame, exactly its rows come back (in its order); customers without
        history there get ``n_orders == 0`` and NaN elsewhere.
    config : TransactionFeatureConfig
        Day windows and the trend span.

    Returns
    -------
    DataFrame
        ``customer_id``, ``cutoff`` (UTC) and the columns described in ``FEATURES``.
    """
    s = _sort(tx)
    rows = _cutoff_rows(s, cutoffs)
    wanted = _cutoff_list(rows["cutoff"].unique() if rows is not None else cutoffs)
    parts = []
    for c in wanted:
        part = _one_cutoff(s, _days(c), config)
        part.insert(1, "cutoff", c)
        parts.append(part)
    feats = pd.concat(parts, ignore_index=True)
    feats["cutoff"] = _as_utc(feats["cutoff"])
    if rows is None:
        feats.insert(0, "customer_id", s.ids.take(feats["_code"].to_numpy()).astype("string"))
        return feats.drop(columns="_code")
    out = rows.merge(feats, on=["_code", "cutoff"], how="left").drop(columns="_code")
    for col in ("n_orders", "n_days") + tuple(c for c in out.columns if c.startswith(("orders_", "monetary_"))):
        out[col] = out[col].fillna(0.0)
    return out


def labels_after(tx: pd.DataFrame, rows: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """What each (customer, cutoff) row did in ``[cutoff, cutoff + horizon_days)``.

    Returns ``rows``' ``customer_id, cutoff`` plus ``spend`` (net of returns in the window, never
    below 0), ``n_orders``, ``n_days`` (distinct purchase days) and ``any_purchase`` (bool).
    """
    s = _sort(tx)
    ent = _cutoff_rows(s, rows)
    assert ent is not None
    out = ent[["customer_id", "cutoff"]].reset_index(drop=True)
    spend = np.zeros(len(out))
    n_ord = np.zeros(len(out))
    n_day = np.zeros(len(out))
    code = ent["_code"].to_numpy()
    for c in ent["cutoff"].unique():
        c0 = _days(c)
        m = (s.t >= c0) & (s.t < c0 + horizon_days)
        n = len(s.ids)
        tot = _net(np.bincount(s.code[m], weights=s.amount[m], minlength=n), s.refunds(c0, c0 + horizon_days))
        cnt = np.bincount(s.code[m], minlength=n)
        day = np.floor(s.t[m])
        dstart = _segment_starts(s.code[m], day)
        days = np.bincount(s.code[m][dstart], minlength=n)
        sel = np.flatnonzero((ent["cutoff"] == c).to_numpy())
        known = code[sel] >= 0
        spend[sel[known]] = tot[code[sel][known]]
        n_ord[sel[known]] = cnt[code[sel][known]]
        n_day[sel[known]] = days[code[sel][known]]
    out["spend"] = spend
    out["n_orders"] = n_ord
    out["n_days"] = n_day
    out["any_purchase"] = n_ord > 0
    return out


def spend_by_age(tx: pd.DataFrame, end: pd.Timestamp, bin_days: int = 7) -> pd.DataFrame:
    """Repeat spend per customer-day by customer age (days since the first purchase), before ``end``.

    One row per age bin ``[age_start_days, age_start_days + bin_days)``: ``spend`` (repeat
    purchases only: the first purchase day is age 0 and is left out) and ``exposure_days``
    (customer-days of that age observed before ``end``), so ``spend / exposure_days`` is the
    cohort's spend rate at that age, net of returns made at that age. Only transactions with
    ``ts < end`` are read.
    """
    s = _sort(tx[tx["ts"] < end])
    if not len(s.code):
        raise ValueError(f"no purchases before {pd.Timestamp(end).date()}")
    starts = _segment_starts(s.code)
    first = np.floor(s.t[starts])  # first purchase day of each customer
    age = np.floor(s.t) - np.repeat(first, np.diff(np.r_[starts, len(s.code)]))
    reach = _days(end) - first  # days of age each customer has been observed for, day 0 included
    n_bins = int(np.ceil(reach.max() / bin_days))
    rep = age >= 1
    spend = np.bincount((age[rep] // bin_days).astype(np.int64), weights=s.amount[rep], minlength=n_bins)[:n_bins]
    first_of = np.full(len(s.ids), np.nan)
    first_of[s.code[starts]] = first
    r_age = np.floor(s.r_t) - first_of[s.r_code]  # returns net against repeat spend at their own age
    r_rep = r_age >= 1  # NaN (no purchase yet) compares False
    back = np.bincount((r_age[r_rep] // bin_days).astype(np.int64), weights=s.r_amount[r_rep], minlength=n_bins)
    spend = np.maximum(spend - back[:n_bins], 0.0)
    lo = np.arange(n_bins) * bin_days
    # customer-days with age in [max(lo, 1), lo + bin) and age < reach
    exposure = np.clip(reach[None, :] - np.maximum(lo, 1)[:, None], 0, (lo + bin_days - np.maximum(lo, 1))[:, None]).sum(axis=1)
    return pd.DataFrame({"age_start_days": lo.astype(np.float64), "spend": spend, "exposure_days": exposure})
