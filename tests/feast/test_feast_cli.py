"""The CLI: ``portrait features apply|materialize|online``, and the plain ``feast`` CLI in a copy of the repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portrait.cli import app
from features.store import REPO_DIR


def test_portrait_features_commands(feast_data, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(feast_data))
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)
    runner = CliRunner()
    res = runner.invoke(app, ["features", "apply"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["features", "materialize", "--end", "2026-05-01"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["features", "online", "c0000001", "nobody", "--service", "ltv_v1", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout[res.stdout.index("{"):])
    assert got["one_id"] == ["c0000001", "nobody"] and got["monetary_90d"][0] is not None and got["monetary_90d"][1] is None
    res = runner.invoke(app, ["features", "online", "c0000001", "--service", "nope_v1"])
    assert res.exit_code == 2 and "nope_v1" in res.output
    res = runner.invoke(app, ["features", "materialize", "--end", "yesterday-ish"])
    assert res.exit_code == 2 and "--end" in res.output


def test_apply_without_features_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "empty"))
    res = CliRunner().invoke(app, ["features", "apply"])
    assert res.exit_code == 2 and "feature table not found" in res.output


def test_plain_feast_cli_in_a_copy_of_the_repo(feast_data, snap):
    """``feast apply`` inside feature_repo/ reads the YAML as-is: registry and online store under ../data."""
    from feast import FeatureStore

    repo = feast_data.parent / "feature_repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("__pycache__"))
    feast = Path(sys.executable).with_name("feast")
    env = {**os.environ, "PORTRAIT_DATA_DIR": str(feast_data)}
    proc = subprocess.run([str(feast), "apply"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (feast_data / "feast" / "registry.db").exists()
    fs = FeatureStore(repo_path=str(repo))  # the YAML's own paths, our engine and online store
    assert {s.name for s in fs.list_feature_services()} >= {"churn_v1", "recsys_v1"}
    fs.materialize_incremental(end_date=snap.end, feature_views=["customer_features"])
    got = fs.get_online_features(features=["customer_features:monetary_90d"], entity_rows=[{"one_id": "c0000002"}])
    assert got.to_dict()["monetary_90d"][0] is not None
    assert (feast_data / "feast" / "online.db").exists()
