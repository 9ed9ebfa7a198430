"""A small real serving world: contract-shaped data files and a real MLflow registry with real models.

Used by the serving tests (tiny sizes) and by ``benchmarks/serving*.py`` (larger
sizes) when no pipeline output is given: golden records, a record map, items,
interactions and two feature snapshots under a data directory, and in a SQLite
MLflow registry, registered through ``training.registry`` exactly as the training
jobs do: the value area's LightGBM churn (v1 and an opposite v2) / ltv /
propensity models, the recsys area's ``RecommenderBundle`` (EASE) in its pyfunc and
the audience area's lookalike population (ALS embeddings + FAISS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

N_USERS, N_ITEMS, COLD_USERS = 80, 40, 5  # the last COLD_USERS customers have no interactions
FEATURES = ["recency_days", "frequency", "monetary", "tenure_days"]


@dataclass(frozen=True)
class World:
    data_dir: Path
    uri: str  # MLflow tracking + registry URI
    one_ids: list[str]
    item_ids: list[str]
    versions: dict  # model -> [versions]


def build_data(data_dir: Path, seed: int = 0, n_users: int = N_USERS, n_items: int = N_ITEMS,
               cold_users: int = COLD_USERS) -> tuple[list[str], list[str], pd.DataFrame]:
    """Write the contract files; returns one_ids, item_ids and the latest feature snapshot."""
    N_USERS, N_ITEMS, COLD_USERS = n_users, n_items, cold_users  # noqa: N806 - the module defaults, overridden
    rng = np.random.default_rng(seed)
    one_ids = [f"O{i:05d}" for i in range(N_USERS)]
    item_ids = [f"I{i:03d}" for i in range(N_ITEMS)]
    (data_dir / "identity").mkdir(parents=True)
    (data_dir / "raw").mkdir()
    (data_dir / "features").mkdir()
    pd.DataFrame({"one_id": one_ids, "birth_year": rng.integers(1960, 2005, N_USERS),
                  "gender": rng.choice(["F", "M"], N_USERS), "city": rng.choice(["Shanghai", "Beijing"], N_USERS),
                  "reg_channel": "app", "occupation": "engineer", "n_records": 2, "sources": "app,crm"}
                 ).to_parquet(data_dir / "identity" / "golden.parquet")
    pd.DataFrame({"source": ["crm"] * N_USERS, "record_id": [f"m{i}" for i in range(N_USERS)], "one_id": one_ids}
                 ).to_parquet(data_dir / "identity" / "record_map.parquet")
    cats = np.array([f"c{i % 4}" for i in range(N_ITEMS)])
    pd.DataFrame({"item_id": item_ids, "category": cats, "price": rng.uniform(5, 100, N_ITEMS).round(2),
                  "in_stock": np.arange(N_ITEMS) % 7 != 0,
                  "launch_date": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(N_ITEMS), "D")}
                 ).to_parquet(data_dir / "raw" / "items.parquet")
    rows = []
    by_cat = [np.flatnonzero(np.arange(N_ITEMS) % 4 == c) for c in range(4)]
    for u in range(N_USERS - COLD_USERS):
        for i in rng.choice(by_cat[u % 4], 5, replace=False):
            rows.append((one_ids[u], item_ids[i]))
    inter = pd.DataFrame(rows, columns=["one_id", "item_id"])
    inter["event_type"] = np.where(rng.random(len(inter)) < 0.3, "purchase", "view")
    inter["ts"] = pd.Timestamp("2024-06-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90, len(inter)), "D")
    inter["weight"] = 1.0
    inter.to_parquet(data_dir / "features" / "interactions.parquet")
    snaps = []
    for cutoff in ("2024-08-01", "2024-09-01"):
        f = pd.DataFrame({"one_id": one_ids, "event_timestamp": pd.Timestamp(cutoff, tz="UTC"),
                          "recency_days": rng.integers(0, 200, N_USERS).astype(float),
                          "frequency": rng.poisson(3, N_USERS).astype(float),
                          "monetary": rng.gamma(2, 50, N_USERS), "tenure_days": rng.integers(30, 900, N_USERS)})
        f["tag_lifecycle_stage"] = np.where(f["recency_days"] < 60, "active", "dormant")
        f["tag_high_potential"] = f["monetary"] > 150
        snaps.append(f)
    feats = pd.concat(snaps, ignore_index=True)
    feats["event_timestamp"] = feats["event_timestamp"].dt.as_unit("us")
    feats.to_parquet(data_dir / "features" / "customer_features.parquet")
    return one_ids, item_ids, snaps[-1]


def build_registry(uri: str, artifacts: Path, feats: pd.DataFrame, one_ids: list[str], item_ids: list[str],
                   data_dir: Path) -> dict:
    """Register real models through ``training.registry``: churn v1 + v2, ltv, propensity, recommender.

    Predictors are the value area's ``models.gbm`` LightGBM models; the recommender is the
    recsys area's ``RecommenderBundle`` (EASE) in its pyfunc. Every v1 is champion.
    """
    from models.calibration import CalibratedClassifier, Calibrator, MultiOutput
    from models.gbm import GBMClassifier, GBMRegressor
    from models.recommenders import make
    from models.recommenders.pyfunc import RecommenderPyfunc
    from training import registry
    from training.recommender import RecommenderConfig, build_bundle, load_events

    registry.setup(uri, artifacts)
    X = feats[FEATURES].astype(float).reset_index(drop=True)
    churned = (feats["recency_days"] > 100).to_numpy().astype(int)
    small = dict(n_estimators=20, num_leaves=4, min_child_samples=5)
    versions: dict = {}

    def log(name: str, model, names=None) -> None:  # noqa: ANN001
        with registry.start_run(name):
            versions.setdefault(name, []).append(registry.log_and_register(name, model, names, pip_requirements=["mlflow"]))

    for flip in (False, True):  # v2 learns the opposite label: a promotion visibly changes the scores
        y = 1 - churned if flip else churned
        base = GBMClassifier(**small).fit(X, y)  # calibrated, as the value area's churn job does
        log("churn", CalibratedClassifier(base, Calibrator("isotonic").fit(base.predict(X), y)), FEATURES)
    log("ltv", GBMRegressor(**small, objective="regression").fit(X, feats["monetary"].to_numpy() * 2), FEATURES)
    log("propensity", MultiOutput({  # overall + per category, as the value area's propensity job does
        "propensity": GBMClassifier(**small).fit(X, (feats["frequency"] > 3).astype(int)),
        "propensity_c0": GBMClassifier(**small).fit(X, (feats["monetary"] > 100).astype(int))}), FEATURES)
    cfg = RecommenderConfig(data_dir=str(data_dir), mlflow_uri=uri, model="ease")
    items = pd.read_parquet(data_dir / "raw" / "items.parquet")
    log("recommender", RecommenderPyfunc(build_bundle(load_events(cfg), make("ease"), cfg, items)))
    for name, vs in versions.items():
        registry.promote(name, vs[0], "serving world")
    from training.lookalike import LookalikeConfig, train as train_lookalike

    train_lookalike(LookalikeConfig(features_dir=str(data_dir / "features"), factors=8, als_iterations=3, min_seeds=5),
                    uri, artifacts)  # registers `lookalike`, champion as the first version
    versions["lookalike"] = ["1"]
    return versions


def build_world(root: Path, n_users: int = N_USERS, n_items: int = N_ITEMS, cold_users: int = COLD_USERS) -> World:
    """Data directory + registry under ``root`` (all v1 are champions)."""
    data = root / "data"
    one_ids, item_ids, feats = build_data(data, n_users=n_users, n_items=n_items, cold_users=cold_users)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    versions = build_registry(uri, root / "artifacts", feats, one_ids, item_ids, data)
    return World(data, uri, one_ids, item_ids, versions)


def build_feast_world(root: Path, n_users: int = 300, seed: int = 3) -> World:
    """A world whose features live in a real, applied and materialized Feast repo (SQLite online store).

    ``features/customer_features.parquet`` has the contract's columns (``features.feast_ext.sample``,
    two snapshots); ``portrait``'s Feast repo is applied and the latest snapshot materialized;
    churn (calibrated), ltv and propensity (two outputs) LightGBM models are trained on the columns of
    their FeatureServices and registered as champions. No recommender: ``/score`` only.
    """
    from datetime import datetime, timezone

    from features.feast_ext.sample import customer_table, item_table
    from features.io import write_parquet
    from features.store import open_store
    from models.calibration import CalibratedClassifier, Calibrator, MultiOutput
    from models.gbm import GBMClassifier, GBMRegressor
    from training import registry

    data = root / "data"
    cutoffs = [datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc)]
    table = customer_table(n_users, cutoffs, seed=seed)
    write_parquet(table, data / "features" / "customer_features.parquet")
    write_parquet(item_table(20, cutoffs), data / "features" / "item_features.parquet")  # the repo declares both
    one_ids = table["one_id"].astype(str).unique().tolist()
    (data / "identity").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"one_id": one_ids, "gender": "F", "city": "Shanghai"}).to_parquet(data / "identity" / "golden.parquet")
    pd.DataFrame({"source": "crm", "record_id": [f"m{i}" for i in range(len(one_ids))], "one_id": one_ids}
                 ).to_parquet(data / "identity" / "record_map.parquet")
    store = open_store(data)
    store.apply()
    store.materialize(end=datetime(2026, 5, 1, tzinfo=timezone.utc))
    names = store.columns("churn_v1")[1:]
    latest = table[table["event_timestamp"] == table["event_timestamp"].max()].reset_index(drop=True)
    X = latest[names]
    num = latest[names].select_dtypes("number").columns
    a, b = latest[num[0]].fillna(0).to_numpy(), latest[num[1]].fillna(0).to_numpy()
    y1, y2 = (a > np.median(a)).astype(int), (b > np.median(b)).astype(int)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry.setup(uri, root / "artifacts")
    small = dict(n_estimators=20, num_leaves=4, min_child_samples=5)
    base = GBMClassifier(**small).fit(X, y1)
    models = {"churn": CalibratedClassifier(base, Calibrator("isotonic").fit(base.predict(X), y1)),
              "ltv": GBMRegressor(**small, objective="regression").fit(X, a + b),
              "propensity": MultiOutput({"propensity": GBMClassifier(**small).fit(X, y2),
                                         "propensity_c0": GBMClassifier(**small).fit(X, y1)})}
    versions: dict = {}
    for name, model in models.items():
        with registry.start_run(name):
            versions[name] = [registry.log_and_register(name, model, names, pip_requirements=["mlflow"])]
        registry.promote(name, versions[name][0], "feast world")
    return World(data, uri, one_ids, [], versions)
