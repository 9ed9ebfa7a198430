"""Ranking metrics and splitters checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from training.evaluation.ranking import hit_matrix, ranking_metrics
from training.evaluation.splits import global_temporal_split, random_split, split_matrices, temporal_split


def _rel(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_metrics_match_hand_computed_values():
    # user 0: recs [1, 2, 3], relevant {1, 3, 7}: hits at ranks 1 and 3
    # user 1: recs [4, 5, -1], relevant {6}: no hit
    # user 2: recs [9, 8, 7], relevant {} -> not averaged
    ids = np.array([[1, 2, 3], [4, 5, -1], [9, 8, 7]])
    rel = _rel([[1, 3, 7], [6], []])
    m = ranking_metrics(ids, rel, k=3)
    d = 1 / np.log2(np.arange(2, 5))
    ndcg0 = (d[0] + d[2]) / d.sum()  # 3 relevant, ideal = all 3 ranks
    map0 = (1 / 1 + 2 / 3) / 3  # precision at each hit / n_relevant
    assert m["n_users"] == 2
    assert m["precision"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["ndcg"] == pytest.approx(ndcg0 / 2)
    assert m["map"] == pytest.approx(map0 / 2)
    assert m["hit_rate"] == pytest.approx(0.5)
    assert m["coverage"] == pytest.approx(5 / 10)  # items 1,2,3,4,5 of the two evaluated users


def test_coverage_counts_distinct_items_of_evaluated_users():
    ids = np.array([[1, 2], [2, 3], [7, 8]])
    rel = _rel([[1], [3], []], n_items=10)
    assert ranking_metrics(ids, rel, k=2)["coverage"] == pytest.approx(3 / 10)


def test_ndcg_ideal_caps_at_k_and_perfect_ranking_scores_one():
    ids = np.array([[0, 1]])
    rel = _rel([[0, 1, 2, 3]], n_items=5)
    m = ranking_metrics(ids, rel, k=2)
    assert m["ndcg"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx(2 / 4)  # (1 + 1) / n_relevant
    assert m["recall"] == pytest.approx(0.5)


def test_hit_matrix_ignores_missing_ids():
    rel = _rel([[9], [0]], n_items=10)
    hits = hit_matrix(np.array([[-1, 9], [-1, 0]]), rel)
    assert hits.tolist() == [[False, True], [False, True]]


def test_bad_k_is_rejected():
    with pytest.raises(ValueError, match="k must be"):
        ranking_metrics(np.zeros((1, 1), int), _rel([[0]]), k=0)


def _frame() -> pd.DataFrame:
    rows = [(u, f"i{j}", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=j))
            for u, n in (("a", 4), ("b", 8), ("c", 1)) for j in range(n)]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def test_random_split_keeps_round_share_per_user_and_is_seeded():
    df = _frame()
    train, test = random_split(df, 0.25, seed=1)
    assert train.groupby("user").size().to_dict() == {"a": 3, "b": 6, "c": 1}
    assert len(train) + len(test) == len(df) and not set(train.index) & set(test.index)
    again, _ = random_split(df, 0.25, seed=1)
    assert again.index.equals(train.index)


def test_temporal_split_holds_out_the_latest_rows():
    df = _frame()
    _, test = temporal_split(df, n_last=2)
    assert sorted(test[test.user == "b"].item) == ["i6", "i7"]
    assert "c" not in set(test.user)  # a single-row user keeps it for training
    _, test = temporal_split(df, test_size=0.25)
    assert sorted(test[test.user == "a"].item) == ["i3"]


def test_global_temporal_split_uses_one_cutoff():
    df = _frame()
    train, test = global_temporal_split(df, cutoff=pd.Timestamp("2024-01-05", tz="UTC"))
    assert (test.timestamp >= pd.Timestamp("2024-01-05", tz="UTC")).all()
    assert (train.timestamp < pd.Timestamp("2024-01-05", tz="UTC")).all()


def test_split_matrices_align_and_never_overlap():
    df = _frame()
    s = split_matrices(df, "temporal")
    assert s.train.shape == s.test.shape and s.train_times.nnz == s.train.nnz
    assert s.train.multiply(s.test).nnz == 0
    with pytest.raises(ValueError, match="timestamp"):
        split_matrices(df.drop(columns="timestamp"), "temporal")
    with pytest.raises(ValueError, match="protocol"):
        split_matrices(df, "leave-one-out")
    assert math.isclose(s.train.sum() + s.test.sum(), len(df))


@pytest.mark.parametrize("n_rows", [30, 300])  # serial (single requests) and parallel (batches) paths
def test_sparse_topk_kernel_matches_dense_ranking(n_rows):
    from models.recommenders._base import masked_topk
    from models.recommenders._sparse_topk import prepare, sparse_topk

    rng = np.random.default_rng(3)
    B = sp.random(50, 50, density=0.2, random_state=3, format="csr", dtype=np.float32)
    Q = sp.random(n_rows, 50, density=0.1, random_state=4, format="csr", dtype=np.float32)
    seen = sp.random(n_rows, 50, density=0.05, random_state=5, format="csr", dtype=np.float32)
    allowed = rng.random(50) < 0.7
    ids, vals = sparse_topk(Q, prepare(B), 50, 5, seen, None, allowed)
    dense = (Q @ B).toarray()
    dense[dense == 0] = -np.inf  # unreachable items are not candidates of the kernel
    ref_ids, ref_vals = masked_topk(dense, 5, seen, allowed)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(vals, ref_vals, rtol=1e-5)
