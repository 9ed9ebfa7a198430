"""The loader serves champions from a real MLflow registry and swaps them atomically."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from serving import logic
from serving.config import ServeConfig
from serving.errors import NotLoaded
from serving.loader import Loader

X = pd.DataFrame([[10.0, 5.0, 80.0, 300.0], [180.0, 1.0, 20.0, 100.0]],
                 columns=["recency_days", "frequency", "monetary", "tenure_days"])


def _predict(served) -> np.ndarray:  # noqa: ANN001 - the served model's own predictions
    return np.asarray(served.model.predictor.predict(X), dtype=float)


def _config(uri: str, tmp_path: Path, poll: float = 0.0) -> ServeConfig:
    return ServeConfig(data_dir=tmp_path, mlflow_uri=uri, model_names={"churn": "churn", "ltv": "ltv-missing"},
                       poll_seconds=poll)


def _promote(uri: str, version: str) -> None:
    MlflowClient(uri, uri).set_registered_model_alias("churn", "champion", version)


def _loader(world, tmp_path: Path, **kw) -> Loader:  # noqa: ANN001
    return Loader(_config(world.uri, tmp_path), load_model=kw.get("load_model", logic.load_model))


def test_serves_champion_and_reports_missing(world, tmp_path: Path) -> None:  # noqa: ANN001
    _promote(world.uri, "1")
    loader = _loader(world, tmp_path)
    assert loader.refresh() == ["churn"]
    b = loader.bundle
    assert b.versions() == {"churn": "1"}
    assert b.model("churn").run_id
    p = _predict(b.model("churn"))
    assert p.shape == (2,) and p[1] > p[0]  # the long-absent customer is the likelier churner
    with pytest.raises(NotLoaded, match="ltv"):
        b.model("ltv")
    assert loader.refresh() == []  # nothing changed: nothing reloaded, same snapshot
    assert loader.bundle is b


def test_promotion_swaps_without_failed_reads(world, tmp_path: Path) -> None:  # noqa: ANN001
    loader = _loader(world, tmp_path)
    expected = {}
    for v in ("2", "1"):
        _promote(world.uri, v)
        loader.refresh()
        expected[v] = _predict(loader.bundle.model("churn"))
    assert not np.allclose(expected["1"], expected["2"])
    seen: set[str] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                served = loader.bundle.model("churn")  # one snapshot per "request"
                assert np.allclose(_predict(served), expected[served.version]), "a snapshot mixed versions"
                seen.add(served.version)
                time.sleep(0.001)  # leave the GIL to the refreshing thread, as a server's I/O waits do
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for version in ("2", "1", "2"):
        _promote(world.uri, version)
        assert loader.refresh() == ["churn"]
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    _promote(world.uri, "1")
    assert not failures
    assert seen == {"1", "2"}
    assert loader.bundle.versions() == {"churn": "2"}


def test_broken_version_keeps_the_old_one(world, tmp_path: Path) -> None:  # noqa: ANN001
    _promote(world.uri, "1")

    calls: list[str] = []

    def flaky(kind: str, uri: str):  # noqa: ANN202 - the second load (v2) fails
        calls.append(uri)
        if len(calls) > 1:
            raise OSError("artifact store unreachable")
        return logic.load_model(kind, uri)

    loader = _loader(world, tmp_path, load_model=flaky)
    loader.refresh()
    _promote(world.uri, "2")
    try:
        assert loader.refresh() == []
        assert loader.bundle.versions() == {"churn": "1"}
        assert "v2 failed" in loader.bundle.errors["churn"]
    finally:
        _promote(world.uri, "1")


def test_reload_marker_reaches_a_polling_worker(world, tmp_path: Path) -> None:  # noqa: ANN001
    _promote(world.uri, "1")
    worker, operator = _loader(world, tmp_path), _loader(world, tmp_path)  # poll_seconds=0: only the marker
    worker.refresh()
    worker.start()
    try:
        _promote(world.uri, "2")
        time.sleep(1.1)  # make the marker's mtime change unambiguous
        operator.touch_marker()
        deadline = time.monotonic() + 10
        while worker.bundle.versions().get("churn") != "2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker.bundle.versions() == {"churn": "2"}
    finally:
        worker.stop()
        _promote(world.uri, "1")


def test_a_champion_that_failed_to_load_is_not_skipped_whatever_its_error_says():
    """A request naming no model skips a kind with no champion, never one whose champion failed to load
    (its answer names the error), even when the loader's message mentions the registry."""
    from serving.loader import Bundle

    b = Bundle(generation=1, errors={
        "churn": "loading portrait-churn v3 failed: OSError: could not download the artifacts from the model registry",
        "ltv": "no 'portrait-ltv@champion' in the registry (RestException)"})
    assert b.with_champions() == (["churn"], ["ltv", "propensity"])
    with pytest.raises(NotLoaded, match="loading portrait-churn v3 failed"):
        [b.model(k) for k in b.default_kinds(None)]


def test_nothing_to_score_names_the_served_alias():
    from serving.errors import NotLoaded
    from serving.loader import Bundle

    errors = {k: f"no '{k}@challenger' in the registry (RestException)" for k in ("churn", "ltv", "propensity")}
    with pytest.raises(NotLoaded, match=r"no model to score \(churn: no 'churn@challenger' in the registry"):
        Bundle(generation=1, errors=errors).default_kinds(None)
    assert Bundle(generation=1, errors=errors).default_kinds(["ltv", "ltv"]) == ["ltv"]
