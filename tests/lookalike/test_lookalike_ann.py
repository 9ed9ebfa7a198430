"""AnnIndex: exact results, exclusions and filters honoured, recall measured, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from models.ann import AnnIndex


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(40, 16))
    return (centers[rng.integers(0, 40, 8000)] + 0.3 * rng.normal(size=(8000, 16))).astype(np.float32)


def _brute(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(qn @ xn.T), axis=1)[:, :k]


def test_flat_matches_brute_force_cosine(clustered):
    index = AnnIndex().fit(clustered)
    assert index.kind_ == "flat"
    ids, scores = index.search(clustered[:20], k=10)
    assert (np.sort(ids, 1) == np.sort(_brute(clustered, clustered[:20], 10), 1)).all()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)  # a vector is its own nearest neighbour


def test_auto_switches_to_ivf_and_reaches_target_recall(clustered):
    index = AnnIndex(exact_max=1000, target_recall=0.95).fit(clustered)
    assert index.kind_ == "ivf"
    assert index.recall_vs_exact(k=10, n_queries=300) >= 0.9  # held-out queries, not the calibration ones


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_exclusion_and_allowed_mask_are_respected(clustered, kind):
    x = clustered[:3000]
    ext = np.arange(len(x)) * 2 + 100  # external ids differ from positions
    index = AnnIndex(kind=kind, hnsw_m=16).fit(x, ids=ext)
    banned = ext[:500]
    ids, _ = index.search(x[:10], k=50, exclude=banned)
    assert not np.isin(ids, banned).any()
    allowed = np.zeros(len(x), dtype=bool)
    allowed[1000:2000] = True
    ids, _ = index.search(x[:10], k=20, allowed=allowed)
    got = ids[ids >= 0]
    assert len(got) > 0 and np.isin(got, ext[1000:2000]).all()


def test_per_query_exclusion(clustered):
    index = AnnIndex().fit(clustered)
    first, _ = index.search(clustered[:2], k=5)
    ids, _ = index.search(clustered[:2], k=5, exclude=[first[0][:3], []])
    assert not np.isin(ids[0], first[0][:3]).any()
    assert (ids[1] == first[1]).all()


def test_save_load_roundtrip(tmp_path, clustered):
    index = AnnIndex(kind="ivf").fit(clustered)
    path = index.save(tmp_path / "ann.pkl")
    loaded = AnnIndex.load(path)
    a, _ = index.search(clustered[:30], k=10)
    b, _ = loaded.search(clustered[:30], k=10)
    assert (a == b).all() and loaded.search_param_ == index.search_param_


def test_bad_input_errors(clustered):
    with pytest.raises(ValueError, match="metric"):
        AnnIndex(metric="l3").fit(clustered)
    with pytest.raises(ValueError, match="unique"):
        AnnIndex().fit(clustered[:3], ids=[1, 1, 2])
    index = AnnIndex().fit(clustered)
    with pytest.raises(ValueError, match="dim"):
        index.search(np.zeros((1, 3)), k=1)
    with pytest.raises(ValueError, match="NaN"):
        AnnIndex().fit(np.full((2, 2), np.nan))
