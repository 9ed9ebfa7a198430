"""Recommender evaluation on any interactions file: ``portrait evaluate recommender``.

:func:`read_interactions` reads any interactions file (user, item, optional weight,
optional timestamp; CSV/TSV/Parquet, with or without header, MovieLens ``u.data`` too);
:func:`evaluate_frame` runs one protocol (per-user random 75/25, per-user temporal,
global temporal) on portrait's default recommender (:func:`default_model`) and its
peers, all in one run. The training job that registers the serving bundle is
:mod:`training.recommender`, which re-exports these names.

Run: ``portrait evaluate recommender --interactions u.data --json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

USER_ALIASES = ("user", "user_id", "userid", "one_id", "customer_id", "customer", "uid")
ITEM_ALIASES = ("item", "item_id", "itemid", "movie_id", "product_id", "sku", "iid")
WEIGHT_ALIASES = ("weight", "rating", "value", "score", "count", "quantity")
TIME_ALIASES = ("timestamp", "ts", "time", "datetime", "date", "event_time")
PEERS = ("popularity", "als", "bpr", "item_knn", "ease")


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    return next((lower[a] for a in aliases if a in lower), None)


def read_interactions(path: str | Path) -> pd.DataFrame:
    """Read ``path`` into ``user, item, weight[, timestamp]`` (ids as strings, weight float).

    Columns are found by name (``user``/``user_id``/``one_id``..., ``item``/``item_id``...,
    ``weight``/``rating``..., ``timestamp``/``ts``...); a header-less file is read by
    position (user, item[, weight[, timestamp]]), e.g. MovieLens ``u.data``. Numeric
    timestamps are Unix seconds. Errors name the file and the column.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such interactions file")
    if path.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    else:
        sep = "\t" if path.suffix.lower() in (".tsv", ".data", "") else None
        head = pd.read_csv(path, sep=sep, engine="python", nrows=5, header=None, dtype=str)
        first = head.iloc[0].astype(str).tolist()
        has_header = any(_pick([c], USER_ALIASES + ITEM_ALIASES) for c in first)
        raw = pd.read_csv(path, sep=sep, engine="python" if sep is None else "c",
                          header=0 if has_header else None, dtype=str)
        if not has_header:
            if raw.shape[1] < 2:
                raise ValueError(f"{path}: need at least 2 columns (user, item), found {raw.shape[1]}")
            names = ["user", "item", "weight", "timestamp"][: raw.shape[1]]
            raw = raw.iloc[:, : len(names)].set_axis(names, axis=1)
    cols = [str(c) for c in raw.columns]
    raw.columns = cols
    u, i = _pick(cols, USER_ALIASES), _pick(cols, ITEM_ALIASES)
    if u is None or i is None:
        raise ValueError(f"{path}: no {'user' if u is None else 'item'} column; found {cols} "
                         f"(expected one of {USER_ALIASES if u is None else ITEM_ALIASES})")
    out = pd.DataFrame({"user": raw[u].astype(str), "item": raw[i].astype(str)})
    w = _pick(cols, WEIGHT_ALIASES)
    out["weight"] = 1.0
    if w is not None:
        weight = pd.to_numeric(raw[w], errors="coerce")
        if weight.isna().any() or (weight < 0).any():
            bad = raw.index[weight.isna() | (weight < 0)][0]
            raise ValueError(f"{path}: column {w!r} must be a non-negative number (row {bad}: {raw[w].iloc[bad]!r})")
        out["weight"] = weight.astype(np.float64).to_numpy()
    t = _pick(cols, TIME_ALIASES)
    if t is not None:
        out["timestamp"] = _parse_time(raw[t], path, t)
    if out[["user", "item"]].isna().any().any() or (out["user"] == "nan").any():
        raise ValueError(f"{path}: empty user or item ids")
    if len(out) == 0:
        raise ValueError(f"{path}: no interactions")
    return out


def _parse_time(col: pd.Series, path: Path, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        return pd.to_datetime(col, utc=True)
    num = pd.to_numeric(col, errors="coerce")
    ts = pd.to_datetime(num, unit="s", utc=True) if num.notna().all() else pd.to_datetime(col, utc=True, errors="coerce")
    if ts.isna().any():
        bad = col[ts.isna()].iloc[0]
        raise ValueError(f"{path}: column {name!r} holds an unreadable time {bad!r}")
    return ts


def default_model(protocol: str = "random-75-25", **params: Any) -> Any:
    """portrait's default recommender for a question: inner validation mirrors the protocol."""
    from models.recommenders import make

    inner = "random" if protocol == "random-75-25" else "temporal"
    return make("window_ease", **{"inner": inner, **params})


def evaluate_frame(
    df: pd.DataFrame, protocol: str = "random-75-25", seed: int = 42, k: int = 10,
    peers: tuple[str, ...] = PEERS, use_weights: bool = False, progress: Any = None,
) -> dict[str, Any]:
    """Default model and ``peers`` on one split of ``df``; the JSON ``portrait evaluate recommender`` prints.

    The default model reads the weight column (shaded, see ``EASE.weight_mix``); peers see
    binary interactions, as in the reference anchors, unless ``use_weights``. Every held-out
    interaction is relevant. Tuning happens inside the default model's ``fit`` on the
    training part only.
    """
    from models.recommenders import make
    from training.evaluation.ranking import evaluate_recommender
    from training.evaluation.splits import split_matrices

    import dataclasses

    split = split_matrices(df, protocol, seed)
    binary = split.train.copy()
    binary.data[:] = 1.0
    peer_split = split if use_weights else dataclasses.replace(split, train=binary)
    has_time = split.train_times is not None
    keys = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "fit_seconds", "fit_cpu_seconds")
    model = default_model(protocol, seed=seed)
    res = evaluate_recommender(model, split, k=k, use_times=has_time)
    out: dict[str, Any] = {"model": "window_ease", **{m: res[m] for m in keys}}
    out["chosen"] = {"lam": model.lam_, "window_weight": model.window_weight_, "half_life": model.half_life_,
                     "low_pass_rank": model.low_pass_rank_, "low_pass_weight": model.low_pass_weight_,
                     "inner": model.inner}
    out["baselines"] = {}
    for name in peers:
        if progress:
            progress(name)
        peer = make(name)
        r = evaluate_recommender(peer, peer_split, k=k, with_users=name in ("als", "bpr"))
        out["baselines"][name] = {m: r[m] for m in keys}
    out.update(protocol=protocol, seed=seed, k=k, n_users_evaluated=res["n_users"],
               n_users=int(split.train.shape[0]), n_items=int(split.train.shape[1]),
               n_train=int(split.train.nnz), n_test=int(split.test.nnz), timestamps=has_time)
    return out
