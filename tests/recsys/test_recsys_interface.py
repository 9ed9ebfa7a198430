"""One interface test mixin run over every recommender on tiny hand-built data (STYLE.md 9)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from models.base import NotFittedError, Recommender
from models.recommenders import make

# two taste clusters: users 0-5 take items 0-5, users 6-11 take items 6-11; item 12 is unseen
N_USERS, N_ITEMS = 12, 13


def tiny() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(N_USERS):
        base = 0 if u < 6 else 6
        picks = rng.choice(6, size=4, replace=False) + base
        rows += [u] * 4
        cols += picks.tolist()
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))


def times_of(X: sp.csr_matrix) -> sp.csr_matrix:
    T = X.copy()
    T.data = np.arange(1, X.nnz + 1, dtype=np.float64)
    return T


PARAMS = {"als": {"factors": 4, "iterations": 5}, "bpr": {"factors": 4, "iterations": 50},
          "item_knn": {"neighbours": 5}, "item_cosine": {"neighbours": 5}}


class RecommenderInterfaceMixin:
    """Checks every recommender must pass; subclasses set ``name``."""

    name = ""
    personal = True  # recommendations follow the user's history

    def model(self) -> Recommender:
        return make(self.name, **PARAMS.get(self.name, {}))

    def fitted(self) -> Recommender:
        return self.model().fit(tiny())

    def test_fit_returns_self_and_unfitted_raises(self):
        m = self.model()
        with pytest.raises(NotFittedError):
            m.recommend(tiny(), k=3)
        assert m.fit(tiny()) is m

    def test_shapes_order_and_no_seen_items(self):
        X = tiny()
        ids, scores = self.fitted().recommend(X, k=4)
        assert ids.shape == scores.shape == (N_USERS, 4)
        assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
        for u in range(N_USERS):
            assert not set(ids[u]) & set(X[u].indices)

    def test_allowed_mask_is_never_violated_and_pads_with_minus_one(self):
        allowed = np.zeros(N_ITEMS, bool)
        allowed[[0, 7, 12]] = True
        ids, scores = self.fitted().recommend(tiny(), k=5, allowed=allowed, exclude_seen=False)
        assert set(ids.ravel()) <= {0, 7, 12, -1}
        assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()

    def test_exclude_matrix_removes_items(self):
        X = tiny()
        ex = sp.csr_matrix((np.ones(N_USERS), (np.arange(N_USERS), np.full(N_USERS, 12))), shape=X.shape)
        ids, _ = self.fitted().recommend(X, k=N_ITEMS, exclude=ex)
        assert not (ids == 12).any()

    def test_cold_user_with_empty_history_gets_items(self):
        empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
        ids, _ = self.fitted().recommend(empty, k=3)
        assert ids.shape == (1, 3)

    def test_wrong_width_and_negative_weights_are_rejected(self):
        m = self.fitted()
        with pytest.raises(ValueError, match="item columns"):
            m.recommend(sp.csr_matrix((1, N_ITEMS + 1)), k=3)
        with pytest.raises(ValueError, match="non-negative"):
            m.recommend(-tiny(), k=3)

    def test_similar_items_excludes_self_and_unknown_item_raises(self):
        m = self.fitted()
        ids, _ = m.similar_items(np.array([0, 6]), k=3)
        assert ids.shape == (2, 3) and 0 not in ids[0] and 6 not in ids[1]
        with pytest.raises(KeyError, match="unknown item"):
            m.similar_items([N_ITEMS + 5], k=3)

    def test_save_load_round_trip(self, tmp_path):
        m = self.fitted()
        path = m.save(tmp_path / "model.pkl")
        again = type(m).load(path)
        np.testing.assert_array_equal(m.recommend(tiny(), k=3)[0], again.recommend(tiny(), k=3)[0])

    def test_directional_cluster_taste(self):
        if not self.personal:
            pytest.skip("not a personalized model")
        ids, _ = self.fitted().recommend(tiny(), k=2)
        same = [(ids[u] < 6).all() if u < 6 else ((ids[u] >= 6) & (ids[u] < 12)).all() for u in range(N_USERS)]
        assert np.mean(same) >= 0.75


class TestWindowEASE(RecommenderInterfaceMixin):
    name = "window_ease"

    def test_times_are_used_and_choice_recorded(self):
        X = tiny()
        m = make("window_ease").fit(X, times=times_of(X))
        assert {"lam_", "window_weight_", "half_life_", "low_pass_rank_", "low_pass_weight_"} <= set(vars(m))
        assert len(m.search_) == len(m.lams) * len(m.window_weights) * len(m.half_lives)
        # the low-pass stage: "off" plus every usable rank x non-zero weight, the winner is what was fitted
        ranks = [r for r in m.low_pass_ranks if r < min(X.shape)]
        assert len(m.low_pass_search_) == 1 + len(ranks) * sum(a > 0 for a in m.low_pass_weights)
        best = max(m.low_pass_search_, key=lambda r: r[2])
        assert (m.low_pass_rank_, m.low_pass_weight_) == best[:2]
        # what was added: the band's filters, each at its weight over the band's size
        assert all(r in ranks and 0 < a <= max(m.low_pass_weights) for r, a in m.low_pass_terms_)
        ids, _ = m.recommend(X, k=3, times=times_of(X))
        assert ids.shape == (N_USERS, 3)


class TestEASE(RecommenderInterfaceMixin):
    name = "ease"

    def test_catalog_limit_ranks_tail_after_modelled_items(self):
        m = make("ease", lam=1.0, max_items=6).fit(tiny())
        assert len(m.items_) == 6
        ids, _ = m.recommend(tiny(), k=N_ITEMS, exclude_seen=False)
        modelled = set(m.items_.tolist())
        first = [i for i in ids[0] if i in modelled]
        assert list(ids[0][: len(first)]) == first  # all modelled items come before the tail

    def test_pruned_matrix_is_sparse_and_still_ranks(self):
        m = make("ease", lam=1.0, prune=3).fit(tiny())
        assert sp.issparse(m.B_) and m.B_.getnnz(axis=0).max() <= 3
        assert m.recommend(tiny(), k=2)[0].shape == (N_USERS, 2)


class TestDLAE(RecommenderInterfaceMixin):
    name = "dlae"


class TestALS(RecommenderInterfaceMixin):
    name = "als"
    personal = False  # 12 users are too few for a stable factorization check

    def test_known_users_use_learned_factors(self):
        m = self.fitted()
        a = m.recommend(tiny(), k=3, users=np.arange(N_USERS))[0]
        assert a.shape == (N_USERS, 3)


class TestBPR(RecommenderInterfaceMixin):
    name = "bpr"
    personal = False


class TestItemKNN(RecommenderInterfaceMixin):
    name = "item_knn"


class TestItemCosine(RecommenderInterfaceMixin):
    name = "item_cosine"


class TestPopularity(RecommenderInterfaceMixin):
    name = "popularity"
    personal = False


class TestSegmentPopularity(RecommenderInterfaceMixin):
    name = "segment_popularity"
    personal = False

    def test_segments_drive_cold_start(self):
        X = tiny()
        seg = np.array([0] * 6 + [1] * 6)
        m = make("segment_popularity", shrinkage=1.0).fit(X, segments=seg)
        ids, _ = m.recommend_segments([0, 1, -1, 99], k=3)
        assert (ids[0] < 6).all() and (ids[1] >= 6).all()
        np.testing.assert_array_equal(ids[2], ids[3])  # unknown segments fall back to global


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["window_ease", "ease", "item_knn", "popularity", "als"]),
    allowed=st.lists(st.booleans(), min_size=N_ITEMS, max_size=N_ITEMS),
    exclude_seen=st.booleans(),
    k=st.integers(1, N_ITEMS + 2),
    extra=st.lists(st.integers(0, N_ITEMS - 1), max_size=4),
)
def test_filters_and_exclusions_never_violated(name, allowed, exclude_seen, k, extra):
    X = tiny()
    allowed = np.array(allowed)
    ex = sp.csr_matrix((np.ones(len(extra)), (np.zeros(len(extra), int), extra)), shape=(1, N_ITEMS))
    ex = sp.vstack([ex, sp.csr_matrix((N_USERS - 1, N_ITEMS))]).tocsr()
    ids, scores = _fitted(name).recommend(X, k=k, allowed=allowed, exclude_seen=exclude_seen, exclude=ex)
    assert ids.shape == (N_USERS, k)
    for u in range(N_USERS):
        got = ids[u][ids[u] >= 0]
        assert len(set(got)) == len(got)
        assert allowed[got].all()
        if exclude_seen:
            assert not set(got) & set(X[u].indices)
        if u == 0:
            assert not set(got) & set(extra)
        n_ok = allowed.sum() - (len(set(X[u].indices) & set(np.flatnonzero(allowed))) if exclude_seen else 0)
        assert len(got) <= n_ok


_CACHE: dict[str, Recommender] = {}


def _fitted(name: str) -> Recommender:
    if name not in _CACHE:
        _CACHE[name] = make(name, **PARAMS.get(name, {})).fit(tiny())
    return _CACHE[name]
