"""Lookalike scoring: rank a population by similarity to a seed set.

:class:`Lookalike` is fitted once on the population (customer embeddings, and/or the
customer x item interaction matrix, and/or a numeric feature matrix) and then scores
any seed set (row indices) quickly. Methods:

* ``centroid``  cosine between each customer's embedding and the seeds' mean embedding;
* ``knn``       kNN vote: every customer's similarity to its nearest seeds (FAISS, top
                ``n_neighbors`` seeds per customer, summed);
* ``items``     a seeds-vs-population ridge regression over the interaction rows, in
                closed form through the eigendecomposition of the item Gram matrix
                ``X'X = V diag(e) V'``: weights ``b = V (V'X's / (e + lambda))``, score ``X b``.
                Large ``lambda`` reduces it to co-occurrence propagation ``X X's`` (a
                similarity); small ``lambda`` to a classifier that discounts items every
                customer has. ``lambda`` is chosen per seed set by self-validation: the
                seeds are split in ``folds``, each fold hidden in turn and ranked among a
                sample of the population, never touching anything outside the seeds;
* ``pu``        a positive-unlabelled LightGBM classifier, seeds vs a random sample of the
                population, on ``[embeddings | features]``;
* ``auto``      by seed size (Pinterest 2019: similarity on small seeds, classifiers on
                large ones): below ``classifier_min_seeds`` seeds ``items`` when interactions
                were given (else ``centroid``), from there ``pu`` when there are features
                or embeddings to learn on.

Seeds smaller than ``min_seeds`` raise :class:`SeedTooSmall`: a poor audience is worse
than a clear error. Scores are comparable within one call only; the percentile (share of
the eligible population scoring lower, x100) is what to show people.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import Model

METHODS = ("auto", "centroid", "knn", "items", "pu")
LAMBDA_GRID = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)  # x mean item popularity (scale-free)


class SeedTooSmall(ValueError):
    """The seed set is smaller than the configured minimum."""


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return x / n


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """AUC of positive vs negative scores (ties count one half), by binary search."""
    if len(positives) == 0 or len(negatives) == 0:
        return 0.5
    ordered = np.sort(negatives)
    below = np.searchsorted(ordered, positives, side="left")
    not_above = np.searchsorted(ordered, positives, side="right")
    return float(((below + not_above) / 2).mean() / len(ordered))


class Lookalike(Model):
    """Seed-set similarity over a fitted population.

    Parameters
    ----------
    method : {"auto", "centroid", "knn", "items", "pu"}
        Default scoring method (each call may override it).
    min_seeds : int
        Smallest seed set accepted.
    classifier_min_seeds : int
        ``auto`` switches from similarity to the PU classifier from this seed size.
    lambdas : tuple of float
        Ridge strengths tried by ``items``, as multiples of the mean item popularity.
    folds : int
        Seed folds for the self-validation of ``items``.
    validation_sample : int
        Population rows sampled as negatives during self-validation.
    n_neighbors : int
        Seeds each customer votes over in ``knn``.
    pu_negatives : int
        Unlabelled rows sampled per seed for ``pu`` (capped at 200k in total).
    max_items : int
        ``items`` keeps the most popular items up to this many (the Gram matrix is
        items x items and its eigendecomposition cubic in that number).
    seed : int
        Random seed (fold splits, samples, LightGBM).
    """

    def __init__(self, method: str = "auto", min_seeds: int = 50, classifier_min_seeds: int = 5000,
                 lambdas: tuple[float, ...] = LAMBDA_GRID, folds: int = 3, validation_sample: int = 20_000,
                 n_neighbors: int = 50, pu_negatives: int = 10, max_items: int = 5000, seed: int = 0) -> None:
        self.method = method
        self.min_seeds = min_seeds
        self.classifier_min_seeds = classifier_min_seeds
        self.lambdas = lambdas
        self.folds = folds
        self.validation_sample = validation_sample
        self.n_neighbors = n_neighbors
        self.pu_negatives = pu_negatives
        self.max_items = max_items
        self.seed = seed

    def fit(self, embeddings: Any | None = None, interactions: Any | None = None,
            features: Any | None = None) -> "Lookalike":
        """Learn the population: any of ``embeddings`` (n, d), ``interactions`` (csr n x items),
        ``features`` (n, f numeric; NaN allowed). Rows are the same customers in the same order."""
        import scipy.sparse as sp

        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        sizes = {len(a) if not sp.issparse(a) else a.shape[0]
                 for a in (embeddings, interactions, features) if a is not None}
        if not sizes:
            raise ValueError("fit needs embeddings, interactions or features")
        if len(sizes) > 1:
            raise ValueError(f"embeddings, interactions and features disagree on the number of rows: {sorted(sizes)}")
        self.n_ = sizes.pop()
        self.embeddings_ = None if embeddings is None else _unit(embeddings)
        self.features_ = None if features is None else np.asarray(features, dtype=np.float32)
        self.X_ = None
        if interactions is not None:
            X = sp.csr_matrix(interactions, dtype=np.float64)
            X.data[:] = 1.0  # presence: weights differ across sources, co-occurrence is what carries
            X.sum_duplicates()
            X.data[:] = 1.0
            popularity = np.asarray(X.sum(axis=0)).ravel()
            self.item_keep_ = np.sort(np.argsort(-popularity, kind="stable")[: self.max_items])
            if len(self.item_keep_) < X.shape[1]:
                X = X[:, self.item_keep_]
            G = (X.T @ X).toarray()
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1, "blas"):  # on shared cores a threaded eigh is many times slower
                self.eig_, self.V_ = np.linalg.eigh(G)
            self.X_ = X.tocsr()
            self.lambda_scale_ = float(max(np.diag(G).mean(), 1e-9))
        return self

    # ------------------------------------------------------------ methods
    def resolve_method(self, n_seeds: int, method: str | None = None) -> str:
        """The method ``score`` will use for a seed set of ``n_seeds``."""
        method = method or self.method
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method != "auto":
            self._require(method)
            return method
        if n_seeds >= self.classifier_min_seeds and (self.embeddings_ is not None or self.features_ is not None):
            return "pu"
        if self.X_ is not None:
            return "items"
        return "centroid" if self.embeddings_ is not None else "pu"

    def methods(self) -> tuple[str, ...]:
        """The methods this fitted model can use ("auto" first): each needs its input at fit time."""
        ok = []
        for m in METHODS:
            try:
                self._require(m)
            except ValueError:
                continue
            ok.append(m)
        return tuple(ok)

    def _require(self, method: str) -> None:
        need = {"centroid": ("embeddings_", "embeddings"), "knn": ("embeddings_", "embeddings"),
                "items": ("X_", "interactions")}.get(method)
        if need and getattr(self, need[0], None) is None:
            raise ValueError(f"method {method!r} needs {need[1]} at fit time")
        if method == "pu" and self.embeddings_ is None and self.features_ is None:
            raise ValueError("method 'pu' needs embeddings or features at fit time")

    def score(self, seeds: Any, method: str | None = None) -> np.ndarray:
        """Similarity of every fitted row to the seed set (higher = more alike).

        Parameters
        ----------
        seeds : array of int
            Row indices of the seed customers (duplicates ignored).
        method : str, optional
            Override of ``self.method``.
        """
        self._check_fitted("n_")
        seeds = np.unique(np.asarray(seeds, dtype=np.int64))
        if len(seeds) and (seeds.min() < 0 or seeds.max() >= self.n_):
            raise ValueError(f"seed indices must be in [0, {self.n_})")
        if len(seeds) < self.min_seeds:
            raise SeedTooSmall(f"seed has {len(seeds)} customers; at least {self.min_seeds} are needed "
                               "for a useful lookalike (min_seeds, fixed when the model is trained)")
        chosen = self.resolve_method(len(seeds), method)
        self.last_method_ = chosen
        return getattr(self, f"_score_{chosen}")(seeds)

    def _score_centroid(self, seeds: np.ndarray) -> np.ndarray:
        c = self.embeddings_[seeds].mean(axis=0)
        return self.embeddings_ @ (c / max(np.linalg.norm(c), 1e-12))

    def _score_knn(self, seeds: np.ndarray) -> np.ndarray:
        from models.ann import AnnIndex

        k = min(self.n_neighbors, len(seeds))
        index = AnnIndex(metric="ip", kind="flat").fit(self.embeddings_[seeds], ids=seeds)
        _, sims = index.search(self.embeddings_, k=k)
        return np.where(np.isfinite(sims), sims, 0.0).sum(axis=1) / k

    def _ridge_weights(self, seeds: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
        s = np.zeros(self.n_)
        s[seeds] = 1.0
        proj = self.V_.T @ (self.X_[seeds].sum(axis=0).A1)
        return self.V_ @ (proj[:, None] / (self.eig_[:, None] + lambdas[None, :]))  # items x lambdas

    def _score_items(self, seeds: np.ndarray) -> np.ndarray:
        lam = self.select_lambda(seeds)
        self.last_lambda_ = lam
        return self.X_ @ self._ridge_weights(seeds, np.array([lam]))[:, 0]

    def select_lambda(self, seeds: np.ndarray) -> float:
        """Ridge strength for ``items`` by self-validation on the seeds only.

        Each fold of seeds is hidden; the rest are the seeds; the hidden ones are ranked
        among a random sample of non-seed customers; the mean AUC picks ``lambda``.
        """
        grid = np.asarray(self.lambdas, dtype=np.float64) * self.lambda_scale_
        if len(grid) == 1:
            return float(grid[0])
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(seeds)
        is_seed = np.zeros(self.n_, dtype=bool)
        is_seed[seeds] = True
        n_others = self.n_ - len(seeds)
        if n_others <= self.validation_sample:
            sample = np.flatnonzero(~is_seed)
        else:  # draw with replacement-free rejection: cheap when seeds are a small share
            draw = rng.choice(self.n_, min(self.n_, int(self.validation_sample * self.n_ / n_others) + 64), replace=False)
            sample = draw[~is_seed[draw]][: self.validation_sample]
        total = np.zeros(len(grid))
        for f in range(self.folds):
            hidden = order[f::self.folds][: self.validation_sample // 4]  # enough for a stable AUC
            keep = is_seed.copy()
            keep[hidden] = False
            train = np.flatnonzero(keep)
            W = self._ridge_weights(train, grid)
            pos, neg = self.X_[hidden] @ W, self.X_[sample] @ W
            total += [_auc(pos[:, j], neg[:, j]) for j in range(len(grid))]
        self.validation_auc_ = dict(zip((float(g) for g in grid), (t / self.folds for t in total)))
        return float(grid[int(np.argmax(total))])

    def _score_pu(self, seeds: np.ndarray) -> np.ndarray:
        import lightgbm as lgb

        parts = [a for a in (self.embeddings_, self.features_) if a is not None]
        Z = np.hstack(parts) if len(parts) > 1 else parts[0]
        rng = np.random.default_rng(self.seed)
        is_seed = np.zeros(self.n_, dtype=bool)
        is_seed[seeds] = True
        others = np.flatnonzero(~is_seed)
        n_neg = min(len(others), max(len(seeds) * self.pu_negatives, 1000), 200_000)
        neg = rng.choice(others, n_neg, replace=False)
        rows = np.concatenate([seeds, neg])
        y = np.r_[np.ones(len(seeds)), np.zeros(len(neg))]
        model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=31, min_child_samples=20,
                                   subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                                   scale_pos_weight=len(neg) / len(seeds), random_state=self.seed,
                                   n_jobs=1, verbose=-1)
        model.fit(Z[rows], y)
        return model.predict(Z, raw_score=True)

    # ------------------------------------------------------------- expand
    def expand(self, seeds: Any, k: int, eligible: np.ndarray | None = None,
               method: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top ``k`` rows not in ``seeds`` (and ``eligible`` when given), best first.

        Returns
        -------
        rows, scores, percentiles : ndarray
            Row indices, scores, and each row's score percentile among the eligible
            non-seed population (100 = the most similar).
        """
        scores = np.asarray(self.score(seeds, method), dtype=np.float64)
        mask = np.ones(self.n_, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool).copy()
        if mask.shape != (self.n_,):
            raise ValueError(f"eligible must be a bool mask of shape ({self.n_},)")
        mask[np.asarray(seeds, dtype=np.int64)] = False
        candidates = np.flatnonzero(mask)
        k = int(min(k, len(candidates)))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        cand_scores = scores[candidates]
        top = np.argpartition(-cand_scores, k - 1)[:k]
        top = top[np.lexsort((candidates[top], -cand_scores[top]))]  # ties broken by row: deterministic
        # percentile = share of eligible candidates scoring strictly lower; only the top-k and
        # ties at the cut need counting, so no full sort of the population
        picked = cand_scores[top]
        at_least = np.searchsorted(-picked, -picked, side="right").astype(np.int64)
        at_cut = picked == picked[-1]
        at_least[at_cut] = int((cand_scores >= picked[-1]).sum())
        pct = 100.0 * (len(cand_scores) - at_least) / len(cand_scores)
        return candidates[top], cand_scores[top], pct


class LookalikePopulation(Model):
    """A fitted :class:`Lookalike` with the customer ids of its rows (what training ships).

    Parameters
    ----------
    one_ids : array of str
        Customer id of each row, in the order the model was fitted.
    model : Lookalike
        The fitted scorer.
    index : AnnIndex, optional
        FAISS index over the customer embeddings (similar-customer lookups).
    info : dict
        Provenance: embedding kind, evaluation figures, feature names, model version.
    """

    def __init__(self, one_ids: Any, model: Lookalike, index: Any | None = None, info: dict | None = None) -> None:
        self.one_ids = np.asarray(one_ids).astype(str)
        self.model = model
        self.index = index
        self.info = dict(info or {})
        order = np.argsort(self.one_ids, kind="stable")
        self._sorted = self.one_ids[order]
        self._order = order

    def __len__(self) -> int:
        return len(self.one_ids)

    def rows_of(self, one_ids: Any) -> np.ndarray:
        """Row index of each known id (unknown ids dropped, duplicates kept once)."""
        ids = np.unique(np.asarray(list(one_ids)).astype(str))
        if len(ids) == 0 or len(self._sorted) == 0:
            return np.zeros(0, dtype=np.int64)
        loc = np.clip(np.searchsorted(self._sorted, ids), 0, len(self._sorted) - 1)
        hit = self._sorted[loc] == ids
        return np.sort(self._order[loc[hit]]).astype(np.int64)

    def predict(self, X: Any) -> Any:
        """Scores for every customer given seeds: ``X`` holds seed ``one_id``s (DataFrame or list)."""
        import pandas as pd

        ids = X["one_id"] if isinstance(X, pd.DataFrame) else X
        scores = self.model.score(self.rows_of(ids))
        return pd.DataFrame({"one_id": self.one_ids, "score": scores})
