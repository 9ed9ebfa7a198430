"""The CLI: ``portrait features apply|materialize|online``, and the plain ``feast`` CLI in a copy of the repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from portrait.cli import app
from features.store import REPO_DIR


def test_portrait_features_commands(feast_data, monkeypatch):
    """apply + materialize as a real process (which must exit cleanly), then online reads in-process.

    Feast's DuckDB offline store keeps a connection in ibis' default backend; the store closes
    it at exit (``features.store._release_duckdb``), otherwise stderr ends with nanobind
    "leaked N instances" warnings.
    """
    env = {**os.environ, "PORTRAIT_DATA_DIR": str(feast_data)}
    env.pop("PORTRAIT_REDIS", None)
    script = ("from portrait.cli import app; import sys; "
              "sys.argv = ['portrait', 'features', 'apply']; app(standalone_mode=False); "
              "sys.argv = ['portrait', 'features', 'materialize', '--end', '2026-05-01']; app()")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "materialized customer_features" in res.stdout + res.stderr
    assert "leaked" not in res.stderr, res.stderr[-2000:]

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(feast_data))
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)
    runner = CliRunner()
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


def test_plain_feast_cli_in_a_copy_of_the_repo(feast_data, snap, monkeypatch, tmp_path):
    """``feast apply`` / ``materialize-incremental`` in feature_repo/ read the YAML as-is (paths under ../data).

    The ``feast`` console script's own click entry point runs in-process (a subprocess would
    pay Feast's ~10 s import a second time).
    """
    from click.testing import CliRunner as ClickRunner
    from feast import FeatureStore
    from feast.cli.cli import cli

    data = tmp_path / "data"  # a fresh data folder: nothing applied or materialized yet
    shutil.copytree(feast_data / "features", data / "features")
    repo = tmp_path / "feature_repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(data))
    monkeypatch.chdir(repo)
    runner = ClickRunner()
    res = runner.invoke(cli, ["apply"])
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    assert (data / "feast" / "registry.db").exists()
    # every view, including predicted_tags before anything was pushed (no offline file yet)
    res = runner.invoke(cli, ["materialize-incremental", snap.end.strftime("%Y-%m-%dT%H:%M:%S")])
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    assert (data / "feast" / "online.db").exists()
    fs = FeatureStore(repo_path=str(repo))  # the YAML's own paths, our engine and online store
    assert {s.name for s in fs.list_feature_services()} >= {"churn_v1", "recsys_v1"}
    got = fs.get_online_features(features=["customer_features:monetary_90d"], entity_rows=[{"one_id": "c0000002"}])
    assert got.to_dict()["monetary_90d"][0] is not None


@pytest.mark.parametrize("args, env, named", [
    (["features", "apply", "--redis", "localhost"], {}, "--redis"),
    (["features", "online", "c1", "--redis", "host:port"], {}, "--redis"),
    (["features", "apply"], {"PORTRAIT_REDIS": "redis:70000"}, "PORTRAIT_REDIS"),
])
def test_bad_redis_address_is_named_before_feast_runs(tmp_path, monkeypatch, args, env, named):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert named in res.output and "host:port" in res.output and "Traceback" not in res.output
    assert not any(tmp_path.iterdir())  # nothing was written


def test_open_store_checks_the_address():
    from features.store import open_store

    with pytest.raises(ValueError, match="redis='nope'.*host:port"):
        open_store("/nonexistent", redis="nope")
