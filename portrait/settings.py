"""Where portrait keeps its state, read once from the environment.

Every component's state lives under one data directory (``PORTRAIT_DATA_DIR``,
default ``./data``); the MLflow store defaults to SQLite with artifacts under ``./mlruns``
(``PORTRAIT_MLRUNS_DIR``), or is ``PORTRAIT_MLFLOW_URI``: a ``sqlite:///`` URI keeps its
artifacts beside the database, any other (an MLflow server) its own artifact root. Nothing here runs
at import time: the CLI and the service call :func:`load_settings` and pass the
resulting paths down to the layers as plain arguments or config dataclasses.

Layout of the data directory::

    raw/          canonical input tables (Parquet), one file per table
    raw/_truth/   ground truth written by the synthetic generator
    rejects/      rows refused by validation, with a reason per row
    identity/     OneID map, golden records, aliases, change logs
    features/     feature and tag tables computed as of a cutoff
    feast/        Feast registry and SQLite online store
    audiences/    saved audiences
    tags/         predicted-tag history
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # root of every file portrait writes, except the MLflow store
    mlflow_uri: str  # MLflow tracking URI; default SQLite under ./mlruns
    # where new experiments keep artifacts: PORTRAIT_MLFLOW_ARTIFACTS (a folder or s3://... URI), else beside
    # a SQLite store's database, else <mlruns>/artifacts for a database URI (postgresql://...: MLflow's own
    # default there is the working folder's ./mlruns); None = an MLflow server's own default artifact root
    mlflow_artifacts: Path | str | None
    hmac_key: str | None  # key for identifier hashing; None outside the demo is an error
    api_key: str | None  # required for write/admin endpoints when set

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "raw" / "_truth"

    @property
    def rejects_dir(self) -> Path:
        return self.data_dir / "rejects"

    @property
    def identity_dir(self) -> Path:
        return self.data_dir / "identity"

    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def audiences_dir(self) -> Path:
        return self.data_dir / "audiences"

    @property
    def tags_dir(self) -> Path:
        return self.data_dir / "tags"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("PORTRAIT_DATA_DIR", "data")).resolve()
    mlruns = Path(env.get("PORTRAIT_MLRUNS_DIR", "mlruns")).resolve()
    uri = env.get("PORTRAIT_MLFLOW_URI") or env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlruns / 'mlflow.db'}"
    return Settings(
        data_dir=data_dir,
        mlflow_uri=uri,
        mlflow_artifacts=_artifacts(env.get("PORTRAIT_MLFLOW_ARTIFACTS", "").strip(), uri, mlruns),
        hmac_key=env.get("PORTRAIT_HMAC_KEY"),
        api_key=env.get("PORTRAIT_API_KEY"),
    )


DATABASES = ("postgresql", "mysql", "mssql", "oracle")  # SQLAlchemy stores MLflow opens directly, no server


def _artifacts(explicit: str, uri: str, mlruns: Path) -> Path | str | None:
    from training.registry import default_artifact_root  # the one rule: beside a SQLite store, else None

    if explicit:
        return explicit if "://" in explicit else Path(explicit).resolve()
    if uri.split(":", 1)[0].split("+", 1)[0] in DATABASES:
        return mlruns / "artifacts"
    return default_artifact_root(uri)
