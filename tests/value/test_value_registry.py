"""MLflow registry: promotion gate, rollback, and pyfunc loading in a fresh process (real SQLite store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from training import registry
from training.evaluation.value import spearman


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating it runs MLflow's migrations, which is slow)."""
    from portrait.settings import load_settings

    root = tmp_path_factory.mktemp("value_registry")
    s = load_settings({"PORTRAIT_DATA_DIR": str(root / "data"), "PORTRAIT_MLRUNS_DIR": str(root / "mlruns")})
    registry.setup(s.mlflow_uri, s.mlflow_artifacts)
    return s


def _data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    return X, 2 * X["a"].to_numpy() + rng.normal(scale=0.3, size=300)


def _register(X: pd.DataFrame, y: np.ndarray, cols: list[str], name: str = "unit_value") -> str:
    model = LinearRegression().fit(X[cols], y)
    with registry.start_run(name):
        registry.log_config({"cols": cols})
        return registry.log_and_register(name, model, cols, metrics={"n": len(X)})


def test_gate_promotes_better_never_worse_and_rollback_restores(store) -> None:
    X, y = _data()
    hold_X, hold_y = _data(1)

    def score(model) -> float:
        return spearman(hold_y, model.predict(hold_X)["score"].to_numpy())

    good = _register(X, y, ["a", "b", "c"])
    first = registry.gate("unit_value", good, score, metric="spearman")
    assert first.promoted and registry.champion_version("unit_value") == good

    worse = _register(X, y, ["b", "c"])  # without the informative column
    decision = registry.gate("unit_value", worse, score, metric="spearman")
    assert not decision.promoted
    assert decision.challenger_score < decision.champion_score
    assert registry.champion_version("unit_value") == good
    aliases = {r["version"]: r["aliases"] for r in registry.list_versions("unit_value")}
    assert aliases[worse] == ["challenger"] and "champion" in aliases[good]

    registry.promote("unit_value", worse, "by hand")
    assert registry.champion_version("unit_value") == worse
    assert registry.rollback("unit_value") == good
    assert registry.champion_version("unit_value") == good
    with pytest.raises(ValueError, match="no previous champion"):
        registry.rollback("unit_value")


def _fresh_process(store, tmp_path, script: str) -> str:  # noqa: ANN001
    """Run ``script`` in a new Python process pointed at the store; its last printed line."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.mlflow_uri}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_champion_loads_in_a_fresh_process_without_portrait(store, tmp_path) -> None:
    X, y = _data()
    version = _register(X, y, ["a", "b", "c"], "unit_value_load")
    registry.promote("unit_value_load", version)
    script = textwrap.dedent("""
        import sys, mlflow, pandas as pd
        m = mlflow.pyfunc.load_model("models:/unit_value_load@champion")
        out = m.predict(pd.DataFrame({"a": [1.0, -1.0], "b": [0.0, 0.0], "c": [0.0, 0.0], "extra": ["x", "y"]}))
        assert not any(k.split(".")[0] in ("training", "portrait", "features") for k in sys.modules), "imported portrait"
        print(out["score"].round(3).tolist())
    """)
    hi, lo = eval(_fresh_process(store, tmp_path, script))
    assert hi > 1.5 and lo < -1.5


def test_a_churn_model_loads_in_a_fresh_process_from_its_shipped_code(store, tmp_path) -> None:
    """The test above registers a scikit-learn model: it would pass with the ``models`` package not shipped.
    A churn model (calibrated LightGBM from ``models/``) must load with the ``models`` the model logs, not
    portrait's (which an editable install would quietly supply), and import nothing else of portrait's."""
    from training.churn import GBMConfig, fit_binary

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"recency_days": rng.exponential(60, 2000), "city": rng.choice(["bj", "sh"], 2000)})
    y = (rng.random(2000) < 1 / (1 + np.exp(-(X["recency_days"] - 60) / 30))).astype(float)
    feats = ["recency_days", "city"]
    model = fit_binary(X[:1500], X[1500:], feats, y[:1500], y[1500:], GBMConfig(n_estimators=30),
                       {"recency_days": 1}, "platt")
    with registry.start_run("unit_churn_load"):
        version = registry.log_and_register("unit_churn_load", model, feats, output="churn_risk")
    registry.promote("unit_churn_load", version)
    script = textwrap.dedent("""
        import pathlib, sys, mlflow, pandas as pd
        m = mlflow.pyfunc.load_model("models:/unit_churn_load@champion")
        out = m.predict(pd.DataFrame({"recency_days": [1.0, 300.0], "city": ["bj", "unseen"]}))
        assert not any(k.split(".")[0] in ("training", "portrait", "features", "serving") for k in sys.modules), \
            "imported portrait"
        where = pathlib.Path(sys.modules["models"].__file__).as_posix()
        assert "/code/models/" in where, f"models imported from {where}, not from the logged model"
        print(out["churn_risk"].round(4).tolist())
    """)
    recent, lapsed = eval(_fresh_process(store, tmp_path, script))
    assert 0 <= recent < lapsed <= 1


def test_a_ziln_ltv_model_gives_p_buy_and_quantiles_in_a_fresh_process(store, tmp_path) -> None:
    """A ZILN LTV pyfunc returns ``ltv`` and, from the same network, ``ltv_p_buy`` and the spend quantiles
    ``ltv_p10/p50/p90``, loaded with only its shipped ``models`` code."""
    from models.ziln import ZILNRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"monetary_365d": rng.gamma(2.0, 50.0, 2000), "recency_days": rng.exponential(60, 2000)})
    p = 1 / (1 + np.exp((X["recency_days"] - 60) / 30))
    y = np.where(rng.random(2000) < p, X["monetary_365d"] * rng.lognormal(0, 0.5, 2000), 0.0)
    model = ZILNRegressor(hidden=(8,), epochs=15, batch_size=256, seed=0).fit(X, y)
    with registry.start_run("unit_ziln_load"):
        version = registry.log_and_register("unit_ziln_load", model, list(X.columns), output="ltv")
    registry.promote("unit_ziln_load", version)
    script = textwrap.dedent("""
        import json, pathlib, sys, mlflow, pandas as pd
        m = mlflow.pyfunc.load_model("models:/unit_ziln_load@champion")
        out = m.predict(pd.DataFrame({"monetary_365d": [400.0, 20.0, 100.0], "recency_days": [3.0, 300.0, 60.0]}))
        assert not any(k.split(".")[0] in ("training", "portrait", "features", "serving") for k in sys.modules), \
            "imported portrait"
        assert "/code/models/" in pathlib.Path(sys.modules["models"].__file__).as_posix()
        print(json.dumps(out.to_dict(orient="list")))
    """)
    out = pd.DataFrame(json.loads(_fresh_process(store, tmp_path, script)))
    assert list(out.columns) == ["ltv", "ltv_p_buy", "ltv_p10", "ltv_p50", "ltv_p90"]
    assert out["ltv_p_buy"].between(0, 1).all() and (out[["ltv", "ltv_p10"]] >= 0).all().all()
    assert (out["ltv_p10"] <= out["ltv_p50"]).all() and (out["ltv_p50"] <= out["ltv_p90"]).all()
    assert out["ltv_p_buy"][0] > out["ltv_p_buy"][1] and out["ltv"][0] > out["ltv"][1]  # recent big spender vs lapsed
    np.testing.assert_allclose(out["ltv"], model.predict(pd.DataFrame(
        {"monetary_365d": [400.0, 20.0, 100.0], "recency_days": [3.0, 300.0, 60.0]})), rtol=1e-5)


def test_models_cli_list_promote_rollback(store, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from portrait.cli import app

    X, y = _data()
    v1 = _register(X, y, ["a", "b", "c"], "unit_value_cli")
    v2 = _register(X, y, ["a"], "unit_value_cli")
    monkeypatch.setenv("PORTRAIT_MLFLOW_URI", store.mlflow_uri)
    run = CliRunner().invoke
    assert run(app, ["models", "promote", "unit_value_cli", v1]).exit_code == 0
    assert run(app, ["models", "promote", "unit_value_cli", v2, "--reason", "test"]).exit_code == 0
    rows = json.loads(run(app, ["models", "list", "unit_value_cli", "--json"]).stdout)
    assert {r["version"]: r["aliases"] for r in rows}[int(v2)] == ["challenger", "champion"]  # --json: versions are numbers
    res = run(app, ["models", "rollback", "unit_value_cli"])
    assert res.exit_code == 0 and f"version {v1}" in res.output
    bad = run(app, ["models", "promote", "unit_value_cli", "99"])
    assert bad.exit_code == 2 and "99" in bad.output


def test_train_config_overrides(tmp_path) -> None:
    from portrait.commands.train_value import make_config

    path = tmp_path / "ltv.yaml"
    path.write_text("dataset: {horizon_days: 60}\ngbm: {num_leaves: 7}\ncandidates: [lgbm]\n")
    cfg = make_config("ltv", path, as_of="2026-05-01")
    assert cfg.dataset.horizon_days == 60 and cfg.dataset.as_of == "2026-05-01"
    assert cfg.gbm.num_leaves == 7 and cfg.candidates == ("lgbm",) and cfg.dataset.service == "ltv_v1"
    path.write_text("horizon: 60\n")
    with pytest.raises(ValueError, match="unknown config field 'horizon'"):
        make_config("ltv", path)


def _register_task(X: pd.DataFrame, y: np.ndarray, cols: list[str], horizon, name: str) -> str:
    model = LinearRegression().fit(X[cols], y)
    with registry.start_run(name):
        registry.log_config({"dataset": {"horizon_days": horizon, "active_window_days": 180}})
        return registry.log_and_register(name, model, cols)


def test_gate_never_compares_a_champion_trained_for_another_target(store) -> None:
    """A 30-day churn challenger was scored against the 90-day champion on 30-day labels (which the
    champion never learned) and took its place; the gate now keeps the champion and says why."""
    X, y = _data()
    hold_X, hold_y = _data(1)

    def score(model) -> float:
        return spearman(hold_y, model.predict(hold_X)["score"].to_numpy())

    champ = _register_task(X, y, ["b", "c"], 90, "unit_task")
    assert registry.gate("unit_task", champ, score, metric="spearman",
                         task={"dataset.horizon_days": 90, "dataset.active_window_days": 180}).promoted
    other = _register_task(X, y, ["a", "b", "c"], 30, "unit_task")  # better on the holdout, another target
    d = registry.gate("unit_task", other, score, metric="spearman",
                      task={"dataset.horizon_days": 30, "dataset.active_window_days": 180})
    assert not d.promoted and registry.champion_version("unit_task") == champ
    assert "dataset.horizon_days 90 vs 30" in d.reason and f"models promote unit_task {other}" in d.reason
    same = _register_task(X, y, ["a", "b", "c"], 90.0, "unit_task")  # 90.0 from a config file is 90
    assert registry.gate("unit_task", same, score, metric="spearman",
                         task={"dataset.horizon_days": 90, "dataset.active_window_days": 180.0}).promoted


def test_a_champion_whose_holdout_score_is_nan_loses_to_a_finite_challenger(store) -> None:
    """A NaN score never beats anything, so such a champion could only be replaced by hand."""
    X, y = _data()
    hold_X, hold_y = _data(1)
    broken = _register(X, y, ["a", "b", "c"], name="unit_nan")
    registry.promote("unit_nan", broken, "first")

    def score(model) -> float:  # a metric that gives NaN for the broken version (e.g. constant or NaN predictions)
        pred = model.predict(hold_X)["score"].to_numpy()
        return float("nan") if model.metadata.run_id == run_of(broken) else spearman(hold_y, pred)

    def run_of(version: str) -> str:
        import mlflow

        return mlflow.MlflowClient().get_model_version("unit_nan", version).run_id

    fixed = _register(X, y, ["a", "b", "c"], name="unit_nan")
    decision = registry.gate("unit_nan", fixed, score, metric="spearman")
    assert decision.promoted and registry.champion_version("unit_nan") == fixed
    assert "not finite" in decision.reason
    nan_challenger = registry.gate("unit_nan", broken, score, metric="spearman")  # and never the other way round
    assert not nan_challenger.promoted and registry.champion_version("unit_nan") == fixed
