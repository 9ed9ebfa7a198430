"""implicit's ALS, BPR and item-item (BM25 / cosine) models behind portrait's interface.

The models are fitted with implicit's public API (``fit(user_items)``) and then
scored here, so exclusions, filters and batching behave the same for every model.
BLAS is held to one thread while implicit trains (its own threads do the work).

Users not in the fit (or fresh histories): ALS folds the history in with implicit's
``recalculate_user`` (one least-squares solve per row); BPR, which has no fold-in,
uses the mean factor of the history's items; item-item models read the history directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommenders._base import ScoredRecommender, as_csr, check_item_ids, cosine_topk, topk_rows


def _fit_quietly(make: Any, X: sp.csr_matrix) -> Any:
    """Build (implicit checks BLAS threads at construction) and fit with BLAS on one thread."""
    import warnings

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        # implicit's item-item fit converts its own transposed input and warns about it
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model = make()
        model.fit(X, show_progress=False)
    return model


class _FactorModel(ScoredRecommender):
    """Shared scoring for latent-factor models: ``user_factor . item_factor``."""

    def _fold_in(self, X: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _score(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        if users is not None:
            known = (users >= 0) & (users < len(self.user_factors_))
            U = np.empty((user_items.shape[0], self.item_factors_.shape[1]), dtype=np.float32)
            U[known] = self.user_factors_[users[known]]
            if (~known).any():
                U[~known] = self._fold_in(user_items[~known])
        else:
            U = self._fold_in(user_items)
        return U @ self.item_factors_.T

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Cosine neighbours in item-factor space (the item itself excluded)."""
        items = check_item_ids(items, self._check_items())
        return cosine_topk(self.item_factors_, items, k)


class ALS(_FactorModel):
    """Implicit ALS (Hu, Koren, Volinsky 2008) from ``implicit``; defaults are implicit's.

    Parameters
    ----------
    factors, regularization, alpha, iterations : implicit's ALS hyperparameters
    seed : int
        ``random_state`` for reproducible factors.
    """

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, seed: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed

    def fit(self, user_items: Any) -> "ALS":
        """Fit implicit's ALS on ``user_items`` (confidence = weights); returns self."""
        from implicit.cpu.als import AlternatingLeastSquares

        X = as_csr(user_items)
        m = _fit_quietly(lambda: AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            iterations=self.iterations, random_state=self.seed), X)
        self.model_ = m
        self.user_factors_ = np.asarray(m.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(m.item_factors, dtype=np.float32)
        self.n_items_ = X.shape[1]
        return self

    def _fold_in(self, X: sp.csr_matrix) -> np.ndarray:
        if X.shape[0] == 0:
            return np.zeros((0, self.factors), dtype=np.float32)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            return np.asarray(self.model_.recalculate_user(np.arange(X.shape[0]), X), dtype=np.float32)


class BPR(_FactorModel):
    """Bayesian personalized ranking (Rendle et al. 2009) from ``implicit``; defaults are implicit's."""

    def __init__(self, factors: int = 100, learning_rate: float = 0.01, regularization: float = 0.01,
                 iterations: int = 100, seed: int = 0) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed

    def fit(self, user_items: Any) -> "BPR":
        """Fit implicit's BPR on ``user_items`` (any positive weight is a positive); returns self."""
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        X = as_csr(user_items)
        m = _fit_quietly(lambda: BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
            iterations=self.iterations, random_state=self.seed), X)
        self.user_factors_ = np.asarray(m.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(m.item_factors, dtype=np.float32)  # last column: item bias
        self.n_items_ = X.shape[1]
        return self

    def _fold_in(self, X: sp.csr_matrix) -> np.ndarray:
        B = (X > 0).astype(np.float32)
        n = np.asarray(B.sum(axis=1)).ravel()
        U = np.asarray(B @ self.item_factors_) / np.maximum(n, 1.0)[:, None]
        U[:, -1] = 1.0  # implicit's BPR user factors carry a constant 1 against the item bias
        return U.astype(np.float32)


class ItemKNN(ScoredRecommender):
    """Item-item nearest neighbours from ``implicit`` (BM25 or cosine weighting).

    Parameters
    ----------
    similarity : {"bm25", "cosine"}
    neighbours : int
        Neighbours kept per item (implicit's ``K``).
    k1, b : float
        BM25 parameters.
    """

    def __init__(self, similarity: str = "bm25", neighbours: int = 100, k1: float = 1.2, b: float = 0.75) -> None:
        self.similarity = similarity
        self.neighbours = neighbours
        self.k1 = k1
        self.b = b

    def fit(self, user_items: Any) -> "ItemKNN":
        """Build the item-item similarity with implicit; returns self."""
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        if self.similarity not in ("bm25", "cosine"):
            raise ValueError(f"similarity must be 'bm25' or 'cosine', got {self.similarity!r}")
        X = as_csr(user_items)
        m = _fit_quietly(lambda: BM25Recommender(K=self.neighbours, K1=self.k1, B=self.b)
                         if self.similarity == "bm25" else CosineRecommender(K=self.neighbours), X)
        self.similarity_ = sp.csr_matrix(m.similarity, dtype=np.float32)
        self.n_items_ = X.shape[1]
        return self

    def _score(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return (user_items @ self.similarity_).toarray()

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Highest-similarity neighbours of each item (the item itself excluded)."""
        items = check_item_ids(items, self._check_items())
        s = self.similarity_[items].toarray()
        s[s == 0] = -np.inf
        s[np.arange(len(items)), items] = -np.inf
        return topk_rows(s, k)
