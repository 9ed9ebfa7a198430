"""EASE (Steck 2019) and portrait's default, a self-tuned EASE with time-window co-occurrence.

EASE learns an item-item matrix ``B`` with zero diagonal in closed form:
``P = (X'X + lam I)^-1``, ``B = -P / diag(P)``; scores are ``x_u B``. With
``dropout = p > 0`` it is DLAE (Steck 2020): the ridge becomes ``lam + p/(1-p) diag(X'X)``
and ``B = I - P diag(lam + ...)`` with a free diagonal that is zeroed for ranking.

:class:`WindowEASE` adds what the plain Gram matrix cannot see: items consumed
*close in time* by the same person. Each user's history, in time order, is cut into
windows of ``window`` events (two interleaved cuttings), and the window-level
co-occurrence ``W'W`` is added to ``X'X`` with weight ``window_weight`` before the
solve. It then adds GF-CF's "ideal low-pass filter" (Shen et al., CIKM 2021): the item-item
projection on the top ``r`` eigenvectors of the degree-normalized item graph
``D_i^-1/2 X' D_u^-1 X D_i^-1/2``, rescaled to B's score spread and weighted by ``a``. EASE fits
each item from the others (local, high-frequency structure); the filter adds the smoothest,
global taste directions that a ridge regression on sparse histories underweights. ``lam``, the
query's recency half-life, ``r`` and ``a`` (0 = off) are chosen on an inner split (random or
temporal per user) of the *training* matrix only, never on a caller's held-out data; the filter
configurations that split cannot tell apart from the best (within one standard error) are averaged.
Asked "what else" (random inner split), it leaves out, per user, items first seen after the
user's last event (:mod:`models.recommenders.availability`) unless that split vetoes it.

Large catalogs: the solve is dense and cubic in the number of items, so only the
``max_items`` most popular items (default 10,000: 0.4 GB float32, about a minute on
2 cores) are modelled; the tail gets scores below every modelled item, ordered by
popularity, and is reached only when filters leave too few modelled items. ``prune``
keeps the largest weights per item column as a sparse matrix ("auto": 256 per item
above 5,000 modelled items), which makes batch scoring at 100k-item scale cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommenders._base import (ScoredRecommender, as_csr, check_item_ids, recency_weights, times_on,
                                       topk_rows)
from models.recommenders._closed_form import closed_form, gram
from models.recommenders._inner import inner_ndcg, inner_split, masked
from models.recommenders.low_pass import (band_terms, check_candidates, low_pass_basis, low_pass_into,
                                           search_low_pass)

TAIL = -1.0e4  # base score of items outside the modelled set: below any EASE score
AUTO_PRUNE, AUTO_PRUNE_FROM = 256, 5_000  # prune="auto": keep 256 weights per item above 5,000 modelled items
LOW_PASS_RANKS = (32, 64, 128)  # WindowEASE's default low-pass candidates


class EASE(ScoredRecommender):
    """Embarrassingly shallow autoencoder (closed form), optionally DLAE and time windows.

    Parameters
    ----------
    lam : float
        L2 regularization on ``B`` (ML100K sweet spot ~500).
    dropout : float
        DLAE dropout probability (0 = plain EASE).
    window : int
        Events per time window (used only when ``fit`` gets ``times``).
    window_weight : float
        Weight of the window co-occurrence added to ``X'X`` (0 = ignore time).
    max_items : int
        Most popular items modelled (dense cubic solve); the rest rank after them.
    prune : int, optional
        Keep only this many largest weights per column (sparse ``B``; fast at scale).
    binary : bool
        Read every interaction as 1 (the reference protocol); else ``weight_mix`` applies.
    weight_mix : float
        With ``binary=False``, an interaction of weight ``w`` counts ``1 - mix + mix * w / w_max``
        (``w_max`` = 99th percentile of the training weights): ratings or event-type weights
        shade the signal without letting one heavy event dominate.
    """

    def __init__(
        self, lam: float = 500.0, dropout: float = 0.0, window: int = 20, window_weight: float = 0.0,
        max_items: int = 10_000, prune: int | str | None = "auto", binary: bool = True, weight_mix: float = 0.8,
    ) -> None:
        self.lam = lam
        self.dropout = dropout
        self.window = window
        self.window_weight = window_weight
        self.max_items = max_items
        self.prune = prune
        self.binary = binary
        self.weight_mix = weight_mix

    def _gram(self, X: sp.csr_matrix, times: sp.csr_matrix | None, weight: float) -> np.ndarray:
        return gram(X, times, weight, self.window)

    def _transform(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """Weights as the model reads them: 1 (binary) or ``1 - mix + mix * w / w_max``."""
        X = X.copy()
        if self.binary:
            X.data[:] = 1.0
        else:
            X.data = ((1.0 - self.weight_mix) + self.weight_mix * np.minimum(X.data / self.weight_scale_, 1.0)
                      ).astype(np.float32)
        return X

    def _query(self, user_items: sp.csr_matrix, times: Any) -> sp.csr_matrix:
        return self._transform(user_items)

    def _solve(self, G: np.ndarray, lam: float, dropout: float) -> np.ndarray:
        return closed_form(G, lam, dropout)

    def _prepare(self, user_items: Any, times: Any) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        X = as_csr(user_items)
        self.weight_scale_ = float(np.quantile(X.data, 0.99)) if X.nnz else 1.0  # robust to a few huge weights
        self.weight_scale_ = self.weight_scale_ if self.weight_scale_ > 0 else 1.0
        X = self._transform(X)
        self.n_items_ = X.shape[1]
        pop = np.asarray((X > 0).sum(axis=0)).ravel().astype(np.float64)
        self.popularity_ = pop
        n_model = min(self.max_items, X.shape[1])
        self.items_ = np.sort(np.argsort(-pop, kind="stable")[:n_model])
        self.tail_ = (TAIL + pop / max(pop.max(), 1.0)).astype(np.float32)
        return X, (times_on(X, times) if times is not None else None)

    def fit(self, user_items: Any, times: Any = None) -> "EASE":
        """Learn ``B`` from ``user_items``; ``times`` (same pattern, event times) enables windows."""
        X, t = self._prepare(user_items, times)
        G = self._gram(X[:, self.items_], t[:, self.items_] if t is not None else None, self.window_weight)
        self._set_b(self._solve(G, self.lam, self.dropout))
        return self

    def _prune_to(self, n_items: int) -> int | None:
        """Weights kept per item column for ``n_items`` modelled items (None = B stays dense)."""
        prune = self.prune
        if prune == "auto":
            prune = AUTO_PRUNE if n_items > AUTO_PRUNE_FROM else None
        return prune if prune is not None and prune < n_items else None

    def _set_b(self, B: np.ndarray) -> None:
        self._kernel_b = None
        prune = self._prune_to(B.shape[0])
        if prune is not None:
            keep = np.argpartition(-np.abs(B), prune - 1, axis=0)[:prune]
            cols = np.repeat(np.arange(B.shape[1])[None, :], prune, axis=0).ravel()
            rows = keep.ravel()
            B = sp.csc_matrix((B[rows, cols], (rows, cols)), shape=B.shape).tocsr()
        self.B_ = B

    def _fast_topk(self, Q: sp.csr_matrix, seen: Any, exclude: Any, allowed: Any, k: int) -> Any:
        if not sp.issparse(self.B_):
            return None
        from models.recommenders._sparse_topk import prepare, sparse_topk

        if getattr(self, "_kernel_b", None) is None:
            self._kernel_b = prepare(self.B_)
        Qm = Q[:, self.items_] if len(self.items_) < self.n_items_ else Q
        return sparse_topk(Qm.tocsr(), self._kernel_b, len(self.items_), k, seen, exclude, allowed)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_kernel_b", None)  # a cache: rebuilt on first use
        return state

    def _candidates(self) -> np.ndarray | None:
        return None if len(self.items_) == self.n_items_ else self.items_

    def _score_candidates(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        s = user_items[:, self.items_] @ self.B_  # the history already went through _query (weights, recency)
        return s.toarray() if sp.issparse(s) else np.asarray(s)

    def _score(self, user_items: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        X = user_items[:, self.items_]
        s = self._score_candidates(user_items)
        if len(self.items_) == self.n_items_:
            return s
        out = np.broadcast_to(self.tail_, (X.shape[0], self.n_items_)).copy()
        out[:, self.items_] = s
        return out

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items that ``items`` predict most strongly (row of ``B``), the item itself excluded."""
        n = self._check_items()
        items = check_item_ids(items, n)
        X = sp.csr_matrix((np.ones(len(items), np.float32), (np.arange(len(items)), items)), shape=(len(items), n))
        s = self._score(X)
        s[np.arange(len(items)), items] = -np.inf
        return topk_rows(s, k)


class WindowEASE(EASE):
    """portrait's default: weighted DLAE + time-window co-occurrence, tuned on an inner split.

    Defaults: interactions shaded by their weight (``weight_mix``), DLAE dropout 0.4, windows of
    20 events with weight 1; ``lam`` (2 candidates) and the query's recency half-life (none, 10,
    30 events) are chosen by inner-split nDCG@k (2 inner solves), then, on the same split, the
    low-pass filter's rank (32, 64, 128) and weight (0, 0.15, 0.3): every configuration whose inner
    nDCG is within ``low_pass_band`` paired standard errors of the best is kept and their filters
    are averaged (a noisy split's winner is partly luck; the band averages what it cannot separate).
    The final fit is 1 solve, plus
    one partial eigendecomposition of an items x items matrix when the filter is chosen. The filter
    is considered only while B stays dense (pruning keeps too little of a low-rank term: with the
    defaults, up to 5,000 modelled items).

    Parameters
    ----------
    lams : tuple of float
        Candidate ``lam`` values, as multiples of the mean diagonal of ``X'X`` (scale-free).
    window_weights : tuple of float
        Candidate weights of the window Gram; the default keeps windows on (one solve per
        candidate: ``(0.0, 1.0)`` lets the inner split decide at the price of two more solves).
    inner : {"random", "temporal"}
        Inner validation split: per-user random, or each user's latest events (needs ``times``);
        match it to the question asked (random for "what else", temporal for "what next").
    inner_fraction, seed : float, int
        Share of each user's training events held out for the inner validation, and its seed.
    half_lives : tuple of float or None
        Candidate recency half-lives (in events) for weighting the query history at
        recommend time (None = no decay); chosen on the same inner split. Used only when
        ``recommend`` gets ``times``.
    k : int
        Cut-off of the inner nDCG used to choose.
    low_pass_ranks, low_pass_weights : tuple
        Candidate ranks and weights of the low-pass filter (weight 0 = no filter; ranks at or
        above the matrix's smaller side are skipped). The weight is relative: ``a = 0.3`` adds
        a filter whose typical per-user score spread is 30% of B's.
    low_pass_band : float
        Filter configurations within this many standard errors of the best inner nDCG (per-user
        paired differences) are averaged, "off" counting as a filter of weight 0; 0 keeps the single best.
    availability : bool
        With ``inner="random"`` ("what else") and times: leave out, per user, items first seen after
        the user's last event, unless the inner split scores that lower (:mod:`.availability`). Off by
        default (a served model must show what launched since a customer's last visit); the evaluation's
        "what else" default (``training.recommender_eval.default_model``) turns it on.
    tune_users, tune_items : int
        The inner search runs on at most this many users (random sample) and most popular items;
        the final solve uses every modelled item and user. Each candidate is scored on at most
        ``_inner.EVAL_USERS`` (10,000) validation users.
    """

    def __init__(
        self, lams: tuple[float, ...] = (4.0, 8.0), window_weights: tuple[float, ...] = (1.0,),
        window: int = 20, dropout: float = 0.4, max_items: int = 10_000, prune: int | str | None = "auto",
        binary: bool = False, weight_mix: float = 0.8,
        inner: str = "random", inner_fraction: float = 0.25, seed: int = 0, k: int = 10,
        half_lives: tuple[float | None, ...] = (None, 10.0, 30.0), tune_users: int = 50_000, tune_items: int = 3_000,
        low_pass_ranks: tuple[int, ...] = LOW_PASS_RANKS, low_pass_weights: tuple[float, ...] = (0.0, 0.15, 0.3),
        low_pass_band: float = 1.0, availability: bool = False,
    ) -> None:
        super().__init__(dropout=dropout, window=window, max_items=max_items, prune=prune, binary=binary,
                         weight_mix=weight_mix)
        self.lams = lams
        self.inner = inner
        self.window_weights = window_weights
        self.inner_fraction = inner_fraction
        self.seed = seed
        self.k = k
        self.half_lives = half_lives
        self.tune_users = tune_users
        self.tune_items = tune_items
        self.low_pass_ranks = low_pass_ranks
        self.low_pass_weights = low_pass_weights
        self.low_pass_band = low_pass_band
        self.availability = availability

    def __setstate__(self, state: dict) -> None:
        # models pickled before the low-pass stage existed had none: keep them (and refits of their
        # configuration by the promotion gate) exactly as they were
        state.setdefault("low_pass_ranks", LOW_PASS_RANKS)
        state.setdefault("low_pass_weights", (0.0,))
        state.setdefault("low_pass_band", 0.0)  # pickled before the band: the single best, as fitted then
        state.setdefault("availability", False)
        state.setdefault("first_seen_", None)
        if "B_" in state:
            state.setdefault("low_pass_rank_", 0)
            state.setdefault("low_pass_weight_", 0.0)
            rank, weight = state["low_pass_rank_"], state["low_pass_weight_"]
            state.setdefault("low_pass_terms_", ((rank, weight),) if weight > 0 else ())
        self.__dict__.update(state)

    def _query(self, user_items: sp.csr_matrix, times: Any) -> sp.csr_matrix:
        user_items = self._transform(user_items)
        if times is None or getattr(self, "half_life_", None) is None:
            return user_items
        return user_items.multiply(recency_weights(times_on(user_items, times), self.half_life_)).tocsr()

    def recommend(self, user_items: Any, k: int = 10, exclude_seen: bool = True, allowed: np.ndarray | None = None,
                  users: np.ndarray | None = None, exclude: Any = None, times: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`ScoredRecommender.recommend`, without items first seen after each row's last event when
        the inner split chose that (``first_seen_``; needs ``times``)."""
        base = super().recommend
        if getattr(self, "first_seen_", None) is None or times is None:
            return base(user_items, k=k, exclude_seen=exclude_seen, allowed=allowed, users=users, exclude=exclude,
                        times=times)
        from models.recommenders.availability import within_window

        return within_window(base, self.first_seen_, as_csr(user_items, self._check_items()), times, k,
                             exclude_seen=exclude_seen, allowed=allowed, exclude=exclude)

    def fit(self, user_items: Any, times: Any = None) -> "WindowEASE":
        """Choose ``lam``, ``window_weight``, the half-life and the low-pass filter on an inner split, refit on all."""
        X, t = self._prepare(user_items, times)
        Xm = X[:, self.items_]
        tm = t[:, self.items_] if t is not None else None
        weights = self.window_weights if tm is not None else (0.0,)
        if self.inner not in ("random", "temporal"):
            raise ValueError(f"inner must be 'random' or 'temporal', got {self.inner!r}")
        if self.inner == "temporal" and tm is None:
            raise ValueError("inner='temporal' needs times")
        check_candidates(self.low_pass_ranks, self.low_pass_weights, self.low_pass_band)
        # large data: tune on a sample of users and the most popular items (the choice is scale-free)
        rng = np.random.default_rng(self.seed)
        rows = (np.arange(Xm.shape[0]) if Xm.shape[0] <= self.tune_users
                else np.sort(rng.choice(Xm.shape[0], self.tune_users, replace=False)))
        pop = np.asarray((Xm > 0).sum(axis=0)).ravel()
        cols = (np.arange(Xm.shape[1]) if Xm.shape[1] <= self.tune_items
                else np.sort(np.argsort(-pop, kind="stable")[: self.tune_items]))
        Xs = Xm[rows][:, cols]
        ts = tm[rows][:, cols] if tm is not None else None
        fit_mask, val_mask = inner_split(Xs, self.inner_fraction, self.seed, ts if self.inner == "temporal" else None)
        Xf, Xv = masked(Xs, fit_mask), masked(Xs, val_mask)
        tf = masked(ts, fit_mask) if ts is not None else None
        scale = float(Xf.power(2).sum() / Xf.shape[1]) or 1.0  # mean diagonal of the Gram: lams are scale-free
        lives = self.half_lives if tm is not None else (None,)
        queries = {h: Xf if h is None else Xf.multiply(recency_weights(tf, h)).tocsr() for h in lives}
        self.search_, solved = [], {}
        for w in weights:
            G = self._gram(Xf, tf, w)
            for c in self.lams:
                B = solved[c, w] = self._solve(G.copy(), c * scale, self.dropout)
                for h, q in queries.items():
                    self.search_.append((c, w, h, inner_ndcg(q, Xv, B, self.k)))
        best_c, best_w, best_h, best = max(self.search_, key=lambda r: r[3])
        B = solved[best_c, best_w]
        del solved
        # second stage, on the same inner split: the low-pass filter's rank and weight (0 = off). Not
        # when B will be pruned: a dense low-rank term spreads over every weight, and keeping the 256
        # largest per item left 11-14% of it (it then scored below no filter on MovieLens)
        ranks = [r for r in self.low_pass_ranks if 0 < r < min(Xf.shape)]
        weights_lp = [a for a in self.low_pass_weights if a > 0] if self._prune_to(len(self.items_)) is None else []
        self.low_pass_search_, per_user = search_low_pass(Xf, Xv, queries[best_h], B, best, ranks, weights_lp,
                                                          self.k, self.seed)
        # the best, and the average of what the split cannot tell from it: of the 7 default candidates the
        # band kept 4-5 on 3 of the 4 MovieLens benchmark splits (test nDCG +0.001 to +0.003, MAP +0.001)
        # and 1 on the 4th and on the synthetic events, where one filter clearly wins
        rank, alpha, self.low_pass_terms_ = band_terms(self.low_pass_search_, per_user, self.low_pass_band)
        self.first_seen_ = None  # "what else": items first seen after a user's last event left out, if it helps
        if self.availability and self.inner == "random" and tf is not None:
            from models.recommenders.availability import first_seen, keep_window

            if keep_window(queries[best_h], Xf, Xv, B, tf, self.k):
                self.first_seen_ = first_seen(t)
        full_scale = float(Xm[:, cols].power(2).sum() / len(cols)) or 1.0  # same columns, all the data
        self.lam_, self.window_weight_, self.half_life_ = best_c * full_scale, best_w, best_h
        self.low_pass_rank_, self.low_pass_weight_ = rank, alpha
        B = self._solve(self._gram(Xm, tm, best_w), self.lam_, self.dropout)
        if self.low_pass_terms_:
            top = max(r for r, _ in self.low_pass_terms_)
            low_pass_into(B, Xm, *low_pass_basis(Xm, top, self.seed), self.low_pass_terms_)
        self._set_b(B)
        return self
