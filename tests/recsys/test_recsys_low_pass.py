"""The low-pass filter of ``window_ease`` (GF-CF's ideal low-pass): its algebra, both eigen-solvers, its selection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.recommenders import low_pass
from models.recommenders.low_pass import low_pass_basis, low_pass_factors, low_pass_into


def clustered(n_users: int = 300, n_items: int = 60, seed: int = 0) -> sp.csr_matrix:
    """Three taste clusters of items plus noise: a graph with a clear low-frequency structure."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n_users)
    rows, cols = [], []
    for u in range(n_users):
        own = np.arange(group[u] * 20, group[u] * 20 + 20)
        picks = np.concatenate([rng.choice(own, 6, replace=False), rng.choice(n_items, 2, replace=False)])
        rows += [u] * len(picks)
        cols += list(picks)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    X.data[:] = 1.0
    return X


def normalized_item_graph(X: sp.csr_matrix) -> np.ndarray:
    du, di = np.asarray(X.sum(1)).ravel(), np.asarray(X.sum(0)).ravel()
    R = np.diag(1 / np.sqrt(du)) @ X.toarray() @ np.diag(1 / np.sqrt(di))
    return R.T @ R


def test_basis_spans_the_top_eigenvectors_with_either_solver(monkeypatch):
    X = clustered()
    w, vecs = np.linalg.eigh(normalized_item_graph(X))
    top = vecs[:, ::-1][:, :3]  # the 3 clusters
    dense, di = low_pass_basis(X, 3, seed=0)
    monkeypatch.setattr(low_pass, "DENSE_MAX", 10)  # force the randomized path on the same matrix
    rand, di2 = low_pass_basis(X, 3, seed=0)
    assert np.allclose(di, np.asarray(X.sum(0)).ravel()) and np.allclose(di, di2)
    for V in (dense, rand):
        cosines = np.linalg.svd(top.T @ V.T, compute_uv=False)  # principal angles between the subspaces
        assert cosines.min() > 0.999


def test_factors_are_the_filter_and_adding_keeps_b_diagonal():
    X = clustered()
    V, di = low_pass_basis(X, 4, seed=0)
    left, right = low_pass_factors(V, di)
    expected = np.diag(di ** -0.5) @ V.T @ V @ np.diag(di ** 0.5)
    assert np.allclose(left @ right, expected, atol=1e-5)
    B = np.random.default_rng(1).random((60, 60)).astype(np.float32)
    np.fill_diagonal(B, 0.0)
    before = B.copy()
    low_pass_into(B, X, V, di, weight=0.5)
    assert np.all(np.diag(B) == 0.0)
    added = (B - before)[~np.eye(60, dtype=bool)]
    assert np.allclose(added / expected[~np.eye(60, dtype=bool)], added[0] / expected[~np.eye(60, dtype=bool)][0],
                       rtol=1e-3)  # one positive multiple of the filter
    assert added[0] / expected[~np.eye(60, dtype=bool)][0] > 0


def test_filter_alone_recovers_a_cluster_from_one_item():
    X = clustered()
    V, di = low_pass_basis(X, 3, seed=0)
    left, right = low_pass_factors(V, di)
    q = np.zeros(60, np.float32)
    q[5] = 1.0  # an item of cluster 0
    s = q @ left @ right
    s[5] = -np.inf
    assert set(np.argsort(-s)[:10]) <= set(range(20))


@pytest.mark.parametrize("weights", [(0.0,), (0.0, 0.3)])
def test_window_ease_records_and_applies_its_choice(weights):
    from models.recommenders import make

    X = clustered()
    m = make("window_ease", low_pass_ranks=(3, 8), low_pass_weights=weights, low_pass_band=0.0).fit(X)
    plain = make("window_ease", low_pass_weights=(0.0,)).fit(X)  # same first stage, no filter
    assert len(m.low_pass_search_) == 1 + (2 if 0.3 in weights else 0)
    assert (m.lam_, m.half_life_) == (plain.lam_, plain.half_life_)
    if weights == (0.0,):  # off: exactly the model without the stage
        assert m.low_pass_weight_ == 0.0 and np.array_equal(m.B_, plain.B_)
        return
    # on this clustered data the inner split prefers the rank-3 filter (the 3 clusters) ...
    assert (m.low_pass_rank_, m.low_pass_weight_) == (3, 0.3) and m.low_pass_terms_ == ((3, 0.3),)
    assert max(m.low_pass_search_, key=lambda r: r[2])[:2] == (3, 0.3)
    # ... and the fitted B is the plain B plus exactly that filter: rank 3, weight 0.3, B's scale
    Xm = m._transform(X)[:, m.items_]
    expected = plain.B_.copy()
    low_pass_into(expected, Xm, *low_pass_basis(Xm, 3, m.seed), 0.3)
    assert np.allclose(m.B_, expected, atol=1e-6)
    other = plain.B_.copy()
    low_pass_into(other, Xm, *low_pass_basis(Xm, 8, m.seed), 0.3)
    assert not np.allclose(m.B_, other, atol=1e-4)  # the rank matters


def test_filter_scale_follows_b():
    """The filter is added at a fixed share of B's per-user score spread, whatever B's own scale."""
    X = clustered()
    V, di = low_pass_basis(X, 3, seed=0)
    rng = np.random.default_rng(2)
    B = rng.random((60, 60)).astype(np.float32)
    np.fill_diagonal(B, 0.0)
    added = []
    for factor in (1.0, 10.0):
        Bc = B * np.float32(factor)
        low_pass_into(Bc, X, V, di, weight=0.3)
        added.append(Bc - B * np.float32(factor))
    assert np.allclose(added[1], 10.0 * added[0], rtol=1e-3, atol=1e-5)
    Q = X.toarray().astype(np.float32)
    spread_b = (Q @ B).std(axis=1).mean()
    spread_added = (Q @ added[0]).std(axis=1).mean()
    assert 0.2 < spread_added / spread_b < 0.4  # 0.3 of B's spread (the diagonal, kept at 0, shifts it a little)


def test_no_filter_when_b_is_pruned():
    """A pruned B keeps too little of a dense low-rank term: the filter is not even considered."""
    from models.recommenders import make

    X = clustered()
    m = make("window_ease", low_pass_ranks=(3,), low_pass_weights=(0.0, 0.3), prune=20).fit(X)
    assert m.low_pass_search_ == [m.low_pass_search_[0]] and m.low_pass_weight_ == 0.0


def test_histories_too_short_to_validate_keep_the_first_candidates():
    """Nobody has enough events for an inner validation event: no crash, the first candidates are used."""
    from models.recommenders import make

    X = sp.csr_matrix((np.ones(40, np.float32), (np.repeat(np.arange(20), 2), np.arange(40) % 10)), shape=(20, 10))
    m = make("window_ease", low_pass_ranks=(2,), low_pass_weights=(0.0, 0.3)).fit(X)
    assert m.low_pass_weight_ == 0.0 and m.lam_ > 0
    ids, _ = m.recommend(X[:3], k=2)
    assert ids.shape == (3, 2)


def test_a_model_pickled_before_the_filter_keeps_its_configuration():
    """A champion saved by an earlier portrait had no filter: unpickled (and refitted by the gate) it still has none."""
    import pickle

    from models.recommenders import make
    from training.recommender import _unfitted

    m = make("window_ease").fit(clustered())
    state = {k: v for k, v in vars(m).items() if "low_pass" not in k}  # what an older version pickled
    old = pickle.loads(pickle.dumps(m))
    old.__dict__.clear()
    old.__setstate__(dict(state))
    assert old.low_pass_weights == (0.0,) and old.low_pass_weight_ == 0.0 and old.low_pass_terms_ == ()
    assert _unfitted(old).low_pass_weights == (0.0,)
    assert old.low_pass_band == 0.0 and _unfitted(old).low_pass_band == 0.0
    assert _unfitted(m).low_pass_weights == m.low_pass_weights  # a current model keeps its own grid


def test_a_model_pickled_before_the_band_keeps_its_single_filter():
    """Pickled with one chosen filter and no band: that filter is its term, and a refit keeps the single best."""
    import pickle

    from models.recommenders import make
    from training.recommender import _unfitted

    m = make("window_ease", low_pass_ranks=(3, 8), low_pass_weights=(0.0, 0.3), low_pass_band=0.0).fit(clustered())
    state = {k: v for k, v in vars(m).items() if k not in ("low_pass_band", "low_pass_terms_")}
    old = pickle.loads(pickle.dumps(m))
    old.__dict__.clear()
    old.__setstate__(dict(state))
    assert old.low_pass_terms_ == ((3, 0.3),) and old.low_pass_band == 0.0
    assert _unfitted(old).low_pass_band == 0.0


def test_band_keeps_the_best_first_and_what_the_split_cannot_separate():
    from models.recommenders._inner import within_band

    rng = np.random.default_rng(0)
    best = rng.random(400)
    noise = rng.normal(0.0, 0.05, 400)
    noisy = best - (noise - noise.mean() + 0.001)  # 0.001 below, standard error 0.0025: kept
    worse = best - 0.2  # clearly below: dropped at any sensible band
    assert within_band([noisy, worse, best], 1.0)[0] == 2  # the best first, whatever its position
    assert sorted(within_band([noisy, worse, best], 1.0)) == [0, 2]
    assert within_band([noisy, worse, best], 0.0) == [2]  # band 0: the single best (nothing ties here)
    assert within_band([best, best.copy()], 0.0) == [0, 1]  # exact ties are always in
    assert within_band([np.zeros(0), np.zeros(0)], 1.0) == [0, 1]  # nobody validated: all tie


def test_terms_are_each_scaled_against_b_on_entry_and_summed():
    X = clustered()
    V, di = low_pass_basis(X, 8, seed=0)
    B = np.random.default_rng(3).random((60, 60)).astype(np.float32)
    np.fill_diagonal(B, 0.0)
    both = B.copy()
    low_pass_into(both, X, V, di, ((3, 0.1), (8, 0.2)))
    expected = B.copy()
    for rank, w in ((3, 0.1), (8, 0.2)):
        one = B.copy()
        low_pass_into(one, X, V[:rank], di, w)  # a float weight: the filter on every given row
        expected += one - B
    assert np.allclose(both, expected, atol=1e-5) and np.all(np.diag(both) == 0.0)


@pytest.mark.parametrize("band", [0.0, 1.0, 1e9])
def test_window_ease_adds_the_average_of_the_band(band):
    """B is the plain B plus the mean filter of the configurations in the band ("off" counting as 0)."""
    from models.recommenders import make

    X = clustered()
    m = make("window_ease", low_pass_ranks=(3, 8), low_pass_weights=(0.0, 0.15, 0.3), low_pass_band=band).fit(X)
    plain = make("window_ease", low_pass_weights=(0.0,)).fit(X)
    search = m.low_pass_search_
    assert (m.low_pass_rank_, m.low_pass_weight_) == max(search, key=lambda r: r[2])[:2]  # the best is reported
    if band == 1e9:  # everything is in: each filter at weight / 5 (5 configurations, "off" one of them)
        assert sorted(m.low_pass_terms_) == sorted((r, a / 5) for r, a, _ in search if a > 0)
    if band == 0.0:
        assert m.low_pass_terms_ == ((m.low_pass_rank_, m.low_pass_weight_),)
    Xm = m._transform(X)[:, m.items_]
    expected = plain.B_.copy()
    low_pass_into(expected, Xm, *low_pass_basis(Xm, max(r for r, _ in m.low_pass_terms_), m.seed), m.low_pass_terms_)
    assert np.allclose(m.B_, expected, atol=1e-6)


@pytest.mark.parametrize("params, message", [
    ({"low_pass_ranks": (32, 0)}, "low_pass_ranks.*positive integers.*0"),
    ({"low_pass_ranks": (2.5,)}, "low_pass_ranks.*2.5"),
    ({"low_pass_weights": (0.0, -0.1)}, "low_pass_weights.*-0.1"),
    ({"low_pass_weights": (float("nan"),)}, "low_pass_weights.*nan"),
    ({"low_pass_band": -1.0}, "low_pass_band.*-1.0"),
    ({"low_pass_band": float("nan")}, "low_pass_band.*nan"),
    ({"low_pass_band": "1"}, "low_pass_band.*'1'"),
])
def test_bad_low_pass_candidates_are_named(params, message):
    from models.recommenders import make

    with pytest.raises(ValueError, match=message):
        make("window_ease", **params).fit(clustered())
