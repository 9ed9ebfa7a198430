"""Array helpers of :class:`models.ann.AnnIndex`: checked float32 input, normalization, exclusions, recall."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def as_float32(x: Any) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"vectors must be 2-D (n, dim), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinite values")
    return arr


def normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def is_per_query(exclude: Any, n_queries: int) -> bool:
    if isinstance(exclude, np.ndarray):
        return exclude.dtype == object
    if isinstance(exclude, (list, tuple)) and len(exclude) == n_queries and n_queries > 0:
        return all(isinstance(e, (list, tuple, np.ndarray, set)) for e in exclude)
    return False


def drop_per_query(ids: np.ndarray, scores: np.ndarray, exclude: Sequence[Any], k: int):
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    for row, banned in enumerate(exclude):
        banned = np.asarray(list(banned) if isinstance(banned, set) else banned, dtype=np.int64)
        keep = (ids[row] >= 0) & ~np.isin(ids[row], banned)
        got = ids[row][keep][:k]
        out_ids[row, : len(got)] = got
        out_scores[row, : len(got)] = scores[row][keep][:k]
    return out_ids, out_scores


def recall_of(got: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(g[g >= 0], t[t >= 0])) for g, t in zip(got, truth))
    total = int((truth >= 0).sum())
    return hits / total if total else 1.0
