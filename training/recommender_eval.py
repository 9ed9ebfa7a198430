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
WEIGHT_AWARE = ("ease", "dlae", "popularity", "segment_popularity")  # binary unless told otherwise


def _canon(name: str) -> str:
    """A column name as matched against the aliases: ``User ID``, ``userId``, ``user-id`` -> ``userid``."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    canon = {}
    for c in columns:
        canon.setdefault(_canon(c), c)  # movie_id matches movieId (MovieLens' later releases), "User ID"...
    return next((canon[_canon(a)] for a in aliases if _canon(a) in canon), None)


def read_interactions(path: str | Path) -> pd.DataFrame:
    """Read ``path`` into ``user, item, weight[, timestamp]`` (ids as strings, weight float).

    Columns are found by name, ignoring case, spaces, ``_`` and ``-`` (``user``/``User ID``/``userId``...,
    ``item``/``movieId``/``product_id``..., ``weight``/``rating``..., ``timestamp``/``ts``...); a
    header-less file is read by position (user, item[, weight[, timestamp]]), e.g. MovieLens
    ``u.data``; a header-less third column of dates or of numbers all above 1e8 (Unix epochs) is
    the time, not a weight. The delimiter is detected (tab, comma, semicolon, ...); a UTF-8 byte-order mark is
    ignored. Numeric timestamps are Unix epochs in seconds, milliseconds, microseconds or
    nanoseconds (told apart by magnitude). Weight 0 means "no interaction" (as in a sparse
    matrix); the split drops such rows. Errors name the file, the column and the row.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such interactions file")
    if path.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    else:
        raw = _read_text(path)
    cols = [str(c) for c in raw.columns]
    raw.columns = cols
    u, i = _pick(cols, USER_ALIASES), _pick(cols, ITEM_ALIASES)
    if u is None or i is None:
        raise ValueError(f"{path}: no {'user' if u is None else 'item'} column; found {cols} "
                         f"(expected one of {USER_ALIASES if u is None else ITEM_ALIASES})")
    raw = raw.reset_index(drop=True)
    for name in (u, i):
        empty = raw[name].isna() | (raw[name].astype(str).str.strip() == "")
        if empty.any():
            raise ValueError(f"{path}: column {name!r} is empty in {int(empty.sum())} row(s), "
                             f"first at data row {int(np.flatnonzero(empty.to_numpy())[0]) + 1}")
    out = pd.DataFrame({"user": raw[u].astype(str), "item": raw[i].astype(str)})
    w = _pick(cols, WEIGHT_ALIASES)
    out["weight"] = 1.0
    if w is not None:
        weight = pd.to_numeric(raw[w], errors="coerce")
        bad = weight.isna() | (weight < 0) | ~np.isfinite(weight.fillna(0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path}: column {w!r} must be a non-negative number "
                             f"(data row {row + 1}: {raw[w].iloc[row]!r})")
        out["weight"] = weight.astype(np.float64).to_numpy()
    t = _pick(cols, TIME_ALIASES)
    if t is not None:
        from features.timeparse import parse_times

        out["timestamp"] = parse_times(raw[t], str(path), t)
    if len(out) == 0:
        raise ValueError(f"{path}: no interactions")
    return out


def _read_text(path: Path) -> pd.DataFrame:
    """A delimited text file (header optional), every cell as a string."""
    from features.io import sniff_delimiter

    sep = sniff_delimiter(path, ",;\t| ")
    if sep is None:
        raise ValueError(f"{path}: the file is empty")
    sep = r"\s+" if sep == " " else sep  # whitespace-aligned columns
    read = dict(sep=sep, dtype=str, encoding="utf-8-sig", skip_blank_lines=True,
                engine="python" if len(sep) > 1 else "c")
    head = pd.read_csv(path, nrows=50, header=None, **read)
    first = head.iloc[0].astype(str).tolist()
    has_header = any(_pick([c], USER_ALIASES + ITEM_ALIASES) for c in first)
    if not has_header and len(head) > 1:  # unknown names: a column that is text on top of numbers is a header
        numeric = head.apply(lambda c: pd.to_numeric(c, errors="coerce")).notna()
        has_header = bool((~numeric.iloc[0] & numeric.iloc[1:].all()).any())
    raw = pd.read_csv(path, header=0 if has_header else None, **read)
    if not has_header:
        if raw.shape[1] < 2:
            raise ValueError(f"{path}: need at least 2 columns (user, item), found {raw.shape[1]}")
        names = ["user", "item", "weight", "timestamp"][: raw.shape[1]]
        if raw.shape[1] == 3:  # user, item, then a weight or a time: text, or numbers all past 1e8 (epochs), is time
            third = pd.to_numeric(raw.iloc[:, 2], errors="coerce")
            if third.isna().all() or (third >= 1e8).all():
                names[2] = "timestamp"
        raw = raw.iloc[:, : len(names)].set_axis(names, axis=1)
    return raw


def default_model(protocol: str = "random-75-25", **params: Any) -> Any:
    """portrait's default recommender for a question: inner validation mirrors the protocol.

    "What else" (random) also gets the availability window (``models.recommenders.availability``);
    "what next" (temporal, and every model ``portrait train recommender`` serves) never does.
    """
    from models.recommenders import make

    what_else = protocol == "random-75-25"
    return make("window_ease", **{"inner": "random" if what_else else "temporal", "availability": what_else, **params})


def evaluate_frame(
    df: pd.DataFrame, protocol: str = "random-75-25", seed: int = 42, k: int = 10,
    peers: tuple[str, ...] = PEERS, use_weights: bool = False, progress: Any = None,
    model_params: dict[str, Any] | None = None,
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
    if not split.test.nnz:  # rows are training users: held-out rows of users without history are dropped
        raise ValueError(f"{protocol}: no held-out interaction belongs to a user with training history "
                         "(nobody to evaluate); use more data or another protocol")
    model = default_model(protocol, **{"seed": seed, **(model_params or {})})  # model_params: a variant, for benchmarks
    res = evaluate_recommender(model, split, k=k, use_times=has_time)
    out: dict[str, Any] = {"model": "window_ease", **{m: res[m] for m in keys}}
    out["chosen"] = {"lam": model.lam_, "window_weight": model.window_weight_, "half_life": model.half_life_,
                     "low_pass_rank": model.low_pass_rank_, "low_pass_weight": model.low_pass_weight_,
                     "low_pass_terms": [list(t) for t in model.low_pass_terms_], "inner": model.inner,
                     "availability": model.first_seen_ is not None}
    out["baselines"] = {}
    for name in peers:
        if progress:
            progress(name)
        # with --use-weights the models that would binarize read the weights too (EASE shades them)
        peer = make(name, **({"binary": False} if use_weights and name in WEIGHT_AWARE else {}))
        r = evaluate_recommender(peer, peer_split, k=k, with_users=name in ("als", "bpr"))
        out["baselines"][name] = {m: r[m] for m in keys}
    out.update(protocol=protocol, seed=seed, k=k, n_users_evaluated=res["n_users"],
               n_users=int(split.train.shape[0]), n_items=int(split.train.shape[1]),
               n_train=int(split.train.nnz), n_test=int(split.test.nnz), timestamps=has_time)
    return out
