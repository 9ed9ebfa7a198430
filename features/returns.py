"""Returns and refunds settled against purchases: one rule for :mod:`features.transactions` and the feature build.

:func:`settle_returns` settles returns per customer and UTC day (transactions without order ids);
:func:`stand_orders` applies it to canonical ``orders`` and adds what an order id allows: a refund
naming its order (``refund_of``) cancels that order once refunded in full.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# from 2**46 up a double cannot hold every cent (its step passes 0.01): such amounts are compared exactly
# (the import rejects them: one limit for both)
from features.amounts import MONEY_LIMIT as _WHOLE_CENTS_BELOW

# amounts closer than a thousandth of a cent are one amount (float noise such as 0.1 + 0.2), never farther ones
_NOISE = 1e-5


def amount_key(amount: np.ndarray) -> np.ndarray:
    """An int64 per amount, equal for equal absolute amounts and for no others.

    A whole number of cents (within float noise) is keyed by its cents (``>= 0``), so ``0.1 + 0.2`` and
    ``0.3`` are one amount; any other amount (``10.004`` in a three-decimal currency, or one of ``2**46``
    and up, where a double skips cents) is keyed by its exact value (``< 0``): never rounded onto
    another amount's key, and no cents overflow the integer however large it is.
    """
    a = np.abs(np.asarray(amount, dtype=np.float64))
    cents, whole = _whole_cents(a)
    exact = -1 - np.ascontiguousarray(a).view(np.int64)  # bits of a non-negative double: >= 0, so this is < 0
    return np.where(whole, cents.astype(np.int64), exact)


def _whole_cents(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cents, whole)``: the cents of each absolute amount ``a`` (0 where not ``whole``), and whether it is a
    whole number of cents (within float noise) below ``2**46``, where a double holds every cent."""
    with np.errstate(over="ignore", invalid="ignore"):
        cents = np.round(a * 100)
        whole = (a < _WHOLE_CENTS_BELOW) & (np.abs(a * 100 - cents) <= _NOISE * 100)
    return np.where(whole, cents, 0.0), whole  # inf/NaN cents never leave here


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
    pairs = pd.DataFrame({"k": key, "c": amount_key(amt), "b": back})
    same = pairs.groupby(["k", "c"])["b"]
    n_ref = same.transform("sum").to_numpy()
    n_buy = same.transform("size").to_numpy() - n_ref
    nth = pairs.groupby(["k", "c", "b"]).cumcount().to_numpy()
    matched = np.where(back, nth < n_buy, nth < n_ref) & (np.abs(amt) > 0)
    amt = np.where(matched, 0.0, amt)
    gross = np.bincount(key, weights=np.where(back, 0.0, amt))
    refund = np.bincount(key, weights=np.where(back, -amt, 0.0))
    # a day in whole cents is settled in cents, exactly: 0.1 + 0.2 bought and 0.3 refunded is a day refunded
    # in full (the float sums leave 5.6e-17); other days compare their float sums as before
    cents, whole = _whole_cents(np.abs(amt))
    in_cents = np.bincount(key, weights=~whole) == 0
    gross_c = np.bincount(key, weights=np.where(back, 0.0, cents))
    refund_c = np.bincount(key, weights=np.where(back, cents, 0.0))
    left = np.where(in_cents & (gross_c <= refund_c), 0.0, np.maximum(gross - refund, 0.0))
    share = np.divide(left, gross, out=np.ones_like(gross), where=gross > 0)
    rest = np.divide(np.maximum(refund - gross, 0.0), refund, out=np.zeros_like(refund), where=refund > 0)
    rest = np.where(in_cents & (gross_c >= refund_c), 0.0, rest)  # nothing beyond the day's spend
    out = np.where(back, amt * rest[key], amt * share[key])
    cancelled = (gross > 0) & (left == 0)
    return out, ~back & ~matched & ~cancelled[key]


def is_refund(amount: Any, refund_of: Any) -> np.ndarray:
    """Which canonical ``orders`` rows are refunds: a negative amount, or a zero one naming an order
    (nothing refunded: no purchase either). The feature build's SQL reads the same (``_REFUND``)."""
    amount = pd.Series(amount).to_numpy(dtype=np.float64, na_value=np.nan)
    return (amount < 0) | ((amount == 0) & pd.notna(np.asarray(refund_of, dtype=object)))


def stand_orders(cid: np.ndarray, ts_us: np.ndarray, amount: np.ndarray, order_id: np.ndarray,
                 refund_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refunds of canonical ``orders`` (negative amounts) applied: ``(customer, amount, cancelled at)`` per row.

    A refund naming a purchase (``refund_of``) belongs to that purchase's customer; the purchase is
    cancelled from the time its refunds add up to its amount. Other refunds are settled against their
    customer's purchases of the same UTC day by :func:`settle_returns` (the rule of ``portrait evaluate
    customer-value --returns net``, so both paths agree); a purchase it cancels is cancelled from the last
    such refund of the day. An unsettled refund dated before the customer's first purchase that stands
    refunds something bought before the data began: only its settled part is kept (as in
    :mod:`features.transactions`). ``cancelled at`` is microseconds, ``-1`` when never: a reader as of a
    cutoff counts a purchase only when not cancelled before it (point in time). Amounts stay signed at
    their own time: summing them up to a cutoff gives the net spend known then.
    """
    n = len(amount)
    cid, amount = cid.astype(np.int64).copy(), amount.astype(np.float64).copy()
    cancel = np.full(n, -1, dtype=np.int64)
    if not n:
        return cid, amount, cancel
    back = is_refund(amount, refund_of)
    buys = np.flatnonzero(~back)
    pos = pd.Series(buys, index=pd.Index(order_id[buys], dtype=object))
    # a purchase without an order id is named by no refund (a reindex would match a null refund_of to it)
    pos = pos[~pos.index.duplicated() & pos.index.notna()]
    link = pos.reindex(pd.Series(refund_of, dtype=object).where(back)).fillna(-1).to_numpy(np.int64)
    linked = back & (link >= 0)
    cid[linked] = cid[link[linked]]
    # named refunds: the purchase is cancelled once they add up to its amount. An order and refunds in whole
    # cents are summed in cents, exactly (a sum of amounts drifts past float noise from about 1e11: three
    # refunds making up 476,238,501,428.09 summed to less); any other (10.004, 2**46 and up) as amounts, to
    # float noise, so no amount overflows (a sum past the largest double is inf: more than any amount)
    r = np.flatnonzero(linked)
    if len(r):
        r = r[np.lexsort((ts_us[r], link[r]))]
        buy = link[r]
        cents, whole = _whole_cents(np.abs(amount[r]))
        order_cents, order_whole = _whole_cents(np.abs(amount[buy]))
        in_cents = pd.Series(whole & order_whole).groupby(buy).transform("all").to_numpy()
        cum = pd.Series(-amount[r]).groupby(buy).cumsum().to_numpy()
        cum_cents = pd.Series(cents).groupby(buy).cumsum().to_numpy()  # refunds are <= 0, purchases >= 0
        full = np.where(in_cents, cum_cents >= order_cents, cum >= amount[buy] - _NOISE)
        done = pd.DataFrame({"buy": buy[full], "ts": ts_us[r][full]}).groupby("buy")["ts"].min()
        cancel[done.index.to_numpy()] = np.maximum(done.to_numpy(), ts_us[done.index.to_numpy()])
    # the other refunds: settled per customer and UTC day with the purchases
    sel = np.flatnonzero(~linked)
    settled, kept = settle_returns(cid[sel], ts_us[sel] / 86_400_000_000, amount[sel], back[sel])
    day = ts_us[sel] // 86_400_000_000
    frame = pd.DataFrame({"c": cid[sel], "d": day, "t": np.where(back[sel], ts_us[sel], -1)})
    last_refund = frame.groupby(["c", "d"])["t"].transform("max").to_numpy()
    gone = ~back[sel] & ~kept & (last_refund >= 0)
    same_day = np.maximum(last_refund[gone], ts_us[sel][gone])
    cancel[sel[gone]] = np.where(cancel[sel[gone]] >= 0, np.minimum(cancel[sel[gone]], same_day), same_day)
    first = pd.Series(ts_us[sel][~back[sel] & ~gone]).groupby(cid[sel][~back[sel] & ~gone]).min()
    first_of = first.reindex(cid[sel]).to_numpy()
    early = back[sel] & (settled < 0) & ~(ts_us[sel] >= first_of)  # NaN (no purchase at all) is early too
    amount[sel[early]] -= settled[early]
    return cid, amount, cancel
