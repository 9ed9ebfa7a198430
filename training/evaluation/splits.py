"""Train/test splitters for interaction tables (one row per user-item event).

All three are vectorized (no per-user Python loop) and deterministic for a seed:

- :func:`random_split`: per-user random stratified split; each user keeps
  ``round(train_size * n_u)`` of their rows for training (Python's round-half-even,
  as Microsoft Recommenders' ``python_stratified_split``), the rest is held out.
- :func:`temporal_split`: per-user leave-last-n (``n_last``) or leave-last-fraction
  (``test_size``) by time; ties in time keep the input order.
- :func:`global_temporal_split`: one cut-off time for everyone (given, or the
  ``1 - test_size`` quantile of the timestamps); rows at or after it are held out.

Each returns ``(train, test)`` frames with the input's columns and index.
:func:`split_matrices` applies a named protocol and encodes both parts as CSR
matrices over the training part's users and items (what the models consume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


def _check(df: pd.DataFrame, cols: list[str], test_size: float | None = None) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"interactions lack column(s) {missing}; found {list(df.columns)}")
    if test_size is not None and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")


def _rank_within_user(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows visited in ``order``, the position of each row within its user and the user's row count."""
    codes, inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
    seq = inverse[order]
    by_user = np.argsort(seq, kind="stable")  # rows grouped by user, ``order`` kept inside a group
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(users), dtype=np.int64)
    rank[order[by_user]] = np.arange(len(users)) - starts[seq[by_user]]
    return rank, counts[inverse]


def random_split(
    df: pd.DataFrame, test_size: float = 0.25, seed: int = 42, user: str = "user"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user random stratified split: each user holds out about ``test_size`` of their rows."""
    _check(df, [user], test_size)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    rank, n = _rank_within_user(df[user].to_numpy(), order)
    n_train = np.round((1.0 - test_size) * n)  # half-to-even, like Python's round()
    is_train = rank < n_train
    return df[is_train], df[~is_train]


def temporal_split(
    df: pd.DataFrame, test_size: float | None = 0.25, n_last: int | None = None,
    user: str = "user", time: str = "timestamp",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user temporal split: hold out each user's last ``n_last`` rows, or last ``test_size`` share.

    With ``n_last``, users with ``<= n_last`` rows keep one row for training.
    """
    _check(df, [user, time], None if n_last else test_size)
    order = np.argsort(df[time].to_numpy(), kind="stable")
    rank, n = _rank_within_user(df[user].to_numpy(), order)
    if n_last is not None:
        if n_last < 1:
            raise ValueError(f"n_last must be >= 1, got {n_last}")
        n_train = np.maximum(n - n_last, 1)
    else:
        n_train = np.round((1.0 - test_size) * n)
    is_train = rank < n_train
    return df[is_train], df[~is_train]


def global_temporal_split(
    df: pd.DataFrame, test_size: float = 0.25, cutoff: pd.Timestamp | None = None, time: str = "timestamp"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One cut-off for all users: rows with ``time >= cutoff`` are held out.

    ``cutoff`` defaults to the ``1 - test_size`` quantile of the timestamps. Users or
    items that only appear after the cut-off stay in the test frame; evaluation
    decides what to do with them (portrait scores users with training history only).
    """
    _check(df, [time], test_size)
    ts = df[time]
    if cutoff is None:
        cutoff = ts.quantile(1.0 - test_size)
    is_test = (ts >= cutoff).to_numpy()
    if is_test.all() or not is_test.any():
        raise ValueError(f"global-temporal: the cut-off {cutoff} leaves {'no training' if is_test.all() else 'no test'} "
                         f"rows (timestamps run from {ts.min()} to {ts.max()}); use another protocol")
    return df[~is_test], df[is_test]


PROTOCOLS = ("random-75-25", "temporal", "global-temporal")


@dataclass(frozen=True)
class SplitMatrices:
    """A split as CSR matrices over one shared user/item encoding.

    ``train``/``test`` hold weights, ``train_times`` event times in days (or None),
    ``users``/``items`` the original ids of rows/columns.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    train_times: sp.csr_matrix | None
    users: np.ndarray
    items: np.ndarray


def to_matrix(df: pd.DataFrame, users: pd.Index, items: pd.Index, values: np.ndarray) -> sp.csr_matrix:
    """CSR (len(users), len(items)) of ``values`` at (user, item); duplicates keep the last value."""
    r = users.get_indexer(df["user"])
    c = items.get_indexer(df["item"])
    keep = (r >= 0) & (c >= 0)
    coo = sp.coo_matrix((values[keep], (r[keep], c[keep])), shape=(len(users), len(items)))
    m = coo.tocsr()
    m.sum_duplicates()
    return m


def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item): weights summed, the latest timestamp kept."""
    agg = {"weight": "sum"}
    if "timestamp" in df.columns:
        agg["timestamp"] = "max"
    return df.groupby(["user", "item"], as_index=False, sort=False).agg(agg)


def split_matrices(df: pd.DataFrame, protocol: str = "random-75-25", seed: int = 42,
                   test_size: float = 0.25) -> SplitMatrices:
    """Split ``user, item[, weight][, timestamp]`` by ``protocol`` into aligned matrices.

    Repeated (user, item) pairs are merged first so an item cannot be both seen and held out;
    pairs whose weights sum to 0 are no interaction and are dropped.
    Columns cover every item of ``df`` (held-out items never seen in training stay relevant,
    just unreachable); rows are the training users (test users with no training row are
    dropped: cold start is scored separately).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    df = df.copy()
    if "weight" not in df.columns:
        df["weight"] = 1.0
    df = dedupe(df)
    df = df[df["weight"] != 0]  # weight 0 is no interaction, as in a sparse user x item matrix
    if df.empty:
        raise ValueError("no interaction with a non-zero weight")
    if protocol == "random-75-25":
        train, test = random_split(df, test_size, seed)
    elif "timestamp" not in df.columns:
        raise ValueError(f"protocol {protocol!r} needs a timestamp column")
    elif protocol == "temporal":
        train, test = temporal_split(df, test_size)
    else:
        train, test = global_temporal_split(df, test_size)
    users = pd.Index(pd.unique(train["user"]))
    items = pd.Index(pd.unique(pd.concat([train["item"], test["item"]])))
    X = to_matrix(train, users, items, train["weight"].to_numpy(np.float32))
    Y = to_matrix(test, users, items, np.ones(len(test), np.float32))
    T = None
    if "timestamp" in train.columns:
        ts = pd.to_datetime(train["timestamp"], utc=True)
        days = (ts - ts.min()).dt.total_seconds().to_numpy() / 86400.0 + 1.0  # > 0 so CSR keeps it
        T = to_matrix(train, users, items, days.astype(np.float64))
    return SplitMatrices(X, Y, T, users.to_numpy(), items.to_numpy())
