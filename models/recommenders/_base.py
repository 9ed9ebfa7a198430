"""Shared machinery of the recommenders: input checks, masked batched top-k.

Every recommender here is a :class:`ScoredRecommender`: it turns a block of user
histories into a dense score block (``_score``) and this class does the rest the
same way for all models: seen items and items outside ``allowed`` get ``-inf``,
the top ``k`` are picked with ``argpartition`` per batch of rows, and positions
with no qualifying item come back as id ``-1`` / score ``-inf``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Recommender


def as_csr(user_items: Any, n_items: int | None = None, name: str = "user_items") -> sp.csr_matrix:
    """Validate and return a float32 CSR matrix (non-negative, finite, right width)."""
    if not sp.issparse(user_items):
        user_items = np.atleast_2d(np.asarray(user_items))
    m = sp.csr_matrix(user_items, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users x items)")
    if n_items is not None and m.shape[1] != n_items:
        raise ValueError(f"{name} has {m.shape[1]} item columns, the model was fitted on {n_items}")
    if m.nnz and (not np.isfinite(m.data).all() or (m.data < 0).any()):
        raise ValueError(f"{name} must hold finite, non-negative weights")
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns per row of a dense score block, best first (-1 where the score is -inf)."""
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if kk < n_cols:
        idx = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        idx = np.tile(np.arange(n_cols), (n_rows, 1))
    top = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    ids = np.take_along_axis(idx, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(top, order, axis=1).astype(np.float32)
    ids[~np.isfinite(vals)] = -1
    vals[ids < 0] = -np.inf
    if kk < k:  # catalog smaller than k: pad
        ids = np.hstack([ids, np.full((n_rows, k - kk), -1, dtype=np.int64)])
        vals = np.hstack([vals, np.full((n_rows, k - kk), -np.inf, dtype=np.float32)])
    return ids, vals


class ScoredRecommender(Recommender):
    """A recommender defined by a dense scoring function over item columns."""

    batch_size = 2048  # rows scored at once: bounds memory at batch_size x n_items floats

    def _score(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def _query(self, user_items: sp.csr_matrix, times: Any) -> sp.csr_matrix:
        """The history as the model reads it (hook for recency weighting); default: as given."""
        return user_items

    def _check_items(self) -> int:
        self._check_fitted("n_items_")
        return self.n_items_

    def score(self, user_items: Any, users: np.ndarray | None = None) -> np.ndarray:
        """Raw scores (n_rows, n_items) for the rows of ``user_items`` (no masking)."""
        n_items = self._check_items()
        return np.asarray(self._score(as_csr(user_items, n_items), users), dtype=np.float32)

    def recommend(
        self, user_items: Any, k: int = 10, exclude_seen: bool = True, allowed: np.ndarray | None = None,
        users: np.ndarray | None = None, exclude: Any = None, times: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each row of ``user_items``; see :meth:`models.base.Recommender.recommend`.

        Parameters
        ----------
        users : ndarray of int, optional
            Training row of each history, for models with learned user state (ALS, BPR);
            ignored by item-based models, which always work from the history itself.
        exclude : csr_matrix, optional
            Extra per-row items never to return (e.g. purchases when ``user_items`` is a
            view-weighted history); same shape as ``user_items``.
        """
        n_items = self._check_items()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        X = as_csr(user_items, n_items)
        Q = self._query(X, times)
        ex = as_csr(exclude, n_items, "exclude") if exclude is not None else None
        if ex is not None and ex.shape[0] != X.shape[0]:
            raise ValueError("exclude must have one row per row of user_items")
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (n_items,):
                raise ValueError(f"allowed must be a boolean mask of shape ({n_items},), got {allowed.shape}")
        if users is not None:
            users = np.asarray(users, dtype=np.int64)
            if users.shape != (X.shape[0],):
                raise ValueError("users must give one training row per history row")
        ids = np.empty((X.shape[0], k), dtype=np.int64)
        vals = np.empty((X.shape[0], k), dtype=np.float32)
        cols = self._candidates()  # None: every item; else only these columns are scored in bulk
        seen = X if cols is None else X[:, cols]
        exc = ex if (ex is None or cols is None) else ex[:, cols]
        allow = allowed if (allowed is None or cols is None) else allowed[cols]
        fast = self._fast_topk(Q, seen if exclude_seen else None, exc, allow, k)
        if fast is not None:  # sparse kernel: ids in candidate space, short rows filled below
            ids[:], vals[:] = fast
        for start in range(0, X.shape[0] if fast is None else 0, self.batch_size):
            stop = min(start + self.batch_size, X.shape[0])
            ub = None if users is None else users[start:stop]
            s = self._score(Q[start:stop], ub) if cols is None else self._score_candidates(Q[start:stop], ub)
            ids[start:stop], vals[start:stop] = masked_topk(
                s, k, seen[start:stop] if exclude_seen else None, allow, None if exc is None else exc[start:stop])
        if cols is not None:
            ids = np.where(ids >= 0, cols[ids.clip(0)], -1)
        if cols is not None or fast is not None:
            for r in np.flatnonzero((ids < 0).any(axis=1)):  # rare: filters left too few candidates
                ids[r], vals[r] = masked_topk(self._score(Q[r], None if users is None else users[r:r + 1]), k,
                                              X[r] if exclude_seen else None, allowed, None if ex is None else ex[r])
        return ids, vals

    def _fast_topk(self, Q: sp.csr_matrix, seen: Any, exclude: Any, allowed: Any, k: int) -> Any:
        """(ids, scores) in candidate space from a specialised kernel, or None to use dense batches."""
        return None

    def _candidates(self) -> np.ndarray | None:
        """Columns scored in bulk (None = all); models with a restricted catalog override it."""
        return None

    def _score_candidates(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return self._score(user_items, users)[:, self._candidates()]


def masked_topk(
    scores: np.ndarray, k: int, seen: sp.csr_matrix | None = None, allowed: np.ndarray | None = None,
    exclude: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of a score block after removing ``seen``/``exclude`` items and items not ``allowed``."""
    s = np.array(scores, dtype=np.float32)
    s[np.isnan(s)] = np.finfo(np.float32).min  # a model's NaN never beats a real item
    s[s == np.inf] = np.finfo(np.float32).max
    for rows in (seen, exclude):
        if rows is not None:
            _mask_rows(s, rows)
    if allowed is not None:
        s[:, ~allowed] = -np.inf
    return topk_rows(s, k)


def _mask_rows(s: np.ndarray, rows: sp.csr_matrix) -> None:
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    s[r, rows.indices] = -np.inf


def times_on(pattern: sp.csr_matrix, times: Any) -> sp.csr_matrix:
    """``times`` restricted to the interactions of ``pattern`` (same shape, same sparsity pattern).

    ``as_csr`` drops weight-0 entries (no interaction); their event times go with them.
    """
    t = sp.csr_matrix(times)
    if t.shape != pattern.shape:
        raise ValueError(f"times has shape {t.shape}, user_items {pattern.shape}")
    if t.nnz != pattern.nnz:
        t = sp.csr_matrix(t.multiply(pattern != 0))
    if t.nnz != pattern.nnz:
        raise ValueError("times must have the pattern of user_items (an event time for every interaction)")
    return t


def recency_weights(times: sp.csr_matrix, half_life: float) -> sp.csr_matrix:
    """Same pattern as ``times``; each user's events weighted ``0.5 ** (rank from newest / half_life)``."""
    t = sp.csr_matrix(times, dtype=np.float64)
    users = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
    order = np.lexsort((-t.data, users))  # newest first within each user
    rank = np.empty(len(order), dtype=np.float64)
    rank[order] = np.arange(len(order)) - t.indptr[:-1][users[order]]
    out = t.copy()
    out.data = (0.5 ** (rank / half_life)).astype(np.float32)
    return out


def cosine_topk(vectors: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine nearest items of ``items`` among ``vectors`` rows (self excluded)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    s = v[items] @ v.T
    s[np.arange(len(items)), items] = -np.inf
    return topk_rows(s, k)


def check_item_ids(items: Any, n_items: int) -> np.ndarray:
    """Item indices as int64; a clear error for unknown ones."""
    arr = np.atleast_1d(np.asarray(items, dtype=np.int64))
    bad = arr[(arr < 0) | (arr >= n_items)]
    if len(bad):
        raise KeyError(f"unknown item index(es) {bad[:5].tolist()}; the model knows 0..{n_items - 1}")
    return arr
