"""Where MLflow artifacts go: beside a ``PORTRAIT_MLFLOW_URI`` SQLite database, never the working folder's ``./mlruns``.

A SQLite store elsewhere (``sqlite:////srv/mlflow/mlflow.db``) keeps its artifacts in
``/srv/mlflow/artifacts``; an MLflow server URI gets no local artifact location at all, so new
experiments take the server's default artifact root.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from portrait.settings import load_settings

SERVER = "http://mlflow.example.internal:5000"


@pytest.fixture()
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty working folder, with the MLflow store in another folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path / "store"


def test_a_sqlite_uri_keeps_its_artifacts_beside_the_database(elsewhere: Path) -> None:
    s = load_settings({"PORTRAIT_MLFLOW_URI": f"sqlite:///{elsewhere / 'mlflow.db'}"})
    assert s.mlflow_artifacts == elsewhere / "artifacts"
    default = load_settings({})  # no URI: SQLite and artifacts under ./mlruns (PORTRAIT_MLRUNS_DIR)
    assert default.mlflow_artifacts == Path.cwd() / "mlruns" / "artifacts"
    assert load_settings({"PORTRAIT_MLRUNS_DIR": str(elsewhere)}).mlflow_artifacts == elsewhere / "artifacts"


def test_training_through_a_sqlite_uri_writes_nothing_in_the_working_folder(
        elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``portrait train recommender`` with the store elsewhere: the model's files are in <store>/artifacts."""
    import mlflow

    from portrait.cli import app
    from tests.recsys.test_recsys_train import write_inputs

    data = elsewhere.parent / "data"
    write_inputs(data)
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(data))
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", f"sqlite:///{elsewhere / 'mlflow.db'}")
    res = CliRunner().invoke(app, ["train", "recommender", "--holdout-days", "5", "--no-promote", "--json"])
    assert res.exit_code == 0, res.output
    assert list(Path.cwd().iterdir()) == []  # no ./mlruns
    location = mlflow.get_experiment_by_name("recommender").artifact_location
    assert location == (elsewhere / "artifacts" / "recommender").as_uri()
    assert list((elsewhere / "artifacts" / "recommender").rglob("MLmodel"))


def test_a_server_uri_sets_no_local_artifact_location(elsewhere: Path) -> None:
    """An MLflow server decides where artifacts go: portrait creates its experiments without a location."""
    from training import registry
    from training.datasets import Paths

    s = load_settings({"PORTRAIT_MLFLOW_URI": SERVER, "PORTRAIT_MLRUNS_DIR": str(elsewhere)})
    assert s.mlflow_uri == SERVER and s.mlflow_artifacts is None
    assert Paths.from_settings(s).mlflow_artifacts is None  # not the string "None"
    try:
        registry.setup(s.mlflow_uri, s.mlflow_artifacts)  # no request is made: nothing listens there
        assert registry.artifact_location("churn") is None
    finally:  # leave MLflow pointed at a local store, not at a server that does not exist
        registry.setup(f"sqlite:///{elsewhere / 'mlflow.db'}")
    assert registry.artifact_location("churn") == (elsewhere / "artifacts" / "churn").as_uri()


def test_a_database_uri_keeps_artifacts_in_mlruns_not_the_working_folder(elsewhere: Path) -> None:
    """MLflow opened on a database directly would put artifacts in the working folder's ./mlruns."""
    for uri in ("postgresql://mlflow@db.internal/mlflow", "mysql+pymysql://u@db/mlflow"):
        s = load_settings({"PORTRAIT_MLFLOW_URI": uri, "PORTRAIT_MLRUNS_DIR": str(elsewhere)})
        assert s.mlflow_artifacts == elsewhere / "artifacts", uri


def test_portrait_mlflow_artifacts_overrides_the_rule(elsewhere: Path) -> None:
    """A shared folder or an object-store URI for every kind of store, an MLflow server's included."""
    from training import registry

    s = load_settings({"PORTRAIT_MLFLOW_URI": SERVER, "PORTRAIT_MLFLOW_ARTIFACTS": "s3://bucket/mlflow/"})
    assert s.mlflow_artifacts == "s3://bucket/mlflow/"
    shared = load_settings({"PORTRAIT_MLFLOW_URI": "postgresql://db/mlflow", "PORTRAIT_MLFLOW_ARTIFACTS": "shared"})
    assert shared.mlflow_artifacts == Path.cwd() / "shared"  # resolved once, as the other folders are
    db = f"sqlite:///{elsewhere / 'mlflow.db'}"
    try:
        registry.setup(db, s.mlflow_artifacts)
        assert registry.artifact_location("churn") == "s3://bucket/mlflow/churn"
        registry.setup(db, elsewhere / "art")
        import mlflow

        exp = mlflow.get_experiment(registry.experiment("located"))
        assert exp.artifact_location == (elsewhere / "art" / "located").as_uri()
    finally:
        registry.setup(db)
    assert registry.artifact_location("churn") == (elsewhere / "artifacts" / "churn").as_uri()
