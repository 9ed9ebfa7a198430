"""The one-customer fast path of :class:`models.recommenders.serving.RecommenderBundle`.

:func:`build` turns a fitted item-item model (a dense or sparse ``B_``: EASE, DLAE,
portrait's WindowEASE) and the bundle's history into raw arrays: the CSR slices of the
history and the exclusions, the model's own query weights for every customer, and the
item columns of ``B_``. :func:`topk` then answers a known customer with no fresh events
with a few array slices, one product with ``B_`` and a partial sort, no scipy matrix per
request. :func:`same_ranking` is the check the bundle runs before turning the path on
(same items, same scores as the general path). The bundle keeps the methods and the
cache (``_fast``); this module holds only the array work, so nothing pickled moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def build(model: Any, history: sp.csr_matrix, times: sp.csr_matrix | None, bought: sp.csr_matrix,
          n_items: int) -> dict[str, Any] | None:
    """The fast path's arrays for ``model`` over ``history`` (None: a model this path does not support)."""
    B, cols = getattr(model, "B_", None), getattr(model, "items_", None)
    if B is None or cols is None or getattr(model, "n_items_", None) != n_items:
        return None
    from models.recommenders._base import as_csr

    try:  # the model's own query weights for every customer, as its recommend() computes them per row
        X = as_csr(history, n_items)
        Q = sp.csr_matrix(model._query(X, times))
    except Exception:  # noqa: BLE001 - a model this path does not know: keep the general path
        return None
    col = np.full(n_items, -1, np.int64)
    col[cols] = np.arange(len(cols))
    bought = as_csr(bought, n_items, "bought")
    kernel = None
    if sp.issparse(B):
        from models.recommenders._sparse_topk import prepare

        kernel = prepare(B)
    return {
        "h": (X.indptr, X.indices), "q": (Q.indptr, Q.indices.astype(np.int64), Q.data.astype(np.float32)),
        "b": (bought.indptr, bought.indices), "col": col, "cols": np.asarray(cols, np.int64), "kernel": kernel,
        "dense": None if kernel is not None else np.ascontiguousarray(B, dtype=np.float32),
        "tail": getattr(model, "tail_", None), "all": len(cols) == n_items}


def topk(f: dict[str, Any], pos: int, k: int, allowed: np.ndarray | None, exclude_seen: bool
         ) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-``k`` (item indices, scores) for history row ``pos``, or None when the general path must answer."""
    qp, qi, qv = f["q"]
    lo, hi = qp[pos], qp[pos + 1]
    items, w = qi[lo:hi], qv[lo:hi]
    hp, hi_ = f["h"]
    seen = hi_[hp[pos]:hp[pos + 1]] if exclude_seen else None
    bp, bi = f["b"]
    bought = bi[bp[pos]:bp[pos + 1]]
    col = f["col"]
    if f["kernel"] is not None:  # pruned (sparse) B: the model's own numba kernel on this one row
        from models.recommenders._sparse_topk import _rows

        keep = col[items] >= 0
        mi, mw = col[items[keep]], w[keep]
        s_idx = col[seen] if seen is not None else np.empty(0, np.int64)
        e_idx = col[bought]
        s_idx, e_idx = s_idx[s_idx >= 0], e_idx[e_idx >= 0]
        ok = np.ones(len(f["cols"]), np.bool_) if allowed is None else np.ascontiguousarray(allowed[f["cols"]])
        ids, vals = np.empty((1, k), np.int64), np.empty((1, k), np.float32)
        b0, b1, b2 = f["kernel"]
        _rows(0, 1, np.array([0, len(mi)], np.int64), mi, mw.astype(np.float32), b0, b1, b2,
              np.array([0, len(s_idx)], np.int64), s_idx, np.array([0, len(e_idx)], np.int64), e_idx, ok, k,
              ids, vals)
        if (ids < 0).any():
            return None  # too few reachable items: the general path fills with the tail
        return f["cols"][ids[0]], vals[0]
    keep = col[items] >= 0
    s_model = w[keep] @ f["dense"][col[items[keep]]] if keep.any() else np.zeros(len(f["cols"]), np.float32)
    if f["all"]:
        s = np.asarray(s_model, dtype=np.float32)
    else:
        s = f["tail"].astype(np.float32, copy=True)
        s[f["cols"]] = s_model
    if seen is not None:
        s[seen] = -np.inf
    s[bought] = -np.inf
    if allowed is not None:
        s[~allowed] = -np.inf
    return topk_1d(s, k)


def same_ranking(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], tol: float = 1e-4) -> bool:
    """Same scores position by position (float32 tolerance); ids may differ only where scores tie."""
    (ia, sa), (ib, sb) = a, b
    if ia.shape != ib.shape or not np.allclose(sa, sb, rtol=tol, atol=1e-6):
        return False
    differ = np.flatnonzero(ia != ib)
    if not len(differ):
        return True
    near = np.abs(sa[:, None] - sa[None, :]) <= tol * np.maximum(np.abs(sa[:, None]), 1e-6) + 1e-6
    return all(near[i].sum() > 1 or i == len(ia) - 1 for i in differ)


def topk_1d(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``models.recommenders._base.topk_rows`` for one row (same partition and stable order), None when short."""
    if k >= len(s):
        return None  # k covers the catalog: the general path pads
    idx = np.argpartition(-s, k - 1)[:k]
    top = s[idx]
    order = np.argsort(-top, kind="stable")
    vals = top[order]
    if not np.isfinite(vals[-1]):
        return None  # filters left fewer than k items
    return idx[order].astype(np.int64), vals.astype(np.float32)
