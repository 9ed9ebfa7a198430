"""``portrait score`` from the CLI audit: an empty snapshot never erases the tag history (even with --force),
a model that cannot be prepared fails the command naming it, missing models say what to run, output is a
table or JSON with numbers, and the written tags are the catalog's percentile cohorts."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmarks._serving_world import build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("score_world"))


@pytest.fixture()
def env(world, monkeypatch, tmp_path):
    """The CLI on the world's registry and a private copy of its data folder (tests damage it)."""
    data = tmp_path / "data"
    shutil.copytree(world.data_dir, data)
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(data))
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", world.uri)
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", "test-key")
    return data


def run(*args):
    from portrait.cli import app

    r = CliRunner().invoke(app, ["score", *args])
    return r, " ".join(r.output.split())


def test_empty_snapshot_refuses_write_back_even_with_force(env):
    r, _ = run("--write-back", "--no-push", "--date", "2024-09-02")
    assert r.exit_code == 0, r.output
    history = env / "tags" / "history.parquet"
    good = history.read_bytes()
    assert len(pd.read_parquet(history)) == 3 * 80
    feats = env / "features" / "customer_features.parquet"
    pd.read_parquet(feats).iloc[:0].to_parquet(feats)
    r, text = run("--write-back", "--force", "--no-push", "--date", "2024-09-02")
    assert r.exit_code == 2 and "no customers" in text and "customer_features.parquet" in text
    assert "Traceback" not in r.output and history.read_bytes() == good


def test_a_model_that_cannot_be_prepared_fails_the_command(env):
    feats = env / "features" / "customer_features.parquet"
    pd.read_parquet(feats).drop(columns=["tenure_days"]).to_parquet(feats)
    r, text = run("--write-back", "--no-push", "--date", "2024-09-02")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "preparing model churn v1" in text and "tenure_days" in text
    assert not (env / "tags" / "history.parquet").exists()
    assert len([ln for ln in r.output.splitlines() if "error" in ln.lower()]) == 1  # one line, not a log + an error


def test_missing_models_and_bad_dates_say_what_to_do(env, tmp_path, monkeypatch):
    r, text = run("--date", "01/06/2026")
    assert r.exit_code == 2 and "--date" in text and "'01/06/2026'" in text and "YYYY-MM-DD" in text
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    r, text = run("-m", "ltv")
    assert r.exit_code == 2 and "portrait train ltv" in text and "Traceback" not in r.output


def test_output_is_a_table_or_json_with_numbers_and_catalog_cohorts(env):
    import json

    from features.tags import load_catalog

    r, text = run("--json")
    assert r.exit_code == 0, r.output
    got = {b["model"]: b for b in json.loads(r.stdout)}
    assert all(isinstance(b["rows"], int) and all(isinstance(n, int) for n in b["tags"].values()) for b in got.values())
    assert all(type(b["version"]) is int for b in got.values())  # a number, as train/models --json print it
    r, _ = run("--json", "--write-back", "--no-push", "--date", "2024-09-04")
    assert r.exit_code == 0 and all(type(b["version"]) is int for b in json.loads(r.stdout)), r.output
    catalog = {e["name"]: e for e in load_catalog()}
    assert set(got["churn"]["tags"]) <= {str(v) for v in catalog["churn_tier"]["values"]}
    assert set(got["ltv"]["tags"]) == {str(v) for v in catalog["ltv_tier"]["values"]}
    assert got["ltv"]["tags"]["top"] == 8  # top 10% of 80 scored customers
    r, text = run()
    assert r.exit_code == 0 and "{" not in r.output and "churn" in text and "top: 8" in text


def test_write_back_function_refuses_an_empty_snapshot(env, world):
    """The same guard for POST /tags/writeback, which calls serving.writeback.write_back directly."""
    import datetime as dt

    from serving import logic
    from serving.config import ServeConfig
    from serving.errors import BadRequest
    from serving.loader import Loader
    from serving.writeback import write_back

    feats = env / "features" / "customer_features.parquet"
    pd.read_parquet(feats).iloc[:0].to_parquet(feats)
    cfg = ServeConfig(data_dir=env, mlflow_uri=world.uri, hmac_key="test-key", model_names={"ltv": "ltv"},
                      poll_seconds=0)
    loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=None)
    loader.refresh()
    with pytest.raises(BadRequest, match="no customers"):
        write_back(loader.bundle, env, ["ltv"], dt.date(2024, 9, 2), force=True, push=False)
    assert not (env / "tags").exists() or not (env / "tags" / "history.parquet").exists()


def test_write_back_after_a_rollback_makes_the_restored_champions_tags_current(env, world):
    """v1 written, v2 promoted and written, rolled back to v1: the write-back skipped v1 ("already written
    today") and every reader (/profile, Feast) kept serving the rolled-back v2's tags."""
    from portrait.cli import app
    from serving.resources import _load_predicted

    def models(*args):
        r = CliRunner().invoke(app, ["models", *args])
        assert r.exit_code == 0, r.output

    day = ("--write-back", "--no-push", "--model", "churn", "--date", "2024-09-03", "--json")
    try:
        assert run(*day)[0].exit_code == 0
        models("promote", "churn", "2")
        assert run(*day)[0].exit_code == 0
        models("rollback", "churn")
        r, _ = run(*day)
        assert r.exit_code == 0, r.output
        assert '"status": "written"' in r.output and '"version": 1' in r.output
        again, _ = run(*day)  # nothing newer now: the same batch is not written twice
        assert '"status": "skipped"' in again.output
    finally:
        from training import registry

        registry.setup(world.uri)
        if registry.champion_version("churn") != "1":
            registry.promote("churn", "1", "test cleanup")
    shown = _load_predicted(type("Cfg", (), {"data_dir": env})())
    assert {t["version"] for tags in shown.values() for t in tags if t["name"] == "churn_tier"} == {"1"}


@pytest.fixture()
def only_propensity(env, world, tmp_path, monkeypatch):
    """A copy of the world's registry where only propensity has a champion (churn and ltv lost theirs)."""
    from mlflow.tracking import MlflowClient

    db = tmp_path / "only_propensity.db"
    shutil.copy(world.uri.removeprefix("sqlite:///"), db)  # the versions' artifacts stay the world's (read only)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in ("churn", "ltv"):
        client.delete_registered_model_alias(name, "champion")
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", uri)
    return uri


def test_only_a_propensity_champion_is_scored_by_default_and_named_when_churn_is_asked(env, only_propensity):
    """`score --write-back` with only a propensity model trained failed naming the missing churn champion."""
    import json

    r, text = run("--write-back", "--no-push", "--date", "2024-09-02", "--model", "churn")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "model churn" in text and "champions exist for propensity only" in text and "`--model propensity`" in text
    assert not (env / "tags" / "history.parquet").exists()
    r, text = run("--write-back", "--no-push", "--date", "2024-09-02", "--json")
    assert r.exit_code == 0, r.output
    assert [b["model"] for b in json.loads(r.stdout)] == ["propensity"]
    assert "skipped churn, ltv: no 'champion' in the registry" in text
    assert set(pd.read_parquet(env / "tags" / "history.parquet")["tag"]) == {"propensity_decile"}


def test_write_back_function_names_the_loaded_champions(env, only_propensity):
    """POST /tags/writeback's error (serving.writeback.write_back) says which models to send instead."""
    import datetime as dt

    from serving import logic
    from serving.config import ServeConfig
    from serving.errors import NotLoaded
    from serving.loader import Loader
    from serving.writeback import write_back

    cfg = ServeConfig(data_dir=env, mlflow_uri=only_propensity, hmac_key="test-key",
                      model_names={m: m for m in ("churn", "ltv", "propensity")}, poll_seconds=0)
    loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=logic.prepare)
    loader.refresh()
    with pytest.raises(NotLoaded, match=r'model not loaded: churn, ltv .*"models": \["propensity"\]'):
        write_back(loader.bundle, env, ["churn", "ltv", "propensity"], dt.date(2024, 9, 2), push=False)
    assert not (env / "tags" / "history.parquet").exists()
    # no models named (POST /tags/writeback with {}): the ones that have a champion, like `portrait score`
    batches = write_back(loader.bundle, env, None, dt.date(2024, 9, 2), push=False)
    assert [b.model for b in batches] == ["propensity"] and batches[0].status == "written"
    # and POST /score without "models" scores them too instead of a 503 for the missing churn champion
    from serving.schemas import ScoreRequest

    one_id = str(pd.read_parquet(env / "features" / "customer_features.parquet", columns=["one_id"])["one_id"].iloc[0])
    res = logic.score(loader.bundle, ScoreRequest(ids=[one_id])).model_dump()
    assert res["results"][0]["found"] and set(res["models"]) == {"propensity"}, res
    with pytest.raises(NotLoaded, match="model not loaded: churn"):
        logic.score(loader.bundle, ScoreRequest(ids=[one_id], models=["churn"]))


def test_write_back_request_without_models_means_every_champion():
    from serving.schemas import WritebackRequest

    assert WritebackRequest().models is None and WritebackRequest(models=["ltv"]).models == ["ltv"]
    with pytest.raises(ValueError):
        WritebackRequest(models=[])


@pytest.fixture()
def unloadable_churn(env, world, tmp_path, monkeypatch):
    """A copy of the world's registry whose churn champion is a version that cannot load here: it was logged
    with a flavour from a plugin not installed, and the import error's text says "registry"."""
    from mlflow.tracking import MlflowClient

    db = tmp_path / "unloadable.db"
    shutil.copy(world.uri.removeprefix("sqlite:///"), db)
    uri = f"sqlite:///{db}"
    model = tmp_path / "churn_from_elsewhere"
    model.mkdir()
    (model / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: acme_registry_flavor\n"
                                   "    python_version: 3.11.0\n")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.create_model_version("churn", str(model)).version
    client.set_registered_model_alias("churn", "champion", version)
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", uri)
    return version


def test_a_champion_that_fails_to_load_is_not_called_missing(env, unloadable_churn):
    """The hint follows the loader's prefix for load failures, not the word "registry" in the exception."""
    r, text = run("--model", "churn", "--no-push", "--date", "2024-09-02")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"model churn: loading churn v{unloadable_churn} failed" in text and "acme_registry_flavor" in text
    assert "churn has a 'champion' but it does not load here" in text and "portrait models rollback churn" in text
    assert "train churn first" not in text and "champions exist for" not in text


def test_a_skipped_write_back_says_how_to_force_it(env):
    import json

    r, _ = run("--write-back", "--no-push", "--date", "2024-09-03", "--model", "churn")
    assert r.exit_code == 0, r.output
    r, text = run("--write-back", "--no-push", "--date", "2024-09-03", "--model", "churn")
    assert r.exit_code == 0, r.output
    assert "churn v1 skipped: already written for this version and 2024-09-03" in text
    assert "`--force` rewrites it" in text and '"force"' not in text  # the CLI's option, not the HTTP field
    r, _ = run("--write-back", "--no-push", "--date", "2024-09-03", "--model", "churn", "--json")
    (batch,) = json.loads(r.stdout)
    assert batch["status"] == "skipped" and "`--force` rewrites it" in batch["note"]
    r, text = run("--write-back", "--no-push", "--date", "2024-09-03", "--model", "churn", "--force")
    assert r.exit_code == 0 and "written" in text and "skipped:" not in text.replace("skipped: Feast", ""), r.output
