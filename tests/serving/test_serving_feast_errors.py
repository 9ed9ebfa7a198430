"""Bad input on the Feast-mode entry points fails clearly: at startup for settings, 503 (never 500) for ``/score``.

* ``PORTRAIT_SCORE_FEATURES`` / ``PORTRAIT_FEAST_REDIS``: ``ServeConfig.from_env`` raises, naming
  the variable and what it accepts.
* ``score_features="feast"`` on a data folder whose Feast repo was never applied, or whose store
  cannot be opened: ``/score`` raises ``NotLoaded`` (503) with the reason; the other parts still load.
* ``benchmarks.serving_soak --fresh`` stops a paused soak's server before forgetting it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from types import MappingProxyType

import pytest

from serving.config import ServeConfig
from serving.errors import NotLoaded
from serving.schemas import ScoreRequest


@pytest.mark.parametrize("value", ["fast", "feast,snapshot", "1"])
def test_bad_score_features_fails_at_startup(value: str) -> None:
    with pytest.raises(ValueError, match=r"PORTRAIT_SCORE_FEATURES.*snapshot, feast"):
        ServeConfig.from_env({"PORTRAIT_SCORE_FEATURES": value})


def test_score_features_accepted_values() -> None:
    assert ServeConfig.from_env({}).score_features == "snapshot"
    assert ServeConfig.from_env({"PORTRAIT_SCORE_FEATURES": " Feast "}).score_features == "feast"


@pytest.mark.parametrize("value", ["localhost", "localhost:", ":6379", "host:port", "host:70000", "a:1:2",
                                   "db=0", "host:6379,other"])
def test_bad_feast_redis_fails_at_startup(value: str) -> None:
    with pytest.raises(ValueError, match=r"PORTRAIT_FEAST_REDIS.*host:port"):
        ServeConfig.from_env({"PORTRAIT_FEAST_REDIS": value})


@pytest.mark.parametrize("value", ["localhost:6379", "redis:6379,db=1,ssl=true", "r1:7000,r2:7001,password=a:b"])
def test_feast_redis_accepted_values(value: str) -> None:
    assert ServeConfig.from_env({"PORTRAIT_FEAST_REDIS": value}).feast_redis == value
    assert ServeConfig.from_env({"PORTRAIT_FEAST_REDIS": ""}).feast_redis is None


def _bundle(world, resources):  # noqa: ANN001, ANN202
    from serving.loader import Bundle, ServedModel

    models = {k: ServedModel(k, k, "1", None, None, "now") for k in ("churn", "ltv", "propensity")}
    return Bundle(generation=1, models=MappingProxyType(models), resources=resources)


def test_store_that_cannot_open_is_503_and_keeps_other_parts(world, monkeypatch) -> None:  # noqa: ANN001
    from serving import logic, resources

    def broken(cfg):  # noqa: ANN001, ANN202
        raise RuntimeError("feature_store.yaml unreadable")

    monkeypatch.setattr(resources, "_open_store", broken)
    cfg = ServeConfig(data_dir=world.data_dir, mlflow_uri=world.uri, poll_seconds=0, score_features="feast")
    res = resources.load_resources(cfg, None)
    assert res.features is not None and res.identity is not None  # the rest of serving still loads
    assert res.store is None and "unreadable" in res.store_error
    with pytest.raises(NotLoaded, match="Feast online store could not be opened.*unreadable"):
        logic.score(_bundle(world, res), ScoreRequest(ids=[world.one_ids[0]]))


@pytest.mark.slow  # imports Feast
def test_unapplied_feast_repo_is_503(world, tmp_path) -> None:  # noqa: ANN001
    from features.store import open_store
    from serving import logic, resources

    cfg = ServeConfig(data_dir=world.data_dir, mlflow_uri=world.uri, poll_seconds=0)
    res = replace(resources.load_resources(cfg, None), store=open_store(tmp_path),  # never applied
                  services=dict(cfg.feature_services))
    with pytest.raises(NotLoaded, match="not ready for /score.*churn_v1.*apply"):
        logic.score(_bundle(world, res), ScoreRequest(ids=[world.one_ids[0]]))
    # a model without a configured FeatureService is a 503 too
    res = replace(res, services={})
    with pytest.raises(NotLoaded, match="no FeatureService configured"):
        logic.score(_bundle(world, res), ScoreRequest(ids=[world.one_ids[0]]))


def test_soak_fresh_stops_a_paused_soak_server(tmp_path) -> None:  # noqa: ANN001
    from benchmarks._soak_state import proc_identity
    from benchmarks.serving_soak import forget_parts

    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands in for the paused server
    try:
        (tmp_path / "soak_state.json").write_text(json.dumps({"base": "http://127.0.0.1:1", "pgid": proc.pid,
                                                              "ident": proc_identity(proc.pid)}))
        (tmp_path / "noop.json").write_text("{}")
        forget_parts(tmp_path)
        assert proc.wait(timeout=10) is not None
        assert not list(tmp_path.glob("*.json"))
    finally:
        if proc.poll() is None:
            proc.kill()
