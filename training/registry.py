"""MLflow tracking and model registry: log, register, gate, promote, roll back, load.

Every portrait model (churn, ltv, propensity, recommender, lookalike) goes through
here. A training job calls :func:`setup` once with the tracking URI from
``Settings.mlflow_uri`` (default: SQLite under ``mlruns/``), then
:func:`log_and_register` inside :func:`start_run`; the new version gets the alias
``challenger``. :func:`gate` compares it with the current ``champion`` by scoring
**both** with the same function on the same holdout, and moves ``champion`` only when
the challenger is strictly better (or there is no champion). :func:`promote` and
:func:`rollback` are the manual levers (``portrait models promote|rollback``); each
champion change is appended to the registered model's ``champion_history`` tag so a
rollback can restore the previous one. That champion side lives in
:mod:`training.promotion` and is re-exported here: callers use ``registry.gate`` etc.

Models are stored as MLflow pyfunc. A plain Python object with a ``predict(X)``
method is wrapped in a small :class:`mlflow.pyfunc.PythonModel` pickled by value, and
the ``models/`` package is shipped with it (``code_paths``), so any process can run::

    import mlflow
    m = mlflow.pyfunc.load_model("models:/churn@champion")
    m.predict(features_df)

without importing portrait.

Example::

    client = setup("sqlite:///mlruns/mlflow.db", "mlruns/artifacts")
    with start_run("churn") as run:
        version = log_and_register("churn", predictor, feature_names, params={...}, metrics={...})
    decision = gate("churn", version, score=lambda model: auc_on_holdout(model))
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

# the champion / challenger side (aliases, gate, promote, rollback); re-exported: callers use registry.*
from training.promotion import (
    CHALLENGER,
    CHAMPION,
    HISTORY_TAG,
    GateDecision,
    champion_version,
    gate,
    gate_and_tag,
    list_versions,
    promote,
    rollback,
    task_differences,
)

__all__ = ["CHALLENGER", "CHAMPION", "HISTORY_TAG", "MODELS_DIR", "GateDecision", "artifact_location",
           "champion_version", "default_artifact_root", "experiment", "gate", "gate_and_tag", "list_versions", "load",
           "log_and_register", "log_config", "log_figure", "log_frame", "promote", "rollback", "setup", "start_run",
           "task_differences", "wrap_predictor"]

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"  # shipped with every pyfunc


def setup(tracking_uri: str, artifact_root: str | Path | None = None) -> Any:
    """Point MLflow at ``tracking_uri`` (tracking and registry); returns an ``MlflowClient``.

    For a ``sqlite:///`` URI the database folder is created; ``artifact_root`` is where
    experiments created by :func:`experiment` keep their artifacts (default: an
    ``artifacts`` folder next to the SQLite file; for any other URI, e.g. an MLflow server,
    none: the server's default artifact root, never this machine's ``./mlruns``).
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
    try:  # an unknown scheme fails here, not minutes later when a trained model is logged
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    except MlflowException as exc:
        raise ValueError(f"MLflow tracking URI {tracking_uri!r} cannot be used ({exc.message.strip()}); "
                         "give a sqlite:///PATH.db file or an http(s):// MLflow server") from exc
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    global _ARTIFACT_ROOT
    if not artifact_root:
        _ARTIFACT_ROOT = default_artifact_root(tracking_uri)
    elif "://" in str(artifact_root):  # s3://bucket/mlflow, gs://...: shared storage, kept as given
        _ARTIFACT_ROOT = str(artifact_root).rstrip("/")
    else:
        _ARTIFACT_ROOT = Path(artifact_root).resolve()
    return client


_ARTIFACT_ROOT: Path | str | None = None


def default_artifact_root(uri: str) -> Path | None:
    """Artifact root for tracking ``uri``: ``<db folder>/artifacts`` for ``sqlite:///<db>``, else None.

    ``sqlite:////srv/mlflow/mlflow.db`` -> ``/srv/mlflow/artifacts``; an ``http(s)://`` server (or
    any other store) -> None, so new experiments take the server's default artifact root.
    """
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts"
    return None


def experiment(name: str) -> str:
    """Id of experiment ``name``, created (with artifacts under the artifact root) if missing."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location(name))


def artifact_location(name: str) -> str | None:
    """Where a new experiment ``name`` keeps its artifacts: ``<artifact root>/<name>`` as a file URI,
    or None (no local root, e.g. an MLflow server: the server's default artifact root)."""
    if isinstance(_ARTIFACT_ROOT, str):
        return f"{_ARTIFACT_ROOT}/{name}"
    return (_ARTIFACT_ROOT / name).as_uri() if _ARTIFACT_ROOT else None


@contextmanager
def start_run(experiment_name: str, run_name: str | None = None, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """An MLflow run in experiment ``experiment_name`` (one experiment per model)."""
    import mlflow

    exp_id = experiment(experiment_name)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags) as run:
        yield run


SECRET_FIELDS = frozenset({"hmac_key"})  # carried by configs (training.datasets.Paths), never logged


def _public(obj: Any) -> Any:
    """``obj`` (a dataclass, dict or value) as plain data without the :data:`SECRET_FIELDS`, at any depth."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if k not in SECRET_FIELDS}
    return obj


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    obj = _public(obj)
    out: dict[str, Any] = {}
    for k, v in dict(obj).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) or (is_dataclass(v) and not isinstance(v, type)):
            out.update(_flat(v, f"{key}."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def log_config(config: Any, params: dict[str, Any] | None = None) -> None:
    """Log a (dataclass) config as flattened params and whole as ``config.json``, plus extra params."""
    import mlflow

    flat = _flat(config) if config is not None else {}
    flat.update(params or {})
    mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})
    if config is not None:
        body = _public(config)
        mlflow.log_text(json.dumps(body, indent=2, default=str), "config.json")


def wrap_predictor(predictor: Any, feature_names: list[str], output: str = "score") -> Any:
    """A pyfunc ``PythonModel`` around any object with ``predict(X) -> array | DataFrame``.

    The class is built here so cloudpickle stores it **by value**: loading needs only
    MLflow, pandas/numpy and the ``models`` package shipped via ``code_paths``.
    Input: a DataFrame holding at least ``feature_names`` (extra columns are ignored,
    missing ones raise a ``KeyError`` naming them). Output: a DataFrame with column
    ``output`` (or the predictor's own DataFrame columns). A predictor with
    ``predict_outputs(X, output) -> DataFrame`` (ZILN: P(buy) and spend quantiles) returns
    those columns, ``output`` among them; serving calls the predictor's ``predict`` and sees
    ``output`` alone.
    """
    import mlflow.pyfunc

    class PredictorModel(mlflow.pyfunc.PythonModel):
        def __init__(self, predictor: Any, feature_names: list[str], output: str) -> None:
            self.predictor = predictor
            self.feature_names = list(feature_names)
            self.output = output

        def predict(self, context, model_input, params=None):  # untyped: MLflow infers no signature from hints
            import pandas as pd

            df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
            missing = [c for c in self.feature_names if c not in df.columns]
            if missing:
                raise KeyError(f"input lacks feature column(s) {missing}")
            X = df[self.feature_names]
            several = getattr(self.predictor, "predict_outputs", None)
            out = several(X, self.output) if callable(several) else self.predictor.predict(X)
            if isinstance(out, pd.DataFrame):
                return out.set_axis(df.index)
            return pd.DataFrame({self.output: out}, index=df.index)

    return PredictorModel(predictor, feature_names, output)


def log_and_register(
    name: str,
    model: Any,
    feature_names: list[str] | None = None,
    *,
    output: str = "score",
    metrics: dict[str, float] | None = None,
    artifacts: dict[str, str | Path] | None = None,
    input_example: Any = None,
    code_paths: list[str | Path] | None = None,
    pip_requirements: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Log ``model`` as pyfunc in the active run, register it as a new version of ``name``.

    ``model`` is a ``PythonModel`` or a predictor (wrapped with :func:`wrap_predictor`,
    which needs ``feature_names``). ``artifacts`` maps an artifact folder to local files
    or folders to log next to it. The new version gets the alias ``challenger`` and the
    run's metrics as version tags. Returns the version (a string).
    """
    import mlflow
    import mlflow.pyfunc

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active run (use training.registry.start_run)")
    if not isinstance(model, mlflow.pyfunc.PythonModel):
        if feature_names is None:
            raise ValueError("feature_names is required to wrap a plain predictor")
        model = wrap_predictor(model, feature_names, output)
    if metrics:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
    for folder, path in (artifacts or {}).items():
        p = Path(path)
        (mlflow.log_artifacts if p.is_dir() else mlflow.log_artifact)(str(p), folder)
    info = mlflow.pyfunc.log_model(
        name="model", python_model=model, input_example=input_example,
        code_paths=[str(p) for p in (code_paths if code_paths is not None else [MODELS_DIR])],
        pip_requirements=pip_requirements or _default_requirements(),
    )
    client = mlflow.MlflowClient()
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name)
    mv = client.create_model_version(name, info.model_uri, run_id=run.info.run_id,
                                     tags={**(tags or {}), **{f"metric.{k}": f"{v:.6g}" for k, v in (metrics or {}).items()
                                                                if v is not None}})
    version = str(mv.version)
    _wait_ready(client, name, version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def _default_requirements() -> list[str]:
    from importlib.metadata import version

    reqs = []
    for pkg in ("mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "torch"):
        try:
            reqs.append(f"{pkg}=={version(pkg)}")
        except Exception:  # noqa: BLE001 - a missing optional package is simply not required
            pass
    return reqs


def _wait_ready(client: Any, name: str, version: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while client.get_model_version(name, version).status != "READY":
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {name} version {version} did not become READY")
        time.sleep(0.2)


def load(name: str, alias: str = CHAMPION) -> Any:
    """``mlflow.pyfunc.load_model("models:/<name>@<alias>")``."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")


def log_figure(fig: Any, path: str) -> None:
    """Log a matplotlib figure as an artifact and close it."""
    import matplotlib.pyplot as plt
    import mlflow

    mlflow.log_figure(fig, path)
    plt.close(fig)


def log_frame(df: Any, path: str) -> None:
    """Log a DataFrame as a CSV artifact."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        df.to_csv(local, index=False)
        mlflow.log_artifact(str(local), str(Path(path).parent) if Path(path).parent != Path(".") else None)
