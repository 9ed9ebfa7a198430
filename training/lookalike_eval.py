"""The lookalike evaluation protocol, runnable on any interactions table.

For each item ranked ``items_rank`` (default 51..80) by number of distinct users:
positives = the users who interacted with it; seeds = a random ``seed_fraction`` of them
(one generator seeded with ``seed``, items taken in rank order); the item is removed from
every input (interaction matrix, ALS factors, embeddings); every non-seed user is scored.
AUC and R-precision (share of hidden positives among the top R, R = number of hidden
positives) are averaged over the items.

portrait's default (``Lookalike(method="auto")``) chooses its own ridge strength by
self-validation on the seeds alone, so nothing is tuned on the hidden positives. Peers
run on the same seeds in the same process: user activity, logistic regression
seeds-vs-rest on item rows, kNN-50 vote and centroid cosine over ALS factors, and (when
asked) centroid cosine over portrait's PyTorch embeddings.

Example::

    from training.lookalike_eval import EvalConfig, evaluate_frame
    out = evaluate_frame(read_interactions("u.data"), EvalConfig())
    out["auc"], out["r_precision"], out["baselines"]["centroid_als"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

PEERS = ("activity", "logreg", "knn_als", "centroid_als", "centroid_torch", "pu_als")
DEFAULT_PEERS = ("activity", "logreg", "knn_als", "centroid_als")


@dataclass(frozen=True)
class EvalConfig:
    items_rank: tuple[int, int] = (51, 80)  # 1-based inclusive ranks by number of users
    seed_fraction: float = 0.3  # share of each item's users given as seeds
    seed: int = 42  # seed draws (also seeds the models)
    factors: int = 64  # ALS factors for the ALS peers
    peers: tuple[str, ...] = DEFAULT_PEERS  # measured in the same run
    method: str = "auto"  # portrait's default lookalike method


def interaction_matrix(df: pd.DataFrame):
    """Binary users x items CSR from a ``user, item`` frame, with the user and item indexes."""
    import scipy.sparse as sp

    users = pd.Index(pd.unique(df["user"].astype(str)))
    items = pd.Index(pd.unique(df["item"].astype(str)))
    rows = users.get_indexer(df["user"].astype(str))
    cols = items.get_indexer(df["item"].astype(str))
    X = sp.csr_matrix((np.ones(len(df)), (rows, cols)), shape=(len(users), len(items)))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X, users, items


def auc_and_r_precision(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """AUC (ties averaged) and R-precision (ties broken by row order, i.e. stable)."""
    from training.evaluation.classification import roc_auc

    r = int(labels.sum())
    top = np.argsort(-scores, kind="stable")[:r]
    return roc_auc(labels, scores), float(labels[top].sum() / r) if r else float("nan")


def als_user_factors(X, factors: int, seed: int) -> np.ndarray:
    """implicit ALS user factors on a binary matrix (BLAS pinned to one thread)."""
    import implicit
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = implicit.cpu.als.AlternatingLeastSquares(factors=factors, regularization=0.05, iterations=15,
                                                         random_state=seed)
        model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
    return np.asarray(model.user_factors)


def _peer_scores(name: str, X, seeds: np.ndarray, ctx: dict, config: EvalConfig) -> np.ndarray:
    from models.lookalike import Lookalike

    if name == "activity":
        return np.asarray(X.sum(axis=1)).ravel()
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        y = np.zeros(X.shape[0])
        y[seeds] = 1
        model = LogisticRegression(max_iter=2000, random_state=config.seed).fit(X, y)
        return model.decision_function(X)
    if name in ("knn_als", "centroid_als", "pu_als"):
        if "als" not in ctx:
            ctx["als"] = als_user_factors(X, config.factors, config.seed)
        method = {"knn_als": "knn", "centroid_als": "centroid", "pu_als": "pu"}[name]
        return Lookalike(method=method, min_seeds=1, n_neighbors=50, seed=config.seed).fit(
            embeddings=ctx["als"]).score(seeds)
    if name == "centroid_torch":
        from models.embeddings import EmbeddingConfig, train_embeddings

        emb = train_embeddings(X, EmbeddingConfig(seed=config.seed))
        return Lookalike(method="centroid", min_seeds=1).fit(embeddings=emb).score(seeds)
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")


def target_items(X, items_rank: tuple[int, int]) -> np.ndarray:
    """Column indices of the items ranked ``items_rank`` by number of users (ties: first seen)."""
    counts = np.asarray(X.sum(axis=0)).ravel()
    order = np.lexsort((np.arange(len(counts)), -counts))
    lo, hi = items_rank
    if lo < 1 or hi < lo:
        raise ValueError(f"items rank must be 1-based LOW-HIGH with LOW <= HIGH, got {lo}-{hi}")
    if hi > len(order):
        raise ValueError(f"items rank {lo}-{hi}: the data has only {len(order)} items")
    return order[lo - 1:hi]


def evaluate_frame(df: pd.DataFrame, config: EvalConfig = EvalConfig(),
                   progress: Callable[[str], None] | None = None) -> dict:
    """Run the protocol on a ``user, item`` frame; returns the JSON-ready result."""
    from models.lookalike import Lookalike

    if not 0 < config.seed_fraction < 1:
        raise ValueError(f"seed fraction must be in (0, 1), got {config.seed_fraction}")
    unknown = [p for p in config.peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; choose from {', '.join(PEERS)}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # 2 shared cores: oversubscribed BLAS is many times slower
        return _evaluate(df, config, progress)


def _evaluate(df: pd.DataFrame, config: EvalConfig, progress: Callable[[str], None] | None) -> dict:
    from models.lookalike import Lookalike

    X, users, _ = interaction_matrix(df)
    targets = target_items(X, config.items_rank)
    rng = np.random.default_rng(config.seed)
    names = ("default", *config.peers)
    figures = {n: [] for n in names}
    seconds = {n: 0.0 for n in names}
    methods, lambdas, skipped = [], [], []
    for t in targets:
        positives = np.flatnonzero(X[:, t].toarray().ravel() > 0)
        n_seeds = max(1, int(round(config.seed_fraction * len(positives))))
        seeds = np.sort(rng.choice(positives, n_seeds, replace=False))
        if n_seeds >= len(positives):  # every user is a seed: nobody hidden to find, AUC undefined
            skipped.append(int(t))
            if progress:
                progress(str(t))
            continue
        keep = np.ones(X.shape[1], dtype=bool)
        keep[t] = False
        Xr = X[:, keep].tocsr()
        candidates = np.ones(X.shape[0], dtype=bool)
        candidates[seeds] = False
        labels = np.zeros(X.shape[0])
        labels[positives] = 1
        labels = labels[candidates]
        ctx: dict = {}
        for name in names:
            start = time.perf_counter()
            if name == "default":
                model = Lookalike(method=config.method, min_seeds=1, seed=config.seed).fit(interactions=Xr)
                scores = model.score(seeds)
                methods.append(model.last_method_)
                lambdas.append(getattr(model, "last_lambda_", None))
            else:
                scores = _peer_scores(name, Xr, seeds, ctx, config)
            seconds[name] += time.perf_counter() - start
            figures[name].append(auc_and_r_precision(np.asarray(scores, dtype=np.float64)[candidates], labels))
        if progress:
            progress(str(t))

    def summary(name: str) -> dict:
        arr = np.asarray(figures[name])
        return {"auc": float(arr[:, 0].mean()), "r_precision": float(arr[:, 1].mean()),
                "seconds": round(seconds[name], 3)}

    if not figures["default"]:
        raise ValueError(f"no target item in ranks {config.items_rank[0]}-{config.items_rank[1]} keeps a user "
                         f"outside its seeds (seed fraction {config.seed_fraction}): choose more popular items "
                         "or a smaller --seed-fraction")
    top = summary("default")
    method_used = max(set(methods), key=methods.count)
    return {
        "method": f"lookalike:{config.method}->{method_used}",
        **top,
        "items": len(targets) - len(skipped),
        "items_skipped": {"count": len(skipped), "reason": "every user of the item was a seed"} if skipped else None,
        "users": int(X.shape[0]),
        "config": {**asdict(config), "items_rank": list(config.items_rank), "peers": list(config.peers)},
        "chosen_lambdas": [None if v is None else round(v, 3) for v in lambdas],
        "baselines": {name: summary(name) for name in config.peers},
    }
