"""``portrait demo`` end to end on a tiny population (no server): every step runs and writes its outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_every_step_on_tiny_data(tmp_path: Path) -> None:
    env = {"PORTRAIT_DATA_DIR": str(tmp_path / "data"), "PORTRAIT_MLRUNS_DIR": str(tmp_path / "mlruns"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "portrait.cli", "demo", "--people", "400", "--no-serve"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw = tmp_path / "data" / "raw"
    for table in ("identity_records", "profiles", "events", "orders", "order_lines", "items", "campaign_contacts"):
        assert (raw / f"{table}.parquet").exists(), table
    assert "0 rejects" in proc.stderr
    data = tmp_path / "data"
    assert (data / "identity" / "record_map.parquet").exists()
    assert (data / "features" / "customer_features.parquet").exists()
    assert (data / "feast" / "online.db").exists()
    # every model was trained, registered and (first run) promoted through the gate
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)  # else: the registry earlier tests set
    for name in ("recommender", "churn", "ltv", "propensity", "lookalike"):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1", name
    # predicted tags were written back
    import pandas as pd

    history = pd.read_parquet(data / "tags" / "history.parquet")
    assert {"churn_tier", "ltv_tier", "propensity_decile"} <= set(history["tag"])
