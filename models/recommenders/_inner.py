"""The inner validation of self-tuned recommenders: split the training matrix, score candidates by nDCG@k.

Everything here sees only the caller's *training* data: the split is taken inside it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.recommenders._base import topk_rows


def inner_split(
    X: sp.csr_matrix, fraction: float, seed: int, times: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over ``X.data`` (train, validation): per-user holdout of ``fraction``.

    Random per user, or each user's latest events when ``times`` (same pattern) is given.
    """
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    key = rng.random(len(users)) if times is None else times.data
    order = np.lexsort((key, users))
    pos = np.empty(len(users), dtype=np.int64)
    pos[order] = np.arange(len(users)) - X.indptr[:-1][users[order]]
    n = np.diff(X.indptr)[users]
    train = pos < np.round((1.0 - fraction) * n)
    return train, ~train


def masked(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    out = m.copy()
    out.data = np.where(keep, out.data, 0).astype(out.data.dtype)
    out.eliminate_zeros()
    return out


EVAL_USERS = 10_000  # validation users scored per inner candidate (a fixed random subset above this)


def eval_rows(Xv: sp.csr_matrix) -> np.ndarray:
    """Validation users scored by the inner search (at most ``EVAL_USERS``, a fixed random subset)."""
    rows = np.flatnonzero(np.diff(Xv.indptr) > 0)
    if len(rows) > EVAL_USERS:  # the dense top-k over every candidate dominated the search at 1M customers
        rows = np.sort(np.random.default_rng(0).choice(rows, EVAL_USERS, replace=False))
    return rows


def inner_ndcg(Xf: sp.csr_matrix, Xv: sp.csr_matrix, B: np.ndarray, k: int) -> float:
    """nDCG@k of the scores ``Xf @ B`` against ``Xv`` (0 when nobody has validation events)."""
    rows = eval_rows(Xv)
    return ndcg_of(np.asarray(Xf[rows] @ B), Xf[rows], Xv[rows], k)


def ndcg_of(s: np.ndarray, seen: sp.csr_matrix, V: sp.csr_matrix, k: int) -> float:
    """Mean nDCG@k of scores ``s`` (one row per user; ``seen`` excluded) against held-out ``V``."""
    n = s.shape[0]
    if n == 0:  # every history too short to hold any event out: every candidate ties, the first is kept
        return 0.0
    s = s.copy()
    s[np.repeat(np.arange(n), np.diff(seen.indptr)), seen.indices] = -np.inf
    ids, _ = topk_rows(s, k)
    hits = np.asarray(V[np.repeat(np.arange(n), k), ids.ravel().clip(0)]).reshape(ids.shape) > 0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(disc)[np.minimum(np.diff(V.indptr), k) - 1]
    return float(((hits & (ids >= 0)) @ disc / ideal).mean())
