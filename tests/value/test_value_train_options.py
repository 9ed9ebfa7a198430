"""From the CLI audit: nonsense training options and config files are one-line errors (exit 2) naming the
file, field and expected type, checked before any MLflow run; a recommender measured on nobody (nan
holdout nDCG) is never registered; the registry commands say what to run next and print numbers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner


@pytest.fixture()
def cli(tmp_settings, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_settings.data_dir))
    monkeypatch.setenv("PORTRAIT_MLRUNS_DIR", str(tmp_settings.data_dir.parent / "mlruns"))
    monkeypatch.delenv("PORTRAIT_MLFLOW_URI", raising=False)  # the serving tests' session client sets it
    from portrait.cli import app

    def run(*args):
        r = CliRunner().invoke(app, list(args))
        return r, " ".join(r.output.split())
    return run


@pytest.mark.parametrize("yaml_text, words", [
    ("gbm: {num_leaves: abc}", ["cfg.yaml", "'gbm.num_leaves'", "expected int", "'abc'"]),
    ("gbm:\n  learning_rate: fast", ["'gbm.learning_rate'", "expected float"]),
    ("gbm: {num_leaves: 0}", ["cfg.yaml", "gbm.num_leaves", "at least 2"]),
    ("gbm: {nmu_leaves: 3}", ["unknown config field 'gbm.nmu_leaves'", "gbm.num_leaves"]),
    ("colour: red", ["unknown config field 'colour'"]),
    ("dataset: 3", ["'dataset'", "mapping"]),
    ("dataset: {horizon_days: 0}", ["dataset.horizon_days", "at least 1"]),
    ("dataset: {as_of: 01/06/2026}", ["dataset.as_of", "'01/06/2026'", "ISO 8601"]),
    ("calibration: sigmoid", ["calibration", "platt or isotonic"]),
    ("monotone: [[recency_days, x]]", ["'monotone'[0][1]", "expected int"]),
    ("promote: 1", ["'promote'", "expected bool"]),
])
def test_bad_train_config_names_file_field_and_type(cli, tmp_path, yaml_text, words):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml_text + "\n")
    r, text = cli("train", "churn", "--config", str(cfg))
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    for w in words:
        assert w in text, (w, text)


def test_config_values_of_the_right_type_are_taken(cli, tmp_path):
    from portrait.commands.train_value import make_config

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("gbm: {num_leaves: 7, learning_rate: 1}\ndataset: {as_of: '2026-06-01', max_rows_per_cutoff: null}\n"
                   "exclude: [age, city]\nmonotone: [[recency_days, 1]]\n")
    c = make_config("churn", cfg)
    assert c.gbm.num_leaves == 7 and c.gbm.learning_rate == 1.0 and isinstance(c.gbm.learning_rate, float)
    assert c.exclude == ("age", "city") and c.monotone == (("recency_days", 1),) and c.dataset.as_of == "2026-06-01"
    cfg.write_text("candidates: [lgbm, xgboost]\n")
    with pytest.raises(ValueError, match="candidates"):
        make_config("ltv", cfg)


@pytest.mark.parametrize("args, words", [
    (["train", "churn", "--as-of", "01/06/2026"], ["--as-of", "'01/06/2026'", "YYYY-MM-DD"]),
    (["train", "lookalike", "--factors", "0"], ["--factors", "at least 1"]),
    (["train", "lookalike", "--epochs", "-1"], ["--epochs"]),
    (["train", "recommender", "--holdout-days", "-5"], ["--holdout-days", "above 0"]),
    (["train", "recommender", "--holdout-days", "0"], ["--holdout-days"]),
    (["train", "recommender", "--trials", "-1"], ["--trials", "at least 0"]),
    (["train", "recommender", "--half-life-days", "-3"], ["--half-life-days"]),
])
def test_nonsense_training_options_stop_before_any_run(cli, tmp_settings, args, words):
    r, text = cli(*args)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    for w in words:
        assert w in text, (w, text)
    assert not (tmp_settings.data_dir.parent / "mlruns").exists()  # no MLflow store even opened


def test_recommender_with_an_empty_holdout_is_not_registered(cli, tmp_settings):
    import numpy as np
    import pandas as pd

    from training import registry

    feats = tmp_settings.data_dir / "features"
    feats.mkdir(parents=True)
    rng = np.random.default_rng(0)
    n = 400
    events = pd.DataFrame({"one_id": [f"u{i}" for i in rng.integers(0, 40, n)], "item_id": [f"i{i}" for i in rng.integers(0, 30, n)],
                  "event_type": "view", "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 60, n), "D"),
                  "weight": 1.0})
    last = pd.DataFrame({"one_id": ["newcomer"], "item_id": ["i1"], "event_type": "view",
                         "ts": pd.Timestamp("2026-04-01", tz="UTC"), "weight": 1.0})  # the holdout: nobody seen before
    pd.concat([events, last]).to_parquet(feats / "interactions.parquet")
    r, text = cli("train", "recommender", "--model", "item_knn", "--holdout-days", "0.00001", "--no-promote")
    assert r.exit_code == 2 and "holdout nDCG@10 is nan" in text and "nothing registered" in text, r.output
    registry.setup(tmp_settings.mlflow_uri, tmp_settings.mlflow_artifacts)
    assert registry.list_versions() == []


def test_registry_commands_say_what_to_run_and_json_has_numbers(cli, tmp_settings):
    import mlflow

    from training import registry

    r, text = cli("models", "rollback", "churn")
    assert r.exit_code == 2 and "portrait models list" in text and "Traceback" not in r.output
    r, text = cli("models", "list")
    assert r.exit_code == 0 and "portrait train" in text
    registry.setup(tmp_settings.mlflow_uri, tmp_settings.mlflow_artifacts)
    with registry.start_run("churn"):
        registry.log_and_register("churn", lambda df: df.iloc[:, 0], ["x"], metrics={"auc": 0.75},
                                  pip_requirements=["mlflow"])
    registry.promote("churn", "1")
    r, text = cli("models", "rollback", "churn")
    assert r.exit_code == 2 and "no previous champion" in text and "portrait models promote churn VERSION" in text
    r = CliRunner().invoke(__import__("portrait.cli", fromlist=["app"]).app, ["models", "list", "--json"])
    rows = json.loads(r.stdout)
    assert rows[0]["metrics"]["auc"] == 0.75 and rows[0]["version"] == 1 and rows[0]["aliases"] == ["challenger", "champion"]
    r, text = cli("models", "list")
    assert "champion" in text and "challenger" in text and "…" not in text
    mlflow.end_run()


@pytest.mark.parametrize("end, horizon", [("2026-07-01", 90), ("2026-07-15", 90), ("2026-03-10", 180)])
def test_one_snapshot_says_which_snapshots_to_build_and_they_train(end, horizon):
    """`features build` then `train churn` (one snapshot) names an --as-of that then works."""
    import re

    import pandas as pd

    from training.datasets import training_cutoffs

    last = pd.Timestamp(end, tz="UTC")
    with pytest.raises(ValueError, match="portrait features build --as-of") as err:
        training_cutoffs([last], horizon, None, 6)
    advised = re.search(r"--as-of ([0-9,-]+)`", str(err.value)).group(1).split(",")
    got = training_cutoffs([pd.Timestamp(d, tz="UTC") for d in advised], horizon, None, 6)
    assert len(got) >= 3 and max(pd.Timestamp(d, tz="UTC") for d in advised) == last


@pytest.mark.parametrize("dates, words", [
    (("2026-02-01", "2026-03-01", "2026-07-01"), "^2 feature snapshots have a full 90-day label window before "
                                                 r"2026-07-01, none of them 90\+ days before the newest of those "
                                                 r"\(2026-03-01, "),
    # passed before the purge: train and validation labels ran into the holdout's window
    (("2026-02-01", "2026-03-01", "2026-04-01", "2026-07-01"), "^3 feature snapshots have a full 90-day label window "
                                                               r"before 2026-07-01, none of them 90\+ days before the "
                                                               r"newest of those \(2026-04-01, the holdout\)"),
])
def test_too_few_purged_snapshots_say_which_to_build(dates, words):
    """Two snapshots with a full label window passed the check and failed in the split without advice; three
    passed and trained on labels from the holdout's window. Both name an --as-of list, and it trains."""
    import re

    import pandas as pd

    from training.datasets import training_cutoffs

    cuts = [pd.Timestamp(d, tz="UTC") for d in dates]
    with pytest.raises(ValueError, match=words + r".*90\+ days before the holdout .*portrait features build --as-of ") as err:
        training_cutoffs(cuts, 90, None, 6)
    advised = re.search(r"--as-of ([0-9,-]+)`", str(err.value)).group(1).split(",")
    assert len(training_cutoffs([pd.Timestamp(d, tz="UTC") for d in advised], 90, None, 6)) >= 3


@pytest.mark.parametrize("args", [["models", "list"], ["models", "promote", "churn", "1"], ["models", "rollback", "churn"],
                                  ["train", "churn"], ["train", "ltv"], ["train", "propensity"]])
def test_an_unusable_mlflow_uri_is_named_before_any_work(cli, monkeypatch, args):
    """A typo in PORTRAIT_MLFLOW_URI was a traceback from `models list`, and `train` logged it only after
    the whole training (a traceback minutes in); both now stop first with one line naming the URI."""
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", "sqllite:///mlruns/mlflow.db")
    r, text = cli(*args)
    assert r.exit_code == 2 and "Traceback" not in r.output, (r.exception, text)  # 1: an uncaught exception
    assert "'sqllite:///mlruns/mlflow.db' cannot be used" in text and "sqlite:///PATH.db" in text, text
    assert "feature build" not in text  # train: refused before reading any data
