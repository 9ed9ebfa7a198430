"""Recommender training and evaluation: ``train(config) -> run_id`` and ``evaluate_file``.

- :func:`read_interactions` reads any interactions file (user, item, optional weight,
  optional timestamp; CSV/TSV/Parquet, with or without header, MovieLens ``u.data`` too).
- :func:`evaluate_frame` runs one protocol (per-user random 75/25, per-user temporal,
  global temporal) on portrait's default recommender and its peers, all in one run.
- :func:`train` fits the default model on ``<data>/features/interactions.parquet``,
  measures it on a global temporal holdout (vs popularity), optionally runs an Optuna
  search on the training part, registers a serving bundle
  (``models.recommenders.serving.RecommenderBundle``) as the MLflow model ``recommender``
  and gates promotion (``training.registry.gate_and_tag``; :func:`gate_score`).

The first two (and :func:`default_model`) live in :mod:`training.recommender_eval`, the
holdout (:class:`~training.recommender_holdout.Holdout`, :func:`holdout_metrics`) in
:mod:`training.recommender_holdout`; all are re-exported here; this module is the training job.

Run: ``portrait evaluate recommender --interactions u.data --json`` /
``portrait train recommender``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# reading and evaluating any interactions file; re-exported: callers import them from here
from training.recommender_eval import (
    ITEM_ALIASES,
    PEERS,
    TIME_ALIASES,
    USER_ALIASES,
    WEIGHT_ALIASES,
    default_model,
    evaluate_frame,
    read_interactions,
)
# the holdout every model is measured and gated on; holdout_metrics re-exported like the above
from training.recommender_holdout import Holdout, event_matrices, fit_model, holdout_metrics

__all__ = ["GATE_METRIC", "Holdout", "ITEM_ALIASES", "PEERS", "SEGMENT_SOURCES", "TIME_ALIASES", "USER_ALIASES",
           "WEIGHT_ALIASES", "RecommenderConfig", "build_bundle", "default_model", "evaluate_frame",
           "gate_score", "holdout_metrics", "load_events", "logged_weighting", "read_interactions", "train", "tune"]


# ---------------------------------------------------------------------------- training job
@dataclass(frozen=True)
class RecommenderConfig:
    """``portrait train recommender``; every field has a working default."""

    data_dir: str = "data"  # <data>: reads features/interactions.parquet, raw/items.parquet, features/customer_features.parquet
    mlflow_uri: str = "sqlite:///mlruns/mlflow.db"  # tracking + registry
    mlflow_artifacts: str | None = None  # artifact root for a local store
    model: str = "window_ease"  # any name of models.recommenders.NAMES
    params: tuple[tuple[str, Any], ...] = ()  # hyperparameter overrides, e.g. (("max_items", 5000),)
    # event weights override features' weights when given (purchase > cart > favorite > click > view)
    event_weights: tuple[tuple[str, float], ...] = (
        ("purchase", 4.0), ("add_to_cart", 2.0), ("favorite", 2.0), ("rate", 1.5), ("click", 1.0), ("view", 0.5))
    half_life_days: float | None = 90.0  # recency decay of weights: w * 0.5 ** (age / half_life); None = off
    exclude_event_types: tuple[str, ...] = ("purchase",)  # never re-recommend what a customer already bought
    holdout_days: float = 14.0  # last days held out to measure the model before the final fit on everything
    k: int = 10  # cut-off of the logged metrics
    optuna_trials: int = 0  # > 0: Optuna search on an inner temporal split of the training part (nested runs)
    segment_min_users: int = 1  # segments with fewer users fall back to a broader segment
    segment_shrinkage: float = 20.0  # users' worth of global popularity mixed into each segment
    ann_min_items: int = 50_000  # catalogs at least this large get a FAISS item index for similar_items
    seed: int = 42
    promote: bool = True  # gate: champion only if its holdout nDCG beats the current champion's configuration

    def __post_init__(self) -> None:  # nonsense stops here, before any MLflow run or model version
        if not self.holdout_days > 0:
            raise ValueError(f"holdout_days (--holdout-days) must be above 0, got {self.holdout_days!r}")
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ValueError(f"half_life_days (--half-life-days) must be above 0 (0/None: off), got {self.half_life_days!r}")
        for name, low in (("optuna_trials (--trials)", 0), ("k", 1), ("segment_min_users", 1), ("ann_min_items", 1)):
            if getattr(self, name.split()[0]) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name.split()[0])!r}")


SEGMENT_SOURCES = {"age_band": "tag_age_band", "gender": "gender", "city": "city", "lifecycle": "tag_lifecycle_stage"}


def load_events(config: RecommenderConfig) -> pd.DataFrame:
    """``user, item, event_type, timestamp, weight`` from the features contract (weights re-derived by config)."""
    path = Path(config.data_dir) / "features" / "interactions.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no interactions; run `portrait features build` first")
    raw = pd.read_parquet(path)
    missing = [c for c in ("one_id", "item_id", "event_type", "ts", "weight") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    df = pd.DataFrame({"user": raw["one_id"].astype(str), "item": raw["item_id"].astype(str),
                       "event_type": raw["event_type"].astype(str), "timestamp": pd.to_datetime(raw["ts"], utc=True),
                       "weight": raw["weight"].astype(np.float64)})
    weights = dict(config.event_weights)
    if weights:
        df["weight"] = df["event_type"].map(weights).fillna(df["weight"]).astype(np.float64)
    if config.half_life_days:
        age = (df["timestamp"].max() - df["timestamp"]).dt.total_seconds() / 86400.0
        df["weight"] *= 0.5 ** (age / config.half_life_days)
    return df[df["weight"] > 0].reset_index(drop=True)


def build_bundle(df: pd.DataFrame, model: Any, config: RecommenderConfig, items_df: pd.DataFrame | None = None,
                 profiles: pd.DataFrame | None = None) -> Any:
    """Fit ``model`` on all of ``df`` and wrap it with ids, purchases, catalog and cold-start segments."""
    from models.recommenders import make
    from models.recommenders.serving import SEGMENT_FIELDS, ItemCatalog, RecommenderBundle

    users, items = pd.Index(pd.unique(df["user"])), pd.Index(pd.unique(df["item"]))
    epoch = df["timestamp"].min()
    X, T, _ = event_matrices(df, users, items, epoch)
    fit_model(model, X, T)
    bought_df = df[df["event_type"].isin(config.exclude_event_types)]
    from training.evaluation.splits import to_matrix

    bought = to_matrix(bought_df, users, items, np.ones(len(bought_df), np.float32))
    segments: dict[tuple[str, ...], Any] = {}
    if profiles is not None and len(profiles):
        prof = profiles.set_index("user").reindex(users)
        for fields in (SEGMENT_FIELDS, SEGMENT_FIELDS[:2]):
            keys = prof[list(fields)].astype("string").fillna("").agg(lambda r: "|".join(f"{f}={v}" for f, v in zip(fields, r)), axis=1)
            keys = keys.where(~prof[list(fields)].isna().any(axis=1), None)
            counts = keys.value_counts()
            codes = {key: c for c, key in enumerate(counts[counts >= config.segment_min_users].index)}
            seg = keys.map(codes).fillna(-1).astype(np.int64).to_numpy()
            segments[fields] = (make("segment_popularity", shrinkage=config.segment_shrinkage).fit(X, segments=seg), codes)
    return RecommenderBundle(model=model, users=users, items=items, history=X, times=T, bought=bought,
                             catalog=ItemCatalog.from_frame(items, items_df), segments=segments,
                             event_weights=dict(config.event_weights), exclude_event_types=config.exclude_event_types,
                             epoch=epoch)


def tune(df: pd.DataFrame, config: RecommenderConfig) -> dict[str, Any]:
    """Optuna search of the default model's window and ridge grid, each trial a nested MLflow run.

    The objective is nDCG@k on a global temporal split of ``df`` (the training part only).
    """
    import mlflow
    import optuna

    holdout = Holdout.build(df, config.holdout_days, config.k)  # one for every trial, as train() does

    def objective(trial: optuna.Trial) -> float:
        params = {"window": trial.suggest_int("window", 5, 50, log=True),
                  "lams": (trial.suggest_float("lam", 2.0, 40.0, log=True),),
                  "half_lives": (trial.suggest_categorical("half_life", [None, 5.0, 10.0, 30.0]),)}
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            m = holdout.score(lambda: default_model("temporal", **params), df)
            mlflow.log_params({k: str(v) for k, v in trial.params.items()})
            mlflow.log_metrics({k: float(v) for k, v in m.items()})
        return float(m.get("ndcg", 0.0))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.optimize(objective, n_trials=config.optuna_trials)
    best = dict(study.best_params)
    mlflow.log_dict({"best_params": best, "best_ndcg": study.best_value}, "tuning/best_config.json")
    return {"window": best["window"], "lams": (best["lam"],), "half_lives": (best["half_life"],)}


def train(config: RecommenderConfig, progress: Any = None) -> str:
    """Train, measure and register portrait's recommender; returns the MLflow run id.

    Steps: load events -> (optional Optuna on the training part) -> holdout metrics vs
    popularity -> fit on everything -> bundle (ids, purchases, catalog, segments, FAISS) ->
    log + register ``recommender`` (alias ``challenger``) -> promotion gate (``config.promote``):
    champion only when its holdout nDCG beats the current champion's (ties keep the champion);
    the decision is in the run's tags ``gate.promoted`` / ``gate.reason``.
    """
    import mlflow

    from models.recommenders import make
    from models.recommenders.pyfunc import RecommenderPyfunc
    from training import registry

    step = progress or (lambda name: None)
    step("load interactions")
    df = load_events(config)
    data = Path(config.data_dir)
    items_df = pd.read_parquet(data / "raw" / "items.parquet") if (data / "raw" / "items.parquet").exists() else None
    profiles = _profiles(data / "features" / "customer_features.parquet")
    registry.setup(config.mlflow_uri, config.mlflow_artifacts)
    with registry.start_run("recommender") as run:
        registry.log_config(config, params={"n_events": len(df), "n_users": df["user"].nunique(),
                                            "n_items": df["item"].nunique()})
        params = dict(config.params)
        cut = df["timestamp"].max() - pd.Timedelta(days=config.holdout_days)
        if config.optuna_trials > 0 and config.model == "window_ease":
            step("optuna search")
            params.update(tune(df[df["timestamp"] < cut], config))

        def build() -> Any:
            return default_model("temporal", **params) if config.model == "window_ease" else make(config.model, **params)

        step("holdout metrics")
        holdout = Holdout.build(df, config.holdout_days, config.k)  # once: the gate scores the champion on it too
        metrics = {f"holdout_{k}": v for k, v in holdout.score(build, df).items()}
        metrics.update({f"holdout_popularity_{k}": v for k, v in holdout.score(lambda: make("popularity"), df).items()})
        own = metrics.get(f"holdout_{GATE_METRIC}", float("nan"))
        if not np.isfinite(own):  # a version measured on nobody would be registered, and gated, on a 0 or a nan
            raise ValueError(f"holdout nDCG@{config.k} is {own}: no customer seen before the last "
                             f"{config.holdout_days:g} days interacted with a new item in them; nothing registered "
                             "(give a --holdout-days that covers recent events)")
        step("fit on all events")
        import time

        t0 = time.perf_counter()
        bundle = build_bundle(df, build(), config, items_df, profiles)
        metrics["fit_seconds"] = time.perf_counter() - t0
        if len(bundle.items) >= config.ann_min_items and hasattr(bundle.model, "B_"):
            step("FAISS item index")
            metrics["ann_recall_at_10"] = bundle.attach_ann(_item_vectors(bundle))
        step("register")
        tuned = ("lam_", "window_weight_", "half_life_", "low_pass_rank_", "low_pass_weight_", "low_pass_terms_")
        chosen = {k: getattr(bundle.model, k) for k in tuned if hasattr(bundle.model, k)}
        mlflow.log_dict({k: v for k, v in chosen.items()}, "chosen_params.json")
        version = registry.log_and_register("recommender", RecommenderPyfunc(bundle), metrics=metrics)
        mlflow.set_tag("model_version", version)  # also without the gate (--no-promote): the run names its version
        if config.promote:
            step("promotion gate")
            own = float(own)
            registry.gate_and_tag("recommender", version, lambda m: gate_score(m, holdout, df, config, run.info.run_id, own),
                                  metric=f"holdout_{GATE_METRIC}")
        return run.info.run_id


GATE_METRIC = "ndcg"


def _unfitted(model: Any) -> Any:
    """A fresh copy of ``model``'s configuration (its constructor's parameters), not fitted."""
    import inspect

    names = set(inspect.signature(type(model).__init__).parameters) - {"self"}
    return type(model)(**{k: v for k, v in model.get_params().items() if k in names})


def gate_score(pyfunc: Any, holdout: Holdout, df: pd.DataFrame, config: RecommenderConfig, run_id: str,
               own: float) -> float:
    """nDCG@k of a registered recommender's configuration on this run's ``holdout`` (the promotion gate's score).

    The registered model was fitted on every event, holdout included, so it is not scored as
    it is: its configuration is refitted on the events (``df``) before the holdout's cut (exactly
    what this run's ``holdout_ndcg`` measured for the new model, which is reused) and ranks the
    holdout's new items. Challenger and champion thus meet on one holdout, built once from the
    challenger's events, each weighting the events as it was trained to (the champion's
    ``event_weights`` / ``half_life_days`` from its run, :func:`logged_weighting`); customers or
    items only the champion's weighting keeps are appended to the index, not scored.
    """
    champion_run = getattr(pyfunc.metadata, "run_id", None)
    if champion_run == run_id:
        return own
    bundle = pyfunc.unwrap_python_model().bundle
    own_weights = logged_weighting(champion_run, config, getattr(bundle, "event_weights", None))
    events = df if own_weights == config else load_events(own_weights)  # its weights, the same events
    return float(holdout.score(lambda: _unfitted(bundle.model), events).get(GATE_METRIC, 0.0))


def logged_weighting(run_id: str | None, config: RecommenderConfig,
                     bundle_weights: dict[str, float] | None = None) -> RecommenderConfig:
    """``config`` with the event weighting (``event_weights``, ``half_life_days``) a past run was trained with.

    Read from the run's ``config.json``; a run without one falls back to the weights its bundle
    carries (and this config's half-life). Refitting a champion with the challenger's weights would
    judge a configuration nobody trained.
    """
    from dataclasses import replace

    logged: dict[str, Any] = {}
    if run_id:
        import mlflow

        try:
            logged = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
        except Exception:  # noqa: BLE001 - an older run without config.json: its bundle's weights
            logged = {}
    weights = logged.get("event_weights", bundle_weights)
    changes: dict[str, Any] = {}
    if weights is not None:
        pairs = weights.items() if isinstance(weights, dict) else weights
        changes["event_weights"] = tuple((str(k), float(v)) for k, v in pairs)
    if "half_life_days" in logged:
        changes["half_life_days"] = None if logged["half_life_days"] is None else float(logged["half_life_days"])
    return replace(config, **changes)


def _profiles(path: Path) -> pd.DataFrame | None:
    """Latest snapshot of the cold-start segment fields per customer (None if absent)."""
    if not path.exists():
        return None
    cols = ["one_id", "event_timestamp", *SEGMENT_SOURCES.values()]
    import pyarrow.parquet as pq

    have = set(pq.read_schema(path).names)
    df = pd.read_parquet(path, columns=[c for c in cols if c in have])
    df = df.sort_values("event_timestamp").drop_duplicates("one_id", keep="last")
    out = pd.DataFrame({"user": df["one_id"].astype(str)})
    for field, col in SEGMENT_SOURCES.items():
        out[field] = df[col].astype("string").to_numpy() if col in df.columns else pd.NA
    return out


def _item_vectors(bundle: Any, dim: int = 64) -> np.ndarray:
    """Dense item vectors for the FAISS index: a truncated SVD of the item-item Gram's neighbourhood."""
    from scipy.sparse.linalg import svds

    X = (bundle.history > 0).astype(np.float32)
    k = max(2, min(dim, min(X.shape) - 1))
    _, s, vt = svds(X, k=k, random_state=0)
    return (vt.T * np.sqrt(s)).astype(np.float32)
