"""The inner validation of self-tuned recommenders: split the training matrix, score candidates by nDCG@k.

:func:`within_band` keeps the candidates the split cannot tell from the best (a standard-error band).

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
    per_user = ndcg_per_user(s, seen, V, k)
    return float(per_user.mean()) if len(per_user) else 0.0  # nobody to validate: every candidate ties


def ndcg_per_user(s: np.ndarray, seen: sp.csr_matrix, V: sp.csr_matrix, k: int) -> np.ndarray:
    """nDCG@k of each row of scores ``s`` (``seen`` excluded) against held-out ``V`` (no empty row)."""
    n = s.shape[0]
    if n == 0:
        return np.zeros(0)
    s = s.copy()
    s[np.repeat(np.arange(n), np.diff(seen.indptr)), seen.indices] = -np.inf
    ids, _ = topk_rows(s, k)
    hits = np.asarray(V[np.repeat(np.arange(n), k), ids.ravel().clip(0)]).reshape(ids.shape) > 0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(disc)[np.minimum(np.diff(V.indptr), k) - 1]
    return (hits & (ids >= 0)) @ disc / ideal


def within_band(per_user: list[np.ndarray], band: float) -> list[int]:
    """Candidates not significantly below the best: paired mean gap <= ``band`` standard errors of it.

    ``per_user`` holds each candidate's per-user validation scores (same users, same order). Returns
    candidate indices, the best (highest mean, first on ties) first; ``band = 0`` keeps only those tying it.
    The band is the one-standard-error rule of Hastie, Tibshirani & Friedman (ESL 7.10) around the
    winner of a noisy validation: what it holds, the split cannot separate from the winner.
    """
    means = [float(v.mean()) if len(v) else 0.0 for v in per_user]
    best = int(np.argmax(means))
    keep = [best]
    for i, v in enumerate(per_user):
        gap = per_user[best] - v  # no users: no evidence either way, every candidate ties
        se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0
        if i != best and (float(gap.mean()) if len(gap) else 0.0) <= band * se:
            keep.append(i)
    return keep
