"""Train the lookalike population model and register it in MLflow as ``lookalike``.

Steps (each a short function): load the latest customer features and the interactions
(``<data>/features``), build the customers x items matrix, learn customer embeddings
(implicit ALS factors by default, or the PyTorch two-tower of :mod:`models.embeddings`),
build the FAISS index over all customers (recall vs exact measured and logged), fit
:class:`models.lookalike.Lookalike` on embeddings + interactions + numeric features, and
log/register the :class:`models.lookalike.LookalikePopulation` (pyfunc: input = seed
``one_id`` rows, output = every customer's score; serving calls
``features.audience_lookalike.expand`` on the unwrapped population).

Why ALS by default: on the MovieLens lookalike protocol ALS-factor centroids beat the
two-tower embeddings (see benchmarks/RESULTS.md, section lookalike); ``embedding="torch"``
trains the PyTorch model instead and logs its training loss.

Example::

    run_id = train(LookalikeConfig(features_dir="data/features"), settings.mlflow_uri)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KEYS = ("one_id", "event_timestamp")


@dataclass(frozen=True)
class LookalikeConfig:
    features_dir: str  # <data>/features: customer_features.parquet + interactions.parquet
    embedding: str = "als"  # "als" (implicit ALS user factors) or "torch" (two-tower, models/embeddings.py)
    factors: int = 64  # embedding size
    als_iterations: int = 15  # ALS sweeps
    torch_epochs: int = 20  # two-tower epochs (embedding="torch")
    use_features: bool = True  # numeric customer features feed the PU classifier
    min_seeds: int = 50  # smallest seed audience accepted by expansion
    classifier_min_seeds: int = 5000  # auto: similarity below, PU classifier from here
    index_kind: str = "auto"  # FAISS index: auto / flat / ivf / hnsw
    register: bool = True  # register the population as model `lookalike` (alias challenger)
    promote: bool = True  # make it champion when there is none yet
    seed: int = 0  # every random choice
    extra: dict = field(default_factory=dict)  # free-form tags logged with the run

    def __post_init__(self) -> None:  # nonsense stops here, before any MLflow run or model version
        if self.embedding not in ("als", "torch"):
            raise ValueError(f"embedding (--embedding) must be als or torch, got {self.embedding!r}")
        if self.index_kind not in ("auto", "flat", "ivf", "hnsw"):
            raise ValueError(f"index_kind (--index) must be auto, flat, ivf or hnsw, got {self.index_kind!r}")
        for name, opt in (("factors", "--factors"), ("als_iterations", None), ("torch_epochs", "--epochs"),
                          ("min_seeds", "--min-seeds"), ("classifier_min_seeds", "--classifier-min-seeds")):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}{f' ({opt})' if opt else ''} must be at least 1, got {getattr(self, name)!r}")


def load_population(features_dir: str | Path) -> tuple[pd.DataFrame, Any, pd.Index]:
    """Latest feature snapshot, the binary customers x items matrix aligned to it, and the items."""
    import scipy.sparse as sp

    from features.audience import latest_features

    feats = latest_features(features_dir)
    path = Path(features_dir) / "interactions.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no interactions; run `portrait features build` first")
    inter = pd.read_parquet(path, columns=["one_id", "item_id"])
    users = pd.Index(feats["one_id"].astype(str))
    rows = users.get_indexer(inter["one_id"].astype(str))
    keep = rows >= 0
    items = pd.Index(pd.unique(inter.loc[keep, "item_id"].astype(str)))
    cols = items.get_indexer(inter.loc[keep, "item_id"].astype(str))
    X = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols)), shape=(len(users), len(items)))
    X.sum_duplicates()
    X.data[:] = 1.0
    return feats, X, items


def numeric_features(feats: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numeric and boolean columns (keys excluded) as float32, NaN kept."""
    names = [c for c in feats.columns if c not in KEYS and (pd.api.types.is_numeric_dtype(feats[c].dtype)
                                                            or pd.api.types.is_bool_dtype(feats[c].dtype))]
    return feats[names].astype("float32").to_numpy(), names


def customer_embeddings(X: Any, config: LookalikeConfig, features: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """ALS factors or two-tower vectors for every customer (rows of ``X``)."""
    info: dict = {"embedding": config.embedding}
    if config.embedding == "als":
        import implicit
        import scipy.sparse as sp
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = implicit.cpu.als.AlternatingLeastSquares(factors=config.factors, regularization=0.05,
                                                             iterations=config.als_iterations, random_state=config.seed)
            model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
        return np.asarray(model.user_factors, dtype=np.float32), info
    if config.embedding == "torch":
        from models.embeddings import EmbeddingConfig, train_embeddings

        losses: list[float] = []
        vectors = train_embeddings(X, EmbeddingConfig(dim=config.factors, epochs=config.torch_epochs, seed=config.seed),
                                   features=features, on_epoch=lambda _e, loss: losses.append(loss))
        info["final_loss"] = losses[-1] if losses else None
        return vectors, info
    raise ValueError(f"embedding must be 'als' or 'torch', got {config.embedding!r}")


def build(config: LookalikeConfig) -> tuple[Any, dict]:
    """Fit the population model; returns it and the metrics to log."""
    from models.ann import AnnIndex
    from models.lookalike import Lookalike, LookalikePopulation

    t0 = time.perf_counter()
    feats, X, items = load_population(config.features_dir)
    F, names = numeric_features(feats) if config.use_features else (None, [])
    vectors, info = customer_embeddings(X, config, F if config.embedding == "torch" else None)
    t_emb = time.perf_counter() - t0
    index = AnnIndex(metric="cosine", kind=config.index_kind, seed=config.seed).fit(vectors)
    recall = index.recall_vs_exact(k=10, n_queries=min(1000, len(vectors)))
    model = Lookalike(min_seeds=config.min_seeds, classifier_min_seeds=config.classifier_min_seeds,
                      seed=config.seed).fit(embeddings=vectors, interactions=X, features=F)
    info.update({"feature_names": names, "items": len(items), "as_of": str(feats["event_timestamp"].max())
                 if "event_timestamp" in feats else None, "index_kind": index.kind_})
    population = LookalikePopulation(feats["one_id"].astype(str).to_numpy(), model, index, info)
    metrics = {"customers": float(len(feats)), "items": float(len(items)), "interactions": float(X.nnz),
               "index_recall_at_10": recall, "embedding_seconds": t_emb,
               "fit_seconds": time.perf_counter() - t0}
    if info.get("final_loss") is not None:
        metrics["embedding_final_loss"] = float(info["final_loss"])
    return population, metrics


def pyfunc_model(population: Any) -> Any:
    """The registered pyfunc: input rows of seed ``one_id``; output every customer's score."""
    import mlflow.pyfunc

    class LookalikePyfunc(mlflow.pyfunc.PythonModel):
        def __init__(self, population: Any) -> None:
            self.population = population

        def predict(self, context, model_input, params=None):  # untyped: MLflow infers no signature from hints
            return self.population.predict(model_input)

    return LookalikePyfunc(population)


def train(config: LookalikeConfig, tracking_uri: str, artifact_root: str | Path | None = None) -> str:
    """Build, log and register the lookalike population; returns the MLflow run id."""
    import mlflow

    from training import registry

    registry.setup(tracking_uri, artifact_root)
    population, metrics = build(config)
    with registry.start_run("lookalike", tags={"embedding": config.embedding, **config.extra}) as run:
        registry.log_config(config)
        mlflow.log_metrics(metrics)
        if config.register:
            version = registry.log_and_register("lookalike", pyfunc_model(population), metrics=metrics)
            population.info["model_version"] = version
            first = config.promote and registry.champion_version("lookalike") is None
            if first:
                registry.promote("lookalike", version, reason="first lookalike model")
            # no holdout to gate a population model on: later versions wait for `portrait models promote`
            mlflow.set_tags({"model_version": version, "gate.promoted": str(first),
                             "gate.reason": "first lookalike model" if first else
                             f"champion stays v{registry.champion_version('lookalike')}: a lookalike model has no "
                             f"holdout to compare on; `portrait models promote lookalike {version}` makes this one "
                             "champion (expansions then see the customers it was trained on)"})
        run_id = run.info.run_id
    return run_id


def load_population_model(uri: str = "models:/lookalike@champion") -> Any:
    """The :class:`models.lookalike.LookalikePopulation` inside a registered pyfunc."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri).unwrap_python_model().population


__all__ = ["LookalikeConfig", "build", "load_population", "load_population_model", "train", "asdict"]
