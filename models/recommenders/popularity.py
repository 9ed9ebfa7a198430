"""Popularity recommenders: global, and per profile segment (the cold-start model).

:class:`Popularity` ranks items by weighted interaction count (optionally with an
exponential time decay applied by the caller through the weights).
:class:`SegmentPopularity` keeps one popularity vector per segment (e.g. age band x
gender x city x lifecycle tag) and shrinks small segments toward the global vector,
so a customer with no history still gets items people like them take.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommenders._base import ScoredRecommender, as_csr, check_item_ids, masked_topk, topk_rows


class Popularity(ScoredRecommender):
    """Most-interacted items first; the same list for everyone (minus exclusions and filters).

    Parameters
    ----------
    binary : bool
        Count users per item (True) or sum the weights (False).
    """

    def __init__(self, binary: bool = True) -> None:
        self.binary = binary

    def fit(self, user_items: Any) -> "Popularity":
        """Count each item's users (or weight) in ``user_items``; returns self."""
        X = as_csr(user_items)
        counts = (X > 0).sum(axis=0) if self.binary else X.sum(axis=0)
        self.popularity_ = np.asarray(counts, dtype=np.float64).ravel()
        self.n_items_ = X.shape[1]
        return self

    def _score(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.popularity_.astype(np.float32), (user_items.shape[0], self.n_items_)).copy()

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Most popular other items (popularity has no notion of similarity)."""
        items = check_item_ids(items, self._check_items())
        s = np.tile(self.popularity_.astype(np.float32), (len(items), 1))
        s[np.arange(len(items)), items] = -np.inf
        return topk_rows(s, k)


class SegmentPopularity(Popularity):
    """Popularity within a segment, shrunk toward global popularity.

    Parameters
    ----------
    shrinkage : float
        Pseudo-count of users pulling a segment toward the global shares; small
        segments look mostly global, large ones mostly like themselves.
    """

    def __init__(self, shrinkage: float = 50.0, binary: bool = True) -> None:
        super().__init__(binary=binary)
        self.shrinkage = shrinkage

    def fit(self, user_items: Any, segments: Any = None) -> "SegmentPopularity":
        """Learn per-segment item shares; ``segments`` is one integer code per row (-1 = unknown)."""
        super().fit(user_items)
        X = as_csr(user_items)
        if self.binary:
            X.data[:] = 1.0
        seg = np.full(X.shape[0], -1, dtype=np.int64) if segments is None else np.asarray(segments, dtype=np.int64)
        if seg.shape != (X.shape[0],):
            raise ValueError(f"segments must have one code per user row ({X.shape[0]}), got {seg.shape}")
        n_seg = int(seg.max()) + 1 if len(seg) and seg.max() >= 0 else 0
        glob = self.popularity_ / max(self.popularity_.sum(), 1.0)
        known = seg >= 0
        S = sp.csr_matrix((np.ones(known.sum()), (seg[known], np.flatnonzero(known))), shape=(n_seg, X.shape[0]))
        counts = np.asarray((S @ X).todense(), dtype=np.float64)
        users = np.asarray(S.sum(axis=1)).ravel()
        per_user = counts.sum(axis=1, keepdims=True) / np.maximum(users[:, None], 1.0)
        prior = self.shrinkage * per_user * glob[None, :]  # shrinkage users' worth of global behaviour
        shares = (counts + prior) / np.maximum((counts + prior).sum(axis=1, keepdims=True), 1e-12)
        self.segment_scores_ = np.vstack([shares, glob[None, :]]).astype(np.float32)  # last row: unknown
        self.segment_users_ = users
        return self

    def recommend_segments(
        self, segments: Any, k: int = 10, allowed: np.ndarray | None = None, exclude: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for customers given only their segment codes (-1 or unseen = global)."""
        self._check_fitted("segment_scores_")
        seg = np.atleast_1d(np.asarray(segments, dtype=np.int64))
        n_seg = self.segment_scores_.shape[0] - 1
        seg = np.where((seg < 0) | (seg >= n_seg), n_seg, seg)
        allowed = None if allowed is None else np.asarray(allowed, dtype=bool)
        ex = None if exclude is None else as_csr(exclude, self.n_items_, "exclude")
        ids = np.empty((len(seg), k), dtype=np.int64)
        vals = np.empty((len(seg), k), dtype=np.float32)
        for a in range(0, len(seg), self.batch_size):
            b = min(a + self.batch_size, len(seg))
            ids[a:b], vals[a:b] = masked_topk(
                self.segment_scores_[seg[a:b]], k, None, allowed, None if ex is None else ex[a:b])
        return ids, vals
