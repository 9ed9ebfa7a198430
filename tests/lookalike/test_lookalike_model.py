"""Lookalike model: every method finds the seed's group, seeds never come back, reach and filters hold."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.lookalike import Lookalike, SeedTooSmall


@pytest.fixture(scope="module")
def population():
    """600 customers in 3 interest groups; each group favours its own 20 of 60 items."""
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1, 2], 200)
    prefs = np.full((3, 60), 0.02)
    for g in range(3):
        prefs[g, g * 20:(g + 1) * 20] = 0.25
    X = sp.csr_matrix((rng.random((600, 60)) < prefs[group]).astype(np.float64))
    emb = np.eye(3)[group] + 0.6 * rng.normal(size=(600, 3))
    feats = np.c_[group == 1, rng.normal(size=600)].astype(np.float32)
    return X, emb, feats, group


def fitted(population, **kw) -> Lookalike:
    X, emb, feats, _ = population
    return Lookalike(seed=1, **kw).fit(embeddings=emb, interactions=X, features=feats)


@pytest.mark.parametrize("method", ["centroid", "knn", "items", "pu"])
def test_each_method_recovers_the_seed_group(population, method):
    group = population[3]
    seeds = np.flatnonzero(group == 1)[:60]
    rows, scores, pct = fitted(population).expand(seeds, k=100, method=method)
    assert not np.isin(rows, seeds).any()
    assert (group[rows] == 1).mean() >= 0.8
    assert np.all(np.diff(scores) <= 0) and np.all(np.diff(pct) <= 1e-9)
    assert 0 <= pct.min() and pct.max() <= 100


def test_reach_and_eligibility_filter(population):
    group = population[3]
    seeds = np.flatnonzero(group == 0)[:80]
    eligible = np.zeros(600, dtype=bool)
    eligible[::2] = True
    rows, _, _ = fitted(population).expand(seeds, k=50, eligible=eligible)
    assert len(rows) == 50 and eligible[rows].all() and not np.isin(rows, seeds).any()
    rows, _, _ = fitted(population).expand(seeds, k=10_000)
    assert len(rows) == 600 - 80  # reach capped by the eligible non-seed population


def test_minimum_seed_size_is_a_clear_error(population):
    with pytest.raises(SeedTooSmall, match="seed has 49 customers; at least 50"):
        fitted(population).expand(np.arange(49), k=10)
    rows, _, _ = fitted(population, min_seeds=10).expand(np.arange(10), k=5)
    assert len(rows) == 5


def test_auto_picks_by_seed_size(population):
    model = fitted(population, classifier_min_seeds=100)
    assert model.resolve_method(60) == "items"
    assert model.resolve_method(150) == "pu"
    emb_only = Lookalike().fit(embeddings=population[1])
    assert emb_only.resolve_method(60) == "centroid"
    with pytest.raises(ValueError, match="needs interactions"):
        emb_only.score(np.arange(60), method="items")


def test_deterministic_with_fixed_seed(population):
    seeds = np.flatnonzero(population[3] == 2)[:70]
    for method in ("items", "pu"):
        a = fitted(population).expand(seeds, k=40, method=method)
        b = fitted(population).expand(seeds, k=40, method=method)
        assert (a[0] == b[0]).all() and np.allclose(a[1], b[1])


def test_self_validation_stays_on_the_seeds(population):
    model = fitted(population)
    seeds = np.flatnonzero(population[3] == 1)[:60]
    model.score(seeds, method="items")
    assert model.last_lambda_ in model.validation_auc_
    assert max(model.validation_auc_.values()) > 0.8
