"""Serving-area fixtures: a small real world built once per session.

A data directory in the contract's shape (golden records, record map, items,
interactions, two feature snapshots) and a real SQLite MLflow registry holding
real models: LightGBM churn / ltv / propensity predictors wrapped as pyfunc the
way ``training.registry.wrap_predictor`` does (``predictor`` + ``feature_names``),
and a cosine item-kNN ``models.base.Recommender``. Classes are defined inside
functions so cloudpickle stores them by value and a ``bentoml serve`` worker
loads them without importing this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N_USERS, N_ITEMS, COLD_USERS = 80, 40, 5  # the last COLD_USERS customers have no interactions
FEATURES = ["recency_days", "frequency", "monetary", "tenure_days"]
KEY = "test-key-123"


@dataclass(frozen=True)
class World:
    data_dir: Path
    uri: str  # MLflow tracking + registry URI
    one_ids: list[str]
    item_ids: list[str]
    versions: dict  # model -> [versions]


def _wrap(predictor, names):  # noqa: ANN001, ANN202 - a pyfunc like training.registry.wrap_predictor
    import mlflow.pyfunc

    class PredictorModel(mlflow.pyfunc.PythonModel):
        def __init__(self, predictor, feature_names):  # noqa: ANN001
            self.predictor, self.feature_names = predictor, list(feature_names)

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return pd.DataFrame({"score": self.predictor.predict(model_input[self.feature_names].to_numpy())})

    return PredictorModel(predictor, names)


def _proba(model):  # noqa: ANN001, ANN202 - a classifier whose predict() is P(y=1)
    class Proba:
        def __init__(self, m):  # noqa: ANN001
            self.m = m

        def predict(self, X):  # noqa: ANN001, ANN201
            return self.m.predict_proba(X)[:, 1]

    return Proba(model)


def item_knn():  # noqa: ANN201 - a real (tiny) models.base.Recommender: cosine item-item kNN
    import scipy.sparse as sp

    from models.base import Recommender

    class CosineItemKNN(Recommender):
        def fit(self, user_items):  # noqa: ANN001, ANN201
            X = sp.csr_matrix(user_items, dtype=np.float64)
            norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0))).ravel() + 1e-9
            sim = (X.T @ X).toarray() / np.outer(norms, norms)
            np.fill_diagonal(sim, 0.0)
            self.sim_ = sim
            return self

        def recommend(self, user_items, k=10, exclude_seen=True, allowed=None):  # noqa: ANN001, ANN201
            s = np.asarray(user_items @ self.sim_, dtype=np.float64)
            if exclude_seen:
                for r in range(s.shape[0]):
                    s[r, user_items[r].indices] = -np.inf
            if allowed is not None:
                s[:, ~allowed] = -np.inf
            ids = np.argsort(-s, axis=1, kind="stable")[:, :k]
            sc = np.take_along_axis(s, ids, axis=1)
            return np.where(np.isfinite(sc), ids, -1), np.where(np.isfinite(sc), sc, 0.0)

        def similar_items(self, items, k=10):  # noqa: ANN001, ANN201
            s = self.sim_[items].copy()
            s[np.arange(len(items)), items] = -np.inf
            ids = np.argsort(-s, axis=1, kind="stable")[:, :k]
            return ids, np.take_along_axis(s, ids, axis=1)

    return CosineItemKNN()


def _rec_pyfunc(model, user_ids, item_ids, user_items):  # noqa: ANN001, ANN202
    import mlflow.pyfunc

    class RecommenderModel(mlflow.pyfunc.PythonModel):
        def __init__(self):
            self.recommender, self.user_ids, self.item_ids, self.user_items = model, user_ids, item_ids, user_items

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            rows = [self.user_ids.index(u) for u in model_input["user_id"]]
            return self.recommender.recommend(self.user_items[rows], k=10)[0]

    return RecommenderModel()


def build_data(data_dir: Path, seed: int = 0) -> tuple[list[str], list[str], pd.DataFrame]:
    """Write the contract files; returns one_ids, item_ids and the latest feature snapshot."""
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
    for u in range(N_USERS - COLD_USERS):
        pref = u % 4
        for i in rng.choice(np.flatnonzero(np.arange(N_ITEMS) % 4 == pref), 5, replace=False):
            rows.append((one_ids[u], item_ids[i], "purchase" if rng.random() < 0.3 else "view"))
    inter = pd.DataFrame(rows, columns=["one_id", "item_id", "event_type"])
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


def _log(uri: str, name: str, python_model) -> str:  # noqa: ANN001
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("serving-tests")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=python_model, registered_model_name=name,
                                       pip_requirements=[], code_paths=[str(Path(__file__).parents[2] / "models")])
    return str(info.registered_model_version)


def build_registry(uri: str, artifacts: Path, feats: pd.DataFrame, one_ids: list[str], item_ids: list[str],
                   data_dir: Path) -> dict:
    """Register real models: churn v1+v2, ltv, propensity, recommender; all v1 are champions."""
    import lightgbm as lgb
    import mlflow
    import scipy.sparse as sp

    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("serving-tests", artifact_location=str(artifacts))
    X = feats[FEATURES].to_numpy(dtype=float)
    churned = (feats["recency_days"] > 100).to_numpy().astype(int)
    params = dict(n_estimators=20, num_leaves=4, min_child_samples=5, verbose=-1)
    versions: dict = {}
    for flip in (False, True):  # v2 learns the opposite label: a promotion visibly changes the scores
        y = 1 - churned if flip else churned
        versions.setdefault("churn", []).append(
            _log(uri, "churn", _wrap(_proba(lgb.LGBMClassifier(**params).fit(X, y)), FEATURES)))
    versions["ltv"] = [_log(uri, "ltv", _wrap(lgb.LGBMRegressor(**params).fit(X, feats["monetary"] * 2), FEATURES))]
    versions["propensity"] = [_log(uri, "propensity", _wrap(
        _proba(lgb.LGBMClassifier(**params).fit(X, (feats["frequency"] > 3).astype(int))), FEATURES))]
    inter = pd.read_parquet(data_dir / "features" / "interactions.parquet")
    users = [o for o in one_ids if o in set(inter["one_id"])]
    u = inter["one_id"].map({o: i for i, o in enumerate(users)}).to_numpy()
    i = inter["item_id"].map({o: k for k, o in enumerate(item_ids)}).to_numpy()
    ui = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(len(users), len(item_ids)))
    ui.sum_duplicates()
    versions["recommender"] = [_log(uri, "recommender", _rec_pyfunc(item_knn().fit(ui), users, item_ids, ui))]
    client = mlflow.MlflowClient(uri, uri)
    for name, vs in versions.items():
        client.set_registered_model_alias(name, "champion", vs[0])
    return versions


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Data directory + registry with real small models (built once per session, ~15 s)."""
    root = tmp_path_factory.mktemp("world")
    data = root / "data"
    one_ids, item_ids, feats = build_data(data)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    versions = build_registry(uri, root / "artifacts", feats, one_ids, item_ids, data)
    return World(data, uri, one_ids, item_ids, versions)


@pytest.fixture()
def world_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The serving environment variables pointing at the world (poll off, API key set)."""
    for k, v in {"PORTRAIT_DATA_DIR": str(world.data_dir), "PORTRAIT_MLFLOW_URI": world.uri,
                 "PORTRAIT_API_KEY": KEY, "PORTRAIT_POLL_SECONDS": "0"}.items():
        monkeypatch.setenv(k, v)
    return world
