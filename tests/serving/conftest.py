"""Serving-area fixtures: one real MLflow registry per test session (creating its SQLite schema is slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def register_constant(uri: str, name: str, constant: int) -> str:
    """Log and register a real sklearn classifier that always predicts ``constant``; returns its version."""
    import mlflow
    from sklearn.dummy import DummyClassifier

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("serving-tests")
    model = DummyClassifier(strategy="constant", constant=constant).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, pip_requirements=[])
    return str(info.registered_model_version)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URI of a SQLite MLflow registry holding 'churn' v1 (predicts 0) and v2 (predicts 1); no alias set."""
    root: Path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    import mlflow

    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("serving-tests", artifact_location=str(root / "artifacts"))
    assert exp
    assert register_constant(uri, "churn", 0) == "1"
    assert register_constant(uri, "churn", 1) == "2"
    return uri
