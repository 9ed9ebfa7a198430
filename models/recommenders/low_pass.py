"""GF-CF's ideal low-pass filter (Shen et al., CIKM 2021), the second part of :class:`WindowEASE`.

The filter projects a history on the top ``r`` eigenvectors of the degree-normalized item
graph ``D_i^-1/2 X' D_u^-1 X D_i^-1/2``: the smoothest, most shared taste directions. As an
item-item matrix ``L = D_i^-1/2 V'V D_i^1/2`` it is added to EASE's ``B`` (rescaled to B's
score spread), so scoring, pruning, serving and ``similar_items`` are unchanged; several filters
(ranks and weights the inner split cannot tell apart) are added as their average. The matrix
is as large as EASE's Gram: dense LAPACK for up to 4,000 items, randomized subspace iteration above.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from models.recommenders._inner import eval_rows, ndcg_per_user, within_band

DENSE_MAX = 4_000  # items up to which the eigenvectors come from dense LAPACK


def check_candidates(ranks: tuple, weights: tuple, band: float = 0.0) -> None:
    """Clear errors for bad ``WindowEASE(low_pass_ranks=..., low_pass_weights=..., low_pass_band=...)``
    before any work."""
    bad = [r for r in ranks if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1]
    if bad:
        raise ValueError(f"low_pass_ranks must be positive integers, got {bad}")
    bad = [a for a in weights if not (np.isfinite(a) and a >= 0)]
    if bad:
        raise ValueError(f"low_pass_weights must be finite and >= 0 (0 = no filter), got {bad}")
    if isinstance(band, bool) or not isinstance(band, (int, float, np.number)) or not (np.isfinite(band) and band >= 0):
        raise ValueError(f"low_pass_band must be a finite number >= 0 (0 = the single best filter), got {band!r}")


def _inv_sqrt(degree: np.ndarray) -> np.ndarray:
    """``degree ** -0.5``, 0 where the degree is 0 (an item or user without interactions)."""
    return np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)


def low_pass_basis(X: sp.csr_matrix, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``rank`` right singular vectors of ``D_u^-1/2 X D_i^-1/2`` and the item degrees ``D_i``.

    The "ideal low-pass filter" of GF-CF (Shen et al. 2021): the smoothest item signals of the
    normalized user-item graph, taken as the top eigenvectors of the item-item matrix
    ``D_i^-1/2 X' D_u^-1 X D_i^-1/2`` (as large as EASE's Gram).
    """
    du = np.asarray(X.sum(axis=1)).ravel()
    di = np.asarray(X.sum(axis=0)).ravel()
    inv_i = _inv_sqrt(di)
    G = (X.T @ sp.diags(_inv_sqrt(du) ** 2) @ X).toarray()
    G *= inv_i[:, None]
    G *= inv_i[None, :]
    n = len(G)
    if n <= DENSE_MAX:  # dense LAPACK (MRRR) on the top ``rank`` eigenpairs: faster than Lanczos at this size
        from scipy.linalg import eigh

        _, vecs = eigh(G.astype(np.float32), subset_by_index=[n - rank, n - 1], driver="evr", overwrite_a=True,
                       check_finite=False)  # single precision: ~1.7x faster, ample for a filter's subspace
    else:  # randomized subspace iteration (Halko et al.): block products with BLAS, not 1,000 matvecs
        from sklearn.utils.extmath import randomized_svd

        _, _, vt = randomized_svd(G.astype(np.float32), rank, n_oversamples=20, n_iter=8, random_state=seed)
        return vt, di  # G is symmetric PSD: its right singular vectors are its eigenvectors
    return vecs[:, ::-1].T.copy(), di


def low_pass_factors(V: np.ndarray, di: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` with ``left @ right = D_i^-1/2 V'V D_i^1/2`` (rank ``len(V)``, float32)."""
    V = V.astype(np.float32)
    return (V * _inv_sqrt(di).astype(np.float32)[None, :]).T, V * np.sqrt(di).astype(np.float32)[None, :]


def scale_to(s_b: np.ndarray, s_l: np.ndarray) -> float:
    """Factor putting filter scores ``s_l`` on the scale of B's ``s_b``: ratio of mean per-user spreads.

    One definition for the inner search and the final fit, so the chosen weight means the same in both.
    """
    spread_l = float(s_l.std(axis=1).mean())
    return float(s_b.std(axis=1).mean()) / spread_l if spread_l > 0 else 0.0


def band_terms(search: list[tuple[int, float, float]], per_user: list[np.ndarray], band: float
               ) -> tuple[int, float, tuple[tuple[int, float], ...]]:
    """The best ``(rank, weight)`` of ``search`` and the filters to add, as ``(rank, weight)`` pairs.

    ``search`` holds ``(rank, weight, inner nDCG)`` per candidate, "off" ``(0, 0.0, ...)`` first;
    ``per_user`` the candidates' per-user inner nDCG (empty: no filter was searched, "off"). The
    candidates within ``band`` standard errors of the best (:func:`_inner.within_band`) are averaged:
    each filter at ``weight / n`` for ``n`` candidates kept, "off" among them adding nothing.
    """
    keep = within_band(per_user, band) if per_user else [0]
    rank, weight = search[keep[0]][:2]
    return rank, weight, tuple((search[i][0], search[i][1] / len(keep)) for i in keep if search[i][1] > 0)


def low_pass_into(B: np.ndarray, X: sp.csr_matrix, V: np.ndarray, di: np.ndarray,
                  weight: float | Sequence[tuple[int, float]], max_rows: int = 5_000) -> None:
    """``B += weight * c * L`` off the diagonal, ``c`` = typical per-user score spread of ``x B`` over ``x L``.

    ``weight`` is a float (the filter on every row of ``V``) or ``(rank, weight)`` pairs: a sum of
    filters on the top ``rank`` rows of ``V``, each scaled against ``B`` as it was on entry (as the
    inner search scales each candidate). The diagonal only scores items a person already has, which
    are never recommended.
    """
    terms = [(len(V), float(weight))] if isinstance(weight, (int, float, np.number)) else list(weight)
    left, right = low_pass_factors(V, di)
    rows = np.flatnonzero(np.diff(X.indptr) > 0)
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(0).choice(rows, max_rows, replace=False))
    Q = X[rows]
    s_b, q_left = np.asarray(Q @ B), np.asarray(Q @ left)
    # the filters are nested projections: their sum is one spectral filter, eigenvector j weighted by
    # the sum of w * c over the terms whose rank exceeds j (one items x items product, not one per term)
    gain = np.zeros(len(V), np.float32)
    for rank, w in terms:
        c = scale_to(s_b, q_left[:, :rank] @ right[:rank])
        if c > 0 and w > 0:
            gain[:rank] += np.float32(w * c)
    if gain.any():
        keep = np.diag(B).copy()
        B += (left * gain[None, :]) @ right
        B[np.diag_indices_from(B)] = keep


def search_low_pass(Xf: sp.csr_matrix, Xv: sp.csr_matrix, queries: sp.csr_matrix, B: np.ndarray, best: float,
                    ranks: Sequence[int], weights: Sequence[float], k: int, seed: int
                    ) -> tuple[list[tuple[int, float, float]], list[np.ndarray]]:
    """The filter stage of the inner search: ``(search, per_user)`` over ``ranks`` x ``weights``.

    ``search`` holds ``(rank, weight, mean inner nDCG)`` with "off" ``(0, 0.0, best)`` first; ``per_user``
    each candidate's inner nDCG per evaluated user, "off" first (empty when nothing was searched), for
    :func:`band_terms`. Scores are ``x B + a (x L)``, the filter on B's score spread as in the final fit.
    """
    search, per_user = [(0, 0.0, best)], []
    rows = eval_rows(Xv)
    if not (ranks and weights and len(rows)):
        return search, per_user
    V, d = low_pass_basis(Xf, max(ranks), seed)
    q, seen, held = queries[rows], Xf[rows], Xv[rows]
    s_b = np.asarray(q @ B)
    per_user.append(ndcg_per_user(s_b, seen, held, k))
    left, right = low_pass_factors(V, d)
    q_left = np.asarray(q @ left)  # x L = (x left) right: rank-r products, not n x n
    for r in ranks:
        s_l = q_left[:, :r] @ right[:r]
        s_l *= scale_to(s_b, s_l)
        for a in weights:
            per_user.append(ndcg_per_user(s_b + a * s_l, seen, held, k))
            search.append((r, a, float(per_user[-1].mean())))
    return search, per_user
