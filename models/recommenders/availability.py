"""The availability window of "what else" recommendations: items that did not exist yet are not candidates.

Asked what else a customer consumed (the held-out part of a per-user *random* split, or a
history to complete), the answer lies in the customer's own active period: an item that
nobody had touched by the customer's last event did not exist for them. Such items are
left out of that customer's recommendations. The first time an item is seen and each
customer's last event come from the training times only.

It is **not** for "what next" (a temporal split, serving): a customer coming back after months
should see what was launched meanwhile. :class:`~models.recommenders.ease.WindowEASE` therefore
considers it only with its random inner split. A constraint more than a tuned knob, it stays on
unless that split (training data only) scores it lower by more than one standard error of the
paired per-user difference: the first time *in the training data* is a proxy for the launch (a
niche item's true first customer may be the held-out one), and a catalog where the proxy misleads
shows it there. The split is too small to do more than veto: on MovieLens 100K it changes the
top 10 of 14-34 of 943 users, and its sign follows the held-out test's on 5 of 6 seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommenders._base import times_on
from models.recommenders._inner import eval_rows, ndcg_per_user

CHUNK_CELLS = 20_000_000  # rows x items of one exclusion block (a boolean block of 20 MB)
OVERFETCH = (3, 10)  # within_window fetches the top a * k + b, then drops the late items


def _per_line(t: sp.csr_matrix | sp.csc_matrix, reduce: np.ufunc) -> np.ndarray:
    """``reduce`` over the stored values of each compressed row (csr) or column (csc); ``inf`` where none."""
    out = np.full(len(t.indptr) - 1, np.inf)
    has = np.diff(t.indptr) > 0
    if has.any():  # the segments of non-empty lines span the empty ones between them
        out[has] = reduce.reduceat(t.data, t.indptr[:-1][has])
    return out


def first_seen(times: sp.csr_matrix) -> np.ndarray:
    """Earliest event time of each item column (``inf`` for an item without events)."""
    return _per_line(sp.csc_matrix(times), np.minimum)


def last_event(times: sp.csr_matrix) -> np.ndarray:
    """Latest event time of each row (``inf`` for a row without events: nothing is left out for it)."""
    return _per_line(sp.csr_matrix(times), np.maximum)


def late_items(first: np.ndarray, last: np.ndarray) -> sp.csr_matrix:
    """Per row, the items first seen after that row's last event (a 0/1 matrix, rows x items)."""
    blocks = []
    step = max(1, CHUNK_CELLS // max(len(first), 1))
    for start in range(0, len(last), step):
        blocks.append(sp.csr_matrix(first[None, :] > last[start:start + step, None], dtype=np.float32))
    return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, len(first)), dtype=np.float32)


def within_window(recommend: Any, first: np.ndarray, X: sp.csr_matrix, times: Any, k: int, *,
                  exclude_seen: bool, allowed: Any, exclude: Any) -> tuple[np.ndarray, np.ndarray]:
    """``recommend`` (a model's own top-k) without each row's items first seen after its last event.

    The top ``3k + 10`` (:data:`OVERFETCH`) are fetched and the late ones dropped, keeping the order; a row left with
    fewer than ``k`` is ranked again with its late items excluded outright. No rows x items mask
    is built for every row (at 100k items and 1M customers it would not fit).
    """
    if k < 1:  # as ScoredRecommender.recommend says it (the fetch below would hide it: k=0 gave an empty top)
        raise ValueError(f"k must be >= 1, got {k}")
    times = times_on(X, times)  # csr once: the fallback below takes rows of it
    last = last_event(times)
    wide = min(X.shape[1], OVERFETCH[0] * k + OVERFETCH[1])
    ids, vals = recommend(X, k=wide, exclude_seen=exclude_seen, allowed=allowed, exclude=exclude, times=times)
    ok = (ids >= 0) & ~(first[ids.clip(0)] > last[:, None])
    pos = np.cumsum(ok, axis=1) - 1  # each kept item's place among its row's kept items
    out_ids = np.full((X.shape[0], k), -1, dtype=np.int64)
    out_vals = np.full((X.shape[0], k), -np.inf, dtype=np.float32)
    r, c = np.nonzero(ok & (pos < k))
    out_ids[r, pos[r, c]], out_vals[r, pos[r, c]] = ids[r, c], vals[r, c]
    ex = None if exclude is None else sp.csr_matrix(exclude)
    for row in np.flatnonzero((ok.sum(axis=1) < k) & ((ids >= 0).sum(axis=1) == wide)):  # more may lie beyond
        late = late_items(first, last[row:row + 1])  # fetched candidates ran out: exclude every late item
        if ex is not None:
            late = (late + ex[row]).tocsr()
        out_ids[row], out_vals[row] = (a[0] for a in recommend(
            X[row], k=k, exclude_seen=exclude_seen, allowed=allowed, exclude=late, times=times[row]))
    return out_ids, out_vals


def keep_window(query: sp.csr_matrix, seen: sp.csr_matrix, held: sp.csr_matrix, B: np.ndarray,
                times: sp.csr_matrix, k: int, band: float = 1.0) -> bool:
    """Whether to keep the window: it leaves some item out, and the inner split's nDCG@k with it (scores
    ``query @ B``) is not below the one without by more than ``band`` standard errors of the paired gap.

    All arguments come from the inner split of the training data (``times`` on the inner-fit
    part's pattern, over the modelled items).
    """
    rows = eval_rows(held)
    if not len(rows):
        return False
    s = np.asarray(query[rows] @ B, dtype=np.float64)
    late = first_seen(times)[None, :] > last_event(times[rows])[:, None]  # dense: 10k users x 3k items is 30 MB
    if not late.any():
        return False
    off = ndcg_per_user(s, seen[rows], held[rows], k)
    s[late] = -np.inf
    gap = ndcg_per_user(s, seen[rows], held[rows], k) - off
    se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0
    return bool(gap.mean() >= -band * se)
