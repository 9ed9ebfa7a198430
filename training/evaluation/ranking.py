"""Top-k ranking metrics for recommenders, vectorized over users.

The protocol is the one in ``../shared/data/README.md``: every held-out item is
relevant (binary gains), items seen in training are removed before ranking
(the model's job, via ``exclude_seen``), and each metric is averaged over the
users that have at least one held-out item:

- precision@k = hits / k
- recall@k    = hits / n_relevant
- nDCG@k      = DCG / ideal DCG, gains 1 for a hit, discount 1 / log2(rank + 1)
- MAP@k       = sum of precision@i at each hit rank i <= k, divided by n_relevant
- hit rate@k  = share of users with at least one hit
- coverage@k  = distinct recommended items / catalog size

Example::

    ids, _ = model.recommend(train[users], k=10)
    figures = ranking_metrics(ids, test[users], k=10)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def hit_matrix(ids: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_users, k): is ``ids[u, j]`` among the relevant items of row ``u``.

    ``ids`` may hold -1 (no item); those are never hits.
    """
    ids = np.asarray(ids, dtype=np.int64)
    rel = sp.csr_matrix(relevant)
    n_users, n_items = rel.shape
    if ids.shape[0] != n_users:
        raise ValueError(f"ids has {ids.shape[0]} rows but relevant has {n_users}")
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr))
    keys = np.sort(rows * n_items + rel.indices.astype(np.int64))
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + ids
    if len(keys) == 0:
        return np.zeros(ids.shape, dtype=bool)
    pos = np.searchsorted(keys, rec_keys).clip(max=len(keys) - 1)
    return (keys[pos] == rec_keys) & (ids >= 0)


def per_user_metrics(ids: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, np.ndarray]:
    """Per-user precision, recall, nDCG, MAP and hit for users with a held-out item.

    Returns arrays aligned with ``users`` (also returned, the row numbers kept).
    """
    ids = np.asarray(ids)[:, :k]
    rel = sp.csr_matrix(relevant)
    n_rel = np.diff(rel.indptr)
    keep = n_rel > 0
    hits = hit_matrix(ids, rel)[keep].astype(np.float64)
    n_rel = n_rel[keep].astype(np.float64)
    if hits.shape[1] < k:  # fewer than k columns: pad with misses
        hits = np.hstack([hits, np.zeros((hits.shape[0], k - hits.shape[1]))])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discount
    ideal = np.cumsum(discount)[np.minimum(n_rel, k).astype(np.int64) - 1]
    n_hits = hits.sum(axis=1)
    prec_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return {
        "users": np.flatnonzero(keep),
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": dcg / ideal,
        "map": (prec_at_i * hits).sum(axis=1) / n_rel,
        "hit_rate": (n_hits > 0).astype(np.float64),
    }


def ranking_metrics(ids: np.ndarray, relevant: sp.csr_matrix, k: int = 10, n_items: int | None = None) -> dict[str, float]:
    """Mean precision, recall, nDCG, MAP, hit rate over users with held-out items, and coverage.

    Parameters
    ----------
    ids : ndarray of int, shape (n_users, >= k)
        Recommended item indices per user, best first; -1 for "no item".
    relevant : csr_matrix, shape (n_users, n_items)
        Held-out items per user (any non-zero entry is relevant).
    k : int
        Cut-off.
    n_items : int, optional
        Catalog size for coverage (default: ``relevant.shape[1]``).

    Returns
    -------
    dict with keys ``precision, recall, ndcg, map, hit_rate, coverage, n_users``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    per = per_user_metrics(ids, relevant, k)
    out = {m: float(per[m].mean()) if len(per["users"]) else 0.0 for m in METRICS if m != "coverage"}
    users_ids = np.asarray(ids)[per["users"], :k]
    n_items = relevant.shape[1] if n_items is None else n_items
    out["coverage"] = float(len(np.unique(users_ids[users_ids >= 0])) / max(n_items, 1))
    out["n_users"] = int(len(per["users"]))
    return out


def evaluate_recommender(
    model: Any, split: Any, k: int = 10, fit_kwargs: dict[str, Any] | None = None,
    use_times: bool = False, with_users: bool = False,
) -> dict[str, float]:
    """Fit ``model`` on ``split.train``, rank for every user with held-out items, score at ``k``.

    ``split`` is a :class:`training.evaluation.splits.SplitMatrices`. Seen items are removed
    (``exclude_seen``). ``use_times`` passes the training event times to ``fit`` and
    ``recommend``; ``with_users`` gives factor models their learned user rows.
    Returns the metrics plus ``fit_seconds`` (wall clock), ``fit_cpu_seconds`` (this process's
    CPU time, all threads: robust to a busy machine) and ``recommend_seconds``.
    """
    import time

    fit_kwargs = dict(fit_kwargs or {})
    if use_times and split.train_times is not None:
        fit_kwargs["times"] = split.train_times
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(split.train, **fit_kwargs)
    fit_seconds, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = np.flatnonzero(np.diff(split.test.indptr) > 0)
    kwargs: dict[str, Any] = {"users": rows} if with_users else {}
    if use_times and split.train_times is not None:
        kwargs["times"] = split.train_times[rows]
    t0 = time.perf_counter()
    ids, _ = model.recommend(split.train[rows], k=k, exclude_seen=True, **kwargs)
    rec_seconds = time.perf_counter() - t0
    out = ranking_metrics(ids, split.test[rows], k=k, n_items=split.train.shape[1])
    out.update(fit_seconds=fit_seconds, fit_cpu_seconds=fit_cpu, recommend_seconds=rec_seconds)
    return out
