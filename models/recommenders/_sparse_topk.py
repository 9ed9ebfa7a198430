"""Top-k of ``history @ B`` for a sparse item-item ``B`` without materializing score rows.

For each history row the kernel walks the row's items, adds their ``B`` rows into a
per-thread accumulator (touching only reachable items), applies seen / exclude /
allowed masks, keeps the best ``k`` by insertion, and resets what it touched. Cost per
customer ~ history length x neighbours per item, independent of the catalog size, and
rows run in parallel (numba ``prange``). Items unreachable from the history are not
candidates; callers fill rows that come back short (``-1``).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange

# this module is imported lazily (only by models with a sparse B), so numba loads only when needed


@njit(cache=True, nogil=True)
def _rows(lo, hi, q_ptr, q_idx, q_val, b_ptr, b_idx, b_val, s_ptr, s_idx, e_ptr, e_idx, allowed, k, out_ids, out_val):
    n_items = len(allowed)
    acc = np.zeros(n_items, np.float32)
    flag = np.zeros(n_items, np.bool_)
    touched = np.empty(n_items, np.int64)
    for r in range(lo, hi):
        nt = 0
        for p in range(q_ptr[r], q_ptr[r + 1]):
            i = q_idx[p]
            w = q_val[p]
            for pp in range(b_ptr[i], b_ptr[i + 1]):
                j = b_idx[pp]
                if not flag[j]:
                    flag[j] = True
                    touched[nt] = j
                    nt += 1
                acc[j] += w * b_val[pp]
        for p in range(s_ptr[r], s_ptr[r + 1]):
            acc[s_idx[p]] = -np.inf
        for p in range(e_ptr[r], e_ptr[r + 1]):
            acc[e_idx[p]] = -np.inf
        best_i = out_ids[r]
        best_v = out_val[r]
        for c in range(k):
            best_i[c] = -1
            best_v[c] = -np.inf
        for c in range(nt):
            j = touched[c]
            v = acc[j]
            if allowed[j] and v > best_v[k - 1] and v > -np.inf:
                pos = k - 1
                while pos > 0 and best_v[pos - 1] < v:
                    best_v[pos] = best_v[pos - 1]
                    best_i[pos] = best_i[pos - 1]
                    pos -= 1
                best_v[pos] = v
                best_i[pos] = j
            acc[j] = 0.0
            flag[j] = False
        for p in range(s_ptr[r], s_ptr[r + 1]):  # masked but untouched items: restore zero
            acc[s_idx[p]] = 0.0
        for p in range(e_ptr[r], e_ptr[r + 1]):
            acc[e_idx[p]] = 0.0


@njit(parallel=True, cache=True, nogil=True)
def _topk_parallel(q_ptr, q_idx, q_val, b_ptr, b_idx, b_val, s_ptr, s_idx, e_ptr, e_idx, allowed, k, out_ids, out_val,
                   n_threads):
    n_rows = len(q_ptr) - 1
    chunk = (n_rows + n_threads - 1) // n_threads
    for t in prange(n_threads):
        _rows(t * chunk, min(n_rows, (t + 1) * chunk), q_ptr, q_idx, q_val, b_ptr, b_idx, b_val, s_ptr, s_idx,
              e_ptr, e_idx, allowed, k, out_ids, out_val)


PARALLEL_FROM = 256  # rows; below this, waking threads costs more than it saves (single requests)


def prepare(B: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``B`` as the kernel reads it (int64 pointers/indices, float32 values); cache it."""
    B = sp.csr_matrix(B)
    return B.indptr.astype(np.int64), B.indices.astype(np.int64), B.data.astype(np.float32)


def sparse_topk(Q: sp.csr_matrix, B: tuple[np.ndarray, np.ndarray, np.ndarray], n_items: int, k: int,
                seen: sp.csr_matrix | None = None, exclude: sp.csr_matrix | None = None,
                allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of ``Q @ B`` per row (``B`` from :func:`prepare`; ids -1 / -inf when short)."""
    n_rows = Q.shape[0]
    empty = sp.csr_matrix((n_rows, n_items), dtype=np.float32)
    s = seen if seen is not None else empty
    e = exclude if exclude is not None else empty
    ok = np.ones(n_items, np.bool_) if allowed is None else np.ascontiguousarray(allowed, dtype=np.bool_)
    ids = np.empty((n_rows, k), np.int64)
    vals = np.empty((n_rows, k), np.float32)
    args = (Q.indptr.astype(np.int64), Q.indices.astype(np.int64), Q.data.astype(np.float32), B[0], B[1], B[2],
            s.indptr.astype(np.int64), s.indices.astype(np.int64), e.indptr.astype(np.int64), e.indices.astype(np.int64),
            ok, k, ids, vals)
    if n_rows >= PARALLEL_FROM:
        _topk_parallel(*args, numba.get_num_threads())
    else:
        _rows(0, n_rows, *args)
    return ids, vals
