"""``train(config) -> run_id`` on the features contract, registered in a real (temporary) MLflow store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.recommender import RecommenderConfig, read_interactions, train


def write_inputs(data) -> None:
    (data / "features").mkdir(parents=True)
    (data / "raw").mkdir(parents=True)
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(40):
        base = 0 if u < 20 else 10
        for j in range(8):
            item = base + (u + 3 * j) % 10
            rows.append((f"c{u}", f"p{item}", "purchase" if j % 4 == 0 else "view", t0 + pd.Timedelta(days=j * 4 + u % 3), 1.0))
    df = pd.DataFrame(rows, columns=["one_id", "item_id", "event_type", "ts", "weight"])
    df.to_parquet(data / "features" / "interactions.parquet")
    pd.DataFrame({"item_id": [f"p{i}" for i in range(20)], "category": ["a"] * 10 + ["b"] * 10,
                  "price": 10.0, "in_stock": True, "launch_date": pd.Timestamp("2023-01-01")}
                 ).to_parquet(data / "raw" / "items.parquet")
    pd.DataFrame({"one_id": [f"c{u}" for u in range(40)], "event_timestamp": t0,
                  "tag_age_band": ["25-34"] * 20 + ["45-54"] * 20, "gender": "F", "city": "X",
                  "tag_lifecycle_stage": "active"}).to_parquet(data / "features" / "customer_features.parquet")


def test_train_registers_a_loadable_recommender(tmp_settings):
    import mlflow

    from training import registry

    write_inputs(tmp_settings.data_dir)
    cfg = RecommenderConfig(data_dir=str(tmp_settings.data_dir), mlflow_uri=tmp_settings.mlflow_uri,
                            mlflow_artifacts=str(tmp_settings.mlflow_artifacts), holdout_days=5, optuna_trials=1)
    run_id = train(cfg)
    run = mlflow.get_run(run_id)
    assert "holdout_ndcg" in run.data.metrics and "holdout_popularity_ndcg" in run.data.metrics
    model = registry.load("recommender", alias="challenger")
    out = model.predict(pd.DataFrame({"one_id": ["c1", "stranger"], "k": [5, 5], "age_band": [None, "45-54"],
                                      "gender": [None, "F"]}))
    assert list(out["source"]) == ["history", "segment"]
    assert len(out["item_ids"].iloc[0]) == 5
    bundle = model.unwrap_python_model().bundle
    assert bundle.recommend("c1", k=3)


def test_train_names_the_missing_file(tmp_settings):
    cfg = RecommenderConfig(data_dir=str(tmp_settings.data_dir), mlflow_uri=tmp_settings.mlflow_uri)
    with pytest.raises(FileNotFoundError, match="interactions.parquet"):
        train(cfg)


def test_read_interactions_formats(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t881250950\n")
    df = read_interactions(tmp_path / "u.data")
    assert list(df.columns) == ["user", "item", "weight", "timestamp"] and df.weight.tolist() == [5.0, 3.0]
    (tmp_path / "x.csv").write_text("customer_id,sku\na,1\nb,2\n")
    assert read_interactions(tmp_path / "x.csv").weight.tolist() == [1.0, 1.0]
    (tmp_path / "bad.csv").write_text("customer_id,sku,rating\na,1,-3\n")
    with pytest.raises(ValueError, match="rating"):
        read_interactions(tmp_path / "bad.csv")
    (tmp_path / "noitem.csv").write_text("customer_id,foo\na,1\n")
    with pytest.raises(ValueError, match="no item column"):
        read_interactions(tmp_path / "noitem.csv")


@pytest.mark.slow  # ~10 s; the same command runs in benchmarks/recommenders.py
def test_evaluate_cli_json_on_movielens(shared_data):
    from portrait.cli import app

    path = shared_data / "movielens-100k" / "u.data"
    res = CliRunner().invoke(app, ["evaluate", "recommender", "--interactions", str(path), "--peers", "popularity",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert {"model", "precision", "recall", "ndcg", "map", "hit_rate", "coverage", "fit_seconds", "baselines"} <= set(out)
    assert out["ndcg"] > out["baselines"]["popularity"]["ndcg"] + 0.15  # directional, not a tuned threshold


def test_evaluate_cli_rejects_bad_input(tmp_path):
    from portrait.cli import app

    (tmp_path / "x.csv").write_text("customer_id,sku\na,1\n")
    res = CliRunner().invoke(app, ["evaluate", "recommender", "--interactions", str(tmp_path / "x.csv"),
                                   "--protocol", "temporal"])
    assert res.exit_code == 2 and "timestamp" in res.output


def test_train_gates_promotion(tmp_settings):
    """The first model becomes champion; a worse one (popularity) stays challenger; the reason is on the run."""
    import mlflow

    from training import registry

    write_inputs(tmp_settings.data_dir)
    base = dict(data_dir=str(tmp_settings.data_dir), mlflow_uri=tmp_settings.mlflow_uri,
                mlflow_artifacts=str(tmp_settings.mlflow_artifacts), holdout_days=5)
    first = train(RecommenderConfig(**base))
    assert mlflow.get_run(first).data.tags["gate.promoted"] == "True"
    assert registry.champion_version("recommender") == "1"
    worse = train(RecommenderConfig(**base, model="popularity"))
    tags = mlflow.get_run(worse).data.tags
    assert tags["gate.promoted"] == "False" and "kept champion" in tags["gate.reason"], tags
    assert registry.champion_version("recommender") == "1"
    m = mlflow.get_run(first).data.metrics
    assert m["holdout_ndcg"] > mlflow.get_run(worse).data.metrics["holdout_ndcg"]


def test_gate_refits_a_copy_of_the_configuration():
    """The gate scores a champion's configuration, not its fitted state: the copy is unfitted, same params."""
    import numpy as np
    import scipy.sparse as sp

    from models.recommenders import make
    from training.recommender import _unfitted

    X = sp.random(30, 12, density=0.3, format="csr", random_state=0, dtype=np.float32)
    fitted = make("window_ease", lams=(3.0,), window=7).fit(X)
    copy = _unfitted(fitted)
    assert type(copy) is type(fitted) and copy.get_params() == make("window_ease", lams=(3.0,), window=7).get_params()
    assert not hasattr(copy, "B_") and hasattr(fitted, "B_")
    assert _unfitted(make("als", factors=7)).factors == 7


def test_gate_refits_the_champion_with_its_own_event_weights(tmp_settings, monkeypatch):
    """The gate refitted the champion's configuration on events weighted the challenger's way."""
    import mlflow

    import training.recommender as rec
    import training.recommender_holdout as holdout

    write_inputs(tmp_settings.data_dir)
    base = dict(data_dir=str(tmp_settings.data_dir), mlflow_uri=tmp_settings.mlflow_uri,
                mlflow_artifacts=str(tmp_settings.mlflow_artifacts), holdout_days=5)
    champion = RecommenderConfig(**base, half_life_days=30.0)  # purchase 4, view 0.5, decayed
    challenger = RecommenderConfig(**base, event_weights=(("purchase", 1.0), ("view", 1.0)), half_life_days=None)
    train(champion)
    fitted = []
    real_fit = holdout.fit_model
    monkeypatch.setattr(holdout, "fit_model", lambda model, X, T: fitted.append(X.copy()) or real_fit(model, X, T))
    run_id = train(challenger)
    assert "champion v1" in mlflow.get_run(run_id).data.tags["gate.reason"]

    def fit_part(cfg: RecommenderConfig) -> float:  # the weights of the events before the holdout
        events = rec.load_events(cfg)
        return float(events.loc[events["timestamp"] < events["timestamp"].max() - pd.Timedelta(days=5), "weight"].sum())

    refit = float(fitted[-1].sum())  # the gate's last fit: the champion's configuration on the holdout's training part
    assert refit == pytest.approx(fit_part(champion), rel=1e-5)
    assert refit != pytest.approx(fit_part(challenger), rel=1e-3)  # the two weightings differ on these events


def test_gate_refit_and_challenger_meet_on_one_holdout(tmp_settings, monkeypatch):
    """The champion's refit is scored on the challenger's holdout, its own extra users/items appended.

    The champion weighs clicks (the challenger ignores them): a click-only customer and a click-only
    item exist for it alone, and a click before the cut made a holdout item "seen". The gate rebuilt
    the holdout from the champion's events: one more customer scored, one discovery fewer.
    """
    import training.evaluation.ranking as ranking
    import training.recommender_holdout as holdout

    data = tmp_settings.data_dir
    write_inputs(data)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    path = data / "features" / "interactions.parquet"
    extra = pd.DataFrame([("v0", "p1", "click", t0 + pd.Timedelta(days=1), 1.0),  # clicks only before the cut
                          ("v0", "p3", "view", t0 + pd.Timedelta(days=29), 1.0),
                          *[(f"c{u}", "q0", "click", t0 + pd.Timedelta(days=3), 1.0) for u in range(5)],  # click-only item
                          ("c5", "p6", "click", t0 + pd.Timedelta(days=2), 1.0)],  # c5 views p6 on day 30
                         columns=["one_id", "item_id", "event_type", "ts", "weight"])
    pd.concat([pd.read_parquet(path), extra], ignore_index=True).to_parquet(path)
    base = dict(data_dir=str(data), mlflow_uri=tmp_settings.mlflow_uri,
                mlflow_artifacts=str(tmp_settings.mlflow_artifacts), holdout_days=5)
    train(RecommenderConfig(**base))  # champion: the default weights, click 1.0
    truths, fitted = [], []
    real_metrics, real_fit = ranking.ranking_metrics, holdout.fit_model
    monkeypatch.setattr(ranking, "ranking_metrics",
                        lambda ids, rel, **kw: truths.append(rel.copy()) or real_metrics(ids, rel, **kw))
    monkeypatch.setattr(holdout, "fit_model", lambda model, X, T: fitted.append(X.copy()) or real_fit(model, X, T))
    ignores_clicks = tuple((e, 0.0 if e == "click" else w) for e, w in RecommenderConfig().event_weights)
    run_id = train(RecommenderConfig(**base, event_weights=ignores_clicks))
    assert "champion v1" in mlflow_tags(run_id)["gate.reason"]
    challenger, champion = truths[0], truths[-1]  # this run's holdout_ndcg, then the gate's refit of v1
    assert champion.shape[0] == challenger.shape[0] == 40  # v0 is not scored: no history before the cut here
    n = challenger.shape[1]
    assert (champion[:, :n] != challenger).nnz == 0 and champion[:, n:].nnz == 0  # c5's p6 still a discovery
    refit = fitted[-1]  # the champion's configuration learnt from v0 and q0, appended after the holdout's index
    assert refit.shape == (fitted[0].shape[0] + 1, n + 1) and refit[-1].nnz == 1 and refit[:, -1].nnz == 5


def mlflow_tags(run_id: str) -> dict[str, str]:
    import mlflow

    return mlflow.get_run(run_id).data.tags


def test_train_cli_no_promote_skips_the_gate(tmp_settings, monkeypatch):
    """``--no-promote`` registers the version but leaves the champion alone and reports no gate decision."""
    from portrait.cli import app
    from training import registry

    write_inputs(tmp_settings.data_dir)
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_settings.data_dir))
    monkeypatch.setenv("PORTRAIT_MLRUNS_DIR", str(tmp_settings.mlflow_artifacts.parent))
    # mlflow.set_tracking_uri in earlier tests exported MLFLOW_TRACKING_URI, which settings honour: pin this store
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", tmp_settings.mlflow_uri)
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", "test-key-0123456789abcdef")
    res = CliRunner().invoke(app, ["train", "recommender", "--holdout-days", "5", "--no-promote", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["gate"] == {"promoted": None, "reason": None, "version": 1}
    assert (out["version"], out["promoted"]) == (1, None)  # registered as version 1, not gated
    assert registry.champion_version("recommender") is None
    assert registry.load("recommender", alias="challenger") is not None
    res = CliRunner().invoke(app, ["train", "recommender", "--holdout-days", "5", "--no-promote"])
    assert res.exit_code == 0, res.output
    assert "version 2 (challenger; --no-promote: not gated)" in " ".join(res.output.split())


def test_train_cli_says_the_version_and_whether_it_became_champion(tmp_settings, monkeypatch):
    """Like ``train churn`` etc.: "recommender: run <id>, version 1 (champion)", then the gate's reason."""
    from portrait.cli import app

    write_inputs(tmp_settings.data_dir)
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_settings.data_dir))
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", tmp_settings.mlflow_uri)
    res = CliRunner().invoke(app, ["train", "recommender", "--holdout-days", "5"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "recommender: run " in text and ", version 1 (champion)" in text, text
    assert "gate: " in text and "holdout nDCG@10 " in text
