"""Returns settled against same-day purchases before :mod:`features.transactions` reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd


def settle_returns(codes: np.ndarray, t: np.ndarray, amt: np.ndarray,
                   back: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns on the day of purchases cancel them first: ``(amounts, purchase rows kept)``.

    ``codes`` are customer codes, ``t`` times in days, ``amt`` amounts (returns negative, flagged
    by ``back``). The amounts come back with cancelled parts taken off both sides.

    Per customer and UTC day (the unit of a purchase, as in BG/NBD): a refund of exactly one
    purchase's amount cancels that purchase (an order cancelled on the day: no order, and no
    purchase day if it was the only one); other refunds take the rest of that day's purchases
    down proportionally, a day refunded in full is no purchase day, and only what exceeds the
    day's spend stays a return, at its time.
    """
    day = np.floor(t).astype(np.int64)
    _, key = np.unique(codes.astype(np.int64) * (day.max() - day.min() + 1) + (day - day.min()), return_inverse=True)
    pairs = pd.DataFrame({"k": key, "c": np.round(np.abs(amt) * 100).astype(np.int64), "b": back})
    same = pairs.groupby(["k", "c"])["b"]
    n_ref = same.transform("sum").to_numpy()
    n_buy = same.transform("size").to_numpy() - n_ref
    nth = pairs.groupby(["k", "c", "b"]).cumcount().to_numpy()
    matched = np.where(back, nth < n_buy, nth < n_ref) & (pairs["c"].to_numpy() > 0)
    amt = np.where(matched, 0.0, amt)
    gross = np.bincount(key, weights=np.where(back, 0.0, amt))
    refund = np.bincount(key, weights=np.where(back, -amt, 0.0))
    left = np.maximum(gross - refund, 0.0)
    share = np.divide(left, gross, out=np.ones_like(gross), where=gross > 0)
    rest = np.divide(np.maximum(refund - gross, 0.0), refund, out=np.zeros_like(refund), where=refund > 0)
    out = np.where(back, amt * rest[key], amt * share[key])
    cancelled = (gross > 0) & (left == 0)
    return out, ~back & ~matched & ~cancelled[key]
