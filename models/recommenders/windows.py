"""Time windows of each user's history: the co-occurrence :class:`~models.recommenders.ease.WindowEASE` adds."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def window_matrix(times: sp.csr_matrix, window: int) -> sp.csr_matrix:
    """Rows = consecutive ``window``-event chunks of each user's time-ordered history.

    Two cuttings offset by ``window // 2`` are stacked so no pair of neighbours is
    always split; ``times`` holds event times (any increasing unit) on the
    ``user_items`` pattern. Ties in time keep the column order.
    """
    t = times.tocsr()
    n_users = t.shape[0]
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(t.indptr))
    order = np.lexsort((t.data, users))  # by user, then time
    starts = t.indptr[:-1][users[order]]
    pos = np.arange(len(order)) - starts
    items = t.indices[order]
    blocks = []
    for offset in (0, window // 2):
        chunk = users[order] * (t.shape[1] + 1) + (pos + offset) // window
        _, row = np.unique(chunk, return_inverse=True)
        blocks.append(sp.csr_matrix((np.ones(len(row), np.float32), (row, items)), shape=(row.max() + 1, t.shape[1])))
    return sp.vstack(blocks).tocsr() if blocks and len(order) else sp.csr_matrix((0, t.shape[1]), dtype=np.float32)
